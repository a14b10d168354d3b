"""What reading the ticket list needs, and no more: who is acting, the filters, the rows.

``helpdesk ticket list`` imports this module alone of the service (not the engine, the
conversation or the service actions), so that a read starts fast; ``helpdesk.service.api``
offers the same names. It reads with SQLAlchemy Core on the columns of
``helpdesk.storage.tables``: no SQLModel, pydantic, ORM or models (``tests/test_tables.py``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import Row, or_, select

from helpdesk.base import clock
from helpdesk.base.bounds import MAX_INT
from helpdesk.base.errors import BadInput, Refused
from helpdesk.base.i18n import _, pick
from helpdesk.base.roles import Actor, login_problem
from helpdesk.base.untrusted import clean_line
from helpdesk.rules.access import check_scope
from helpdesk.storage import db, tables

#: What these functions read from (``ticket list``: a Core connection, no ORM loaded; the
#: service API: an ORM session).
Reader = db.Reader

#: The columns of a listed ticket (``list_tickets``): what ``ticket_row`` and the table read.
TICKET_COLUMNS = (
    tables.ticket.c.id,
    tables.ticket.c.queue,
    tables.ticket.c.policy_key,
    tables.ticket.c.workflow_id,
    tables.ticket.c.state,
    tables.ticket.c.state_kind,
    tables.ticket.c.account_id,
    tables.ticket.c.requester,
    tables.ticket.c.subject,
    tables.ticket.c.due_at,
    tables.ticket.c.opened_at,
    tables.ticket.c.assignee,
    tables.ticket.c.merged_into,
)

ACCOUNT_STATUSES = ("active", "restricted", "send-suspended", "suspended", "deactivated", "erased")


def check_login(login) -> str:
    """A login given to ``--as``, ``HELPDESK_USER`` or ``volunteer add``: the pattern of
    ``roles.LOGIN``, and none of the names the core uses for its own steps."""
    problem = login_problem(login)
    if problem == "reserved":
        raise Refused(
            "reserved-login",
            _(
                "{login!r} is a name the helpdesk uses for its own steps: no volunteer may use it"
            ).format(login=login),
        )
    if problem:
        raise BadInput(
            _(
                "a login is a letter or digit, then letters, digits, '-', '_' or '.', at most 64: {login!r}"
            ).format(login=login)
        )
    return login


def actor_for(session: Reader, login: str | None, *, required: bool = True) -> Actor:
    if not login:
        if required:
            raise BadInput(_("who is acting? give --as LOGIN or set HELPDESK_USER"))
        return Actor("-", "volunteer")
    check_login(login)
    v = session.execute(
        select(
            tables.volunteer.c.login,
            tables.volunteer.c.role,
            tables.volunteer.c.policies,
            tables.volunteer.c.active,
        ).where(tables.volunteer.c.login == login)
    ).first()
    if v is None:
        raise BadInput(
            _("unknown volunteer {login!r} (helpdesk volunteer add)").format(login=login)
        )
    if not v.active:
        raise Refused(
            "withdrawn", _("{login} was withdrawn: their access is closed").format(login=login)
        )
    return Actor(v.login, v.role, tuple(v.policies or ()))


def binding_names(policy: Any) -> set[str]:
    """The deadlines a provider's text makes binding (pack param ``binding_deadlines``: Le PIC
    removes a non-renewing member's data "au plus tard après une année", a CommunesPlone
    convention ends at 48 months). ``sweep`` takes their step on the day if no one has.
    ``policy``: anything with the ``params`` of a ``Policy`` (a model row or a Core row)."""
    return set(((policy.params or {}) if policy else {}).get("binding_deadlines") or [])


def binding_dates(session: Reader, tickets: Sequence[Any]) -> dict[int, Any]:
    """For each ticket, its soonest binding date still ahead of the procedure (pending, or
    shown and not yet turned into a timer): a row with the deadline's ``name`` and
    ``due_at``. ``tickets``: rows or models with ``id``, ``policy_key`` and ``state_kind``."""
    if not tickets:
        return {}
    keys = sorted({t.policy_key for t in tickets})
    by_policy = {
        p.key: binding_names(p)
        for p in session.execute(
            select(tables.policy.c.key, tables.policy.c.params).where(tables.policy.c.key.in_(keys))
        )
    }
    names: set[str] = set().union(*by_policy.values()) if by_policy else set()
    if not names:
        return {}
    out: dict[int, Any] = {}
    by_id = {t.id: t for t in tickets}
    rows = session.execute(
        select(tables.deadline.c.ticket_id, tables.deadline.c.name, tables.deadline.c.due_at)
        .where(
            tables.deadline.c.ticket_id.in_(list(by_id)),
            tables.deadline.c.name.in_(sorted(names)),
            tables.deadline.c.status.in_(("pending", "info")),
        )
        .order_by(tables.deadline.c.due_at)
    )
    for dl in rows:
        t = by_id[dl.ticket_id]
        if (
            t.state_kind != "done"
            and dl.ticket_id not in out
            and dl.name in by_policy.get(t.policy_key, set())
        ):
            out[dl.ticket_id] = dl
    return out


def bounced_ticket_ids():
    """The tickets with a mail that came back (``bounced``) and nobody decided on yet: a
    subquery."""
    return select(tables.outbox.c.ticket_id).where(
        tables.outbox.c.status == "bounced", tables.outbox.c.ticket_id.is_not(None)
    )


def bounced_on_done(session: Reader, policies=(), limit: int = 8) -> list[dict]:
    """Mails that came back on tickets already done (only the providers in ``policies``
    when given: a role's scope). No queue lists a done ticket, so the dashboard shows them
    beside the service actions that wait for a person (and ``ticket list`` lists their
    tickets): each with the line a person reads."""
    o, t = tables.outbox, tables.ticket
    q = (
        select(o.c.id, o.c.to_addr, t.c.id)
        .select_from(o.join(t, t.c.id == o.c.ticket_id))
        .where(o.c.status == "bounced", t.c.state_kind == "done")
    )
    if policies:
        q = q.where(t.c.policy_key.in_(policies))
    return [
        {
            "id": mail_id,
            "ticket": ticket_id,
            "key": f"t{ticket_id}-m{mail_id}",
            "line": _(
                "mail #{id} to {to} came back, on finished ticket #{ticket}: decide (outbox retry or mark-sent)"
            ).format(id=mail_id, to=clean_line(to_addr)[:200], ticket=ticket_id),
        }
        for mail_id, to_addr, ticket_id in session.execute(q.order_by(o.c.id).limit(limit))
    ]


def list_tickets(
    session: Reader,
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
    actor: Actor | None = None,
) -> list[Row]:
    """Tickets matching the filters, among those ``actor``'s role reaches: rows of
    ``TICKET_COLUMNS`` (``helpdesk.service.api.list_tickets`` gives the models). A filter
    naming no known provider or volunteer is bad input, not an empty list."""
    check_filters(session, policy=policy, assignee=assignee, limit=limit, offset=offset)
    if actor is not None:
        check_scope(actor, policy)
    q = select(*TICKET_COLUMNS)
    if actor is not None and actor.policies:
        q = q.where(tables.ticket.c.policy_key.in_(actor.policies))
    if queue:
        q = q.where(tables.ticket.c.queue == queue)
    if state:
        q = q.where(tables.ticket.c.state == state)
    elif not include_done:
        # A finished ticket whose mail came back still waits for a person: listed too.
        q = q.where(
            or_(tables.ticket.c.state_kind != "done", tables.ticket.c.id.in_(bounced_ticket_ids()))
        )
    if policy:
        q = q.where(tables.ticket.c.policy_key == policy)
    if account:
        q = q.select_from(
            tables.ticket.join(tables.account, tables.account.c.id == tables.ticket.c.account_id)
        ).where(tables.account.c.login == account)
    if assignee:
        q = q.where(tables.ticket.c.assignee == assignee)
    if overdue_at is not None:
        q = q.where(tables.ticket.c.due_at.is_not(None), tables.ticket.c.due_at <= overdue_at)
    if order == "due":
        # Overdue and soonest first; tickets with no date after, oldest first.
        q = q.order_by(tables.ticket.c.due_at.is_(None), tables.ticket.c.due_at, tables.ticket.c.id)
    elif order == "age":
        q = q.order_by(tables.ticket.c.opened_at, tables.ticket.c.id)
    elif order == "state":
        q = q.order_by(tables.ticket.c.state, tables.ticket.c.id)
    else:
        q = q.order_by(tables.ticket.c.id.desc())
    return list(session.execute(q.offset(offset).limit(limit)))


def check_filters(
    session: Reader,
    *,
    policy: str | None = None,
    assignee: str | None = None,
    status: str | None = None,
    limit: int | None = None,
    offset: int | None = None,
) -> None:
    if policy and not _exists(
        session, select(tables.policy.c.key).where(tables.policy.c.key == policy)
    ):
        raise BadInput(_("unknown policy {key!r}").format(key=policy))
    if assignee and not _exists(
        session, select(tables.volunteer.c.login).where(tables.volunteer.c.login == assignee)
    ):
        raise BadInput(
            _("unknown volunteer {login!r} (helpdesk volunteer add)").format(login=assignee)
        )
    if status and status not in ACCOUNT_STATUSES:
        raise BadInput(
            _("unknown account status {status!r} ({statuses})").format(
                status=status, statuses=", ".join(ACCOUNT_STATUSES)
            )
        )
    if limit is not None and not 1 <= limit <= MAX_INT:
        raise BadInput(_("--limit is a number from 1 to {max}").format(max=MAX_INT))
    if offset is not None and not 0 <= offset <= MAX_INT:
        raise BadInput(_("--offset is a number from 0 to {max}").format(max=MAX_INT))


def _exists(session: Reader, query) -> bool:
    return session.execute(query.limit(1)).first() is not None


def account_logins(session: Reader, ids: Iterable[int | None]) -> dict[int, str]:
    """The logins of the accounts ``ids`` (None and unknown ids left out)."""
    wanted = sorted({i for i in ids if i is not None})
    if not wanted:
        return {}
    rows = session.execute(
        select(tables.account.c.id, tables.account.c.login).where(tables.account.c.id.in_(wanted))
    )
    return {r.id: r.login for r in rows}


def ticket_row(
    session: Reader,
    t: Any,
    accounts: dict[int, str] | None = None,
    binding: dict[int, Any] | None = None,
) -> dict:
    """A listed ticket as its JSON gives it. ``t``: a row of ``list_tickets`` or a model."""
    login = None
    if t.account_id:
        login = accounts.get(t.account_id) if accounts is not None else None
        if login is None:
            login = account_logins(session, [t.account_id]).get(t.account_id)
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
        "binding_at": clock.iso(b.due_at)
        if (b := (binding if binding is not None else binding_dates(session, [t])).get(t.id))
        else None,
        "binding": b.name if b else None,
        "opened_at": clock.iso(t.opened_at),
        "assignee": t.assignee,
    }


def ticket_rows(session: Reader, tickets: Sequence[Any]) -> list[dict]:
    """``ticket_row`` of each ticket, with three queries in all (not three a ticket)."""
    binding = binding_dates(session, tickets)
    accounts = account_logins(session, (t.account_id for t in tickets))
    return [ticket_row(session, t, accounts, binding) for t in tickets]


def tickets_by_id(session: Reader, ids: Iterable[int]) -> list[Row]:
    """The tickets ``ids`` that exist, as rows of ``TICKET_COLUMNS``, in the order given."""
    wanted = list(ids)
    if not wanted:
        return []
    got = {
        r.id: r
        for r in session.execute(
            select(*TICKET_COLUMNS).where(tables.ticket.c.id.in_(sorted(set(wanted))))
        )
    }
    return [got[i] for i in wanted if i in got]


class Provider(NamedTuple):
    """A provider as a list names it (``policy_names``)."""

    key: str
    name: str
    timezone: str
    short_name: str  # where room is short: the pack's short name, else its name


def policy_names(session: Reader) -> dict[str, Provider]:
    """Every provider, by key: its name, short name and time zone."""
    p = tables.policy
    rows = session.execute(select(p.c.key, p.c.name, p.c.timezone, p.c.params))
    return {
        r.key: Provider(r.key, r.name, r.timezone, tables.short_name(r.params, r.name))
        for r in rows
    }


def state_labels(session: Reader, tickets: Sequence[Any]) -> dict[int, str]:
    """Each ticket's state as a person reads it (its label in the interface language);
    a merged ticket whose state is no longer in its workflow reads "merged"."""
    pairs = {(t.workflow_id, t.state) for t in tickets}
    labels: dict[tuple[int, str], Any] = {}  # found states: their label
    for wid in sorted({w for w, _k in pairs}):
        keys = sorted({k for w, k in pairs if w == wid})
        for r in session.execute(
            select(tables.state.c.key, tables.state.c.label).where(
                tables.state.c.workflow_id == wid, tables.state.c.key.in_(keys)
            )
        ):
            labels.setdefault((wid, r.key), r.label)
    return {
        t.id: state_label(
            t, (t.workflow_id, t.state) in labels, labels.get((t.workflow_id, t.state))
        )
        for t in tickets
    }


def state_label(t: Any, found: bool, label: Any) -> str:
    """A ticket's state for a person: its state's ``label`` if the state was ``found`` in
    its workflow; else "merged" for a merged ticket, its state's key for any other."""
    if not found and t.merged_into is not None:
        return _("merged")
    return pick(label) if found else t.state
