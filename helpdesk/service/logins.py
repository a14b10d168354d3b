"""Last logins from every source, and ``helpdesk account sync``.

Each source (a directory's ``pwdLastSuccess``, Dovecot's ``last_login`` plugin, a date
given by ``account add --last-login``) reports a last login. We keep, per account and
source, the latest one ever read (:class:`helpdesk.storage.models.LoginSeen`): a source that
forgets (an admin reset clears ``pwdLastSuccess``) never moves it back. The account's
``last_login`` is the latest across every source, the way Nextcloud's user_retention takes
the latest of several signals, and :func:`latest` says which source gave it.

An account that no source has ever seen has no last login: the inactivity scan counts
from the day it was added to the helpdesk, never "inactive since forever".
"""

from __future__ import annotations

from typing import Any

from datetime import datetime

from sqlmodel import Session, select

from helpdesk.storage import audit
from helpdesk.base import clock
from helpdesk import connectors
from helpdesk.storage.db import write_session
from helpdesk.workflow.engine import require_role
from helpdesk.base.errors import BadInput
from helpdesk.base.i18n import _
from helpdesk.rules.last_logins import record
from helpdesk.storage.models import Account, LoginSeen, Policy
from helpdesk.base.untrusted import clean

__all__ = ["latest", "record", "sync"]


def latest(s: Session, account: Account) -> tuple[datetime | None, str]:
    """The latest login across sources, and the source that reported it."""
    rows = list(s.exec(select(LoginSeen).where(LoginSeen.account_id == account.id)))
    best = max(rows, key=lambda r: r.seen_at, default=None)
    if best is not None and (account.last_login is None or best.seen_at >= account.last_login):
        return best.seen_at, best.source
    if account.last_login is not None:
        return account.last_login, "helpdesk"  # given by hand (account add, import)
    return None, ""


def sync(url: str | None, policy_key: str, cfg, actor) -> dict:
    """Read every connector of the provider: accounts from the directories (added when
    new: login, mail), last logins from every source. Audited as one ``account-sync``."""
    now = clock.now()
    with write_session(url) as s:
        require_role(s, actor, "oncall")
        if s.get(Policy, policy_key) is None:
            raise BadInput(_("unknown policy {key!r}").format(key=policy_key))
    conns = connectors.for_policy(cfg, policy_key)
    if not conns:
        raise BadInput(
            _("no connector serves {policy} in helpdesk.toml: nothing to sync").format(
                policy=policy_key
            )
        )
    report: dict[str, Any] = {
        "policy": policy_key,
        "added": [],
        "updated": [],
        "logins": 0,
        "problems": [],
        "sources": [],
    }
    for c in conns:
        try:
            listed = c.accounts() if hasattr(c, "accounts") else None
            seen = (
                {a["login"]: a["last_login"] for a in listed if a["last_login"]}
                if listed is not None
                else c.last_logins()
            )
        except connectors.ConnectorError as exc:
            report["problems"].append(f"{c.name}: {exc}")
            continue
        report["sources"].append(c.name)
        with write_session(url) as s:
            by_login = {
                a.login: a for a in s.exec(select(Account).where(Account.policy_key == policy_key))
            }
            for entry in listed or []:
                login = clean(entry["login"]).strip()
                if login and login not in by_login:
                    acc = Account(
                        policy_key=policy_key,
                        login=login,
                        email=clean(entry.get("email", "")).strip().lower(),
                        created_at=now,
                        updated_at=now,
                    )
                    s.add(acc)
                    s.flush()
                    by_login[login] = acc
                    report["added"].append(login)
            for login, at in seen.items():
                acc = by_login.get(login)
                if acc is not None and record(s, acc, c.name, at, now):
                    report["logins"] += 1
                    if login not in report["added"] and login not in report["updated"]:
                        report["updated"].append(login)
    with write_session(url) as s:
        audit.record(
            s,
            actor=actor.login,
            action="account-sync",
            at=now,
            note=policy_key,
            data={
                "policy": policy_key,
                "sources": report["sources"],
                "added": len(report["added"]),
                "updated": len(report["updated"]),
                "problems": report["problems"],
            },
        )
    return report
