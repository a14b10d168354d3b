"""The ``helpdesk`` command (and ``python -m helpdesk``).

The command line is read first, by a parser that imports nothing but argparse and the
translations (``helpdesk.cli.parser``). When it opens the TUI on a terminal, the TUI's
backend process (``screens.remote``) is started at once, before this process imports
anything else: it loads the database layer on the other processor while Textual loads
here. It is started by name, as a program: the core imports neither Textual nor the
screens. Any other command runs in this process (``helpdesk.cli.main.run``).
"""

from __future__ import annotations

import gc
import os
import sys
from importlib.util import find_spec

ROOT = os.path.dirname(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
)  # holds ``helpdesk`` and ``screens``

_early = None  # the backend process started by ``prespawn``, until a RemoteBackend takes it


def main(argv: list[str] | None = None) -> int:
    from helpdesk.cli.parser import parse

    args = parse(sys.argv[1:] if argv is None else argv)
    tui = args.opens_tui and on_screen()
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
        from helpdesk.cli.main import run

        return run(args)
    finally:
        gc.enable()
        if tui:
            discard()  # unless the TUI took it


def on_screen() -> bool:
    """Whether a TUI can open here: a terminal, or a browser's page (``helpdesk serve``);
    elsewhere the command says it needs one (``helpdesk.cli.common.do_tui``)."""
    return (sys.stdin.isatty() and sys.stdout.isatty()) or bool(os.environ.get("TEXTUAL_DRIVER"))


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
