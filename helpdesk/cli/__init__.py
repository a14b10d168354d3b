"""The command line: one module per command group, and the ``helpdesk`` entry."""
