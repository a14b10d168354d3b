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

from helpdesk.cli.common import user as cli_user
from helpdesk.base import bounds
from helpdesk.base.errors import BadInput
from helpdesk.base.i18n import _, current_lang
from helpdesk.cli.common import WEB_DRIVER, in_browser  # noqa: F401 - serve.in_browser
from helpdesk.cli import parser

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
DEFAULT_SESSIONS = (
    8  # each browser runs a helpdesk of its own (about 120 MiB): a cap keeps the machine up
)


def session_cap(args) -> int:
    """How many browsers may be served at once: ``--sessions``, else HELPDESK_SERVE_SESSIONS."""
    if getattr(args, "sessions", None):
        return args.sessions
    raw = os.environ.get("HELPDESK_SERVE_SESSIONS", "").strip()
    if not raw:
        return DEFAULT_SESSIONS
    try:
        return bounds.limit(raw)
    except Exception:  # noqa: BLE001 - argparse's ArgumentTypeError, said as bad input
        raise BadInput(
            _(
                "HELPDESK_SERVE_SESSIONS: a whole number of 1 or more expected, not {value!r}"
            ).format(value=raw)
        ) from None


def add_parser(commands) -> None:
    """The ``serve`` command."""
    p = parser.command(commands, "serve", do_serve)
    p.add_argument(
        "--host",
        default=None,
        help=_("address to listen on (default {host}: this machine only)").format(
            host=DEFAULT_HOST
        ),
    )
    p.add_argument(
        "--port",
        type=bounds.port,
        default=None,
        help=_("port to listen on (default {port})").format(port=DEFAULT_PORT),
    )
    p.add_argument(
        "--training",
        action="store_true",
        help=_("serve the training TUI (helpdesk train) instead of the demo"),
    )
    p.add_argument(
        "--sessions",
        type=bounds.limit,
        default=None,
        help=_(
            "browsers served at once, each its own helpdesk process (default {n}; env HELPDESK_SERVE_SESSIONS)"
        ).format(n=DEFAULT_SESSIONS),
    )


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine only (127.0.0.0/8, ::1, localhost)."""
    host = host.strip().strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def refusal(listening: str, host_header: str, origin: str | None, scheme: str) -> str | None:
    """Why a request may not reach the helpdesk, or None: asked under another site's name
    (DNS rebinding to 127.0.0.1), or from a page of another origin, scheme included
    (``https://host`` is not ``http://host``)."""
    try:
        host = urlsplit("//" + host_header).hostname or ""
    except ValueError:
        return "host"
    if is_loopback(listening) and not is_loopback(host):
        return "host"
    if origin is not None:
        try:
            parts = urlsplit(origin)
        except ValueError:
            return "origin"
        if parts.scheme.lower() != scheme.lower() or parts.netloc.lower() != host_header.lower():
            return "origin"
    return None


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
    user = cli_user(args)
    if user:
        env["HELPDESK_USER"] = user
    if getattr(args, "now", None):
        env["HELPDESK_NOW"] = clock.now().isoformat()
    return env


def _identity(args) -> str:
    """Who the people at the page act as, in words."""
    if user := cli_user(args):
        return user
    if args.training:
        from helpdesk.cli.train import TRAINER

        return TRAINER
    return _("the demo's volunteer")


def _check_database(args) -> None:
    """A ``--db`` must be ready before anyone opens the page; say so when it is not a
    training database, since real people's data will be on the wall."""
    from helpdesk.cli import common
    from helpdesk.workflow import engine
    from helpdesk.training import sandbox
    from helpdesk.cli.train import training_url

    if args.training:  # a new file is seeded by the first run; production is refused
        sandbox._require_target(training_url(args))
        return
    with common.session(args) as s:
        if not engine.is_training(s):
            sys.stderr.write(
                _(
                    "warning: this is not a training database; real accounts and tickets will be shown"
                )
                + "\n"
            )


def listen_address(args) -> None:
    """``--host`` and ``--port`` over ``[serve] listen`` in helpdesk.toml over the defaults."""
    from helpdesk.base import config

    cfg = config.load()
    host, port = DEFAULT_HOST, DEFAULT_PORT
    if listen := cfg.value("serve.listen"):
        kind, where = config.parse_listen(str(listen), key="serve.listen")
        if kind != "tcp":
            raise BadInput(_("serve.listen: give HOST:PORT (a web server listens on TCP)"))
        host, port = where
    args.host = args.host or host
    args.port = args.port or port


def do_serve(args, out) -> int:
    listen_address(args)
    if not 0 < args.port < 65536:
        raise BadInput(_("--port must be between 1 and 65535"))
    if what(args) != "demo":
        _check_database(args)
    try:
        server_class = _server_class()
    except ImportError as exc:
        raise BadInput(
            _(
                "serving in a browser needs textual-serve (pip install 'helpdesk[serve]'): {error}"
            ).format(error=exc)
        ) from None
    if not is_loopback(args.host):
        sys.stderr.write(
            _(
                "warning: listening on {host}: anyone who can reach this address gets the helpdesk, as {who}, with no password"
            ).format(host=args.host, who=_identity(args))
            + "\n"
        )
    cap = session_cap(args)
    os.environ.update(environment(args))
    server = server_class(command(args), host=args.host, port=args.port, title="helpdesk")
    server.max_sessions = cap
    try:
        server.serve()
    except OSError as exc:
        raise BadInput(
            _("cannot listen on {host} port {port}: {error}").format(
                host=args.host, port=args.port, error=exc.strerror or exc
            )
        ) from None
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
            self.max_sessions = DEFAULT_SESSIONS

        async def _make_app(self):
            """textual-serve's application, every route of it (the page, the websocket,
            /static/, /download/) behind the same Host and Origin check."""
            app = await super()._make_app()

            @web.middleware
            async def same_site(request, handler):
                if why := refusal(
                    self.host, request.host, request.headers.get("Origin"), request.scheme
                ):
                    raise web.HTTPForbidden(text=f"refused ({why})")
                return await handler(request)

            app.middlewares.append(same_site)
            return app

        async def handle_index(self, request):
            # The page tells the browser where the websocket is: at the address it used,
            # which is not --host when that is 0.0.0.0 or behind a name.
            self.public_url = f"{request.scheme}://{request.host}"
            return await super().handle_index(request)

        async def handle_websocket(self, request):
            if len(self._sessions) >= self.max_sessions:
                raise web.HTTPServiceUnavailable(
                    text=f"refused (sessions: {self.max_sessions} browsers are served already)"
                )
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
                _("Serving the helpdesk on http://{host}:{port}/ (Ctrl+C to stop)").format(
                    host=shown, port=self.port
                ),
                markup=False,
                highlight=False,
            )

    return HelpdeskServer
