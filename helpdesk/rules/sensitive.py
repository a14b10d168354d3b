"""The one gate for reading sensitive material: log material, and a closed account's
personal data. Every read is an audited event; the CLI, the TUI and a step all pass here."""

from __future__ import annotations

from sqlmodel import Session

from helpdesk.base.errors import BadInput, Refused
from helpdesk.base.i18n import _
from helpdesk.base.untrusted import clean
from helpdesk.storage import audit
from helpdesk.storage.models import Account, Event
from helpdesk.rules.access import is_training, require_role
from helpdesk.rules.context import Actor

# What may be read by whom: log material (log lines, ARF and DMARC evidence) by techadmin;
# the personal data of a closed account by anyone identified. Every read is an audited event.
#: What reading is recorded, and the role it needs (None: any volunteer, recorded).
SENSITIVE = {"logs": "techadmin", "personal-data": None, "quarantine": None}


def read_sensitive(
    session: Session,
    actor: Actor,
    what: str,
    *,
    reason: str = "",
    ticket_id: int | None = None,
    account: Account | None = None,
    data: dict | None = None,
    record: bool = True,
) -> Event | None:
    """The one gate for reading log material or a closed account's personal data, from the
    CLI, the TUI or a step: refuses a role below the one ``SENSITIVE`` names
    (and a trainer outside a training database), requires a reason for material, and records
    the read as a ``read-<what>`` event with the reason as its note. ``record=False`` when the
    caller's own event is the record (the ``read-logs`` step records itself)."""
    role = SENSITIVE[what]
    if role:
        require_role(session, actor, role)
        if not clean(reason).strip():
            raise BadInput(_("say why you read this: a reason is recorded with the reading"))
    elif actor.role == "trainer" and not is_training(session):
        raise Refused("training-only", _("the trainer role works only on training databases"))
    if not record:
        return None
    payload = {"what": what, **(data or {})}
    if account is not None:
        payload["status"] = account.status
    return audit.record(
        session,
        actor=actor.login,
        action=f"read-{what}",
        note=clean(reason).strip(),
        ticket_id=ticket_id,
        account_id=account.id if account is not None else None,
        data=payload,
    )
