"""The sanctions ledger: one per account, across abuse and mail-reputation tickets.

Steps are recorded as events with a ``sanction``. The ledger informs whoever decides (it is
shown on the ticket, in the action preview and in ``ticket show``); it never unlocks or
blocks a step by itself: no provider's text says that an earlier matter changes the
procedure of a new one (Indigos art. 11 asks for an exchange on each matter,
CommunesPlone art. 6.11 grades by the gravity of the facts).
"""

from __future__ import annotations

from sqlmodel import Session, col, select

from helpdesk.base import clock
from helpdesk.storage.models import Event, Ticket


def of_account(session: Session, account_id: int | None) -> list[Event]:
    """Every sanction step recorded for the account, oldest first."""
    if account_id is None:
        return []
    return list(
        session.exec(
            select(Event)
            .where(Event.account_id == account_id, col(Event.sanction).is_not(None))
            .order_by(col(Event.id))
        )
    )


def as_rows(events: list[Event], session: Session | None = None) -> list[dict]:
    """The ledger as plain data (stable keys, UTC); with a session, each row names its queue."""
    queues: dict[int, str] = {}
    if session is not None:
        ids = {e.ticket_id for e in events if e.ticket_id}
        if ids:
            queues = dict(
                session.exec(select(Ticket.id, Ticket.queue).where(col(Ticket.id).in_(ids))).all()
            )
    return [
        {
            "at": clock.iso(e.at),
            "ticket": e.ticket_id,
            **({"queue": queues.get(e.ticket_id)} if session is not None else {}),
            "step": e.sanction,
            "action": e.action,
            "actor": e.actor,
            "note": e.note,
        }
        for e in events
    ]
