"""The table of tickets a person reads (``ticket list``, with or without ``--search``):
queues, states and providers by their labels and short names, dates in each provider's zone,
fitted to the terminal's width (cut with "…", narrow columns dropped). The JSON keeps the
keys and UTC."""

from __future__ import annotations

from helpdesk.base import clock
from helpdesk.base.i18n import _


def print_tickets(out, s, data: list[dict]) -> None:
    """``s``: a Core connection or an ORM session (``helpdesk.service.listing.Reader``).
    ``data``: rows with ``id``, ``queue``, ``policy``, ``state``, ``account``,
    ``due_at`` (UTC ISO), ``subject`` and, when known, ``binding_at`` and ``binding``."""
    from helpdesk.base import labels as labels_
    from helpdesk.cli.text import local
    from helpdesk.service import listing

    now = clock.iso(clock.now())
    policies = listing.policy_names(s)
    zones = {k: p.timezone for k, p in policies.items()}
    labels = listing.state_labels(s, listing.tickets_by_id(s, [r["id"] for r in data]))
    binding_header = _("binding date (text)")
    columns = ["id", "queue", "provider", "state", "account", "due"]
    if any(r.get("binding_at") for r in data):
        columns.append(binding_header)
    columns.append("subject")

    def cells(r: dict) -> list:
        zone = zones.get(r["policy"], "UTC")
        policy = policies.get(r["policy"])
        row = [
            r["id"],
            labels_.label("queue-short", r["queue"]),
            policy.short_name if policy else r["policy"],
            labels.get(r["id"], r["state"]),
            r["account"] or "-",
            ("! " if r["due_at"] and r["due_at"] <= now else "")
            + local(r["due_at"], zone, zone=False),
        ]
        if binding_header in columns:
            row.append(
                f"{local(r['binding_at'], zone, zone=False)} ({labels_.label('deadline', r.get('binding'))})"
                if r.get("binding_at")
                else ""
            )
        return row + [r["subject"]]

    shown = sorted({(r["policy"], zones.get(r["policy"], "UTC")) for r in data})
    out.table(
        columns,
        [cells(r) for r in data],
        clip={
            "subject": 14,
            "provider": 13,  # a pack's short name, whole (helpdesk.policy.packs.SHORT_NAME_MAX)
            binding_header: 16,
            "state": 12,
            "account": 10,
        },
        drop=("provider", binding_header),
        spare=("provider",) if len({k for k, _z in shown}) == 1 else (),
    )
    if shown:
        out.line(
            _("Times in each provider's zone: {zones}").format(
                zones=", ".join(
                    f"{policies[k].short_name if k in policies else k} {z}" for k, z in shown
                )
            ),
            style="dim",
            wrap=True,
        )
