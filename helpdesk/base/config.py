"""``helpdesk.toml``: the one configuration file.

Looked up, first found wins:

1. the path in ``HELPDESK_CONFIG`` (a missing file there is an error: it was asked for);
2. ``/etc/helpdesk/helpdesk.toml``;
3. ``helpdesk.toml`` in the user config directory (``~/.config/helpdesk/`` on Linux).

No file at all is a valid set-up: no connector, defaults everywhere. Every key it may hold
is declared in :data:`KEYS` (with its environment variable, its flag and its default), so
that ``helpdesk config show`` can say where each effective value came from and the README's
table lists them all; another module adds its own with :func:`register` (and, for a section
of free-form tables like ``[connectors]``, :func:`register_section`). For example::

    [database]
    url = "postgresql://helpdesk@/helpdesk"   # or "/var/lib/helpdesk/helpdesk.db"

    [smtp]
    host = "smtp.example.org"
    port = 587
    starttls = true
    user = "helpdesk"
    password_file = "/etc/helpdesk/smtp.secret"

    [mail]
    from = "entraide@example.org"             # the fallback for providers with none

    [[ingest.sources]]                        # mailboxes read by the ingest timer
    kind = "mail"                             # mail | arf | dmarc
    url = "imaps://helpdesk@imap.example.org/INBOX"
    password_file = "/etc/helpdesk/imap.secret"

    [ingest]
    postfix_logs = ["/var/log/mail.log"]

    [serve]
    listen = "127.0.0.1:8000"

    [policyd]
    listen = "127.0.0.1:10040"        # or "unix:/run/helpdesk/policyd.sock"
    on_error = "DUNNO"                # the answer while the database cannot be read:
                                      # DUNNO (fail open) or DEFER_IF_PERMIT (fail closed)

    [paths]
    keymap = "/etc/helpdesk/keymap.toml"
    audit_anchors = "/var/lib/helpdesk/anchors"

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

Command-line flags override environment variables, which override the file, which
overrides the defaults (:meth:`Config.value`); :meth:`Config.origin` says where each
effective value came from (``--db``, ``HELPDESK_DB``, ``/etc/helpdesk/helpdesk.toml:3``,
``default``).

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

from helpdesk.base import files
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


def N_(message: str) -> str:  # marks a message for extraction; translated where shown
    return message


@dataclass(frozen=True)
class Key:
    """One key of ``helpdesk.toml``: its dotted name, the environment variable and the
    flag that override it, its kind (checked when the file is read) and its default.
    ``secret``: the key names a file holding a secret (``*_file``), never the secret."""

    dotted: str
    help: str
    kind: str = "str"  # str | int | bool | path | listen | url | paths | sources
    env: str = ""
    flag: str = ""
    default: Any = None
    secret: bool = False


#: Every key the file may hold, by dotted name, in the order ``config show`` lists them.
KEYS: dict[str, Key] = {}
#: Sections of free-form tables (``[connectors.NAME]``): their checker, given the config.
SECTIONS: dict[str, Any] = {}


def register(*keys: Key) -> None:
    """Declare keys of ``helpdesk.toml`` (a module that reads its own section calls this
    when it is imported; ``config show`` and ``config check`` then know them)."""
    for key in keys:
        KEYS[key.dotted] = key


def register_section(name: str, checker) -> None:
    """Declare a section whose tables are free-form (``checker(cfg, table)`` raises
    :class:`ConfigError` for a wrong one)."""
    SECTIONS[name] = checker


register(
    Key(
        "database.url",
        N_("SQLAlchemy URL or SQLite file of the database"),
        "url",
        env="HELPDESK_DB",
        flag="--db",
        default=N_("helpdesk.db in the user data folder"),
    ),
    Key(
        "smtp.host",
        N_("SMTP server for outgoing mail (none: a local Maildir)"),
        env="HELPDESK_SMTP_HOST",
    ),
    Key(
        "smtp.port",
        N_("SMTP port (default 25, 587 with STARTTLS, 465 with SSL)"),
        "int",
        env="HELPDESK_SMTP_PORT",
    ),
    Key(
        "smtp.starttls",
        N_("STARTTLS on the SMTP connection"),
        "bool",
        env="HELPDESK_SMTP_STARTTLS",
        default=False,
    ),
    Key(
        "smtp.ssl",
        N_("SMTP over TLS from the start (port 465)"),
        "bool",
        env="HELPDESK_SMTP_SSL",
        default=False,
    ),
    Key("smtp.user", N_("SMTP login"), env="HELPDESK_SMTP_USER"),
    Key(
        "smtp.password_file",
        N_("file holding the SMTP password (chmod 600)"),
        "path",
        env="HELPDESK_SMTP_PASSWORD_FILE",
        secret=True,
    ),
    Key(
        "smtp.cafile",
        N_("CA bundle to trust for the SMTP server"),
        "path",
        env="HELPDESK_SMTP_CAFILE",
    ),
    Key(
        "smtp.maildir",
        N_("Maildir written to when no SMTP server is set"),
        "path",
        env="HELPDESK_MAILDIR",
        default=N_("sent/ in the user data folder"),
    ),
    Key("mail.from", N_("sender address for providers that set none"), env="HELPDESK_MAIL_FROM"),
    Key(
        "mail.reset_url",
        N_("password-reset page for providers that set none (https, ends with the token)"),
        env="HELPDESK_RESET_URL",
    ),
    Key(
        "ingest.sources",
        N_(
            "mailboxes read by 'ingest sources': [[ingest.sources]] kind, url, user, password_file, cafile"
        ),
        "sources",
        default=[],
    ),
    Key(
        "ingest.postfix_logs", N_("Postfix log files read by 'ingest sources'"), "paths", default=[]
    ),
    Key(
        "serve.listen",
        N_("address of 'helpdesk serve' (HOST:PORT)"),
        "listen",
        flag="--host/--port",
        default="127.0.0.1:8000",
    ),
    Key(
        "policyd.listen",
        N_("address of 'helpdesk policyd' (HOST:PORT or unix:/path)"),
        "listen",
        env="HELPDESK_POLICYD_LISTEN",
        flag="--listen",
    ),
    Key(
        "policyd.on_error",
        N_("policyd's answer while the database cannot be read: DUNNO or DEFER_IF_PERMIT"),
        default="DUNNO",
    ),
    Key(
        "ssh.authorized_keys",
        N_("authorized_keys file of the helpdesk's system account ('doctor' checks it)"),
        "path",
        default=N_("~/.ssh/authorized_keys of the user running the helpdesk"),
    ),
    Key(
        "paths.keymap",
        N_("the TUI's keymap file"),
        "path",
        env="HELPDESK_KEYMAP",
        default=N_("keymap.toml in the user config folder"),
    ),
    Key(
        "paths.audit_anchors",
        N_("file the audit chain's head is anchored in ('audit anchor')"),
        "path",
        env="HELPDESK_AUDIT_ANCHORS",
        flag="--file/--anchors",
    ),
)


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

    environ: dict | None = None  # the environment read for overrides (None: os.environ)

    def get(self, dotted: str, default: Any = None) -> Any:
        """The value an override (flag) or the file gives (environment variables: see
        :meth:`value`)."""
        if dotted in self.overrides:
            return self.overrides[dotted][0]
        return self.in_file(dotted, default)

    def in_file(self, dotted: str, default: Any = None) -> Any:
        node: Any = self.data
        for part in dotted.split("."):
            if not isinstance(node, dict) or part not in node:
                return default
            node = node[part]
        return node

    def env_value(self, dotted: str) -> str:
        key = KEYS.get(dotted)
        env = os.environ if self.environ is None else self.environ
        return env.get(key.env, "").strip() if key and key.env else ""

    def value(self, dotted: str, default: Any = None) -> Any:
        """The effective value: a flag, else the environment variable, else the file, else
        ``default`` (else the key's declared default)."""
        if dotted in self.overrides:
            return self.overrides[dotted][0]
        if env := self.env_value(dotted):
            return env
        marker = object()
        found = self.in_file(dotted, marker)
        if found is not marker:
            return found
        if default is None and dotted in KEYS:
            default = KEYS[dotted].default
            if isinstance(default, str) and KEYS[dotted].kind in ("url", "path"):
                return None  # a described default ("in the user data folder"): the caller's
        return default

    def origin(self, dotted: str) -> str:
        """Where the effective value of ``dotted`` comes from: the flag, the environment
        variable, the file and its line (``/etc/helpdesk/helpdesk.toml:3``), or the default."""
        if dotted in self.overrides:
            return self.overrides[dotted][1]
        if self.env_value(dotted):
            return KEYS[dotted].env
        marker = object()
        if self.path is not None and self.in_file(dotted, marker) is not marker:
            line = self.key_line(dotted)
            return f"{self.path}:{line}" if line else str(self.path)
        return "default"

    def key_line(self, dotted: str) -> int | None:
        """The line of the file where ``dotted`` is set (``[a]`` then ``b = ``, ``a.b = ``,
        or ``[a.b]`` for a table; ``a.b[2].c``: ``c`` in the second ``[[a.b]]``), or None."""
        wanted: list[str] = []
        index = None
        for part in dotted.split("."):
            m = re.fullmatch(r"(.+)\[(\d+)\]", part)
            if m:
                part, index = m.group(1), (len(wanted) + 1, int(m.group(2)))
            wanted.append(part)
        table: list[str] = []
        seen: dict[tuple, int] = {}
        header = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*(?:#.*)?$")
        assign = re.compile(r"^\s*([A-Za-z0-9_.\"' -]+?)\s*=")
        for number, line in enumerate(self.text.splitlines(), 1):
            if m := header.match(line):
                table = [t.strip().strip("\"'") for t in m.group(2).split(".")]
                if m.group(1) == "[[":
                    seen[tuple(table)] = seen.get(tuple(table), 0) + 1
                if table == wanted and index is None:
                    return number
                continue
            if m := assign.match(line):
                key = [t.strip().strip("\"'") for t in m.group(1).split(".")]
                if table + key != wanted:
                    continue
                if index is not None:
                    size, n = index
                    if table[:size] != wanted[:size] or seen.get(tuple(wanted[:size])) != n:
                        continue
                return number
        return None

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

    def error(self, message: str, needle: str | None = None, key: str | None = None) -> ConfigError:
        line = (self.key_line(key) if key else None) or (self.line_of(needle) if needle else None)
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
        return files.read_text(path).strip()  # a FIFO or a device is refused, not waited on
    except (BadInput, UnicodeDecodeError) as exc:
        raise ConfigError(
            _("{where}: cannot read {path}: {error}").format(where=where, path=path, error=exc)
        ) from None


def parse(text: str, path: Path | None = None) -> Config:
    cfg = Config(path=path, text=text)
    try:
        cfg.data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        where = str(path or "helpdesk.toml")
        m = re.search(r"\(at line (\d+), column (\d+)\)", str(exc))
        if m is None and "at end of document" in str(exc):
            what = str(exc).replace("(at end of document)", "").strip()
            raise ConfigError(f"{where}:{max(len(text.splitlines()), 1)}: {what}") from None
        if m:  # "file:LINE:COL: what", the form editors jump to
            what = str(exc)[: m.start()].strip()
            raise ConfigError(f"{where}:{m.group(1)}:{m.group(2)}: {what}") from None
        raise ConfigError(f"{where}: {exc}") from None
    _validate(cfg)
    return cfg


def _validate(cfg: Config) -> None:
    _no_inline_secrets(cfg, cfg.data, "")
    for dotted, key in KEYS.items():
        marker = object()
        found = cfg.in_file(dotted, marker)
        if found is not marker:
            _check_kind(cfg, key, found)
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
    for name, checker in SECTIONS.items():
        if name in cfg.data:
            checker(cfg, cfg.data[name])
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


_BOOLS = {True: True, False: False}
SOURCE_KINDS = ("mail", "arf", "dmarc")


def _check_kind(cfg: Config, key: Key, value: Any) -> None:
    def bad(what: str) -> ConfigError:
        return cfg.error(
            _("{key}: {what}, not {value!r}").format(key=key.dotted, what=what, value=value),
            key=key.dotted,
        )

    if key.kind in ("str", "url", "path"):
        if not isinstance(value, str) or not value.strip():
            raise bad(_("a non-empty text in quotes is expected"))
        if key.kind == "path" and not value.startswith(("/", "~")):
            raise bad(_("an absolute path is expected"))
    elif key.kind == "int":
        if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 65536:
            raise bad(_("a port number is expected"))
    elif key.kind == "bool":
        if not isinstance(value, bool):
            raise bad(_("true or false is expected"))
    elif key.kind == "listen":
        if not isinstance(value, str):
            raise bad(_("an address in quotes is expected"))
        parse_listen(value, cfg, key=key.dotted)
    elif key.kind == "paths":
        if not isinstance(value, list) or not all(
            isinstance(v, str) and v.startswith("/") for v in value
        ):
            raise bad(_("a list of absolute paths is expected"))
    elif key.kind == "sources":
        if not isinstance(value, list):
            raise bad(_("[[ingest.sources]] tables are expected"))
        for n, source in enumerate(value, 1):
            where = f"{key.dotted}[{n}]"
            if not isinstance(source, dict):
                raise bad(_("[[ingest.sources]] tables are expected"))
            if source.get("kind", "mail") not in SOURCE_KINDS:
                raise cfg.error(
                    _("{where}: kind must be one of {kinds}, not {kind!r}").format(
                        where=where, kinds=", ".join(SOURCE_KINDS), kind=source.get("kind")
                    ),
                    "kind",
                )
            if not isinstance(source.get("url"), str) or not source["url"].strip():
                raise cfg.error(
                    _(
                        "{where}: url is required (imaps://user@host/FOLDER, or a Maildir path)"
                    ).format(where=where),
                    key=key.dotted,
                )
            unknown = set(source) - {"kind", "url", "user", "password_file", "cafile", "name"}
            if unknown:
                raise cfg.error(
                    _("{where}: unknown key(s) {keys}").format(
                        where=where, keys=", ".join(sorted(unknown))
                    ),
                    sorted(unknown)[0],
                )


def unknown_keys(cfg: Config) -> list[tuple[str, int | None]]:
    """Keys of the file no module declared (a typo, most often), with their lines."""
    known_tables = {k.rsplit(".", 1)[0] for k in KEYS} | set(SECTIONS) | {"connectors"}
    found = []
    for section, table in cfg.data.items():
        if section in SECTIONS or section == "connectors":
            continue
        known_section = any(k.startswith(section + ".") for k in KEYS)
        if not isinstance(table, dict) or not known_section:
            if section not in KEYS:
                found.append((section, cfg.key_line(section)))
            continue
        for name in table:
            dotted = f"{section}.{name}"
            if dotted not in KEYS and dotted not in known_tables:
                found.append((dotted, cfg.key_line(dotted)))
    return found


def ingest_sources(cfg: Config) -> list[dict]:
    """The configured sources, each ``{"kind", "target", "environ", "name"}``: ``environ``
    holds what :func:`helpdesk.ingest.mailboxes.open_source` reads for IMAP."""
    out = []
    for n, source in enumerate(cfg.value("ingest.sources") or [], 1):
        environ = {}
        if source.get("user"):
            environ["HELPDESK_IMAP_USER"] = str(source["user"])
        if source.get("cafile"):
            environ["HELPDESK_IMAP_CAFILE"] = str(source["cafile"])
        if source.get("password_file"):
            environ["HELPDESK_IMAP_PASSWORD"] = read_secret(
                Path(str(source["password_file"])).expanduser(),
                where=f"ingest.sources[{n}].password_file",
            )
        out.append(
            {
                "name": str(source.get("name") or f"source-{n}"),
                "kind": source.get("kind", "mail"),
                "target": str(source["url"]),
                "environ": environ,
            }
        )
    return out


def _no_inline_secrets(cfg: Config, node: dict, prefix: str) -> None:
    for key, value in node.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict):
            _no_inline_secrets(cfg, value, dotted + ".")
        elif isinstance(value, list) and any(isinstance(v, dict) for v in value):
            for n, item in enumerate(value, 1):  # [[ingest.sources]]
                if isinstance(item, dict):
                    _no_inline_secrets(cfg, item, f"{dotted}[{n}].")
        elif key.lower() in SECRET_KEYS or key.lower().endswith(("_password", "_secret", "_token")):
            raise cfg.error(
                _(
                    "{key}: a secret is never written in the configuration file; put it in a file (chmod 600) named by {key}_file"
                ).format(key=dotted),
                f"{key}",
                key=dotted,
            )


_HOSTPORT = re.compile(r"^(?:\[(?P<v6>[0-9a-fA-F:]+)\]|(?P<host>[^:\s]+)):(?P<port>\d{1,5})$")


def parse_listen(value: str, cfg: Config | None = None, key: str | None = None) -> tuple[str, Any]:
    """``HOST:PORT``, ``[V6]:PORT`` or ``unix:/path`` -> ``("tcp", (host, port))`` or
    ``("unix", path)``."""
    value = value.strip()
    if value.startswith("unix:"):
        path = value[len("unix:") :]
        if not path.startswith("/"):
            raise _listen_error(value, cfg, key)
        return "unix", path
    m = _HOSTPORT.match(value)
    if not m or not 0 < int(m.group("port")) < 65536:
        raise _listen_error(value, cfg, key)
    return "tcp", (m.group("v6") or m.group("host"), int(m.group("port")))


def _listen_error(value: str, cfg: Config | None, key: str | None = None) -> ConfigError:
    message = _("listen address {v!r}: give HOST:PORT, [IPv6]:PORT or unix:/absolute/path").format(
        v=value
    )
    if key:
        message = f"{key}: {message}"
    return cfg.error(message, "listen", key=key) if cfg else ConfigError(message)


_cache: dict[tuple, Config] = {}


def load(environ=None, *, fresh: bool = False) -> Config:
    """The effective configuration (cached per file and modification time)."""
    path, _why = find(environ)
    if path is None:
        return Config(environ=environ)
    try:
        st = path.stat()
        key = (str(path), st.st_mtime_ns, st.st_size)
        if not fresh and key in _cache:
            return _own(_cache[key], environ)
        text = files.read_text(path)  # a FIFO or a device is refused, not waited on
    except (OSError, BadInput, UnicodeDecodeError) as exc:
        raise ConfigError(
            _("cannot read {path}: {error}").format(path=files.shown(path), error=exc)
        ) from None
    cfg = _cache[key] = parse(text, path)
    return _own(cfg, environ)


def _own(cfg: Config, environ) -> Config:
    """A copy of a cached configuration whose overrides are the caller's own."""
    from dataclasses import replace

    return replace(cfg, overrides={}, environ=environ)
