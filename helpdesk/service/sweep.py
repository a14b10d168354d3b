"""``helpdesk sweep``: run everything that is due at the clock's now.

- timers: a state's scheduled step ("on the requested day", "two months after the
  notice", "when the sending suspension ends"), taken by the clock as actor ``system``;
- scans of the policy packs: accounts inactive for too long (Wigii art. 9), lapsed
  subscriptions (Weentime art. 8), memberships not renewed (Le PIC), conventions reaching
  their maximum term (CommunesPlone art. 8).

Each step runs in its own transaction: one refused timer does not stop the others.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Callable

from dateutil.relativedelta import relativedelta
from sqlalchemy import func
from sqlmodel import Session, col, select

from helpdesk.base import labels, clock, config, dates
from helpdesk.storage import audit, locks
from helpdesk.workflow import engine
from helpdesk.rules.context import SYSTEM_ACTOR
from helpdesk.storage.db import write_session
from helpdesk.base.errors import Refused
from helpdesk.base.i18n import _
from helpdesk.workflow.isolation import failure, isolated  # noqa: F401 - sweep.isolated, sweep.failure
from helpdesk.storage.models import Account, Deadline, Policy, Ticket, Workflow


@dataclass
class SweepReport:
    now: str
    taken: list[dict] = field(default_factory=list)
    refused: list[dict] = field(default_factory=list)
    opened: list[dict] = field(default_factory=list)
    redacted: list[int] = field(default_factory=list)
    purged: dict[str, int] = field(default_factory=dict)  # table -> rows deleted by retention
    # audit events on no ticket whose personal data retention redacted: action -> count
    redacted_events: dict[str, int] = field(default_factory=dict)
    actions: dict = field(
        default_factory=dict
    )  # service actions carried out (helpdesk.outgoing.actions)
    config_error: str = ""  # helpdesk.toml kept a timer from running: it waits, due

    @property
    def nothing(self) -> bool:
        """Nothing was due: a quiet run has nothing to say."""
        ran = any(self.actions.get(k) for k in ("done", "retried", "failed", "uncertain"))
        return not (self.taken or self.refused or self.opened or self.redacted or ran) and not any(
            [*self.purged.values(), *self.redacted_events.values()]
        )

    def as_dict(self) -> dict:
        return {
            "config_error": self.config_error,
            "now": self.now,
            "taken": self.taken,
            "refused": self.refused,
            "opened": self.opened,
            "redacted": self.redacted,
            "purged": self.purged,
            "redacted_events": self.redacted_events,
            "actions": self.actions,
        }


def run(
    url: str | None = None, now: datetime | None = None, limit: int = 10_000, *, lock: bool = False
) -> SweepReport:
    """Run what is due. ``lock``: hold the sweep lock for the run (raise
    :class:`helpdesk.storage.locks.Taken` if another run holds it), and the service
    actions' lock for their part (skipped while ``actions run`` holds it): the scheduled
    command does, a training clock or the demo's simulation (one process) need not."""
    if lock:
        with locks.hold(url, locks.SWEEP):
            return _run(url, now, limit, lock)
    return _run(url, now, limit, lock)


def _run(url, now: datetime | None, limit: int, lock: bool) -> SweepReport:
    now = now or clock.now()
    report = SweepReport(now=clock.iso(now))
    _timers(url, now, report, limit)
    for policy_key, features in _policies(url):
        for feature, scan in SCANS.items():
            if feature in features:
                isolated(
                    report,
                    {"policy": policy_key, "scan": feature},
                    scan,
                    url,
                    policy_key,
                    now,
                    report,
                )
    from helpdesk.workflow import retention

    retention.run(url, now, report)
    from helpdesk.outgoing import actions as service_actions

    try:
        ran = service_actions.run(url, now, lock=lock)
    except locks.Taken:  # 'actions run' is carrying them out: its report says what it did
        return report
    report.actions = (
        ran.as_dict()
        if (
            ran.done
            or ran.retried
            or ran.failed
            or ran.uncertain
            or ran.waiting
            or ran.config_error
        )
        else {}
    )
    from helpdesk.storage import runs
    from helpdesk.storage.db import resolve_url

    runs.record(
        resolve_url(url),
        "sweep",
        started=now,
        ok=not report.refused and not ran.exit_code,
        counts={
            "taken": len(report.taken),
            "opened": len(report.opened),
            "refused": len(report.refused),
        },
    )
    return report


def _policies(url):
    from helpdesk.policy import packs

    with write_session(url) as s:
        rows = list(s.exec(select(Policy.key)))
    out = []
    for key in rows:
        try:
            out.append((key, packs.read_pack(key).features))
        except packs.PackError:
            out.append((key, set()))
    return out


def _timers(url, now, report: SweepReport, limit: int, rounds: int = 20) -> None:
    """Run due timers; a step that sets a timer already due (erasure at once, say) is
    followed in the next round of the same sweep."""
    seen: set[int] = set()
    for _round in range(rounds):
        with write_session(url) as s:
            due = [
                i
                for i in s.exec(
                    select(Deadline.id)
                    .where(
                        Deadline.status == "pending",
                        col(Deadline.action).is_not(None),
                        Deadline.due_at <= now,
                    )
                    .order_by(col(Deadline.due_at), col(Deadline.id))
                    .limit(limit)
                )
                if i not in seen
            ]
        if not due:
            return
        seen.update(due)
        _run_timers(url, now, report, due)


def _run_timers(url, now, report: SweepReport, due: list[int]) -> None:
    for deadline_id in due:
        try:
            with write_session(url) as s:
                dl = s.get(Deadline, deadline_id)
                if dl is None or dl.status != "pending":
                    continue
                outcome = engine.apply(
                    s,
                    dl.ticket_id,
                    dl.action,
                    SYSTEM_ACTOR,
                    now=now,
                    note=labels.timer_note(dl.name, clock.iso(dl.due_at)),
                )
                report.taken.append(
                    {"ticket": dl.ticket_id, "action": dl.action, "state": outcome.ticket.state}
                )
        except config.ConfigError as exc:
            # helpdesk.toml is broken: not the step's fault. It stays due and runs at the
            # next sweep once the file is mended; said in the report every time, audited
            # once per distinct error (a sweep every few minutes must not fill the trail).
            why = _("{error} (the step waits and runs at the next sweep)").format(error=exc)
            report.config_error = str(exc)
            with write_session(url) as s:
                dl = s.get(Deadline, deadline_id)
                if dl.note != why[:500]:
                    dl.note = why[:500]
                    s.add(dl)
                    audit.record(
                        s,
                        at=now,
                        actor="system",
                        action="timer-deferred",
                        ticket_id=dl.ticket_id,
                        note=why,
                        data={"timer": dl.action, "rule": "configuration"},
                    )
            report.refused.append({"ticket": dl.ticket_id, "action": dl.action, "reason": why})
        except Exception as exc:  # noqa: BLE001 - a refused or broken timer is recorded; the others run
            why = failure(exc)
            with write_session(url) as s:
                dl = s.get(Deadline, deadline_id)
                dl.status = "failed"
                dl.note = why[:500]
                s.add(dl)
                audit.record(
                    s,
                    at=now,
                    actor="system",
                    action="timer-refused",
                    ticket_id=dl.ticket_id,
                    note=why,
                    data={"timer": dl.action, "rule": getattr(exc, "rule", "")},
                )
            report.refused.append({"ticket": dl.ticket_id, "action": dl.action, "reason": why})


def _has_open(s: Session, account_id: int, queue: str) -> bool:
    return (
        s.exec(
            select(Ticket.id).where(
                Ticket.account_id == account_id, Ticket.queue == queue, Ticket.state_kind != "done"
            )
        ).first()
        is not None
    )


def _open_for(
    url,
    policy_key: str,
    now: datetime,
    report: SweepReport,
    candidates: Callable[[Session, Policy], list],
    fields: dict,
    note,
    subject: str = "",
) -> None:
    """Open a closure for each candidate with none open. ``note``: a text, or a function of
    the session and the account giving one."""
    with write_session(url) as s:
        policy = s.get(Policy, policy_key)
        if (
            s.exec(
                select(Workflow.id).where(
                    Workflow.policy_key == policy_key, Workflow.queue == "closure"
                )
            ).first()
            is None
        ):
            return
        for acc in candidates(s, policy):
            if _has_open(s, acc.id, "closure"):
                continue
            try:
                outcome = engine.open_ticket(
                    s,
                    queue="closure",
                    policy_key=policy_key,
                    actor=SYSTEM_ACTOR,
                    account=acc,
                    requester="",
                    fields=dict(fields),
                    note=note(s, acc) if callable(note) else note,
                    now=now,
                    subject=subject.format(login=acc.login),
                )
            except Refused as exc:  # pragma: no cover - a pack without that reason
                report.refused.append({"account": acc.login, "reason": str(exc)})
                continue
            report.opened.append(
                {
                    "ticket": outcome.ticket.id,
                    "account": acc.login,
                    "policy": policy_key,
                    "reason": fields["reason"],
                }
            )


def scan_inactivity(url, policy_key: str, now: datetime, report: SweepReport) -> None:
    """Wigii art. 9: accounts not logged in for more than one year."""

    def candidates(s: Session, policy: Policy):
        period = clock.parse_duration(policy.params["inactivity_after"])
        today = clock.local_day(now, policy.timezone)
        # A loose bound in the database first (no one seen within the period, give or take
        # the leap day, is a candidate), then the one definition the deactivation guard uses.
        bound = clock.add(now, -period + relativedelta(days=2), policy.timezone)
        return [
            a
            for a in s.exec(
                select(Account).where(
                    Account.policy_key == policy.key,
                    Account.status == "active",
                    func.coalesce(Account.last_login, Account.created_at) < bound,
                )
            )
            if today
            >= dates.inactive_from(
                clock.local_day(a.last_login or a.created_at, policy.timezone), period
            )
        ]

    def note(s: Session, acc: Account) -> str:
        from helpdesk.service import logins

        seen, source = logins.latest(s, acc)
        if seen is None:  # never seen by any source: counted from its addition, not "forever"
            return (
                "inactive for more than the policy allows: no login seen by any source since the account was added on "
                + clock.iso(acc.created_at)
            )
        return f"inactive for more than the policy allows: last login {clock.iso(seen)} (source: {source})"

    _open_for(
        url,
        policy_key,
        now,
        report,
        candidates,
        {"reason": "inactivity"},
        note,
        _("Inactivity: {login} has not logged in for more than a year"),
    )


def scan_lapse(url, policy_key: str, now: datetime, report: SweepReport) -> None:
    """Weentime art. 8: a subscription not renewed in time restricts access."""

    def candidates(s: Session, policy: Policy):
        today = clock.local_day(now, policy.timezone)
        out = []
        for a in s.exec(
            select(Account).where(
                Account.policy_key == policy.key,
                Account.status == "active",
                Account.kind == "admin",
            )
        ):
            end = (a.fields or {}).get("subscription-end")
            if end and clock.parse_day(end) < today:
                out.append(a)
        return out

    _open_for(
        url,
        policy_key,
        now,
        report,
        candidates,
        {"reason": "lapse"},
        "subscription not renewed in time",
        _("Subscription of {login} not renewed in time"),
    )


def scan_membership(url, policy_key: str, now: datetime, report: SweepReport) -> None:
    """Le PIC: a membership that was not renewed: data removed within one year at most."""

    def candidates(s: Session, policy: Policy):
        today = clock.local_day(now, policy.timezone)
        return [
            a
            for a in s.exec(
                select(Account).where(Account.policy_key == policy.key, Account.status == "active")
            )
            if (a.fields or {}).get("membership-end")
            and clock.parse_day(a.fields["membership-end"]) < today
        ]

    _open_for(
        url,
        policy_key,
        now,
        report,
        candidates,
        {"reason": "non-renewal"},
        "membership not renewed",
        _("Membership of {login} not renewed"),
    )


def scan_contract_term(url, policy_key: str, now: datetime, report: SweepReport) -> None:
    """CommunesPlone art. 8: 48 months at most — a month before the end, open the closure."""

    def candidates(s: Session, policy: Policy):
        today = clock.local_day(now, policy.timezone)
        notice = clock.parse_duration(policy.params["non_renewal_notice"])
        out = []
        for a in s.exec(
            select(Account).where(
                Account.policy_key == policy.key,
                Account.status == "active",
                Account.kind == "member",
            )
        ):
            sig = (a.fields or {}).get("signature-date")
            if not sig:
                continue
            c = dates.contract_dates(
                clock.parse_day(sig),
                today,
                maximum=clock.parse_duration(policy.params["contract_max"]),
            )
            if c.effective_end == c.max_end and today >= c.max_end - notice:
                out.append(a)
        return out

    _open_for(
        url,
        policy_key,
        now,
        report,
        candidates,
        {"reason": "non-renewal", "term-reached": "yes"},
        "maximum term of the convention reached",
        _("Convention of {login} reaches its maximum term"),
    )


SCANS: dict[str, Callable] = {
    "inactivity": scan_inactivity,
    "lapse": scan_lapse,
    "membership": scan_membership,
    "contract": scan_contract_term,
}
