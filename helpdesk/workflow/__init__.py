"""Workflow: the engine that checks and applies steps, the mails a step queues,
sweep (what is due) and retention."""
