"""One-time reset credentials.

The secret is random, shown or mailed once, and only its SHA-256 is stored: it never
appears in events, logs or command output. A mailed link's secret is minted at delivery,
so not even the outbox holds it.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime

from sqlmodel import Session, select

from helpdesk.storage.models import ResetToken

CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"  # nothing to misread over the phone


def hash_secret(secret: str) -> str:
    return (
        hashlib.sha256(secret.strip().replace("-", "").upper().encode()).hexdigest()
        if _is_code(secret)
        else hashlib.sha256(secret.strip().encode()).hexdigest()
    )


def _is_code(secret: str) -> bool:
    s = secret.strip().replace("-", "").upper()
    return len(s) == 12 and all(c in CODE_ALPHABET for c in s)


def new_link_secret() -> str:
    return secrets.token_urlsafe(32)


def new_phone_code() -> str:
    raw = "".join(secrets.choice(CODE_ALPHABET) for _ in range(12))
    return "-".join(raw[i : i + 4] for i in range(0, 12, 4))


def mint(session: Session, token: ResetToken, now: datetime, *, phone: bool = False) -> str:
    """Create the secret for a token, store its hash, and return the secret (once)."""
    secret = new_phone_code() if phone else new_link_secret()
    token.token_hash = hash_secret(secret)
    token.minted_at = now
    session.add(token)
    return secret


def find(
    session: Session, secret: str, now: datetime, *, lock: bool = False
) -> tuple[ResetToken | None, str]:
    """Look a secret up without spending it: ``(token, "")`` while it is valid now, else
    ``(token or None, why)`` with why ``unknown``, ``used`` or ``expired``. ``lock`` takes the
    token's row for the rest of the transaction (the reset page sets the password under it)."""
    if not secret or not secret.strip() or len(secret) > 200:
        return None, "unknown"
    query = select(ResetToken).where(ResetToken.token_hash == hash_secret(secret))
    if lock:
        query = query.with_for_update()
    token = session.exec(query).first()
    if token is None:
        return None, "unknown"
    if token.used_at is not None:
        return token, "used"
    if now >= token.expires_at:
        return token, "expired"
    return token, ""


def spend(session: Session, token: ResetToken, now: datetime) -> None:
    """The secret works no more."""
    token.used_at = now
    session.add(token)


def redeem(session: Session, secret: str, now: datetime) -> ResetToken | None:
    """Use a secret once: the token if it is valid now (then spent), else None."""
    token = session.exec(
        select(ResetToken).where(ResetToken.token_hash == hash_secret(secret))
    ).first()
    if token is None or token.used_at is not None or now >= token.expires_at:
        return None
    token.used_at = now
    session.add(token)
    return token
