"""The workflow engine.

It answers two questions for the TUI and the CLI alike: which actions may this person take
on this ticket now, and why not the others (with the rule and the citation that blocks
them); and *apply this action*: check, change state, change the account, record the event,
queue the mails — in the caller's single transaction, so a refused action changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from helpdesk.storage import audit
from helpdesk.base import clock
from helpdesk.workflow import compose
from helpdesk.rules import registry
from helpdesk.policy.citations import citation  # noqa: F401 - engine.citation for callers
from helpdesk.rules.access import (  # noqa: F401 - engine.* for callers
    check_scope,
    check_writer,
    is_training,
    require_role,
    scope_refusal,
)
from helpdesk.rules.context import SYSTEM_ACTOR, Actor, Ctx
from helpdesk.base.errors import BadInput, Conflict, NotFound, Refused
from helpdesk.base.fields import missing_required, validate
from helpdesk.base.labels import label
from helpdesk.base.i18n import _, pick
from helpdesk.storage.models import (
    Account,
    Deadline,
    Event,
    Policy,
    State,
    Ticket,
    Transition,
    Workflow,
)
from helpdesk.base.roles import may
from helpdesk.base.untrusted import clean

MAX_AUTO_STEPS = 10


# --- loading the definitions ---------------------------------------------------------


@dataclass
class Definition:
    workflow: Workflow
    policy: Policy
    states: dict[str, State]
    transitions: list[Transition]

    def by_key(self, key: str) -> list[Transition]:
        return [t for t in self.transitions if t.key == key]

    def from_state(self, state: str) -> list[Transition]:
        done = self.states[state].kind == "done" if state in self.states else True
        return [
            t for t in self.transitions if state in t.sources or ("*" in t.sources and not done)
        ]


def definition(session: Session, workflow_id: int) -> Definition:
    cache = session.info.setdefault("definitions", {})
    found = cache.get(workflow_id)
    if found is None:
        wf = session.get(Workflow, workflow_id)
        if wf is None:
            raise NotFound(f"workflow {workflow_id} not found")
        states = {
            s.key: s
            for s in session.exec(
                select(State).where(State.workflow_id == wf.id).order_by(col(State.position))
            )
        }
        transitions = list(
            session.exec(
                select(Transition)
                .where(Transition.workflow_id == wf.id)
                .order_by(col(Transition.position))
            )
        )
        found = Definition(wf, session.get(Policy, wf.policy_key), states, transitions)
        cache[workflow_id] = found
    return found


def workflow_for(session: Session, policy_key: str, queue: str) -> Definition:
    ids = session.info.setdefault("workflow_ids", {})
    if (policy_key, queue) in ids:
        return definition(session, ids[(policy_key, queue)])
    policy = session.get(Policy, policy_key)
    if policy is None:
        raise NotFound(_("unknown policy {key!r}").format(key=policy_key))
    wf = session.exec(
        select(Workflow).where(Workflow.policy_key == policy_key, Workflow.queue == queue)
    ).first()
    if wf is None:
        raise BadInput(
            _("policy {policy} has no {queue} procedure").format(policy=policy_key, queue=queue)
        )
    ids[(policy_key, queue)] = wf.id
    return definition(session, wf.id)


# --- what may be done ------------------------------------------------------------------


@dataclass
class ActionView:
    key: str
    label: str
    allowed: bool
    reason: str = ""
    rule: str = ""
    citation: str = ""
    citation_text: str = ""
    role: str = "volunteer"
    fields: list = field(default_factory=list)
    checklist: list = field(default_factory=list)
    note_required: bool = False
    confirm: bool = False
    target: str = ""
    undo: str = ""  # the step that undoes this one (lift, reinstate), if any
    needs_note: bool = False  # blocked only for want of a recorded reason: the note unblocks it

    def as_dict(self, *, texts: bool = False) -> dict[str, Any]:
        """The view as plain data; ``texts``: with the French text of the citation."""
        return {
            **({"citation_text": self.citation_text} if texts else {}),
            "key": self.key,
            "label": self.label,
            "allowed": self.allowed,
            "reason": self.reason,
            "rule": self.rule,
            "citation": self.citation,
            "role": self.role,
            "fields": self.fields,
            "checklist": self.checklist,
            "note_required": self.note_required,
            "confirm": self.confirm,
            "irreversible": self.confirm and not self.undo,
            "undo": self.undo,
            "needs_note": self.needs_note,
            "target": self.target,
        }


def _check(ctx: Ctx, transition: Transition) -> Refused | None:
    """The first rule that refuses this transition to this actor now, or None."""
    return _check_role(ctx, transition) or _check_guards(ctx, transition)


def _check_role(ctx: Ctx, transition: Transition) -> Refused | None:
    if ctx.actor.role == "trainer" and not ctx.training:
        return Refused("training-only", _("the trainer role works only on training databases"))
    if not ctx.actor.covers(ctx.policy.key):
        return scope_refusal(ctx.actor, ctx.policy.key)
    if not ctx.actor.is_system and transition.system_only:
        ref, text = citation(ctx.policy, transition.cite)
        return Refused("clock-only", _("this step is taken by the clock only"), ref, text)
    if not may(ctx.actor.role, transition.role, ctx.training):
        # The step's article: where the text reserves it (Wigii art. 5: the log to technical
        # administrators), the refusal quotes it.
        ref, text = citation(ctx.policy, transition.cite)
        return Refused(
            "role",
            _("reserved to the {role} role (you are {mine})").format(
                role=label("role", transition.role), mine=label("role", ctx.actor.role)
            ),
            ref,
            text,
        )
    return None


def _check_guards(ctx: Ctx, transition: Transition) -> Refused | None:
    ctx.transition = transition
    for spec in transition.guards:
        fn = registry.GUARDS[spec["name"]]
        reason = fn(ctx, **(spec.get("args") or {}))
        if reason:
            if spec.get("message"):
                reason = pick(spec["message"])
            ref, text = citation(ctx.policy, spec.get("cite") or transition.cite)
            return Refused(spec["name"], reason, ref, text)
    return None


def make_ctx(session: Session, ticket: Ticket, actor: Actor, now: datetime | None = None) -> Ctx:
    d = definition(session, ticket.workflow_id)
    account = session.get(Account, ticket.account_id) if ticket.account_id else None
    return Ctx(
        session=session,
        ticket=ticket,
        account=account,
        policy=d.policy,
        workflow=d.workflow,
        actor=actor,
        now=now or clock.now(),
        training=is_training(session),
        open_ticket=open_ticket,
    )


def actions(
    session: Session, ticket: Ticket, actor: Actor, now: datetime | None = None
) -> list[ActionView]:
    """Every action a person could take on this ticket: allowed ones, and blocked ones with
    the rule that blocks them and its citation. Automatic steps are not listed."""
    d = definition(session, ticket.workflow_id)
    ctx = make_ctx(session, ticket, actor, now)
    state = d.states.get(ticket.state)
    views: dict[str, ActionView] = {}
    here = {t.key: t for t in d.from_state(ticket.state) if not t.auto}
    for t in d.transitions:
        if t.auto or t.system_only or t.key in views:
            continue
        ref, text = citation(d.policy, t.cite)
        view = ActionView(
            key=t.key,
            label=pick(t.label),
            allowed=False,
            role=t.role,
            fields=list(t.fields),
            checklist=list(t.checklist),
            note_required=t.note_required,
            confirm=t.confirm,
            citation=ref,
            citation_text=text,
            undo=_undo(d, t),
        )
        chosen = here.get(t.key)
        if chosen is None:
            if state is not None and state.kind == "done":
                continue
            view.rule = "state"
            view.reason = _("not possible while the ticket is «{state}»").format(
                state=pick(state.label) if state else ticket.state
            )
        else:
            view.target = chosen.target
            refusal = _check(ctx, chosen)
            if refusal is None:
                view.allowed = True
            else:
                view.rule, view.reason = refusal.rule, refusal.reason
                view.citation, view.citation_text = (
                    refusal.citation or ref,
                    refusal.citation_text or text,
                )
                view.needs_note = _note_unblocks(ctx, chosen)
        views[t.key] = view
    return list(views.values())


def _undo(d: "Definition", t: Transition) -> str:
    """The step that undoes ``t``: one leaving its target state that puts the account back
    to active (lifting a sending suspension, reinstating a suspended account)."""
    for back in d.from_state(t.target):
        for effect in back.effects or []:
            if (
                effect.get("name") == "set_account_status"
                and (effect.get("args") or {}).get("status") == "active"
            ):
                return back.key
    return ""


def _note_unblocks(ctx: Ctx, t: Transition) -> bool:
    """Whether ``t`` is refused only because no reason is recorded yet: checked again as if
    a note were given (an emergency step asks for its reason in the form)."""
    if ctx.note:
        return False
    ctx.note = "\u2026"
    try:
        return _check(ctx, t) is None
    finally:
        ctx.note = ""


# --- applying an action ----------------------------------------------------------------


@dataclass
class Outcome:
    ticket: Ticket
    events: list[Event]
    mails: list
    reveal: list
    output: list
    actions: list = field(
        default_factory=list
    )  # service actions queued (helpdesk.outgoing.actions)


def _last_actor(session: Session, ticket_id: int) -> str:
    ev = session.exec(
        select(Event).where(Event.ticket_id == ticket_id).order_by(col(Event.id).desc())
    ).first()
    return ev.actor if ev else "?"


def check_version(
    session: Session, ticket: Ticket, expected_version: int | None, d: Definition | None = None
) -> None:
    """No lost update: the caller saw ``expected_version``; if someone changed the ticket
    since, say who and what state it is in now."""
    if expected_version is None or ticket.version == expected_version:
        return
    who = _last_actor(session, ticket.id)
    d = d or definition(session, ticket.workflow_id)
    label = pick(d.states[ticket.state].label) if ticket.state in d.states else ticket.state
    raise Conflict(
        _("ticket #{id} was changed by {who} meanwhile; it is now «{state}»").format(
            id=ticket.id, who=who, state=label
        ),
        who,
        ticket.state,
    )


def load_ticket(session: Session, ticket_id: int, *, for_update: bool = False) -> Ticket:
    ticket = (
        session.get(Ticket, ticket_id, with_for_update=for_update)
        if for_update
        else session.get(Ticket, ticket_id)
    )
    if ticket is None:
        raise NotFound(_("no ticket #{id}").format(id=ticket_id))
    return ticket


def apply(
    session: Session,
    ticket_id: int,
    action: str,
    actor: Actor,
    *,
    note: str = "",
    fields: dict | None = None,
    checks: list[str] | None = None,
    expected_version: int | None = None,
    now: datetime | None = None,
) -> Outcome:
    """Check and apply one action, then any automatic steps that follow.

    Raises ``Refused`` (exit 1), ``BadInput``/``NotFound`` (exit 2) or ``Conflict``; the caller's
    transaction is then rolled back, so nothing of a refused action remains.
    """
    ticket = load_ticket(session, ticket_id, for_update=True)
    check_scope(actor, ticket.policy_key)
    d = definition(session, ticket.workflow_id)
    check_version(session, ticket, expected_version, d)
    candidates = d.by_key(action)
    if not candidates or all(t.auto for t in candidates):
        known = ", ".join(sorted({t.key for t in d.transitions if not t.auto}))
        raise BadInput(
            _("unknown action {action!r} for this ticket (known: {known})").format(
                action=action, known=known
            )
        )
    here = [t for t in d.from_state(ticket.state) if t.key == action]
    if not here:
        ref, text = citation(d.policy, candidates[0].cite)
        state = d.states.get(ticket.state)
        raise Refused(
            "state",
            _("{action}: not possible while the ticket is «{state}»").format(
                action=action, state=pick(state.label) if state else ticket.state
            ),
            ref,
            text,
        )
    transition = here[0]
    ctx = make_ctx(session, ticket, actor, now)
    refusal = _check_role(ctx, transition)
    if refusal:
        raise refusal
    ctx.given = validate(
        d.workflow.fields, fields or {}, ctx.tz, metadata_only=d.workflow.metadata_only
    )
    ctx.note = clean(note or "").strip()
    ctx.checks = set(checks or [])
    refusal = _check_guards(ctx, transition)
    if refusal:
        raise refusal
    missing = [f for f in transition.fields if ctx.fields.get(f) in (None, "")]
    if missing:
        raise BadInput(
            _("{action} needs the field(s): {fields}").format(
                action=action, fields=", ".join(missing)
            )
        )
    if transition.note_required and not ctx.note:
        raise BadInput(
            _("{action} needs a note recording the reason (--note)").format(action=action)
        )
    unticked = [c for c in transition.checklist if c not in ctx.checks]
    if unticked:
        ref, text = citation(d.policy, transition.cite)
        raise Refused(
            "checklist",
            _("checklist item(s) not ticked: {items}").format(items=", ".join(unticked)),
            ref,
            text,
        )

    events = [_take(ctx, d, transition)]
    events += run_automatic(session, ticket, now=ctx.now, mails=ctx.mails)
    return Outcome(ticket, events, ctx.mails, ctx.reveal, ctx.output, ctx.actions)


def _take(ctx: Ctx, d: Definition, transition: Transition) -> Event:
    """Apply a checked transition: effects, state change, timers, event."""
    ticket = ctx.ticket
    from_state = ticket.state
    if ctx.given:
        merged = dict(ticket.fields or {})
        merged.update(ctx.given)
        ticket.fields = merged
    if ctx.checks:
        ticket.checklist = sorted(set(ticket.checklist or []) | ctx.checks)
    for spec in transition.effects:
        registry.EFFECTS[spec["name"]](ctx, **(spec.get("args") or {}))

    target = from_state if transition.target == "=" else transition.target
    if target != from_state:
        _leave_state(ctx, from_state, done_action=transition.key)
        ticket.state = target
        state = d.states[target]
        ticket.state_kind = state.kind
        ticket.closed_at = ctx.now if state.kind == "done" else None
        _enter_state(ctx, state)
    compose.flush_pending(ctx)
    if not ctx.actor.is_system and (ctx.mails or ticket.state_kind == "done"):
        # Only a step that answers (a mail goes out) or ends the ticket meets the response
        # target: reading logs or noting a field answers nobody.
        _settle_deadline(ctx, "respond-by")
    ticket.updated_at = ctx.now
    ticket.version = (ticket.version or 0) + 1
    refresh_due(ctx.session, ticket)
    ctx.session.add(ticket)

    data = dict(ctx.event_data)
    if ctx.given:
        data["fields"] = ctx.given
    if ctx.checks:
        data["checklist"] = sorted(ctx.checks)
    if ctx.mails:
        ctx.session.flush()
        data["mails"] = [m.id for m in ctx.mails]
    if ctx.actions:
        data["service_actions"] = [a.id for a in ctx.actions]
    event = Event(
        at=ctx.now,
        actor=ctx.actor.login,
        ticket_id=ticket.id,
        account_id=ticket.account_id,
        action=transition.key,
        from_state=from_state,
        to_state=target,
        note=ctx.note,
        sanction=transition.sanction,
        data=data,
    )
    audit.append(ctx.session, event)
    if ctx._ledger is not None and transition.sanction:
        ctx._ledger.append(event)
    return event


def _leave_state(ctx: Ctx, state: str, *, done_action: str) -> None:
    st = definition(ctx.session, ctx.ticket.workflow_id).states.get(state)
    # Dates shown on the ticket that this state's timers fired on stay shown when it is left
    # some other way (the next state may fire on them too).
    shown = {
        t["at"][len("deadline:") :]
        for t in (st.timers if st else [])
        if t.get("at", "").startswith("deadline:") and not t.get("deadline")
    }
    for dl in ctx.session.exec(
        select(Deadline).where(
            Deadline.ticket_id == ctx.ticket.id,
            Deadline.state == state,
            Deadline.status == "pending",
        )
    ):
        if dl.action != done_action and dl.name in shown:
            dl.status, dl.action, dl.state = "info", None, None
        else:
            dl.status = "done" if dl.action == done_action else "cancelled"
        ctx.session.add(dl)


def _enter_state(ctx: Ctx, state: State) -> None:
    for timer in state.timers:
        at = timer.get("at", "")
        if at.startswith("deadline:") and not timer.get("deadline"):
            # The timer fires on a date already shown on the ticket: that date becomes the timer.
            shown = ctx.deadline(at[len("deadline:") :])
            if shown is not None:
                shown.action, shown.state, shown.status = timer["action"], state.key, "pending"
                ctx.session.add(shown)
            continue
        due = resolve_when(ctx, timer)
        if due is None:
            continue
        ctx.session.add(
            Deadline(
                ticket_id=ctx.ticket.id,
                name=timer.get("deadline") or timer["action"],
                due_at=due,
                action=timer["action"],
                state=state.key,
            )
        )
    ctx.session.flush()


def _settle_deadline(ctx: Ctx, name: str) -> None:
    for dl in ctx.session.exec(
        select(Deadline).where(
            Deadline.ticket_id == ctx.ticket.id, Deadline.name == name, Deadline.status == "pending"
        )
    ):
        dl.status = "done"
        ctx.session.add(dl)


def resolve_when(ctx: Ctx, spec: dict) -> datetime | None:
    """When a timer fires: ``at = "field:day" | "deadline:name"`` or ``after = "P2M" | "param:x"``."""
    at = spec.get("at")
    if at:
        kind, _sep, name = at.partition(":")
        if kind == "field":
            value = ctx.fields.get(name)
            if not value:
                return None
            if len(str(value)) == 10:
                return clock.start_of_day(clock.parse_day(value), ctx.tz)
            return clock.parse_datetime(value)
        if kind == "deadline":
            dl = ctx.deadline(name)
            return dl.due_at if dl else None
        raise ValueError(f"bad timer spec {spec}")
    after = spec.get("after")
    if after:
        if after.startswith("param:"):
            delta = ctx.duration_param(after[len("param:") :])
        else:
            delta = clock.parse_duration(after)
        return clock.add(ctx.now, delta, ctx.tz)
    raise ValueError(f"bad timer spec {spec}")


def refresh_due(session: Session, ticket: Ticket) -> None:
    session.flush()
    first = session.exec(
        select(Deadline.due_at)
        .where(Deadline.ticket_id == ticket.id, Deadline.status == "pending")
        .order_by(col(Deadline.due_at))
    ).first()
    ticket.due_at = first if ticket.state_kind != "done" else None


def run_automatic(
    session: Session, ticket: Ticket, *, now: datetime | None = None, mails: list | None = None
) -> list[Event]:
    """Take automatic steps (``auto = true``) as long as one's guards pass."""
    events: list[Event] = []
    d = definition(session, ticket.workflow_id)
    for _step in range(MAX_AUTO_STEPS):
        ctx = make_ctx(session, ticket, SYSTEM_ACTOR, now)
        for t in d.from_state(ticket.state):
            if t.auto and _check(ctx, t) is None:
                events.append(_take(ctx, d, t))
                if mails is not None:
                    mails.extend(ctx.mails)
                break
        else:
            return events
    return events


# --- opening a ticket --------------------------------------------------------------------


def open_ticket(
    session: Session,
    *,
    queue: str,
    policy_key: str,
    actor: Actor,
    account: Account | None = None,
    requester: str = "",
    subject: str = "",
    fields: dict | None = None,
    lang: str | None = None,
    parent_id: int | None = None,
    note: str = "",
    now: datetime | None = None,
) -> Outcome:
    d = workflow_for(session, policy_key, queue)
    check_writer(session, actor, policy_key)
    now = now or clock.now()
    values = validate(
        d.workflow.fields, fields or {}, d.policy.timezone, metadata_only=d.workflow.metadata_only
    )
    missing = missing_required(d.workflow.fields, values)
    if missing:
        raise BadInput(
            _("{queue} needs the field(s): {fields}").format(queue=queue, fields=", ".join(missing))
        )
    reasons = (d.policy.params or {}).get("closure_reasons")
    if queue == "closure" and reasons and values.get("reason") not in reasons:
        raise BadInput(
            _("{policy} has no closure for the reason {reason!r} (reasons: {reasons})").format(
                policy=policy_key, reason=values.get("reason"), reasons=", ".join(reasons)
            )
        )
    initial = d.workflow.initial or {}
    state_key = initial.get("default")
    if initial.get("field"):
        state_key = (initial.get("map") or {}).get(values.get(initial["field"]), state_key)
    if state_key not in d.states:
        raise BadInput(
            _("{policy} has no such {queue} procedure").format(policy=policy_key, queue=queue)
        )
    state = d.states[state_key]
    ticket = Ticket(
        queue=queue,
        policy_key=policy_key,
        workflow_id=d.workflow.id,
        state=state_key,
        state_kind=state.kind,
        account_id=account.id if account else None,
        requester=clean(requester).strip().lower(),
        subject=clean(subject).strip(),
        lang=lang or (account.lang if account and account.lang else d.policy.lang),
        fields=values,
        parent_id=parent_id,
        opened_at=now,
        updated_at=now,
    )
    session.add(ticket)
    session.flush()
    ctx = make_ctx(session, ticket, actor, now)
    target = (d.policy.params or {}).get("response_target")
    if target and state.kind != "done":
        session.add(
            Deadline(
                ticket_id=ticket.id,
                name="respond-by",
                due_at=clock.add(now, clock.parse_duration(target), d.policy.timezone),
                note=(d.policy.params or {}).get("response_target_note", ""),
            )
        )
    for spec in d.workflow.on_open:
        when = spec.get("when")
        if isinstance(when, dict) and any(values.get(k) != v for k, v in when.items()):
            continue
        if isinstance(when, str) and not values.get(when):
            continue
        registry.EFFECTS[spec["name"]](ctx, **(spec.get("args") or {}))
    # After the opening effects, so a timer of the first state can fire on a date they set
    # (a binding date: the end of a convention, the removal of a member's data).
    _enter_state(ctx, state)
    compose.flush_pending(ctx)
    refresh_due(session, ticket)
    event = Event(
        at=now,
        actor=actor.login,
        ticket_id=ticket.id,
        account_id=ticket.account_id,
        action="open",
        to_state=state_key,
        note=clean(note).strip(),
        data={"fields": values, **ctx.event_data},
    )
    audit.append(session, event)
    events = [event] + run_automatic(session, ticket, now=now, mails=ctx.mails)
    return Outcome(ticket, events, ctx.mails, ctx.reveal, ctx.output)
