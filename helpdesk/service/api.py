"""The small API that the CLI and the TUI share. Every function takes the session from the
caller (one session per user action) and returns plain data or model rows."""

from __future__ import annotations

import os
from datetime import datetime
from collections.abc import Iterable
from typing import Any

from sqlalchemy import func, or_
from sqlmodel import Session, col, select

from helpdesk.rules import accounts as account_rules, ledger
from helpdesk.storage import audit, messages
from helpdesk.base import clock, networks
from helpdesk.service import conversation
from helpdesk.service import listing
from helpdesk.service.counts import (  # noqa: F401 - api.* for callers
    binding_counts,
    binding_soonest,
    queue_counts,
)
from helpdesk.service.listing import (  # noqa: F401 - api.* for callers
    ACCOUNT_STATUSES,
    actor_for,
    bounced_ticket_ids,
    binding_dates,
    binding_names,
    check_filters,
    check_login,
    ticket_row,
    ticket_rows,
)
from helpdesk.workflow import engine
from helpdesk.outgoing import actions as service_actions
from helpdesk.policy import provider_settings
from helpdesk.rules.context import SYSTEM_ACTOR, Actor
from helpdesk.base.errors import BadInput, NotFound, Refused
from helpdesk.base.fields import EMAIL
from helpdesk.base.i18n import _, pick
from helpdesk.rules.access import check_unscoped
from helpdesk.storage.models import (
    Account,
    Deadline,
    Event,
    Outbox,
    Policy,
    State,
    Ticket,
    Volunteer,
    Workflow,
)
from helpdesk.base.roles import ROLES, SYSTEM
from helpdesk.base.untrusted import clean
from helpdesk.rules.sensitive import SENSITIVE, read_sensitive  # noqa: F401 - the service's gate

ACCOUNT_KINDS = ("user", "admin", "employee", "member", "end-user")


# --- people ------------------------------------------------------------------------------


def installer() -> Actor:
    """Who sets up a database that has no technical administrator yet: the Unix user."""
    import getpass

    try:
        who = getpass.getuser()
    except (KeyError, OSError):
        who = str(os.getuid())
    return Actor(f"unix:{clean(who)[:58]}", "installer")


def volunteer_admin(session: Session, login: str | None) -> Actor:
    """Who manages volunteers: a techadmin (``--as``). Only while the database has no active
    technical administrator may the Unix user set it up without one (the first techadmin)."""
    if login:
        actor = actor_for(session, login)
        engine.require_role(session, actor, "techadmin")
        return actor
    if (
        session.exec(
            select(Volunteer.login).where(Volunteer.active, Volunteer.role == "techadmin")
        ).first()
        is None
    ):
        return installer()
    raise BadInput(_("who is acting? give --as LOGIN or set HELPDESK_USER"))


def _check_grant(session: Session, actor: Actor, v: Volunteer | None, policies: list[str]) -> None:
    """A techadmin scoped to providers manages only volunteers within that scope, and grants
    no more than it has. The installer and the core itself are not scoped."""
    if actor.role in ("installer", SYSTEM) or not actor.policies:
        return
    for key in [*policies, *((v.policies or []) if v is not None else [])] or [None]:
        if key is None or key not in actor.policies:
            raise engine.scope_refusal(actor, key or _("all providers"))


def add_volunteer(
    session: Session,
    login: str,
    role: str,
    *,
    name: str = "",
    ssh_key: str | None = None,
    policies: list[str] | None = None,
    actor: Actor = SYSTEM_ACTOR,
) -> Volunteer:
    """Add a volunteer or change their role, scope, name or keys: a techadmin's act (or the
    installer's, or the core's when it builds a training database), recorded before → after."""
    if actor.role not in ("installer", SYSTEM):
        engine.require_role(session, actor, "techadmin")
    if role not in ROLES:
        raise BadInput(
            _("unknown role {role!r} (roles: {roles})").format(role=role, roles=", ".join(ROLES))
        )
    login = check_login(login.strip() if isinstance(login, str) else login)
    scope = sorted(set(policies or []))
    for key in scope:
        if session.get(Policy, key) is None:
            raise BadInput(_("unknown policy {key!r}").format(key=key))
    v = session.get(Volunteer, login)
    _check_grant(session, actor, v, scope)
    before = _volunteer_facts(v) if v is not None else None
    if v is None:
        v = Volunteer(login=login, created_at=clock.now())
    v.role = role
    v.policies = scope
    v.name = clean(name) or v.name
    v.active = True
    if ssh_key:
        from helpdesk.service import sshkeys

        key = sshkeys.normalise(ssh_key)
        for other in session.exec(select(Volunteer).where(Volunteer.login != login)):
            if key in (other.ssh_keys or []):
                raise BadInput(
                    _("this key already identifies {login}: one key, one person").format(
                        login=other.login
                    )
                )
        v.ssh_keys = sorted(set(v.ssh_keys or []) | {key})
    session.add(v)
    after = _volunteer_facts(v)
    if before != after:
        audit.record(
            session,
            actor=actor.login,
            action="volunteer-add",
            data={"login": login, "role": role, "before": before, "after": after},
        )
    return v


def _volunteer_facts(v: Volunteer) -> dict:
    return {
        "role": v.role,
        "policies": list(v.policies or []),
        "active": bool(v.active),
        "name": v.name,
        "ssh_keys": len(v.ssh_keys or []),
    }


def withdraw(
    session: Session, login: str, *, key: str | None = None, actor: Actor = SYSTEM_ACTOR
) -> Volunteer:
    """Remove one key of a volunteer, or (no key) withdraw the volunteer altogether: a
    techadmin's act, recorded before → after."""
    from helpdesk.service import sshkeys

    if actor.role not in ("installer", SYSTEM):
        engine.require_role(session, actor, "techadmin")
    v = session.get(Volunteer, login)
    if v is None:
        raise NotFound(
            _("unknown volunteer {login!r} (helpdesk volunteer add)").format(login=login)
        )
    _check_grant(session, actor, v, [])
    before = _volunteer_facts(v)
    if key is None:
        v.active = False
    else:
        wanted = sshkeys.normalise(key)
        if wanted not in (v.ssh_keys or []):
            raise BadInput(_("{login} has no such key").format(login=login))
        v.ssh_keys = [k for k in v.ssh_keys if k != wanted]
    session.add(v)
    audit.record(
        session,
        actor=actor.login,
        action="volunteer-withdraw",
        data={"login": login, "key": bool(key), "before": before, "after": _volunteer_facts(v)},
    )
    return v


# --- accounts ----------------------------------------------------------------------------


def find_account(session: Session, login: str, policy: str | None = None) -> Account:
    q = select(Account).where(Account.login == login)
    if policy:
        q = q.where(Account.policy_key == policy)
    rows = list(session.exec(q))
    if not rows:
        raise NotFound(
            _("no account {login!r}{where}").format(
                login=login, where=f" ({policy})" if policy else ""
            )
        )
    if len(rows) > 1:
        raise BadInput(
            _("{login!r} exists under several policies: give --policy").format(login=login)
        )
    return rows[0]


def add_account(
    session: Session,
    *,
    login: str,
    policy: str,
    email: str,
    kind: str = "user",
    org: str = "",
    contacts: list[str] | None = None,
    last_login: str | None = None,
    fields: dict | None = None,
    lang: str = "",
    status: str | None = None,
    actor: Actor = SYSTEM_ACTOR,
) -> Account:
    """Add or update an account, recorded before → after. ``status`` (None: a new account is
    active, an existing one keeps its status) loads an existing directory: an account's status
    otherwise changes only through a procedure, so setting it is a techadmin's act."""
    if session.get(Policy, policy) is None:
        raise BadInput(_("unknown policy {key!r}").format(key=policy))
    engine.check_writer(session, actor, policy)
    if kind not in ACCOUNT_KINDS:
        raise BadInput(
            _("unknown account kind {kind!r} ({kinds})").format(
                kind=kind, kinds=", ".join(ACCOUNT_KINDS)
            )
        )
    if status is not None and status not in ACCOUNT_STATUSES:
        raise BadInput(
            _("unknown account status {status!r} ({statuses})").format(
                status=status, statuses=", ".join(ACCOUNT_STATUSES)
            )
        )
    email = email.strip().lower()
    for address in [email, *(contacts or [])]:
        if address and not EMAIL.match(address):
            raise BadInput(_("not an e-mail address: {address!r}").format(address=address))
    checked: dict[str, Any] = {}
    for key, value in (fields or {}).items():
        if key.endswith("-date") or key.endswith("-end") or key.endswith("-start"):
            try:
                value = clock.parse_day(value).isoformat()
            except clock.BadDate:
                raise BadInput(
                    _("field {name}: a date YYYY-MM-DD expected, not {value!r}").format(
                        name=key, value=value
                    )
                ) from None
        if key == "ips":
            value = networks.normalise(value)
        checked[key] = clean(str(value))
    now = clock.now()
    acc = session.exec(
        select(Account).where(Account.policy_key == policy, Account.login == login)
    ).first()
    before = None
    if acc is not None:
        _check_immutable(session, acc, checked)
        before = (list(acc.contacts or []), dict(acc.fields or {}))
    if (
        status is not None
        and status != (acc.status if acc is not None else "active")
        and not actor.is_system
    ):
        engine.require_role(session, actor, "techadmin", policy)
    facts_before = account_facts(acc) if acc is not None else None
    if acc is None:
        acc = Account(policy_key=policy, login=clean(login).strip(), created_at=now, updated_at=now)
        status = status or "active"
    acc.email = email
    acc.kind = kind
    acc.org = clean(org)
    if contacts is not None:  # None: the contacts stay as they are
        acc.contacts = account_rules.normalise_contacts(contacts)
    acc.lang = lang
    if status is not None:
        acc.status = status
    if last_login:
        try:
            acc.last_login = clock.parse_datetime(last_login)
        except clock.BadDate as exc:
            raise BadInput(str(exc)) from None
    acc.fields = {**(acc.fields or {}), **checked}
    if before is not None:
        account_rules.check_contacts_kept(session, acc, *before)
    account_rules.check_one_admin(session, acc)
    acc.updated_at = now
    session.add(acc)
    session.flush()
    _record_account_change(
        session,
        actor,
        "account-add" if facts_before is None else "account-update",
        acc,
        facts_before,
    )
    return acc


def account_facts(acc: Account) -> dict:
    """What an account change is recorded with, before and after."""
    return {
        "email": acc.email,
        "kind": acc.kind,
        "org": acc.org,
        "contacts": list(acc.contacts or []),
        "status": acc.status,
        "lang": acc.lang,
        "last_login": clock.iso(acc.last_login),
        "fields": dict(acc.fields or {}),
    }


def _record_account_change(
    session: Session, actor: Actor, action: str, acc: Account, before: dict | None
) -> None:
    """An event for a change of an account, with what changed before → after (nothing
    changed: no event)."""
    after = account_facts(acc)
    if before is not None:
        changed = sorted(k for k in after if after[k] != before.get(k))
        if not changed:
            return
        before, after = {k: before.get(k) for k in changed}, {k: after[k] for k in changed}
    audit.record(
        session,
        actor=actor.login,
        action=action,
        account_id=acc.id,
        data={"login": acc.login, "policy": acc.policy_key, "before": before, "after": after},
    )


def change_contacts(
    session: Session,
    acc: Account,
    *,
    add: Iterable[str] = (),
    remove: Iterable[str] = (),
    actor: Actor = SYSTEM_ACTOR,
) -> Account:
    """Add and remove an account's contact addresses (``account_rules`` may refuse),
    recorded before → after: a contact address is where a password reset may be sent."""
    engine.check_writer(session, actor, acc.policy_key)
    facts_before = account_facts(acc)
    added = [a.strip().lower() for a in add]
    removed = {r.strip().lower() for r in remove}
    for address in added:
        if not EMAIL.match(address):
            raise BadInput(_("not an e-mail address: {address!r}").format(address=address))
    old = list(acc.contacts or [])
    unknown = sorted(removed - set(old))
    if unknown:
        raise BadInput(
            _("{address} is not a contact of {login}").format(
                address=", ".join(unknown), login=acc.login
            )
        )
    kept = [c for c in old if c not in removed]
    acc.contacts = kept + [a for a in dict.fromkeys(added) if a not in kept]
    account_rules.check_contacts_kept(session, acc, old, dict(acc.fields or {}))
    acc.updated_at = clock.now()
    session.add(acc)
    session.flush()
    _record_account_change(session, actor, "account-contacts", acc, facts_before)
    return acc


def _check_immutable(session: Session, acc: Account, fields: dict) -> None:
    """Facts a provider's text says can never change once set (Weentime art. 2: the country)."""
    policy = session.get(Policy, acc.policy_key)
    for name, cite in ((policy.params or {}).get("immutable_fields") or {}).items():
        old, new = (acc.fields or {}).get(name), fields.get(name)
        if old and new is not None and new != old:
            ref, _text = engine.citation(policy, cite)
            raise Refused(
                "immutable-field",
                _("{field} of {login} is {old} and can never be changed").format(
                    field=name, login=acc.login, old=old
                ),
                ref,
            )


# --- reading sensitive data -------------------------------------------------------------

CLOSED_STATUSES = ("deactivated", "erased")


def is_closed(acc: Account | None) -> bool:
    return acc is not None and acc.status in CLOSED_STATUSES


def account_view(session: Session, acc: Account) -> dict:
    sanctions = ledger.of_account(session, acc.id)
    return {
        **{k: v for k, v in (acc.fields or {}).items()},
        "login": acc.login,
        "policy": acc.policy_key,
        "kind": acc.kind,
        "email": acc.email,
        "org": acc.org,
        "contacts": acc.contacts,
        "status": acc.status,
        "last_login": clock.iso(acc.last_login),
        "lang": acc.lang,
        "fields": acc.fields,
        "sanctions": ledger.as_rows(sanctions, session),
    }


# --- tickets -----------------------------------------------------------------------------


def open_ticket(
    session: Session,
    *,
    queue: str,
    policy: str,
    actor: Actor,
    account_login: str | None,
    requester: str = "",
    subject: str = "",
    fields: dict | None = None,
    note: str = "",
    lang: str | None = None,
    now: datetime | None = None,
) -> engine.Outcome:
    account = find_account(session, account_login, policy) if account_login else None
    if requester and not EMAIL.match(requester.strip()):
        raise BadInput(_("not an e-mail address: {address!r}").format(address=requester))
    return engine.open_ticket(
        session,
        queue=queue,
        policy_key=policy,
        actor=actor,
        account=account,
        requester=requester,
        subject=subject,
        fields=fields,
        note=note,
        lang=lang,
        now=now,
    )


def event_view(e: Event) -> dict:
    return {
        "id": e.id,
        "at": clock.iso(e.at),
        "actor": e.actor,
        "action": e.action,
        "from": e.from_state,
        "to": e.to_state,
        "note": e.note,
        "sanction": e.sanction,
    }


def deadlines(session: Session, ticket: Ticket) -> list[Deadline]:
    return list(
        session.exec(
            select(Deadline)
            .where(Deadline.ticket_id == ticket.id, Deadline.status != "cancelled")
            .order_by(col(Deadline.due_at))
        )
    )


# --- dates the texts make binding --------------------------------------------------------

#: The response target every ticket gets is the team's own, indicative (never binding).
INDICATIVE_DEADLINES = ("respond-by",)


def ticket_view(
    session: Session,
    ticket: Ticket,
    actor: Actor,
    *,
    now: datetime | None = None,
    history: int | None = None,
    citation_texts: bool = False,
) -> dict:
    """Everything about a ticket that a screen or ``ticket show`` prints. ``history``: only
    the latest events (``events_total`` says how many there are), so a ticket with a long
    history costs what a screenful costs."""
    d = engine.definition(session, ticket.workflow_id)
    account = session.get(Account, ticket.account_id) if ticket.account_id else None
    state = d.states.get(ticket.state)
    merged_from = conversation.merged_sources(session, ticket)
    # The history of the tickets merged into this one shows here too.
    of_ticket = select(Event).where(
        col(Event.ticket_id).in_([ticket.id, *merged_from])
        if merged_from
        else Event.ticket_id == ticket.id
    )
    if history is None:
        events = list(session.exec(of_ticket.order_by(col(Event.id))))
        total = len(events)
        first = events[0] if events else None
    else:
        events = list(session.exec(of_ticket.order_by(col(Event.id).desc()).limit(history)))[::-1]
        total = session.exec(
            select(func.count()).select_from(Event).where(Event.ticket_id == ticket.id)
        ).one()
        first = (
            events[0]
            if total == len(events)
            else session.exec(of_ticket.order_by(col(Event.id)).limit(1)).first()
        )
    visited = {
        key
        for pair in session.exec(
            select(Event.from_state, Event.to_state).where(Event.ticket_id == ticket.id).distinct()
        )
        for key in pair
        if key
    }
    dls = deadlines(session, ticket)
    binding = binding_names(d.policy)
    return {
        "id": ticket.id,
        "queue": ticket.queue,
        "policy": ticket.policy_key,
        "state": ticket.state,
        "state_label": pick(state.label)
        if state
        else (_("merged") if ticket.merged_into else ticket.state),
        "state_kind": ticket.state_kind,
        "account": account.login if account else None,
        "account_status": account.status if account else None,
        "requester": ticket.requester,
        "subject": ticket.subject,
        "lang": ticket.lang,
        "assignee": ticket.assignee,
        "fields": ticket.fields,
        "checklist": ticket.checklist,
        "parent": ticket.parent_id,
        "children": list(session.exec(select(Ticket.id).where(Ticket.parent_id == ticket.id))),
        "opened_at": clock.iso(ticket.opened_at),
        "updated_at": clock.iso(ticket.updated_at),
        "due_at": clock.iso(ticket.due_at),
        "version": ticket.version,
        "deadlines": {dl.name: clock.iso(dl.due_at) for dl in dls},
        "deadline_details": [
            {
                "name": dl.name,
                "at": clock.iso(dl.due_at),
                "status": dl.status,
                "action": dl.action,
                "note": dl.note,
                # binding: a date the provider's text fixes; indicative: the team's own target
                "binding": dl.name in binding,
                "indicative": dl.name in INDICATIVE_DEADLINES,
            }
            for dl in dls
        ],
        "steps": [
            {"key": s.key, "label": pick(s.label), "kind": s.kind, "current": s.key == ticket.state}
            for s in d.states.values()
            if s.key in reachable(d, first.to_state if first else ticket.state)
        ],
        "visited": sorted(visited),
        "actions": [
            a.as_dict(texts=citation_texts) for a in engine.actions(session, ticket, actor, now)
        ],
        "events": [event_view(e) for e in events],
        "events_total": total,
        # The account's sanctions ledger across queues: shown where the decision is taken;
        # it informs, it never unlocks or blocks a step.
        "sanctions": ledger.as_rows(ledger.of_account(session, ticket.account_id), session),
        "timezone": d.policy.timezone,
        "merged_into": ticket.merged_into,
        "merged_from": merged_from,
        "classification": conversation.classification(session, ticket),
        "candidates": conversation.candidates(session, ticket),
        "waiting_on": conversation.waiting_on(session, ticket),
        "messages": messages.of_ticket(session, ticket, limit=history),
        **mails_view(session, ticket),
        "service_actions": [
            {**a, "line": service_actions.describe(a)}
            for a in service_actions.of_ticket(session, ticket.id)
        ],
    }


def mails_view(session: Session, ticket: Ticket) -> dict:
    """The ticket's outgoing mails with what came back about them, and what that leaves a
    person to decide: a mail the receiving side returned never reached its reader, so the
    ticket waits for a volunteer (a new address, another channel), not for that reader.
    No provider's text says more, so the procedure's state is left as it is."""
    from helpdesk.storage.models import Outbox

    mails = []
    attention = []
    for m in session.exec(
        select(Outbox).where(Outbox.ticket_id == ticket.id).order_by(col(Outbox.id))
    ):
        bounce = None
        if m.bounce_kind:
            bounce = {
                "at": clock.iso(m.bounced_at),
                "kind": m.bounce_kind,
                "status": m.bounce_status or None,
                "reason": m.bounce_reason,
            }
        mails.append(
            {
                "id": m.id,
                "to": m.to_addr,
                "subject": m.subject,
                "template": m.template,
                "status": m.status,
                "sent_at": clock.iso(m.sent_at),
                "bounce": bounce,
            }
        )
        if m.status == "bounced":
            attention.append(
                {
                    "reason": "mail-bounced",
                    "outbox": m.id,
                    "to": m.to_addr,
                    "template": m.template,
                    "status": m.bounce_status or None,
                    "text": m.bounce_reason,
                }
            )
    # A returned mail makes the ticket wait for a volunteer; otherwise the conversation
    # says who it waits on (ticket_view's waiting_on stays).
    return {
        "mails": mails,
        "attention": attention,
        **({"waiting_on": "volunteer"} if attention else {}),
    }


def actions_described(actions: list) -> list[str]:
    """The service actions a step queues, one line each, for its preview."""
    lines = []
    for row in actions:
        a = service_actions.view(row)
        prefix = _("would have done") + ": " if a["status"] == "would-have-done" else ""
        lines.append(prefix + service_actions.describe(a))
    return lines


def reachable(d: engine.Definition, start: str) -> set[str]:
    """The states a ticket can pass through from where it started: its procedure."""
    seen, todo = {start}, [start]
    while todo:
        here = todo.pop()
        for t in d.from_state(here):
            nxt = here if t.target == "=" else t.target
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def get_ticket(session: Session, ticket_id: int, actor: Actor | None = None) -> Ticket:
    """A ticket, if ``actor``'s role reaches its provider."""
    ticket = engine.load_ticket(session, ticket_id)
    if actor is not None:
        engine.check_scope(actor, ticket.policy_key)
    return ticket


# --- the outbox, as a role scoped to providers reads it ------------------------------------


def outbox_mails(
    session: Session,
    actor: Actor,
    *,
    status: str | None = None,
    ticket: int | None = None,
    limit: int = 100,
) -> list[Outbox]:
    """Queued mails, oldest first, among those ``actor``'s role reaches: a role scoped to
    providers sees its providers' tickets' mails only (naming a ticket outside them is a
    ``scope`` refusal, as ``ticket show`` is)."""
    q = select(Outbox).order_by(col(Outbox.id))
    if status:
        q = q.where(Outbox.status == status)
    if ticket:
        get_ticket(session, ticket, actor)
        q = q.where(Outbox.ticket_id == ticket)
    if actor.policies:
        q = q.join(Ticket, col(Ticket.id) == Outbox.ticket_id).where(
            col(Ticket.policy_key).in_(actor.policies)
        )
    return list(session.exec(q.limit(limit)))


def outbox_mail(session: Session, actor: Actor, mail_id: int) -> Outbox:
    """One queued mail, if ``actor``'s role reaches its ticket's provider (a mail of no
    ticket: only a role covering every provider)."""
    m = session.get(Outbox, mail_id)
    if m is None:
        raise BadInput(_("no mail #{id} in the outbox").format(id=mail_id))
    if m.ticket_id is None:
        check_unscoped(actor, _("a mail of no ticket"))
    else:
        get_ticket(session, m.ticket_id, actor)
    return m


def policy_view(session: Session, key: str) -> dict:
    p = session.get(Policy, key)
    if p is None:
        raise NotFound(_("unknown policy {key!r}").format(key=key))
    workflows = []
    for wf in session.exec(
        select(Workflow).where(Workflow.policy_key == key).order_by(col(Workflow.id))
    ):
        d = engine.definition(session, wf.id)
        workflows.append(
            {
                "queue": wf.queue,
                "title": pick(wf.title),
                "states": [
                    {"key": s.key, "label": pick(s.label), "kind": s.kind}
                    for s in d.states.values()
                ],
                "actions": [
                    {
                        "key": t.key,
                        "label": pick(t.label),
                        "from": t.sources,
                        "to": t.target,
                        "role": t.role,
                        "auto": t.auto,
                        "citation": engine.citation(p, t.cite)[0],
                        "guards": [g["name"] for g in t.guards],
                    }
                    for t in d.transitions
                ],
            }
        )
    return {
        "key": p.key,
        "name": p.name,
        "timezone": p.timezone,
        "lang": p.lang,
        "source": p.source,
        "params": p.params,
        "settings": provider_settings.view(session, p),
        "citations": p.citations,
        "workflows": workflows,
    }


def search_accounts(session: Session, text: str, limit: int = 20) -> list[Account]:
    like = f"%{text}%"
    return list(
        session.exec(
            select(Account)
            .where(or_(col(Account.login).like(like), col(Account.email).like(like)))
            .limit(limit)
        )
    )


def state_label(session: Session, ticket: Ticket) -> str:
    s = session.exec(
        select(State).where(State.workflow_id == ticket.workflow_id, State.key == ticket.state)
    ).first()
    return listing.state_label(ticket, s is not None, s.label if s else None)


def list_tickets(session: Session, **filters: Any) -> list[Ticket]:
    """``listing.list_tickets`` (the same filters, checks and order), as models."""
    rows = listing.list_tickets(session, **filters)
    got = {
        t.id: t
        for t in session.exec(select(Ticket).where(col(Ticket.id).in_([r.id for r in rows])))
    }
    return [got[r.id] for r in rows]


# --- soft claims and assignment (added for the TUI) -----------------------------------------
# A claim says "this volunteer has the ticket open now"; it expires by itself, changes no
# state, records no event and does not bump the ticket's version (the version guards
# actions, and merely looking at a ticket must not make someone else's action conflict).

CLAIM_MINUTES = 10


def claim(
    session: Session,
    ticket_id: int,
    actor: Actor,
    *,
    minutes: int = CLAIM_MINUTES,
    now: datetime | None = None,
) -> tuple[str | None, datetime | None]:
    """Mark ``actor`` as having the ticket open until ``now + minutes``.

    Returns ``(holder, expires)``: ``holder`` is someone else who holds an unexpired claim
    (then nothing is changed), or None when the claim is the actor's.
    """
    from dateutil.relativedelta import relativedelta

    now = now or clock.now()
    ticket = engine.load_ticket(session, ticket_id)
    if (
        ticket.claimed_by
        and ticket.claimed_by != actor.login
        and ticket.claim_expires
        and ticket.claim_expires > now
    ):
        return ticket.claimed_by, ticket.claim_expires
    ticket.claimed_by = actor.login
    ticket.claim_expires = now + relativedelta(minutes=minutes)
    session.add(ticket)
    return None, ticket.claim_expires


def release(session: Session, ticket_id: int, actor: Actor) -> bool:
    """Drop the actor's claim on a ticket (a claim by someone else is left alone)."""
    ticket = session.get(Ticket, ticket_id)
    if ticket is None or ticket.claimed_by != actor.login:
        return False
    ticket.claimed_by = None
    ticket.claim_expires = None
    session.add(ticket)
    return True


def assign(
    session: Session,
    ticket_id: int,
    actor: Actor,
    login: str | None,
    *,
    expected_version: int | None = None,
) -> Ticket:
    """Give a ticket to a volunteer (``None``: to nobody). Recorded as an event."""
    if login is not None:
        v = session.get(Volunteer, login)
        if v is None or not v.active:
            raise BadInput(
                _("unknown volunteer {login!r} (helpdesk volunteer add)").format(login=login)
            )
    return _set_ticket(session, ticket_id, actor, "assignee", login, "assign", expected_version)


LANGS = ("fr", "en")


def set_lang(
    session: Session,
    ticket_id: int,
    actor: Actor,
    lang: str,
    *,
    expected_version: int | None = None,
) -> Ticket:
    """Choose the language of the mails a ticket sends (its requester's). Recorded as an event."""
    if lang not in LANGS:
        raise BadInput(_("unknown language {lang!r} (fr or en)").format(lang=lang))
    return _set_ticket(session, ticket_id, actor, "lang", lang, "set-lang", expected_version)


def _set_ticket(
    session: Session,
    ticket_id: int,
    actor: Actor,
    name: str,
    value,
    action: str,
    expected_version: int | None,
) -> Ticket:
    """Change one attribute of a ticket outside its procedure: a writer, no lost update
    (the version moves), and an event with the value before and after."""
    ticket = engine.load_ticket(session, ticket_id, for_update=True)
    engine.check_writer(session, actor)
    engine.check_version(session, ticket, expected_version)
    before = getattr(ticket, name)
    if before == value:
        return ticket
    setattr(ticket, name, value)
    ticket.version = (ticket.version or 0) + 1
    ticket.updated_at = clock.now()
    session.add(ticket)
    audit.record(
        session,
        actor=actor.login,
        action=action,
        ticket_id=ticket.id,
        account_id=ticket.account_id,
        data={name: [before, value]},
    )
    return ticket
