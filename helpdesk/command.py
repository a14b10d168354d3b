"""The ``helpdesk`` command (and ``python -m helpdesk``).

When the command line opens the TUI, the TUI's backend process is started first
(``screens.early``), before this process imports anything of its own: it loads the
database layer on the other processor while ``helpdesk.cli`` reads the command line and
Textual loads. Any other command goes straight to ``helpdesk.cli``, which imports neither
Textual nor the screens.
"""

from __future__ import annotations

import gc
import sys

#: The commands that do not open the TUI (``helpdesk.cli.COMMANDS``; a test keeps them equal).
COMMANDS = frozenset({
    "account", "audit", "backup", "ingest", "init", "outbox", "policy", "quarantine", "reset", "restore",
    "serve", "sweep", "ticket", "train", "volunteer",
})


def opens_tui(argv: list[str]) -> bool:
    """Whether this command line (probably) opens the TUI, told before any parser is
    built: it names no other command and asks for no help. An option's value that reads
    like a command only costs the head start."""
    words = {a for a in argv if not a.startswith("-")}
    return not words & COMMANDS and not {"-h", "--help"} & set(argv)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    early = None
    if opens_tui(argv):
        # No collection while Textual and the screens load: what they make stays alive,
        # and collecting it anyway took a tenth of the start. The app turns the collector
        # back on once its first screen is painted (HelpdeskApp._tune_collector).
        gc.disable()
        try:
            from screens import early
        except ImportError:  # the core alone: helpdesk.cli says the TUI is missing
            early = None
        else:
            early.prespawn()
    try:
        from helpdesk.cli import main as run

        return run(argv)
    finally:
        gc.enable()
        if early is not None:
            early.discard()  # unless the TUI took it
