"""The messages of a ticket's conversation: what is stored, and how it is read back.

Three directions: ``in`` (a mail received: the text kept, cleaned of control characters,
HTML turned into text, attachments listed by name, type, size and hash, never opened),
``out`` (a mail queued in the outbox: a procedure's template or a volunteer's reply; its
delivery status is its outbox row's, read when the conversation is shown, never copied)
and ``note`` (an internal note, never mailed).

``helpdesk.service.conversation`` holds the actions that write them (reply, comment, ask, merge);
ingestion and the outbox write them through ``record_incoming`` and ``record_outgoing``.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

from sqlalchemy import or_
from sqlmodel import Session, col, select

from helpdesk.base import clock
from helpdesk.base.quoting import split_quoted
from helpdesk.storage.models import Message, Outbox, Ticket
from helpdesk.base.untrusted import clean, clean_line

DIRECTIONS = ("in", "out", "note")
MAX_BODY = 1_000_000
REDACTED = "—"


def attachment_list(attachments) -> list[dict]:
    """Name, type, size and sha256 of each attachment (``ParsedMail.attachments``); the
    content itself stays in the raw evidence and is never opened."""
    return [
        {
            "name": clean_line(a.filename or "")[:255],
            "type": clean_line(a.content_type or "")[:127],
            "size": len(a.data),
            "sha256": hashlib.sha256(a.data).hexdigest(),
        }
        for a in attachments
    ]


def record_incoming(
    session: Session, ticket_id: int, mail, *, evidence_id: int | None, now: datetime
) -> Message:
    """A received mail (``helpdesk.ingest.message.ParsedMail``) becomes a message."""
    row = Message(
        ticket_id=ticket_id,
        at=now,
        direction="in",
        from_addr=clean_line(mail.from_addr or "")[:320],
        from_name=clean_line(mail.from_name or "")[:200],
        to_addrs=[clean_line(a)[:320] for a in [*mail.to_addrs, *mail.cc_addrs]][:50],
        subject=clean_line(mail.subject or "")[:998],
        body=clean(mail.text_body or "")[:MAX_BODY],
        attachments=attachment_list(mail.attachments),
        message_id=clean_line(mail.message_id or "")[:998],
        evidence_id=evidence_id,
    )
    session.add(row)
    session.flush()
    return row


def record_outgoing(session: Session, mail: Outbox, *, author: str) -> Message:
    """A mail just queued in the outbox becomes a message (its status stays the outbox's)."""
    row = Message(
        ticket_id=mail.ticket_id,
        at=mail.created_at or clock.now(),
        direction="out",
        author=author[:64],
        to_addrs=[mail.to_addr],
        subject=mail.subject,
        body=mail.body,
        outbox_id=mail.id,
    )
    session.add(row)
    session.flush()
    return row


def record_note(
    session: Session, ticket_id: int, *, author: str, text: str, now: datetime
) -> Message:
    row = Message(
        ticket_id=ticket_id,
        at=now,
        direction="note",
        author=author[:64],
        body=clean(text).strip()[:MAX_BODY],
    )
    session.add(row)
    session.flush()
    return row


def of_ticket(session: Session, ticket: Ticket, *, limit: int | None = None) -> list[dict]:
    """The conversation of a ticket, oldest first (``limit``: only the latest ones)."""
    q = (
        select(Message, Outbox)
        .outerjoin(Outbox, col(Outbox.id) == Message.outbox_id)
        .where(Message.ticket_id == ticket.id)
    )
    if limit is None:
        rows = list(session.exec(q.order_by(col(Message.at), col(Message.id))))
    else:
        rows = list(
            session.exec(q.order_by(col(Message.at).desc(), col(Message.id).desc()).limit(limit))
        )[::-1]
    return [view(m, o) for m, o in rows]


def view(m: Message, outbox: Outbox | None = None) -> dict:
    """One message as plain data: stable keys, times in UTC. ``body`` is the whole text;
    ``new`` and ``quoted`` split it so a screen can fold the quoted history."""
    new, quoted = split_quoted(m.body or "")
    out = {
        "id": m.id,
        "at": clock.iso(m.at),
        "direction": m.direction,
        "author": m.author or None,
        "from": m.from_addr or None,
        "from_name": m.from_name or None,
        "to": list(m.to_addrs or []),
        "subject": m.subject,
        "body": m.body,
        "new": new,
        "quoted": quoted,
        "attachments": list(m.attachments or []),
        "message_id": m.message_id or (outbox.message_id if outbox is not None else "") or None,
        "redacted": m.redacted_at is not None,
    }
    if m.direction == "out":
        out["outbox"] = m.outbox_id
        out["status"] = outbox.status if outbox is not None else None
        out["error"] = (outbox.last_error or None) if outbox is not None else None
        out["sent_at"] = clock.iso(outbox.sent_at) if outbox is not None else None
    return out


def thread_ids(
    session: Session, ticket_id: int, *, leaving: int | None = None
) -> tuple[str | None, list[str]]:
    """``(In-Reply-To, References)`` for a mail leaving on this ticket: the last mail received
    and every Message-ID of the conversation so far (the newest 20)."""
    q = (
        select(Message.direction, Message.message_id, Outbox.message_id)
        .outerjoin(Outbox, col(Outbox.id) == Message.outbox_id)
        .where(
            Message.ticket_id == ticket_id,
            Message.direction != "note",
            or_(col(Message.message_id) != "", col(Outbox.message_id) != ""),
        )
        .order_by(col(Message.at), col(Message.id))
    )
    if leaving is not None:  # the outbox row of the mail that leaves: not its own parent
        q = q.where(or_(col(Message.outbox_id).is_(None), col(Message.outbox_id) != leaving))
    ids: list[str] = []
    last_in = None
    for direction, own, sent in session.exec(q):
        mid = own or sent
        if mid and mid not in ids:
            ids.append(mid)
            if direction == "in":
                last_in = mid
    return last_in, ids[-20:]


def redact(session: Session, ticket_id: int, now: datetime) -> int:
    """Retention and erasure: the personal content of a ticket's messages goes (addresses,
    names, subject, text, attachment names); the hashes, sizes and dates stay."""
    n = 0
    for m in session.exec(
        select(Message).where(Message.ticket_id == ticket_id, col(Message.redacted_at).is_(None))
    ):
        m.from_addr = ""
        m.from_name = ""
        m.to_addrs = []
        m.subject = REDACTED
        m.body = ""
        m.attachments = [{**a, "name": ""} for a in (m.attachments or [])]
        m.redacted_at = now
        session.add(m)
        n += 1
    return n
