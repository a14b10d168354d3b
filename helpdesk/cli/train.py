"""The ``train`` command of the CLI (``helpdesk.cli.main`` hands over here).

    helpdesk train                      open the TUI on the training database, as tom (trainer)
    helpdesk train list                 the scenarios: key, provider, queue, title
    helpdesk train start KEY            build the training database for a scenario
    helpdesk train reset [KEY]          back to the scenario's start (state, events, clock)
    helpdesk train clock [STEP]         show the training clock, or move it (+1d, +1w, +1m, next)
                                        and run sweep at the new moment
    helpdesk train check [KEY|--all]    play a scenario's expected path headless; exit 1 on a mismatch

The training database is ``--db`` or ``HELPDESK_TRAINING_DB``, by default ``training.db`` in
the user data directory — never ``HELPDESK_DB``. It must be a training database or a new
file: an existing production database is refused, never turned into a training one.
"""

from __future__ import annotations

import os
import tempfile

from helpdesk.base import clock
from helpdesk.base.errors import BadInput
from helpdesk.base.i18n import _
from helpdesk.cli.text import local
from helpdesk.cli.parser import command

DEFAULT_SCENARIO = "wigii-closure-request"  # what a new training database starts with
TRAINER = "tom"


def add_parser(commands) -> None:
    """``train`` (the TUI on the training database) and its sub-commands."""
    tr = command(commands, "train", do_train, opens_tui=True)
    trs = tr.add_subparsers(dest="sub", metavar="SUB")
    command(trs, "list", do_train_list, _("list the training scenarios"))
    p = command(trs, "start", do_train_start, _("build the training database for a scenario"))
    p.add_argument("key")
    p = command(
        trs,
        "reset",
        do_train_reset,
        _("put the training database back at the scenario's start"),
    )
    p.add_argument("key", nargs="?", help=_("the scenario (default: the one the database holds)"))
    p = command(
        trs, "clock", do_train_clock, _("show the training clock, or move it and run sweep")
    )
    p.add_argument(
        "step",
        nargs="?",
        help=_("+1d, +1w, +1m, an ISO-8601 duration (P2M), or next (the next deadline)"),
    )
    p = command(
        trs,
        "check",
        do_train_check,
        _("play a scenario's expected path headless and report each step"),
    )
    p.add_argument("key", nargs="?")
    p.add_argument("--all", action="store_true", help=_("every scenario"))


def training_url(args) -> str:
    from helpdesk.storage import db
    from helpdesk.training import sandbox

    given = getattr(args, "db", None)
    return db.resolve_url(given) if given else sandbox.default_url()


def _training_url(args) -> str:
    """The training database, at whose clock the command runs (unless --now or HELPDESK_NOW)."""
    from helpdesk.training import sandbox

    url = training_url(args)
    if not getattr(args, "now", None) and not os.environ.get("HELPDESK_NOW"):
        sandbox.adopt_clock(url)
    return url


def do_train(args, out) -> int:
    """``helpdesk train``: the TUI on the training database."""
    return _open(args, out, _training_url(args))


def do_train_list(args, out) -> int:
    _training_url(args)
    return _list(out)


def do_train_start(args, out) -> int:
    from helpdesk.training import sandbox

    _print_seeded(out, sandbox.seed(_training_url(args), args.key))
    return 0


def do_train_reset(args, out) -> int:
    from helpdesk.training import sandbox

    _print_seeded(out, sandbox.reset(_training_url(args), args.key))
    return 0


def _seeded_url(args) -> tuple[str, str]:
    """A training database (or a new one): its URL and state; a production one is refused."""
    from helpdesk.training import sandbox

    url = _training_url(args)
    state = sandbox.database_state(url)
    if state == "production":
        raise sandbox._not_training(url)
    return url, state


def do_train_clock(args, out) -> int:
    """The clock of a seeded training database only (check seeds its own)."""
    url, state = _seeded_url(args)
    if state == "new":
        raise BadInput(
            _("no training database at {url}: start one with 'helpdesk train start'").format(
                url=url
            )
        )
    return _clock(out, url, args.step)


def do_train_check(args, out) -> int:
    url, _state = _seeded_url(args)
    return _check(args, out, url)


def _open(args, out, url: str) -> int:
    from helpdesk.cli import common
    from helpdesk.training import scenarios, sandbox

    state = sandbox.database_state(url)
    if state == "production":
        raise sandbox._not_training(url)
    if state == "new":
        keys = scenarios.available()
        if not keys:
            raise BadInput(
                _("no training scenario in {path}").format(path=scenarios.scenarios_dir())
            )
        sandbox.seed(url, DEFAULT_SCENARIO if DEFAULT_SCENARIO in keys else keys[0])
    if not getattr(args, "now", None) and not os.environ.get("HELPDESK_NOW"):
        sandbox.adopt_clock(url)
    args.db = url
    if not getattr(args, "user", None) and not os.environ.get("HELPDESK_USER"):
        args.user = TRAINER
    return common.do_tui(args, out, training=True)


def _list(out) -> int:
    from helpdesk.training import scenarios

    rows = [sc.summary() for sc in scenarios.load_all()]
    if out.json:
        out.data(rows)
        return 0
    from rich.text import Text

    from helpdesk.base.labels import label
    from helpdesk.policy.packs import short_names

    names = short_names()
    # Two lines a scenario, so that neither the key (typed in `train start KEY`) nor the
    # title is cut mid-word on a narrow terminal.
    for r in rows:
        out.line(
            Text(r["key"], style="bold"),
            Text(
                f"  {names.get(r['provider'], r['provider'])} · {label('queue-short', r['queue'])}",
                style="dim",
            ),
        )
        out.line(Text("    " + r["title"]))
    return 0


def _print_seeded(out, seeded) -> None:
    if out.json:
        out.data(seeded.as_dict())
        return
    tickets = ", ".join(f"#{tid} ({name})" for name, tid in seeded.tickets.items())
    out.line(_("Scenario {key} ready in {url}").format(key=seeded.scenario, url=seeded.url))
    out.line(_("Tickets: {tickets}").format(tickets=tickets))
    from helpdesk.training import sandbox

    moment = local(seeded.clock, sandbox.timezone_of(seeded.url))
    out.line(_("Training clock: {moment}").format(moment=moment))


def _clock(out, url: str, step: str | None) -> int:
    from helpdesk.training import sandbox

    if not step:
        moment = sandbox.clock_of(url)
        scenario = sandbox.scenario_of(url)
        if out.json:
            out.data({"clock": clock.iso(moment), "scenario": scenario.key if scenario else None})
        else:
            tz = sandbox.timezone_of(url)
            out.line(_("Training clock: {moment}").format(moment=local(moment, tz)))
        return 0
    move = sandbox.advance(url, step)
    if out.json:
        out.data(move.as_dict())
        return 0
    from helpdesk.cli.common import print_sweep

    tz = sandbox.timezone_of(url)
    out.line(
        _("Training clock: {before} → {after}").format(
            before=local(move.before, tz, zone=False), after=local(move.after, tz)
        )
    )
    print_sweep(out, move.sweep, url)
    return 0


def _check(args, out, url: str) -> int:
    from helpdesk.training import scenarios, sandbox

    if args.all:
        keys = scenarios.available()
    elif args.key:
        keys = [args.key]
    else:
        held = sandbox.scenario_of(url) if sandbox.database_state(url) == "training" else None
        if held is None:
            raise BadInput(_("which scenario? give its key or --all (helpdesk train list)"))
        keys = [held.key]
    for key in keys:
        scenarios.load(key)  # a broken scenario file is bad input before anything runs
    explicit = bool(getattr(args, "db", None))
    with tempfile.TemporaryDirectory(prefix="helpdesk-train-check-") as scratch:
        target = url if explicit else f"sqlite:///{os.path.join(scratch, 'check.db')}"
        reports = []
        for key in keys:
            reports.append(sandbox.check(target, key))
            if not out.json:  # labelled from the workflows of the database it played on
                _print_check(out, reports[-1], _names(target, scenarios.load(key)))
        if not explicit:
            sandbox._forget(target)
    if out.json:
        out.data(
            reports[0].as_dict()
            if len(reports) == 1 and not args.all
            else [r.as_dict() for r in reports]
        )
    return 0 if all(r.ok for r in reports) else 1


def _names(url: str, sc) -> tuple[dict, dict, str]:
    """The labels of the steps and states of a scenario's provider (its queue's last, so
    they win), and the provider's time zone."""
    from sqlmodel import select

    from helpdesk.base.i18n import pick
    from helpdesk.storage import db
    from helpdesk.storage.models import Policy, State, Transition, Workflow

    actions: dict[str, str] = {}
    states: dict[str, str] = {}
    with db.read_session(url) as s:
        policy = s.get(Policy, sc.provider)
        flows = sorted(
            s.exec(select(Workflow).where(Workflow.policy_key == sc.provider)),
            key=lambda wf: wf.queue == sc.queue,
        )
        for wf in flows:
            for t in s.exec(select(Transition).where(Transition.workflow_id == wf.id)):
                actions[t.key] = pick(t.label)
            for st in s.exec(select(State).where(State.workflow_id == wf.id)):
                states[st.key] = pick(st.label)
    return actions, states, policy.timezone if policy else "UTC"


def _print_check(out, report, names: tuple[dict, dict, str]) -> None:
    from helpdesk.base.labels import label
    from helpdesk.training import scenarios

    actions, states, tz = names
    sc = scenarios.load(report.scenario)
    out.line(f"{sc.key} — {sc.title_text()}", style="bold")
    for r in report.steps:
        mark = "✔" if r.ok else "✘"
        who = _("the clock") if r.by == "system" else r.by
        if r.refusal:
            what = _("refused by {rule}").format(rule=label("rule", r.got))
        else:
            what = f"→ {states.get(r.got, r.got)}"
        line = f"  {mark} {r.index}. {actions.get(r.action, r.action)} ({who}) {what}"
        if r.clock and r.swept is not None:
            line += "  " + _("[clock {moment}]").format(moment=local(r.clock, tz))
        out.line(line, style=None if r.ok else "red", wrap=True)
        if not r.ok:
            out.line(
                "      " + (r.message or _("expected {expected}").format(expected=r.expected)),
                style="red",
            )
    for missing in sc.steps[len(report.steps) :]:
        out.line(
            f"  · {missing.index}. {actions.get(missing.action, missing.action)} "
            + _("(not played)"),
            style="dim",
        )
    out.line(
        _("{n}/{total} step(s) as expected").format(
            n=sum(r.ok for r in report.steps), total=report.total
        ),
        style="bold" if report.ok else "bold red",
    )
