"""What a guard or an effect sees when an action is checked or applied."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from helpdesk.base import clock
from helpdesk.storage.models import Account, Deadline, Event, Policy, Ticket, Transition, Workflow
from helpdesk.base.roles import SYSTEM, SYSTEM_ACTOR, Actor  # noqa: F401 - re-exported


@dataclass
class Ctx:
    session: Session
    ticket: Ticket
    account: Account | None
    policy: Policy
    workflow: Workflow
    actor: Actor
    now: datetime
    training: bool = False
    transition: Transition | None = None
    given: dict = field(default_factory=dict)  # fields given with this action
    note: str = ""
    checks: set = field(default_factory=set)
    mails: list = field(default_factory=list)  # Outbox rows queued by effects
    actions: list = field(default_factory=list)  # ServiceAction rows queued by effects
    pending_mails: list = field(default_factory=list)  # rendered once the step is complete
    reveal: list = field(default_factory=list)  # one-time secrets for the actor's eyes only
    output: list = field(default_factory=list)  # material the action shows (e.g. logs read)
    event_data: dict = field(default_factory=dict)
    token: Any = None  # the ResetToken an effect created, for the mail that carries it
    open_ticket: Any = None  # the engine's open_ticket, for an effect that opens a linked ticket
    _ledger: list | None = None

    @property
    def tz(self) -> str:
        return self.policy.timezone

    @property
    def fields(self) -> dict:
        """The ticket's fields as they will be once this action's fields are in."""
        merged = dict(self.ticket.fields or {})
        merged.update(self.given)
        return merged

    def param(self, name: str, default: Any = None) -> Any:
        return (self.policy.params or {}).get(name, default)

    def duration_param(self, name: str):
        value = self.param(name)
        if not value:
            raise KeyError(f"policy {self.policy.key} has no parameter {name}")
        return clock.parse_duration(value)

    def deadline(self, name: str) -> Deadline | None:
        return self.session.exec(
            select(Deadline)
            .where(
                Deadline.ticket_id == self.ticket.id,
                Deadline.name == name,
                Deadline.status != "cancelled",
            )
            .order_by(col(Deadline.id).desc())
        ).first()

    def this_ticket_steps(self) -> set[str]:
        """The sanction steps already taken on this ticket (this matter)."""
        if self._ledger is None:
            self._ledger = list(
                self.session.exec(
                    select(Event).where(
                        Event.ticket_id == self.ticket.id, col(Event.sanction).is_not(None)
                    )
                )
            )
        return {e.sanction for e in self._ledger}
