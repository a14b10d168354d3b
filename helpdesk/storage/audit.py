"""The append-only, hash-chained event log.

Each event's hash covers its content, its id and the previous event's hash; the
``ChainHead`` row holds the last hash. Updating that row in every writing transaction
serialises writers (a row lock on PostgreSQL, the write lock on SQLite), so the chain has
no forks. ``verify`` finds an event that was changed, deleted or reordered.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from sqlmodel import Session, select

from helpdesk.base import clock
from helpdesk.storage.models import ChainHead, Event


def _dumps(value) -> bytes:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str).encode()


def content_digest(note: str, data: dict) -> str:
    """The digest of what retention may redact: the free text and the data of an event."""
    return hashlib.sha256(_dumps({"note": note, "data": data})).hexdigest()


def canonical(event: Event) -> bytes:
    return _dumps(
        {
            "id": event.id,
            "at": clock.iso(event.at),
            "actor": event.actor,
            "ticket": event.ticket_id,
            "account": event.account_id,
            "action": event.action,
            "from": event.from_state,
            "to": event.to_state,
            "sanction": event.sanction,
            "content": event.content_digest,
        }
    )


def digest(prev_hash: str, event: Event) -> str:
    return hashlib.sha256(prev_hash.encode() + b"\n" + canonical(event)).hexdigest()


def _head(session: Session) -> ChainHead:
    head = session.get(ChainHead, 1, with_for_update=True)
    if head is None:
        head = ChainHead(id=1, last_id=0, last_hash="")
        session.add(head)
        session.flush()
    return head


def append(session: Session, event: Event) -> Event:
    """Chain and insert an event. Its id is the head's next one, taken under the head's
    lock, so the hash can be computed before the single insert."""
    head = _head(session)
    event.id = head.last_id + 1
    event.content_digest = content_digest(event.note, event.data)
    event.prev_hash = head.last_hash
    event.hash = digest(head.last_hash, event)
    head.last_id = event.id
    head.last_hash = event.hash
    session.add(event)
    session.add(head)
    session.flush()
    return event


def record(session: Session, *, actor: str, action: str, note: str = "", ticket_id=None, account_id=None, data=None, at=None) -> Event:
    """An event that changes no state (a read of sensitive data, an import...)."""
    return append(
        session,
        Event(at=at or clock.now(), actor=actor, action=action, note=note, ticket_id=ticket_id, account_id=account_id, data=data or {}),
    )


def redact(session: Session, event: Event, *, actor: str, reason: str, at=None) -> None:
    """Remove an event's personal content; the chain still verifies, and the redaction is
    itself an event."""
    if event.redacted_at is not None:
        return
    event.note = ""
    event.data = {"redacted": True}
    event.redacted_at = at or clock.now()
    session.add(event)
    record(session, actor=actor, action="redact", ticket_id=event.ticket_id, note=reason, data={"event": event.id}, at=at)


@dataclass
class Problem:
    event_id: int | None
    what: str

    def as_dict(self) -> dict:
        return {"event": self.event_id, "problem": self.what}


def verify(session: Session, batch: int = 5000) -> tuple[int, list[Problem]]:
    """Walk the chain. Returns the number of events read and what is wrong with it."""
    problems: list[Problem] = []
    prev_hash = ""
    prev_id = 0
    count = 0
    last_seen = 0
    while True:
        rows = list(session.exec(select(Event).where(Event.id > last_seen).order_by(Event.id).limit(batch)))
        if not rows:
            break
        for ev in rows:
            count += 1
            if ev.prev_hash != prev_hash:
                problems.append(
                    Problem(ev.id, f"does not follow event {prev_id or '-'}: an event before it was removed, changed or moved")
                )
            if digest(ev.prev_hash, ev) != ev.hash:
                problems.append(Problem(ev.id, "its content does not match its hash: it was changed or moved"))
            elif ev.redacted_at is None and content_digest(ev.note, ev.data) != ev.content_digest:
                problems.append(Problem(ev.id, "its note or data does not match its hash: it was changed"))
            prev_hash, prev_id = ev.hash, ev.id
        last_seen = rows[-1].id
    head = session.get(ChainHead, 1)
    if head is not None and (head.last_id != prev_id or head.last_hash != prev_hash):
        problems.append(Problem(head.last_id, "the chain's last event is missing or was changed"))
    return count, problems
