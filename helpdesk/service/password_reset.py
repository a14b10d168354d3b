"""What the reset page does with a one-time secret: look at it, then set the password.

Two ways in, one per channel of the password-reset procedure:

- a **link** mailed to the verified contact: its secret alone (``channel = "email"``);
- a **phone code** read out by the volunteer (CommunesPlone art. 6.7: no access
  information by mail): the account's login and the code together (``channel = "phone"``).

:func:`look` checks a secret without spending it (the page then asks for the new password);
:func:`change_password` checks it again under the token's row lock, sets the password on
the provider's directory or command connector
(:func:`helpdesk.connectors.passwords.set_password`), and only then spends the secret. A
service that is down or refuses leaves the secret usable. A training database never
touches a service: the secret is spent and the step recorded as ``would-have-done``.

Every outcome is an audit event with actor ``system`` (``reset-page-refused``,
``reset-password-set``, ``reset-redeemed``, ``reset-password-failed``): the ticket,
the account, the token's id, the channel, the connector and its answer. Never the secret,
never the password.
"""

from __future__ import annotations

from typing import Any

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session

from helpdesk.base.config import Config
from helpdesk.connectors import ConnectorError
from helpdesk.connectors.passwords import PasswordRefused, set_password
from helpdesk.policy import provider_settings
from helpdesk.rules import tokens
from helpdesk.rules.access import is_training
from helpdesk.storage import audit, db
from helpdesk.storage.models import Account, Policy, ResetToken

CHANNELS = ("email", "phone")
UNUSABLE = ("deactivated", "erased")


@dataclass
class Looked:
    """What the page may show about a secret: nothing but the refusal's kind when it is
    not valid now."""

    valid: bool
    reason: str = ""  # unknown | used | expired | unusable
    login: str = ""
    policy: str = ""
    provider: str = ""
    min_length: int = provider_settings.PASSWORD_MIN_LENGTH
    channel: str = ""


@dataclass
class Changed:
    """The outcome of :func:`change_password`: ``done``, ``refused`` (the secret is not
    valid: ``reason`` says why), ``short`` (below the provider's minimum), ``weak`` (the
    service refused this password: choose another) or ``failed`` (the service could not do
    it now; the secret still works)."""

    outcome: str
    reason: str = ""
    min_length: int = provider_settings.PASSWORD_MIN_LENGTH


def _token(
    s: Session, secret: str, now: datetime, channel: str, login: str | None, lock: bool
) -> tuple[ResetToken | None, Account | None, str]:
    token, why = tokens.find(s, secret, now, lock=lock)
    if token is None or token.channel != channel:
        return None, None, "unknown"  # a link's secret is not a phone code, and the reverse
    account = s.get(Account, token.account_id)
    if account is None:
        return None, None, "unknown"
    if channel == "phone" and (login or "").strip().casefold() != account.login.casefold():
        return None, None, "unknown"  # never tell that the code exists for someone else
    if why:
        return token, account, why
    if account.status in UNUSABLE:
        return token, account, "unusable"
    return token, account, ""


def _refused(
    s: Session, token: ResetToken | None, account: Account | None, why: str, channel: str
) -> None:
    audit.record(
        s,
        actor="system",
        action="reset-page-refused",
        ticket_id=token.ticket_id if token else None,
        account_id=account.id if account else None,
        data={"reason": why, "channel": channel, **({"token": token.id} if token else {})},
    )


def look(
    url: str | None, secret: str, now: datetime, *, channel: str = "email", login: str | None = None
) -> Looked:
    """Whether ``secret`` (with ``login`` for a phone code) opens the form now. A refusal is
    audited; a valid secret is not spent."""
    with db.write_session(url) as s:
        token, account, why = _token(s, secret, now, channel, login, lock=False)
        if why:
            _refused(s, token, account, why, channel)
            return Looked(False, why)
        policy = s.get(Policy, account.policy_key)
        return Looked(
            True,
            login=account.login,
            policy=account.policy_key,
            provider=policy.name if policy else account.policy_key,
            min_length=provider_settings.password_min_length(s, policy),
            channel=channel,
        )


def change_password(
    url: str | None,
    secret: str,
    password: str,
    now: datetime,
    *,
    config: Config,
    channel: str = "email",
    login: str | None = None,
) -> Changed:
    """Check the secret again (its row locked), set the password, then spend the secret."""
    with db.write_session(url) as s:
        token, account, why = _token(s, secret, now, channel, login, lock=True)
        if why:
            _refused(s, token, account, why, channel)
            return Changed("refused", why)
        minimum = provider_settings.password_min_length(s, s.get(Policy, account.policy_key))
        if len(password) < minimum:
            return Changed("short", min_length=minimum)
        where: dict[str, Any] = {"ticket_id": token.ticket_id, "account_id": account.id}
        data = {"token": token.id, "channel": channel, "via": "reset-page"}
        if is_training(s):
            audit.record(
                s,
                actor="system",
                action="reset-password-set",
                **where,
                data={**data, "status": "would-have-done"},
            )
        else:
            try:
                name, answer = set_password(
                    config,
                    account.policy_key,
                    account.login,
                    password,
                    account.fields,
                    ticket=token.ticket_id,
                )
            except PasswordRefused as exc:
                audit.record(
                    s,
                    actor="system",
                    action="reset-password-failed",
                    **where,
                    data={**data, "status": "refused", "error": _masked(str(exc), password)},
                )
                return Changed("weak", min_length=minimum)
            except ConnectorError as exc:
                audit.record(
                    s,
                    actor="system",
                    action="reset-password-failed",
                    **where,
                    data={
                        **data,
                        "status": type(exc).__name__.lower(),
                        "error": _masked(str(exc), password),
                    },
                )
                return Changed("failed", min_length=minimum)
            audit.record(
                s,
                actor="system",
                action="reset-password-set",
                **where,
                data={
                    **data,
                    "status": "done",
                    "connector": name,
                    "answer": _masked(answer, password),
                },
            )
        tokens.spend(s, token, now)
        audit.record(s, actor="system", action="reset-redeemed", **where, data=data)
        return Changed("done", min_length=minimum)


def _masked(text: str, password: str) -> str:
    """A service's words for the audit trail: a program that echoed the password does not
    put it there."""
    return (text.replace(password, "********") if password else text)[:500]


def note_limited(url: str | None, kind: str, client: str) -> None:
    """A limit of the reset page was reached (``kind``: address, secret or login): the
    client's address is kept, never the secret or the login tried."""
    with db.write_session(url) as s:
        audit.record(
            s,
            actor="system",
            action="reset-page-limited",
            data={"limit": kind, "client": client[:64]},
        )
