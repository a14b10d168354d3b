"""One ingest run over a source of items (mails, reports): one transaction per item, the
item's dedupe marker and the source's cursor written in it, bad items quarantined, a progress
bar for people and a summary for everyone.

The write transaction is short: an item is read against its dedupe marker, then parsed and
checked (the handler's ``prepare``, the size and header bounds) with no transaction open,
and only then written. A 45 MB header no longer holds the database lock while a parser
works on it: the bounds refuse it before any parse, and another command's write goes on.

An item quarantined before (same bytes, same digest) is not parsed again: the run reports it
still quarantined. A triage run (``--policy`` or ``--queue``, the raw bytes fed back once a
volunteer has looked) tries it again.

Bad input never stops a run. An item a handler cannot use raises ``Reject(reason)``: what it
had written is rolled back to a savepoint and the item is quarantined in the same
transaction. An unexpected error (a bug met on hostile input) rolls the item back whole and
quarantines it in a fresh transaction, with the error as its reason. Only a source that
cannot be read at all (a lost IMAP connection) ends the run; what was committed stays.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from helpdesk.base.i18n import _
from helpdesk.base import clock
from helpdesk.storage.db import read_session, write_session
from helpdesk.base.errors import HelpdeskError
from helpdesk.ingest import store
from helpdesk.ingest.mailboxes import Item, Source, SourceError
from helpdesk.ingest.mime import header_problem
from helpdesk.ingest.routing import Directory
from helpdesk.ingest.summary import COUNTS, LOG_COUNTS, MAX_LISTED, Outcome, Progress, Summary  # noqa: F401 (re-exported)


class Reject(Exception):
    """This item cannot be used: quarantine it with this reason."""

    def __init__(self, reason: str, kind: str | None = None):
        super().__init__(reason)
        self.reason = reason
        self.kind = kind  # what the item turned out to be (a report found in a mailbox)


@dataclass
class Run:
    """What handlers share during a run."""

    url: str
    kind: str
    directory: Directory
    now: datetime
    policy: str | None = None  # --policy: every item belongs to this provider
    queue: str | None = (
        None  # --queue: every request goes to this queue (triage of quarantined mail)
    )


Handler = Callable[[Session, Item, str, Run], Outcome]


def known(seen: dict | None, run: Run) -> Outcome | None:
    """The outcome for an item already dealt with (its marker's facts), or None to try it:
    ingested before, it is a duplicate; quarantined before, it stays so unparsed, unless this
    run is a triage (``--policy``/``--queue``) or what routing rests on changed since
    (``Directory.fingerprint``): either may now give it a home."""
    if seen is None:
        return None
    if seen.get("outcome") != "quarantined":
        return Outcome(
            "duplicate", ticket=seen.get("ticket"), reason=_("already ingested (same content)")
        )
    if run.policy or run.queue:
        return None
    if seen.get("routing") != run.directory.fingerprint():
        return None  # a setting or an account changed since: it may have a home now
    return Outcome(
        "duplicate",
        quarantine=seen.get("quarantine"),
        reason=_("still quarantined, not parsed again (triage it with --policy or --queue)"),
    )


def prepare(item: Item, handler: Handler) -> Reject | None:
    """The checks and parsing done before the write transaction: the item's size, its header
    bounds, then whatever the handler parses (kept on the item, see ``items.parsed``). A
    refusal found here is returned, to be quarantined in the short transaction."""
    if item.too_large is not None:
        return Reject(
            _("too large to ingest ({size} bytes); only its first 64 KiB are kept here").format(
                size=item.too_large
            )
        )
    problem = header_problem(item.data)
    if problem is not None:
        return Reject(problem)
    prep = getattr(handler, "prepare", None)
    if prep is not None:
        try:
            prep(item)
        except Exception:  # noqa: BLE001 - kept on the item, met again by the handler
            pass
    return None


def process(
    session: Session,
    item: Item,
    run: Run,
    handler: Handler,
    refused: Reject | None = None,
) -> Outcome:
    """Deal with one item inside the caller's transaction (``refused``: what ``prepare``
    found, quarantined without calling the handler)."""
    digest = store.sha256(item.data)
    seen = store.seen_outcome(session, digest)
    earlier = known(seen, run)
    if earlier is not None:
        return earlier
    try:
        with session.begin_nested():
            if refused is not None:
                raise refused
            outcome = handler(session, item, digest, run)
    except (Reject, HelpdeskError) as exc:
        reason = exc.reason if isinstance(exc, Reject) else str(exc)
        kind = (exc.kind if isinstance(exc, Reject) else None) or run.kind
        if seen is not None:  # quarantined before, and still not usable
            return Outcome(
                "duplicate",
                quarantine=seen.get("quarantine"),
                reason=_("still quarantined: {reason}").format(reason=reason),
            )
        row = store.quarantine(
            session,
            data=item.data,
            kind=kind,
            source=f"{item.source} {item.key}",
            reason=reason,
            now=run.now,
        )
        store.mark(
            session,
            digest,
            "quarantined",
            now=run.now,
            quarantine=row.id,
            routing=run.directory.fingerprint(),
        )
        return Outcome("quarantined", quarantine=row.id, reason=row.reason)
    store.mark(
        session,
        digest,
        outcome.outcome,
        now=run.now,
        ticket=outcome.ticket or (outcome.tickets[0] if outcome.tickets else None),
    )
    if seen is not None:
        store.release_quarantined(session, digest)
    return outcome


def ingest(
    url: str,
    source: Source,
    *,
    kind: str,
    handler: Handler,
    policy: str | None = None,
    queue: str | None = None,
    show_progress: bool = False,
    now: datetime | None = None,
) -> Summary:
    now = now or clock.now()
    summary = Summary(kind=kind, source=source.label)
    with read_session(url) as s:
        directory = Directory.load(s)
        cursor = store.load_cursor(s, source.cursor_key) if source.cursor_key else {}
    run = Run(url=url, kind=kind, directory=directory, now=now, policy=policy, queue=queue)
    plan = getattr(source, "plan", None)
    if plan is not None:
        plan(cursor)
    progress = Progress(show_progress, f"ingest {kind}", len(source))
    try:
        for item in source:
            outcome = ingest_one(url, item, run, handler, source)
            summary.add(item.key, outcome)
            progress.advance()
    except SourceError as exc:
        summary.errors.append(str(exc))
    finally:
        progress.close()
    return summary


def ingest_one(
    url: str, item: Item, run: Run, handler: Handler, source: Source | None = None
) -> Outcome:
    """One item in its own transaction (with its source's position, if any)."""
    source = source or Source()
    try:
        # Read, then parse with no transaction open; the write comes last and is short.
        with read_session(url) as s:
            earlier = known(store.seen_outcome(s, store.sha256(item.data)), run)
        if earlier is not None:
            if item.position is not None and source.cursor_key:
                with write_session(url) as s:
                    store.save_cursor(s, source.cursor_key, item.position, run.now)
            return earlier
        refused = prepare(item, handler)
        with write_session(url) as s:
            outcome = process(s, item, run, handler, refused)
            if item.position is not None and source.cursor_key:
                store.save_cursor(s, source.cursor_key, item.position, run.now)
        return outcome
    except IntegrityError:
        # Another run committed the same item (or Message-ID) first.
        with write_session(url) as s:
            if item.position is not None and source.cursor_key:
                store.save_cursor(s, source.cursor_key, item.position, run.now)
        return Outcome("duplicate", reason=_("ingested meanwhile by another run"))
    except Exception as exc:  # a bug met on this input: keep the input, go on with the next
        reason = _("internal error while ingesting: {error}").format(
            error=f"{type(exc).__name__}: {exc}"
        )
        with write_session(url) as s:
            digest = store.sha256(item.data)
            seen = store.seen_outcome(s, digest)
            if seen is not None and seen.get("outcome") != "quarantined":
                return Outcome("duplicate", ticket=seen.get("ticket"))
            row = None
            if seen is None:
                row = store.quarantine(
                    s,
                    data=item.data,
                    kind=run.kind,
                    source=f"{item.source} {item.key}",
                    reason=reason,
                    now=run.now,
                )
                store.mark(
                    s,
                    digest,
                    "quarantined",
                    now=run.now,
                    quarantine=row.id,
                    routing=run.directory.fingerprint(),
                )
            if item.position is not None and source.cursor_key:
                store.save_cursor(s, source.cursor_key, item.position, run.now)
        if row is None:
            return Outcome(
                "duplicate",
                quarantine=seen.get("quarantine") if seen else None,
                reason=_("still quarantined: {reason}").format(reason=reason),
            )
        return Outcome("quarantined", quarantine=row.id, reason=row.reason)
