"""Retention: personal data of closed tickets is redacted after the provider's period.

Run by ``helpdesk sweep``. A ticket that has been closed for longer than the pack's
``retention_closed`` loses its requester address, subject, the fields its workflow marks
``personal``, the text of its events (redacted so the audit chain still verifies), the
bodies and addresses of its mails, the messages of its conversation (addresses, subjects,
texts, attachment names; sizes and hashes stay) and the content of its evidence (the
hashes stay).
Evidence taken from logs goes after ``log_retention`` whatever the ticket's state
(Le PIC: access traces are kept one year).

Raw input that is on no ticket is deleted, not kept for ever: quarantined items (mails,
reports, log lines ingestion could not use, released or not) after ``quarantine_retention``,
and evidence kept on no ticket (a DMARC report whose figures opened no alert) after
``evidence_retention``. Such rows cannot be told apart by provider, so the shortest period
of all the providers in the database applies: a provider's setting (``helpdesk policy set``),
else its pack's value (Le PIC: the 52 days of its per-site logs), else 90 days (see
``helpdesk.policy.provider_settings``). Each purge is one ``retention-purge`` event: what, how many, up to
which date and whose period; never the content.

Audit events that hold personal data on no ticket go on the same period as untied evidence
(``evidence_retention``, an access trace like a log line): the reset page's
``reset-page-limited`` events keep the client's address, which nothing else would ever
forget. They are redacted, not deleted (``audit.redact``: the chain still verifies, and
each redaction is its own ``redact`` event); the action and the date stay.
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, col, select

from sqlalchemy import delete, func

from helpdesk.storage import audit, messages
from helpdesk.base import clock
from helpdesk.workflow import engine
from helpdesk.policy import provider_settings
from helpdesk.storage.db import write_session
from helpdesk.workflow.isolation import isolated
from helpdesk.storage.models import Event, Evidence, Outbox, Policy, Quarantine, Ticket

REDACTED = "—"
#: Audit events kept on no ticket whose data names a person (the reset page's client address).
UNTIED_PERSONAL_EVENTS = ("reset-page-limited",)
PURGE_BATCH = 5000  # rows deleted per kind and per sweep (cron runs sweep often)


def redact_ticket(session: Session, ticket: Ticket, now: datetime) -> None:
    d = engine.definition(session, ticket.workflow_id)
    personal = {name for name, spec in (d.workflow.fields or {}).items() if spec.get("personal")}
    ticket.requester = ""
    ticket.subject = REDACTED
    ticket.fields = {k: v for k, v in (ticket.fields or {}).items() if k not in personal}
    ticket.redacted_at = now
    session.add(ticket)
    for ev in list(
        session.exec(
            select(Event).where(Event.ticket_id == ticket.id, col(Event.redacted_at).is_(None))
        )
    ):
        if ev.note or ev.data:
            audit.redact(session, ev, actor="system", reason="retention", at=now)
    for mail in session.exec(select(Outbox).where(Outbox.ticket_id == ticket.id)):
        if mail.status in ("pending", "held", "sending"):
            mail.status = "failed"
            mail.last_error = "retention period over before delivery"
        mail.body = ""
        mail.to_addr = ""
        mail.bounce_reason = ""  # the server's words name the address
        mail.subject = REDACTED
        session.add(mail)
    for e in session.exec(
        select(Evidence).where(Evidence.ticket_id == ticket.id, col(Evidence.redacted_at).is_(None))
    ):
        e.content = b""
        e.redacted_at = now
        session.add(e)
    n = messages.redact(session, ticket.id, now)
    audit.record(
        session,
        actor="system",
        action="retention",
        ticket_id=ticket.id,
        at=now,
        data={"closed_at": clock.iso(ticket.closed_at), "messages": n},
    )


def run(url: str | None, now: datetime, report) -> None:
    with write_session(url) as s:
        policies = list(s.exec(select(Policy)))
    for policy in policies:
        isolated(
            report,
            {"policy": policy.key, "scan": "retention"},
            _run_policy,
            url,
            policy,
            now,
            report,
        )
    isolated(report, {"scan": "retention-purge"}, _purge_untied, url, now, report)
    isolated(report, {"scan": "retention-events"}, _redact_untied_events, url, now, report)


def _run_policy(url: str | None, policy: Policy, now: datetime, report) -> None:
    params = policy.params or {}
    if params.get("retention_closed"):
        limit = clock.add(now, -clock.parse_duration(params["retention_closed"]), policy.timezone)
        with write_session(url) as s:
            ids = list(
                s.exec(
                    select(Ticket.id).where(
                        Ticket.policy_key == policy.key,
                        Ticket.state_kind == "done",
                        col(Ticket.redacted_at).is_(None),
                        col(Ticket.closed_at).is_not(None),
                        Ticket.closed_at <= limit,
                    )
                )
            )
        for tid in ids:
            if isolated(report, {"ticket": tid, "scan": "retention"}, _redact_one, url, tid, now):
                report.redacted.append(tid)
    if params.get("log_retention"):
        limit = clock.add(now, -clock.parse_duration(params["log_retention"]), policy.timezone)
        with write_session(url) as s:
            rows = s.exec(
                select(Evidence)
                .join(Ticket, col(Ticket.id) == Evidence.ticket_id)
                .where(
                    Ticket.policy_key == policy.key,
                    Evidence.kind == "log",
                    col(Evidence.redacted_at).is_(None),
                    Evidence.received_at <= limit,
                )
            )
            for e in rows:
                e.content = b""
                e.redacted_at = now
                s.add(e)
                audit.record(
                    s,
                    actor="system",
                    action="retention",
                    ticket_id=e.ticket_id,
                    at=now,
                    data={"evidence": e.id},
                )


def _redact_one(url: str | None, ticket_id: int, now: datetime) -> None:
    with write_session(url) as s:
        redact_ticket(s, s.get(Ticket, ticket_id), now)


def untied_limit(session: Session, name: str, now: datetime) -> tuple[datetime, str, str]:
    """The cut-off date of setting ``name`` for rows no provider can be told from: the most
    recent one over all providers (the shortest period). Returns (date, period, policy)."""
    best: tuple[datetime, str, str] | None = None
    for policy in session.exec(select(Policy).order_by(col(Policy.key))):
        period = str(provider_settings.value(session, policy, name))
        try:
            limit = clock.add(now, -clock.parse_duration(period), policy.timezone)
        except clock.BadDate:  # a value stored before settings were bounded: the others decide
            continue
        if best is None or limit > best[0]:
            best = (limit, period, policy.key)
    if best is None:
        period = provider_settings.SETTINGS[name].default
        best = (clock.add(now, -clock.parse_duration(period), "UTC"), period, "")
    return best


def _purge_untied(url: str | None, now: datetime, report) -> None:
    for name, model, extra in (
        ("quarantine_retention", Quarantine, ()),
        ("evidence_retention", Evidence, (col(Evidence.ticket_id).is_(None),)),
    ):
        with write_session(url) as s:
            limit, period, policy = untied_limit(s, name, now)
            ids = list(
                s.exec(
                    select(model.id)
                    .where(col(model.received_at) <= limit, *extra)
                    .order_by(col(model.id))
                    .limit(PURGE_BATCH)
                )
            )
            if not ids:
                continue
            kinds = dict(
                s.exec(
                    select(model.kind, func.count())
                    .where(col(model.id).in_(ids))
                    .group_by(model.kind)
                ).all()
            )
            s.exec(delete(model).where(col(model.id).in_(ids)))
            what = model.__tablename__
            audit.record(
                s,
                actor="system",
                action="retention-purge",
                at=now,
                data={
                    "table": what,
                    "rows": len(ids),
                    "kinds": kinds,
                    "first": ids[0],
                    "last": ids[-1],
                    "received_before": clock.iso(limit),
                    "period": period,
                    "policy": policy,
                },
            )
        report.purged[what] = report.purged.get(what, 0) + len(ids)


def _redact_untied_events(url: str | None, now: datetime, report) -> None:
    with write_session(url) as s:
        limit, _period, _policy = untied_limit(s, "evidence_retention", now)
        rows = list(
            s.exec(
                select(Event)
                .where(
                    col(Event.action).in_(UNTIED_PERSONAL_EVENTS),
                    col(Event.ticket_id).is_(None),
                    col(Event.redacted_at).is_(None),
                    Event.at <= limit,
                )
                .order_by(col(Event.id))
                .limit(PURGE_BATCH)
            )
        )
        counts: dict[str, int] = {}
        for ev in rows:
            audit.redact(s, ev, actor="system", reason="retention", at=now)
            counts[ev.action] = counts.get(ev.action, 0) + 1
    for action, n in counts.items():
        report.redacted_events[action] = report.redacted_events.get(action, 0) + n
