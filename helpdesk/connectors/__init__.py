"""Connectors: the services a step acts on (directory, mail server, sessions...).

One module per service, each a :class:`Connector` built from its ``[connectors.NAME]``
table of ``helpdesk.toml`` (:mod:`helpdesk.base.config`). The action queue
(:mod:`helpdesk.outgoing.actions`) calls :meth:`Connector.run` with one action, and reads
the outcome from how it returns:

- it returns a short text (the service's answer): **done**;
- it raises :class:`Temporary` (the service is down, busy, timed out before acting): the
  action is **retried** with backoff;
- it raises :class:`Permanent` (the service refused: no such user, no right): **failed**,
  a person looks at it;
- it raises :class:`Uncertain` (the service may or may not have acted, and reading it
  back did not tell): **uncertain**, a person decides.

Every action of every connector is idempotent: running it twice leaves the service as
running it once did (an LDAP *replace*, a delete that accepts "already gone", a kick of
sessions that may already be closed). That is what lets the queue retry safely.

Action kinds (stable keys, used in workflows and in ``helpdesk actions list``):
``lock``, ``unlock``, ``force-change``, ``revoke-sessions``, ``suspend-sending``,
``lift-sending``, ``erase``, ``read-last-login``. ``set-password`` is a connector call that is
never queued (the password would have to wait in the table): the reset page calls it at
once (:meth:`Connector.set_password`).
"""

from __future__ import annotations

import importlib
from datetime import datetime
from typing import Any

from helpdesk.base.config import CONNECTOR_TYPES, SERVICE_ACTION_KINDS, Config

KINDS = SERVICE_ACTION_KINDS

#: type -> module under helpdesk.connectors; imported only when a connector of that type
#: is used, so a server library (ldap3) is needed only where that service is configured.
TYPES = CONNECTOR_TYPES


class ConnectorError(Exception):
    """A connector could not do an action; the subclass says what the queue does next."""


class Temporary(ConnectorError):
    """Nothing was done and it may work later: retried with backoff."""


class Permanent(ConnectorError):
    """The service refused: retrying will not help until a person fixes the cause."""


class PasswordRefused(Permanent):
    """The service refused this password (too short, too simple, used before): the person
    may choose another one (the reset page asks for it)."""


class Uncertain(ConnectorError):
    """The service may or may not have acted: a person checks and decides."""


class Connector:
    """The common protocol. Subclasses set ``type`` and ``kinds`` and implement ``_do_<kind>``."""

    type = ""
    kinds: frozenset[str] = frozenset()

    def __init__(self, name: str, settings: dict, config: Config):
        self.name = name
        self.settings = settings
        self.config = config
        policies = settings.get("policies", [])
        self.policies = "*" if policies == "*" else tuple(policies)

    # --- what the queue uses -------------------------------------------------------------

    def serves(self, policy_key: str) -> bool:
        return self.policies == "*" or policy_key in self.policies

    def target(self, login: str, fields: dict | None = None) -> str:
        """The account's name on this service (the account login unless configured)."""
        return login

    #: True where :meth:`set_password` works (the directory; a command configured for it).
    can_set_password = False

    def run(self, kind: str, target: str, params: dict) -> str:
        if kind not in self.kinds:
            raise Permanent(f"{self.name} ({self.type}) cannot {kind}")
        if kind == "read-last-login":
            seen = self.last_login(target)
            return f"last login {seen.isoformat()}" if seen else "no login seen"
        return getattr(self, "_do_" + kind.replace("-", "_"))(target, params)

    def check(self) -> str:
        """Try the service read-only; return what works, raise ConnectorError otherwise."""
        raise NotImplementedError

    def last_login(self, target: str) -> datetime | None:
        """The last login this service knows of (UTC), or None."""
        return None

    def last_logins(self) -> dict[str, datetime]:
        """Every account's last login this service knows of, by its name here."""
        return {}

    def set_password(self, target: str, password: str, params: dict | None = None) -> str:
        """Set ``target``'s password at once (the reset page; never queued). ``params``:
        ``policy`` and ``ticket``, for a program that wants them."""
        raise Permanent(f"{self.name} ({self.type}) cannot set a password")

    def describe(self) -> str:
        return f"{self.name} ({self.type})"

    def secret(self, name: str) -> str:
        return self.config.secret(f"connectors.{self.name}", self.settings, name)

    def setting(self, name: str, default: Any = None) -> Any:
        return self.settings.get(name, default)


def build(name: str, settings: dict, config: Config) -> Connector:
    module = importlib.import_module(f"helpdesk.connectors.{TYPES[settings['type']]}")
    return module.CONNECTOR(name, settings, config)


def all_connectors(config: Config) -> list[Connector]:
    return [build(name, settings, config) for name, settings in config.connectors.items()]


def for_policy(config: Config, policy_key: str) -> list[Connector]:
    return [c for c in all_connectors(config) if c.serves(policy_key)]


def by_name(config: Config, name: str) -> Connector | None:
    settings = config.connectors.get(name)
    return build(name, settings, config) if settings else None


def password_setter(config: Config, policy_key: str) -> Connector | None:
    """The connector that sets a password for ``policy_key``: its directory if it has
    one, else a command connector configured for ``set-password`` (YunoHost's ``yunohost
    user update``...), else None (no way to set one from here)."""
    able = [c for c in for_policy(config, policy_key) if c.can_set_password]
    able.sort(key=lambda c: c.type != "ldap")
    return able[0] if able else None


def set_password(
    config: Config,
    policy_key: str,
    login: str,
    password: str,
    *,
    fields: dict | None = None,
    ticket: int | None = None,
) -> tuple[Connector, str]:
    """Set ``login``'s password on the provider's service, at once: through the directory
    (Password Modify), or where there is none through the command connector (the program
    gets ``{"action": "set-password", "password": ...}`` on its standard input, and on
    nothing else). Returns the connector and its answer (never holding the password).
    Raises :class:`Temporary`, :class:`Permanent` (also when nothing can set passwords for
    that provider) or :class:`Uncertain`, like a queued action."""
    conn = password_setter(config, policy_key)
    if conn is None:
        raise Permanent(f"no connector can set a password for {policy_key} in helpdesk.toml")
    target = conn.target(login, fields)
    answer = conn.set_password(target, password, {"policy": policy_key, "ticket": ticket})
    return conn, answer.replace(password, "********") if password else answer
