"""The action queue: what a step does on the real services, carried out after it commits.

A step's effects name **service actions** (``{ name = "service_actions", args = { kinds =
["lock", "revoke-sessions"] } }`` in a workflow): one row per action and per connector of
the provider that can do it (:mod:`helpdesk.connectors`, configured in ``helpdesk.toml``),
queued in the step's own transaction, so a refused step queues nothing. ``helpdesk actions
run`` and ``helpdesk sweep`` carry them out, the way ``outbox send`` carries mails::

    pending ──> running ─┬─> done                  (the service did it)
       ^                 ├─> pending (retry)       (service down, busy: backoff 1 min ... 6 h)
       │                 ├─> failed                (the service refused, or too many attempts)
       │                 └─> uncertain             (it may or may not have acted)
       └──── retry (oncall, with a note) ── failed, uncertain ── mark-done (oncall, note) ──> done

Each action is idempotent (see :mod:`helpdesk.connectors`), so a run that died mid-way
(its lease ran out) simply runs it again. Actions of one account on one connector run in
the order they were queued: an unlock never overtakes the lock before it; a later action
waits while an earlier one is not done.

Every outcome is an audit event (``service-action-done``, ``-retry``, ``-failed``,
``-uncertain``, and a person's ``-retry-ordered`` and ``-marked-done``) carrying the
service's answer. Failed and uncertain actions show on their ticket and on the dashboard
until someone deals with them.

A training database never touches a service: its actions are recorded as
``would-have-done`` and never run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func
from sqlmodel import Session, col, select

from helpdesk.storage import audit, locks
from helpdesk.base import clock, config
from helpdesk import connectors
from helpdesk.storage.db import write_session
from helpdesk.rules import last_logins
from helpdesk.workflow.engine import is_training, require_role, run_automatic
from helpdesk.base.errors import BadInput, NotFound, Refused
from helpdesk.base.i18n import _
from helpdesk.storage.models import Account, ServiceAction, Ticket
from helpdesk.rules.service_actions import BLOCK_REASONS  # noqa: F401 - actions.BLOCK_REASONS
from helpdesk.base.untrusted import clean
from helpdesk.outgoing.action_views import (  # noqa: F401 - the names commands use, re-exported
    WAITING,
    describe,
    listing,
    local_time,
    needing_attention,
    of_ticket,
    view,
)

LEASE = timedelta(minutes=5)
MAX_ATTEMPTS = 8
MAX_ERROR = 500
SETTLED = ("done", "would-have-done")
ROLE = "oncall"


# --- carrying them out ---------------------------------------------------------------------


@dataclass
class RunReport:
    now: str
    done: list[dict] = field(default_factory=list)
    retried: list[dict] = field(default_factory=list)
    failed: list[dict] = field(default_factory=list)
    uncertain: list[dict] = field(default_factory=list)
    waiting: int = 0  # failed or uncertain actions already waiting for a person
    # helpdesk.toml could not be read, or a connector of it not built: the actions it held
    # back stay pending (not their fault), retried by the next run once it is mended.
    config_error: str = ""
    held: list[dict] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "now": self.now,
            "done": self.done,
            "retried": self.retried,
            "failed": self.failed,
            "uncertain": self.uncertain,
            "waiting": self.waiting,
            "config_error": self.config_error,
            "held": self.held,
        }

    @property
    def exit_code(self) -> int:
        if self.config_error:
            return 2  # bad input: the configuration
        return 1 if (self.failed or self.uncertain) else 0


def _due(s: Session, now: datetime, limit: int) -> list[int]:
    """Pending actions due now, and running ones whose lease ran out, each only if no
    earlier action of its account on its connector is still unsettled."""
    rows = list(
        s.exec(
            select(ServiceAction)
            .where(
                col(ServiceAction.status).in_(("pending", "running")),
                ServiceAction.next_attempt_at <= now,
            )
            .order_by(col(ServiceAction.id))
            .limit(limit)
        )
    )
    out = []
    for row in rows:
        earlier = s.exec(
            select(ServiceAction.id)
            .where(
                ServiceAction.account_id == row.account_id,
                ServiceAction.connector == row.connector,
                ServiceAction.id < row.id,
                col(ServiceAction.status).not_in(SETTLED),
            )
            .limit(1)
        ).first()
        if earlier is None:
            out.append(row.id)
    return out


def run(
    url: str | None = None,
    now: datetime | None = None,
    limit: int = 200,
    *,
    cfg: config.Config | None = None,
    lock: bool = False,
) -> RunReport:
    """Carry out the actions that are due. Each one is leased and committed before the
    service is called, and its outcome committed after, so two runs never do one twice
    at the same time and a crash loses nothing. ``lock``: hold the actions' lock for the
    run (:class:`helpdesk.storage.locks.Taken` if another run, here or on another host,
    holds it)."""
    if lock:
        with locks.hold(url, locks.ACTIONS):
            return run(url, now, limit, cfg=cfg)
    now = now or clock.now()
    report = RunReport(now=clock.iso(now))
    with write_session(url) as s:
        if is_training(s):
            return report  # never touches a service; its actions are "would have done"
        report.waiting = s.exec(
            select(func.count())
            .select_from(ServiceAction)
            .where(col(ServiceAction.status).in_(WAITING))
        ).one()
    if cfg is None:
        try:
            cfg = config.load()
        except config.ConfigError as exc:  # nothing leased: every due action stays pending
            with write_session(url) as s:
                n = len(_due(s, now, limit))
            if n:
                report.config_error = _(
                    "{error} ({n} action(s) due stay queued until it is mended)"
                ).format(error=exc, n=n)
            return report
    built: dict[str, connectors.Connector | None] = {}
    broken: dict[str, str] = {}  # connector name -> its configuration error
    tried: set[int] = set()
    # An account's actions on one connector go in order: the next one becomes due once the
    # one before it is settled, in the same run (a lock, then the sessions, then sending).
    while len(tried) < limit:
        with write_session(url) as s:
            due = [i for i in _due(s, now, limit) if i not in tried][: limit - len(tried)]
        if not due:
            break
        tried.update(due)
        for action_id in due:
            _run_one(url, action_id, now, cfg, built, broken, report)
    if broken:
        report.config_error = "; ".join(dict.fromkeys(broken.values()))
    return report


def _run_one(
    url, action_id: int, now: datetime, cfg, built: dict, broken: dict, report: RunReport
) -> None:
    with write_session(url) as s:
        row = s.get(ServiceAction, action_id, with_for_update=True, populate_existing=True)
        if (
            row is None
            or row.status not in ("pending", "running")
            or (row.next_attempt_at and row.next_attempt_at > now)
        ):
            return
        expired = row.status == "running"
        row.status, row.attempts, row.next_attempt_at = "running", row.attempts + 1, now + LEASE
        s.add(row)
        if expired:
            audit.record(
                s,
                actor="system",
                action="service-action-retry",
                ticket_id=row.ticket_id,
                account_id=row.account_id,
                at=now,
                note="lease ran out: run again (idempotent)",
                data=_data(row),
            )
        kind, target, params, name = row.kind, row.target, dict(row.params or {}), row.connector
    if name not in built and name not in broken:
        try:
            built[name] = connectors.by_name(cfg, name)
        except config.ConfigError as exc:
            broken[name] = str(exc)
    if name in broken:
        outcome, answer, seen = "config", broken[name], None
    else:
        outcome, answer, seen = _call(built[name], kind, target, params, url)
    if outcome == "config":  # not the action's fault: it waits for the file to be mended
        broken.setdefault(name, answer)
        _hold(url, action_id, answer, now, report)
    else:
        _settle(url, action_id, outcome, answer, now, report, seen)


def _hold(url, action_id: int, answer: str, now: datetime, report: RunReport) -> None:
    """Give back an action that the configuration kept from running: pending again, its
    attempt not counted (the service was never asked), due at the next run; the error
    stays on it for ``actions list`` and its ticket."""
    answer = clean(answer)[:MAX_ERROR]
    with write_session(url) as s:
        row = s.get(ServiceAction, action_id, with_for_update=True, populate_existing=True)
        row.status, row.attempts, row.next_attempt_at, row.last_error = (
            "pending",
            max(0, row.attempts - 1),
            now,
            answer,
        )
        s.add(row)
        report.held.append({**_data(row, answer), "ticket": row.ticket_id})


def _call(
    conn, kind: str, target: str, params: dict, url: str | None
) -> tuple[str, str, datetime | None]:
    """Call the service: (outcome, its answer, the last login it read if that was asked)."""
    if conn is None:
        return "failed", _("no connector of that name in helpdesk.toml any more"), None
    if hasattr(conn, "db_url"):
        conn.db_url = url
    try:
        if kind == "read-last-login" and kind in conn.kinds:
            seen = conn.last_login(target)
            return "done", (f"last login {clock.iso(seen)}" if seen else "no login seen"), seen
        return "done", conn.run(kind, target, params), None
    except connectors.Temporary as exc:
        return "retry", str(exc), None
    except connectors.Permanent as exc:
        return "failed", str(exc), None
    except connectors.Uncertain as exc:
        return "uncertain", str(exc), None
    except config.ConfigError as exc:  # a secret file unreadable, say: not the action's fault
        return "config", str(exc), None
    except Exception as exc:  # a connector's bug must not stop the queue; a person looks
        return "uncertain", f"{type(exc).__name__}: {exc}", None


def _data(row: ServiceAction, answer: str = "") -> dict:
    d = {
        "action": row.id,
        "kind": row.kind,
        "connector": row.connector,
        "target": row.target,
        "attempts": row.attempts,
    }
    if answer:
        d["answer"] = answer
    return d


def _settle(
    url,
    action_id: int,
    outcome: str,
    answer: str,
    now: datetime,
    report: RunReport,
    seen: datetime | None = None,
) -> None:
    from helpdesk.outgoing.delivery import (
        backoff,
    )  # the outbox's schedule; SMTP stays out of `ticket show`

    answer = clean(answer or "")[:MAX_ERROR]
    with write_session(url) as s:
        row = s.get(ServiceAction, action_id, with_for_update=True, populate_existing=True)
        if outcome == "retry" and row.attempts >= MAX_ATTEMPTS:
            outcome, answer = (
                "failed",
                _("{answer} (after {n} attempts)").format(answer=answer, n=row.attempts),
            )
        if outcome == "done":
            row.status, row.done_at, row.next_attempt_at, row.result, row.last_error = (
                "done",
                now,
                None,
                answer,
                "",
            )
        elif outcome == "retry":
            row.status, row.next_attempt_at, row.last_error = (
                "pending",
                now + backoff(row.attempts),
                answer,
            )
        else:
            row.status, row.next_attempt_at, row.last_error = outcome, None, answer
        s.add(row)
        event = {
            "done": "service-action-done",
            "retry": "service-action-retry",
            "failed": "service-action-failed",
            "uncertain": "service-action-uncertain",
        }[outcome]
        audit.record(
            s,
            actor="system",
            action=event,
            ticket_id=row.ticket_id,
            account_id=row.account_id,
            at=now,
            data=_data(row, answer),
        )
        if outcome == "done" and seen is not None and row.account_id is not None:
            account = s.get(Account, row.account_id)
            if account is not None:  # kept per source, never moved back (rules.last_logins)
                last_logins.record(s, account, row.connector, seen, now)
        entry = {
            **_data(row, answer),
            "ticket": row.ticket_id,
            "next_attempt_at": clock.iso(row.next_attempt_at),
        }
        if outcome == "done":
            _follow(s, row.ticket_id, now)
    {
        "done": report.done,
        "retry": report.retried,
        "failed": report.failed,
        "uncertain": report.uncertain,
    }[outcome].append(entry)


# --- a person's decisions ------------------------------------------------------------------


def _load(
    s: Session, action_id: int, actor, verb: str, note: str, allowed: tuple[str, ...]
) -> tuple[ServiceAction, str]:
    require_role(s, actor, ROLE)
    row = s.get(ServiceAction, action_id, with_for_update=True, populate_existing=True)
    if row is None:
        raise NotFound(_("no service action #{id}").format(id=action_id))
    if row.status not in allowed:
        raise Refused(
            "action-status",
            _("service action #{id} is {status}: {verb} applies to {allowed} actions").format(
                id=row.id, status=row.status, verb=verb, allowed=", ".join(allowed)
            ),
        )
    note = clean(note or "").strip()
    if not note:
        raise BadInput(_("{verb} needs a note recording the reason (--note)").format(verb=verb))
    return row, note


def retry(
    s: Session, action_id: int, actor, *, note: str, now: datetime | None = None
) -> ServiceAction:
    """A failed or uncertain action runs again, due now, with a fresh round of attempts."""
    now = now or clock.now()
    row, note = _load(s, action_id, actor, "retry", note, WAITING)
    before = {"status": row.status, "attempts": row.attempts, "error": row.last_error}
    row.status, row.attempts, row.next_attempt_at = "pending", 0, now
    s.add(row)
    audit.record(
        s,
        actor=actor.login,
        action="service-action-retry-ordered",
        ticket_id=row.ticket_id,
        account_id=row.account_id,
        note=note,
        at=now,
        data={**_data(row), "from": before},
    )
    return row


def mark_done(
    s: Session, action_id: int, actor, *, note: str, now: datetime | None = None
) -> ServiceAction:
    """Record that a person did it (or checked it was done); the note says how."""
    now = now or clock.now()
    row, note = _load(s, action_id, actor, "mark-done", note, ("pending", *WAITING))
    before = {"status": row.status, "attempts": row.attempts, "error": row.last_error}
    row.status, row.done_at, row.next_attempt_at = "done", now, None
    row.result = _("marked done by {who}").format(who=actor.login)
    s.add(row)
    audit.record(
        s,
        actor=actor.login,
        action="service-action-marked-done",
        ticket_id=row.ticket_id,
        account_id=row.account_id,
        note=note,
        at=now,
        data={**_data(row), "from": before},
    )
    _follow(s, row.ticket_id, now)
    return row


def _follow(s: Session, ticket_id: int | None, now: datetime) -> None:
    """A settled action may let its ticket go on: an erasure is complete once every
    service's erase is done (the automatic ``erasure-complete`` step of the workflows)."""
    if ticket_id is None:
        return
    s.flush()
    ticket = s.get(Ticket, ticket_id)
    if ticket is not None and ticket.state_kind != "done":
        run_automatic(s, ticket, now=now)


# --- what screens and commands show ----------------------------------------------------------


# The views (``view``, ``listing``, ``of_ticket``, ``needing_attention``, ``describe``,
# ``local_time``) live in ``helpdesk.outgoing.action_views``, imported above.
