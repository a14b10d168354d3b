"""Building mails, Maildirs and mboxes for the ingestion tests."""

from __future__ import annotations

import hashlib
import mailbox
from email.message import EmailMessage
from pathlib import Path

NOW = "2026-11-23T10:00:00Z"
DATE = "Mon, 23 Nov 2026 09:00:00 +0100"


def mail(
    frm: str,
    to: str,
    subject: str,
    body: str,
    *,
    message_id: str | None = None,
    in_reply_to: str | None = None,
    references: str | None = None,
    date: str = DATE,
    headers: dict | None = None,
) -> bytes:
    msg = EmailMessage()
    msg["From"] = frm
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = date
    if message_id:
        msg["Message-ID"] = message_id
    if in_reply_to:
        msg["In-Reply-To"] = in_reply_to
    if references:
        msg["References"] = references
    for name, value in (headers or {}).items():
        msg[name] = value
    msg.set_content(body)
    return msg.as_bytes()


def with_attachment(
    base: bytes, filename: str, data: bytes, ctype: str = "application/gzip"
) -> bytes:
    from email import message_from_bytes, policy

    msg = message_from_bytes(base, policy=policy.default)
    maintype, subtype = ctype.split("/")
    msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    return msg.as_bytes()


def maildir(path: Path, mails: list[bytes], *, folder: str = "new") -> Path:
    for sub in ("cur", "new", "tmp"):
        (path / sub).mkdir(parents=True, exist_ok=True)
    for n, raw in enumerate(mails):
        (path / folder / f"{1795000000 + n}.M{n}P1.test").write_bytes(raw)
    return path


def mbox(path: Path, mails: list[bytes]) -> Path:
    box = mailbox.mbox(str(path), create=True)
    for raw in mails:
        box.add(mailbox.mboxMessage(raw))
    box.flush()
    box.close()
    return path


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def db_rows(url: str, sql: str, *params):
    """Rows of a plain SQL query on the test database (read-only checks); parameters are
    named :p0, :p1..."""
    from sqlalchemy import text

    from helpdesk.storage import db

    with db.get_engine(url).connect() as conn:
        return [
            tuple(r) for r in conn.execute(text(sql), {f"p{i}": v for i, v in enumerate(params)})
        ]
