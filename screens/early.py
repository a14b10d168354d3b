"""The TUI's backend process (``screens.remote``), started as early as can be.

``helpdesk`` starts it before it even reads its command line (``helpdesk.command``), so
the database layer loads while the command line is parsed and Textual loads. This module
imports nothing but the standard library's process tools: it is the first thing run.
"""

from __future__ import annotations

import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # holds ``screens``
_early: subprocess.Popen | None = None


def spawn(python: str) -> subprocess.Popen:
    """A backend process: it loads the database layer, then waits for the first frame
    (which database, which volunteer) on its standard input."""
    code = (
        "import gc, sys\ngc.disable()  # while the database layer loads: screens.remote.serve turns it on\n"
        f"if {ROOT!r} not in sys.path: sys.path.append({ROOT!r})\nfrom screens.remote import main\nmain()\n"
    )
    return subprocess.Popen(
        [python, "-P", "-c", code],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
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


def take(python: str) -> subprocess.Popen | None:
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


def end(proc: subprocess.Popen) -> None:
    for stream in (proc.stdin, proc.stdout, proc.stderr):
        try:
            stream.close()
        except OSError:
            pass
    proc.kill()
    proc.wait()
