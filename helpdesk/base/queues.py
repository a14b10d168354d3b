"""The queues: the four procedures a policy pack writes workflows for, and ``general``, the
plain queue of the mail that asks something else (received, answered, closed)."""

PROCEDURES = ("password-reset", "closure", "abuse", "mail-reputation")
GENERAL = "general"
#: Every queue, in the order people see them (dashboard keys 1 to 5, CLI choices).
ALL = (*PROCEDURES, GENERAL)
