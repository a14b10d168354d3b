"""Finding tickets: the filters, sort orders and full-text search of the queue views.

Queues can hold a million tickets, so nothing here loads a whole table: ``page`` pushes
the filters, the sort key, LIMIT and OFFSET into SQL and returns light rows; ``count``
answers how many rows the filters match.

Full-text search covers subjects, requesters, accounts (login, address, organisation) and
the notes of the ticket's events. On SQLite it uses the FTS5 table ``ticket_fts`` that
migration 0002 creates and keeps current with triggers; elsewhere (or on a database made
without migrations) it falls back to ``LIKE``. What the person typed is never passed to
FTS5 as query syntax: it is cut into words and quoted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import exists, func, or_, text as sql_text
from sqlmodel import Session, select

from helpdesk.models import Account, Event, Ticket

FTS_TABLE = "ticket_fts"
ORDERS = ("due", "age", "state", "new")
KINDS = ("active", "open", "waiting", "done", "all")

_WORD = re.compile(r"\w+", re.UNICODE)


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


# --- full text --------------------------------------------------------------------------


def fts_query(text: str) -> str:
    """An FTS5 MATCH expression for what was typed: every chunk a quoted phrase, the last
    word of each a prefix, all of them required. Empty when there is no word to look for."""
    parts = []
    for chunk in (text or "").split():
        words = _WORD.findall(chunk)
        if words:
            parts.append('"' + " ".join(words) + '"*')
    return " ".join(parts)


def has_fts(session: Session) -> bool:
    """True on SQLite databases that have the ``ticket_fts`` table (migration 0002)."""
    bind = session.get_bind()
    if bind.dialect.name != "sqlite":
        return False
    cache = session.info.get("has_fts")
    if cache is None:
        found = session.exec(
            sql_text("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = :n").bindparams(n=FTS_TABLE)
        ).first()
        cache = session.info["has_fts"] = found is not None
    return cache


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _like_clause(text: str):
    clauses = []
    for chunk in text.split():
        like = _like(chunk)
        clauses.append(
            or_(
                Ticket.subject.ilike(like, escape="\\"),
                Ticket.requester.ilike(like, escape="\\"),
                exists(
                    select(Account.id).where(
                        Account.id == Ticket.account_id,
                        or_(
                            Account.login.ilike(like, escape="\\"),
                            Account.email.ilike(like, escape="\\"),
                            Account.org.ilike(like, escape="\\"),
                        ),
                    )
                ),
                exists(select(Event.id).where(Event.ticket_id == Ticket.id, Event.note.ilike(like, escape="\\"))),
            )
        )
    return clauses


def text_clauses(session: Session, text: str) -> list:
    """WHERE clauses on ``Ticket`` for a full-text search (none when ``text`` is blank)."""
    text = (text or "").strip()
    if not text:
        return []
    number = text.lstrip("#")
    by_id = [Ticket.id == int(number)] if number.isdigit() and len(number) < 12 else []
    if has_fts(session):
        query = fts_query(text)
        if not query:
            return [or_(*by_id)] if by_id else [Ticket.id.is_(None)]
        matching = Ticket.id.in_(sql_text(f"SELECT rowid FROM {FTS_TABLE} WHERE {FTS_TABLE} MATCH :fts").bindparams(fts=query))
        return [or_(matching, *by_id)]
    like = _like_clause(text)
    return [or_(*by_id, *like)] if by_id else like


def search(session: Session, text: str, limit: int = 50, offset: int = 0) -> list[Ticket]:
    """Tickets matching ``text``, best first (FTS5 rank on SQLite, newest first elsewhere)."""
    text = (text or "").strip()
    if not text:
        return []
    if has_fts(session):
        query = fts_query(text)
        ids: list[int] = []
        number = text.lstrip("#")
        if number.isdigit() and offset == 0 and len(number) < 12 and session.get(Ticket, int(number)) is not None:
            ids.append(int(number))
        if query:
            rows = session.exec(
                sql_text(
                    f"SELECT rowid FROM {FTS_TABLE} WHERE {FTS_TABLE} MATCH :fts ORDER BY rank LIMIT :limit OFFSET :offset"
                ).bindparams(fts=query, limit=limit, offset=offset)
            )
            ids += [r[0] for r in rows if r[0] not in ids]
        ids = ids[:limit]
        if not ids:
            return []
        found = {t.id: t for t in session.exec(select(Ticket).where(Ticket.id.in_(ids)))}
        return [found[i] for i in ids if i in found]
    q = select(Ticket).where(*text_clauses(session, text)).order_by(Ticket.id.desc())
    return list(session.exec(q.offset(offset).limit(limit)))


# --- filtered, sorted pages -------------------------------------------------------------


def _where(session: Session, flt: TicketFilter) -> list:
    where = []
    if flt.queue:
        where.append(Ticket.queue == flt.queue)
    if flt.policy:
        where.append(Ticket.policy_key == flt.policy)
    if flt.state:
        where.append(Ticket.state == flt.state)
    if flt.kind == "active":
        where.append(Ticket.state_kind.in_(("open", "waiting")))
    elif flt.kind in ("open", "waiting", "done"):
        where.append(Ticket.state_kind == flt.kind)
    if flt.assignee == "-":
        where.append(Ticket.assignee.is_(None))
    elif flt.assignee:
        where.append(Ticket.assignee == flt.assignee)
    where += text_clauses(session, flt.text)
    return where


def count(session: Session, flt: TicketFilter) -> int:
    return session.exec(select(func.count()).select_from(Ticket).where(*_where(session, flt))).one()


def _order(order: str) -> list:
    if order == "age":
        return [Ticket.opened_at, Ticket.id]
    if order == "state":
        return [Ticket.state, Ticket.due_at.is_(None), Ticket.due_at, Ticket.id]
    if order == "new":
        return [Ticket.id.desc()]
    # Overdue and soonest first; tickets with no date after them, oldest first.
    return [Ticket.due_at.is_(None), Ticket.due_at, Ticket.id]


def page(session: Session, flt: TicketFilter, order: str = "due", limit: int = 50, offset: int = 0) -> list[Row]:
    """One page of the rows ``flt`` matches, in ``order``: only these rows are read."""
    q = (
        select(
            Ticket.id,
            Ticket.queue,
            Ticket.policy_key,
            Ticket.workflow_id,
            Ticket.state,
            Ticket.state_kind,
            Account.login,
            Ticket.requester,
            Ticket.subject,
            Ticket.due_at,
            Ticket.opened_at,
            Ticket.assignee,
            Ticket.claimed_by,
            Ticket.claim_expires,
        )
        .select_from(Ticket)
        .outerjoin(Account, Account.id == Ticket.account_id)
        .where(*_where(session, flt))
        .order_by(*_order(order))
        .offset(max(0, offset))
        .limit(limit)
    )
    return [Row(*r) for r in session.exec(q)]


def position(session: Session, flt: TicketFilter, order: str, ticket_id: int, limit: int = 100_000) -> int | None:
    """Where a ticket stands in a view (its row index), or None; scans at most ``limit`` ids."""
    q = select(Ticket.id).select_from(Ticket).where(*_where(session, flt)).order_by(*_order(order)).limit(limit)
    for i, tid in enumerate(session.exec(q)):
        if tid == ticket_id:
            return i
    return None
