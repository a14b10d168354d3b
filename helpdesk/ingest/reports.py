"""Abuse and reputation reports: ARF (RFC 5965) and X-ARF complaints, DMARC aggregate reports.

ARF feedback of type abuse, fraud or virus is a complaint about one of our senders: a
mail-reputation alert (signal ``complaint``) on the reported account, found from
Original-Mail-From, the SASL login in Authentication-Results, or the Source-IP (account field
``ips``). ``auth-failure`` reports (RFC 6591) are a DMARC signal. A pack without a
mail-reputation procedure gets an abuse ticket (category spam) instead. Other feedback types
(opt-out, not-spam...) ask nothing of a provider's volunteers and are quarantined with that
reason, as is a report whose account cannot be found.

Alerts hold figures and metadata only: for a complaint, the evidence kept is the report's
machine-readable fields (who reported, when, which sender, IP and domain, the reported
message's Message-ID), never the reported message itself (Indigos art. 7: vigilance without
monitoring members' mail). X-ARF reports (hosted sites and IPs caught attacking, phishing,
spreading malware) become abuse tickets in the category their type maps to, with the report
kept whole.

DMARC aggregate reports become per-domain pass/fail figures (``DmarcStat``, one row per
reporter + report id + domain), and a mail-reputation alert (signal ``dmarc``) when a domain's
failures in one report reach the provider's ``dmarc_fail_min`` and exceed its
``dmarc_fail_ratio`` of the messages reported.
"""

from __future__ import annotations

import re
from collections import Counter

from sqlmodel import Session, select

from helpdesk.base.i18n import _
from helpdesk.ingest.mime import top_headers
from helpdesk.base import clock
from helpdesk.workflow import engine
from helpdesk.ingest import alerts, store
from helpdesk.ingest.arf import ArfReport, parse_arf
from helpdesk.ingest.dmarc import DmarcReport, extract_reports_from_mail, parse_dmarc, summarise
from helpdesk.ingest.errors import ParseError
from helpdesk.ingest.mailboxes import Item
from helpdesk.ingest.items import parsed
from helpdesk.ingest.routing import AccountRef, unique
from helpdesk.ingest.pipeline import Outcome, Reject, Run
from helpdesk.storage.models import Account, DmarcStat
from helpdesk.base.untrusted import clean_line, one_line

COMPLAINT_TYPES = ("abuse", "fraud", "virus")
DMARC_FAIL_MIN = 10  # defaults when a pack sets no dmarc_fail_min / dmarc_fail_ratio
DMARC_FAIL_RATIO = 0.1

# X-ARF Report-Type (then Category) -> abuse category (Indigos art. 5, compromise art. 3)
XARF_CATEGORIES = {
    "spam": "spam",
    "regbot": "spam",
    "harvesting": "security",
    "login-attack": "security",
    "bruteforce": "security",
    "ssh": "security",
    "portscan": "security",
    "scan": "security",
    "ids-alert": "security",
    "hack-attack": "security",
    "attack": "security",
    "ddos": "security",
    "dos": "security",
    "malware-attack": "compromise",
    "malware": "compromise",
    "phishing": "compromise",
    "phishing-site": "compromise",
    "defacement": "compromise",
    "botnet": "compromise",
    "bot": "compromise",
    "compromised": "compromise",
    "copyright": "illegal",
    "dmca": "illegal",
    "trademark": "illegal",
    "fraud": "illegal",
    "scam": "illegal",
    "child-abuse": "illicit-content",
    "illegal-content": "illicit-content",
    "harassment": "harassment",
    "threat": "harassment",
}


def xarf_category(report: ArfReport) -> str | None:
    lower = {k.lower(): v.strip().lower() for k, v in report.xarf.items()}
    for value in (
        lower.get("report-type"),
        lower.get("report.reporttype"),
        lower.get("category"),
        lower.get("report.category"),
    ):
        if not value:
            continue
        if value in XARF_CATEGORIES:
            return XARF_CATEGORIES[value]
        for word in re.split(r"[^a-z]+", value):
            if word in XARF_CATEGORIES:
                return XARF_CATEGORIES[word]
    return None


# --- ARF and X-ARF ---------------------------------------------------------------------------


def reported_account(run: Run, report: ArfReport) -> tuple[AccountRef | None, str]:
    """The account a report is about, and how it was found."""
    d = run.directory
    for label, value, lookup in (
        (
            "Original-Mail-From",
            report.original_mail_from,
            lambda v: d.accounts_for_address(v) or d.accounts_for_login(v),
        ),
        (
            "SASL user",
            report.sasl_user,
            lambda v: d.accounts_for_login(v) or d.accounts_for_address(v),
        ),
        ("Source-IP", report.source_ip, d.accounts_for_ip),
    ):
        if value:
            refs = lookup(value)
            if run.policy:
                refs = [r for r in refs if r.policy == run.policy]
            found = unique(refs)
            if found is not None:
                return found, label
    for domain in report.reported_domains if report.kind == "xarf" else []:
        found = unique(
            [r for r in d.accounts_for_domain(domain) if not run.policy or r.policy == run.policy]
        )
        if found is not None:
            return found, "reported domain"
    return None, ""


def _identity(report: ArfReport) -> str:
    parts = []
    if report.original_mail_from:
        parts.append(f"Original-Mail-From {report.original_mail_from}")
    if report.sasl_user:
        parts.append(f"SASL user {report.sasl_user}")
    if report.source_ip:
        parts.append(f"Source-IP {report.source_ip}")
    if report.kind == "xarf" and report.reported_domains:
        parts.append(f"domain {report.reported_domains[0]}")
    return ", ".join(parts) or "the report names no sender, login or IP"


def arf_metadata(report: ArfReport, digest: str) -> bytes:
    """What is kept of a complaint on a metadata-only alert: the report's machine-readable
    fields about the sender, never the reported message's content (subject, body)."""
    lines = [
        f"Feedback-Type: {report.feedback_type}",
        f"User-Agent: {report.user_agent or ''}",
        f"Version: {report.version or ''}",
        f"Reporter: {report.reporter or ''}",
        f"Original-Mail-From: {report.original_mail_from or ''}",
        f"Original-Rcpt-To-Count: {len(report.original_rcpt_to)}",
        f"Arrival-Date: {clock.iso(report.arrival_date) or ''}",
        f"Source-IP: {report.source_ip or ''}",
        f"Reported-Domain: {', '.join(report.reported_domains)}",
        f"SASL-User: {report.sasl_user or ''}",
        f"Original-Message-ID: {report.original_headers.get('Message-ID', '')}",
        f"Report-SHA256: {digest}",
    ]
    lines += [f"Authentication-Results: {a}" for a in report.auth_results[:10]]
    return ("\n".join(one_line(line, 1000) for line in lines) + "\n").encode("utf-8")


def prepare_arf(item: Item) -> None:
    """Parse before the write transaction (see ``intake.prepare_mail``)."""
    parsed(item, parse_arf)


def handle_arf(session: Session, item: Item, digest: str, run: Run) -> Outcome:
    try:
        report = parsed(item, parse_arf)
    except ParseError as exc:
        raise Reject(
            _("not a usable abuse report: {reason}").format(reason=exc.reason), kind="arf"
        ) from None
    message_id = _message_id(item.data)
    known = store.known_message(session, message_id)
    if known is not None:
        return Outcome(
            "duplicate",
            ticket=known.ticket_id,
            reason=_("report already on a ticket (same Message-ID)"),
        )
    if report.kind == "xarf":
        return _xarf(session, item, digest, run, report, message_id)
    kind = report.feedback_type
    if kind in COMPLAINT_TYPES:
        signal = "complaint"
    elif kind == "auth-failure":
        signal = "dmarc"
    else:
        raise Reject(
            _(
                "feedback type {kind!r} asks no action on a sender (only abuse, fraud, virus and auth-failure do)"
            ).format(kind=kind),
            kind="arf",
        )
    ref, how = reported_account(run, report)
    if ref is None:
        raise Reject(
            _("no account for the reported sender ({who})").format(who=_identity(report)),
            kind="arf",
        )
    account = session.get(Account, ref.id)
    sender = report.sasl_user or report.original_mail_from or ref.email or ref.login
    domain = report.reported_domain or (
        sender.rsplit("@", 1)[1].lower() if "@" in (sender or "") else None
    )
    source = f"{item.source} {item.key}"
    if not run.directory.has_queue(ref.policy, alerts.QUEUE):
        if signal != "complaint" or not run.directory.has_queue(ref.policy, "abuse"):
            raise Reject(
                _("{policy} has no mail-reputation procedure for a {kind} report").format(
                    policy=ref.policy, kind=kind
                ),
                kind="arf",
            )
        opened = engine.open_ticket(
            session,
            queue="abuse",
            policy_key=ref.policy,
            actor=store.ACTOR,
            account=account,
            requester=report.reporter or "",
            subject=f"Complaint ({kind}) from {report.reporter or '?'} about {sender}",
            fields={
                k: v
                for k, v in {
                    "category": "spam",
                    "reporter": report.reporter,
                    "source-ip": report.source_ip,
                }.items()
                if v
            },
            note=f"ARF {kind} report; account found by {how}",
            now=run.now,
        )
        ticket = opened.ticket
        store.keep_evidence(
            session,
            data=arf_metadata(report, digest),
            kind="arf",
            source=source,
            ticket_id=ticket.id,
            now=run.now,
        )
        store.add_message_ref(session, message_id, ticket.id, run.now)
        return Outcome(
            "opened",
            ticket=ticket.id,
            details={"queue": "abuse", "policy": ref.policy, "account": ref.login, "found_by": how},
        )
    fields = {
        "signal": signal,
        "sender": sender,
        "source-ip": report.source_ip,
        "domain": domain,
        "complaints" if signal == "complaint" else "dmarc-fail": 1,
    }
    what = "complaint" if signal == "complaint" else "DMARC failure report"
    status, ticket = alerts.raise_alert(
        session,
        policy=ref.policy,
        account=account,
        fields=fields,
        subject=f"{what.capitalize()} about {sender} ({report.reporter or 'unknown reporter'})",
        note=f"ARF {kind} report from {report.reporter or '?'}; account found by {how}",
        now=run.now,
    )
    store.keep_evidence(
        session,
        data=arf_metadata(report, digest),
        kind="arf",
        source=source,
        ticket_id=ticket.id,
        now=run.now,
    )
    store.add_message_ref(session, message_id, ticket.id, run.now)
    return Outcome(
        status,
        ticket=ticket.id,
        details={
            "queue": alerts.QUEUE,
            "policy": ref.policy,
            "account": ref.login,
            "signal": signal,
            "found_by": how,
        },
    )


def _xarf(
    session: Session, item: Item, digest: str, run: Run, report: ArfReport, message_id: str | None
) -> Outcome:
    category = xarf_category(report)
    if category is None:
        kinds = ", ".join(
            v for k, v in report.xarf.items() if k.lower() in ("category", "report-type")
        ) or _("none given")
        raise Reject(
            _("X-ARF report of a type that maps to no abuse category ({kinds})").format(
                kinds=kinds
            ),
            kind="arf",
        )
    ref, how = reported_account(run, report)
    if ref is None:
        raise Reject(
            _("no account for the reported source ({who})").format(who=_identity(report)),
            kind="arf",
        )
    if not run.directory.has_queue(ref.policy, "abuse"):
        raise Reject(_("{policy} has no abuse procedure").format(policy=ref.policy), kind="arf")
    account = session.get(Account, ref.id)
    fields = {"category": category, "reporter": report.reporter, "source-ip": report.source_ip}
    if report.reported_uris:
        fields["url"] = one_line(report.reported_uris[0], 300)
    report_type = report.xarf.get("Report-Type") or report.xarf.get("Category") or category
    opened = engine.open_ticket(
        session,
        queue="abuse",
        policy_key=ref.policy,
        actor=store.ACTOR,
        account=account,
        requester=report.reporter or "",
        subject=one_line(
            f"X-ARF {report_type} report from {report.reporter or '?'} about {report.source_ip or ref.login}",
            300,
        ),
        fields={k: v for k, v in fields.items() if v},
        note=f"X-ARF report; account found by {how}",
        now=run.now,
    )
    ticket = opened.ticket
    store.keep_evidence(
        session,
        data=item.data,
        kind="arf",
        source=f"{item.source} {item.key}",
        ticket_id=ticket.id,
        now=run.now,
    )
    store.add_message_ref(session, message_id, ticket.id, run.now)
    return Outcome(
        "opened",
        ticket=ticket.id,
        details={
            "queue": "abuse",
            "policy": ref.policy,
            "account": ref.login,
            "category": category,
            "found_by": how,
        },
    )


def _message_id(raw: bytes) -> str | None:
    value = top_headers(raw).get("message-id") or ""
    found = re.search(r"<[^<>\s]{1,900}>", value)
    return clean_line(found.group(0)) if found else None


# --- DMARC ----------------------------------------------------------------------------------


def _is_report_file(data: bytes) -> bool:
    head = data[:512].lstrip(b"\xef\xbb\xbf \t\r\n")
    return data[:2] in (b"\x1f\x8b", b"PK") or head.startswith(b"<") or not head


def _dmarc_blobs(data: bytes) -> list[tuple[str | None, bytes]]:
    """The report files of an item: itself, or those a mail carries (ParseError: none)."""
    if _is_report_file(data):
        return [(None, data)]
    return extract_reports_from_mail(data)


def prepare_dmarc(item: Item) -> None:
    """Unpack and parse before the write transaction (see ``intake.prepare_mail``)."""
    try:
        blobs = parsed(item, _dmarc_blobs)
    except ParseError:
        return
    for name, blob in blobs:
        _parse_dmarc(item, name, blob)


def _parse_dmarc(item: Item, name: str | None, blob: bytes):
    """``parse_dmarc`` of one of the item's report files, computed once per item."""
    return parsed(item, _DmarcParse(name if name is not None else item.key, blob))


class _DmarcParse:
    """``parse_dmarc`` of one blob, as a key for ``items.parsed`` (equal for the same blob)."""

    def __init__(self, name: str, blob: bytes):
        self.name, self.blob = name, blob

    def __call__(self, _data: bytes) -> DmarcReport:
        return parse_dmarc(self.blob, self.name)

    def __eq__(self, other) -> bool:
        return isinstance(other, _DmarcParse) and (other.name, id(other.blob)) == (
            self.name,
            id(self.blob),
        )

    def __hash__(self) -> int:
        return hash((self.name, id(self.blob)))


def handle_dmarc(session: Session, item: Item, digest: str, run: Run) -> Outcome:
    try:
        blobs = [(item.key if n is None else n, b) for n, b in parsed(item, _dmarc_blobs)]
    except ParseError as exc:
        raise Reject(
            _("no DMARC report: {reason}").format(reason=exc.reason), kind="dmarc"
        ) from None
    parsed_: list[tuple[DmarcReport, bytes]] = []
    problems = []
    for name, blob in blobs:
        try:
            parsed_.append((_parse_dmarc(item, name, blob), blob))
        except ParseError as exc:
            problems.append((name, blob, exc.reason))
    if not parsed_:
        if len(problems) == 1 and blobs[0][1] is item.data:
            raise Reject(problems[0][2], kind="dmarc")  # the file itself: its name is already known
        raise Reject(
            "; ".join(f"{one_line(n, 80)}: {r}" for n, _b, r in problems) or _("no DMARC report"),
            kind="dmarc",
        )
    source = f"{item.source} {item.key}"
    for name, blob, reason in problems:  # one bad attachment among good ones
        store.quarantine(
            session, data=blob, kind="dmarc", source=f"{source} {name}", reason=reason, now=run.now
        )
    extra: Counter = Counter(dmarc_reports=len(parsed_))
    if problems:
        extra["quarantined_parts"] = len(problems)
    opened, updated, added = [], [], 0
    for report, blob in parsed_:
        for domain, counts in summarise(report).items():
            status, ticket = _domain_figures(session, run, report, blob, domain, counts)
            if status == "duplicate":
                continue
            added += 1
            if status == "opened":
                opened.append(ticket)
            elif status == "updated":
                updated.append(ticket)
            elif status == "unrouted":
                extra["dmarc_unrouted"] += 1
    extra["dmarc_stats"] = added
    tickets = sorted(set(opened + updated))
    evidence_ticket = tickets[0] if tickets else None
    if added:
        store.keep_evidence(
            session,
            data=item.data,
            kind="dmarc",
            source=source,
            ticket_id=evidence_ticket,
            now=run.now,
        )
    details = {
        "reports": [
            {"org": r.org_name, "report_id": r.report_id, "domain": r.domain} for r, _b in parsed_
        ]
    }
    if opened:
        return Outcome("opened", ticket=opened[0], tickets=tickets, details=details, extra=extra)
    if updated:
        return Outcome("updated", ticket=updated[0], tickets=tickets, details=details, extra=extra)
    if added:
        return Outcome("recorded", details=details, extra=extra)
    if not any(summarise(r) for r, _b in parsed_):  # no record at all: nothing to repeat
        return Outcome(
            "empty", reason=_("the report holds no records"), details=details, extra=extra
        )
    return Outcome(
        "duplicate",
        reason=_("report already recorded (same reporter, report id and domain)"),
        details=details,
        extra=extra,
    )


def _domain_figures(
    session: Session, run: Run, report: DmarcReport, blob: bytes, domain: str, counts: dict
) -> tuple[str, int | None]:
    org = one_line(report.org_name or "", 255)
    report_id = one_line(report.report_id or "", 200) or "sha256:" + store.sha256(blob)[:32]
    domain = one_line(domain, 255).lower()
    exists = session.exec(
        select(DmarcStat.id).where(
            DmarcStat.org_name == org, DmarcStat.report_id == report_id, DmarcStat.domain == domain
        )
    ).first()
    if exists is not None:
        return "duplicate", None
    policies = {run.policy} if run.policy else run.directory.policies_for_mail_domain(domain)
    policy = next(iter(policies)) if len(policies) == 1 else None
    begin = report.begin or run.now
    end = report.end or begin
    passed, failed = counts.get("pass", 0), counts.get("fail", 0)
    session.add(
        DmarcStat(
            domain=domain,
            org_name=org,
            report_id=report_id,
            begin=begin,
            end=end,
            passed=passed,
            failed=failed,
            policy_key=policy,
        )
    )
    session.flush()
    if policy is None:
        return "unrouted", None
    info = run.directory.policy(policy)
    if info is None or alerts.QUEUE not in info.queues:
        return "recorded", None
    minimum = int(info.params.get("dmarc_fail_min", DMARC_FAIL_MIN))
    ratio = float(info.params.get("dmarc_fail_ratio", DMARC_FAIL_RATIO))
    total = passed + failed
    if failed < minimum or not total or failed / total <= ratio:
        return "recorded", None
    ref = unique(run.directory.accounts_for_domain(domain))
    account = session.get(Account, ref.id) if ref is not None and ref.policy == policy else None
    fields = {
        "signal": "dmarc",
        "domain": domain,
        "dmarc-fail": failed,
        "messages": total,
        "window": f"{clock.iso(begin)}/{clock.iso(end)}",
    }
    status, ticket = alerts.raise_alert(
        session,
        policy=policy,
        account=account,
        fields=fields,
        subject=f"DMARC: {failed} of {total} messages from {domain} failed ({org or 'unknown reporter'})",
        note=f"DMARC aggregate report {report_id} from {org or '?'}: {failed} failed, {passed} passed (limit {minimum} and {ratio:.0%})",
        now=run.now,
    )
    return status, ticket.id


# What each handler parses, done before its write transaction (``pipeline.ingest_one``).
handle_arf.prepare = prepare_arf  # type: ignore[attr-defined]
handle_dmarc.prepare = prepare_dmarc  # type: ignore[attr-defined]
