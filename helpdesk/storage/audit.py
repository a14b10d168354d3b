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

from sqlmodel import Session, col, select

from helpdesk.base import clock
from helpdesk.storage.models import ChainHead, Event


def _dumps(value) -> bytes:
    return json.dumps(
        value, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str
    ).encode()


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


def record(
    session: Session,
    *,
    actor: str,
    action: str,
    note: str = "",
    ticket_id=None,
    account_id=None,
    data=None,
    at=None,
) -> Event:
    """An event that changes no state (a read of sensitive data, an import...)."""
    return append(
        session,
        Event(
            at=at or clock.now(),
            actor=actor,
            action=action,
            note=note,
            ticket_id=ticket_id,
            account_id=account_id,
            data=data or {},
        ),
    )


def redact(session: Session, event: Event, *, actor: str, reason: str, at=None) -> None:
    """Remove an event's personal content; the chain still verifies, and the redaction is
    itself an event."""
    if event.redacted_at is not None or event.action == "redact":
        return  # a redaction event holds no personal data and is the proof of another's
    event.note = ""
    event.data = {"redacted": True}
    event.redacted_at = at or clock.now()
    session.add(event)
    record(
        session,
        actor=actor,
        action="redact",
        ticket_id=event.ticket_id,
        note=reason,
        data={"event": event.id},
        at=at,
    )


@dataclass
class Problem:
    event_id: int | None
    what: str

    def as_dict(self) -> dict:
        return {"event": self.event_id, "problem": self.what}


def verify(
    session: Session, batch: int = 5000, anchors: list["Anchor"] | None = None
) -> tuple[int, list[Problem]]:
    """Walk the chain. Returns the number of events read and what is wrong with it.

    An event marked redacted needs a later ``redact`` event naming it (``redact`` writes
    both): marking a row redacted by hand hides no edit. ``anchors`` (heads written outside
    the database by ``audit anchor``) catch what a chain recomputed after an edit, cut short
    or started again would otherwise pass: each anchored event must still be there with the
    anchored hash."""
    problems: list[Problem] = []
    prev_hash = ""
    prev_id = 0
    count = 0
    last_seen = 0
    marked: list[int] = []
    justified: set[int] = set()
    wanted = {a.id for a in anchors or []}
    found: dict[int, str] = {}
    while True:
        rows = list(
            session.exec(
                select(Event).where(Event.id > last_seen).order_by(col(Event.id)).limit(batch)
            )
        )
        if not rows:
            break
        for ev in rows:
            count += 1
            if ev.prev_hash != prev_hash:
                problems.append(
                    Problem(
                        ev.id,
                        f"does not follow event {prev_id or '-'}: an event before it was removed, changed or moved",
                    )
                )
            if digest(ev.prev_hash, ev) != ev.hash:
                problems.append(
                    Problem(ev.id, "its content does not match its hash: it was changed or moved")
                )
            elif ev.redacted_at is None and content_digest(ev.note, ev.data) != ev.content_digest:
                problems.append(
                    Problem(ev.id, "its note or data does not match its hash: it was changed")
                )
            if ev.redacted_at is not None:
                marked.append(ev.id)
            elif (
                ev.action == "redact"
                and isinstance(ev.data, dict)
                and isinstance(ev.data.get("event"), int)
            ):
                justified.add(ev.data["event"])
            if ev.id in wanted:
                found[ev.id] = ev.hash
            prev_hash, prev_id = ev.hash, ev.id
        last_seen = rows[-1].id
    for event_id in marked:
        if event_id not in justified:
            problems.append(
                Problem(
                    event_id, "it is marked redacted but no redaction event in the chain names it"
                )
            )
    head = session.get(ChainHead, 1)
    if head is not None and (head.last_id != prev_id or head.last_hash != prev_hash):
        problems.append(Problem(head.last_id, "the chain's last event is missing or was changed"))
    for a in anchors or []:
        if a.id not in found:
            problems.append(
                Problem(
                    a.id,
                    f"anchored at {a.at} but no longer in the chain: the chain was cut short or started again",
                )
            )
        elif found[a.id] != a.hash:
            problems.append(
                Problem(
                    a.id,
                    f"its hash differs from the one anchored at {a.at}: the chain was recomputed",
                )
            )
    return count, problems


def head(session: Session) -> dict:
    """The chain's head, as ``audit anchor`` writes it outside the database."""
    row = session.get(ChainHead, 1)
    return {"id": row.last_id if row else 0, "hash": row.last_hash if row else ""}


@dataclass
class Anchor:
    """A chain head written outside the database at ``at``: event ``id`` had ``hash``."""

    at: str
    id: int
    hash: str

    def line(self) -> str:
        return json.dumps({"at": self.at, "id": self.id, "hash": self.hash}, sort_keys=True)


def read_anchors(text: str) -> tuple[list[Anchor], list[int]]:
    """The anchors of an anchor file, and the numbers of the lines that are not anchors."""
    found: list[Anchor] = []
    bad: list[int] = []
    for n, raw in enumerate(text.splitlines(), start=1):
        raw = raw.strip()
        if not raw:
            continue
        if "helpdesk-audit-anchor " in raw:  # a syslog line: the JSON follows the tag
            raw = raw.split("helpdesk-audit-anchor ", 1)[1]
        try:
            d = json.loads(raw)
            a = Anchor(str(d["at"]), d["id"], d["hash"])
        except (ValueError, KeyError, TypeError):
            bad.append(n)
            continue
        if (
            not isinstance(a.id, int)
            or isinstance(a.id, bool)
            or a.id < 0
            or not isinstance(a.hash, str)
        ):
            bad.append(n)
        elif a.id > 0:
            found.append(a)
    return found, bad
