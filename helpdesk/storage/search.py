"""Finding tickets: the filters, sort orders and full-text search of the queue views.

Queues can hold a million tickets, so nothing here loads a whole table: ``page`` pushes
the filters, the sort key, LIMIT and OFFSET into SQL and returns light rows; ``count``
answers how many rows the filters match.

Full-text search covers subjects, requesters, accounts (login, address, organisation),
the notes of the ticket's events and the subjects and bodies of its messages (the
conversation). On SQLite it uses the FTS5 table ``ticket_fts`` that migration 0002 creates
and keeps current with triggers, and ``message_fts`` (migration 0007) for the messages, both
tagged with the ticket's queue, state kind and provider (0002, 0011) so that the index
itself narrows a match to the view; on PostgreSQL, ``to_tsvector`` /
``to_tsquery`` over the same text with case and accents folded (``PG_INDEXES`` are the GIN
indexes that answer it without reading every row); elsewhere (or on an SQLite database
made without migrations) it falls back to ``LIKE``. Everywhere: every chunk typed is a
phrase whose last word is a prefix, all chunks required, accents ignored. What the person
typed is never passed as query syntax: it is cut into words and quoted.
"""

from __future__ import annotations

from typing import Any

import re
import threading
import time

from sqlalchemy import and_, exists, func, or_, select, text as sql_text

from helpdesk.storage import tables
from helpdesk.storage.db import Reader, connection_of, read_info
from helpdesk.storage.filters import KINDS, ORDERS, Row, TicketFilter  # noqa: F401 - re-exported

T = tables.ticket

#: The columns of a ``Row``: what a page reads of each ticket, and its account's login.
ROW_COLUMNS = (
    T.c.id,
    T.c.queue,
    T.c.policy_key,
    T.c.workflow_id,
    T.c.state,
    T.c.state_kind,
    tables.account.c.login,
    T.c.requester,
    T.c.subject,
    T.c.due_at,
    T.c.opened_at,
    T.c.assignee,
    T.c.claimed_by,
    T.c.claim_expires,
)

FTS_TABLE = "ticket_fts"
MESSAGE_FTS = "message_fts"
_WORD = re.compile(r"\w+", re.UNICODE)


# --- full text --------------------------------------------------------------------------


TEXT_COLUMNS = "{subject requester account notes}"
MESSAGE_COLUMNS = "{subject body}"


def fts_query(text: str) -> str:
    """An FTS5 MATCH expression for what was typed: every chunk a quoted phrase, the last
    word of each a prefix, all of them required. Empty when there is no word to look for."""
    parts = []
    for chunk in (text or "").split():
        words = _WORD.findall(chunk)
        if words:
            parts.append('"' + " ".join(words) + '"*')
    return " ".join(parts)


def tag(kind: str, value: str) -> str:
    """A tag token of the ``tags`` column (migration 0002 writes the same): ``tq`` queue,
    ``tk`` state kind, ``tp`` provider, ``ta`` open or waiting in a queue."""
    return "t" + kind + re.sub(r"\W", "", value.replace("-", "")).lower()


def _tags(flt: "TicketFilter | None") -> list[str]:
    """The tags a filter implies, so that FTS5 narrows the match to the view by itself."""
    if flt is None:
        return []
    tags = []
    if flt.queue and flt.kind == "active":
        tags.append(tag("a", flt.queue))
    elif flt.queue:
        tags.append(tag("q", flt.queue))
    if flt.kind in ("open", "waiting", "done"):
        tags.append(tag("k", flt.kind))
    elif flt.kind == "active" and not flt.queue:
        # open or waiting, in any queue: without it a search in "all tickets" would match
        # every finished ticket too (most of the table) and sort them out afterwards
        tags.append(f'("{tag("k", "open")}" OR "{tag("k", "waiting")}")')
    if flt.policy:
        tags.append(tag("p", flt.policy))
    return tags


def _tags_say_all(flt: "TicketFilter") -> bool:
    """True when the tags of the match express the whole filter (no state, no assignee):
    the number of rows FTS5 matched is then the count."""
    return not flt.state and not flt.assignee and flt.kind in KINDS


def tags_expression(flt: "TicketFilter | None") -> str:
    """The filter's tags alone, as an FTS5 expression on ``ticket_fts`` (empty: no filter)."""
    parts = [f"tags : {t}" if t.startswith("(") else f'tags : "{t}"' for t in _tags(flt)]
    return " AND ".join(parts)


def message_expression(text: str, flt: "TicketFilter | None" = None) -> str:
    """The MATCH on ``message_fts``: the words typed in the subjects and bodies of the mails,
    and the filter's tags (their ticket's, migration 0011). Empty when nothing was typed
    that can be looked for."""
    return _expression(MESSAGE_COLUMNS, text, flt)


def match_expression(text: str, flt: "TicketFilter | None" = None) -> str:
    """The whole MATCH: the words typed, looked for in the text columns only, and the
    filter's tags. Empty when nothing was typed that can be looked for."""
    return _expression(TEXT_COLUMNS, text, flt)


def _expression(columns: str, text: str, flt: "TicketFilter | None") -> str:
    """The words typed, looked for in ``columns`` only (never in the tags), and the filter's
    tags."""
    query = fts_query(text)
    if not query:
        return ""
    expr = f"{columns} : ({query})"
    tags = tags_expression(flt)
    return f"{expr} AND {tags}" if tags else expr


#: A search view asks for its count and its first page at once, from two threads and two
#: sessions. Given the same ``share`` token (one refresh of one view: the caller makes a new
#: token whenever it wants fresh data), the second reuses the first one's match. Only the
#: latest few matches are kept, and for seconds only: what a person typing fast leaves behind
#: must not add up (a match holds as many ids as tickets it finds, so more with more tickets).
_shared: dict[tuple, tuple[float, "Found"]] = {}
_shared_lock = threading.Lock()
_key_locks: dict[tuple, threading.Lock] = {}
SHARED_KEEP_SECONDS = 10.0
SHARED_KEEP = 4

#: What a match found: how many tickets, and their ids as a JSON array (SQLite's own text,
#: read back by ``json_each``).
Found = tuple[int, str]


def _fts_ids(session: Reader, text: str, flt: "TicketFilter | None" = None) -> Found:
    """How many tickets a search matches and their ids (``_find``): once per session, and
    once per ``share`` token set in ``session.info`` (the count and the pages of one
    refresh of a view)."""
    query = match_expression(text, flt)
    cache = read_info(session).setdefault("fts_ids", {})
    found = cache.get(query)
    if found is not None:
        return found
    token = read_info(session).get("share")
    if token is None:
        found = _find(session, text, flt)
    else:
        key = (str(connection_of(session).engine.url), query, token)
        with _shared_lock:
            lock = _key_locks.setdefault(key, threading.Lock())
        with lock:  # the other thread of the same refresh waits for this match, not a second one
            kept = _shared.get(key)
            found = kept[1] if kept is not None else _find(session, text, flt)
            now = time.monotonic()
            with _shared_lock:
                _shared[key] = (now, found)
                newest = sorted(_shared, key=lambda k: _shared[k][0], reverse=True)
                for n, old in enumerate(newest):
                    if n >= SHARED_KEEP or now - _shared[old][0] > SHARED_KEEP_SECONDS:
                        _shared.pop(old, None)
                        _key_locks.pop(old, None)
    cache[query] = found
    return found


def _find(session: Reader, text: str, flt: "TicketFilter | None") -> Found:
    """The tickets ``ticket_fts`` matches, then those whose messages hold every chunk of
    ``text`` (narrowed by the filter's tags, so the count stays exact).

    SQLite does the work and answers each step in one row, a count and a JSON array that
    the next step reads back: ids read one by one into Python would hold Python's lock
    once per row, and the app's thread, painting the screen, waits for it."""
    raw = connection_of(session).connection.driver_connection

    def one(sql: str, params: tuple) -> Found:
        n, ids = next(raw.execute(sql, params))
        return n, ids

    def view_size() -> int:
        return next(
            raw.execute(f"SELECT count(*) FROM {FTS_TABLE} WHERE {FTS_TABLE} MATCH ?", (tags,))
        )[0]

    found = one(
        f"SELECT count(*), json_group_array(rowid) FROM {FTS_TABLE} WHERE {FTS_TABLE} MATCH ?",
        (match_expression(text, flt),),
    )
    if not has_message_fts(session):
        return found
    tags = tags_expression(flt)
    whole = view_size() if tags and found[0] else None
    if whole is not None and found[0] >= whole:
        # The words already match every ticket of the view (a queue's own words: "mot de
        # passe" in the resets): no message can add one.
        return found
    # The messages carry their ticket's tags (migration 0011): the index itself narrows the
    # match to the view's messages.
    messages = one(
        f"SELECT count(*), json_group_array(rowid) FROM {MESSAGE_FTS} WHERE {MESSAGE_FTS} MATCH ?",
        (message_expression(text, flt),),
    )
    if not messages[0]:
        return found
    if tags and messages[0] > VIA_VIEW_FROM:
        whole = view_size() if whole is None else whole
    if whole is not None and messages[0] > VIA_VIEW_FROM and whole <= 4 * messages[0]:
        # Many of the view's messages: their tickets are read from the (ticket_id, at, id)
        # index of the view's tickets not found yet, which holds both, rather than from each
        # message's row (a page each: their bodies are long). "+m.id" keeps SQLite on that
        # index.
        more = (
            f"SELECT m.ticket_id FROM message m WHERE m.ticket_id IN (SELECT rowid FROM"
            f" {FTS_TABLE} WHERE {FTS_TABLE} MATCH ?2 EXCEPT SELECT value FROM json_each(?1))"
            " AND +m.id IN (SELECT value FROM json_each(?3))"
        )
        params: tuple = (found[1], tags, messages[1])
    else:
        more = "SELECT m.ticket_id FROM message m WHERE m.id IN (SELECT value FROM json_each(?2))"
        params = (found[1], messages[1])
    return one(
        "SELECT count(*), json_group_array(id) FROM"
        f" (SELECT value AS id FROM json_each(?1) UNION {more})",
        params,
    )


#: Past this many messages matched, their tickets are found through the view's tickets
#: (when the view holds at most four times as many tickets).
VIA_VIEW_FROM = 200


def has_message_fts(session: Reader) -> bool:
    """True on SQLite databases that have the ``message_fts`` table (migration 0007)."""
    return _has_table(session, MESSAGE_FTS, "has_message_fts")


def _has_table(session: Reader, name: str, key: str) -> bool:
    """Whether the SQLite table ``name`` exists, asked once per session (``info[key]``)."""
    info = read_info(session)
    cache = info.get(key)
    if cache is None:
        found = session.execute(
            sql_text("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = :n").bindparams(
                n=name
            )
        ).first()
        cache = info[key] = found is not None
    return cache


# --- PostgreSQL full text ----------------------------------------------------------------
# The text is lower-cased, stripped of the accents of Latin letters (translate(), so no
# extension is needed and the expression stays immutable, hence indexable) and cut at
# punctuation (so that an address or a dotted name gives its words, as FTS5 does); the
# query goes through the same fold. The 'simple' configuration: no stemming, no stop words,
# in any language. An index is used only when its expression is written exactly so: the
# query below and PG_INDEXES are built from the same strings.

_ACCENTED = "àáâãäåāăąçćčďèéêëēėęěìíîïīįłñńňòóôõöøōőùúûüūůűųýÿźżžÀÁÂÃÄÅĀĂĄÇĆČĎÈÉÊËĒĖĘĚÌÍÎÏĪĮŁÑŃŇÒÓÔÕÖØŌŐÙÚÛÜŪŮŰŲÝŸŹŻŽ"
_PLAIN = "aaaaaaaaacccdeeeeeeeeiiiiiilnnnoooooooouuuuuuuuyyzzz" * 2


def _fold(sql: str) -> str:
    return f"translate(lower({sql}), '{_ACCENTED}', '{_PLAIN}')"


def _document(sql: str) -> str:
    return (
        f"to_tsvector('simple'::regconfig, regexp_replace({_fold(sql)}, '[[:punct:]]+', ' ', 'g'))"
    )


def _pg_ticket(t: str = "") -> str:
    return _document(f"{t}subject || ' ' || {t}requester")


def _pg_account(a: str = "") -> str:
    return _document(f"{a}login || ' ' || {a}email || ' ' || {a}org")


def _pg_note(e: str = "") -> str:
    return _document(f"{e}note")


def _pg_message(m: str = "") -> str:
    return _document(f"{m}subject || ' ' || {m}body")


#: Made by migration 0007 (PostgreSQL only), the expression the query below uses.
PG_MESSAGE_INDEX = f"CREATE INDEX ix_message_search ON message USING gin (({_pg_message()}))"


# Not in the models (like the FTS5 objects): a migration creates them on PostgreSQL only.
PG_INDEXES = {
    "ix_ticket_search": f"CREATE INDEX ix_ticket_search ON ticket USING gin (({_pg_ticket()}))",
    "ix_account_search": f"CREATE INDEX ix_account_search ON account USING gin (({_pg_account()}))",
    "ix_event_search": f"CREATE INDEX ix_event_search ON event USING gin (({_pg_note()}))",
}
_PG_WORD = re.compile(r"[^\W_]+", re.UNICODE)


def ts_query(chunk: str) -> str:
    """A ``to_tsquery`` text for one chunk typed: its words as a phrase, the last one a
    prefix. Empty when the chunk has no word. Only letters and digits reach PostgreSQL."""
    words = _PG_WORD.findall(chunk)
    if not words:
        return ""
    return " <-> ".join(words) + ":*"


def _pg_clauses(text: str) -> list:
    clauses = []
    for n, chunk in enumerate(text.split()):
        query = ts_query(chunk)
        if not query:
            continue
        q = f"to_tsquery('simple'::regconfig, {_fold(f'CAST(:ts{n} AS text)')})"
        clauses.append(
            sql_text(
                # One set of ids per index, so that each is read through its own index.
                f"ticket.id IN (SELECT t.id FROM ticket t WHERE {_pg_ticket('t.')} @@ {q}"
                f" UNION SELECT t.id FROM ticket t WHERE t.account_id IN"
                f" (SELECT a.id FROM account a WHERE {_pg_account('a.')} @@ {q})"
                f" UNION SELECT e.ticket_id FROM event e WHERE {_pg_note('e.')} @@ {q}"
                f" UNION SELECT m.ticket_id FROM message m WHERE {_pg_message('m.')} @@ {q})"
            ).bindparams(**{f"ts{n}": query})
        )
    return clauses


def has_pg_text(session: Reader) -> bool:
    """True on PostgreSQL (unless a caller turned full text off with ``info["has_fts"]``)."""
    return connection_of(session).dialect.name == "postgresql" and read_info(session).get(
        "has_fts", True
    )


def has_fts(session: Reader) -> bool:
    """True on SQLite databases that have the ``ticket_fts`` table (migration 0002)."""
    if connection_of(session).dialect.name != "sqlite":
        return False
    return _has_table(session, FTS_TABLE, "has_fts")


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _like_clause(text: str):
    acc, e, m = tables.account, tables.event, tables.message
    clauses = []
    for chunk in text.split():
        like = _like(chunk)
        clauses.append(
            or_(
                T.c.subject.ilike(like, escape="\\"),
                T.c.requester.ilike(like, escape="\\"),
                exists(
                    select(acc.c.id)
                    .where(
                        acc.c.id == T.c.account_id,
                        or_(
                            acc.c.login.ilike(like, escape="\\"),
                            acc.c.email.ilike(like, escape="\\"),
                            acc.c.org.ilike(like, escape="\\"),
                        ),
                    )
                    .correlate(T)
                ),
                exists(
                    select(e.c.id)
                    .where(e.c.ticket_id == T.c.id, e.c.note.ilike(like, escape="\\"))
                    .correlate(T)
                ),
                exists(
                    select(m.c.id)
                    .where(
                        m.c.ticket_id == T.c.id,
                        or_(
                            m.c.subject.ilike(like, escape="\\"),
                            m.c.body.ilike(like, escape="\\"),
                        ),
                    )
                    .correlate(T)
                ),
            )
        )
    return clauses


def text_clauses(session: Reader, text: str, flt: "TicketFilter | None" = None) -> list:
    """WHERE clauses on the ticket table (``tables.ticket``) for a full-text search (none when ``text`` is blank).
    With ``flt``, the FTS5 match is narrowed by the filter's tags as well."""
    text = (text or "").strip()
    if not text:
        return []
    number = text.lstrip("#")
    by_id = [T.c.id == int(number)] if number.isdigit() and len(number) < 12 else []
    if has_fts(session):
        if not match_expression(text, flt):
            return [or_(*by_id)] if by_id else [T.c.id.is_(None)]
        # Matched once, here: the count and both runs of a page then read the ids from a
        # JSON array instead of asking FTS5 again.
        found = _fts_ids(session, text, flt)[1]
        matching = T.c.id.in_(
            sql_text("SELECT value FROM json_each(:fts_ids)").bindparams(fts_ids=found)
        )
        return [or_(matching, *by_id)]
    if has_pg_text(session):
        words = _pg_clauses(text)
        if not words:
            return [or_(*by_id)] if by_id else [T.c.id.is_(None)]
        return [or_(*by_id, and_(*words))] if by_id else words
    like = _like_clause(text)
    return [or_(*by_id, *like)] if by_id else like


def search(session: Reader, text: str, limit: int = 50, offset: int = 0) -> list[int]:
    """The ids of the tickets matching ``text``, best first (FTS5 rank on SQLite, newest
    first elsewhere)."""
    text = (text or "").strip()
    if not text:
        return []
    if has_fts(session):
        query = match_expression(text)
        ids: list[int] = []
        number = text.lstrip("#")
        if (
            number.isdigit()
            and offset == 0
            and len(number) < 12
            and session.execute(select(T.c.id).where(T.c.id == int(number))).first() is not None
        ):
            ids.append(int(number))
        if query:
            rows = session.execute(
                sql_text(
                    f"SELECT rowid FROM {FTS_TABLE} WHERE {FTS_TABLE} MATCH :fts ORDER BY rank LIMIT :limit OFFSET :offset"
                ).bindparams(fts=query, limit=limit, offset=offset)
            )
            ids += [r[0] for r in rows if r[0] not in ids]
        words = message_expression(text)
        if words and len(ids) < limit and has_message_fts(session):
            # Then the tickets whose conversation holds the words, best message first.
            rows = session.execute(
                sql_text(
                    f"SELECT m.ticket_id FROM {MESSAGE_FTS} f JOIN message m ON m.id = f.rowid"
                    f" WHERE {MESSAGE_FTS} MATCH :fts ORDER BY f.rank LIMIT :limit"
                ).bindparams(fts=words, limit=4 * limit)
            )
            ids += [r[0] for r in rows if r[0] not in ids]
        ids = ids[:limit]
        if not ids:
            return []
        found = set(session.execute(select(T.c.id).where(T.c.id.in_(ids))).scalars())
        return [i for i in ids if i in found]
    q = select(T.c.id).where(*text_clauses(session, text)).order_by(T.c.id.desc())
    return list(session.execute(q.offset(offset).limit(limit)).scalars())


# --- filtered, sorted pages -------------------------------------------------------------


def _where(session: Reader, flt: TicketFilter) -> list:
    where: list[Any] = []
    scope = read_info(session).get("scope")  # the providers the reader's role covers
    if scope:
        where.append(T.c.policy_key.in_(scope))
    if flt.queue:
        where.append(T.c.queue == flt.queue)
    if flt.policy:
        where.append(T.c.policy_key == flt.policy)
    if flt.state:
        where.append(T.c.state == flt.state)
    if flt.kind == "active":
        where.append(T.c.state_kind.in_(("open", "waiting")))
    elif flt.kind in ("open", "waiting", "done"):
        where.append(T.c.state_kind == flt.kind)
    if flt.assignee == "-":
        where.append(T.c.assignee.is_(None))
    elif flt.assignee:
        where.append(T.c.assignee == flt.assignee)
    where += text_clauses(session, flt.text, flt)
    return where


def count(session: Reader, flt: TicketFilter) -> int:
    text = (flt.text or "").strip()
    if (
        text
        and not text.lstrip("#").isdigit()
        and _tags_say_all(flt)
        and not read_info(session).get("scope")  # a role's providers: not in the tags
        and has_fts(session)
    ):
        return _fts_ids(session, text, flt)[0] if match_expression(text, flt) else 0
    return session.execute(
        select(func.count()).select_from(T).where(*_where(session, flt))
    ).scalar_one()


def _order(order: str) -> list:
    if order == "age":
        return [T.c.opened_at, T.c.id]
    if order == "state":
        return [T.c.state, T.c.due_at.is_(None), T.c.due_at, T.c.id]
    if order == "new":
        return [T.c.id.desc()]
    # Overdue and soonest first; tickets with no date after them, oldest first.
    return [T.c.due_at.is_(None), T.c.due_at, T.c.id]


def page(
    session: Reader, flt: TicketFilter, order: str = "due", limit: int = 50, offset: int = 0
) -> list[Row]:
    """One page of the rows ``flt`` matches, in ``order``: only these rows are read.

    The due-date order is read in two runs so that each can follow an index: the tickets
    with a date (``due_at, id``), then those without (``id``), instead of sorting the whole
    match on ``due_at IS NULL``.
    """
    offset = max(0, offset)
    where = _where(session, flt)
    if order != "due":
        return _page(session, where, _order(order), limit, offset)
    dated = where + [T.c.due_at.is_not(None)]
    rows: list[Row] = []
    if offset:
        n_dated = session.execute(select(func.count()).select_from(T).where(*dated)).scalar_one()
        if offset < n_dated:
            rows = _page(session, dated, [T.c.due_at, T.c.id], limit, offset)
    else:
        # The first page (a view just opened or searched) needs no count: the dated ones
        # number what it holds when they are fewer than a page.
        rows = _page(session, dated, [T.c.due_at, T.c.id], limit, offset)
        n_dated = len(rows)
    if len(rows) < limit:
        # Open and waiting tickets without a date are few: read them from the (queue,
        # state_kind, due_at) index and sort their ids ("id + 0" keeps SQLite from walking
        # the whole table in id order instead). Finished ones are most of the table: walk
        # the due_at index, which holds them in id order.
        by_id = [T.c.id + 0] if flt.kind in ("active", "open", "waiting") else [T.c.id]
        rows += _page(
            session,
            where + [T.c.due_at.is_(None)],
            by_id,
            limit - len(rows),
            max(0, offset - n_dated),
        )
    return rows


def _page(session: Reader, where: list, order_by: list, limit: int, offset: int) -> list[Row]:
    # The page's ids first, sorted on what the indexes hold (no row is read to sort), then
    # only those rows with their account.
    ids = select(T.c.id).where(*where).order_by(*order_by).offset(offset).limit(limit)
    q = (
        select(*ROW_COLUMNS)
        .select_from(T.outerjoin(tables.account, tables.account.c.id == T.c.account_id))
        .where(T.c.id.in_(ids))
        .order_by(*order_by)
    )
    return [Row(*r) for r in session.execute(q)]


def position(
    session: Reader, flt: TicketFilter, order: str, ticket_id: int, limit: int = 100_000
) -> int | None:
    """Where a ticket stands in a view (its row index), or None; scans at most ``limit`` ids."""
    q = select(T.c.id).where(*_where(session, flt)).order_by(*_order(order)).limit(limit)
    for i, tid in enumerate(session.execute(q).scalars()):
        if tid == ticket_id:
            return i
    return None
