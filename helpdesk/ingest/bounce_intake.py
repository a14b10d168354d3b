"""What a bounce does to the helpdesk's records. A bounce never opens a ticket of its own.

``helpdesk.ingest.intake`` hands every mail that ``bounces.recognise`` accepts to ``handle``:

- The returned mail is looked up in the outbox: its Message-ID first (``Outbox.message_id``,
  set when the mail left), then the ``[policy #id]`` tag of its subject together with a
  failed recipient equal to the row's address. A match is marked on the outbox row
  (``bounced_at``, ``bounce_kind``, ``bounce_status``, ``bounce_reason``; status ``bounced``
  when delivery failed for good) and recorded on its ticket (event ``mail-bounced``), which
  ``ticket show`` and the outbox list then show. The procedure's state is left as it is: no
  provider's text says what a returned mail changes, so the ticket shows that a person must
  decide (correct the address, send again, reach the requester another way) rather than
  moving it by a rule nobody wrote.
- A refusal for spam or reputation (``blocked``) of a mail the provider sent (one of ours,
  one of its account's, one from its own addresses or mail domains; when the report names
  no sender, the address it is returned to says whose) is also a mail-reputation signal for the provider (signal
  ``blocklist``): an alert on the account that sent the mail, or on the sending domain,
  merged with the open one. A refusal of someone else's mail, returned to the provider's
  address, is an unmatched bounce and no alert.
- A recipient's complaint is a signal against the account that sent the mail (signal
  ``complaint``), as the ARF reader makes it: one that names no account is quarantined with
  its reason, as the ARF reader does, unless it is about a mail of ours (then it is on that
  mail's ticket). A complaint is against someone, never against a domain at large.
- Anything else is an unmatched bounce: kept as evidence (kind ``bounce``, no ticket), never
  quarantined as a request nobody understood.
- A success notice (``delivered``) is recorded and changes nothing.

What is kept is the report's machine-readable part (who, which code, which words), never the
returned message itself: it may carry a reset link's secret or a person's mail.
"""

from __future__ import annotations

import json
from collections import Counter

from sqlmodel import Session, col, select

from helpdesk.base.i18n import _
from helpdesk.ingest import alerts, store
from helpdesk.ingest.addressing import choose_policy, recipients, tagged_tickets
from helpdesk.ingest.bounces import Bounce
from helpdesk.ingest.mailboxes import Item
from helpdesk.ingest.message import ParsedMail
from helpdesk.ingest.pipeline import Outcome, Reject, Run
from helpdesk.storage.models import Account, Outbox, Ticket
from helpdesk.base.untrusted import clean_line, one_line

EVIDENCE_KIND = "bounce"
_EVENTS = {
    "failed": "mail-bounced",
    "blocked": "mail-bounced",
    "delayed": "mail-delayed",
    "complaint": "mail-complaint",
}
_LEFT = ("sent", "uncertain", "bounced")  # statuses of a mail that may have left


def handle(
    session: Session,
    item: Item,
    mail: ParsedMail,
    headers: dict[str, str],
    bounce: Bounce,
    run: Run,
) -> Outcome:
    if bounce.kind == "delivered":
        return Outcome(
            "recorded", details=_details(bounce, "delivered"), extra=Counter(delivery_notices=1)
        )
    row = find_outbox(session, bounce, mail)
    if bounce.kind == "complaint" and row is None and complained_of(bounce, run) is None:
        raise Reject(  # as the ARF reader says it (helpdesk.ingest.reports)
            _("no account for the reported sender ({who})").format(
                who=one_line(bounce.original_from or "?", 200)
            ),
            kind="bounce",
        )
    ticket = session.get(Ticket, row.ticket_id) if row is not None and row.ticket_id else None
    source = f"{item.source} {item.key}"
    if row is not None:
        mark(session, row, bounce, ticket, run)
    details = _details(bounce, "matched" if row is not None else "unmatched")
    extra = Counter(bounces=1) if row is not None else Counter(bounces_unmatched=1)
    if row is not None:
        details["outbox"] = row.id
    alert = None
    if bounce.kind in ("blocked", "complaint"):
        alert = _signal(session, bounce, mail, headers, run, ticket)
    if alert is not None:
        status, alert_ticket = alert
        details["alert"] = alert_ticket.id
        details["signal"] = "blocklist" if bounce.kind == "blocked" else "complaint"
        extra["alerts_" + status] += 1
    tied = ticket.id if ticket is not None else None
    store.keep_evidence(
        session,
        data=metadata(bounce, row),
        kind=EVIDENCE_KIND,
        source=source,
        ticket_id=tied,
        now=run.now,
    )
    return Outcome(
        "recorded", ticket=tied or (alert[1].id if alert else None), details=details, extra=extra
    )


def find_outbox(session: Session, bounce: Bounce, mail: ParsedMail) -> Outbox | None:
    """The mail of ours this bounce returns, if it names one."""
    for message_id in bounce.original_message_ids:
        row = session.exec(
            select(Outbox).where(Outbox.message_id == message_id).order_by(col(Outbox.id).desc())
        ).first()
        if row is not None:
            return row
    recipients = {r.lower() for r in bounce.recipients}
    if not recipients:
        return None
    for subject in (bounce.original_subject, mail.subject or ""):
        for ticket in tagged_tickets(session, subject):
            rows = session.exec(
                select(Outbox)
                .where(Outbox.ticket_id == ticket.id, col(Outbox.status).in_(_LEFT))
                .order_by(col(Outbox.id).desc())
            )
            for row in rows:
                if (row.to_addr or "").lower() in recipients:
                    return row
    return None


def mark(session: Session, row: Outbox, bounce: Bounce, ticket: Ticket | None, run: Run) -> None:
    """The outbox row remembers what came back; its ticket records it."""
    failure = next(
        (f for f in bounce.failures if f.recipient and f.recipient == (row.to_addr or "").lower()),
        None,
    )
    failure = failure or (bounce.failures[0] if bounce.failures else None)
    status = (failure.status if failure else None) or ""
    reason = (failure.reason if failure else "") or bounce.reason or bounce.why
    before = row.status
    if bounce.kind in ("failed", "blocked") or row.bounce_kind not in ("failed", "blocked"):
        row.bounce_kind, row.bounce_status, row.bounce_reason = bounce.kind, status, reason
        row.bounced_at = run.now
    if bounce.kind in ("failed", "blocked") and row.status in ("sent", "uncertain"):
        row.status = "bounced"
    session.add(row)
    if ticket is None:
        return
    data = {
        "outbox": row.id,
        "kind": bounce.kind,
        "status": status,
        "reason": reason,
        "recipient": row.to_addr,
        "template": row.template,
        "reporter": one_line(bounce.reporter, 200),
        "from": before,
        "to": row.status,
    }
    store.record(
        session,
        _EVENTS[bounce.kind],
        ticket=ticket,
        note=f"mail #{row.id} to {row.to_addr}: {reason}",
        data=data,
        now=run.now,
    )
    store.touch(session, ticket, run.now)


def _signal(
    session: Session,
    bounce: Bounce,
    mail: ParsedMail,
    headers: dict[str, str],
    run: Run,
    ticket: Ticket | None,
):
    """A refusal for spam or reputation, or a complaint, about mail we sent: an alert."""
    policy = ticket.policy_key if ticket is not None else None
    if policy is None:
        try:
            policy, _senders = choose_policy(mail, headers, run)
        except Reject:
            return None  # no provider to tell: kept as an unmatched bounce
    if not run.directory.has_queue(policy, alerts.QUEUE):
        return None
    sender = bounce.original_from or ""
    ref = complained_of(bounce, run, policy)
    account = session.get(Account, ref.id) if ref is not None else None
    if bounce.kind == "complaint" and account is None:
        return None  # about a mail of ours: on its ticket, no alert against nobody
    # Whose mail was refused: its sender, else the address the report returns it to (the
    # returned mail's envelope sender).
    returned_to = sender or next((a.lower() for a in mail.to_addrs if "@" in a), "")
    if ticket is None and account is None and not _sent_by(run, policy, returned_to):
        return None  # a refusal of someone else's mail: kept as an unmatched bounce only
    own = next((a for a in _written_to(mail, headers) if "@" in a), "")
    domain = (sender or own).rpartition("@")[2].lower() or None
    failure = bounce.failures[0] if bounce.failures else None
    fields: dict[str, object] = {"sender": sender or None, "domain": domain}
    if bounce.kind == "blocked":
        fields |= {
            "signal": "blocklist",
            "bounces": 1,
            "blocklist": one_line((failure.reason if failure else "") or bounce.reporter, 200)
            or None,
        }
        what = f"Refused as spam or for reputation by {bounce.reporter or 'a receiving server'}"
    else:
        fields |= {"signal": "complaint", "complaints": 1}
        what = f"Complaint about mail from {sender or domain or '?'} ({bounce.reporter or 'unknown reporter'})"
    return alerts.raise_alert(
        session,
        policy=policy,
        account=account,
        fields=fields,
        subject=one_line(what, 300),
        note=one_line(f"{bounce.why}: {bounce.reason or bounce.kind}", 900),
        now=run.now,
    )


def _sent_by(run: Run, policy: str, sender: str) -> bool:
    """Whether the provider sent a mail from ``sender``: one of its own addresses (intake,
    contact), or an address at one of its mail domains (the ``mail_domains`` setting, an
    account's ``domains``). A domain where members merely have addresses (a public mail
    service) is not the provider's."""
    d = run.directory
    domain = sender.rpartition("@")[2].lower().rstrip(".")
    if not domain:
        return False
    return (
        policy in d.intake_policies([sender])
        or policy in d.mail_domains.get(domain, set())
        or any(ref.policy == policy for ref in d.accounts_for_domain(domain))
    )


def complained_of(bounce: Bounce, run: Run, policy: str | None = None):
    """The one account that sent the returned mail (of ``policy``, if given), or None."""
    sender = bounce.original_from or ""
    refs = run.directory.accounts_for_address(sender) if sender else []
    refs = [r for r in refs if policy is None or r.policy == policy]
    return refs[0] if len({r.id for r in refs}) == 1 else None


def _written_to(mail: ParsedMail, headers: dict[str, str]) -> list[str]:
    return recipients(mail, headers)


def _details(bounce: Bounce, match: str) -> dict:
    return {
        "bounce": match,
        "kind": bounce.kind,
        "form": bounce.form,
        "recipients": [one_line(r, 200) for r in bounce.recipients[:5]],
        "status": next((f.status for f in bounce.failures if f.status), None),
        "reason": one_line(bounce.reason, 300) or None,
    }


def metadata(bounce: Bounce, row: Outbox | None) -> bytes:
    """What is kept of a bounce: the report's fields, never the returned message."""
    data = {
        "kind": bounce.kind,
        "form": bounce.form,
        "recognised_by": bounce.why,
        "reporter": clean_line(bounce.reporter)[:300],
        "outbox": row.id if row is not None else None,
        "original_message_id": bounce.original_message_ids[0]
        if bounce.original_message_ids
        else None,
        "original_from": bounce.original_from or None,
        "failures": [
            {
                "recipient": f.recipient,
                "action": f.action or None,
                "status": f.status,
                "code": f.code,
                "reason": f.reason,
            }
            for f in bounce.failures[:50]
        ],
    }
    return (json.dumps(data, ensure_ascii=False, indent=1) + "\n").encode("utf-8")


def rows(session: Session, *, actor=None, unmatched: bool = False, limit: int = 100) -> list[dict]:
    """The bounces received, newest first (``helpdesk outbox bounces``): what each said and
    the mail of ours it returned, if any. A redacted or purged one is gone with its ticket's
    or its own retention period. A role scoped to providers (``actor``) sees its providers'
    tickets' bounces only; the unmatched ones (no ticket) are refused to it (rule ``scope``)."""
    from helpdesk.base import clock
    from helpdesk.base.i18n import _
    from helpdesk.rules.access import check_unscoped
    from helpdesk.storage.models import Evidence

    q = (
        select(Evidence)
        .where(Evidence.kind == EVIDENCE_KIND, col(Evidence.redacted_at).is_(None))
        .order_by(col(Evidence.id).desc())
    )
    if unmatched:
        if actor is not None:
            check_unscoped(actor, _("a bounce of no ticket"))
        q = q.where(col(Evidence.ticket_id).is_(None))
    if actor is not None and actor.policies:
        q = q.join(Ticket, col(Ticket.id) == Evidence.ticket_id).where(
            col(Ticket.policy_key).in_(actor.policies)
        )
    out = []
    for e in session.exec(q.limit(limit)):
        try:
            data = json.loads(bytes(e.content).decode("utf-8"))
        except ValueError:
            continue
        first = (data.get("failures") or [{}])[0]
        out.append(
            {
                "id": e.id,
                "received_at": clock.iso(e.received_at),
                "kind": data.get("kind"),
                "ticket": e.ticket_id,
                "outbox": data.get("outbox"),
                "recipient": first.get("recipient"),
                "status": first.get("status"),
                "reason": first.get("reason") or "",
                "reporter": data.get("reporter") or "",
            }
        )
    return out
