"""The ``ingest`` and ``quarantine`` commands of the CLI (``helpdesk.cli.main`` hands over here).

    helpdesk ingest mail PATH|URL [--policy KEY] [--queue QUEUE]
    helpdesk ingest arf PATH|URL [--policy KEY]
    helpdesk ingest dmarc PATH|URL [--policy KEY]
    helpdesk ingest postfix LOG [LOG...] [--year YYYY] [--tz ZONE] [--window PT1H] [--from-start]
    helpdesk quarantine list [--kind K] [--all] [--limit N] [--offset N]
    helpdesk quarantine show ID [--raw]

PATH is a Maildir, an mbox, a folder of files or one file; URL is ``imap://USER@HOST/Folder``
or ``imaps://...`` (password in ``HELPDESK_IMAP_PASSWORD``). Exit codes: 0 when the run went
through (items it could not use are quarantined, not errors), 2 when the source could not be
read (the summary says how far it went).
"""

from __future__ import annotations

import sys

from helpdesk.base import bounds
from helpdesk.base.i18n import _

KINDS = ("mail", "arf", "dmarc", "postfix")
HUMAN_LINES = 50  # items listed one by one for people (all of them with --json, up to 1000)
QUEUES = ("password-reset", "closure", "abuse", "mail-reputation")


def add_parsers(sub, cmd) -> None:
    """The ``ingest`` and ``quarantine`` sub-commands (``cmd`` adds the global options)."""
    ing = sub.add_parser(
        "ingest", help=_("read mail, abuse reports, DMARC reports or Postfix logs")
    ).add_subparsers(dest="sub", metavar="SUB", required=True)
    for kind, text in (
        ("mail", _("requests and replies from a Maildir, an mbox, files or an IMAP mailbox")),
        ("arf", _("abuse complaints (ARF, X-ARF) from a mailbox or files")),
        ("dmarc", _("DMARC aggregate reports (.xml, .xml.gz, .zip, or mails carrying them)")),
    ):
        p = cmd(ing, kind, text)
        p.add_argument("source", metavar="PATH|URL")
        p.add_argument("--policy", help=_("every item belongs to this provider"))
        if kind == "mail":
            p.add_argument(
                "--queue", choices=QUEUES, help=_("every new request goes to this queue (triage)")
            )
    p = cmd(
        ing,
        "postfix",
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

    qu = sub.add_parser("quarantine", help=_("input ingestion could not use")).add_subparsers(
        dest="sub", metavar="SUB", required=True
    )
    p = cmd(qu, "list", _("list quarantined items, newest first"))
    p.add_argument("--kind", choices=KINDS)
    p.add_argument("--all", action="store_true", help=_("include items released since"))
    p.add_argument("--limit", type=bounds.limit, default=100)
    p.add_argument("--offset", type=bounds.offset, default=0)
    p = cmd(qu, "show", _("show one quarantined item: reason and a cleaned preview"))
    p.add_argument("--reason", default="", help=_("why you read it (recorded with the reading)"))
    p.add_argument("id", type=bounds.ident)
    p.add_argument("--raw", action="store_true", help=_("write the exact bytes to standard output"))


def do_ingest(args, out) -> int:
    progress = not out.json
    if args.sub == "postfix":
        summary = _postfix(args, progress)
    else:
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
            source = open_source(args.source)
        except SourceError as exc:
            raise BadInput(str(exc)) from None
        with source:
            summary = pipeline.ingest(
                url,
                source,
                kind=args.sub,
                handler=handler,
                policy=args.policy,
                queue=getattr(args, "queue", None),
                show_progress=progress,
            )
    _print(out, summary)
    return 2 if summary.errors else 0


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
    import os

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
        url = _postfix_prologue(getattr(args, "db", None), own_clock)
        return postfix_log.ingest_postfix(url, args.paths, **options)
    return postfix_log.ingest_postfix_beside(
        getattr(args, "db", None),
        args.paths,
        prologue=lambda db: _postfix_prologue(db, own_clock),
        **options,
    )


def _postfix_prologue(db_arg: str | None, own_clock: bool) -> str:
    """What the other commands do before they run (``cli.main``, ``cli._session``): a training
    database's clock, the schema check. Returns the database URL."""
    from helpdesk.cli import common
    from helpdesk.storage import db

    url = db.resolve_url(db_arg)
    if not own_clock:
        from helpdesk.training import clock as training_clock

        training_clock.adopt_clock(url)
    common.check_schema(url)
    return url


def _print(out, summary) -> None:
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
            else (f"quarantine #{item['quarantine']}" if item.get("quarantine") else "")
        )
        what = ", ".join(str(item[k]) for k in ("queue", "policy", "account") if item.get(k))
        line = f"  {item['item']}: {item['outcome']} {where}"
        if what:
            line += f" ({what})"
        if item.get("reason"):
            line += f" — {item['reason']}"
        out.line(line)
    if len(shown) > HUMAN_LINES:
        out.line(f"  … (+{len(shown) - HUMAN_LINES}, --json)")  # no words: nothing to translate
    for error in summary.errors:
        out.line(_("error: {error}").format(error=error), style="red")


def do_quarantine(args, out) -> int:
    import os

    from helpdesk.cli import common
    from helpdesk.ingest import quarantine
    from helpdesk.service import api

    with common.session(args) as s:
        user = getattr(args, "user", None) or os.environ.get("HELPDESK_USER")
        actor = api.actor_for(s, user, required=False)
        if args.sub == "list":
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
