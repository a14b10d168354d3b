"""The columns that the Core read path reads (``helpdesk.service.listing``), as SQLAlchemy
Core ``table()`` clauses: no SQLModel, no pydantic, no ORM, no class built per table.

``helpdesk.storage.models`` is the schema; these are views of some of its columns, declared
with the same column types so that a value reads back the same (``UTCDateTime`` gives UTC
datetimes, ``JSON`` decodes, ``Boolean`` is a bool on SQLite too). ``tests/test_tables.py``
fails if a column named here is not in the models' metadata with the same type.
"""

from __future__ import annotations

from sqlalchemy import JSON, Boolean, Integer, String, Text, column, table

from helpdesk.storage.columns import UTCDateTime

meta = table(
    "meta",
    column("key", String),
    column("value", Text),
)

policy = table(
    "policy",
    column("key", String),
    column("name", String),
    column("timezone", String),
    column("params", JSON),
)

volunteer = table(
    "volunteer",
    column("login", String),
    column("name", String),
    column("role", String),
    column("policies", JSON),
    column("active", Boolean),
)

account = table(
    "account",
    column("id", Integer),
    column("login", String),
    column("email", String),
    column("org", String),
)

workflow = table(
    "workflow",
    column("id", Integer),
    column("policy_key", String),
    column("queue", String),
    column("title", JSON),
)

state = table(
    "state",
    column("workflow_id", Integer),
    column("key", String),
    column("position", Integer),
    column("kind", String),
    column("label", JSON),
)

transition = table(
    "transition",
    column("workflow_id", Integer),
    column("key", String),
    column("position", Integer),
    column("label", JSON),
)

message = table(
    "message",
    column("id", Integer),
    column("ticket_id", Integer),
    column("subject", String),
    column("body", Text),
)

event = table(
    "event",
    column("id", Integer),
    column("at", UTCDateTime()),
    column("actor", String),
    column("ticket_id", Integer),
    column("action", String),
    column("to_state", String),
    column("note", String),
)

ticket = table(
    "ticket",
    column("id", Integer),
    column("queue", String),
    column("policy_key", String),
    column("workflow_id", Integer),
    column("state", String),
    column("state_kind", String),
    column("account_id", Integer),
    column("requester", String),
    column("subject", String),
    column("assignee", String),
    column("claimed_by", String),
    column("claim_expires", UTCDateTime()),
    column("opened_at", UTCDateTime()),
    column("due_at", UTCDateTime()),
    column("merged_into", Integer),
)

deadline = table(
    "deadline",
    column("id", Integer),
    column("ticket_id", Integer),
    column("name", String),
    column("due_at", UTCDateTime()),
    column("status", String),
)

outbox = table(
    "outbox",
    column("id", Integer),
    column("ticket_id", Integer),
    column("to_addr", String),
    column("status", String),
)

service_action = table(
    "serviceaction",
    column("id", Integer),
    column("ticket_id", Integer),
    column("account_id", Integer),
    column("policy_key", String),
    column("connector", String),
    column("service", String),
    column("kind", String),
    column("target", String),
    column("params", JSON),
    column("status", String),
    column("attempts", Integer),
    column("next_attempt_at", UTCDateTime()),
    column("created_at", UTCDateTime()),
    column("done_at", UTCDateTime()),
    column("last_error", Text),
    column("result", Text),
)

#: Every table above, for the test that holds them to the models.
ALL = (
    meta,
    policy,
    volunteer,
    account,
    workflow,
    state,
    transition,
    event,
    message,
    ticket,
    deadline,
    outbox,
    service_action,
)


def short_name(params: dict | None, name: str) -> str:
    """A provider's name where room is short: the pack's ``short_name``, kept with its
    parameters, else its name (one rule for a Core row and a ``Policy`` model)."""
    return str((params or {}).get("short_name") or name)
