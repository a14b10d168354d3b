"""The small API that the CLI and the TUI share. Every function takes the session from the
caller (one session per user action) and returns plain data or model rows."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, or_
from sqlmodel import Session, select

from helpdesk.storage import audit
from helpdesk.base import clock, networks
from helpdesk.workflow import engine
from helpdesk.rules import ledger
from helpdesk.policy import provider_settings
from helpdesk.rules.context import SYSTEM_ACTOR, Actor
from helpdesk.base.errors import BadInput, NotFound, Refused
from helpdesk.base.fields import EMAIL
from helpdesk.base.i18n import _, pick
from helpdesk.storage.models import Account, Deadline, Event, Policy, State, Ticket, Volunteer, Workflow
from helpdesk.base.roles import ROLES
from helpdesk.base.untrusted import clean

ACCOUNT_KINDS = ("user", "admin", "employee", "member", "end-user")
ACCOUNT_STATUSES = ("active", "restricted", "send-suspended", "suspended", "deactivated", "erased")


# --- people ------------------------------------------------------------------------------


def actor_for(session: Session, login: str | None, *, required: bool = True) -> Actor:
    if not login:
        if required:
            raise BadInput(_("who is acting? give --as LOGIN or set HELPDESK_USER"))
        return Actor("-", "volunteer")
    if login == "system":
        return SYSTEM_ACTOR
    v = session.get(Volunteer, login)
    if v is None or not v.active:
        raise BadInput(_("unknown volunteer {login!r} (helpdesk volunteer add)").format(login=login))
    return Actor(v.login, v.role)


def add_volunteer(session: Session, login: str, role: str, *, name: str = "", ssh_key: str | None = None) -> Volunteer:
    if role not in ROLES:
        raise BadInput(_("unknown role {role!r} (roles: {roles})").format(role=role, roles=", ".join(ROLES)))
    login = login.strip()
    if not login or not login.replace("-", "").replace("_", "").replace(".", "").isalnum():
        raise BadInput(_("a login is letters, digits, '-', '_' or '.': {login!r}").format(login=login))
    v = session.get(Volunteer, login) or Volunteer(login=login, created_at=clock.now())
    v.role = role
    v.name = clean(name) or v.name
    v.active = True
    if ssh_key:
        from helpdesk.service import sshkeys

        key = sshkeys.normalise(ssh_key)
        for other in session.exec(select(Volunteer).where(Volunteer.login != login)):
            if key in (other.ssh_keys or []):
                raise BadInput(_("this key already identifies {login}: one key, one person").format(login=other.login))
        v.ssh_keys = sorted(set(v.ssh_keys or []) | {key})
    session.add(v)
    audit.record(session, actor="system", action="volunteer-add", data={"login": login, "role": role})
    return v


def withdraw(session: Session, login: str, *, key: str | None = None) -> Volunteer:
    """Remove one key of a volunteer, or (no key) withdraw the volunteer altogether."""
    from helpdesk.service import sshkeys

    v = session.get(Volunteer, login)
    if v is None:
        raise NotFound(_("unknown volunteer {login!r} (helpdesk volunteer add)").format(login=login))
    if key is None:
        v.active = False
    else:
        wanted = sshkeys.normalise(key)
        if wanted not in (v.ssh_keys or []):
            raise BadInput(_("{login} has no such key").format(login=login))
        v.ssh_keys = [k for k in v.ssh_keys if k != wanted]
    session.add(v)
    audit.record(session, actor="system", action="volunteer-withdraw", data={"login": login, "key": bool(key)})
    return v


# --- accounts ----------------------------------------------------------------------------


def find_account(session: Session, login: str, policy: str | None = None) -> Account:
    q = select(Account).where(Account.login == login)
    if policy:
        q = q.where(Account.policy_key == policy)
    rows = list(session.exec(q))
    if not rows:
        raise NotFound(_("no account {login!r}{where}").format(login=login, where=f" ({policy})" if policy else ""))
    if len(rows) > 1:
        raise BadInput(_("{login!r} exists under several policies: give --policy").format(login=login))
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
    status: str = "active",
) -> Account:
    if session.get(Policy, policy) is None:
        raise BadInput(_("unknown policy {key!r}").format(key=policy))
    if kind not in ACCOUNT_KINDS:
        raise BadInput(_("unknown account kind {kind!r} ({kinds})").format(kind=kind, kinds=", ".join(ACCOUNT_KINDS)))
    if status not in ACCOUNT_STATUSES:
        raise BadInput(_("unknown account status {status!r}").format(status=status))
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
                raise BadInput(_("field {name}: a date YYYY-MM-DD expected, not {value!r}").format(name=key, value=value)) from None
        if key == "ips":
            value = networks.normalise(value)
        checked[key] = clean(str(value))
    now = clock.now()
    acc = session.exec(select(Account).where(Account.policy_key == policy, Account.login == login)).first()
    before = None
    if acc is not None:
        _check_immutable(session, acc, checked)
        before = (list(acc.contacts or []), dict(acc.fields or {}))
    if acc is None:
        acc = Account(policy_key=policy, login=clean(login).strip(), created_at=now, updated_at=now)
    acc.email = email
    acc.kind = kind
    acc.org = clean(org)
    if contacts is not None:  # None: the contacts stay as they are
        acc.contacts = [c.strip().lower() for c in contacts]
    acc.lang = lang
    acc.status = status
    if last_login:
        try:
            acc.last_login = clock.parse_datetime(last_login)
        except clock.BadDate as exc:
            raise BadInput(str(exc)) from None
    acc.fields = {**(acc.fields or {}), **checked}
    if before is not None:
        _check_contacts(session, acc, *before)
    acc.updated_at = now
    session.add(acc)
    session.flush()
    return acc


def change_contacts(session: Session, acc: Account, *, add: list[str] = (), remove: list[str] = ()) -> Account:
    """Add and remove an account's contact addresses (``_check_contacts`` may refuse)."""
    add = [a.strip().lower() for a in add]
    remove = {r.strip().lower() for r in remove}
    for address in add:
        if not EMAIL.match(address):
            raise BadInput(_("not an e-mail address: {address!r}").format(address=address))
    old = list(acc.contacts or [])
    unknown = sorted(remove - set(old))
    if unknown:
        raise BadInput(_("{address} is not a contact of {login}").format(address=", ".join(unknown), login=acc.login))
    kept = [c for c in old if c not in remove]
    acc.contacts = kept + [a for a in dict.fromkeys(add) if a not in kept]
    _check_contacts(session, acc, old, dict(acc.fields or {}))
    acc.updated_at = clock.now()
    session.add(acc)
    session.flush()
    return acc


def _check_contacts(session: Session, acc: Account, old_contacts: list[str], old_fields: dict) -> None:
    """Le PIC: a member keeps its technical and administrative contacts; removing one needs
    a replacement while the membership lasts (policy param ``contact_replacement`` names the
    citation). ``acc`` holds the new values, ``old_*`` the ones before the change."""
    policy = session.get(Policy, acc.policy_key)
    cite = (policy.params or {}).get("contact_replacement")
    if not cite or acc.kind != "member" or acc.status in CLOSED_STATUSES:
        return
    end = (acc.fields or {}).get("membership-end")
    if end and clock.parse_day(end) < clock.local_day(clock.now(), policy.timezone):
        return  # the membership is over
    new = acc.contacts or []
    removed = [c for c in old_contacts if c not in new]
    added = [c for c in new if c not in old_contacts]
    blanked = [k for k, v in old_fields.items() if k.startswith("contact-") and v and not (acc.fields or {}).get(k)]
    if len(removed) > len(added) or blanked:
        ref, _text = engine.citation(policy, cite)
        raise Refused(
            "contact-replacement",
            _("{login} is a member: removing {removed} needs a replacement contact while the membership lasts").format(
                login=acc.login, removed=", ".join(removed + blanked)
            ),
            ref,
        )


def _check_immutable(session: Session, acc: Account, fields: dict) -> None:
    """Facts a provider's text says can never change once set (Weentime art. 2: the country)."""
    policy = session.get(Policy, acc.policy_key)
    for name, cite in ((policy.params or {}).get("immutable_fields") or {}).items():
        old, new = (acc.fields or {}).get(name), fields.get(name)
        if old and new is not None and new != old:
            ref, _text = engine.citation(policy, cite)
            raise Refused(
                "immutable-field",
                _("{field} of {login} is {old} and can never be changed").format(field=name, login=acc.login, old=old),
                ref,
            )


# --- reading sensitive data -------------------------------------------------------------

# What may be read by whom: log material (log lines, ARF and DMARC evidence) by techadmin;
# the personal data of a closed account by anyone identified. Every read is an audited event.
#: What reading is recorded, and the role it needs (None: any volunteer, recorded).
SENSITIVE = {"logs": "techadmin", "personal-data": None, "quarantine": None}
CLOSED_STATUSES = ("deactivated", "erased")


def is_closed(acc: Account | None) -> bool:
    return acc is not None and acc.status in CLOSED_STATUSES


def read_sensitive(
    session: Session,
    actor: Actor,
    what: str,
    *,
    reason: str = "",
    ticket_id: int | None = None,
    account: Account | None = None,
    data: dict | None = None,
    record: bool = True,
) -> Event | None:
    """The one gate for reading log material or a closed account's personal data, from the
    CLI, the TUI or a step: refuses a role below the one ``SENSITIVE`` names
    (and a trainer outside a training database), requires a reason for material, and records
    the read as a ``read-<what>`` event with the reason as its note. ``record=False`` when the
    caller's own event is the record (the ``read-logs`` step records itself)."""
    role = SENSITIVE[what]
    if role:
        engine.require_role(session, actor, role)
        if not clean(reason).strip():
            raise BadInput(_("say why you read this: a reason is recorded with the reading"))
    elif actor.role == "trainer" and not engine.is_training(session):
        raise Refused("training-only", _("the trainer role works only on training databases"))
    if not record:
        return None
    payload = {"what": what, **(data or {})}
    if account is not None:
        payload["status"] = account.status
    return audit.record(
        session, actor=actor.login, action=f"read-{what}", note=clean(reason).strip(), ticket_id=ticket_id,
        account_id=account.id if account is not None else None, data=payload,
    )


def account_view(session: Session, acc: Account) -> dict:
    sanctions = list(
        session.exec(select(Event).where(Event.account_id == acc.id, Event.sanction.is_not(None)).order_by(Event.id))
    )
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
        "sanctions": ledger.as_rows(sanctions),
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
            select(Deadline).where(Deadline.ticket_id == ticket.id, Deadline.status != "cancelled").order_by(Deadline.due_at)
        )
    )


def ticket_view(
    session: Session, ticket: Ticket, actor: Actor, *, now: datetime | None = None, history: int | None = None,
    citation_texts: bool = False,
) -> dict:
    """Everything about a ticket that a screen or ``ticket show`` prints. ``history``: only
    the latest events (``events_total`` says how many there are), so a ticket with a long
    history costs what a screenful costs."""
    d = engine.definition(session, ticket.workflow_id)
    account = session.get(Account, ticket.account_id) if ticket.account_id else None
    state = d.states.get(ticket.state)
    of_ticket = select(Event).where(Event.ticket_id == ticket.id)
    if history is None:
        events = list(session.exec(of_ticket.order_by(Event.id)))
        total = len(events)
        first = events[0] if events else None
    else:
        events = list(session.exec(of_ticket.order_by(Event.id.desc()).limit(history)))[::-1]
        total = session.exec(select(func.count()).select_from(Event).where(Event.ticket_id == ticket.id)).one()
        first = events[0] if total == len(events) else session.exec(of_ticket.order_by(Event.id).limit(1)).first()
    visited = {
        key
        for pair in session.exec(select(Event.from_state, Event.to_state).where(Event.ticket_id == ticket.id).distinct())
        for key in pair
        if key
    }
    dls = deadlines(session, ticket)
    return {
        "id": ticket.id,
        "queue": ticket.queue,
        "policy": ticket.policy_key,
        "state": ticket.state,
        "state_label": pick(state.label) if state else ticket.state,
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
            {"name": dl.name, "at": clock.iso(dl.due_at), "status": dl.status, "action": dl.action, "note": dl.note}
            for dl in dls
        ],
        "steps": [
            {"key": s.key, "label": pick(s.label), "kind": s.kind, "current": s.key == ticket.state}
            for s in d.states.values()
            if s.key in reachable(d, first.to_state if first else ticket.state)
        ],
        "visited": sorted(visited),
        "actions": [a.as_dict(texts=citation_texts) for a in engine.actions(session, ticket, actor, now)],
        "events": [event_view(e) for e in events],
        "events_total": total,
    }


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


def get_ticket(session: Session, ticket_id: int) -> Ticket:
    return engine.load_ticket(session, ticket_id)


def list_tickets(
    session: Session,
    *,
    queue: str | None = None,
    state: str | None = None,
    policy: str | None = None,
    account: str | None = None,
    assignee: str | None = None,
    include_done: bool = False,
    overdue_at: datetime | None = None,
    order: str = "due",
    limit: int = 100,
    offset: int = 0,
) -> list[Ticket]:
    q = select(Ticket)
    if queue:
        q = q.where(Ticket.queue == queue)
    if state:
        q = q.where(Ticket.state == state)
    elif not include_done:
        q = q.where(Ticket.state_kind != "done")
    if policy:
        q = q.where(Ticket.policy_key == policy)
    if account:
        q = q.join(Account, Account.id == Ticket.account_id).where(Account.login == account)
    if assignee:
        q = q.where(Ticket.assignee == assignee)
    if overdue_at is not None:
        q = q.where(Ticket.due_at.is_not(None), Ticket.due_at <= overdue_at)
    if order == "due":
        # Overdue and soonest first; tickets with no date after, oldest first.
        q = q.order_by(Ticket.due_at.is_(None), Ticket.due_at, Ticket.id)
    elif order == "age":
        q = q.order_by(Ticket.opened_at, Ticket.id)
    elif order == "state":
        q = q.order_by(Ticket.state, Ticket.id)
    else:
        q = q.order_by(Ticket.id.desc())
    return list(session.exec(q.offset(offset).limit(limit)))


def ticket_row(session: Session, t: Ticket, accounts: dict[int, str] | None = None) -> dict:
    login = None
    if t.account_id:
        login = accounts.get(t.account_id) if accounts is not None else None
        if login is None:
            acc = session.get(Account, t.account_id)
            login = acc.login if acc else None
    return {
        "id": t.id,
        "queue": t.queue,
        "policy": t.policy_key,
        "state": t.state,
        "state_kind": t.state_kind,
        "account": login,
        "requester": t.requester,
        "subject": t.subject,
        "due_at": clock.iso(t.due_at),
        "opened_at": clock.iso(t.opened_at),
        "assignee": t.assignee,
    }


def queue_counts(session: Session, now: datetime | None = None) -> dict[str, dict[str, int]]:
    """Open, waiting and overdue counts per queue, for the dashboard."""
    now = now or clock.now()
    out: dict[str, dict[str, int]] = {}
    rows = session.exec(
        select(Ticket.queue, Ticket.state_kind, func.count())
        .where(Ticket.state_kind.in_(("open", "waiting")))  # IN uses the queue/state index; != scans
        .group_by(Ticket.queue, Ticket.state_kind)
    )
    for queue, kind, n in rows:
        out.setdefault(queue, {"open": 0, "waiting": 0, "overdue": 0})[kind] = n
    for queue, n in session.exec(
        select(Ticket.queue, func.count())
        .where(Ticket.state_kind.in_(("open", "waiting")), Ticket.due_at.is_not(None), Ticket.due_at <= now)
        .group_by(Ticket.queue)
    ):
        out.setdefault(queue, {"open": 0, "waiting": 0, "overdue": 0})["overdue"] = n
    return out


def policy_view(session: Session, key: str) -> dict:
    p = session.get(Policy, key)
    if p is None:
        raise NotFound(_("unknown policy {key!r}").format(key=key))
    workflows = []
    for wf in session.exec(select(Workflow).where(Workflow.policy_key == key).order_by(Workflow.id)):
        d = engine.definition(session, wf.id)
        workflows.append(
            {
                "queue": wf.queue,
                "title": pick(wf.title),
                "states": [{"key": s.key, "label": pick(s.label), "kind": s.kind} for s in d.states.values()],
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
    return list(session.exec(select(Account).where(or_(Account.login.like(like), Account.email.like(like))).limit(limit)))


def state_label(session: Session, ticket: Ticket) -> str:
    s = session.exec(select(State).where(State.workflow_id == ticket.workflow_id, State.key == ticket.state)).first()
    return pick(s.label) if s else ticket.state


# --- soft claims and assignment (added for the TUI) -----------------------------------------
# A claim says "this volunteer has the ticket open now"; it expires by itself, changes no
# state, records no event and does not bump the ticket's version (the version guards
# actions, and merely looking at a ticket must not make someone else's action conflict).

CLAIM_MINUTES = 10


def claim(session: Session, ticket_id: int, actor: Actor, *, minutes: int = CLAIM_MINUTES, now: datetime | None = None) -> tuple[str | None, datetime | None]:
    """Mark ``actor`` as having the ticket open until ``now + minutes``.

    Returns ``(holder, expires)``: ``holder`` is someone else who holds an unexpired claim
    (then nothing is changed), or None when the claim is the actor's.
    """
    from dateutil.relativedelta import relativedelta

    now = now or clock.now()
    ticket = engine.load_ticket(session, ticket_id)
    if ticket.claimed_by and ticket.claimed_by != actor.login and ticket.claim_expires and ticket.claim_expires > now:
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


def assign(session: Session, ticket_id: int, actor: Actor, login: str | None, *, expected_version: int | None = None) -> Ticket:
    """Give a ticket to a volunteer (``None``: to nobody). Recorded as an event."""
    if login is not None:
        v = session.get(Volunteer, login)
        if v is None or not v.active:
            raise BadInput(_("unknown volunteer {login!r} (helpdesk volunteer add)").format(login=login))
    return _set_ticket(session, ticket_id, actor, "assignee", login, "assign", expected_version)


LANGS = ("fr", "en")


def set_lang(session: Session, ticket_id: int, actor: Actor, lang: str, *, expected_version: int | None = None) -> Ticket:
    """Choose the language of the mails a ticket sends (its requester's). Recorded as an event."""
    if lang not in LANGS:
        raise BadInput(_("unknown language {lang!r} (fr or en)").format(lang=lang))
    return _set_ticket(session, ticket_id, actor, "lang", lang, "set-lang", expected_version)


def _set_ticket(session: Session, ticket_id: int, actor: Actor, name: str, value, action: str, expected_version: int | None) -> Ticket:
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
    audit.record(session, actor=actor.login, action=action, ticket_id=ticket.id, account_id=ticket.account_id, data={name: [before, value]})
    return ticket
    ticket.lang = lang
    ticket.version = (ticket.version or 0) + 1
    ticket.updated_at = clock.now()
    session.add(ticket)
    audit.record(session, actor=actor.login, action="set-lang", ticket_id=ticket.id, account_id=ticket.account_id, data={"lang": [before, lang]})
    return ticket
