"""Setting an account's password: the one call the reset page makes (never queued).

The dispatch is :func:`helpdesk.connectors.set_password`: the provider's **directory**
(``type = "ldap"``: the Password Modify extended operation, the server hashes and checks
it) when it has one, otherwise its **command** connector configured for ``set-password``
(a program such as ``yunohost user update``, which gets the password on its standard
input, never on its command line). This module adds what the page needs on top: a
refusal the person can act on (:class:`PasswordRefused`: choose another password), and
a provider served by two directories said as a configuration to fix, not guessed.

The password is passed through and forgotten: it is never stored, logged or put into an
error text.
"""

from __future__ import annotations

from helpdesk.base.config import Config
from helpdesk.connectors import Connector, PasswordRefused, Permanent, for_policy, password_setter
from helpdesk.connectors import set_password as _set_password

__all__ = ["PasswordRefused", "password_connector", "set_password"]


def password_connector(config: Config, policy_key: str) -> Connector | None:
    """The connector that sets this provider's passwords, or None when none is configured.
    Two of the preferred type is a configuration to fix, not a choice to guess."""
    chosen = password_setter(config, policy_key)
    if chosen is not None:
        same = [
            c
            for c in for_policy(config, policy_key)
            if c.type == chosen.type and c.can_set_password
        ]
        if len(same) > 1:
            raise Permanent(
                f"{policy_key}: {len(same)} {chosen.type} connectors serve this provider "
                f"({', '.join(c.name for c in same)}): the password would be set in one only"
            )
    return chosen


def set_password(
    config: Config,
    policy_key: str,
    login: str,
    password: str,
    fields: dict | None = None,
    ticket: int | None = None,
) -> tuple[str, str]:
    """Set the password of ``login`` (an account of ``policy_key``) on the service that
    holds it. Returns ``(connector name, the service's answer)``; raises
    :class:`PasswordRefused` when the service refused this password, another
    :class:`~helpdesk.connectors.ConnectorError` otherwise."""
    if password_connector(config, policy_key) is None:
        raise Permanent(
            f"{policy_key}: no directory (ldap) or command connector serves this provider in helpdesk.toml"
        )
    connector, answer = _set_password(
        config, policy_key, login, password, fields=fields, ticket=ticket
    )
    return connector.name, answer
