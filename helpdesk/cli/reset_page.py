"""``helpdesk reset-page --listen HOST:PORT``: the page a reset link opens.

The command line's side: its options and starting the server. The page itself, its
defences and its settings are described in :mod:`helpdesk.cli.reset_page_server`, loaded
only when this command runs.
"""

from __future__ import annotations

import ipaddress
import sys

from helpdesk.base.errors import BadInput
from helpdesk.base.i18n import _
from helpdesk.cli.parser import command

DEFAULT_LISTEN = "127.0.0.1:8088"


def add_parser(commands) -> None:
    """The ``reset-page`` command (``helpdesk.cli.parser`` lists it)."""
    p = command(commands, "reset-page", do_reset_page)
    p.add_argument(
        "--listen",
        default=None,
        metavar="HOST:PORT",
        help=_(
            "address to listen on (default: [reset_page] listen in helpdesk.toml, else {d})"
        ).format(d=DEFAULT_LISTEN),
    )
    p.add_argument(
        "--proxy",
        action="append",
        default=None,
        metavar="ADDRESS",
        help=_(
            "address or network of the reverse proxy whose X-Forwarded-For and X-Forwarded-Proto are believed (repeatable)"
        ),
    )


# --- settings ---------------------------------------------------------------------------------


def parse_proxies(values, cfg=None) -> list:
    nets = []
    for value in values or []:
        try:
            nets.append(ipaddress.ip_network(str(value).strip(), strict=False))
        except ValueError:
            message = _("proxy {value!r}: an IP address or network expected").format(value=value)
            raise (cfg.error(message, "proxies") if cfg else BadInput(message)) from None
    return nets


def settings(args):
    """(host, port, proxies) from the flags, else helpdesk.toml's ``[reset_page]``."""
    from helpdesk.base import config as configuration

    cfg = configuration.load()
    section = cfg.get("reset_page", {}) or {}
    if not isinstance(section, dict):
        raise cfg.error(_("[reset_page] must be a table"), "reset_page")
    listen = args.listen or section.get("listen") or DEFAULT_LISTEN
    kind, where = configuration.parse_listen(str(listen), None if args.listen else cfg)
    if kind != "tcp":
        raise BadInput(_("the reset page listens on HOST:PORT, not a Unix socket"))
    proxies = args.proxy if args.proxy is not None else section.get("proxies", [])
    if isinstance(proxies, str):
        proxies = [proxies]
    return where[0], where[1], parse_proxies(proxies, None if args.proxy else cfg), cfg


# --- the command ------------------------------------------------------------------------------


def do_reset_page(args, out) -> int:
    from helpdesk.cli.reset_page_server import Handler, ResetPage, Server

    from helpdesk.cli.common import check_schema
    from helpdesk.storage import db

    host, port, proxies, cfg = settings(args)
    url = db.resolve_url(getattr(args, "db", None))
    check_schema(url)
    for line in advice(url, cfg):
        sys.stderr.write(line + "\n")
    page = ResetPage(url, cfg, proxies)
    try:
        server = Server((host, port), Handler, page)
    except OSError as exc:
        raise BadInput(
            _("cannot listen on {host} port {port}: {error}").format(
                host=host, port=port, error=exc.strerror or exc
            )
        ) from None
    shown = f"[{host}]" if ":" in host else host
    sys.stdout.write(
        _("Serving the reset page on http://{host}:{port}/ (Ctrl+C to stop)").format(
            host=shown, port=server.server_address[1]
        )
        + "\n"
    )
    sys.stdout.flush()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


def advice(url: str, cfg) -> list[str]:
    """What a set-up still lacks for the page to do its work, one line per provider."""
    from sqlmodel import select

    from helpdesk.connectors import ConnectorError
    from helpdesk.connectors.passwords import password_connector
    from helpdesk.policy import provider_settings
    from helpdesk.storage.models import Policy

    lines = []
    with db_session(url) as s:
        for policy in s.exec(select(Policy).order_by(Policy.key)):
            try:
                if password_connector(cfg, policy.key) is None:
                    lines.append(
                        _(
                            "warning: {key}: no directory or command connector in helpdesk.toml: its passwords cannot be set"
                        ).format(key=policy.key)
                    )
            except ConnectorError as exc:
                lines.append(_("warning: {error}").format(error=exc))
            reset_url = provider_settings.params(s, policy).get("reset_url") or ""
            if reset_url and not reset_url.endswith("token="):
                lines.append(
                    _(
                        "warning: {key}: reset_url should be this page's public https address ending in ?token= (now {url})"
                    ).format(key=policy.key, url=reset_url)
                )
    return lines


def db_session(url: str):
    from helpdesk.storage import db

    return db.read_session(url)
