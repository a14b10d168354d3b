"""The ``ingest`` and ``quarantine`` commands of the CLI (``helpdesk.cli.main`` hands over here).

    helpdesk ingest mail PATH|URL [--policy KEY] [--queue QUEUE]
    helpdesk ingest arf PATH|URL [--policy KEY]
    helpdesk ingest dmarc PATH|URL [--policy KEY]
    helpdesk ingest postfix LOG [LOG...] [--year YYYY] [--tz ZONE] [--window PT1H] [--from-start]
    helpdesk ingest sources          every source of helpdesk.toml (for the ingest timer)
    helpdesk quarantine list [--kind K] [--all] [--limit N] [--offset N]
    helpdesk quarantine show ID [--raw]

PATH is a Maildir, an mbox, a folder of files or one file; URL is ``imap://USER@HOST/Folder``
or ``imaps://...`` (password in ``HELPDESK_IMAP_PASSWORD``). Exit codes: 0 when the run went
through (items it could not use are quarantined, not errors), 2 when the source could not be
read (the summary says how far it went).
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Sequence

from helpdesk.cli.common import user as cli_user
from helpdesk.base import bounds, queues
from helpdesk.base.i18n import _
from helpdesk.cli.parser import command, group, quiet_option

KINDS = ("mail", "arf", "dmarc", "postfix")
HUMAN_LINES = 50  # items listed one by one for people (all of them with --json, up to 1000)
QUEUES = queues.PROCEDURES  # what triage may send a request to


def add_ingest(commands) -> None:
    """The ``ingest`` sub-commands."""
    ing = group(commands, "ingest")
    for kind, text in (
        ("mail", _("requests and replies from a Maildir, an mbox, files or an IMAP mailbox")),
        ("arf", _("abuse complaints (ARF, X-ARF) from a mailbox or files")),
        ("dmarc", _("DMARC aggregate reports (.xml, .xml.gz, .zip, or mails carrying them)")),
    ):
        p = command(ing, kind, do_ingest, text)
        p.add_argument("source", metavar="PATH|URL")
        p.add_argument("--policy", help=_("every item belongs to this provider"))
        if kind == "mail":
            p.add_argument(
                "--queue", choices=QUEUES, help=_("every new request goes to this queue (triage)")
            )
    p = command(
        ing,
        "postfix",
        do_ingest,
        _("Postfix logs: per-sender volumes and bounces, alerts past the thresholds"),
    )
    p.add_argument("paths", nargs="+", metavar="LOG")
    p.add_argument(
        "--year",
        type=bounds.year,
        help=_("year of classic syslog time stamps (default: the file's)"),
    )
    p.add_argument(
        "--tz", help=_("time zone of classic syslog time stamps (default: this machine's)")
    )
    p.add_argument("--window", default="PT1H", help=_("sliding window, ISO-8601 (default PT1H)"))
    p.add_argument(
        "--from-start",
        action="store_true",
        help=_("read the whole file again, ignoring where the last run stopped"),
    )

    p = command(
        ing,
        "sources",
        do_ingest,
        _("read every source helpdesk.toml names: [[ingest.sources]] and [ingest] postfix_logs"),
    )
    for parser in ing.choices.values():  # each is run by the ingest timer
        quiet_option(parser)


def add_quarantine(commands) -> None:
    """The ``quarantine`` sub-commands."""
    qu = group(commands, "quarantine")
    p = command(qu, "list", do_quarantine_list, _("list quarantined items, newest first"))
    p.add_argument("--kind", choices=KINDS)
    p.add_argument("--all", action="store_true", help=_("include items released since"))
    p.add_argument("--limit", type=bounds.limit, default=100)
    p.add_argument("--offset", type=bounds.offset, default=0)
    p = command(
        qu, "show", do_quarantine_show, _("show one quarantined item: reason and a cleaned preview")
    )
    p.add_argument("--reason", default="", help=_("why you read it (recorded with the reading)"))
    p.add_argument("id", type=bounds.ident)
    p.add_argument("--raw", action="store_true", help=_("write the exact bytes to standard output"))


def source_lock(kind: str, source: str) -> tuple[str, str]:
    """The lock of one ingest source (``helpdesk.storage.locks``) and how it is named to a
    person: two runs reading the same mailbox or log, on this host or another, never both
    read it. A path counts by its absolute form; an IMAP URL as written."""

    from helpdesk.base.files import shown
    from helpdesk.storage import locks

    place = source if "://" in source else os.path.abspath(os.path.expanduser(source))
    return locks.source_lock(kind, place), f"ingest {kind} {shown(source)}"


def do_ingest(args, out) -> int:
    if args.sub == "sources":
        return do_ingest_sources(args, out)
    from helpdesk.storage.locks import Taken

    quiet = getattr(args, "quiet", False)  # a timer's run: nothing said when nothing came
    try:
        summary = _ingest_one(args, progress=not out.json and not quiet)
    except Taken as taken:  # another run reads this source: it does the work
        if quiet:
            return 0
        from helpdesk.cli import common

        return common.lock_taken(out, taken)
    if not (quiet and not summary.items and not summary.errors):
        _print(out, summary)
    return 2 if summary.errors else 0


def _ingest_one(args, progress: bool, environ: dict | None = None):
    if args.sub == "postfix":
        return _postfix(args, progress)
    from helpdesk.cli import common
    from helpdesk.storage import db
    from helpdesk.base.errors import BadInput

    with common.session(args):
        pass  # checks the schema
    url = db.resolve_url(getattr(args, "db", None))
    from helpdesk.ingest import intake, reports, pipeline
    from helpdesk.ingest.mailboxes import SourceError, open_source

    if args.policy:
        _check_policy(url, args.policy)
    handler = {
        "mail": intake.handle_mail,
        "arf": reports.handle_arf,
        "dmarc": reports.handle_dmarc,
    }[args.sub]
    try:
        source = open_source(args.source, environ=environ)
    except SourceError as exc:
        raise BadInput(str(exc)) from None
    from helpdesk.storage import locks

    with locks.hold(url, *source_lock(args.sub, args.source)), source:
        return pipeline.ingest(
            url,
            source,
            kind=args.sub,
            handler=handler,
            policy=args.policy,
            queue=getattr(args, "queue", None),
            show_progress=progress,
        )


def do_ingest_sources(args, out) -> int:
    """``ingest sources``: every mailbox of ``[[ingest.sources]]`` and the logs of
    ``[ingest] postfix_logs`` in helpdesk.toml, one after the other; a source that cannot be
    read is said and the others are still read (exit 2)."""
    import argparse

    from helpdesk.base import config
    from helpdesk.base.errors import BadInput, HelpdeskError

    cfg = config.load()
    quiet = getattr(args, "quiet", False)
    progress = not out.json and not quiet
    runs: list[tuple[argparse.Namespace, dict | None]] = []
    for source in config.ingest_sources(cfg):
        one = argparse.Namespace(**vars(args))
        one.sub, one.source, one.policy, one.queue = source["kind"], source["target"], None, None
        environ = None
        if source["environ"]:
            environ = {**os.environ, **source["environ"]}
        runs.append((one, environ))
    logs = list(cfg.value("ingest.postfix_logs") or [])
    if logs:
        one = argparse.Namespace(**vars(args))
        one.sub, one.paths, one.year, one.tz = "postfix", logs, None, None
        one.window, one.from_start = "PT1H", False
        runs.append((one, None))
    if not runs:
        raise BadInput(
            _(
                "no source to read: add [[ingest.sources]] or [ingest] postfix_logs to helpdesk.toml ('helpdesk config show' says which file)"
            )
        )
    summaries, failed = [], 0
    for one, environ in runs:
        try:
            summary = _ingest_one(one, progress, environ)
        except HelpdeskError as exc:
            if exc.exit_code == 0:  # its lock is taken: another run reads this source
                if not quiet and not out.json:
                    from helpdesk.cli import common

                    common.lock_taken(out, exc)
                continue
            failed += 1
            where = one.source if one.sub != "postfix" else ", ".join(one.paths)
            message = f"{one.sub} {where}: {exc}"
            summaries.append({"kind": one.sub, "source": where, "errors": [message]})
            sys.stderr.write(_("error") + f": {message}\n")
            continue
        if summary.errors:
            failed += 1
        summaries.append(summary.as_dict())
        if not out.json and not (quiet and not summary.items and not summary.errors):
            _print(out, summary)
    if out.json:
        out.data(summaries)
    return 2 if failed else 0


def _check_policy(url: str, key: str) -> None:
    from helpdesk.storage.db import read_session
    from helpdesk.base.errors import BadInput
    from helpdesk.storage.models import Policy

    with read_session(url) as s:
        if s.get(Policy, key) is None:
            raise BadInput(_("unknown policy {key!r}").format(key=key))


def _postfix(args, progress: bool):
    """Reads the logs while the database layer loads beside (``logs.ingest_postfix_beside``):
    nothing here imports it. The clock and the schema check are the database side's."""

    from helpdesk.base import clock
    from helpdesk.base.errors import BadInput
    from helpdesk.ingest import postfix_log

    tz = None
    if args.tz:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            tz = ZoneInfo(args.tz)
        except (ZoneInfoNotFoundError, ValueError):
            raise BadInput(_("unknown time zone {tz!r}").format(tz=args.tz)) from None
    try:
        delta = clock.parse_duration(args.window)
        from datetime import datetime, timedelta

        start = datetime(2000, 1, 1)
        window = (start + delta) - start
    except clock.BadDate as exc:
        raise BadInput(str(exc)) from None
    if window < timedelta(minutes=1):
        raise BadInput(_("the window must be at least one minute"))
    for path in args.paths:
        if not os.path.isfile(path):
            raise BadInput(_("no such log file: {path}").format(path=path))
    own_clock = bool(getattr(args, "now", None) or os.environ.get("HELPDESK_NOW"))
    options = {
        "year": args.year,
        "tz": tz,
        "window": window,
        "from_start": args.from_start,
        "show_progress": progress,
    }
    if not hasattr(os, "fork"):
        try:
            url = _postfix_prologue(getattr(args, "db", None), own_clock, args.paths)
            return postfix_log.ingest_postfix(url, args.paths, **options)
        finally:
            _HELD.close()
    return postfix_log.ingest_postfix_beside(
        getattr(args, "db", None),
        args.paths,
        prologue=lambda db: _postfix_prologue(db, own_clock, args.paths),
        **options,
    )


_HELD = contextlib.ExitStack()  # the locks of ingest postfix's database side (a child process)


def _postfix_prologue(db_arg: str | None, own_clock: bool, paths: Sequence[str] = ()) -> str:
    """What the other commands do before they run (``cli.main``, ``cli._session``): a training
    database's clock, the schema check. Returns the database URL."""
    from helpdesk.cli import common
    from helpdesk.storage import db

    url = db.resolve_url(db_arg)
    if not own_clock:
        from helpdesk.training import clock as training_clock

        training_clock.adopt_clock(url)
    common.check_schema(url)
    from helpdesk.storage import locks

    # Each log's lock, held until this database side ends (it ends with the run, by
    # os._exit: the lock file's descriptor or the PostgreSQL connection goes with it).
    for path in sorted(set(paths)):
        _HELD.enter_context(locks.hold(url, *source_lock("postfix", path)))
    return url


def _print(out, summary) -> None:
    from helpdesk.base.labels import label

    data = summary.as_dict()
    if out.json:
        out.data(data)
        for error in summary.errors:
            sys.stderr.write(f"error: {error}\n")
        return
    c = data["counts"]
    if summary.kind == "postfix":
        out.line(
            _(
                "Postfix {source}: {lines} lines, {events} events; alerts: {o} opened, {u} added to open ones, {n} for senders without account; {q} line(s) quarantined."
            ).format(
                source=summary.source,
                lines=c.get("lines", 0),
                events=c.get("events", 0),
                o=c.get("alerts_opened", 0),
                u=c.get("alerts_updated", 0),
                n=c.get("alerts_unmatched", 0),
                q=c.get("quarantined", 0),
            )
        )
    else:
        out.line(
            _(
                "Ingest {kind} from {source}: {o} opened, {t} threaded ({a} acknowledged), {u} updated, {r} recorded, {d} duplicate(s), {q} quarantined."
            ).format(
                kind=summary.kind,
                source=summary.source,
                o=c["opened"],
                t=c["threaded"],
                a=c["acknowledged"],
                u=c["updated"],
                r=c["recorded"],
                d=c["duplicates"],
                q=c["quarantined"],
            )
        )
    if c.get("bounces") or c.get("bounces_unmatched") or c.get("delivery_notices"):
        out.line(
            _(
                "Bounces: {m} returned mail(s) of ours marked on their tickets, {u} unmatched (helpdesk outbox bounces), {d} delivery notice(s)."
            ).format(
                m=c.get("bounces", 0),
                u=c.get("bounces_unmatched", 0),
                d=c.get("delivery_notices", 0),
            )
        )
    shown = [item for item in data["items"] if item.get("outcome") != "duplicate"]
    for item in shown[:HUMAN_LINES]:
        where = (
            f"#{item['ticket']}"
            if item.get("ticket")
            else (
                _("quarantine #{id}").format(id=item["quarantine"])
                if item.get("quarantine")
                else ""
            )
        )
        what = ", ".join(
            label("queue-short", item[k]) if k == "queue" else str(item[k])
            for k in ("queue", "policy", "account")
            if item.get(k)
        )
        line = f"  {item['item']}: {label('ingest-outcome', item['outcome'])} {where}"
        if what:
            line += f" ({what})"
        if item.get("reason"):
            line += f" — {item['reason']}"
        out.line(line)
    if len(shown) > HUMAN_LINES:
        out.line(f"  … (+{len(shown) - HUMAN_LINES}, --json)")  # no words: nothing to translate
    for error in summary.errors:
        out.line(_("error: {error}").format(error=error), style="red")


def do_quarantine_list(args, out) -> int:
    from helpdesk.cli import common
    from helpdesk.ingest import quarantine
    from helpdesk.service import api

    with common.session(args) as s:
        actor = api.actor_for(s, cli_user(args), required=False)
        rows = quarantine.rows(
            s,
            actor=actor,
            kind=args.kind,
            include_released=args.all,
            limit=args.limit,
            offset=args.offset,
        )
        if out.json:
            out.data(rows)
        else:
            out.table(
                ["id", "kind", "received", "bytes", "reason", "source"],
                [
                    [r["id"], r["kind"], r["received_at"], r["bytes"], r["reason"], r["source"]]
                    for r in rows
                ],
            )
        return 0


def do_quarantine_show(args, out) -> int:
    from helpdesk.cli import common
    from helpdesk.ingest import quarantine

    from helpdesk.service import api

    with common.session(args) as s:
        actor = api.actor_for(s, cli_user(args), required=False)
        row = quarantine.get(s, args.id, actor)
        # Raw input may hold anyone's personal data: reading it is recorded.
        common.read_sensitive(
            args,
            "quarantine",
            data={"quarantine": row.id, "raw": bool(args.raw)},
            reason=args.reason,
        )
        if args.raw:
            sys.stdout.buffer.write(row.content)
            sys.stdout.flush()
            return 0
        view = quarantine.view(row)
    if out.json:
        out.data(view)
    else:
        for key in ("id", "kind", "received_at", "bytes", "sha256", "released", "source", "reason"):
            out.line(f"{key:<12} {view[key]}")
        out.line("")
        out.line(view["preview"])
    return 0
