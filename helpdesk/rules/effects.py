"""Named effects: what a step does besides changing the ticket's state."""

from __future__ import annotations

from sqlmodel import col, select

from helpdesk.base import clock, dates
from helpdesk.rules import tokens
from helpdesk.rules.context import Ctx
from helpdesk.rules.guards import acknowledgement_reply, not_served_by, registered_contacts
from helpdesk.base.i18n import pick
from helpdesk.storage.models import Deadline, Evidence, ResetToken
from helpdesk.rules.naming import effect
from helpdesk.rules.sensitive import read_sensitive
from helpdesk.base.untrusted import clean


def set_deadline(ctx: Ctx, name: str, due, note: str = "") -> Deadline:
    """A date shown on the ticket (status ``info``); replaces an earlier one of that name."""
    for old in ctx.session.exec(
        select(Deadline).where(
            Deadline.ticket_id == ctx.ticket.id, Deadline.name == name, Deadline.status == "info"
        )
    ):
        old.status = "cancelled"
        ctx.session.add(old)
    dl = Deadline(ticket_id=ctx.ticket.id, name=name, due_at=due, status="info", note=note)
    ctx.session.add(dl)
    ctx.session.flush()
    return dl


def _recipient(ctx: Ctx, to: str) -> str:
    if to == "requester":
        return ctx.ticket.requester
    if to == "account":
        return ctx.account.email if ctx.account else ctx.ticket.requester
    if to == "verified-contact":
        # Only ever an address registered on the account: the requester's, once verified.
        if ctx.ticket.requester and ctx.ticket.requester.lower() in registered_contacts(ctx):
            return ctx.ticket.requester
        return ctx.account.email if ctx.account else ""
    raise ValueError(f"unknown recipient {to!r}")


@effect("send_template")
def send_template(ctx: Ctx, template: str, to: str = "requester"):
    address = _recipient(ctx, to)
    if not address:
        ctx.event_data.setdefault("warnings", []).append(f"no address for {template}: not sent")
        return
    target = not_served_by(ctx)
    # Rendered when the step is complete, so the mail can give the dates the step sets.
    ctx.pending_mails.append(
        (template, address, {"redirect_to": pick(target, ctx.ticket.lang) if target else ""})
    )


@effect("set_account_status")
def set_account_status(ctx: Ctx, status: str, only_from: str | None = None):
    acc = ctx.account
    if acc is None:
        return
    if only_from and acc.status != only_from:
        return
    if acc.status != status:
        ctx.event_data["account_status"] = [acc.status, status]
        acc.status = status
        acc.updated_at = ctx.now
        ctx.session.add(acc)


@effect("create_reset_token")
def create_reset_token(ctx: Ctx, channel: str = "email"):
    ttl = ctx.duration_param("reset_ttl")
    token = ResetToken(
        ticket_id=ctx.ticket.id,
        account_id=ctx.account.id,
        channel=channel,
        created_at=ctx.now,
        expires_at=clock.add(ctx.now, ttl, ctx.tz),
    )
    ctx.session.add(token)
    ctx.session.flush()
    ctx.token = token
    if channel == "phone":
        secret = tokens.mint(ctx.session, token, ctx.now, phone=True)
        ctx.reveal.append(
            {"kind": "phone-code", "secret": secret, "expires": clock.iso(token.expires_at)}
        )
    set_deadline(ctx, "reset-expires", token.expires_at)
    ctx.event_data["token"] = {"id": token.id, "channel": channel}


@effect("open_linked_ticket")
def open_linked_ticket(ctx: Ctx, when: str, queue: str, fields: dict):
    if ctx.fields.get(when) is not True:
        return
    if queue not in _queues(ctx):
        return
    outcome = ctx.open_ticket(
        ctx.session,
        queue=queue,
        policy_key=ctx.policy.key,
        actor=ctx.actor,
        account=ctx.account,
        requester=ctx.ticket.requester,
        subject=ctx.ticket.subject,
        fields=dict(fields),
        lang=ctx.ticket.lang,
        parent_id=ctx.ticket.id,
        note=f"linked to #{ctx.ticket.id}: suspicious access reported",
        now=ctx.now,
    )
    ctx.event_data["linked"] = outcome.ticket.id
    ctx.mails.extend(outcome.mails)


def _queues(ctx: Ctx) -> set[str]:
    from helpdesk.storage.models import Workflow

    return set(
        ctx.session.exec(select(Workflow.queue).where(Workflow.policy_key == ctx.policy.key))
    )


def _account_day(ctx: Ctx, name: str):
    value = (ctx.account.fields or {}).get(name) if ctx.account else None
    return clock.parse_day(value) if value else None


@effect("contract_dates")
def contract_dates(ctx: Ctx):
    signature = _account_day(ctx, "signature-date")
    if signature is None:
        ctx.event_data.setdefault("warnings", []).append(
            "account has no signature-date: contract dates unknown"
        )
        return
    request = (
        clock.parse_day(ctx.fields["request-date"])
        if ctx.fields.get("request-date")
        else clock.local_day(ctx.now, ctx.tz)
    )
    c = dates.contract_dates(
        signature,
        request,
        term=ctx.duration_param("contract_term"),
        maximum=ctx.duration_param("contract_max"),
        notice=ctx.duration_param("non_renewal_notice"),
    )
    at = lambda d: clock.start_of_day(d, ctx.tz)  # noqa: E731
    set_deadline(ctx, "contract-start", at(c.start))
    if c.next_renewal:
        set_deadline(ctx, "next-renewal", at(c.next_renewal))
        set_deadline(ctx, "notice-limit", at(c.notice_limit))
    set_deadline(ctx, "contract-max-end", at(c.max_end))
    set_deadline(ctx, "contract-end", at(c.effective_end), note="late" if c.late else "")
    ctx.event_data["contract"] = {
        "start": c.start.isoformat(),
        "next_renewal": c.next_renewal.isoformat() if c.next_renewal else None,
        "effective_end": c.effective_end.isoformat(),
        "late": c.late,
    }


@effect("membership_removal_date")
def membership_removal_date(ctx: Ctx):
    end = _account_day(ctx, "membership-end") or (
        clock.parse_day(ctx.fields["request-date"])
        if ctx.fields.get("request-date")
        else clock.local_day(ctx.now, ctx.tz)
    )
    removal = dates.membership_data_removal(end, ctx.duration_param("membership_removal"))
    set_deadline(ctx, "membership-end", clock.start_of_day(end, ctx.tz))
    set_deadline(ctx, "data-removal", clock.start_of_day(removal, ctx.tz))


@effect("erasure_dates")
def erasure_dates(ctx: Ctx):
    erasure = clock.add(ctx.now, ctx.duration_param("erasure_after"), ctx.tz)
    set_deadline(ctx, "erasure", erasure, note=ctx.param("erasure_after_note", ""))
    forget = clock.add(erasure, ctx.duration_param("backup_retention"), ctx.tz)
    set_deadline(ctx, "backups-forget", forget, note=ctx.param("backup_retention_note", ""))


@effect("renew_subscription")
def renew_subscription(ctx: Ctx):
    acc = ctx.account
    previous = _account_day(ctx, "subscription-end")
    if acc is None or previous is None:
        return
    start, end = dates.renewal_after_lapse(previous, ctx.duration_param("subscription_period"))
    fields = dict(acc.fields or {})
    fields["subscription-start"] = start.isoformat()
    fields["subscription-end"] = end.isoformat()
    acc.fields = fields
    acc.updated_at = ctx.now
    ctx.session.add(acc)
    ctx.event_data["subscription"] = {"start": start.isoformat(), "end": end.isoformat()}


@effect("record_log_access")
def record_log_access(ctx: Ctx):
    """Reading logs is itself recorded: this step's event carries the reason as its note.
    The role and the reason are checked by the one gate for sensitive reads."""
    read_sensitive(
        ctx.session, ctx.actor, "logs", reason=ctx.note, ticket_id=ctx.ticket.id, record=False
    )
    rows = list(
        ctx.session.exec(
            select(Evidence).where(
                Evidence.ticket_id == ctx.ticket.id, col(Evidence.kind).in_(["log", "arf", "dmarc"])
            )
        )
    )
    ctx.event_data["sensitive_read"] = {"kind": "logs", "evidence": [e.id for e in rows]}
    for e in rows:
        # The stored evidence stays raw; what is shown is cleaned of terminal controls.
        text = clean(e.content.decode("utf-8", "replace"))
        ctx.output.append({"evidence": e.id, "kind": e.kind, "sha256": e.sha256, "text": text})


@effect("record_acknowledgement")
def record_acknowledgement(ctx: Ctx):
    """Where the user's acknowledgement came from: the reply threaded on the ticket, or the
    volunteer's note that names it."""
    reply = acknowledgement_reply(ctx)
    if reply is not None:
        ctx.event_data["acknowledgement"] = {"source": "mail", "evidence": reply.id}
    else:
        ctx.event_data["acknowledgement"] = {"source": "note"}
