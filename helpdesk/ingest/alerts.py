"""Mail-reputation alerts raised by ingestion (Postfix volumes and bounces, ARF complaints,
DMARC failures): one open alert per account (or per domain, for DMARC without an account).

While an alert is open, new figures about the same account are added to it as an event
(``alert-figures``) instead of opening another ticket: the volunteer working it sees the
situation grow, and the account's ladder (Indigos art. 7) stays on one ticket. Alerts hold
figures and metadata only (the workflow's declared fields), never message content.
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, col, select

from helpdesk.workflow import engine
from helpdesk.ingest import store
from helpdesk.storage.models import Account, Ticket

QUEUE = "mail-reputation"


def open_alert(
    session: Session, *, policy: str, account_id: int | None, domain: str | None = None
) -> Ticket | None:
    """The open alert this new signal belongs to, if any."""
    q = select(Ticket).where(
        Ticket.queue == QUEUE, Ticket.policy_key == policy, Ticket.state_kind != "done"
    )
    if account_id is not None:
        return session.exec(
            q.where(Ticket.account_id == account_id).order_by(col(Ticket.id))
        ).first()
    if not domain:
        return None
    for ticket in session.exec(q.where(col(Ticket.account_id).is_(None)).order_by(col(Ticket.id))):
        if (ticket.fields or {}).get("domain") == domain:
            return ticket
    return None


def raise_alert(
    session: Session,
    *,
    policy: str,
    account: Account | None,
    fields: dict,
    subject: str,
    note: str,
    now: datetime,
) -> tuple[str, Ticket]:
    """Open an alert, or add these figures to the open one. Returns ("opened"|"updated", ticket)."""
    figures = {k: v for k, v in fields.items() if v not in (None, "")}
    existing = open_alert(
        session,
        policy=policy,
        account_id=account.id if account else None,
        domain=figures.get("domain"),
    )
    if existing is not None:
        store.record(
            session, "alert-figures", ticket=existing, note=note, data={"figures": figures}, now=now
        )
        store.touch(session, existing, now)
        return "updated", existing
    outcome = engine.open_ticket(
        session,
        queue=QUEUE,
        policy_key=policy,
        actor=store.ACTOR,
        account=account,
        subject=subject,
        fields=figures,
        note=note,
        now=now,
    )
    return "opened", outcome.ticket
