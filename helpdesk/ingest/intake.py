"""Incoming mail becomes a ticket, or is threaded onto the ticket it answers.

For each mail, in this order:

1. Reports arriving in a mailbox (ARF/X-ARF complaints, DMARC aggregate reports) go to
   ``helpdesk.ingest.reports``.
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
   A request that fits no queue, or an automatic message that answers nothing, is
   quarantined too: nothing is lost, and ``helpdesk quarantine`` shows it for triage.

The raw mail is kept as ``Evidence`` with its sha256.
"""

from __future__ import annotations

import email.parser
import email.policy
import ipaddress
import re
from datetime import date
from urllib.parse import urlsplit

from sqlmodel import Session, select

from helpdesk.base import clock
from helpdesk.workflow import engine
from helpdesk.base.errors import HelpdeskError
from helpdesk.base.fields import EMAIL
from helpdesk.ingest import store
from helpdesk.ingest.errors import ParseError
from helpdesk.ingest.mailboxes import Item
from helpdesk.ingest.message import ParsedMail, addresses, parse_mail
from helpdesk.ingest.requests import classify, closure_items, is_acknowledgement, new_text, reports_suspicious_access
from helpdesk.ingest.routing import AccountRef, unique
from helpdesk.ingest.pipeline import Outcome, Reject, Run
from helpdesk.workflow.compose import LOCALES
from helpdesk.storage.models import Account, Ticket
from helpdesk.base.untrusted import one_line

NO_PROVIDER = "no provider for this address"
_TAG = re.compile(r"\[([a-z0-9][a-z0-9-]{0,63}) #(\d{1,12})\]", re.IGNORECASE)
_FEEDBACK_PART = re.compile(rb"content-type:\s*message/feedback-report", re.IGNORECASE)
_DMARC_SUBJECT = re.compile(r"report[ _-]?domain\s*:", re.IGNORECASE)
_DMARC_NAME = re.compile(r"![^!]*!\d{6,}!\d{6,}|\.xml(?:\.gz)?$|\.zip$", re.IGNORECASE)
_IP = re.compile(r"(?<![\w.:])(?:\d{1,3}\.){3}\d{1,3}(?![\w.])|(?<![\w:])[0-9a-f]{1,4}(?::[0-9a-f]{0,4}){2,7}(?![\w:])", re.IGNORECASE)
_URL = re.compile(r"\bhttps?://[^\s<>\"'()\[\]]+", re.IGNORECASE)

# Abuse categories (Indigos art. 5, plus compromised accounts, art. 3) guessed from the text;
# the highest score wins, ties go to the first; the volunteer sees and may change it.
_CATEGORY_RULES = [
    ("compromise", r"phishing|hame[cç]onn|malware|logiciel malveillant|\bvirus|compromis|pirat|hack|defac|botnet"),
    ("harassment", r"harc[eè]l|harass|menace|threat|insult|diffam|usurpation|impersonat"),
    ("illicit-content", r"contenu (?:illicite|ill[eé]gal|haineux)|illegal content|p[eé]do|child abuse|terroris|hate speech"),
    ("illegal", r"droit d'auteur|copyright|\bdmca\b|contrefa[cç]|\bfraud|arnaque|\bscam|escroquer|ill[eé]gal"),
    ("security", r"\bscan|\bddos\b|attaque|attack|brute.?force|intrusion|\bports?\b|login attempt|tentatives? de connexion"),
    ("resources", r"ressources|resources|\bcpu\b|bande passante|bandwidth|surcharge|overload"),
    ("spam", r"\bspam|pourriel|non sollicit|unsolicited|newsletter"),
]
_CATEGORIES = [(name, re.compile(pattern, re.IGNORECASE)) for name, pattern in _CATEGORY_RULES]


def guess_category(text: str) -> str:
    scores = [(len(pattern.findall(text)), -i, name) for i, (name, pattern) in enumerate(_CATEGORIES)]
    best = max(scores)
    return best[2] if best[0] else "spam"


# --- the handler ----------------------------------------------------------------------------


def handle_mail(session: Session, item: Item, digest: str, run: Run) -> Outcome:
    shape = report_shape(item.data)
    if shape is not None:
        from helpdesk.ingest import reports

        return (reports.handle_arf if shape == "arf" else reports.handle_dmarc)(session, item, digest, run)
    try:
        mail = parse_mail(item.data)
    except ParseError as exc:
        raise Reject(f"unreadable mail: {exc.reason}") from None
    if mail.attachments and _carries_dmarc(mail):
        from helpdesk.ingest import reports

        return reports.handle_dmarc(session, item, digest, run)
    known = store.known_message(session, mail.message_id)
    if known is not None:
        return Outcome("duplicate", ticket=known.ticket_id, reason=f"Message-ID {one_line(mail.message_id, 80)} already on #{known.ticket_id}")
    headers = top_headers(item.data)
    ticket, how = thread_target(session, mail)
    if ticket is not None:
        return add_to_ticket(session, item, mail, ticket, how, run)
    auto = (headers.get("auto-submitted") or "no").strip().lower()
    if auto != "no" or headers.get("x-autoreply") or (headers.get("precedence") or "").lower() in ("bulk", "junk", "auto_reply"):
        raise Reject(f"automatic message ({one_line(auto if auto != 'no' else 'bulk/auto-reply', 40)}) that answers no ticket")
    return new_request(session, item, mail, headers, run)


def report_shape(raw: bytes) -> str | None:
    """"arf" for feedback reports and X-ARF, "dmarc" for a bare aggregate report (gzip or zip
    as the message itself); None for anything else (DMARC attachments are found later)."""
    head = top_headers(raw)
    ctype = (head.get("content-type") or "").lower()
    if "multipart/report" in ctype and "feedback-report" in ctype:
        return "arf"
    if (head.get("x-arf") or head.get("x-xarf") or "").strip().lower() not in ("", "no", "false", "0"):
        return "arf"
    if _FEEDBACK_PART.search(raw[:1_000_000]):
        return "arf"  # a feedback report forwarded inside another mail
    if ctype.startswith(("application/gzip", "application/x-gzip", "application/zip", "application/x-zip")):
        return "dmarc"
    return None


def _carries_dmarc(mail: ParsedMail) -> bool:
    if _DMARC_SUBJECT.search(mail.subject or ""):
        return True
    return any(a.filename and _DMARC_NAME.search(a.filename) and a.data[:2] in (b"\x1f\x8b", b"PK") for a in mail.attachments)


def top_headers(raw: bytes) -> dict[str, str]:
    """The top-level headers, first value of each, lower-case names (a cheap parse)."""
    end = raw.find(b"\n\n")
    end2 = raw.find(b"\r\n\r\n")
    cut = min(x for x in (end, end2, 256 * 1024) if x >= 0)
    try:
        msg = email.parser.BytesHeaderParser(policy=email.policy.compat32).parsebytes(raw[: cut + 4])
    except Exception:  # the stdlib parser is tolerant; a failure here only loses hints
        return {}
    out: dict[str, str] = {}
    for name, value in msg.items():
        if isinstance(name, str):
            out.setdefault(name.lower(), str(value))
    return out


# --- threading --------------------------------------------------------------------------------


def thread_target(session: Session, mail: ParsedMail) -> tuple[Ticket | None, str]:
    ids = ([mail.in_reply_to] if mail.in_reply_to else []) + list(reversed(mail.references))
    ticket = store.ticket_for_message_ids(session, ids)
    if ticket is not None:
        return ticket, "references"
    for match in _TAG.finditer(mail.subject or ""):
        found = session.get(Ticket, int(match.group(2)))
        if found is not None and found.policy_key == match.group(1).lower():
            return found, "subject tag"
    if mail.from_addr and is_acknowledgement(mail.subject, mail.text_body) and classify(mail.subject, mail.text_body) is None:
        waiting = list(
            session.exec(
                select(Ticket).where(Ticket.queue == "closure", Ticket.state == "awaiting-ack", Ticket.requester == mail.from_addr.lower())
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
    return account is not None and sender in {a.strip().lower() for a in [account.email, *(account.contacts or [])] if a}


def add_to_ticket(session: Session, item: Item, mail: ParsedMail, ticket: Ticket, how: str, run: Run) -> Outcome:
    now = run.now
    evidence = store.keep_evidence(session, data=item.data, kind="mail", source=f"{item.source} {item.key}", ticket_id=ticket.id, now=now)
    store.add_message_ref(session, mail.message_id, ticket.id, now)
    store.record(
        session,
        "mail-received",
        ticket=ticket,
        note=f"mail from {mail.from_addr or '?'} ({how})",
        data={"evidence": evidence.id, "from": mail.from_addr, "message_id": mail.message_id, "via": how},
        now=now,
    )
    store.touch(session, ticket, now)
    outcome = Outcome("threaded", ticket=ticket.id, details={"queue": ticket.queue, "policy": ticket.policy_key, "via": how})
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
        reason = f"{mail.from_addr or 'an unknown sender'} is neither the requester nor a registered contact of the account"
        store.record(session, "acknowledgement-refused", ticket=ticket, note=reason, data={"rule": "identity"}, now=run.now)
        return False
    try:
        with session.begin_nested():
            engine.apply(session, ticket.id, "acknowledge", store.ACTOR, note=f"acknowledged by mail from {mail.from_addr}", now=run.now)
        return True
    except HelpdeskError as exc:
        data = exc.as_dict()
        store.record(session, "acknowledgement-refused", ticket=ticket, note=str(exc), data={"rule": data.get("rule", data.get("error"))}, now=run.now)
        return False


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
            engine.apply(session, ticket.id, "complete", store.ACTOR, fields=given, note=f"items given by mail from {mail.from_addr}", now=run.now)
    except HelpdeskError as exc:
        store.record(session, "completion-refused", ticket=ticket, note=str(exc), now=run.now)


# --- a new request --------------------------------------------------------------------------


def _today(mail: ParsedMail, tz: str, run: Run) -> date:
    """The day the sender wrote on ("demain" counts from there), if the Date is plausible."""
    when = mail.date
    if when is None or abs((when - run.now).days) > 366:
        when = run.now
    return clock.local_day(when, tz)


def _recipients(mail: ParsedMail, headers: dict[str, str]) -> list[str]:
    found = list(mail.to_addrs) + list(mail.cc_addrs)
    for name in ("delivered-to", "x-original-to", "envelope-to"):
        if headers.get(name):
            found += [a for _n, a in addresses([headers[name]])]
    return [a.strip().lower() for a in found]


def choose_policy(mail: ParsedMail, headers: dict[str, str], run: Run) -> tuple[str, list[AccountRef]]:
    """The provider of a new request and the sender's accounts with that provider."""
    d = run.directory
    senders = d.accounts_for_address(mail.from_addr)
    if run.policy:
        return run.policy, [r for r in senders if r.policy == run.policy]
    written_to = d.intake_policies(_recipients(mail, headers))
    if len(written_to) == 1:
        policy = next(iter(written_to))
        return policy, [r for r in senders if r.policy == policy]
    candidates = {r.policy for r in senders} & written_to if written_to else {r.policy for r in senders}
    if len(candidates) == 1:
        policy = next(iter(candidates))
        return policy, [r for r in senders if r.policy == policy]
    if len(candidates) > 1:
        raise Reject(f"the sender has accounts with several providers ({', '.join(sorted(candidates))}) and wrote to none of their intake addresses")
    if written_to:
        raise Reject(f"written to several providers ({', '.join(sorted(written_to))}) by a sender known to none of them")
    raise Reject(NO_PROVIDER)


def _account_named(run: Run, policy: str, name: str | None) -> AccountRef | None:
    if not name:
        return None
    refs = [r for r in run.directory.accounts_for_login(name) + run.directory.accounts_for_address(name) if r.policy == policy]
    return unique(refs)


def _reported_account(run: Run, policy: str, text: str) -> tuple[AccountRef | None, str | None, str | None]:
    """For an abuse report: an account hosted at an IP or site the text names."""
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
    refs = [r for ip in ips for r in run.directory.accounts_for_ip(ip)] + [r for h in hosts for r in run.directory.accounts_for_domain(h)]
    return unique([r for r in refs if r.policy == policy]), (ips[0] if ips else None), (urls[0] if urls else None)


def new_request(session: Session, item: Item, mail: ParsedMail, headers: dict[str, str], run: Run) -> Outcome:
    d = run.directory
    policy, senders = choose_policy(mail, headers, run)
    info = d.policy(policy)
    if info is None:
        raise Reject(f"unknown policy {policy!r}")
    body = mail.text_body or ""
    queue = run.queue or classify(mail.subject, body)
    if queue is None:
        raise Reject("request not understood: not a password reset, closure, abuse or mail-reputation request")
    if queue not in info.queues:
        raise Reject(f"{policy} has no {queue} procedure")
    sender = (mail.from_addr or "").strip().lower()
    requester = sender if EMAIL.match(sender) else ""
    fields: dict = {}
    notes = [f"received by mail from {sender or '?'}"]
    account: AccountRef | None = None
    if queue == "abuse":
        # The sender reports someone else: the account is the one reported, never the sender's.
        text = new_text(body)
        account, ip, url = _reported_account(run, policy, text)
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
            notes.append("several accounts match the sender: " + ", ".join(sorted({r.login for r in senders})))
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
    store.keep_evidence(session, data=item.data, kind="mail", source=f"{item.source} {item.key}", ticket_id=ticket.id, now=run.now)
    store.add_message_ref(session, mail.message_id, ticket.id, run.now)
    details = {"queue": queue, "policy": policy, "account": acc.login if acc else None, "state": ticket.state}
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
