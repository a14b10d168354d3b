"""``helpdesk.toml``: the one configuration file.

Looked up, first found wins:

1. the path in ``HELPDESK_CONFIG`` (a missing file there is an error: it was asked for);
2. ``/etc/helpdesk/helpdesk.toml``;
3. ``helpdesk.toml`` in the user config directory (``~/.config/helpdesk/`` on Linux).

No file at all is a valid set-up: no connector, defaults everywhere. What it holds today::

    [policyd]
    listen = "127.0.0.1:10040"        # or "unix:/run/helpdesk/policyd.sock"
    on_error = "DUNNO"                # the answer while the database cannot be read:
                                      # DUNNO (fail open) or DEFER_IF_PERMIT (fail closed)

    [connectors.directory]            # one table per service; the name is yours
    type = "ldap"                     # ldap | dovecot | postfix | nextcloud | command
    policies = ["indigos"]            # the providers it serves ("*": all)
    url = "ldap://127.0.0.1:389"
    bind_dn = "cn=helpdesk,dc=example,dc=org"
    password_file = "/etc/helpdesk/ldap.secret"

**Secrets are never written in the file.** A key ending in ``_file`` names a file holding
the secret (``password_file``, ``api_key_file``); the file must not be readable by group or
others (``chmod 600``), and a secret written inline (``password = ...``) is refused. A
secret is read when a connector needs it and is never printed, stored or logged.

Environment variables and command-line flags override the file (each override is named
where it is read: ``HELPDESK_POLICYD_LISTEN`` and ``policyd --listen`` for the listen
address). :meth:`Config.origin` says where each effective value came from.

Errors name the file and, where TOML gives it, the line.
"""

from __future__ import annotations

import os
import re
import stat
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from helpdesk.base.errors import BadInput
from helpdesk.base.i18n import _

ENV = "HELPDESK_CONFIG"
SYSTEM_PATH = Path("/etc/helpdesk/helpdesk.toml")
#: Keys that would hold a secret inline: refused, the ``*_file`` form is required.
SECRET_KEYS = ("password", "api_key", "secret", "token", "key")
ON_ERROR = ("DUNNO", "DEFER_IF_PERMIT")


#: The kinds of connector a ``[connectors.NAME]`` table may name, and the module of
#: ``helpdesk.connectors`` that implements each.
CONNECTOR_TYPES = {
    "ldap": "ldap",
    "dovecot": "dovecot",
    "postfix": "postfix",
    "nextcloud": "nextcloud",
    "command": "command",
}

#: The service action kinds a step may queue (stable keys; ``helpdesk.connectors``).
SERVICE_ACTION_KINDS = (
    "lock",
    "unlock",
    "force-change",
    "revoke-sessions",
    "suspend-sending",
    "lift-sending",
    "erase",
    "read-last-login",
)
#: What a command connector may be configured to do: the queued kinds, and the reset
#: page's ``set-password``.
COMMAND_KINDS = (*SERVICE_ACTION_KINDS, "set-password")


class ConfigError(BadInput):
    """The configuration file is wrong: exit code 2, with the file and the line."""


def user_path() -> Path:
    from platformdirs import user_config_dir

    return Path(user_config_dir("helpdesk", appauthor=False)) / "helpdesk.toml"


def find(environ=None) -> tuple[Path | None, str]:
    """The file to read and why it was chosen, or ``(None, reason)``."""
    env = os.environ if environ is None else environ
    given = env.get(ENV, "").strip()
    if given:
        path = Path(given).expanduser()
        if not path.is_file():
            raise ConfigError(_("{env}={path}: no such file").format(env=ENV, path=path))
        return path, ENV
    if SYSTEM_PATH.is_file():
        return SYSTEM_PATH, "system"
    path = user_path()
    if path.is_file():
        return path, "user"
    return None, "none"


@dataclass
class Config:
    path: Path | None = None
    data: dict = field(default_factory=dict)
    text: str = ""
    overrides: dict[str, tuple[Any, str]] = field(
        default_factory=dict
    )  # dotted key -> (value, from)

    def get(self, dotted: str, default: Any = None) -> Any:
        if dotted in self.overrides:
            return self.overrides[dotted][0]
        node: Any = self.data
        for part in dotted.split("."):
            if not isinstance(node, dict) or part not in node:
                return default
            node = node[part]
        return node

    def origin(self, dotted: str) -> str:
        """Where the effective value of ``dotted`` comes from: an override, the file, or
        the default."""
        if dotted in self.overrides:
            return self.overrides[dotted][1]
        marker = object()
        if self.path is not None and self.get(dotted, marker) is not marker:
            return str(self.path)
        return "default"

    def override(self, dotted: str, value: Any, source: str) -> None:
        if value not in (None, ""):
            self.overrides[dotted] = (value, source)

    @property
    def connectors(self) -> dict[str, dict]:
        return dict(self.data.get("connectors") or {})

    def line_of(self, needle: str) -> int | None:
        for number, line in enumerate(self.text.splitlines(), 1):
            if needle in line:
                return number
        return None

    def error(self, message: str, needle: str | None = None) -> ConfigError:
        line = self.line_of(needle) if needle else None
        where = f"{self.path}:{line}" if line else str(self.path or "helpdesk.toml")
        return ConfigError(f"{where}: {message}")

    def secret(self, section: str, settings: dict, name: str) -> str:
        """The secret ``name`` of a section, read from the file ``<name>_file``."""
        path = settings.get(f"{name}_file")
        if not path:
            return ""
        return read_secret(Path(str(path)).expanduser(), where=f"{section}.{name}_file")


def read_secret(path: Path, *, where: str) -> str:
    try:
        st = path.stat()
    except OSError as exc:
        raise ConfigError(
            _("{where}: cannot read {path}: {error}").format(
                where=where, path=path, error=exc.strerror
            )
        ) from None
    if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(
            _("{where}: {path} is readable by others (mode {mode:o}): run chmod 600 {path}").format(
                where=where, path=path, mode=stat.S_IMODE(st.st_mode)
            )
        )
    try:
        return path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(
            _("{where}: cannot read {path}: {error}").format(where=where, path=path, error=exc)
        ) from None


def parse(text: str, path: Path | None = None) -> Config:
    cfg = Config(path=path, text=text)
    try:
        cfg.data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path or 'helpdesk.toml'}: {exc}") from None
    _validate(cfg)
    return cfg


def _validate(cfg: Config) -> None:
    _no_inline_secrets(cfg, cfg.data, "")
    policyd = cfg.data.get("policyd", {})
    if not isinstance(policyd, dict):
        raise cfg.error(_("[policyd] must be a table"), "policyd")
    on_error = str(policyd.get("on_error", "DUNNO")).upper()
    if on_error not in ON_ERROR:
        raise cfg.error(
            _(
                "policyd.on_error must be DUNNO (fail open) or DEFER_IF_PERMIT (fail closed), not {v!r}"
            ).format(v=policyd.get("on_error")),
            "on_error",
        )
    if "listen" in policyd:
        parse_listen(str(policyd["listen"]), cfg)
    connectors = cfg.data.get("connectors", {})
    if not isinstance(connectors, dict):
        raise cfg.error(_("[connectors] must hold one table per connector"), "connectors")
    for name, settings in connectors.items():
        needle = f"connectors.{name}"
        if not isinstance(settings, dict):
            raise cfg.error(_("connectors.{name} must be a table").format(name=name), needle)
        kind = settings.get("type")
        if kind not in CONNECTOR_TYPES:
            raise cfg.error(
                _("connectors.{name}: type must be one of {types}, not {kind!r}").format(
                    name=name, types=", ".join(sorted(CONNECTOR_TYPES)), kind=kind
                ),
                needle,
            )
        policies = settings.get("policies")
        if policies != "*" and not (
            isinstance(policies, list) and policies and all(isinstance(p, str) for p in policies)
        ):
            raise cfg.error(
                _(
                    'connectors.{name}: policies must list the providers it serves, or be "*"'
                ).format(name=name),
                needle,
            )
        if kind == "command":
            _validate_command(cfg, name, settings, needle)
        if kind == "nextcloud":
            url = str(settings.get("url", ""))
            if not url.startswith(("http://", "https://")):
                raise cfg.error(
                    _(
                        "connectors.{name}: url must be the Nextcloud's address, http(s)://..."
                    ).format(name=name),
                    needle,
                )


def _validate_command(cfg: Config, name: str, settings: dict, needle: str) -> None:
    program = settings.get("program")
    argv = [program] if isinstance(program, str) else program
    if not (
        isinstance(argv, list)
        and argv
        and all(isinstance(a, str) and a for a in argv)
        and argv[0].startswith("/")
    ):
        raise cfg.error(
            _(
                "connectors.{name}: program must be an absolute path, or a list of the program's absolute path and its arguments (no shell)"
            ).format(name=name),
            needle,
        )
    kinds = settings.get("kinds")
    if not (isinstance(kinds, list) and kinds and all(k in COMMAND_KINDS for k in kinds)):
        raise cfg.error(
            _("connectors.{name}: kinds must list what the program does, among {kinds}").format(
                name=name, kinds=", ".join(COMMAND_KINDS)
            ),
            needle,
        )
    timeout = settings.get("timeout", 60)
    if (
        isinstance(timeout, bool)
        or not isinstance(timeout, (int, float))
        or not 0 < timeout <= 3600
    ):
        raise cfg.error(
            _("connectors.{name}: timeout must be a number of seconds (at most 3600)").format(
                name=name
            ),
            needle,
        )
    env = settings.get("env", {})
    if not isinstance(env, dict) or not all(isinstance(v, str) for v in env.values()):
        raise cfg.error(
            _("connectors.{name}: env must be a table of texts").format(name=name), needle
        )


def _no_inline_secrets(cfg: Config, node: dict, prefix: str) -> None:
    for key, value in node.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict):
            _no_inline_secrets(cfg, value, dotted + ".")
        elif key.lower() in SECRET_KEYS or key.lower().endswith(("_password", "_secret", "_token")):
            raise cfg.error(
                _(
                    "{key}: a secret is never written in the configuration file; put it in a file (chmod 600) named by {key}_file"
                ).format(key=dotted),
                f"{key}",
            )


_HOSTPORT = re.compile(r"^(?:\[(?P<v6>[0-9a-fA-F:]+)\]|(?P<host>[^:\s]+)):(?P<port>\d{1,5})$")


def parse_listen(value: str, cfg: Config | None = None) -> tuple[str, Any]:
    """``HOST:PORT``, ``[V6]:PORT`` or ``unix:/path`` -> ``("tcp", (host, port))`` or
    ``("unix", path)``."""
    value = value.strip()
    if value.startswith("unix:"):
        path = value[len("unix:") :]
        if not path.startswith("/"):
            raise _listen_error(value, cfg)
        return "unix", path
    m = _HOSTPORT.match(value)
    if not m or not 0 < int(m.group("port")) < 65536:
        raise _listen_error(value, cfg)
    return "tcp", (m.group("v6") or m.group("host"), int(m.group("port")))


def _listen_error(value: str, cfg: Config | None) -> ConfigError:
    message = _("listen address {v!r}: give HOST:PORT, [IPv6]:PORT or unix:/absolute/path").format(
        v=value
    )
    return cfg.error(message, "listen") if cfg else ConfigError(message)


_cache: dict[tuple, Config] = {}


def load(environ=None, *, fresh: bool = False) -> Config:
    """The effective configuration (cached per file and modification time)."""
    path, _why = find(environ)
    if path is None:
        return Config()
    try:
        st = path.stat()
        key = (str(path), st.st_mtime_ns, st.st_size)
        if not fresh and key in _cache:
            return _cache[key]
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(_("cannot read {path}: {error}").format(path=path, error=exc)) from None
    cfg = parse(text, path)
    _cache[key] = cfg
    return cfg
