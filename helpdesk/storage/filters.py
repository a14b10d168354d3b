"""What a queue view shows and the rows it lists: plain data, with no database layer, so
the screens can hold it without importing SQLAlchemy (``helpdesk.storage.search`` answers it)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import NamedTuple

ORDERS = ("due", "age", "state", "new")
KINDS = ("active", "open", "waiting", "done", "all")


@dataclass(frozen=True)
class TicketFilter:
    """What a queue view shows. ``kind``: ``active`` (open and waiting, the default),
    ``open``, ``waiting``, ``done`` or ``all``; ``assignee`` a login, or ``-`` for nobody."""

    queue: str | None = None
    policy: str | None = None
    state: str | None = None
    kind: str = "active"
    assignee: str | None = None
    text: str = ""

    def with_(self, **changes) -> "TicketFilter":
        return replace(self, **changes)


class Row(NamedTuple):
    id: int
    queue: str
    policy: str
    workflow_id: int
    state: str
    state_kind: str
    account: str | None
    requester: str
    subject: str
    due_at: datetime | None
    opened_at: datetime
    assignee: str | None
    claimed_by: str | None
    claim_expires: datetime | None
