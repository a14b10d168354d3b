"""Named guards. Each returns None when it passes, or the reason it refuses.

The policy packs decide which guard applies to which step and which article it cites;
these functions only know how to check one fact.
"""

from __future__ import annotations

from helpdesk.base import clock
from helpdesk.rules import ledger
from helpdesk.rules.context import Ctx
from helpdesk.base.fields import TRUE
from helpdesk.base.i18n import _, pick
from helpdesk.base.labels import choice, label
from helpdesk.rules.registry import guard
from helpdesk.base.roles import RANK, rank


def _true(value) -> bool:
    return value is True or (isinstance(value, str) and value.strip().lower() in TRUE)


def registered_contacts(ctx: Ctx) -> set[str]:
    acc = ctx.account
    if acc is None:
        return set()
    return {a.strip().lower() for a in [acc.email, *(acc.contacts or [])] if a}


def not_served_by(ctx: Ctx) -> dict | None:
    """Where the provider sends this requester instead, if it does not serve them."""
    table = ctx.param("not_served") or {}
    if ctx.account is not None and ctx.account.kind in table:
        return table[ctx.account.kind]
    if "member-scope" in table and ctx.fields.get("scope") == "member":
        return table["member-scope"]
    return None


@guard("account_usable")
def account_usable(ctx: Ctx):
    if ctx.account is None:
        return _("no account is linked to this ticket")
    if ctx.account.status in ("deactivated", "erased"):
        return _("the account is {status}").format(status=label("account-status", ctx.account.status))
    return None


@guard("requester_is_contact")
def requester_is_contact(ctx: Ctx):
    if ctx.account is None:
        return _("no account is linked to this ticket")
    if not ctx.ticket.requester:
        return _("the requester's address is unknown: identity cannot be checked")
    if ctx.ticket.requester.lower() not in registered_contacts(ctx):
        return _("{requester} is not a registered contact of the account {login}").format(
            requester=ctx.ticket.requester, login=ctx.account.login
        )
    return None


@guard("requester_served")
def requester_served(ctx: Ctx):
    target = not_served_by(ctx)
    if target:
        return _("the provider does not serve this requester: redirect them to {target}").format(target=pick(target))
    return None


@guard("requester_not_served")
def requester_not_served(ctx: Ctx):
    if not_served_by(ctx) is None:
        return _("the provider serves this requester itself: there is no one to redirect to")
    return None


@guard("credentials_by_mail_allowed")
def credentials_by_mail_allowed(ctx: Ctx):
    if not ctx.param("credentials_by_mail", True):
        return _("access information must never be sent by e-mail: give a one-time code by phone instead")
    return None


@guard("fields_present")
def fields_present(ctx: Ctx, fields: list[str]):
    missing = [f for f in fields if not ctx.fields.get(f)]
    if ctx.account is None:
        missing.insert(0, "account")
    if missing:
        return _("items missing from the request: {items}").format(items=", ".join(missing))
    return None


@guard("fields_missing")
def fields_missing(ctx: Ctx, fields: list[str]):
    if ctx.account is not None and all(ctx.fields.get(f) for f in fields):
        return _("the request has every item")
    return None


def _field(ctx: Ctx, name: str) -> str:
    """A field as a person reads it: its label in the workflow."""
    return pick(((ctx.workflow.fields or {}).get(name) or {}).get("label")) or name


@guard("field_true")
def field_true(ctx: Ctx, field: str, otherwise: str | None = None):
    if not _true(ctx.fields.get(field)) and not (otherwise and _true(ctx.fields.get(otherwise))):
        return _("required: {field} (yes)").format(field=_field(ctx, field))
    return None


@guard("field_in")
def field_in(ctx: Ctx, field: str, values: list[str]):
    if ctx.fields.get(field) not in values:
        return _("only when {field} is one of: {values}").format(field=_field(ctx, field), values=", ".join(choice(field, v) for v in values))
    return None


@guard("field_in_future")
def field_in_future(ctx: Ctx, field: str):
    value = ctx.fields.get(field)
    if value and clock.parse_datetime(value, ctx.tz) <= ctx.now:
        return _("{field} must be in the future").format(field=_field(ctx, field))
    return None


@guard("not_in_states")
def not_in_states(ctx: Ctx, states: list[str]):
    if ctx.ticket.state in states:
        return _("not possible in this state")
    return None


@guard("day_reached")
def day_reached(ctx: Ctx, field: str):
    value = ctx.fields.get(field)
    if not value:
        return None
    day = clock.parse_day(value)
    if ctx.now < clock.start_of_day(day, ctx.tz):
        return _("not before the requested day, {day}").format(day=day.isoformat())
    return None


@guard("inactive_for")
def inactive_for(ctx: Ctx, param: str, states: list[str] | None = None):
    if states and ctx.ticket.state not in states:
        return None
    if ctx.account is None:
        return _("no account is linked to this ticket")
    since = ctx.account.last_login or ctx.account.created_at
    limit = clock.add(since, ctx.duration_param(param), ctx.tz)
    if ctx.now <= limit:
        return _("the account was used on {date}: not inactive long enough before {limit}").format(
            date=clock.local_day(since, ctx.tz).isoformat(), limit=clock.local_day(limit, ctx.tz).isoformat()
        )
    return None


@guard("deadline_reached")
def deadline_reached(ctx: Ctx, deadline: str):
    dl = ctx.deadline(deadline)
    if dl is not None and ctx.now < dl.due_at:
        return _("not before {name}: {date}").format(name=label("deadline", deadline), date=clock.local_day(dl.due_at, ctx.tz).isoformat())
    return None


def _emergency(ctx: Ctx) -> str | None:
    """None if this is a well-founded emergency, else why not."""
    if not _true(ctx.fields.get("urgent")):
        return "not-urgent"
    if rank(ctx.actor.role, ctx.training) < RANK["oncall"]:
        return _("an emergency step is reserved to on-call and admin roles")
    if not ctx.note:
        return _("an emergency needs a recorded reason (the note of the step)")
    return None


def _unless_emergency(ctx: Ctx, refusal: str) -> str | None:
    """Pass a well-founded emergency; otherwise say what is missing for one, or ``refusal``."""
    why = _emergency(ctx)
    if why is None:
        return None
    return refusal if why == "not-urgent" else why


@guard("prior_exchange_or_emergency")
def prior_exchange_or_emergency(ctx: Ctx):
    if ctx.this_ticket_steps() & {"contact", "warning"} or ctx.earlier_steps():
        return None
    return _unless_emergency(
        ctx, _("except in an emergency, an exchange and an attempt at regularisation come first (record a contact)")
    )


@guard("prior_step_or_emergency")
def prior_step_or_emergency(ctx: Ctx, steps: list[str]):
    reached = ctx.this_ticket_steps() | {e.sanction for e in ctx.earlier_steps()}
    if reached & set(steps) or ledger.highest(ctx.earlier_steps()) >= ledger.LEVEL["suspension"]:
        return None
    return _unless_emergency(ctx, _("the graduated response starts with: {steps}").format(steps=", ".join(label("sanction", st) for st in steps)))


@guard("ladder_allows")
def ladder_allows(ctx: Ctx, step: str):
    earlier = ctx.earlier_steps()
    top = ledger.highest(earlier)
    if ledger.restarts(step, top):
        last = earlier[-1]
        return _("second offence: this account already reached «{top}» (ticket #{ticket}, {date}); the ladder goes on from there").format(
            top=label("sanction", ledger.top_step(earlier)), ticket=last.ticket_id, date=clock.local_day(last.at, ctx.tz).isoformat()
        )
    return None


@guard("prior_exchange_or_compromise")
def prior_exchange_or_compromise(ctx: Ctx):
    if _true(ctx.fields.get("compromised")):
        return None
    if ctx.this_ticket_steps() or ctx.earlier_steps():
        return None
    return _("the ladder starts with a prevention exchange (contact), except when the account is compromised")


@guard("prior_send_suspension_or_compromise")
def prior_send_suspension_or_compromise(ctx: Ctx):
    if _true(ctx.fields.get("compromised")):
        return None
    reached = ctx.this_ticket_steps() | {e.sanction for e in ctx.earlier_steps()}
    if reached & {"send-suspension", "suspension", "interruption", "closure"}:
        return None
    return _("account suspension comes after a temporary suspension of sending, or at once on compromise")
