"""``helpdesk metrics``: the state of the helpdesk as OpenMetrics text.

Written for node_exporter's textfile collector (a timer runs
``helpdesk metrics > /var/lib/node_exporter/textfile/helpdesk.prom.tmp`` then renames it), or
read by anything that speaks the Prometheus exposition format. Every figure is a gauge read
from the database at the moment of the run; no personal data, only counts and times.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func
from sqlmodel import Session, col, select

from helpdesk.base import clock
from helpdesk.storage import runs
from helpdesk.storage.models import Evidence, Outbox, Quarantine, ServiceAction, Ticket

#: Mails not yet delivered: the oldest of them says whether mail is stuck.
UNDELIVERED = ("pending", "sending", "held")


def families(s: Session, now: datetime | None = None) -> list[tuple[str, str, list]]:
    """``(name, help, [(labels, value)])`` for each metric family."""
    now = now or clock.now()
    out: list[tuple[str, str, list]] = []

    tickets: dict[tuple, dict[str, int]] = {}
    for queue, policy, kind, n in s.exec(
        select(Ticket.queue, Ticket.policy_key, Ticket.state_kind, func.count())
        .where(col(Ticket.merged_into).is_(None))
        .group_by(Ticket.queue, Ticket.policy_key, Ticket.state_kind)
    ):
        tickets.setdefault((queue, policy), {})[kind] = n
    overdue = dict(
        ((q, p), n)
        for q, p, n in s.exec(
            select(Ticket.queue, Ticket.policy_key, func.count())
            .where(
                Ticket.state_kind != "done", col(Ticket.due_at).is_not(None), Ticket.due_at < now
            )
            .where(col(Ticket.merged_into).is_(None))
            .group_by(Ticket.queue, Ticket.policy_key)
        )
    )
    for kind, text in (
        ("open", "Tickets open (someone has to act), per queue and provider."),
        ("waiting", "Tickets waiting (for a reply or a date), per queue and provider."),
    ):
        out.append(
            (
                f"helpdesk_tickets_{kind}",
                text,
                [
                    ({"queue": q, "provider": p}, by.get(kind, 0))
                    for (q, p), by in sorted(tickets.items())
                ],
            )
        )
    out.append(
        (
            "helpdesk_tickets_overdue",
            "Tickets not done whose due date has passed, per queue and provider.",
            [
                ({"queue": q, "provider": p}, overdue.get((q, p), 0))
                for (q, p) in sorted(set(tickets) | set(overdue))
            ],
        )
    )
    mails = _pairs(s.exec(select(Outbox.status, func.count()).group_by(Outbox.status)))
    out.append(
        (
            "helpdesk_mails",
            "Mails of the outbox, per status.",
            [({"status": k}, mails.get(k, 0)) for k in sorted(set(mails) | _MAIL_STATUSES)],
        )
    )
    actions = _pairs(
        s.exec(select(ServiceAction.status, func.count()).group_by(ServiceAction.status))
    )
    out.append(
        (
            "helpdesk_actions",
            "Service actions, per status.",
            [({"status": k}, actions.get(k, 0)) for k in sorted(set(actions) | _ACTION_STATUSES)],
        )
    )
    oldest = s.exec(
        select(func.min(Outbox.created_at)).where(col(Outbox.status).in_(UNDELIVERED))
    ).one()
    out.append(
        (
            "helpdesk_mail_oldest_pending_age_seconds",
            "Age of the oldest mail not yet delivered (pending, sending or held); 0 when none.",
            [({}, max(0.0, (now - clock.as_utc(oldest)).total_seconds()) if oldest else 0.0)],
        )
    )
    ingested = _pairs(s.exec(select(Evidence.kind, func.count()).group_by(Evidence.kind)))
    out.append(
        (
            "helpdesk_ingested_items",
            "Items ingested and kept as evidence (mails, reports, log excerpts), per kind.",
            [({"kind": k}, n) for k, n in sorted(ingested.items())],
        )
    )
    quarantined = {
        (k, bool(r)): n
        for k, r, n in s.exec(
            select(Quarantine.kind, Quarantine.released, func.count()).group_by(
                col(Quarantine.kind), col(Quarantine.released)
            )
        )
    }
    out.append(
        (
            "helpdesk_quarantine_items",
            "Input ingestion could not use, per kind; released: looked at and let go.",
            [
                ({"kind": k, "released": "true" if r else "false"}, n)
                for (k, r), n in sorted(quarantined.items())
            ],
        )
    )
    done = runs.every(s)
    for job, name in (("sweep", "sweep"), ("outbox-send", "outbox_send")):
        last = done.get(job)
        at = clock.parse_datetime(last["finished"]) if last and last.get("finished") else None
        out.append(
            (
                f"helpdesk_last_{name}_timestamp_seconds",
                f"When the last '{job.replace('-', ' ')}' run finished (Unix time); 0: never.",
                [({}, at.timestamp() if at else 0.0)],
            )
        )
        out.append(
            (
                f"helpdesk_last_{name}_ok",
                f"1 when the last '{job.replace('-', ' ')}' run went through, 0 when it did not.",
                [({}, 1 if last and last.get("ok") else 0)],
            )
        )
    return out


_MAIL_STATUSES = {"pending", "sending", "sent", "failed", "held", "uncertain", "bounced"}
_ACTION_STATUSES = {"pending", "running", "done", "failed", "uncertain"}


def _label(value: str) -> str:
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value) -> str:
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value)) if value == 0 else repr(value)
    return repr(value) if isinstance(value, float) else str(int(value))


def render(fams: list[tuple[str, str, list]]) -> str:
    """OpenMetrics text: ``# TYPE``, ``# HELP``, the samples, and ``# EOF``."""
    lines = []
    for name, text, samples in fams:
        lines.append(f"# TYPE {name} gauge")
        lines.append(f"# HELP {name} {_label(text)}")
        for labels, value in samples:
            inner = ",".join(f'{k}="{_label(v)}"' for k, v in labels.items())
            lines.append(
                f"{name}{{{inner}}} {_number(value)}" if inner else f"{name} {_number(value)}"
            )
    lines.append("# EOF")
    return "\n".join(lines) + "\n"


def _pairs(rows) -> dict:
    return {k: v for k, v in rows}
