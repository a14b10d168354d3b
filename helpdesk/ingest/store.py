"""What an ingest run writes besides tickets: raw evidence, quarantine rows, message
references for threading, and the dedupe marker of every item it has dealt with.

Each item (a mail, a report file, a chunk of log) is handled in its own transaction, and its
marker is written in that same transaction: after a crash, an item is either fully there
(ticket, evidence, marker) or not at all, and a re-run picks it up exactly once.

Markers live in ``IngestCursor`` rows whose source is ``sha256:<hex of the raw bytes>``: the
primary key makes a second copy impossible even for two runs at once (the loser's commit
fails and it counts a duplicate). A marker whose outcome is ``quarantined`` does not stop a
later run from trying the item again (an account may have been added meanwhile).
"""

from __future__ import annotations

import hashlib
from datetime import datetime

from sqlmodel import Session, select

from helpdesk.storage import audit
from helpdesk.base import clock
from helpdesk.rules.context import Actor
from helpdesk.storage.models import Evidence, IngestCursor, MessageRef, Quarantine, Ticket
from helpdesk.base.roles import SYSTEM
from helpdesk.base.untrusted import clean_line

ACTOR = Actor("intake", SYSTEM)  # who the audit trail names for what ingestion does
MARKER_PREFIX = "sha256:"
MAX_REASON = 1000


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --- dedupe markers ---------------------------------------------------------------------------


def marker(session: Session, digest: str) -> IngestCursor | None:
    return session.get(IngestCursor, MARKER_PREFIX + digest)


def mark(session: Session, digest: str, outcome: str, *, now: datetime, **facts) -> None:
    """Record that the item with this hash was dealt with (ticket, thread, quarantine...)."""
    row = session.get(IngestCursor, MARKER_PREFIX + digest)
    state = {"outcome": outcome, **{k: v for k, v in facts.items() if v is not None}}
    if row is None:
        row = IngestCursor(source=MARKER_PREFIX + digest, state=state, updated_at=now)
    else:
        row.state = state
        row.updated_at = now
    session.add(row)


def seen_outcome(session: Session, digest: str) -> dict | None:
    """The marker's facts, or None when this item was never dealt with."""
    row = marker(session, digest)
    return dict(row.state or {}) if row is not None else None


# --- cursors of resumable sources ----------------------------------------------------------------


def load_cursor(session: Session, source: str) -> dict:
    row = session.get(IngestCursor, source)
    return dict(row.state or {}) if row is not None else {}


def save_cursor(session: Session, source: str, state: dict, now: datetime) -> None:
    row = session.get(IngestCursor, source) or IngestCursor(source=source, updated_at=now)
    row.state = state
    row.updated_at = now
    session.add(row)


# --- raw material -------------------------------------------------------------------------------


def keep_evidence(
    session: Session, *, data: bytes, kind: str, source: str, ticket_id: int | None, now: datetime
) -> Evidence:
    row = Evidence(
        ticket_id=ticket_id,
        kind=kind,
        source=clean_line(source)[:500],
        sha256=sha256(data),
        received_at=now,
        content=data,
    )
    session.add(row)
    session.flush()
    return row


def quarantine(
    session: Session, *, data: bytes, kind: str, source: str, reason: str, now: datetime
) -> Quarantine:
    """Keep input that could not be used, raw, with the reason (nothing is lost)."""
    row = Quarantine(
        received_at=now,
        kind=kind,
        source=clean_line(source)[:500],
        reason=clean_line(reason)[:MAX_REASON] or "unreadable input",
        sha256=sha256(data),
        content=data,
    )
    session.add(row)
    session.flush()
    return row


def release_quarantined(session: Session, digest: str) -> None:
    """An item quarantined earlier has now been used: its rows are marked released."""
    for row in session.exec(
        select(Quarantine).where(Quarantine.sha256 == digest, Quarantine.released == False)
    ):  # noqa: E712
        row.released = True
        session.add(row)


# --- threading ----------------------------------------------------------------------------------


def ticket_for_message_ids(session: Session, ids: list[str]) -> Ticket | None:
    """The ticket one of these Message-IDs belongs to: a mail we received, or one we sent
    (delivery writes a ``MessageRef`` for every mail that left, see ``helpdesk.outgoing.delivery``)."""
    for message_id in ids:
        ref = known_message(session, message_id)
        if ref is not None:
            return session.get(Ticket, ref.ticket_id)
    return None


def known_message(session: Session, message_id: str | None) -> MessageRef | None:
    if not message_id:
        return None
    return session.exec(select(MessageRef).where(MessageRef.message_id == message_id)).first()


def add_message_ref(
    session: Session, message_id: str | None, ticket_id: int, now: datetime, direction: str = "in"
) -> None:
    if message_id and len(message_id) <= 998 and known_message(session, message_id) is None:
        session.add(
            MessageRef(message_id=message_id, ticket_id=ticket_id, direction=direction, at=now)
        )
        session.flush()


def record(
    session: Session,
    action: str,
    *,
    ticket: Ticket | None,
    note: str = "",
    data: dict | None = None,
    now: datetime | None = None,
):
    """An event by the intake on a ticket (mail received, figures added, refusal noted)."""
    return audit.record(
        session,
        actor=ACTOR.login,
        action=action,
        note=clean_line(note)[:MAX_REASON],
        ticket_id=ticket.id if ticket else None,
        account_id=ticket.account_id if ticket else None,
        data=data or {},
        at=now or clock.now(),
    )


def touch(session: Session, ticket: Ticket, now: datetime) -> None:
    """Something new arrived on the ticket (its version, which guards actions, is kept)."""
    ticket.updated_at = now
    session.add(ticket)
