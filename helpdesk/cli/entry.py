"""The ``helpdesk`` command (and ``python -m helpdesk``).

When the command line opens the TUI, the TUI's backend process (``screens.remote``) is
started first, before this process imports anything of its own: it loads the database
layer on the other processor while ``helpdesk.cli.main`` reads the command line and Textual
loads. It is started by name, as a program: the core imports neither Textual nor the
screens. Any other command goes straight to ``helpdesk.cli.main``.
"""

from __future__ import annotations

import gc
import os
import sys
from importlib.util import find_spec

#: The commands that do not open the TUI (``helpdesk.cli.main.COMMANDS``; a test keeps them equal).
COMMANDS = frozenset(
    {
        "account",
        "actions",
        "audit",
        "backup",
        "connectors",
        "dashboard",
        "ingest",
        "init",
        "outbox",
        "policy",
        "policyd",
        "quarantine",
        "reset",
        "restore",
        "serve",
        "sweep",
        "ticket",
        "train",
        "volunteer",
    }
)
ROOT = os.path.dirname(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
)  # holds ``helpdesk`` and ``screens``

_early = None  # the backend process started by ``prespawn``, until a RemoteBackend takes it


def opens_tui(argv: list[str]) -> bool:
    """Whether this command line (probably) opens the TUI, told before any parser is
    built: it names no other command and asks for no help. An option's value that reads
    like a command only costs the head start."""
    words = {a for a in argv if not a.startswith("-")}
    return not words & COMMANDS and not {"-h", "--help"} & set(argv)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    tui = opens_tui(argv)
    if tui:
        # No collection while Textual and the screens load: what they make stays alive,
        # and collecting it anyway took a tenth of the start. The app turns the collector
        # back on once its first screen is painted (HelpdeskApp._tune_collector).
        gc.disable()
        if (
            find_spec("screens") is not None
        ):  # without it, helpdesk.cli.main says the TUI is missing
            prespawn()
    try:
        from helpdesk.cli.main import main as run

        return run(argv)
    finally:
        gc.enable()
        if tui:
            discard()  # unless the TUI took it


# --- the TUI's backend process ----------------------------------------------------------------


def spawn(python: str):
    """A backend process: it loads the database layer, then waits for its first frame
    (which database, which volunteer) on its standard input (``screens.remote.serve``)."""
    import subprocess

    code = (
        "import gc, sys\ngc.disable()  # while the database layer loads: screens.remote.serve turns it on\n"
        f"if {ROOT!r} not in sys.path: sys.path.append({ROOT!r})\n"
        "import importlib\nimportlib.import_module('screens.remote').main()\n"
    )
    return subprocess.Popen(
        [python, "-P", "-c", code],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,  # the terminal's signals are the app's to handle
    )


def prespawn() -> None:
    """Start a backend process now, before this process knows which database it will ask
    for. The next ``RemoteBackend`` takes it (``take``); ``discard`` ends it if none does."""
    global _early
    if _early is None:
        try:
            _early = spawn(sys.executable)
        except OSError:
            _early = None


def take(python: str):
    """The process ``prespawn`` started, if it runs ``python`` and still lives."""
    global _early
    proc, _early = _early, None
    if proc is not None and (proc.args[0] != python or proc.poll() is not None):
        end(proc)
        return None
    return proc


def discard() -> None:
    """End the process ``prespawn`` started if nothing took it (the command was not the
    TUI after all, or it failed before opening it)."""
    global _early
    proc, _early = _early, None
    if proc is not None:
        end(proc)


def end(proc) -> None:
    for stream in (proc.stdin, proc.stdout, proc.stderr):
        try:
            stream.close()
        except OSError:
            pass
    proc.kill()
    proc.wait()
