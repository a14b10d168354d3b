"""What each source saw of an account's logins (:class:`helpdesk.storage.models.LoginSeen`).

Kept per account and source, the latest ever read: a source that forgets (an admin's
reset clears ``pwdLastSuccess``) never moves it back. Written by ``account sync``
(:mod:`helpdesk.service.logins`) and by a queued ``read-last-login`` action
(:mod:`helpdesk.outgoing.actions`).
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, select

from helpdesk.storage.models import Account, LoginSeen


def record(
    s: Session, account: Account, source: str, seen_at: datetime | None, now: datetime
) -> bool:
    """Remember that ``source`` saw ``account`` log in at ``seen_at``; True if it is news."""
    if seen_at is None:
        return False
    row = s.exec(
        select(LoginSeen).where(LoginSeen.account_id == account.id, LoginSeen.source == source)
    ).first()
    changed = False
    if row is None:
        s.add(LoginSeen(account_id=account.id, source=source, seen_at=seen_at, read_at=now))
        changed = True
    else:
        row.read_at = now
        if seen_at > row.seen_at:
            row.seen_at, changed = seen_at, True
        s.add(row)
    if account.last_login is None or seen_at > account.last_login:
        account.last_login = seen_at
        account.updated_at = now
        s.add(account)
        changed = True
    return changed
