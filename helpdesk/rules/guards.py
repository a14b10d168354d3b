"""Named guards. Each returns None when it passes, or the reason it refuses.

The policy packs decide which guard applies to which step and which article it cites;
these functions only know how to check one fact.
"""

from __future__ import annotations

from sqlmodel import col, select

from helpdesk.base import clock, dates
from helpdesk.storage.models import ServiceAction
from helpdesk.rules.context import Ctx
from helpdesk.base.fields import TRUE
from helpdesk.base.i18n import _, pick
from helpdesk.base.labels import choice, label
from helpdesk.rules.naming import guard
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
        return _("the account is {status}").format(
            status=label("account-status", ctx.account.status)
        )
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
        return _("the provider does not serve this requester: redirect them to {target}").format(
            target=pick(target)
        )
    return None


@guard("requester_not_served")
def requester_not_served(ctx: Ctx):
    if not_served_by(ctx) is None:
        return _("the provider serves this requester itself: there is no one to redirect to")
    return None


@guard("credentials_by_mail_allowed")
def credentials_by_mail_allowed(ctx: Ctx):
    if not ctx.param("credentials_by_mail", True):
        return _(
            "access information must never be sent by e-mail: give a one-time code by phone instead"
        )
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
        return _("only when {field} is one of: {values}").format(
            field=_field(ctx, field), values=", ".join(choice(field, v) for v in values)
        )
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
    since = clock.local_day(ctx.account.last_login or ctx.account.created_at, ctx.tz)
    first = dates.inactive_from(since, ctx.duration_param(param))
    if clock.local_day(ctx.now, ctx.tz) < first:
        return _("the account was used on {date}: not inactive long enough before {limit}").format(
            date=since.isoformat(), limit=first.isoformat()
        )
    return None


@guard("deadline_reached")
def deadline_reached(ctx: Ctx, deadline: str):
    dl = ctx.deadline(deadline)
    if dl is not None and ctx.now < dl.due_at:
        return _("not before {name}: {date}").format(
            name=label("deadline", deadline), date=clock.local_day(dl.due_at, ctx.tz).isoformat()
        )
    return None


def _well_founded(ctx: Ctx, field: str) -> str | None:
    """None if ``field`` (an emergency, a grave matter) is set, by an on-call admin or
    higher, with its reason recorded; else why not ("unset" when the field is not set)."""
    if not _true(ctx.fields.get(field)):
        return "unset"
    if rank(ctx.actor.role, ctx.training) < RANK["oncall"]:
        return _("this step without the earlier ones is reserved to on-call and admin roles")
    if not ctx.note:
        return _("taking this step at once needs its reason recorded (the note of the step)")
    return None


def _this_matter_or(ctx: Ctx, steps: set[str], field: str, refusal: str) -> str | None:
    """Pass when one of ``steps`` was taken on this ticket (this matter: the ledger of other
    tickets informs, it never stands in for them), or when ``field`` is well founded."""
    if ctx.this_ticket_steps() & steps:
        return None
    why = _well_founded(ctx, field)
    if why is None:
        return None
    return refusal if why == "unset" else why


@guard("prior_exchange_or_emergency")
def prior_exchange_or_emergency(ctx: Ctx):
    """Indigos art. 11: an exchange and an attempt at regularisation on this matter first,
    except in an emergency or a special constraint (on-call, reason recorded)."""
    return _this_matter_or(
        ctx,
        {"contact", "warning"},
        "urgent",
        _(
            "except in an emergency, an exchange and an attempt at regularisation come first on this matter (record a contact)"
        ),
    )


@guard("prior_step_or_grave")
def prior_step_or_grave(ctx: Ctx, steps: list[str]):
    """CommunesPlone art. 6.11: sanctions "selon la gravité": a minor matter starts with the
    earlier rungs; a grave one (on-call, gravity recorded as the reason) may skip them."""
    return _this_matter_or(
        ctx,
        set(steps),
        "grave",
        _(
            "according to the gravity: on this matter, first {steps}, unless it is grave (--field grave=yes, on-call, reason recorded)"
        ).format(steps=", ".join(label("sanction", st) for st in steps)),
    )


def _quoting(quote: str | None, reason: str) -> str:
    """A refusal that quotes the pack's article as it is written (``quote``: the words of
    the text, given by the workflow for the packs whose text holds them)."""
    return f"« {quote} » — {reason}" if quote else reason


@guard("prior_exchange_or_compromise")
def prior_exchange_or_compromise(ctx: Ctx, quote: str | None = None):
    """Indigos art. 7 and 11: sending is suspended after a prevention exchange on this alert,
    or at once on compromise or in an emergency (on-call, reason recorded)."""
    if _true(ctx.fields.get("compromised")):
        return None
    return _this_matter_or(
        ctx,
        {"contact", "warning"},
        "urgent",
        _quoting(
            quote,
            _(
                "a prevention exchange first, except in an emergency (--field urgent=yes, on-call, reason recorded) or on compromise"
            ),
        ),
    )


#: Indigos art. 7: "une suspension du compte en cas de risque grave, d'abus manifeste ou de
#: compromission".
ACCOUNT_SUSPENSION_GROUNDS = ("grave-risk", "manifest-abuse", "compromise")


@guard("suspension_grounds")
def suspension_grounds(ctx: Ctx, quote: str | None = None):
    """Indigos art. 7: the account is suspended only on one of the three grounds the text
    names, recorded with the step (``ground``, or ``compromised=yes``)."""
    ground = ctx.fields.get("ground") or (
        "compromise" if _true(ctx.fields.get("compromised")) else None
    )
    if ground not in ACCOUNT_SUSPENSION_GROUNDS:
        return _quoting(
            quote,
            _(
                "record the ground of the account suspension (--field ground=grave-risk|manifest-abuse|compromise)"
            ),
        )
    return None


#: Wigii CGU art. 5: the four purposes for which the activity log may be used.
LOG_PURPOSES = ("technical", "statistics", "misuse", "judicial-order")


@guard("log_purpose_given")
def log_purpose_given(ctx: Ctx):
    """Wigii CGU art. 5: the log is used only "à des fins de résolution de problème technique,
    de statistique, de résolution en contrariété d'usage ou d'investigation sur ordre
    d'instance juridique": one of these purposes, besides the note."""
    if ctx.fields.get("purpose") not in LOG_PURPOSES:
        return _(
            "reading the logs needs one of the purposes the text gives (--field purpose=technical|statistics|misuse|judicial-order)"
        )
    return None


def acknowledgement_reply(ctx: Ctx):
    """The mail threaded on this ticket since the confirmation went out, if one came: the
    user's acknowledgement ("quittancée") arrives as a reply."""
    from sqlmodel import select

    from helpdesk.storage.models import Event, Evidence

    sent = ctx.session.exec(
        select(Event.at)
        .where(Event.ticket_id == ctx.ticket.id, Event.to_state == ctx.ticket.state)
        .order_by(col(Event.id).desc())
    ).first()
    q = select(Evidence).where(Evidence.ticket_id == ctx.ticket.id, Evidence.kind == "mail")
    if sent is not None:
        q = q.where(Evidence.received_at > sent)
    return ctx.session.exec(q.order_by(col(Evidence.id).desc())).first()


@guard("binding_date_reached")
def binding_date_reached(ctx: Ctx):
    """The date the provider's text makes binding (pack param ``binding_deadlines``) is here."""
    for name in ctx.param("binding_deadlines") or []:
        dl = ctx.deadline(name)
        if dl is not None and ctx.now >= dl.due_at:
            return None
    return _("the date the text fixes is not reached yet")


@guard("service_actions_done")
def service_actions_done(ctx: Ctx, kinds: list[str]):
    """Every service action of these kinds queued on this ticket is done (or, in training,
    would have been): an erasure is not "done" while one service has not erased."""
    rows = ctx.session.exec(
        select(ServiceAction).where(
            ServiceAction.ticket_id == ctx.ticket.id, col(ServiceAction.kind).in_(kinds)
        )
    )
    waiting = [r for r in rows if r.status not in ("done", "would-have-done")]
    if waiting:
        return _("not done yet on: {services}").format(
            services=", ".join(
                f"{r.connector} ({label('service-action-status', r.status)})" for r in waiting
            )
        )
    return None
