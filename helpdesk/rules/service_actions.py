"""Queuing service actions: the effect a step names to act on the real services.

``{ name = "service_actions", args = { kinds = ["lock", "revoke-sessions"] } }`` queues one
row per action and per connector of the provider that can do it, in the step's own
transaction (a refused step queues nothing). ``helpdesk.outgoing.actions`` carries them
out after the step commits.
"""

from __future__ import annotations

from helpdesk.base import clock, config
from helpdesk.base.i18n import _
from helpdesk import connectors
from helpdesk.rules.context import Ctx
from helpdesk.rules.naming import effect
from helpdesk.storage.models import ServiceAction

#: The account statuses a sending block stands for (``reason`` on the block).
BLOCK_REASONS = {"send-suspended", "suspended", "deactivated"}


@effect("service_actions")
def queue_actions(ctx: Ctx, kinds: list[str], until: str | None = None, all: bool = False):
    """Queue ``kinds`` on every connector of the provider that can do them. ``until``: the
    ticket field whose date ends a sending suspension. Without a connector for a kind,
    the step says so (a warning on its event): that part is done by hand. A provider with
    no connector at all is not connected to its services: nothing is queued."""
    if ctx.account is None:
        return
    cfg = config.load()
    conns = connectors.for_policy(cfg, ctx.policy.key)
    params = {
        "ticket": ctx.ticket.id,
        "policy": ctx.policy.key,
        "lang": ctx.ticket.lang,
        "timezone": ctx.tz,
    }
    if until and ctx.fields.get(until):
        params["until"] = clock.iso(clock.parse_datetime(str(ctx.fields[until])))
    if all:
        params["all"] = True
    status = (ctx.account.status or "").strip()
    if status in BLOCK_REASONS:
        params["reason"] = status
    for kind in kinds:
        if kind not in connectors.KINDS:
            raise ValueError(f"unknown service action {kind!r}")
        able = [c for c in conns if kind in c.kinds]
        if not able and conns and kind != "read-last-login":  # said on the step: by hand
            ctx.event_data.setdefault("warnings", []).append(
                _("no service configured for «{kind}» ({policy}): do it by hand").format(
                    kind=kind, policy=ctx.policy.key
                )
            )
        if not able and ctx.training:  # the trainee still sees what a real set-up would do
            able = [None]
        for c in able:
            row = ServiceAction(
                ticket_id=ctx.ticket.id,
                account_id=ctx.account.id,
                policy_key=ctx.policy.key,
                connector=c.name if c else "-",
                service=c.type if c else "",
                kind=kind,
                target=c.target(ctx.account.login, ctx.account.fields) if c else ctx.account.login,
                params=dict(params),
                status="would-have-done" if ctx.training else "pending",
                next_attempt_at=None if ctx.training else ctx.now,
                created_at=ctx.now,
            )
            ctx.session.add(row)
            ctx.session.flush()
            ctx.actions.append(row)
