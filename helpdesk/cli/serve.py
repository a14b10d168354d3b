"""``helpdesk serve``: the TUI in a web browser, for demonstrations on a projector.

textual-serve runs a small web server; every browser that opens the page gets its own run
of this program (``python -m helpdesk demo``; ``tui`` on the ``--db`` given; ``train`` with
``--training``) with Textual's web driver, its screen drawn by xterm.js in the page. Anyone who can reach the
page uses the helpdesk as the identity it was started with, so it listens on 127.0.0.1
unless told otherwise, and a page or websocket reached under another site's name is
refused (a web page visited on the same machine must not drive the helpdesk).

The database, the volunteer, the language and the clock reach each run through the
environment (``HELPDESK_DB``...), never on its command line, where ``ps`` would show a
database password.
"""

from __future__ import annotations

import ipaddress
import os
import shlex
import sys
from urllib.parse import urlsplit

from helpdesk.base.errors import BadInput
from helpdesk.base.i18n import _, current_lang

# The driver textual-serve asks Textual to use in the programs it starts (TEXTUAL_DRIVER).
WEB_DRIVER = "textual.drivers.web_driver:WebDriver"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000


def add_parser(sub, cmd) -> None:
    """The ``serve`` sub-command (``cmd`` adds the global options)."""
    p = cmd(sub, "serve", _("show the TUI in a web browser (demo by default), e.g. on a projector"))
    p.add_argument("--host", default=DEFAULT_HOST, help=_("address to listen on (default {host}: this machine only)").format(host=DEFAULT_HOST))
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help=_("port to listen on (default {port})").format(port=DEFAULT_PORT))
    p.add_argument("--training", action="store_true", help=_("serve the training TUI (helpdesk train) instead of the demo"))


def in_browser() -> bool:
    """True in a run that textual-serve started: its screen is a web page, not a terminal."""
    return os.environ.get("TEXTUAL_DRIVER") == WEB_DRIVER


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine only (127.0.0.0/8, ::1, localhost)."""
    host = host.strip().strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def what(args) -> str:
    """The command each browser gets: ``train``, ``tui`` (on ``--db``) or ``demo``."""
    return "train" if args.training else "tui" if getattr(args, "db", None) else "demo"


def command(args) -> str:
    """The shell command textual-serve runs for each browser: this very program."""
    return shlex.join([sys.executable, "-m", "helpdesk", what(args)])


def environment(args) -> dict[str, str]:
    """What each run must know, passed through the environment it inherits."""
    from helpdesk.base import clock
    from helpdesk.storage import db

    env = {"HELPDESK_LANG": current_lang()}
    if getattr(args, "db", None):  # 'train' never reads HELPDESK_DB: it may be production's
        env["HELPDESK_TRAINING_DB" if args.training else "HELPDESK_DB"] = db.resolve_url(args.db)
    user = getattr(args, "user", None) or os.environ.get("HELPDESK_USER")
    if user:
        env["HELPDESK_USER"] = user
    if getattr(args, "now", None):
        env["HELPDESK_NOW"] = clock.now().isoformat()
    return env


def _identity(args) -> str:
    """Who the people at the page act as, in words."""
    if user := getattr(args, "user", None) or os.environ.get("HELPDESK_USER"):
        return user
    if args.training:
        from helpdesk.cli.train import TRAINER

        return TRAINER
    return _("the demo's volunteer")


def _check_database(args) -> None:
    """A ``--db`` must be ready before anyone opens the page; say so when it is not a
    training database, since real people's data will be on the wall."""
    from helpdesk.cli import main
    from helpdesk.workflow import engine
    from helpdesk.training import sandbox
    from helpdesk.cli.train import training_url

    if args.training:  # a new file is seeded by the first run; production is refused
        sandbox._require_target(training_url(args))
        return
    with main._session(args) as s:
        if not engine.is_training(s):
            sys.stderr.write(_("warning: this is not a training database; real accounts and tickets will be shown") + "\n")


def do_serve(args, out) -> int:
    if not 0 < args.port < 65536:
        raise BadInput(_("--port must be between 1 and 65535"))
    if what(args) != "demo":
        _check_database(args)
    try:
        server_class = _server_class()
    except ImportError as exc:
        raise BadInput(_("serving in a browser needs textual-serve (pip install 'helpdesk[serve]'): {error}").format(error=exc)) from None
    if not is_loopback(args.host):
        sys.stderr.write(
            _("warning: listening on {host}: anyone who can reach this address gets the helpdesk, as {who}, with no password").format(
                host=args.host, who=_identity(args)
            )
            + "\n"
        )
    os.environ.update(environment(args))
    server = server_class(command(args), host=args.host, port=args.port, title="helpdesk")
    try:
        server.serve()
    except OSError as exc:
        raise BadInput(_("cannot listen on {host} port {port}: {error}").format(host=args.host, port=args.port, error=exc.strerror or exc)) from None
    return 0


def _server_class():
    """textual-serve's server, refusing requests made under another site's name.

    Imported here, not at the top: textual-serve is an optional extra, and loading it
    (aiohttp...) would slow every other command.
    """
    import asyncio
    import importlib

    from aiohttp import web

    # Through importlib, like cli.do_tui reaches the TUI: the core's import lines name no
    # Textual package, so the rule "helpdesk/ never imports Textual" stays checkable by grep.
    Server = importlib.import_module("textual_serve.server").Server

    class HelpdeskServer(Server):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            self._sessions: set[asyncio.Task] = set()  # one per browser connected

        def _refuse(self, request) -> str | None:
            """Why this request may not reach the helpdesk, or None."""
            host = urlsplit("//" + request.host).hostname or ""
            if is_loopback(self.host) and not is_loopback(host):
                return "host"  # DNS rebinding: another site's name pointing at 127.0.0.1
            origin = request.headers.get("Origin")
            if origin is not None and urlsplit(origin).netloc.lower() != request.host.lower():
                return "origin"  # a page from another site opening our websocket
            return None

        async def handle_index(self, request):
            if why := self._refuse(request):
                raise web.HTTPForbidden(text=f"refused ({why})")
            # The page tells the browser where the websocket is: at the address it used,
            # which is not --host when that is 0.0.0.0 or behind a name.
            self.public_url = f"{request.scheme}://{request.host}"
            return await super().handle_index(request)

        async def handle_websocket(self, request):
            if why := self._refuse(request):
                raise web.HTTPForbidden(text=f"refused ({why})")
            task = asyncio.current_task()
            self._sessions.add(task)
            try:
                return await super().handle_websocket(request)
            finally:
                self._sessions.discard(task)

        async def on_shutdown(self, app) -> None:
            # Ctrl+C: end each browser's session now (its run of the helpdesk is told to
            # quit) rather than wait for aiohttp's shutdown timeout.
            for task in list(self._sessions):
                task.cancel()
            if self._sessions:
                await asyncio.wait(list(self._sessions), timeout=10)

        async def on_startup(self, app) -> None:
            shown = f"[{self.host}]" if ":" in self.host else self.host
            self.console.print(
                _("Serving the helpdesk on http://{host}:{port}/ (Ctrl+C to stop)").format(host=shown, port=self.port),
                markup=False,
                highlight=False,
            )

    return HelpdeskServer
