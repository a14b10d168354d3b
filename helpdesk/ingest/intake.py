"""Incoming mail becomes a ticket, or is threaded onto the ticket it answers.

For each mail, in this order:

1. Reports arriving in a mailbox (ARF/X-ARF complaints, DMARC aggregate reports) go to
   ``helpdesk.ingest.reports``; delivery status notifications (bounces, in any of their
   forms: ``helpdesk.ingest.bounces``) to ``helpdesk.ingest.bounce_intake``, and never open
   a ticket.
2. A Message-ID already on a ticket: a duplicate (the same mail delivered twice).
3. Threading: In-Reply-To, then References (newest first), against the Message-IDs the
   helpdesk received or sent (``MessageRef`` rows, written for every delivered mail), then the subject tag ``[policy #id]``, then — for a bare "je confirme"
   with no thread at all — the one closure of that sender awaiting an acknowledgement.
   A threaded mail is kept on its ticket; an acknowledgement of a closure confirmation is
   recorded through the engine (``acknowledge``, actor ``intake``) when the sender is the
   requester or a registered contact; a refusal is recorded on the ticket with its reason.
   A reply bringing the missing items of an incomplete closure completes it.
4. A new request: the provider comes from the address written to (pack param ``intake``, or
   the policy's ``contact``) or, failing that, from the sender's account; the queue from the
   text (French or English); the account from the sender (its email or declared contacts) or
   the account the request names. No provider: quarantined, "no provider for this address".
   A request that is none of the four procedures is a person writing: a ticket of the
   plain ``general`` queue, which a volunteer answers or converts (``ticket convert``). The
   words that chose the queue are recorded (a ``classified`` event) so a misfiled request
   shows. An automatic message that answers nothing, or an empty one, is quarantined:
   nothing is lost, and ``helpdesk quarantine`` shows it for triage.

The raw mail is kept as ``Evidence`` with its sha256, and its text as a ``Message`` of the
ticket's conversation (``helpdesk.storage.messages``).
"""

from __future__ import annotations

import ipaddress
import re
from datetime import date
from urllib.parse import urlsplit

from sqlmodel import Session, select

from helpdesk.base.i18n import _
from helpdesk.base import clock
from helpdesk.workflow import engine
from helpdesk.storage import messages
from helpdesk.base.errors import HelpdeskError
from helpdesk.base.fields import EMAIL
from helpdesk.ingest import store
from helpdesk.ingest.errors import ParseError
from helpdesk.ingest.mime import top_headers  # noqa: F401 - intake.top_headers
from helpdesk.ingest.mailboxes import Item
from helpdesk.ingest.items import parsed
from helpdesk.ingest.message import ParsedMail, parse_mail
from helpdesk.ingest.requests import (
    classify,
    classify_explained,
    closure_items,
    is_acknowledgement,
    new_text,
    reports_suspicious_access,
)
from helpdesk.ingest.addressing import NO_PROVIDER, choose_policy, recipients, tagged_tickets  # noqa: F401 - intake.*
from helpdesk.ingest.routing import AccountRef, unique
from helpdesk.ingest.pipeline import Outcome, Reject, Run
from helpdesk.workflow.compose import LOCALES
from helpdesk.storage.models import Account, Ticket
from helpdesk.base.queues import GENERAL
from helpdesk.base.untrusted import one_line


_FEEDBACK_PART = re.compile(rb"content-type:\s*message/feedback-report", re.IGNORECASE)
# Automatic replies that carry no Auto-Submitted header (RFC 3834) say so in their subject.
_AUTO_REPLY_SUBJECT = re.compile(
    r"\s*(?:automatic reply|auto[- ]?reply|auto[- ]?response|autorespons\w*|out of (?:the )?office|"
    r"r[ée]ponse automatique|absence|abwesenheitsnotiz|automatische antwort)\b",
    re.IGNORECASE,
)
_DMARC_SUBJECT = re.compile(r"report[ _-]?domain\s*:", re.IGNORECASE)
_DMARC_NAME = re.compile(r"![^!]*!\d{6,}!\d{6,}|\.xml(?:\.gz)?$|\.zip$", re.IGNORECASE)
_IP = re.compile(
    r"(?<![\w.:])(?:\d{1,3}\.){3}\d{1,3}(?![\w.])|(?<![\w:])[0-9a-f]{1,4}(?::[0-9a-f]{0,4}){2,7}(?![\w:])",
    re.IGNORECASE,
)
_URL = re.compile(r"\bhttps?://[^\s<>\"'()\[\]]+", re.IGNORECASE)
_ADDRESS = re.compile(r"[\w.+-]{1,64}@[\w-]{1,63}(?:\.[\w-]{1,63})+", re.UNICODE)

# Abuse categories (Indigos art. 5, plus compromised accounts, art. 3) guessed from the text;
# the highest score wins, ties go to the first; the volunteer sees and may change it.
_CATEGORY_RULES = [
    (
        "compromise",
        r"phishing|hame[cç]onn|malware|logiciel malveillant|\bvirus|compromis|pirat|hack|defac|botnet",
    ),
    ("harassment", r"harc[eè]l|harass|menace|threat|insult|diffam|usurpation|impersonat"),
    (
        "illicit-content",
        r"contenu (?:illicite|ill[eé]gal|haineux)|illegal content|p[eé]do|child abuse|terroris|hate speech",
    ),
    (
        "illegal",
        r"droit d'auteur|copyright|\bdmca\b|contrefa[cç]|\bfraud|arnaque|\bscam|escroquer|ill[eé]gal",
    ),
    (
        "security",
        r"\bscan|\bddos\b|attaque|attack|brute.?force|intrusion|\bports?\b|login attempt|tentatives? de connexion",
    ),
    ("resources", r"ressources|resources|\bcpu\b|bande passante|bandwidth|surcharge|overload"),
    ("spam", r"\bspam|pourriel|non sollicit|unsolicited|newsletter"),
]
_CATEGORIES = [(name, re.compile(pattern, re.IGNORECASE)) for name, pattern in _CATEGORY_RULES]


def guess_category(text: str) -> str:
    scores = [
        (len(pattern.findall(text)), -i, name) for i, (name, pattern) in enumerate(_CATEGORIES)
    ]
    best = max(scores)
    return best[2] if best[0] else "spam"


# --- the handler ----------------------------------------------------------------------------


def prepare_mail(item: Item) -> None:
    """Parse the item before its write transaction (``pipeline.ingest_one``): what
    ``handle_mail`` will need, kept on the item. Errors are kept too, and met again there."""
    shape = parsed(item, report_shape)
    if shape is not None:
        from helpdesk.ingest import reports

        (reports.prepare_arf if shape == "arf" else reports.prepare_dmarc)(item)
        return
    mail = parsed(item, parse_mail)
    if mail.attachments and _carries_dmarc(mail):
        from helpdesk.ingest import reports

        reports.prepare_dmarc(item)
        return
    parsed(item, _bounce)


def handle_mail(session: Session, item: Item, digest: str, run: Run) -> Outcome:
    shape = parsed(item, report_shape)
    if shape is not None:
        from helpdesk.ingest import reports

        return (reports.handle_arf if shape == "arf" else reports.handle_dmarc)(
            session, item, digest, run
        )
    try:
        mail = parsed(item, parse_mail)
    except ParseError as exc:
        raise Reject(_("unreadable mail: {reason}").format(reason=exc.reason)) from None
    if mail.attachments and _carries_dmarc(mail):
        from helpdesk.ingest import reports

        return reports.handle_dmarc(session, item, digest, run)
    bounce = parsed(item, _bounce)
    if bounce is not None:
        from helpdesk.ingest import bounce_intake

        return bounce_intake.handle(session, item, mail, top_headers(item.data), bounce, run)
    known = store.known_message(session, mail.message_id)
    if known is not None:
        return Outcome(
            "duplicate",
            ticket=known.ticket_id,
            reason=_("Message-ID {mid} already on #{ticket}").format(
                mid=one_line(mail.message_id, 80), ticket=known.ticket_id
            ),
        )
    headers = top_headers(item.data)
    ticket, how = thread_target(session, mail)
    if ticket is not None:
        return add_to_ticket(session, item, mail, ticket, how, run)
    auto = (headers.get("auto-submitted") or "no").strip().lower()
    if (
        auto != "no"
        or headers.get("x-autoreply")
        or (headers.get("precedence") or "").lower() in ("bulk", "junk", "auto_reply")
    ):
        raise Reject(
            _("automatic message ({kind}) that answers no ticket").format(
                kind=one_line(auto if auto != "no" else "bulk/auto-reply", 40)
            )
        )
    if _AUTO_REPLY_SUBJECT.match(mail.subject or ""):
        raise Reject(
            _("automatic message (an automatic reply, by its subject) that answers no ticket")
        )
    return new_request(session, item, mail, headers, run)


handle_mail.prepare = prepare_mail  # type: ignore[attr-defined]


def _bounce(raw: bytes):
    """The delivery report this mail is (``helpdesk.ingest.bounces``), or None."""
    from helpdesk.ingest.bounces import recognise

    try:
        return recognise(raw)
    except ParseError:
        return None


def report_shape(raw: bytes) -> str | None:
    """ "arf" for feedback reports and X-ARF, "dmarc" for a bare aggregate report (gzip or zip
    as the message itself); None for anything else (DMARC attachments are found later)."""
    head = top_headers(raw)
    ctype = (head.get("content-type") or "").lower()
    if "multipart/report" in ctype and "feedback-report" in ctype:
        return "arf"
    if (head.get("x-arf") or head.get("x-xarf") or "").strip().lower() not in (
        "",
        "no",
        "false",
        "0",
    ):
        return "arf"
    if _FEEDBACK_PART.search(raw[:1_000_000]):
        return "arf"  # a feedback report forwarded inside another mail
    if ctype.startswith(
        ("application/gzip", "application/x-gzip", "application/zip", "application/x-zip")
    ):
        return "dmarc"
    return None


def _carries_dmarc(mail: ParsedMail) -> bool:
    if _DMARC_SUBJECT.search(mail.subject or ""):
        return True
    return any(
        a.filename and _DMARC_NAME.search(a.filename) and a.data[:2] in (b"\x1f\x8b", b"PK")
        for a in mail.attachments
    )


# --- threading --------------------------------------------------------------------------------


def thread_target(session: Session, mail: ParsedMail) -> tuple[Ticket | None, str]:
    """The ticket a mail answers, and how it was found; a merged ticket's mail goes where
    it was merged (``ticket merge``)."""
    ticket, how = _thread_target(session, mail)
    return (merged_target(session, ticket), how) if ticket is not None else (None, how)


def merged_target(session: Session, ticket: Ticket) -> Ticket:
    seen = {ticket.id}
    while ticket.merged_into is not None and ticket.merged_into not in seen:
        ticket = session.get(Ticket, ticket.merged_into)
        seen.add(ticket.id)
    return ticket


def _thread_target(session: Session, mail: ParsedMail) -> tuple[Ticket | None, str]:
    ids = ([mail.in_reply_to] if mail.in_reply_to else []) + list(reversed(mail.references))
    ticket = store.ticket_for_message_ids(session, ids)
    if ticket is not None:
        return ticket, "references"
    for found in tagged_tickets(session, mail.subject):
        return found, "subject tag"
    if (
        mail.from_addr
        and is_acknowledgement(mail.subject, mail.text_body)
        and classify(mail.subject, mail.text_body) is None
    ):
        waiting = list(
            session.exec(
                select(Ticket).where(
                    Ticket.queue == "closure",
                    Ticket.state == "awaiting-ack",
                    Ticket.requester == mail.from_addr.lower(),
                )
            )
        )
        if len(waiting) == 1:
            return waiting[0], "sender awaiting acknowledgement"
    return None, ""


def _speaks_for(session: Session, ticket: Ticket, sender: str | None) -> bool:
    sender = (sender or "").strip().lower()
    if not sender:
        return False
    if sender == (ticket.requester or "").lower():
        return True
    account = session.get(Account, ticket.account_id) if ticket.account_id else None
    return account is not None and sender in {
        a.strip().lower() for a in [account.email, *(account.contacts or [])] if a
    }


def add_to_ticket(
    session: Session, item: Item, mail: ParsedMail, ticket: Ticket, how: str, run: Run
) -> Outcome:
    now = run.now
    evidence = store.keep_evidence(
        session,
        data=item.data,
        kind="mail",
        source=f"{item.source} {item.key}",
        ticket_id=ticket.id,
        now=now,
    )
    store.add_message_ref(session, mail.message_id, ticket.id, now)
    message = messages.record_incoming(session, ticket.id, mail, evidence_id=evidence.id, now=now)
    store.record(
        session,
        "mail-received",
        ticket=ticket,
        note=f"mail from {mail.from_addr or '?'} ({how})",
        data={
            "evidence": evidence.id,
            "message": message.id,
            "from": mail.from_addr,
            "message_id": mail.message_id,
            "via": how,
        },
        now=now,
    )
    store.touch(session, ticket, now)
    outcome = Outcome(
        "threaded",
        ticket=ticket.id,
        details={"queue": ticket.queue, "policy": ticket.policy_key, "via": how},
    )
    if ticket.queue == GENERAL and ticket.state != "received":
        _reopen(session, ticket, mail, run)  # the person wrote again: it needs reading
    if ticket.queue != "closure" or ticket.state_kind == "done":
        return outcome
    if is_acknowledgement(mail.subject, mail.text_body):
        outcome.acknowledged = _acknowledge(session, ticket, mail, run)
        if not outcome.acknowledged:
            outcome.details["acknowledgement"] = "refused"
    elif ticket.state == "incomplete":
        _complete(session, ticket, mail, run)
    return outcome


def _acknowledge(session: Session, ticket: Ticket, mail: ParsedMail, run: Run) -> bool:
    if not _speaks_for(session, ticket, mail.from_addr):
        reason = _(
            "{sender} is neither the requester nor a registered contact of the account"
        ).format(sender=mail.from_addr or _("an unknown sender"))
        store.record(
            session,
            "acknowledgement-refused",
            ticket=ticket,
            note=reason,
            data={"rule": "identity"},
            now=run.now,
        )
        return False
    try:
        with session.begin_nested():
            engine.apply(
                session,
                ticket.id,
                "acknowledge",
                store.ACTOR,
                note=f"acknowledged by mail from {mail.from_addr}",
                now=run.now,
            )
        return True
    except HelpdeskError as exc:
        data = exc.as_dict()
        store.record(
            session,
            "acknowledgement-refused",
            ticket=ticket,
            note=str(exc),
            data={"rule": data.get("rule", data.get("error"))},
            now=run.now,
        )
        return False


def _reopen(session: Session, ticket: Ticket, mail: ParsedMail, run: Run) -> None:
    try:
        with session.begin_nested():
            engine.apply(
                session,
                ticket.id,
                "reopen",
                store.ACTOR,
                note=f"mail from {mail.from_addr or '?'}",
                now=run.now,
            )
    except HelpdeskError as exc:
        store.record(session, "reopen-refused", ticket=ticket, note=str(exc), now=run.now)


def _complete(session: Session, ticket: Ticket, mail: ParsedMail, run: Run) -> None:
    info = run.directory.policy(ticket.policy_key)
    items = closure_items(mail.text_body, _today(mail, info.timezone if info else "UTC", run))
    fields = dict(ticket.fields or {})
    given = {}
    if items.get("system") and not fields.get("system"):
        given["system"] = items["system"]
    if items.get("day") and not fields.get("day"):
        given["day"] = items["day"].isoformat()
    if not given or not all((fields | given).get(f) for f in ("system", "day")):
        return
    try:
        with session.begin_nested():
            engine.apply(
                session,
                ticket.id,
                "complete",
                store.ACTOR,
                fields=given,
                note=f"items given by mail from {mail.from_addr}",
                now=run.now,
            )
    except HelpdeskError as exc:
        store.record(session, "completion-refused", ticket=ticket, note=str(exc), now=run.now)


# --- a new request --------------------------------------------------------------------------


def _today(mail: ParsedMail, tz: str, run: Run) -> date:
    """The day the sender wrote on ("demain" counts from there), if the Date is plausible."""
    when = mail.date
    if when is None or abs((when - run.now).days) > 366:
        when = run.now
    return clock.local_day(when, tz)


def _account_named(run: Run, policy: str, name: str | None) -> AccountRef | None:
    if not name:
        return None
    refs = [
        r
        for r in run.directory.accounts_for_login(name) + run.directory.accounts_for_address(name)
        if r.policy == policy
    ]
    return unique(refs)


def _reported_account(
    run: Run, policy: str, text: str
) -> tuple[list[AccountRef], str | None, str | None]:
    """For an abuse report (a third party complaining): the accounts of ``policy`` the text
    names (an account's address, a site or mail domain it hosts, one of its ``ips``), the
    first IP and the first URL. One clear match is attached; several are only candidates."""
    ips, hosts = [], []
    for match in _IP.finditer(text):
        try:
            ips.append(str(ipaddress.ip_address(match.group(0))))
        except ValueError:
            continue
    urls = _URL.findall(text)
    for url in urls:
        try:
            host = urlsplit(url.rstrip(".,;:!?")).hostname
        except ValueError:
            host = None
        if host:
            hosts.append(host)
    d = run.directory
    named = [a.lower().rstrip(".") for a in _ADDRESS.findall(_URL.sub(" ", text))]
    refs = [r for ip in ips for r in d.accounts_for_ip(ip)] + [
        r for h in hosts for r in d.accounts_for_domain(h)
    ]
    refs += [
        r
        for a in named
        for r in d.accounts_for_address(a) + d.accounts_for_domain(a.rpartition("@")[2])
    ]
    found = list({r.id: r for r in refs if r.policy == policy}.values())
    return found, (ips[0] if ips else None), (urls[0] if urls else None)


def new_request(
    session: Session, item: Item, mail: ParsedMail, headers: dict[str, str], run: Run
) -> Outcome:
    d = run.directory
    policy, senders = choose_policy(mail, headers, run)
    info = d.policy(policy)
    if info is None:
        raise Reject(_("unknown provider {policy!r}").format(policy=policy))
    body = mail.text_body or ""
    if not body.strip() and not (mail.subject or "").strip() and not mail.attachments:
        raise Reject(_("empty mail: no subject, no text, no attachment"))
    queue, matched = (run.queue, []) if run.queue else classify_explained(mail.subject, body)
    # A request that is none of the procedures is a person writing: the plain queue.
    queue = queue or GENERAL
    if queue not in info.queues:
        raise Reject(_("{policy} has no {queue} procedure").format(policy=policy, queue=queue))
    sender = (mail.from_addr or "").strip().lower()
    requester = sender if EMAIL.match(sender) else ""
    fields: dict = {}
    notes = [f"received by mail from {sender or '?'}"]
    if run.queue:
        notes.append(f"queue {queue} set by the ingest run")
    elif matched:
        notes.append(f"classified as {queue}: " + ", ".join(f"«{w}»" for w in matched))
    else:
        notes.append("classified as general: none of the procedures' words were found")
    account: AccountRef | None = None
    candidates: list[AccountRef] = []
    if queue == "abuse":
        # The sender reports someone else: the account is the one reported, never the sender's.
        text = new_text(body)
        candidates, ip, url = _reported_account(run, policy, f"{mail.subject or ''}\n{text}")
        account = unique(candidates)
        if account is None and candidates:
            notes.append(
                "several accounts are named, none chosen: "
                + ", ".join(sorted(r.login for r in candidates))
            )
        fields["category"] = guess_category(f"{mail.subject}\n{text}")
        notes.append(f"category guessed from the text: {fields['category']}")
        if requester:
            fields["reporter"] = requester
        if ip:
            fields["source-ip"] = ip
        if url:
            fields["url"] = one_line(url, 300)
    else:
        today = _today(mail, info.timezone, run)
        items = closure_items(body, today) if queue == "closure" else {}
        account = _account_named(run, policy, items.get("account")) or unique(senders)
        if account is None and len({r.id for r in senders}) > 1:
            notes.append(
                "several accounts match the sender: "
                + ", ".join(sorted({r.login for r in senders}))
            )
        if queue == "password-reset" and reports_suspicious_access(body):
            fields["suspicious"] = True
        elif queue == "closure":
            fields.update(_closure_fields(info.params, items, today))
        elif queue == "mail-reputation":
            fields.update({"signal": "manual", "sender": requester or None})
    if account is None and queue != "abuse":
        notes.append(f"no account of {policy} matches {sender or 'the sender'}")
    lang = mail.lang_guess if mail.lang_guess in LOCALES else None
    acc = session.get(Account, account.id) if account else None
    opened = engine.open_ticket(
        session,
        queue=queue,
        policy_key=policy,
        actor=store.ACTOR,
        account=acc,
        requester=requester,
        subject=one_line(mail.subject or "", 300),
        fields={k: v for k, v in fields.items() if v is not None},
        lang=lang,
        note="; ".join(notes),
        now=run.now,
    )
    ticket = opened.ticket
    evidence = store.keep_evidence(
        session,
        data=item.data,
        kind="mail",
        source=f"{item.source} {item.key}",
        ticket_id=ticket.id,
        now=run.now,
    )
    store.add_message_ref(session, mail.message_id, ticket.id, run.now)
    message = messages.record_incoming(
        session, ticket.id, mail, evidence_id=evidence.id, now=run.now
    )
    store.record(
        session,
        "classified",
        ticket=ticket,
        note=notes[1],
        data={
            "queue": queue,
            "words": matched,
            "by": "run" if run.queue else "text",
            "message": message.id,
            "candidates": sorted(r.login for r in candidates) if len(candidates) > 1 else [],
        },
        now=run.now,
    )
    details: dict[str, object] = {
        "queue": queue,
        "policy": policy,
        "account": acc.login if acc else None,
        "state": ticket.state,
    }
    if len(candidates) > 1:
        details["candidates"] = sorted(r.login for r in candidates)
    if ticket.fields.get("suspicious"):
        linked = [t.id for t in session.exec(select(Ticket).where(Ticket.parent_id == ticket.id))]
        if linked:
            details["linked"] = linked
    return Outcome("opened", ticket=ticket.id, details=details)


def _closure_fields(params: dict, items: dict, today: date) -> dict:
    reasons = params.get("closure_reasons") or ["request"]
    fields: dict = {}
    if "request" in reasons:
        fields["reason"] = "request"
    elif "non-renewal" in reasons:
        # CommunesPlone art. 8: a non-renewal asked for; the dates are computed from the
        # request's day (a letter is what the convention requires: the volunteer checks).
        fields.update({"reason": "non-renewal", "request-date": today.isoformat(), "letter": False})
    else:
        fields["reason"] = reasons[0]
    if items.get("system"):
        fields["system"] = items["system"]
    if items.get("day"):
        fields["day"] = items["day"].isoformat()
    return fields
