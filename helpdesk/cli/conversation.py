"""The CLI commands of a ticket's conversation (``helpdesk.cli.main`` hands over here)::

    helpdesk ticket reply ID (--text TEXT | --file F | --template KEY) [--to ADDRESS]
    helpdesk ticket comment ID --text TEXT            an internal note, never mailed
    helpdesk ticket ask ID --missing ITEM [ITEM...]    ask the requester for what is missing
    helpdesk ticket account ID LOGIN                   set the account a ticket is about ("-": none)
    helpdesk ticket merge SRC INTO                     same provider and queue
    helpdesk ticket convert ID QUEUE [--field K=V]...  a general ticket becomes a procedure
    helpdesk ticket replies [--lang fr|en]             the saved replies
    helpdesk ticket list --search TEXT                 full text, message bodies included

All but ``replies`` and ``list`` need ``--as``. Exit codes as everywhere: 1 refused by a
rule (a credential in a reply names the provider's article), 2 bad input.
"""

from __future__ import annotations

import sys
from pathlib import Path

from helpdesk.cli.common import user as cli_user
from helpdesk.service.conversation_text import attachment_line, message_heading, summary_lines
from helpdesk.base.i18n import _
from helpdesk.cli.parser import command

PROCEDURES = ("password-reset", "closure", "abuse", "mail-reputation")


def _on_ticket(ticket_sub, name: str, func, help: str, *, versioned: bool = False):
    """A sub-command on one ticket (``ID``), guarded by ``--if-version`` when it changes it."""
    p = command(ticket_sub, name, func, help)
    p.add_argument("id", type=int)
    if versioned:
        p.add_argument(
            "--if-version", type=int, help=_("refuse if the ticket changed since this version")
        )
    return p


def add_parsers(ticket_sub) -> None:
    p = _on_ticket(
        ticket_sub,
        "reply",
        _reply,
        _("mail the requester (or a registered contact of the account) in the ticket's thread"),
        versioned=True,
    )
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--text", help=_("the text of the reply"))
    what.add_argument(
        "--file", help=_("a file holding the text of the reply ('-': standard input)")
    )
    what.add_argument(
        "--template", metavar="KEY", help=_("a saved reply (helpdesk ticket replies)")
    )
    p.add_argument(
        "--to",
        metavar="ADDRESS",
        help=_("the requester (default) or a registered contact of the account"),
    )
    p = _on_ticket(
        ticket_sub,
        "comment",
        _comment,
        _("add an internal note for the other volunteers (never mailed)"),
    )
    p.add_argument("--text", required=True)
    p = _on_ticket(
        ticket_sub,
        "ask",
        _ask,
        _("ask the requester for what the procedure lacks; the ticket waits for the answer"),
    )
    p.add_argument("--missing", nargs="+", required=True, metavar="ITEM")
    p.add_argument("--to", metavar="ADDRESS")
    p = _on_ticket(
        ticket_sub,
        "account",
        _account,
        _("set or change the account a ticket is about ('-': none)"),
        versioned=True,
    )
    p.add_argument("login")
    p = command(
        ticket_sub, "merge", _merge, _("merge ticket SRC into INTO (same provider and queue)")
    )
    p.add_argument("src", type=int)
    p.add_argument("into", type=int)
    p = _on_ticket(
        ticket_sub,
        "convert",
        _convert,
        _("turn a general ticket into a procedure, keeping its conversation"),
    )
    p.add_argument("queue", choices=PROCEDURES)
    p.add_argument("--field", action="append", default=[], metavar="K=V")
    command(ticket_sub, "replies", do_replies, _("list the saved replies"))


def _read_text(args) -> str | None:
    from helpdesk.base.errors import BadInput

    if getattr(args, "file", None) is None:
        return getattr(args, "text", None)
    if args.file == "-":
        return sys.stdin.read()
    from helpdesk.base import files

    try:
        return files.read_text(Path(args.file))  # a FIFO or a device is refused, not waited on
    except UnicodeDecodeError as exc:
        raise BadInput(
            _("cannot read {path}: {error}").format(
                path=files.shown(args.file), error=exc.__class__.__name__
            )
        ) from None


def do_replies(args, out) -> int:
    from helpdesk.service import conversation

    lang = getattr(args, "lang", None) or "fr"
    if out.json:
        out.data(conversation.saved_replies(lang))
    else:  # the key (what --template takes) and the subject the reply leaves with
        from rich.text import Text

        subjects = conversation.saved_reply_subjects(lang)
        width = max((len(k) for k in subjects), default=0) + 2
        for key, subject in subjects.items():
            out.line(Text(f"{key:<{width}}", style="bold"), Text(subject))
    return 0


def _acting(step):
    """A command that changes a ticket as the volunteer given: ``step(s, args, actor)``
    returns what it prints, as data (``--json``) and as a sentence."""

    def run(args, out) -> int:
        from helpdesk.cli import common
        from helpdesk.service import api

        user = cli_user(args)
        with common.session(args, write=True) as s:
            data, said = step(s, args, api.actor_for(s, user))
        if out.json:
            out.data(data)
        else:
            out.line(said)
        return 0

    run.__name__ = run.__qualname__ = "do_" + step.__name__.lstrip("_")
    return run


@_acting
def _reply(s, args, actor):
    from helpdesk.service import conversation

    row = conversation.reply(
        s,
        args.id,
        actor,
        text=_read_text(args),
        template=args.template,
        to=args.to,
        expected_version=args.if_version,
    )
    data = {
        "ticket": args.id,
        "outbox": row.id,
        "to": row.to_addr,
        "subject": row.subject,
        "status": row.status,
    }
    return data, _("#{id}: reply queued to {to}: {subject}").format(
        id=args.id, to=row.to_addr, subject=row.subject
    )


@_acting
def _ask(s, args, actor):
    from helpdesk.service import conversation

    row = conversation.ask(s, args.id, actor, args.missing, to=args.to)
    data = {
        "ticket": args.id,
        "outbox": row.id,
        "to": row.to_addr,
        "subject": row.subject,
        "missing": args.missing,
    }
    return data, _("#{id}: asked {to} for: {items}").format(
        id=args.id, to=row.to_addr, items=", ".join(args.missing)
    )


@_acting
def _comment(s, args, actor):
    from helpdesk.service import conversation

    msg = conversation.comment(s, args.id, actor, args.text)
    return {"ticket": args.id, "message": msg.id}, _("#{id}: note added (never mailed)").format(
        id=args.id
    )


@_acting
def _account(s, args, actor):
    from helpdesk.service import api, conversation

    outcome = conversation.set_account(
        s,
        args.id,
        actor,
        None if args.login == "-" else args.login,
        expected_version=args.if_version,
    )
    data = api.ticket_view(s, outcome.ticket, actor)
    return data, _("#{id}: account {login}").format(id=args.id, login=data["account"] or "-")


@_acting
def _merge(s, args, actor):
    from helpdesk.service import conversation

    into = conversation.merge(s, args.src, args.into, actor)
    return {"ticket": args.src, "merged_into": into.id}, _("#{src} merged into #{into}").format(
        src=args.src, into=into.id
    )


@_acting
def _convert(s, args, actor):
    from helpdesk.cli import common
    from helpdesk.service import api, conversation

    outcome = conversation.convert(s, args.id, actor, args.queue, common.pairs(args.field))
    data = api.ticket_view(s, outcome.ticket, actor)
    data["converted_from"] = args.id
    return data, _("#{id} converted: {queue} ticket #{new} ({state})").format(
        id=args.id, queue=args.queue, new=outcome.ticket.id, state=data["state_label"]
    )


def do_search(args, out) -> int:
    """``ticket list --search TEXT``: the TUI's search, with the list's filters."""
    from helpdesk.cli import common
    from helpdesk.base import clock
    from helpdesk.storage import search
    from helpdesk.storage.filters import TicketFilter

    flt = TicketFilter(
        queue=args.queue,
        policy=args.policy,
        state=args.state,
        assignee=args.assignee,
        kind="all" if (args.all or args.state) else "active",
        text=args.search,
    )
    with common.session(args) as s:
        rows = search.page(s, flt, order=args.sort, limit=args.limit, offset=args.offset)
        if args.account:
            rows = [r for r in rows if r.account == args.account]
        if args.overdue:
            now = clock.now()
            rows = [r for r in rows if r.due_at is not None and r.due_at <= now]
        data = [
            {
                "id": r.id,
                "queue": r.queue,
                "policy": r.policy,
                "state": r.state,
                "state_kind": r.state_kind,
                "account": r.account,
                "requester": r.requester,
                "subject": r.subject,
                "due_at": clock.iso(r.due_at),
                "opened_at": clock.iso(r.opened_at),
                "assignee": r.assignee,
            }
            for r in rows
        ]
        if out.json:
            out.data(data)
        else:
            from helpdesk.cli.ticket_table import print_tickets

            print_tickets(out, s, data)
    return 0


def print_conversation(out, view: dict) -> None:
    """The conversation under ``ticket show``: each message whole, the quoted history folded."""
    from rich.text import Text

    for line, style in summary_lines(view):
        out.line(line, style=style)
    if not view.get("messages"):
        return
    out.line("")
    out.line(_("Conversation:"), style="bold")
    for m in view["messages"]:
        out.line(Text(message_heading(m, view.get("timezone") or "UTC"), style="bold"))
        if m["subject"]:
            out.line(Text("    " + _("Subject: {s}").format(s=m["subject"])))
        for a in m["attachments"]:
            out.line(Text("    " + attachment_line(a)))
        for line in (m["new"] or "").splitlines():
            out.line(Text("    " + line))
        if m["quoted"]:
            out.line(
                Text(
                    "    " + _("[{n} quoted lines folded]").format(n=len(m["quoted"].splitlines()))
                ),
                style="dim",
            )
