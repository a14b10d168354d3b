"""The CLI of the service actions and connectors (``helpdesk.cli.main`` hands over here)::

    helpdesk actions list [--status S] [--ticket N]     the queue
    helpdesk actions run [--limit N]                    carry out what is due (sweep does it too)
    helpdesk actions retry ID --note TEXT               a failed or uncertain action, again (oncall)
    helpdesk actions mark-done ID --note TEXT           ... or record that it was done (oncall)
    helpdesk connectors check [POLICY]                  try each connector, read-only
    helpdesk account sync POLICY                        accounts and last logins from the services
    helpdesk policyd [--listen HOST:PORT|unix:PATH]     Postfix's policy service
    helpdesk ticket act ID ACTION --dry-run             what a step would do, doing nothing

Exit codes as everywhere: 0 done, 1 refused by a rule (or ``actions run`` left something
failed or uncertain, ``connectors check`` found one not working), 2 bad input.
"""

from __future__ import annotations

import os

from helpdesk.cli.common import user as cli_user
from helpdesk.base.i18n import _
from helpdesk.base.labels import label
from helpdesk.cli.parser import command, group, quiet_option


def add_actions(commands) -> None:
    acts = group(commands, "actions")
    p = command(acts, "list", do_actions_list, _("list the service actions"))
    p.add_argument(
        "--status", choices=["pending", "running", "done", "failed", "uncertain", "would-have-done"]
    )
    p.add_argument("--ticket", type=int)
    p.add_argument("--limit", type=int, default=100)
    p = command(acts, "run", do_actions_run, _("carry out the service actions that are due"))
    p.add_argument("--limit", type=int, default=200)
    quiet_option(p)
    p = command(
        acts,
        "retry",
        do_actions_retry,
        _("run a failed or uncertain service action again (oncall)"),
    )
    p.add_argument("id", type=int)
    p.add_argument("--note", required=True, help=_("why (what was fixed, what was checked)"))
    p = command(
        acts,
        "mark-done",
        do_actions_mark_done,
        _("record that a service action was done by hand (oncall)"),
    )
    p.add_argument("id", type=int)
    p.add_argument("--note", required=True, help=_("how it is known"))


def add_connectors(commands) -> None:
    con = group(commands, "connectors")
    p = command(con, "check", do_connectors, _("try each connector read-only and say what works"))
    p.add_argument("policy", nargs="?")


def add_account_sync(account_sub) -> None:
    p = command(
        account_sub,
        "sync",
        do_account_sync,
        _("load a provider's accounts and last logins from its services"),
    )
    p.add_argument("policy")


def add_policyd(commands) -> None:
    p = command(commands, "policyd", do_policyd)
    p.add_argument(
        "--listen", help=_("HOST:PORT or unix:/path (default: [policyd] listen in helpdesk.toml)")
    )


def _actor(args, s):
    from helpdesk.service import api

    return api.actor_for(s, cli_user(args))


def _url(args) -> str:
    from helpdesk.storage import db

    return db.resolve_url(getattr(args, "db", None))


# --- helpdesk actions ----------------------------------------------------------------------


def do_actions_run(args, out) -> int:
    from helpdesk.cli import common
    from helpdesk.outgoing import actions as service_actions

    from helpdesk.storage.locks import Taken

    with common.session(args):
        pass  # checks the schema
    quiet = getattr(args, "quiet", False)
    try:
        report = service_actions.run(_url(args), limit=args.limit, lock=True)
    except Taken as taken:  # another run, here or on another host, does the work
        return 0 if quiet else common.lock_taken(out, taken)
    ran = report.done or report.retried or report.failed or report.uncertain
    if quiet and not ran and not report.exit_code:
        return 0  # a timer's run with nothing to say
    out.data(report.as_dict()) if out.json else print_run(out, report.as_dict())
    return report.exit_code


def do_actions_retry(args, out) -> int:
    data = _decide(args, "retry")
    if out.json:
        out.data(data)
    else:
        out.line(
            _(
                "Service action #{id} queued again: it runs with the next 'helpdesk actions run' or sweep."
            ).format(id=data["id"])
        )
    return 0


def do_actions_mark_done(args, out) -> int:
    data = _decide(args, "mark_done")
    if out.json:
        out.data(data)
    else:
        out.line(_("Service action #{id} recorded as done.").format(id=data["id"]))
    return 0


def _decide(args, decision: str) -> dict:
    """An oncall's decision on a failed or uncertain action (``outgoing.actions``)."""
    from helpdesk.cli import common
    from helpdesk.outgoing import actions as service_actions

    with common.session(args, write=True) as s:
        row = getattr(service_actions, decision)(s, args.id, _actor(args, s), note=args.note)
        return service_actions.view(row)


def do_actions_list(args, out) -> int:
    from helpdesk.cli import common
    from helpdesk.outgoing import actions as service_actions

    with common.session(args) as s:
        rows = service_actions.listing(s, status=args.status, ticket=args.ticket, limit=args.limit)
    if out.json:
        out.data(rows)
    else:
        from helpdesk.base.labels import label

        out.table(
            ["id", "ticket", "status", "kind", "target", "connector", "answer"],
            [
                [
                    r["id"],
                    r["ticket"],
                    label("service-action-status", r["status"]),
                    label("service-action", r["kind"])
                    + (
                        " → " + service_actions.local_time(r["until"], r["timezone"])
                        if r["until"]
                        else ""
                    ),
                    r["target"],
                    r["connector"],
                    r["answer"],
                ]
                for r in rows
            ],
        )
    return 0


def print_run(out, report: dict) -> None:
    out.line(
        _("Service actions: {d} done, {r} to retry, {f} failed, {u} uncertain.").format(
            d=len(report["done"]),
            r=len(report["retried"]),
            f=len(report["failed"]),
            u=len(report["uncertain"]),
        )
    )
    for kind in ("done", "retried", "failed", "uncertain"):
        for e in report[kind]:
            out.line(
                f"  #{e['action']} ({label('service-action-status', kind)}) "
                f"{label('service-action', e['kind'])} {e['target']} · {e['connector']}: "
                f"{e.get('answer', '')}",
                style="red" if kind in ("failed", "uncertain") else None,
            )
    for e in report.get("held") or []:
        out.line(
            f"  #{e['action']} {label('service-action', e['kind'])} {e['target']} · "
            f"{e['connector']}: " + _("held back, queued again"),
            style="yellow",
        )
    if report.get("config_error"):
        out.line(
            _("Configuration error, nothing lost: {error}").format(error=report["config_error"]),
            style="red",
        )
    if report.get("waiting"):
        out.line(
            _(
                "{n} failed or uncertain action(s) wait for a person: helpdesk actions list --status failed"
            ).format(n=report["waiting"]),
            style="yellow",
        )


def print_queued(out, actions: list) -> None:
    from helpdesk.outgoing import actions as service_actions

    for a in actions:
        v = service_actions.view(a)
        out.line(
            "  "
            + (
                _("would have done: {what}")
                if v["status"] == "would-have-done"
                else _("service action queued: {what}")
            ).format(what=service_actions.describe(v))
        )


def print_of_ticket(out, actions: list[dict]) -> None:
    from helpdesk.outgoing import actions as service_actions

    if not actions:
        return
    out.line("")
    out.line(_("Service actions:"), style="bold")
    for a in actions:
        line = f"  #{a['id']} [{label('service-action-status', a['status'])}] {service_actions.describe(a)}"
        if a["answer"]:
            line += f" — {a['answer']}"
        out.line(line, style="red" if a["needs_attention"] else None)


def dry_run(s, args, outcome, out) -> int:
    """``ticket act --dry-run``: the step was applied in this transaction; print what it did,
    then roll it all back."""
    from helpdesk.workflow import engine
    from helpdesk.outgoing import actions as service_actions

    d = engine.definition(s, outcome.ticket.workflow_id)
    state = d.states.get(outcome.ticket.state)
    data = {
        "dry_run": True,
        "ticket": outcome.ticket.id,
        "action": args.action,
        "state": outcome.ticket.state,
        "mails": [
            {"to": m.to_addr, "subject": m.subject, "template": m.template} for m in outcome.mails
        ],
        "service_actions": [
            {
                k: v
                for k, v in service_actions.view(a).items()
                if k in ("kind", "connector", "service", "target", "until", "timezone", "status")
            }
            for a in outcome.actions
        ],
        "warnings": [w for e in outcome.events for w in (e.data or {}).get("warnings", [])],
    }
    s.rollback()
    if out.json:
        out.data(data)
        return 0
    from helpdesk.base.i18n import pick

    out.line(
        _("Dry run of #{id} {action}: nothing was done.").format(id=args.id, action=args.action),
        style="bold",
    )
    out.line(
        "  "
        + _("state: → {state}").format(state=pick(state.label) if state else outcome.ticket.state)
    )
    for m in data["mails"]:
        out.line(
            "  "
            + _("would queue a mail to {to}: {subject}").format(to=m["to"], subject=m["subject"])
        )
    for a in data["service_actions"]:
        out.line(
            "  "
            + _("would {kind} {target} on {connector}").format(
                kind=a["kind"]
                + (
                    " "
                    + _("until {when}").format(
                        when=service_actions.local_time(a["until"], a["timezone"])
                    )
                    if a["until"]
                    else ""
                ),
                target=a["target"],
                connector=a["connector"],
            )
        )
    if not data["service_actions"]:
        out.line("  " + _("no service action"))
    for w in data["warnings"]:
        out.line(f"  ! {w}", style="yellow")
    return 0


# --- helpdesk connectors check ---------------------------------------------------------------


def do_connectors(args, out) -> int:
    from helpdesk.base import config
    from helpdesk import connectors

    cfg = config.load()
    conns = connectors.all_connectors(cfg)
    if args.policy:
        conns = [c for c in conns if c.serves(args.policy)]
    results = []
    for c in conns:
        if hasattr(c, "db_url"):
            c.db_url = _url(args)
        try:
            results.append({"connector": c.name, "type": c.type, "ok": True, "answer": c.check()})
        except (connectors.ConnectorError, config.ConfigError) as exc:
            results.append({"connector": c.name, "type": c.type, "ok": False, "answer": str(exc)})
    if out.json:
        out.data({"config": str(cfg.path) if cfg.path else None, "connectors": results})
    else:
        out.line(
            _("Configuration: {path}").format(path=cfg.path or _("none (no helpdesk.toml found)"))
        )
        if not results:
            out.line("  " + _("no connector configured"))
        for r in results:
            out.line(
                f"  {'✔' if r['ok'] else '✘'} {r['connector']} ({r['type']}): {r['answer']}",
                style=None if r["ok"] else "red",
            )
    return 0 if all(r["ok"] for r in results) else 1


# --- helpdesk account sync ------------------------------------------------------------------------


def do_account_sync(args, out) -> int:
    from helpdesk.cli import common
    from helpdesk.base import config
    from helpdesk.service import logins

    with common.session(args, write=True) as s:
        actor = _actor(args, s)
    report = logins.sync(_url(args), args.policy, config.load(), actor)
    if out.json:
        out.data(report)
    else:
        out.line(
            _("{policy}: {a} account(s) added, {u} updated, {l} last login(s) read.").format(
                policy=args.policy,
                a=len(report["added"]),
                u=len(report["updated"]),
                l=report["logins"],
            )
        )
        for problem in report["problems"]:
            out.line(f"  {problem}", style="red")
    return 1 if report["problems"] else 0


# --- helpdesk policyd -----------------------------------------------------------------------------


def do_policyd(args, out) -> int:
    from helpdesk.cli import common
    from helpdesk.base import config
    from helpdesk.connectors import policyd

    with common.session(args):
        pass  # checks the schema
    cfg = config.load()
    cfg.override(
        "policyd.listen",
        os.environ.get("HELPDESK_POLICYD_LISTEN", "").strip(),
        "HELPDESK_POLICYD_LISTEN",
    )
    cfg.override("policyd.listen", args.listen, "--listen")
    listen = cfg.get("policyd.listen")
    if not listen:
        from helpdesk.base.errors import BadInput

        raise BadInput(
            _(
                "no address to listen on: give --listen HOST:PORT or set [policyd] listen in helpdesk.toml"
            )
        )
    return policyd.serve(
        _url(args),
        config.parse_listen(str(listen)),
        on_error=str(cfg.get("policyd.on_error", "DUNNO")).upper(),
    )
