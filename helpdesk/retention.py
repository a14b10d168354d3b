"""Retention: personal data of closed tickets is redacted after the provider's period.

Run by ``helpdesk sweep``. A ticket that has been closed for longer than the pack's
``retention_closed`` loses its requester address, subject, the fields its workflow marks
``personal``, the text of its events (redacted so the audit chain still verifies), the
bodies and addresses of its mails, and the content of its evidence (the hashes stay).
Evidence taken from logs goes after ``log_retention`` whatever the ticket's state
(Le PIC: access traces are kept one year).
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, select

from helpdesk import audit, clock, engine
from helpdesk.db import write_session
from helpdesk.models import Event, Evidence, Outbox, Policy, Ticket

REDACTED = "—"


def redact_ticket(session: Session, ticket: Ticket, now: datetime) -> None:
    d = engine.definition(session, ticket.workflow_id)
    personal = {name for name, spec in (d.workflow.fields or {}).items() if spec.get("personal")}
    ticket.requester = ""
    ticket.subject = REDACTED
    ticket.fields = {k: v for k, v in (ticket.fields or {}).items() if k not in personal}
    ticket.redacted_at = now
    session.add(ticket)
    for ev in session.exec(select(Event).where(Event.ticket_id == ticket.id, Event.redacted_at.is_(None))):
        if ev.note or ev.data:
            audit.redact(session, ev, actor="system", reason="retention", at=now)
    for mail in session.exec(select(Outbox).where(Outbox.ticket_id == ticket.id)):
        if mail.status in ("pending", "held", "sending"):
            mail.status = "failed"
            mail.last_error = "retention period over before delivery"
        mail.body = ""
        mail.to_addr = ""
        mail.subject = REDACTED
        session.add(mail)
    for e in session.exec(select(Evidence).where(Evidence.ticket_id == ticket.id, Evidence.redacted_at.is_(None))):
        e.content = b""
        e.redacted_at = now
        session.add(e)
    audit.record(session, actor="system", action="retention", ticket_id=ticket.id, at=now,
                 data={"closed_at": clock.iso(ticket.closed_at)})


def run(url: str | None, now: datetime, report) -> None:
    with write_session(url) as s:
        policies = list(s.exec(select(Policy)))
    for policy in policies:
        params = policy.params or {}
        if params.get("retention_closed"):
            limit = clock.add(now, -clock.parse_duration(params["retention_closed"]), policy.timezone)
            with write_session(url) as s:
                ids = list(
                    s.exec(
                        select(Ticket.id).where(
                            Ticket.policy_key == policy.key,
                            Ticket.state_kind == "done",
                            Ticket.redacted_at.is_(None),
                            Ticket.closed_at.is_not(None),
                            Ticket.closed_at <= limit,
                        )
                    )
                )
            for tid in ids:
                with write_session(url) as s:
                    redact_ticket(s, s.get(Ticket, tid), now)
                report.redacted.append(tid)
        if params.get("log_retention"):
            limit = clock.add(now, -clock.parse_duration(params["log_retention"]), policy.timezone)
            with write_session(url) as s:
                rows = s.exec(
                    select(Evidence)
                    .join(Ticket, Ticket.id == Evidence.ticket_id)
                    .where(Ticket.policy_key == policy.key, Evidence.kind == "log", Evidence.redacted_at.is_(None),
                           Evidence.received_at <= limit)
                )
                for e in rows:
                    e.content = b""
                    e.redacted_at = now
                    s.add(e)
                    audit.record(s, actor="system", action="retention", ticket_id=e.ticket_id, at=now, data={"evidence": e.id})
