"""What every command group of the CLI shares: output for people or scripts, the session
on the command's database, recorded sensitive reads, the sweep report, opening the TUI."""

from __future__ import annotations

import json
import os
import sys
from typing import Any

from helpdesk.base.errors import BadInput
from helpdesk.base.i18n import _


class Out:
    """Prints for people (Rich, untrusted text never read as markup) or for scripts (JSON)."""

    def __init__(self, as_json: bool):
        self.json = as_json
        self._console = None

    @property
    def console(self):
        if self._console is None:
            from rich.console import Console

            self._console = Console(highlight=False, soft_wrap=True)
        return self._console

    def data(self, payload: Any) -> None:
        sys.stdout.write(json.dumps(payload, ensure_ascii=False, indent=2, default=str) + "\n")

    def line(self, *parts: Any, style: str | None = None, wrap: bool = False) -> None:
        """One line (``wrap``: broken between words at the terminal's width)."""
        from rich.text import Text

        text = Text(style=style or "")
        for p in parts:
            text.append_text(p) if isinstance(p, Text) else text.append(str(p))
        self.console.print(text, soft_wrap=not wrap)

    def table(
        self,
        columns: list[str],
        rows: list[list[Any]],
        *,
        clip: dict[str, int] | None = None,
        drop: tuple[str, ...] = (),
        spare: tuple[str, ...] = (),
    ) -> None:
        """A table for people. Without ``clip``, long cells fold. With it (column: the
        least width it keeps), each row stays on one line at the terminal's width: if the
        table cannot fit even with its ``clip`` columns at their least, the columns of
        ``drop`` go (in that order), and those of ``spare`` go as soon as it is too wide;
        then the cells of the ``clip`` columns, widest first,
        are cut with "…" rather than folded mid-word. A long header breaks between words."""
        from rich.table import Table
        from rich.text import Text

        from helpdesk.cli.text import header

        cells = [["" if v is None else str(v) for v in r] for r in rows]
        heads = [header(c) for c in columns]
        if clip:
            columns, heads, cells = _fit(
                self.console.width, columns, heads, cells, clip, list(drop), spare
            )
        t = Table(box=None, pad_edge=False, show_edge=False, header_style="bold")
        for c, h in zip(columns, heads, strict=True):
            if clip:
                t.add_column(h, no_wrap=True, overflow="ellipsis")
            else:
                t.add_column(h, overflow="fold")
        for r in cells:
            t.add_row(*[Text(v) for v in r])
        self.console.print(t)


def user(args) -> str | None:
    """The acting volunteer's login as given (--as, else HELPDESK_USER); ``actor_for`` checks it."""
    return getattr(args, "user", None) or os.environ.get("HELPDESK_USER")


def _fit(width: int, columns, heads, cells, clip: dict[str, int], drop: list[str], spare=()):
    """Columns, headers and cells that fit ``width`` on one line a row (see ``Out.table``)."""
    from rich.cells import cell_len

    def natural(i: int) -> int:
        words = max((cell_len(w) for w in heads[i].split()), default=0)
        return max([words] + [cell_len(r[i]) for r in cells])

    def total(widths: list[int]) -> int:
        return sum(widths) + 2 * (len(widths) - 1)

    columns, heads = list(columns), list(heads)
    widths = [natural(i) for i in range(len(columns))]

    def least(i: int) -> int:
        return min(widths[i], clip.get(columns[i], widths[i]))

    for name in [*spare, *drop]:
        if name not in columns:
            continue
        if name in spare and total(widths) <= width:
            continue
        if name not in spare and total([least(i) for i in range(len(columns))]) <= width:
            continue
        i = columns.index(name)
        del columns[i], heads[i], widths[i]
        cells = [r[:i] + r[i + 1 :] for r in cells]
    while total(widths) > width:
        cuttable = [i for i, c in enumerate(columns) if c in clip and widths[i] > clip[c]]
        if not cuttable:
            break
        i = max(cuttable, key=lambda j: widths[j])
        widths[i] -= 1
    out_cells = [[_cut(v, widths[i]) for i, v in enumerate(r)] for r in cells]
    out_heads = [_wrap_words(h, widths[i]) for i, h in enumerate(heads)]
    return columns, out_heads, out_cells


def _cut(text: str, width: int) -> str:
    from rich.cells import cell_len, set_cell_size

    if cell_len(text) <= width:
        return text
    return set_cell_size(text, max(width - 1, 0)).rstrip() + "…"


def _wrap_words(text: str, width: int) -> str:
    """A header broken between its words to fit ``width`` (a word longer is cut)."""
    lines: list[str] = []
    for word in text.split():
        if lines and len(lines[-1]) + 1 + len(word) <= width:
            lines[-1] += " " + word
        else:
            lines.append(_cut(word, width))
    return "\n".join(lines)


def lock_taken(out: Out, taken) -> int:
    """A scheduled run that found its lock taken (``helpdesk.storage.locks.Taken``): another
    run, here or on another host, is doing the work. Said in one line; exit code 0."""
    if out.json:
        out.data(taken.as_dict())
    else:
        out.line(
            _("{what}: another run holds its lock (here or on another host); nothing done.").format(
                what=taken.what
            )
        )
    return 0


def reveal(secrets_: list[dict]) -> None:
    """Show a one-time secret to the person at the terminal only: never on stdout, so it
    cannot end up in a script's output, a log or a pipe."""
    try:
        tty = open("/dev/tty", "w")
    except OSError:
        raise BadInput(
            _(
                "a one-time code can only be shown on a terminal; run this from an interactive session"
            )
        ) from None
    with tty:
        for s in secrets_:
            tty.write(
                "\n  "
                + _("One-time code, to read out on the phone to the registered contact:")
                + "\n\n"
                f"      {s['secret']}\n\n  "
                + _("Valid once, until {expires}. It will not be shown again.").format(
                    expires=s["expires"]
                )
                + "\n\n"
            )


def session(args, write: bool = False):
    """A session on the command's database, after checking that its schema is current."""
    from helpdesk.storage import db

    url = db.resolve_url(getattr(args, "db", None))
    check_schema(url)
    return db.write_session(url) if write else db.read_session(url)


def connection(args):
    """A Core connection on the command's database (SQLAlchemy Core, no ORM: a read that
    needs no model starts faster), after checking that its schema is current."""
    from helpdesk.storage import db

    url = db.resolve_url(getattr(args, "db", None))
    check_schema(url)
    return db.read_connection(url)


def check_schema(url: str) -> None:
    from helpdesk.policy import install

    rev = install.current_revision(url)
    if rev is None:
        raise BadInput(
            _("the database {url} is not initialised: run 'helpdesk init'").format(url=url)
        )
    if rev != install.HEAD:
        raise BadInput(_("the database schema is out of date: run 'helpdesk init' to upgrade it"))


def pairs(values):
    """``k=v`` arguments (``--field``) as a dict; a malformed one is bad input."""
    from helpdesk.base.fields import parse_pairs

    return parse_pairs(values)


def read_sensitive(args, what: str, **kw) -> None:
    """Record a sensitive read (``service.read_sensitive``: role, reason, audit event) in a
    transaction of its own, before anything is shown. Without --as, the personal data of a
    closed account is read as the Unix user; material needs a volunteer of the right role."""
    import getpass

    from helpdesk.service import api
    from helpdesk.rules.context import Actor

    login = user(args)
    with session(args, write=True) as w:
        if login or api.SENSITIVE[what]:
            actor = api.actor_for(w, login)
        else:
            actor = Actor(f"unix:{getpass.getuser()}", "-")
        api.read_sensitive(w, actor, what, **kw)


def print_sweep(out: Out, report, url: str | None = None) -> None:
    """What a sweep did, for people (``sweep``, ``train clock``): steps and states by their
    labels, providers by their names, the moment in the providers' zones (from the database
    at ``url``; the JSON keeps the keys and UTC)."""
    from helpdesk.base.i18n import pick
    from helpdesk.base.labels import choice
    from helpdesk.cli.text import local

    names: dict[str, str] = {}
    zones: dict[str, str] = {}
    steps: dict[int, tuple[str, dict, dict]] = {}  # ticket -> provider, actions, states
    if url:
        from sqlmodel import select

        from helpdesk.storage import db
        from helpdesk.storage.models import Policy, Ticket
        from helpdesk.workflow import engine

        with db.read_session(url) as s:
            for p in s.exec(select(Policy)):
                names[p.key], zones[p.key] = p.name, p.timezone
            for tid in {t["ticket"] for t in report.taken} | {
                r["ticket"] for r in report.refused if r.get("ticket")
            }:
                ticket = s.get(Ticket, tid)
                if ticket is None:
                    continue
                d = engine.definition(s, ticket.workflow_id)
                steps[tid] = (
                    ticket.policy_key,
                    {t.key: pick(t.label) for t in d.transitions},
                    {k: pick(st.label) for k, st in d.states.items()},
                )
    by_text: dict[str, list[str]] = {}
    for zone in sorted(set(zones.values())) or ["UTC"]:
        by_text.setdefault(local(report.now, zone, zone=False), []).append(zone)
    now = ", ".join(f"{text} ({', '.join(zs)})" for text, zs in by_text.items())
    out.line(
        _("Sweep at {now}: {t} step(s) taken, {o} ticket(s) opened, {r} refused.").format(
            now=now, t=len(report.taken), o=len(report.opened), r=len(report.refused)
        ),
        wrap=True,
    )
    for t in report.taken:
        _p, actions, states = steps.get(t["ticket"], ("", {}, {}))
        out.line(
            f"  #{t['ticket']}: {actions.get(t['action'], t['action'])} → "
            f"{states.get(t['state'], t['state'])}",
            wrap=True,
        )
    for o in report.opened:
        out.line(
            f"  #{o['ticket']}: {names.get(o['policy'], o['policy'])} {o['account']} "
            f"({choice('reason', o['reason'])})",
            wrap=True,
        )
    for r in report.refused:
        if r.get("ticket"):
            _p, actions, _s = steps.get(r["ticket"], ("", {}, {}))
            where = f"#{r['ticket']} {actions.get(r.get('action') or '', r.get('action') or '')}"
        else:
            where = str(r.get("account") or "")
        out.line(f"  {where.strip()}: {r.get('reason', '')}", style="red", wrap=True)


#: The driver textual-serve asks Textual to use in the programs it starts (TEXTUAL_DRIVER).
WEB_DRIVER = "textual.drivers.web_driver:WebDriver"


def in_browser() -> bool:
    """True in a run that textual-serve started: its screen is a web page, not a terminal."""
    return os.environ.get("TEXTUAL_DRIVER") == WEB_DRIVER


def do_tui(args, out: Out, demo: bool = False, training: bool = False) -> int:
    """Open the TUI (``helpdesk``, ``helpdesk demo``, ``helpdesk train``) on a terminal."""
    if (
        not (sys.stdin.isatty() and sys.stdout.isatty()) and not in_browser()
    ):  # 'helpdesk serve' runs it under a web driver
        if "SSH_ORIGINAL_COMMAND" in os.environ:
            raise BadInput(
                _(
                    "this SSH key only opens the helpdesk, on a terminal; nothing else was run (connect with ssh -t)"
                )
            )
        raise BadInput(
            _(
                "the helpdesk needs a terminal; in scripts use the commands (helpdesk ticket list ...)"
            )
        )
    import importlib

    try:  # the only place the core reaches the TUI: by name, only when asked to open it
        run_tui = importlib.import_module("screens.start").run
    except ImportError as exc:
        raise BadInput(_("the TUI is not available: {error}").format(error=exc)) from None
    return run_tui(
        db=getattr(args, "db", None),
        user=user(args),
        demo=demo,
        **({"training": True} if training else {}),
    )
