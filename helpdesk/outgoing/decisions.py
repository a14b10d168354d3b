"""What a person decides about a mail delivery could not settle on its own.

Delivery (``helpdesk.outgoing.delivery``) retries what certainly did not leave, by itself. Three
statuses wait for a person instead, and ``helpdesk outbox list --status ...`` shows them:

- ``held``: a value is missing (a sender address, a reset page): ``helpdesk policy set``;
  held mails leave at the next ``outbox send`` once it is given. ``retry`` makes one due now.
- ``failed``: the server refused it for good, or every retry failed. ``retry`` puts it back
  in the queue with a fresh round of attempts (the address was corrected, the relay fixed).
- ``bounced``: it left, and the receiving side returned it (``helpdesk.ingest.bounce_intake``
  records the server's reason). ``retry --note`` sends it again once the cause is dealt with
  (a full mailbox emptied, a refusal lifted); a dead address needs another address instead.
- ``uncertain``: the connection broke after the server took the message; it may or may not
  have arrived. Nothing ever resends it by itself. The person who checked (the relay's
  log, the recipient) decides: ``mark-sent`` when it did arrive, ``retry --note`` when it
  did not. A resent mail keeps its Message-ID, so a copy that did arrive after all is the
  same message to the recipient's mail client; a resent reset link gets a new secret and
  the old one stops working.

Both need the oncall role (or above) and are audited (``mail-retry-ordered``,
``mail-marked-sent``) with the person's note. A reset-link mail can only leave through
delivery (its secret exists only in the message that leaves): ``mark-sent`` is refused for
one that never left, and ``retry`` for one whose link expired or was used.
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session

from helpdesk.storage import audit
from helpdesk.base import clock
from helpdesk.rules.context import Actor
from helpdesk.workflow.engine import require_role
from helpdesk.base.errors import BadInput, NotFound, Refused
from helpdesk.base.i18n import _
from helpdesk.storage.models import Outbox, ResetToken
from helpdesk.base.untrusted import clean

WAITING = ("held", "failed", "uncertain", "bounced")
ROLE = "oncall"


def _load(
    session: Session, outbox_id: int, actor: Actor, action: str, note: str
) -> tuple[Outbox, str]:
    require_role(session, actor, ROLE)
    row = session.get(Outbox, outbox_id, with_for_update=True, populate_existing=True)
    if row is None:
        raise NotFound(_("no mail #{id} in the outbox").format(id=outbox_id))
    if row.status not in WAITING or (row.status == "bounced" and action == "mark-sent"):
        raise Refused(
            "outbox-status",
            _(
                "mail #{id} is {status}: only held, failed, uncertain or bounced mails wait for a decision, and a bounced mail did not arrive"
            ).format(id=row.id, status=row.status),
        )
    if not row.to_addr or not row.body:
        raise Refused(
            "retention",
            _("mail #{id} was emptied by retention: there is nothing left to send").format(
                id=row.id
            ),
        )
    note = clean(note or "").strip()
    if not note and (action == "mark-sent" or row.status in ("uncertain", "bounced")):
        raise BadInput(
            _("{action} needs a note recording the reason (--note)").format(action=action)
        )
    return row, note


def retry(
    session: Session, outbox_id: int, actor: Actor, *, note: str = "", now: datetime | None = None
) -> Outbox:
    """Put a held, failed or uncertain mail back in the queue, due now, with a fresh round
    of attempts. An uncertain one needs a note: someone checked it did not arrive."""
    now = now or clock.now()
    row, note = _load(session, outbox_id, actor, "retry", note)
    if row.token_id is not None:
        token = session.get(ResetToken, row.token_id)
        if token is None or token.used_at is not None:
            raise Refused(
                "reset-link",
                _("the reset link of mail #{id} was already used: open a new reset instead").format(
                    id=row.id
                ),
            )
        if now >= token.expires_at:
            raise Refused(
                "reset-link",
                _(
                    "the reset link of mail #{id} expired on {when}: issue a new one on the ticket"
                ).format(id=row.id, when=clock.iso(token.expires_at)),
            )
    before = {"status": row.status, "attempts": row.attempts, "error": row.last_error}
    row.status, row.attempts, row.last_error, row.next_attempt_at = "pending", 0, "", now
    session.add(row)
    audit.record(
        session,
        actor=actor.login,
        action="mail-retry-ordered",
        ticket_id=row.ticket_id,
        note=note,
        at=now,
        data={"outbox": row.id, "from": before},
    )
    return row


def mark_sent(
    session: Session, outbox_id: int, actor: Actor, *, note: str, now: datetime | None = None
) -> Outbox:
    """Record that a held, failed or uncertain mail did reach its recipient (checked in the
    relay's log, or sent by other means); the note says how it is known."""
    from helpdesk.outgoing.delivery import remember_message_id

    now = now or clock.now()
    row, note = _load(session, outbox_id, actor, "mark-sent", note)
    if row.token_id is not None and row.status != "uncertain":
        raise Refused(
            "reset-link",
            _(
                "mail #{id} carries a reset link, which can only leave through delivery: use retry"
            ).format(id=row.id),
        )
    before = {"status": row.status, "attempts": row.attempts, "error": row.last_error}
    row.status, row.sent_at, row.next_attempt_at, row.last_error = "sent", now, None, ""
    session.add(row)
    remember_message_id(session, row, now)
    audit.record(
        session,
        actor=actor.login,
        action="mail-marked-sent",
        ticket_id=row.ticket_id,
        note=note,
        at=now,
        data={"outbox": row.id, "from": before, "message_id": row.message_id},
    )
    return row
