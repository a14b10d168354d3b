"""Training: the sandbox database, its clock, scenarios and the demo."""
