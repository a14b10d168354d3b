"""What reading the ticket list needs, and no more: who is acting, the filters, the rows.

``helpdesk ticket list`` imports this module alone of the service (not the engine, the
conversation or the service actions), so that a read starts fast; ``helpdesk.service.api``
offers the same names.
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, col, or_, select

from helpdesk.base import clock
from helpdesk.base.bounds import MAX_INT
from helpdesk.base.errors import BadInput, Refused
from helpdesk.base.i18n import _
from helpdesk.base.roles import login_problem
from helpdesk.rules.access import check_scope
from helpdesk.rules.context import Actor
from helpdesk.storage.models import Account, Deadline, Policy, Ticket, Volunteer

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


def actor_for(session: Session, login: str | None, *, required: bool = True) -> Actor:
    if not login:
        if required:
            raise BadInput(_("who is acting? give --as LOGIN or set HELPDESK_USER"))
        return Actor("-", "volunteer")
    check_login(login)
    v = session.get(Volunteer, login)
    if v is None:
        raise BadInput(
            _("unknown volunteer {login!r} (helpdesk volunteer add)").format(login=login)
        )
    if not v.active:
        raise Refused(
            "withdrawn", _("{login} was withdrawn: their access is closed").format(login=login)
        )
    return Actor(v.login, v.role, tuple(v.policies or ()))


def binding_names(policy: Policy | None) -> set[str]:
    """The deadlines a provider's text makes binding (pack param ``binding_deadlines``: Le PIC
    removes a non-renewing member's data "au plus tard après une année", a CommunesPlone
    convention ends at 48 months). ``sweep`` takes their step on the day if no one has."""
    return set(((policy.params or {}) if policy else {}).get("binding_deadlines") or [])


def binding_dates(session: Session, tickets: list[Ticket]) -> dict[int, Deadline]:
    """For each ticket, its soonest binding date still ahead of the procedure (pending, or
    shown and not yet turned into a timer)."""
    names: set[str] = set()
    for key in {t.policy_key for t in tickets}:
        names |= binding_names(session.get(Policy, key))
    if not names or not tickets:
        return {}
    out: dict[int, Deadline] = {}
    by_id = {t.id: t for t in tickets}
    rows = session.exec(
        select(Deadline)
        .where(
            col(Deadline.ticket_id).in_(list(by_id)),
            col(Deadline.name).in_(sorted(names)),
            col(Deadline.status).in_(("pending", "info")),
        )
        .order_by(col(Deadline.due_at))
    )
    for dl in rows:
        t = by_id[dl.ticket_id]
        if (
            t.state_kind != "done"
            and dl.ticket_id not in out
            and dl.name in binding_names(session.get(Policy, t.policy_key))
        ):
            out[dl.ticket_id] = dl
    return out


def bounced_ticket_ids():
    """The tickets with a mail that came back (``bounced``) and nobody decided on yet: a
    subquery."""
    from helpdesk.storage.models import Outbox

    return select(Outbox.ticket_id).where(
        Outbox.status == "bounced", col(Outbox.ticket_id).is_not(None)
    )


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
    actor: Actor | None = None,
) -> list[Ticket]:
    """Tickets matching the filters, among those ``actor``'s role reaches. A filter naming
    no known provider or volunteer is bad input, not an empty list."""
    check_filters(session, policy=policy, assignee=assignee, limit=limit, offset=offset)
    if actor is not None:
        check_scope(actor, policy)
    q = select(Ticket)
    if actor is not None and actor.policies:
        q = q.where(col(Ticket.policy_key).in_(actor.policies))
    if queue:
        q = q.where(Ticket.queue == queue)
    if state:
        q = q.where(Ticket.state == state)
    elif not include_done:
        # A finished ticket whose mail came back still waits for a person: listed too.
        q = q.where(or_(col(Ticket.state_kind) != "done", col(Ticket.id).in_(bounced_ticket_ids())))
    if policy:
        q = q.where(Ticket.policy_key == policy)
    if account:
        q = q.join(Account, col(Account.id) == Ticket.account_id).where(
            col(Account.login) == account
        )
    if assignee:
        q = q.where(Ticket.assignee == assignee)
    if overdue_at is not None:
        q = q.where(col(Ticket.due_at).is_not(None), Ticket.due_at <= overdue_at)
    if order == "due":
        # Overdue and soonest first; tickets with no date after, oldest first.
        q = q.order_by(col(Ticket.due_at).is_(None), col(Ticket.due_at), col(Ticket.id))
    elif order == "age":
        q = q.order_by(col(Ticket.opened_at), col(Ticket.id))
    elif order == "state":
        q = q.order_by(col(Ticket.state), col(Ticket.id))
    else:
        q = q.order_by(col(Ticket.id).desc())
    return list(session.exec(q.offset(offset).limit(limit)))


def check_filters(
    session: Session,
    *,
    policy: str | None = None,
    assignee: str | None = None,
    status: str | None = None,
    limit: int | None = None,
    offset: int | None = None,
) -> None:
    if policy and session.get(Policy, policy) is None:
        raise BadInput(_("unknown policy {key!r}").format(key=policy))
    if assignee and session.get(Volunteer, assignee) is None:
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


def ticket_row(
    session: Session,
    t: Ticket,
    accounts: dict[int, str] | None = None,
    binding: dict[int, Deadline] | None = None,
) -> dict:
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
        "binding_at": clock.iso(b.due_at)
        if (b := (binding if binding is not None else binding_dates(session, [t])).get(t.id))
        else None,
        "binding": b.name if b else None,
        "opened_at": clock.iso(t.opened_at),
        "assignee": t.assignee,
    }
