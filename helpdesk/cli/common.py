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

    def line(self, *parts: Any, style: str | None = None) -> None:
        from rich.text import Text

        text = Text(style=style or "")
        for p in parts:
            text.append_text(p) if isinstance(p, Text) else text.append(str(p))
        self.console.print(text)

    def table(self, columns: list[str], rows: list[list[Any]]) -> None:
        from rich.table import Table
        from rich.text import Text

        from helpdesk.cli.text import header

        t = Table(box=None, pad_edge=False, show_edge=False, header_style="bold")
        for c in columns:
            t.add_column(header(c), overflow="fold")
        for r in rows:
            t.add_row(*[Text("" if v is None else str(v)) for v in r])
        self.console.print(t)


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

    user = getattr(args, "user", None) or os.environ.get("HELPDESK_USER")
    with session(args, write=True) as w:
        if user or api.SENSITIVE[what]:
            actor = api.actor_for(w, user)
        else:
            actor = Actor(f"unix:{getpass.getuser()}", "-")
        api.read_sensitive(w, actor, what, **kw)


def print_sweep(out: Out, report) -> None:
    """What a sweep did, for people (``sweep``, ``train clock``)."""
    out.line(
        _("Sweep at {now}: {t} step(s) taken, {o} ticket(s) opened, {r} refused.").format(
            now=report.now, t=len(report.taken), o=len(report.opened), r=len(report.refused)
        )
    )
    for t in report.taken:
        out.line(f"  #{t['ticket']}: {t['action']} → {t['state']}")
    for o in report.opened:
        out.line(f"  #{o['ticket']}: {o['policy']} {o['account']} ({o['reason']})")
    for r in report.refused:
        where = " ".join(f"{k}={v}" for k, v in r.items() if k != "reason")
        out.line(f"  {where}: {r.get('reason', '')}", style="red")


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
        user=getattr(args, "user", None) or os.environ.get("HELPDESK_USER"),
        demo=demo,
        **({"training": True} if training else {}),
    )
