"""``helpdesk dashboard``: what the TUI's first screen shows, for a shell or a script: each
queue's open, waiting and overdue tickets, and the dates the providers' texts make binding
(kept even when nobody acts), apart from the indicative response targets."""

from __future__ import annotations


from helpdesk.cli.common import user as cli_user
from helpdesk.base import clock, queues
from helpdesk.base.i18n import _, n_
from helpdesk.base.labels import label
from helpdesk.cli.common import Out, connection
from helpdesk.cli.parser import command

QUEUES = queues.ALL


def add_parser(commands) -> None:
    """The ``dashboard`` command (``helpdesk.cli.parser`` lists it)."""
    p = command(commands, "dashboard", do_dashboard)
    p.add_argument(
        "--limit", type=int, default=10, help=_("how many binding dates to list (at least 1)")
    )


def do_dashboard(args, out: Out) -> int:
    from helpdesk.base.errors import BadInput
    from helpdesk.cli.text import local
    from helpdesk.service import counts as counts_, listing

    if not 1 <= args.limit <= 1000:
        raise BadInput(_("--limit must be between 1 and 1000"))
    user = cli_user(args)
    with connection(args) as conn:  # SQLAlchemy Core: no ORM, no models (a read starts fast)
        actor = listing.actor_for(conn, user, required=False)
        scope = actor.policies
        counts = counts_.queue_counts(conn, clock.now(), scope)
        binding = counts_.binding_soonest(conn, scope, limit=args.limit)
        providers = {k: (p.short_name, p.timezone) for k, p in listing.policy_names(conn).items()}
    queues = {
        q: {"open": 0, "waiting": 0, "overdue": 0, "binding": 0, **counts.get(q, {})}
        for q in sorted(
            set(QUEUES) | set(counts),
            key=lambda q: (QUEUES.index(q) if q in QUEUES else len(QUEUES), q),
        )
    }
    if out.json:  # stable keys, times in UTC
        out.data(
            {
                "queues": queues,
                "binding": [{**b, "at": clock.iso(b["at"])} for b in binding],
            }
        )
        return 0
    out.table(
        [_("queue"), _("open"), _("waiting"), _("overdue"), _("binding dates")],
        [
            [label("queue-short", q), c["open"], c["waiting"], c["overdue"], c["binding"]]
            for q, c in queues.items()
        ],
    )
    total = sum(c["binding"] for c in queues.values())
    out.line("")
    out.line(
        n_(
            "{n} open ticket carries a date fixed by its provider's text:",
            "{n} open tickets carry a date fixed by their provider's text:",
            total,
        ).format(n=total)
        if total
        else _("No open ticket carries a date fixed by its provider's text."),
        style="bold",
    )
    for b in binding:
        name, tz = providers.get(b["policy"], (b["policy"], "UTC"))
        out.line(
            f"  {local(b['at'], tz)}  #{b['ticket']}  {name} · "
            f"{label('deadline', b['name'])} · {b['subject'] or '—'}"
        )
    return 0
