"""Training: a sandbox database holding one scenario, a clock the trainer moves, and the
guided walkthrough beside the ticket.

- ``seed(url, key)`` builds a training database for a scenario (``helpdesk.training.scenarios``):
  ``schema.init(training=True)``, the four volunteers, the scenario's accounts, its tickets
  opened through the engine (or by ``sweep``'s scans), and the steps already taken before
  the lesson, each through ``engine.apply`` — no row the engine would not write itself.
  ``Meta`` records the scenario (``scenario``), its tickets (``scenario_tickets``) and the
  training clock (``clock``).
- ``reset(url, key)`` puts the database back at the scenario's start: on SQLite a pristine
  build, cached per scenario and per version of the code and data, is copied in with the
  backup API (milliseconds); otherwise, or the first time, it is built again.
- ``advance(url, step)`` moves the training clock (``+1d``, ``+1w``, ``+1m``, an ISO-8601
  duration, or ``next``: the next pending deadline) on the provider's calendar and runs
  ``sweep`` at the new moment: notices expire, deactivations happen on their day, sending
  suspensions lift. ``adopt_clock(url)`` makes this process live at the training clock.
- ``walkthrough(session, ticket_id)`` gives the scenario's steps for a ticket (who, what to
  check first, the article in French, done and current flags matched against the ticket's
  events); ``feedback(...)`` says when an action is out of order or was refused.

Nothing here works on a database that is not a training database: it is refused with the
rule ``training-only``, and a production database is never turned into a training one.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

if TYPE_CHECKING:
    from helpdesk.service.sweep import SweepReport

from sqlalchemy import inspect, text
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, col, func, select

from helpdesk.base import clock
from helpdesk.storage import db
from helpdesk.training import scenarios
from helpdesk.base.errors import BadInput, HelpdeskError, Refused
from helpdesk.base.i18n import _, pick
from helpdesk.base.labels import label
from helpdesk.storage.models import Deadline, Event, Meta, Policy, Ticket, Volunteer
from helpdesk.base.roles import SYSTEM
from helpdesk.training.scenarios import VOLUNTEERS, Scenario, ScenarioError, StepSpec
from helpdesk.training.clock import adopt_clock, follow, sqlite_path  # noqa: F401 (adopt_clock: part of this API)

TRAINING_ONLY = "training-only"
REFUSAL_EVENT = "training-refusal"  # a refused attempt recorded on a training ticket
META_SCENARIO, META_CLOCK, META_TICKETS = "scenario", "clock", "scenario_tickets"
_UNITS: dict[str, str] = {"d": "days", "w": "weeks", "m": "months", "y": "years"}


# --- where training databases live -----------------------------------------------------


def default_url() -> str:
    """``HELPDESK_TRAINING_DB``, else ``training.db`` in the user data directory — never the
    production database's file."""
    env = os.environ.get("HELPDESK_TRAINING_DB")
    if env:
        return db.resolve_url(env)
    from platformdirs import user_data_dir

    return f"sqlite:///{Path(user_data_dir('helpdesk', appauthor=False)) / 'training.db'}"


def database_state(url: str | None = None) -> str:
    """``new`` (no file, or no table), ``training``, or ``production`` (anything else)."""
    url = db.resolve_url(url)
    path = sqlite_path(url)
    if path is not None and (not path.exists() or path.stat().st_size == 0):
        return "new"
    try:
        with db.get_engine(url).connect() as conn:
            names = inspect(conn).get_table_names()
            if not names:
                return "new"
            value = (
                conn.execute(text("SELECT value FROM meta WHERE key = 'training'")).scalar()
                if "meta" in names
                else None
            )
    except SQLAlchemyError:
        return "production"
    return "training" if value == "yes" else "production"


def _not_training(url: str) -> Refused:
    return Refused(
        TRAINING_ONLY,
        _(
            "{url} is not a training database: training never writes to it (give a new file or a training database)"
        ).format(url=url),
    )


def _require_target(url: str) -> str:
    state = database_state(url)
    if state == "production":
        raise _not_training(url)
    return state


def _require_training(session: Session) -> None:
    from helpdesk.workflow import engine

    if not engine.is_training(session):
        raise Refused(
            TRAINING_ONLY,
            _("this is not a training database: training works only on one (helpdesk train)"),
        )


@contextmanager
def _session(session_or_url: Session | str | None, write: bool = False) -> Iterator[Session]:
    if isinstance(session_or_url, Session):
        yield session_or_url
        return
    opener = db.write_session if write else db.read_session
    with opener(session_or_url) as s:
        yield s


def _meta(session: Session, key: str) -> str | None:
    row = session.get(Meta, key)
    return row.value if row is not None else None


def _set_meta(session: Session, **values: str) -> None:
    for key, value in values.items():
        row = session.get(Meta, key) or Meta(key=key)
        row.value = value
        session.add(row)


def scenario_of(session_or_url: Session | str | None) -> Scenario | None:
    """The scenario a training database holds (None if it holds none)."""
    with _session(session_or_url) as s:
        _require_training(s)
        key = _meta(s, META_SCENARIO)
    return scenarios.load(key) if key else None


def scenario_tickets(session_or_url: Session | str | None) -> dict[str, int]:
    """The scenario's tickets in this training database: {name: ticket id}."""
    with _session(session_or_url) as s:
        _require_training(s)
        return json.loads(_meta(s, META_TICKETS) or "{}")


# --- the training clock ------------------------------------------------------------------


def _clock(session: Session) -> datetime:
    value = _meta(session, META_CLOCK)
    return clock.parse_datetime(value) if value else clock.now()


def clock_of(url: str | None = None) -> datetime:
    """The training clock of a training database (the wall clock until it was moved)."""
    with db.read_session(url) as s:
        _require_training(s)
        return _clock(s)


def timezone_of(url: str | None = None) -> str:
    """The zone a training database's times are read in: its scenario's provider's."""
    with db.read_session(url) as s:
        return _timezone(s)


def _timezone(session: Session) -> str:
    key = _meta(session, META_SCENARIO)
    if key:
        policy = session.get(Policy, scenarios.load(key).provider)
        if policy is not None:
            return policy.timezone
    return "UTC"


def _target(session: Session, before: datetime, step: str, tz: str) -> datetime:
    from dateutil.relativedelta import relativedelta

    step = (step or "").strip()
    if step in ("next", "next-deadline"):
        # Timers first (what the clock will do), then any other pending date.
        due = session.exec(
            select(Deadline.due_at)
            .where(Deadline.status == "pending", Deadline.due_at > before)
            .order_by(col(Deadline.action).is_(None), col(Deadline.due_at), col(Deadline.id))
        ).first()
        if due is None:
            raise BadInput(
                _("no deadline ahead of the training clock ({now})").format(now=clock.iso(before))
            )
        return clock.as_utc(due)
    m = re.fullmatch(r"\+(\d+)([dwmy])", step)
    if m:
        amount: dict[str, Any] = {_UNITS[m.group(2)]: int(m.group(1))}
        delta = relativedelta(**amount)
    else:
        try:
            delta = clock.parse_duration(step)
        except clock.BadDate:
            raise BadInput(
                _(
                    "move the clock by +1d, +1w, +1m, an ISO-8601 duration (P2M) or next, not {step!r}"
                ).format(step=step)
            ) from None
    after = clock.add(before, delta, tz)
    if after <= before:
        raise BadInput(_("the training clock only moves forward"))
    return after


@dataclass
class ClockMove:
    """A move of the training clock and what ``sweep`` did at the new moment."""

    step: str
    before: datetime
    after: datetime
    sweep: SweepReport

    def as_dict(self) -> dict:
        return {
            "step": self.step,
            "from": clock.iso(self.before),
            "to": clock.iso(self.after),
            "sweep": self.sweep.as_dict(),
        }


def advance(url: str | None, step: str) -> ClockMove:
    """Move the training clock and run ``sweep`` at the new moment."""
    from helpdesk.service import sweep

    url = db.resolve_url(url)
    with db.write_session(url) as s:
        _require_training(s)
        before = _clock(s)
        after = _target(s, before, step, _timezone(s))
        _set_meta(s, **{META_CLOCK: clock.iso(after)})
    with clock.fixed(after):
        report = sweep.run(url, now=after)
    follow(url, after)
    return ClockMove(step, before, after, report)


# --- building, caching, resetting ----------------------------------------------------------


@dataclass
class Seeded:
    """A training database put at a scenario's start."""

    scenario: str
    url: str
    tickets: dict[str, int]
    clock: datetime
    cached: bool = False
    seconds: float = 0.0

    def as_dict(self) -> dict:
        return {
            "scenario": self.scenario,
            "url": self.url,
            "tickets": self.tickets,
            "clock": clock.iso(self.clock),
            "cached": self.cached,
            "seconds": self.seconds,
        }


def _cache_dir() -> Path:
    env = os.environ.get("HELPDESK_TRAINING_CACHE")
    if env:
        folder = Path(env)
    else:
        from platformdirs import user_cache_dir

        folder = Path(user_cache_dir("helpdesk", appauthor=False)) / "training"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _digest() -> str:
    """What a pristine build depends on: the core's code, and what a demo build depends on
    (the shipped data, scenarios included, and the schema)."""
    from helpdesk.training.demo import _cache_key

    h = hashlib.sha256(_cache_key(True).encode())
    root = Path(__file__).resolve().parent.parent  # the whole core package
    for path in sorted(root.rglob("*.py")):
        h.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    return h.hexdigest()[:16]


def _cache_path(sc: Scenario) -> Path:
    return _cache_dir() / f"{sc.key}-{_digest()}.db"


def _copy(source: Path, target: Path) -> None:
    from helpdesk.storage.sqlite_copy import copy_sqlite

    target.parent.mkdir(parents=True, exist_ok=True)
    copy_sqlite(source, target)


def _forget(url: str) -> None:
    engine = db._engines.pop(url, None)
    if engine is not None:
        engine.dispose()


def _remove(path: Path) -> None:
    for leftover in (path, *(path.with_name(path.name + s) for s in ("-wal", "-shm", "-journal"))):
        leftover.unlink(missing_ok=True)


#: PostgreSQL's "deadlock detected": the transaction chosen as the victim was rolled back.
DEADLOCK = "40P01"


def _wipe(url: str, attempts: int = 5) -> None:
    """Empty a training (or new) PostgreSQL database before a build.

    A session still open on the database (a volunteer's TUI reading, while the trainer
    starts another scenario) holds its tables one after the other as its reads go, and the
    drops take them one after the other too: PostgreSQL may find the two waiting on each
    other and roll one back. The wipe is one transaction, so it is simply tried again."""
    from sqlalchemy.exc import OperationalError

    for attempt in range(1, attempts + 1):
        try:
            with db.get_engine(url).begin() as conn:
                names = inspect(conn).get_table_names()
                if names:
                    tables = ", ".join(f'"{name}"' for name in names)
                    conn.execute(text(f"DROP TABLE IF EXISTS {tables} CASCADE"))
            return
        except OperationalError as exc:
            if getattr(exc.orig, "sqlstate", None) != DEADLOCK or attempt == attempts:
                raise
            time.sleep(0.1 * attempt)


def seed(url: str | None, key: str) -> Seeded:
    """Build a training database at ``url`` holding scenario ``key`` (a new database, or a
    training one whose content is replaced)."""
    started = time.perf_counter()
    sc = scenarios.load(key)
    url = db.resolve_url(url)
    _require_target(url)
    path = sqlite_path(url)
    if path is None:
        _wipe(url)
        _build(url, sc)
    else:
        cache = _cache_path(sc)
        build = cache.with_name(f"build-{sc.key}-{os.getpid()}.db")
        _remove(build)
        build_url = f"sqlite:///{build}"
        try:
            _build(build_url, sc)
            _forget(build_url)
            _copy(build, path)
            partial = cache.with_name(f"{cache.stem}-{os.getpid()}.part")
            _copy(build, partial)
            for old in cache.parent.glob(f"{sc.key}-*.db"):
                old.unlink(missing_ok=True)
            os.replace(partial, cache)
        finally:
            _forget(build_url)
            _remove(build)
    return _seeded(url, started, cached=False)


def reset(url: str | None = None, key: str | None = None) -> Seeded:
    """Put a training database back at the start of scenario ``key`` (by default the one it
    holds): state, events, outbox and clock."""
    started = time.perf_counter()
    url = db.resolve_url(url)
    state = _require_target(url)
    if key is None:
        if state == "training":
            with db.read_session(url) as s:
                key = _meta(s, META_SCENARIO)
        if not key:
            raise BadInput(
                _("which scenario? this training database holds none (helpdesk train list)")
            )
    sc = scenarios.load(key)
    path = sqlite_path(url)
    cache = _cache_path(sc) if path is not None else None
    if cache is not None and cache.is_file():
        _copy(cache, path)
        return _seeded(url, started, cached=True)
    return seed(url, key)


def _seeded(url: str, started: float, *, cached: bool) -> Seeded:
    with db.read_session(url) as s:
        key = _meta(s, META_SCENARIO) or ""
        tickets = json.loads(_meta(s, META_TICKETS) or "{}")
        moment = _clock(s)
    follow(url, moment)
    return Seeded(key, url, tickets, moment, cached, round(time.perf_counter() - started, 4))


def _build(url: str, sc: Scenario) -> None:
    from helpdesk.policy import install
    from helpdesk.service import api
    from helpdesk.training.demo import VOLUNTEERS as DEMO_VOLUNTEERS

    install.init(url, training=True)
    names = {login: name for login, name, _role in DEMO_VOLUNTEERS}
    with clock.fixed(sc.start):
        with db.write_session(url) as s:
            for login, role in VOLUNTEERS:
                api.add_volunteer(s, login, role, name=names.get(login, ""))
            for a in sc.accounts:
                try:
                    api.add_account(
                        s,
                        login=a.login,
                        policy=sc.provider,
                        email=a.email,
                        kind=a.kind,
                        org=a.org,
                        contacts=list(a.contacts),
                        last_login=a.last_login,
                        fields=dict(a.fields),
                        lang=a.lang,
                        status=a.status,
                    )
                except HelpdeskError as exc:
                    raise ScenarioError(f"{sc.path.name}: account {a.login!r}: {exc}") from None
            _set_meta(s, **{META_SCENARIO: sc.key, META_CLOCK: clock.iso(sc.start)})
    tickets: dict[str, int] = {}
    for t in sc.tickets:
        tickets[t.name] = _open(url, sc, t)
    with db.write_session(url) as s:
        _set_meta(s, **{META_TICKETS: json.dumps(tickets)})
    seen = _last_events(url, tickets)
    for step in sc.before:
        result = _play(url, sc, step, tickets, seen)
        if not result.ok:
            raise ScenarioError(
                f"{sc.path.name}: before[{step.index}] {step.action}: {result.message or result.got}"
            )


def _open(url: str, sc: Scenario, t) -> int:
    from helpdesk.service import api
    from helpdesk.service import sweep
    from helpdesk.rules.context import SYSTEM_ACTOR

    with db.read_session(url) as s:
        now = _clock(s)
    if t.opened_by == "sweep":
        with clock.fixed(now):
            report = sweep.run(url, now=now)
        found = [o["ticket"] for o in report.opened if o["account"] == t.account]
        if not found:
            raise ScenarioError(
                f"{sc.path.name}: ticket {t.name!r}: sweep opened no closure for {t.account} at {clock.iso(now)}"
            )
        return found[0]
    with clock.fixed(now), db.write_session(url) as s:
        actor = SYSTEM_ACTOR if t.opened_by == SYSTEM else api.actor_for(s, t.opened_by)
        try:
            out = api.open_ticket(
                s,
                queue=t.queue,
                policy=sc.provider,
                actor=actor,
                account_login=t.account,
                requester=t.requester,
                subject=t.subject,
                fields=dict(t.fields),
                note=t.note,
                lang=t.lang,
                now=now,
            )
        except HelpdeskError as exc:
            raise ScenarioError(
                f"{sc.path.name}: ticket {t.name!r} cannot be opened: {exc}"
            ) from None
        return out.ticket.id


# --- playing the expected path -------------------------------------------------------------


@dataclass
class StepResult:
    """One step of a scenario played headless."""

    index: int
    action: str
    by: str
    expected: str  # the state expected after it, or for a refusal the rule expected
    got: str  # the state reached, or the rule that refused
    ok: bool
    message: str = ""
    refusal: bool = False
    clock: str | None = None  # the training clock after the step
    swept: dict | None = None  # what the clock move's sweep did

    def as_dict(self) -> dict:
        return dict(self.__dict__)


class _NotRefused(Exception):
    pass


def _last_events(url: str, tickets: dict[str, int]) -> dict[int, int]:
    with db.read_session(url) as s:
        return {
            tid: s.exec(select(func.max(Event.id)).where(Event.ticket_id == tid)).one() or 0
            for tid in tickets.values()
        }


def _auto_keys(session: Session, ticket: Ticket) -> set[str]:
    from helpdesk.workflow import engine

    d = engine.definition(session, ticket.workflow_id)
    return {t.key for t in d.transitions if t.auto} - {t.key for t in d.transitions if not t.auto}


def _play(
    url: str, sc: Scenario, step: StepSpec, tickets: dict[str, int], seen: dict[int, int]
) -> StepResult:
    """Take one step of a scenario: move the clock if the step says so, then act (or check
    that the clock acted, or that the step is refused by the rule expected)."""
    from helpdesk.workflow import engine
    from helpdesk.service import api

    move = advance(url, step.clock) if step.clock else None
    tid = tickets[step.ticket]
    with db.read_session(url) as s:
        now = _clock(s)
    result = StepResult(
        step.index,
        step.action,
        step.by,
        step.refused or step.expect,
        "",
        False,
        refusal=bool(step.refused),
        clock=clock.iso(now),
        swept=move.sweep.as_dict() if move else None,
    )
    if step.by_clock:
        with db.read_session(url) as s:
            ticket = s.get(Ticket, tid)
            auto = _auto_keys(s, ticket)
            events = list(
                s.exec(
                    select(Event)
                    .where(Event.ticket_id == tid, Event.id > seen.get(tid, 0))
                    .order_by(col(Event.id))
                )
            )
        i = next(
            (i for i, e in enumerate(events) if e.action == step.action and e.actor == SYSTEM), None
        )
        if i is None:
            result.got = ticket.state
            result.message = _(
                "the clock did not take «{action}» (ticket #{id} is «{state}»)"
            ).format(action=step.action, id=tid, state=ticket.state)
            return result
        result.got = _reached(events, i, auto)
        seen[tid] = events[i].id
    else:
        try:
            with clock.fixed(now), db.write_session(url) as s:
                actor = api.actor_for(s, step.by)
                out = engine.apply(
                    s,
                    tid,
                    step.action,
                    actor,
                    note=step.note,
                    fields=dict(step.fields),
                    checks=list(step.checks),
                    now=now,
                )
                out.reveal.clear()  # a one-time phone code: read out to nobody in a rehearsal
                if step.refused:
                    raise _NotRefused()
                result.got, last = out.ticket.state, out.events[-1].id
            seen[tid] = last
        except _NotRefused:
            result.got = "applied"
            result.message = _("«{action}» was not refused").format(action=step.action)
            return result
        except Refused as exc:
            result.got = exc.rule
            result.message = str(exc)
            if step.refused:
                record_refusal(url, tid, step.action, exc.rule, by=step.by)
                result.ok = exc.rule == step.refused
            return result
        except HelpdeskError as exc:
            result.got = "error"
            result.message = str(exc)
            return result
    result.ok = result.got == step.expect
    if not result.ok and not result.message:
        result.message = _("expected «{expected}», reached «{got}»").format(
            expected=step.expect, got=result.got
        )
    return result


def _reached(events: list[Event], i: int, auto: set[str]) -> str:
    """The state a step led to: its event's, then the automatic steps that followed it."""
    state = events[i].to_state or ""
    for e in events[i + 1 :]:
        if e.actor != SYSTEM or e.action not in auto:
            break
        state = e.to_state or state
    return state


@dataclass
class CheckReport:
    scenario: str
    steps: list[StepResult]
    total: int

    @property
    def ok(self) -> bool:
        return len(self.steps) == self.total and all(r.ok for r in self.steps)

    def as_dict(self) -> dict:
        return {
            "scenario": self.scenario,
            "ok": self.ok,
            "total": self.total,
            "steps": [r.as_dict() for r in self.steps],
        }


def check(url: str | None, key: str) -> CheckReport:
    """Reset ``url`` to scenario ``key`` and play its expected path headless; stops at the
    first step that does not go as expected. Each step must also show as done in the
    walkthrough."""
    seeded = reset(url, key)
    sc = scenarios.load(key)
    seen = _last_events(seeded.url, seeded.tickets)
    results: list[StepResult] = []
    for step in sc.steps:
        result = _play(seeded.url, sc, step, seeded.tickets, seen)
        if result.ok:
            w = walkthrough(seeded.url, seeded.tickets[step.ticket])
            shown = next((x for x in w.steps if x.index == step.index), None) if w else None
            if shown is None or not shown.done:
                result.ok = False
                result.message = _("the walkthrough does not show this step as done")
        results.append(result)
        if not result.ok:
            break
    return CheckReport(sc.key, results, len(sc.steps))


# --- the walkthrough ----------------------------------------------------------------------


@dataclass
class WalkStep:
    index: int  # 1-based, the scenario's numbering
    action: str
    label: str  # the action's label, current language
    who: str  # login expected to take it ("system": the clock)
    role: str
    check: str  # what to check before acting, current language
    citation: str  # e.g. "Wigii CGU art. 9"
    citation_key: str  # key into the pack's [citations]
    citation_text: str  # the French original
    clock: str  # move of the clock before the step ("" none, "P2M", "next-deadline"...)
    expect: str  # state after the step ("" for a refusal)
    expect_label: str
    refused: str  # the rule expected to refuse it ("" for a step to take)
    done: bool = False
    current: bool = False
    event_id: int | None = None  # the event that took it (or recorded its refusal)
    reached: str = ""  # the state it led to (automatic steps included)

    def as_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class Walkthrough:
    scenario: str
    title: str
    goal: str
    provider: str
    queue: str
    ticket_id: int
    ticket: str  # the ticket's name in the scenario
    clock: str  # the training clock (ISO, UTC)
    steps: list[WalkStep]
    off_path: list[dict] = field(default_factory=list)  # steps taken that the path does not expect

    @property
    def current(self) -> WalkStep | None:
        return next((s for s in self.steps if s.current), None)

    @property
    def finished(self) -> bool:
        return all(s.done for s in self.steps)

    def as_dict(self) -> dict:
        return {
            "scenario": self.scenario,
            "title": self.title,
            "goal": self.goal,
            "provider": self.provider,
            "queue": self.queue,
            "ticket_id": self.ticket_id,
            "ticket": self.ticket,
            "clock": self.clock,
            "finished": self.finished,
            "steps": [s.as_dict() for s in self.steps],
            "off_path": self.off_path,
        }


def _rule_citation(
    session: Session, ticket: Ticket, action: str, rule: str | None, state: str | None = None
) -> tuple[str, str, str]:
    """(key, ref, French text) of the article behind an action, or behind the rule that
    refuses it in ``state`` (a guard's own citation when it has one)."""
    from helpdesk.workflow import engine

    d = engine.definition(session, ticket.workflow_id)
    transitions = [t for t in d.by_key(action) if not t.auto] or d.by_key(action)
    if not transitions:
        return "", "", ""
    here = [t for t in transitions if state in t.sources or "*" in t.sources] or transitions
    key = here[0].cite
    if rule:
        specs = [(g, t) for t in here for g in t.guards if g["name"] == rule]
        # A guard named twice (not_in_states) cites what refuses in this state.
        specs.sort(key=lambda gt: state not in ((gt[0].get("args") or {}).get("states") or [state]))
        if specs:
            key = specs[0][0].get("cite") or specs[0][1].cite
    ref, text_ = engine.citation(d.policy, key)
    return key, ref, text_


def _match(
    path: list[StepSpec],
    events: list[Event],
    manual: set[str],
    auto: set[str],
    roles: dict[str, str] | None = None,
):
    """Match a ticket's events, in order, against its expected path. A refusal step is done
    when its refusal was seen as the role the step names (``roles``: each login's role; see
    ``_seen_as``), and only that step, not the refusal steps before it; or when a later
    step was taken. A step taken out of order is off the path and leaves the path where
    it was."""
    n = len(path)
    roles = roles if roles is not None else dict(VOLUNTEERS)
    expected_role = dict(VOLUNTEERS)
    event_ids: list[int | None] = [None] * n
    done, reached = [False] * n, [""] * n
    off: list[dict] = []
    p, last, chained = 0, None, False
    for e in events:
        if e.action in auto and e.actor == SYSTEM:
            if chained and last is not None:
                reached[last] = e.to_state or reached[last]
            continue
        if e.action == REFUSAL_EVENT:
            data = e.data or {}
            j = p
            while j < n and path[j].refused:
                if (
                    not done[j]
                    and path[j].action == data.get("action")
                    and path[j].refused == data.get("rule")
                    and _seen_as(roles.get(e.actor), expected_role.get(path[j].by), path[j].refused)
                ):
                    done[j], event_ids[j] = True, e.id
                    while p < n and done[p]:
                        p += 1
                    break
                j += 1
            chained = False
            continue
        if e.action not in manual:
            continue  # opening, reads of personal data, redactions: not steps
        j = p
        while j < n and path[j].refused:
            j += 1
        if j < n and path[j].action == e.action:
            for k in range(p, j + 1):
                done[k] = True
            event_ids[j], reached[j], p, last, chained = e.id, e.to_state or "", j + 1, j, True
        else:
            off.append({"event": e.id, "action": e.action, "actor": e.actor, "at": clock.iso(e.at)})
            chained = False
    return done, event_ids, reached, off


def _seen_as(played: str | None, expected: str | None, rule: str) -> bool:
    """Whether a refusal seen by someone of role ``played`` counts for a step that names
    role ``expected``: by that role, always. The trainer holds every role, so a refusal
    the trainer saw is not the one a volunteer of that role meets: it counts only when the
    trainer plays that volunteer. A role refusal counts only as the role it names; any
    other rule refuses a volunteer of any role alike."""
    if played is not None and played == expected:
        return True
    return played not in (None, "trainer") and rule != "role"


def walkthrough(session_or_url: Session | str | None, ticket_id: int) -> Walkthrough | None:
    """The scenario's steps for a ticket of a training database, or None when the ticket is
    not one of the scenario's. Refused (``training-only``) on any other database."""
    from helpdesk.workflow import engine

    with _session(session_or_url) as s:
        _require_training(s)
        key = _meta(s, META_SCENARIO)
        tickets = json.loads(_meta(s, META_TICKETS) or "{}")
        name = next((n for n, i in tickets.items() if i == ticket_id), None)
        ticket = s.get(Ticket, ticket_id)
        if not key or name is None or ticket is None:
            return None
        sc = scenarios.load(key)
        d = engine.definition(s, ticket.workflow_id)
        path = [st for st in sc.steps if st.ticket == name]
        events = list(
            s.exec(select(Event).where(Event.ticket_id == ticket_id).order_by(col(Event.id)))
        )
        manual = {t.key for t in d.transitions if not t.auto}
        actors = {e.actor for e in events if e.action == REFUSAL_EVENT}
        played = {
            v.login: v.role
            for v in s.exec(select(Volunteer).where(col(Volunteer.login).in_(actors or {""})))
        }
        done, event_ids, reached, off = _match(path, events, manual, _auto_keys(s, ticket), played)
        roles = dict(VOLUNTEERS)
        steps: list[WalkStep] = []
        current_found = False
        first = next((e for e in events if e.id in event_ids), None)
        before = first.from_state if first is not None and first.from_state else ticket.state
        for k, st in enumerate(path):
            transitions = [t for t in d.by_key(st.action) if not t.auto]
            is_current = not done[k] and not current_found
            current_found = current_found or is_current
            cite_key, ref, text_ = _rule_citation(
                s, ticket, st.action, st.refused or None, ticket.state if is_current else before
            )
            if not st.refused:
                before = reached[k] if done[k] else st.expect
            state = d.states.get(st.expect)
            steps.append(
                WalkStep(
                    index=st.index,
                    action=st.action,
                    label=pick(transitions[0].label) if transitions else st.action,
                    who=st.by,
                    role=roles.get(st.by, SYSTEM),
                    check=pick(st.check),
                    citation=ref,
                    citation_key=cite_key,
                    citation_text=text_,
                    clock=st.clock,
                    expect=st.expect,
                    expect_label=pick(state.label) if state else "",
                    refused=st.refused,
                    done=done[k],
                    current=is_current,
                    event_id=event_ids[k],
                    reached=reached[k],
                )
            )
        return Walkthrough(
            scenario=sc.key,
            title=sc.title_text(),
            goal=sc.goal_text(),
            provider=sc.provider,
            queue=ticket.queue,
            ticket_id=ticket_id,
            ticket=name,
            clock=clock.iso(_clock(s)),
            steps=steps,
            off_path=off,
        )


def _expected(step: WalkStep) -> str:
    who = _("the clock") if step.who == SYSTEM else step.who
    if step.refused:
        return _(
            "step {n} expected: show that «{label}» ({action}) is refused by the rule {rule}, as {who}"
        ).format(
            n=step.index,
            label=step.label,
            action=step.action,
            rule=rule_label(step.refused),
            who=who,
        )
    return _("step {n} expected: «{label}» ({action}), by {who}").format(
        n=step.index, label=step.label, action=step.action, who=who
    )


def role_label(role: str) -> str:
    return label("role", role)


def rule_label(rule: str) -> str:
    return label("rule", rule)


def _sentence(text_: str) -> str:
    return text_[:1].upper() + text_[1:]


def feedback(
    session: Session | str | None,
    ticket_id: int,
    action: str,
    refused_rule: str | Refused | None = None,
) -> str | None:
    """What to tell the trainee after an attempt at ``action`` on a scenario ticket: None
    when it was the expected step; otherwise which step was expected, and for a refusal
    the rule and its article. Call it after the attempt, with the rule that refused it (its
    key, or the ``Refused`` itself, whose article is then quoted exactly) if it was
    refused; before applying, an in-order action gets None as well."""
    w = walkthrough(session, ticket_id)
    if w is None:
        return None
    current = w.current
    with _session(session) as s:
        ticket = s.get(Ticket, ticket_id)
        label = next((st.label for st in w.steps if st.action == action), action)
        if isinstance(refused_rule, Refused):
            ref = refused_rule.citation
            refused_rule = refused_rule.rule
        elif refused_rule:
            _key, ref, _text = _rule_citation(s, ticket, action, refused_rule, ticket.state)
        if refused_rule:
            article = ref or _("no article")
            # The refusal was recorded before this is asked: a step it matches that is still
            # to do was not seen as the role it names (the trainer holds every role).
            # The step reached last is this refusal: it was seen as the role it names.
            done = [st for st in w.steps if st.done]
            just_done = done and done[-1].action == action and done[-1].refused == refused_rule
            unseen = (
                None
                if just_done
                else next(
                    (
                        st
                        for st in w.steps
                        if not st.done and st.action == action and st.refused == refused_rule
                    ),
                    None,
                )
            )
            if unseen is not None:
                return _(
                    "«{label}» is refused by the rule {rule} ({article}), but step {n} counts only when seen as {who} ({role}): in the ticket, p plays that volunteer."
                ).format(
                    label=label,
                    rule=rule_label(refused_rule),
                    article=article,
                    n=unseen.index,
                    who=unseen.who,
                    role=role_label(unseen.role),
                )
            if any(
                st.done and st.action == action and st.refused == refused_rule for st in w.steps
            ):
                return _(
                    "As expected: «{label}» is refused by the rule {rule} ({article})."
                ).format(label=label, rule=rule_label(refused_rule), article=article)
            message = _("«{label}» was refused by the rule {rule} ({article}).").format(
                label=label, rule=rule_label(refused_rule), article=article
            )
            return message + (
                " " + _sentence(_expected(current)) + "." if current is not None else ""
            )
        events = list(
            s.exec(
                select(Event)
                .where(Event.ticket_id == ticket_id)
                .order_by(col(Event.id).desc())
                .limit(20)
            )
        )
        auto = _auto_keys(s, ticket)
    last = next(
        (
            e
            for e in events
            if not (e.actor == SYSTEM and e.action in auto) and e.action != REFUSAL_EVENT
        ),
        None,
    )
    if last is not None and last.action == action and any(st.event_id == last.id for st in w.steps):
        return None  # just taken, in order
    if current is not None and current.action == action:
        return None  # about to be taken (or shown refused), in order
    if current is None:
        return _("The scenario's path is complete; «{label}» is outside it.").format(label=label)
    return _("Out of order: {expected}.").format(expected=_expected(current))


PLAY_EVENT = "training-play"  # a trainer starts or stops playing a scenario's volunteer


def play_as(session_or_url: Session | str | None, trainer: str, login: str | None) -> str:
    """A trainer plays a scenario's volunteer (``login``; None: back to themselves), so
    that a refusal is seen as the role the step names: the trainer holds every role, so a
    rule that refuses a role never refuses the trainer. Only on a training database, only
    for a trainer, only as an active volunteer; recorded in the audit chain under the
    trainer's name. Returns the login that acts from now on."""
    from helpdesk.storage import audit

    with _session(session_or_url, write=True) as s:
        _require_training(s)
        own = s.get(Volunteer, trainer)
        if own is None or not own.active or own.role != "trainer":
            raise Refused("role", _("only a trainer plays the scenario's volunteers"))
        target = trainer if not login else login
        v = s.get(Volunteer, target)
        if v is None or not v.active:
            raise BadInput(_("no active volunteer {login}").format(login=target))
        audit.record(
            s,
            actor=trainer,
            action=PLAY_EVENT,
            data={"as": target, "role": v.role},
            at=_clock(s),
        )
        return target


def record_refusal(
    session_or_url: Session | str | None, ticket_id: int, action: str, rule: str, *, by: str
) -> Event:
    """Record on a training ticket that ``by`` tried ``action`` and the rule refused it (the
    engine records nothing of a refused action); the walkthrough then shows the refusal
    step as done. With a session, the caller commits."""
    from helpdesk.storage import audit

    with _session(session_or_url, write=True) as s:
        _require_training(s)
        ticket = s.get(Ticket, ticket_id)
        if ticket is None:
            raise BadInput(_("no ticket #{id}").format(id=ticket_id))
        return audit.record(
            s,
            actor=by,
            action=REFUSAL_EVENT,
            ticket_id=ticket_id,
            account_id=ticket.account_id,
            data={"action": action, "rule": rule},
            at=_clock(s),
        )
