"""Outgoing mail: delivery of the outbox, and what a person decides when it could not settle."""
