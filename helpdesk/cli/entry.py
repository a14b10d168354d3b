"""The ``helpdesk`` command (and ``python -m helpdesk``).

The command line is read first, by a parser that imports nothing but argparse and the
translations (``helpdesk.cli.parser``), then the command runs in this process
(``helpdesk.cli.main.run``), the TUI too (one process per volunteer connected: see
``screens.start``).
"""

from __future__ import annotations

import gc
import os
import sys


def main(argv: list[str] | None = None) -> int:
    from helpdesk.cli.parser import parse

    args = parse(sys.argv[1:] if argv is None else argv)
    tui = args.opens_tui and on_screen()
    if tui:
        # No collection while Textual and the screens load: what they make stays alive,
        # and collecting it anyway took a tenth of the start. The app turns the collector
        # back on once its first screen is painted (HelpdeskApp._tune_collector).
        gc.disable()
    try:
        from helpdesk.cli.main import run

        return run(args)
    finally:
        gc.enable()


def on_screen() -> bool:
    """Whether a TUI can open here: a terminal, or a browser's page (``helpdesk serve``);
    elsewhere the command says it needs one (``helpdesk.cli.common.do_tui``)."""
    return (sys.stdin.isatty() and sys.stdout.isatty()) or bool(os.environ.get("TEXTUAL_DRIVER"))
