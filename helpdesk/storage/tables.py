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
    column("role", String),
    column("policies", JSON),
    column("active", Boolean),
)

account = table(
    "account",
    column("id", Integer),
    column("login", String),
)

state = table(
    "state",
    column("workflow_id", Integer),
    column("key", String),
    column("label", JSON),
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
    column("ticket_id", Integer),
    column("status", String),
)

#: Every table above, for the test that holds them to the models.
ALL = (meta, policy, volunteer, account, state, ticket, deadline, outbox)


def short_name(params: dict | None, name: str) -> str:
    """A provider's name where room is short: the pack's ``short_name``, kept with its
    parameters, else its name (one rule for a Core row and a ``Policy`` model)."""
    return str((params or {}).get("short_name") or name)
