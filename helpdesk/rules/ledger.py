"""The sanctions ledger: one per account, across abuse and mail-reputation tickets.

Steps are recorded as events with a ``sanction``; the ladders read them so that a second
offence does not start again at the first step.
"""

from __future__ import annotations

from helpdesk.storage.models import Event

LEVEL = {
    "contact": 0,
    "warning": 1,
    "send-suspension": 1,
    "suspension": 2,
    "interruption": 2,
    "closure": 3,
    "authorities": 4,
}


def highest(events: list[Event]) -> int:
    return max((LEVEL.get(e.sanction or "", -1) for e in events), default=-1)


def top_step(events: list[Event]) -> str:
    best = max(events, key=lambda e: LEVEL.get(e.sanction or "", -1), default=None)
    return best.sanction if best else ""


def restarts(step: str, earlier_top: int) -> bool:
    """Would taking ``step`` start the ladder again below where earlier offences reached?
    A first-rung step (a warning) is never repeated; higher steps may be."""
    level = LEVEL[step]
    if level < earlier_top:
        return True
    return level == LEVEL["warning"] and earlier_top >= LEVEL["warning"]


def as_rows(events: list[Event]) -> list[dict]:
    from helpdesk.base import clock

    return [
        {
            "at": clock.iso(e.at),
            "ticket": e.ticket_id,
            "step": e.sanction,
            "action": e.action,
            "actor": e.actor,
            "note": e.note,
        }
        for e in events
    ]
