"""Setting an account's password: the one call the reset page makes (never queued).

:func:`set_password` dispatches by the provider's configured connectors: its **directory**
(``type = "ldap"``: the Password Modify extended operation, the server hashes and checks
it) when it has one, otherwise its **command** connector (``type = "command"``: a program
such as ``yunohost user update``), which implements :meth:`Connector.set_password` too
(the password reaches the program on its standard input, never on its command line).
Any other connector cannot set a password.

The password is passed through and forgotten: it is never stored, logged or put into an
error text.
"""

from __future__ import annotations

from helpdesk.base.config import Config
from helpdesk.connectors import Connector, Permanent, for_policy

#: The connector types that can set a password, in the order they are preferred: the
#: directory where there is one, else the command connector.
PASSWORD_TYPES = ("ldap", "command")


class PasswordRefused(Permanent):
    """The service refused this password (too short, too simple, used before): the person
    may choose another one."""


def password_connector(config: Config, policy_key: str) -> Connector | None:
    """The connector that sets this provider's passwords, or None when none is configured.
    Two of the same preferred type is a configuration to fix, not a choice to guess."""
    serving = for_policy(config, policy_key)
    for kind in PASSWORD_TYPES:
        found = [c for c in serving if c.type == kind]
        if len(found) > 1:
            raise Permanent(
                f"{policy_key}: {len(found)} {kind} connectors serve this provider "
                f"({', '.join(c.name for c in found)}): the password would be set in one only"
            )
        if found:
            return found[0]
    return None


def set_password(
    config: Config, policy_key: str, login: str, password: str, fields: dict | None = None
) -> tuple[str, str]:
    """Set the password of ``login`` (an account of ``policy_key``) on the service that
    holds it. Returns ``(connector name, the service's answer)``; raises
    :class:`PasswordRefused` when the service refused this password, another
    :class:`~helpdesk.connectors.ConnectorError` otherwise."""
    connector = password_connector(config, policy_key)
    if connector is None:
        raise Permanent(
            f"{policy_key}: no directory (ldap) or command connector serves this provider in helpdesk.toml"
        )
    # Both types implement Connector.set_password(target, password) -> str: the directory
    # in helpdesk.connectors.ldap, the command connector in helpdesk.connectors.command.
    answer = connector.set_password(connector.target(login, fields), password)
    return connector.name, answer
