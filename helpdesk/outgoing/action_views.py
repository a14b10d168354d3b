"""Service actions as screens and commands show them: plain data and a line a person reads.

Read with SQLAlchemy Core on ``helpdesk.storage.tables`` (a Core connection or an ORM
session), so that the dashboard shows the actions that wait for a person without loading
the ORM; ``helpdesk.outgoing.actions`` carries the actions out and offers the same names.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from helpdesk.base import clock
from helpdesk.base.i18n import _
from helpdesk.base.labels import label
from helpdesk.storage import tables
from helpdesk.storage.db import Reader

WAITING = ("failed", "uncertain")


def view(row: Any, login: str | None = None) -> dict:
    """One action (a ``ServiceAction`` or a row of its columns) as plain data (stable keys,
    UTC times)."""
    return {
        "id": row.id,
        "ticket": row.ticket_id,
        "account": login,
        "policy": row.policy_key,
        "kind": row.kind,
        "connector": row.connector,
        "service": row.service,
        "target": row.target,
        "until": (row.params or {}).get("until"),
        "timezone": (row.params or {}).get("timezone", "Europe/Paris"),
        "status": row.status,
        "attempts": row.attempts,
        "next_attempt_at": clock.iso(row.next_attempt_at) if row.status == "pending" else None,
        "created_at": clock.iso(row.created_at),
        "done_at": clock.iso(row.done_at),
        "answer": row.last_error or row.result,
        "needs_attention": row.status in WAITING,
    }


def _with_login():
    a, acc = tables.service_action, tables.account
    return select(a, acc.c.login.label("account_login")).select_from(
        a.outerjoin(acc, acc.c.id == a.c.account_id)
    )


def listing(
    s: Reader, *, status: str | None = None, ticket: int | None = None, limit: int = 100
) -> list[dict]:
    a = tables.service_action
    q = _with_login()
    if status:
        q = q.where(a.c.status == status)
    if ticket is not None:
        q = q.where(a.c.ticket_id == ticket)
    return [view(row, row.account_login) for row in s.execute(q.order_by(a.c.id).limit(limit))]


def of_ticket(s: Reader, ticket_id: int) -> list[dict]:
    return listing(s, ticket=ticket_id, limit=1000)


def needing_attention(s: Reader, limit: int = 20) -> tuple[int, list[dict]]:
    """Failed and uncertain actions, for the dashboard: how many, and the oldest first, each
    with the ``line`` a person reads."""
    a = tables.service_action
    total = s.execute(
        select(func.count()).select_from(a).where(a.c.status.in_(WAITING))
    ).scalar_one()
    q = _with_login().where(a.c.status.in_(WAITING)).order_by(a.c.id).limit(limit)
    rows = [view(row, row.account_login) for row in s.execute(q)]
    for v in rows:
        v["line"] = _("service action #{id} {status}: {what} (ticket #{ticket})").format(
            id=v["id"],
            status=label("service-action-status", v["status"]),
            what=describe(v),
            ticket=v["ticket"],
        )
    return total, rows


def local_time(value: str, tz: str | None) -> str:
    """A stored UTC time as a person reads it: in the provider's zone, the zone named."""
    from zoneinfo import ZoneInfo

    tz = tz or "Europe/Paris"
    return (
        clock.parse_datetime(value).astimezone(ZoneInfo(tz)).strftime("%Y-%m-%d %H:%M") + f" ({tz})"
    )


def describe(a: dict) -> str:
    """One line a person reads: what, on which system, for whom."""
    until = (
        " " + _("until {when}").format(when=local_time(a["until"], a.get("timezone")))
        if a.get("until")
        else ""
    )
    where = a["connector"] if a["connector"] != "-" else _("no service configured")
    return f"{label('service-action', a['kind'])}{until} · {a['target']} · {where}"
