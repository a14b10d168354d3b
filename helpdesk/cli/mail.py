"""The CLI commands an admin uses for mail (``helpdesk.cli.main`` hands over here)::

    helpdesk policy set KEY NAME=VALUE [NAME=VALUE...]   a provider's settings (helpdesk.policy.provider_settings)
    helpdesk outbox retry ID [--note TEXT]               held, failed or uncertain mail: send again
    helpdesk outbox mark-sent ID --note TEXT             ... or record that it did arrive

All three need ``--as`` (or ``HELPDESK_USER``): ``policy set`` the techadmin role, the outbox
decisions the oncall role. Exit codes as everywhere: 1 refused by a rule, 2 bad input.
"""

from __future__ import annotations


from helpdesk.cli.common import user as cli_user
from helpdesk.base import bounds
from helpdesk.base.i18n import _
from helpdesk.cli.parser import command


def add_policy_set(policy_sub) -> None:
    """``policy set``."""
    p = command(
        policy_sub,
        "set",
        do_policy_set,
        _("set a provider's operational settings (an empty value removes one)"),
    )
    p.add_argument("key")
    p.add_argument(
        "values",
        nargs="+",
        metavar="NAME=VALUE",
        help=_("the settings are listed by 'helpdesk policy show KEY'"),
    )


def add_outbox_decisions(outbox_sub) -> None:
    """``outbox retry|mark-sent``."""
    p = command(
        outbox_sub,
        "retry",
        do_outbox_retry,
        _(
            "send a held, failed or uncertain mail again (uncertain: after checking it did not arrive)"
        ),
    )
    p.add_argument("id", type=bounds.ident)
    p.add_argument("--note", default="", help=_("why (required for an uncertain mail)"))
    p = command(
        outbox_sub,
        "mark-sent",
        do_outbox_mark_sent,
        _("record that a held, failed or uncertain mail did reach its recipient"),
    )
    p.add_argument("id", type=bounds.ident)
    p.add_argument(
        "--note", required=True, help=_("how it is known (the relay's log, the recipient)")
    )


def _actor(args, s):
    from helpdesk.service import api

    return api.actor_for(s, cli_user(args))


def do_policy_set(args, out) -> int:
    from helpdesk.cli import common
    from helpdesk.policy import provider_settings
    from helpdesk.workflow.engine import require_role
    from helpdesk.base.fields import parse_pairs
    from helpdesk.storage.models import Policy

    values = parse_pairs(args.values)
    with common.session(args, write=True) as s:
        actor = _actor(args, s)
        require_role(s, actor, "techadmin", args.key)
        changed = provider_settings.change(s, args.key, values, actor.login)
        view = provider_settings.view(s, s.get(Policy, args.key))
    if out.json:
        out.data({"policy": args.key, "changed": changed, "settings": view})
    else:
        out.line(_("{key}: {n} setting(s) changed.").format(key=args.key, n=len(changed)))
        print_settings(out, view)
    return 0


def print_settings(out, view: list[dict]) -> None:
    for item in view:
        value = item["value"]
        shown = ", ".join(value) if isinstance(value, list) else value
        if shown:
            out.line(f"  {item['name']:<22} {shown}  ({item['source']})")
        else:
            out.line(f"  {item['name']:<22} — {item['missing']}", style="yellow")
        out.line(f"  {'':<22} {item['note'] or item['help']}", style="dim")


def do_outbox_retry(args, out) -> int:
    data = _decide(args, "retry")
    if out.json:
        out.data(data)
    else:
        out.line(
            _("Mail #{id} queued again: it leaves with the next 'helpdesk outbox send'.").format(
                id=data["id"]
            )
        )
    return 0


def do_outbox_mark_sent(args, out) -> int:
    data = _decide(args, "mark_sent")
    if out.json:
        out.data(data)
    else:
        out.line(_("Mail #{id} recorded as sent.").format(id=data["id"]))
    return 0


def _decide(args, decision: str) -> dict:
    """An oncall's decision on a held, failed or uncertain mail (``outgoing.decisions``)."""
    from helpdesk.cli import common
    from helpdesk.outgoing import decisions

    with common.session(args, write=True) as s:
        row = getattr(decisions, decision)(s, args.id, _actor(args, s), note=args.note)
        return {
            "id": row.id,
            "ticket": row.ticket_id,
            "status": row.status,
            "to": row.to_addr,
            "message_id": row.message_id,
        }
