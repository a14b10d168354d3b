"""Delivery status notifications ("bounces"), whatever their wording. Pure: no database.

``recognise(raw)`` returns a ``Bounce`` when a mail reports on the delivery of a mail we
sent, else None. Three ways in, strongest first:

1. A machine-readable report: RFC 3464 ``message/delivery-status`` (or RFC 6533's
   ``message/global-delivery-status``), whatever the rest of the mail says. Each recipient
   block gives its address, Action, Status and Diagnostic-Code.
2. Amazon SES notifications (a JSON body with ``notificationType`` Bounce or Complaint).
3. The non-standard forms (Exim, qmail, old Sendmail, Courier, Lotus Domino, Exchange,
   Gmail, Office 365, amavis, Barracuda, Mimecast, Yahoo, the Japanese carriers...): a mail
   from a mailer daemon (``MAILER-DAEMON``, ``postmaster``, "Mail Delivery System", the null
   sender), or carrying ``X-Failed-Recipients``, or marked ``Auto-Submitted`` with a subject
   that says delivery failed, or whose subject says so and which returns the message. Past
   these header rules, Mailman's bounce detectors (``flufl.bounce``: qmail, Yahoo, GroupWise,
   Exchange, the "simple match" wordings of many servers...) are asked whenever the sender or
   the subject could be a server's: the failed recipients they find make it a report. A
   person who writes "my mail was returned" is none of these.

What the server said is read from the report, else from the text: the enhanced status code
(RFC 3463, ``5.1.1``), the SMTP reply code (``550``) and the line that carries them. The
returned message's Message-ID and Subject (its headers are attached, quoted or inlined)
are what ``helpdesk.ingest.bounce_intake`` matches against the outbox.

``kind`` says what it means for the sender:

- ``failed``: the mail was not delivered and will not be (5.x.x, or a failure with no code);
- ``delayed``: still being retried (4.x.x, Action: delayed) — a warning, nothing failed yet;
- ``blocked``: refused as spam or for the sending server's reputation (a blocklist, a
  policy rejection naming spam): a mail-reputation signal for the provider;
- ``complaint``: a recipient reported the mail as spam (SES complaint, Hotmail's
  "complaint about message from" notice);
- ``delivered``: a success notice (RFC 3464 Action delivered or relayed, SES Delivery):
  nothing went wrong.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field, replace
from email.message import Message

from flufl.bounce import all_failures

from helpdesk.ingest import mime
from helpdesk.ingest.errors import ParseError
from helpdesk.ingest.message import MAX_MAIL_BYTES
from helpdesk.ingest.decoding import clean_line, decode_bytes

KINDS = ("failed", "delayed", "blocked", "complaint", "delivered")

# flufl.bounce logs a detector that raised (on a mangled mail) with its traceback before
# raising it again: the exception is handled here (``_library_failures``), the log is not ours
# to print on a volunteer's terminal.
_FLUFL_LOG = logging.getLogger("flufl.bounce")
_FLUFL_LOG.addHandler(logging.NullHandler())
_FLUFL_LOG.propagate = False

_DAEMON = re.compile(
    r"^(?:mailer[-_.]?daemon|mail[-_.]?daemon|post[-_.]?master|mdaemon|mailadmin|mail[-_.]?delivery(?:[-_.]?system)?|"
    r"bounces?|(?:no[-_.]?reply[-_.])?(?:delivery|dsn)[-_.]?notif\w*|nobody|root|double-bounce|"
    r"mailer|mail[-_.]?robot|smtp[-_.]?gateway|ms-exchange\w*|microsoftexchange\w*|exchangeadmin\w*|"
    r"\w*nondeliver\w*|bounce[-+.]\S*|ndr|.*mailer-daemon.*)@",
    re.IGNORECASE,
)
_DAEMON_NAME = re.compile(
    r"mail delivery (?:system|subsystem|service)|mailer[- ]daemon|postmaster|delivery status|"
    r"mail administrator|system administrator|mail (?:system|router|gateway)|"
    r"microsoft outlook|antispam|anti-spam|barracuda|mimecast|mailmarshal|mailfoundry|trend ?micro|"
    r"interscan|mcafee|surfcontrol|amavis|messagelabs|symantec|proofpoint|notification",
    re.IGNORECASE,
)
_BOUNCE_SUBJECT = re.compile(
    r"undeliver|undelivered|non[- ]?deliver|not (?:be )?delivered|could not (?:be )?(?:sent|delivered)|"
    r"delivery (?:status|failure|failed|problem|report|notification|has failed|delayed|warning)|"
    r"failure (?:notice|delivery)|failed delivery|mail delivery|delivery to the following|returned mail|"
    r"returned to sender|return(?:ing)? message|mail (?:system|transaction) (?:error|failed)|"
    r"permanent (?:error|failure)|temporary (?:error|failure)|warning: (?:could not|message)|delayed mail|"
    r"message (?:not delivered|delayed|blocked|rejected|could not|you sent (?:was|has been) blocked)|"
    r"rejected|rejet|blocked|bounced?|dsn|nondeliverable|unzustellbar|zustellung|nicht zugestellt|"
    r"non remis|non distribuable|impossible de (?:remettre|distribuer)|échec de (?:la )?remise|"
    r"mail could not|cannot be delivered|unable to deliver|can't be delivered|sendefehler|"
    r"virus|spam|quarantin|filtered|failure|\bfailed\b|returning|no such user|unknown user|user unknown|over ?quota|"
    r"自動返信|未達|配信|送信エラー|不能|エラー|退信|系統退信|mail error|notice|error",
    re.IGNORECASE,
)
_AUTO_SUBJECT_STRICT = re.compile(
    r"undeliver|returned mail|non[- ]?deliver|not (?:be )?delivered|delivery (?:status|failure|failed|notification)|"
    r"failure notice|returned mail|mail delivery failed|delivery has failed|unzustellbar|non remis|"
    r"メールエラー|error notification",
    re.IGNORECASE,
)
_REPORT_HINT = re.compile(rb"(?i)message/(?:global-)?delivery-status|notificationType")
_SES_TYPE = re.compile(rb'\\?"notificationType\\?"\s*:\s*\\?"(Bounce|Complaint|Delivery)')
_STATUS = re.compile(r"(?<![\d.])([45])\.(\d{1,3})\.(\d{1,3})(?![\d.])")  # in words: failures only
_STATUS_FIELD = re.compile(r"(?<![\d.])([245])\.(\d{1,3})\.(\d{1,3})(?![\d.])")  # RFC 3464 Status:
_REPLY = re.compile(r"(?<![\w.#:/-])([245][0-5]\d)(?=[ -]|$)", re.MULTILINE)
_ADDR = re.compile(
    r"<?([A-Za-z0-9._%+=/'!#$&*?^`{|}~-]{1,64}@[A-Za-z0-9.-]{1,253}\.[A-Za-z]{2,63})>?"
)
_MSGID_LINE = re.compile(
    r"^\s*(?:>\s*)?message-id\s*:\s*(<[^<>\s]{1,900}>)", re.IGNORECASE | re.MULTILINE
)
_SUBJECT_LINE = re.compile(r"^\s*(?:>\s*)?subject\s*:\s*(.{0,500})$", re.IGNORECASE | re.MULTILINE)
_FROM_LINE = re.compile(r"^\s*(?:>\s*)?from\s*:\s*(.{0,500})$", re.IGNORECASE | re.MULTILINE)
_BLOCK_WORDS = re.compile(
    r"\bspam|blacklist|black list|blocklist|block list|blocked|\bdnsbl|\brbl\b|spamhaus|spamcop|barracudacentral|"
    r"sorbs|listed (?:in|on|at|by)|reputation|policy rejection|junk mail|bulk mail|"
    r"unsolicited|mail from .{0,40} (?:is|has been) (?:rejected|refused|denied)|rejected for policy reasons|"
    r"access denied.{0,40}(?:ip|address)|your (?:ip|address|server) (?:has been|was|is) (?:blocked|rejected|banned)|"
    r"client host .{0,80} blocked|5\.7\.(?:1|350|510|511|606|708)\b.{0,80}(?:block|spam|policy|reject|deny|denied)",
    re.IGNORECASE,
)
_VIRUS_WORDS = re.compile(
    r"\bvirus|malware|infected|banned (?:attachment|content)|contains (?:a )?(?:virus|malware)",
    re.IGNORECASE,
)
_LIST_REFUSAL = re.compile(
    r"not (?:a )?member|loop alert|members? only|posting (?:refused|rejected|not allowed)",
    re.IGNORECASE,
)
_FORWARD = re.compile(r"\s*(?:(?:fwd?|tr|wg|rv|enc)\s*:\s*)+", re.IGNORECASE)
_QUOTED_DAEMON = re.compile(
    r"^[ \t>]*from:.{0,80}(?:mailer-daemon|mail delivery|postmaster)", re.IGNORECASE | re.MULTILINE
)
_COMPLAINT_SUBJECT = re.compile(r"complaint about message from", re.IGNORECASE)
_FAILED_RCPT_HEADERS = ("x-failed-recipients", "x-original-failed-recipients")
_REPORT_TYPES = ("message/delivery-status", "message/global-delivery-status")
_HEADERS_TYPES = ("text/rfc822-headers", "text/global-headers")
_DIAG_HINTS = re.compile(
    r"user unknown|unknown user|no such (?:user|mailbox|recipient|address)|does not exist|doesn't exist|"
    r"mailbox (?:unavailable|not found|is full|full|disabled|inactive)|over ?quota|quota exceeded|"
    r"recipient (?:address )?rejected|address rejected|not found|invalid (?:recipient|address|mailbox)|"
    r"unrouteable|host (?:or domain name )?not found|name service error|no mx|connection (?:refused|timed out)|"
    r"relay(?:ing)? (?:denied|not permitted|access denied)|message (?:size )?exceeds|too large|"
    r"expired|timeout|timed out|deferred|retry time|could not be delivered|undeliverable|rejected|refused|"
    r"blocked|spam|virus|denied|disabled|suspended",
    re.IGNORECASE,
)


@dataclass
class Failure:
    """One recipient the report speaks of."""

    recipient: str | None
    status: str | None = None  # enhanced status code, "5.1.1"
    code: str | None = None  # SMTP reply code, "550"
    diagnostic: str = ""  # what the server said, one line
    action: str = ""  # RFC 3464 Action: failed | delayed | delivered | relayed | expanded

    @property
    def reason(self) -> str:
        """``550 5.1.1 <text>`` as far as known."""
        parts = [p for p in (self.code, self.status) if p]
        text = self.diagnostic
        for p in parts:  # the diagnostic often repeats the codes: say them once
            text = re.sub(rf"^\s*{re.escape(p)}[ -]?", "", text)
        return clean_line(" ".join(parts + ([text.strip()] if text.strip() else [])))[:500]


@dataclass
class Bounce:
    form: str  # rfc3464 | ses | text | complaint
    kind: str  # failed | delayed | blocked | complaint
    failures: list[Failure] = field(default_factory=list)
    reporter: str = ""  # the server or service that reported (Reporting-MTA, the From)
    original_message_ids: list[str] = field(default_factory=list)  # the returned mail's, best first
    original_subject: str = ""
    original_from: str = ""
    why: str = ""  # what made it recognisable, for the summary

    @property
    def recipients(self) -> list[str]:
        return [f.recipient for f in self.failures if f.recipient]

    @property
    def reason(self) -> str:
        """The server's reason for the first recipient (the usual case: one)."""
        for f in self.failures:
            if f.reason:
                return f.reason
        return ""


# --- entry point ------------------------------------------------------------------------------


def recognise(raw: bytes) -> Bounce | None:
    """The delivery report this mail is, or None when it is not one. Never raises but
    ParseError (an unreadable mail), like the other parsers."""
    data = bytes(raw)
    if not _REPORT_HINT.search(data[:2_000_000]) and not _could_be_bounce(data):
        return None  # most mail: its headers alone say it is written by a person
    msg = mime.load_message(data, MAX_MAIL_BYTES)
    try:
        parts = list(mime.walk(msg))
    except ParseError:
        parts = [(msg, None)]
    reports = [p for p, _parent in parts if mime.content_type(p) in _REPORT_TYPES]
    if reports:
        return _with_recipients(_from_report(msg, parts, reports), data)
    ses = _SES_TYPE.search(bytes(raw)[:2_000_000])
    if ses is not None:
        found = _from_ses(msg, parts)
        if found is not None:
            return found
    why = _looks_like_bounce(msg, data)
    if why is None:
        return None
    return _with_recipients(_from_text(msg, parts, why, data), data)


def _with_recipients(bounce: Bounce, raw: bytes) -> Bounce:
    """A report that names no failed recipient readably (a bare Final-Recipient, a server's
    own wording) is given those Mailman's detectors find."""
    if bounce.recipients or bounce.form == "complaint":
        return bounce
    found = _library_failures(raw)
    if found:
        first = bounce.failures[0] if bounce.failures else Failure(recipient=None)
        bounce.failures = [replace(first, recipient=a) for a in found]
    return bounce


# --- the three forms --------------------------------------------------------------------------


def _from_report(msg: Message, parts: list, reports: list[Message]) -> Bounce:
    failures: list[Failure] = []
    reporter = ""
    for report in reports:
        text = _part_text(report)
        blocks = re.split(r"\r?\n[ \t]*\r?\n", text.strip())
        head = _fields(blocks[0]) if blocks else {}
        reporter = reporter or clean_line(_after_semicolon(head.get("reporting-mta", "")))[:300]
        for block in blocks:
            fields = _fields(block)
            rcpt = fields.get("final-recipient") or fields.get("original-recipient")
            if not rcpt and not fields.get("status") and not fields.get("action"):
                continue
            diagnostic = _after_semicolon(fields.get("diagnostic-code", ""))
            found = _STATUS_FIELD.search(fields.get("status", ""))
            status = ".".join(found.groups()) if found else _status(diagnostic)
            failures.append(
                Failure(
                    recipient=_address(_after_semicolon(rcpt or "")) if rcpt else None,
                    status=status,
                    code=_reply(diagnostic),
                    diagnostic=clean_line(diagnostic)[:500],
                    action=clean_line(fields.get("action") or "").lower()[:16],
                )
            )
    texts = _texts(parts)
    failures = _complete_failures(failures, msg, texts)
    bounce = Bounce(
        form="rfc3464",
        kind="failed",
        failures=failures,
        reporter=reporter,
        why="delivery-status report",
    )
    _original(bounce, msg, parts, texts)
    bounce.kind = _kind(failures, texts)
    return bounce


def _from_ses(msg: Message, parts: list) -> Bounce | None:
    data = None
    for part, _parent in parts:
        body = _part_text(part) if not part.is_multipart() else ""
        start = body.find("{")
        if start < 0 or "notificationType" not in body:
            continue
        try:  # SNS folds long lines: control characters inside strings are tolerated
            data, _end = json.JSONDecoder(strict=False).raw_decode(body, start)
        except ValueError:
            continue
        if isinstance(data, dict) and "Message" in data and isinstance(data["Message"], str):
            try:  # wrapped by SNS
                data = json.loads(data["Message"], strict=False)
            except ValueError:
                pass
        break
    if not isinstance(data, dict):
        return None
    kind_key = str(data.get("notificationType") or "")
    mail = data.get("mail") if isinstance(data.get("mail"), dict) else {}
    failures: list[Failure] = []
    if kind_key == "Bounce":
        info = data.get("bounce") if isinstance(data.get("bounce"), dict) else {}
        for r in info.get("bouncedRecipients") or []:
            if not isinstance(r, dict):
                continue
            diagnostic = str(r.get("diagnosticCode") or "")
            failures.append(
                Failure(
                    recipient=_address(str(r.get("emailAddress") or "")),
                    status=_status(str(r.get("status") or "")) or _status(diagnostic),
                    code=_reply(diagnostic),
                    diagnostic=clean_line(diagnostic)[:500],
                    action=str(r.get("action") or "failed").lower()[:16],
                )
            )
        temporary = str(info.get("bounceType") or "").lower() == "transient"
        kind = (
            "delayed"
            if temporary and not any((f.status or "").startswith("5") for f in failures)
            else "failed"
        )
        if kind == "failed" and _BLOCK_WORDS.search(" ".join(f.diagnostic for f in failures)):
            kind = "blocked"
        reporter = str(info.get("reportingMTA") or "amazonses.com")
    elif kind_key == "Complaint":
        info = data.get("complaint") if isinstance(data.get("complaint"), dict) else {}
        for r in info.get("complainedRecipients") or []:
            if isinstance(r, dict):
                failures.append(
                    Failure(
                        recipient=_address(str(r.get("emailAddress") or "")),
                        diagnostic=clean_line(
                            str(info.get("complaintFeedbackType") or "complaint")
                        )[:100],
                    )
                )
        kind = "complaint"
        reporter = clean_line(str(info.get("userAgent") or "amazonses.com"))[:200]
    elif kind_key == "Delivery":
        info = data.get("delivery") if isinstance(data.get("delivery"), dict) else {}
        for r in info.get("recipients") or []:
            failures.append(
                Failure(
                    recipient=_address(str(r)),
                    diagnostic=clean_line(str(info.get("smtpResponse") or ""))[:500],
                    action="delivered",
                )
            )
        kind = "delivered"
        reporter = clean_line(str(info.get("reportingMTA") or "amazonses.com"))[:200]
    else:
        return None
    ids = [f"<{mail['messageId']}>"] if mail.get("messageId") else []
    headers = mail.get("commonHeaders") if isinstance(mail.get("commonHeaders"), dict) else {}
    for h in mail.get("headers") or []:
        if isinstance(h, dict) and str(h.get("name", "")).lower() == "message-id":
            ids.insert(0, clean_line(str(h.get("value", ""))))
    if headers.get("messageId"):
        ids.insert(0, clean_line(str(headers["messageId"])))
    bounce = Bounce(
        form="ses",
        kind=kind,
        failures=failures,
        reporter=reporter,
        why=f"Amazon SES {kind_key.lower()} notification",
    )
    bounce.original_message_ids = _unique([i if i.startswith("<") else f"<{i}>" for i in ids if i])
    bounce.original_subject = clean_line(str(headers.get("subject") or ""))[:300]
    written_by = headers.get("from") if isinstance(headers.get("from"), list) else []
    source = mail.get("source") or (written_by[0] if written_by else "")
    bounce.original_from = _address(str(source or "")) or ""
    return bounce


def _from_text(msg: Message, parts: list, why: str, raw: bytes) -> Bounce:
    texts = _texts(parts)
    failures: list[Failure] = []
    for name in _FAILED_RCPT_HEADERS:
        for value in mime.header_values(msg, name):
            for addr in _ADDR.findall(value):
                failures.append(Failure(recipient=addr.lower()))
    if why == BY_LIBRARY:
        failures += [Failure(recipient=a) for a in _library_failures(raw)]
    failures = _complete_failures(failures, msg, texts)
    subject = mime.text_header(msg, "subject") or ""
    form = "complaint" if _COMPLAINT_SUBJECT.search(subject) else "text"
    bounce = Bounce(form=form, kind="failed", failures=failures, reporter=_sender(msg), why=why)
    _original(bounce, msg, parts, texts)
    bounce.kind = "complaint" if form == "complaint" else _kind(failures, texts + [subject])
    return bounce


# --- recognising the non-standard forms -------------------------------------------------------


def _looks_like_bounce(msg: Message, raw: bytes) -> str | None:
    """Why this mail is a delivery report though it carries no machine-readable one."""
    subject = mime.text_header(msg, "subject") or ""
    if _COMPLAINT_SUBJECT.search(subject) and any(
        mime.content_type(p) == "message/rfc822" for p, _ in mime.walk(msg)
    ):
        return "feedback notice (complaint about a message)"
    if mime.header_values(msg, "x-failed-recipients"):
        return "X-Failed-Recipients header"
    sender = _sender(msg)
    from_header = " ".join(mime.header_values(msg, "from"))
    return_path = " ".join(mime.header_values(msg, "return-path")).strip()
    auto = " ".join(mime.header_values(msg, "auto-submitted")).strip().lower()
    daemon = (
        bool(_DAEMON.match(sender + "@"))
        if sender and "@" not in sender
        else bool(sender and _DAEMON.match(sender))
    )
    daemon = daemon or _envelope_daemon(msg)
    named = bool(_DAEMON_NAME.search(from_header))
    null_sender = return_path in ("<>", "<<>>")
    no_reply = bool(re.match(r"no[-_.]?reply@", sender))
    if (daemon or named) and _BOUNCE_SUBJECT.search(subject):
        return "mailer daemon's delivery report"
    if (
        null_sender or auto.startswith("auto-") or daemon or named or no_reply
    ) and _AUTO_SUBJECT_STRICT.search(subject):
        return "automatic delivery failure notice"
    if (daemon or null_sender) and _has_returned_message(msg):
        return "mailer daemon returning a message"
    if _AUTO_SUBJECT_STRICT.search(subject) and _attaches_original(msg):
        return "delivery failure notice returning the message"
    if re.match(
        r"[\w.-]+-(?:admin|owner|request)@|owner-[\w.-]+@", sender
    ) and _LIST_REFUSAL.search(subject):
        return "mailing list manager refusing a message"
    forwarded = _FORWARD.match(subject)
    if (
        forwarded
        and _AUTO_SUBJECT_STRICT.search(subject[forwarded.end() :])
        and _QUOTED_DAEMON.search(_body_text(msg)[:20000])
    ):
        return "delivery report forwarded by a person"
    if (
        daemon or named or null_sender or no_reply or _AUTO_SUBJECT_STRICT.search(subject)
    ) and _library_failures(raw):
        return BY_LIBRARY
    return None  # a vacation or out-of-office answer (RFC 3834) is not about delivery


BY_LIBRARY = "failed recipients found by flufl.bounce"


# What the detectors read of a mail: a server says what failed in its first lines, and
# their line-by-line patterns take seconds over a mail of megabytes.
_LIBRARY_BYTES = 256 * 1024


def _library_failures(raw: bytes) -> list[str]:
    """The failed recipients (permanent, then temporary) that Mailman's bounce detectors
    find in the mail's first ``_LIBRARY_BYTES``, kept only when they are addresses; []
    when a detector fails on the mail."""
    try:
        temporary, permanent = all_failures(mime.load_message(raw[:_LIBRARY_BYTES], MAX_MAIL_BYTES))
    except Exception:  # an unreadable cut, a detector tripping on a mangled mail: nothing
        return []
    found: list[str] = []
    for raw in sorted(permanent) + sorted(temporary):
        text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
        address = text.strip().strip("<>").lower()
        if _ADDR.fullmatch(address) and address not in found:
            found.append(address)
    return found[:20]


def _attaches_original(msg: Message) -> bool:
    """Whether the mail carries a returned message (or its headers) as a part of its own."""
    return any(
        mime.content_type(part) in ("message/rfc822", *_HEADERS_TYPES)
        for part, _parent in mime.walk(msg, into_messages=False)
    )


def _could_be_bounce(data: bytes) -> bool:
    """A cheap first look at the top headers: False only when no rule of
    ``_looks_like_bounce`` can match."""
    try:
        head = mime.parse_headers_only(
            data[: data.find(b"\n\n") + 2 if b"\n\n" in data[:262_144] else 262_144]
        )
    except ParseError:
        return True
    subject = mime.text_header(head, "subject") or ""
    if (
        mime.header_values(head, "x-failed-recipients")
        or _COMPLAINT_SUBJECT.search(subject)
        or _FORWARD.match(subject)
        or _AUTO_SUBJECT_STRICT.search(subject)
    ):
        return True
    sender = _sender(head)
    automatic = (
        " ".join(mime.header_values(head, "auto-submitted")).strip().lower().startswith("auto-")
    )
    null_sender = " ".join(mime.header_values(head, "return-path")).strip() in ("<>", "<<>>")
    return bool(
        automatic
        or null_sender
        or _envelope_daemon(head)
        or _DAEMON_NAME.search(" ".join(mime.header_values(head, "from")))
        or (
            sender
            and (
                _DAEMON.match(sender if "@" in sender else sender + "@")
                or re.match(r"no[-_.]?reply@|[\w.-]+-(?:admin|owner|request)@|owner-", sender)
            )
        )
    )


def _has_returned_message(msg: Message) -> bool:
    if _attaches_original(msg):
        return True
    text = _body_text(msg)
    return bool((_STATUS.search(text) or _REPLY.search(text)) and _DIAG_HINTS.search(text))


# --- reading the details ----------------------------------------------------------------------


def _complete_failures(failures: list[Failure], msg: Message, texts: list[str]) -> list[Failure]:
    """Fill what the report lacks (no recipient block, no code) from the human text."""
    body = "\n".join(t for t in texts[:3])
    if not failures:
        failures = [Failure(recipient=r) for r in _recipients_in_text(body, msg)] or [
            Failure(recipient=None)
        ]
    for f in failures:
        if f.status and f.diagnostic:
            continue
        line = _diagnostic_line(body, f.recipient)
        if line:
            f.diagnostic = f.diagnostic or line
            f.status = f.status or _status(line)
            f.code = f.code or _reply(line)
        if not f.status:
            f.status = _status(body)
        if not f.code:
            f.code = _reply(f.diagnostic)
    return failures


def _recipients_in_text(body: str, msg: Message) -> list[str]:
    """Addresses the human part names, minus the bounce's own From and To."""
    own = {
        a.lower()
        for v in mime.header_values(msg, "from") + mime.header_values(msg, "to")
        for a in _ADDR.findall(v)
    }
    found: list[str] = []
    cut = _ORIGINAL_MARK.search(body)
    head = body[: cut.start()] if cut else body[:8000]
    for line in head.splitlines():
        if re.match(
            r"\s*(?:from|to|reply-to|return-path|sender|received|message-id|references|in-reply-to)\s*:",
            line,
            re.I,
        ):
            continue
        for addr in _ADDR.findall(line):
            a = addr.lower().strip(".")
            if (
                a not in own
                and a not in found
                and not re.match(r"(?:mailer-daemon|postmaster)@", a)
            ):
                found.append(a)
    return found[:20]


_ORIGINAL_MARK = re.compile(
    r"^[ \t>]*(?:-{2,}|={2,}|\*{2,})?[ \t]*(?:this is a copy of the message|below this line is a copy|"
    r"original message|returned message|the original message|message headers follow|"
    r"original message headers|unsent message below|headers of the original|copy of the original)",
    re.IGNORECASE | re.MULTILINE,
)


# A server's label for the reason, the reason on the same line or the next.
_REASON_LABEL = re.compile(
    r"(?:technical details of (?:permanent|temporary) failure|(?:the |delay )?reason(?: for the problem)?|"
    r"the error that the other server returned was|"
    r"(?:the )?(?:remote|other) (?:server|host) (?:said|returned|replied)|error message)\s*:",
    re.IGNORECASE,
)


def _diagnostic_line(body: str, recipient: str | None) -> str:
    """The line saying why, best near the recipient: one with a status code or a known reason."""
    cut = _ORIGINAL_MARK.search(body)
    head = body[: cut.start()] if cut else body[:20000]
    lines = [ln.strip() for ln in head.splitlines() if ln.strip()]
    scored: list[tuple[int, int, str]] = []
    labelled = -1  # the line after "Technical details of permanent failure:" and the like
    for i, line in enumerate(lines):
        score = 0
        label = _REASON_LABEL.match(line)
        if label and not line[label.end() :].strip():
            labelled = i + 1
        elif label or i == labelled:
            score += 2
        if _STATUS.search(line):
            score += 3
        if _REPLY.search(line):
            score += 2
        if _DIAG_HINTS.search(line):
            score += 2
        if recipient and recipient in line.lower():
            score += 1
        if re.match(r"(?:from|to|subject|date|message-id|received|content-|mime-)\s*:", line, re.I):
            score = 0
        if score >= 2:
            scored.append((score, -i, line))
    if not scored:
        return ""
    return clean_line(max(scored)[2])[:500]


def _kind(failures: list[Failure], texts: list[str]) -> str:
    statuses = [f.status or "" for f in failures]
    if failures and all(
        f.action in ("delivered", "relayed", "expanded", "deliverable")
        or ((f.status or "").startswith("2") and f.action not in ("failed", "delayed"))
        for f in failures
    ):  # a success notice (or an address check's "deliverable"): nothing went wrong
        return "delivered"
    actions = [f.action for f in failures]
    diag = " ".join(f.diagnostic for f in failures)
    if _BLOCK_WORDS.search(diag) and not _VIRUS_WORDS.search(diag):
        return "blocked"
    if any(s.startswith("5") for s in statuses) or "failed" in actions:
        return "failed"
    if (
        statuses
        and all(s.startswith("4") for s in statuses if s)
        and any(statuses)
        or (actions and all(a == "delayed" for a in actions))
    ):
        return "delayed"
    if not any(statuses):  # no code says it: the words do (a reason without a code too)
        text = "\n".join(texts[:2])[:6000]
        if not diag.strip() and _BLOCK_WORDS.search(text) and not _VIRUS_WORDS.search(text):
            return "blocked"
        if re.search(
            r"\bdelayed\b|will (?:be retried|keep trying|try again)|has not yet been delivered|still trying",
            text,
            re.I,
        ) and not re.search(
            r"permanent|gave up|giving up|has been returned|could not be delivered|failed",
            text,
            re.I,
        ):
            return "delayed"
    return "failed"


def _original(bounce: Bounce, msg: Message, parts: list, texts: list[str]) -> None:
    """The returned mail's Message-ID, Subject and From: from an attached message or headers
    part, else from the quoted copy in the text."""
    own = (mime.raw_header(msg, "message-id") or "").strip()
    ids: list[str] = []
    subject = sender = ""
    for part, parent in parts:
        if parent is None:
            continue
        ctype = mime.content_type(parent)
        if ctype.startswith("message/") and ctype not in _REPORT_TYPES:
            ids += _ids(mime.raw_header(part, "message-id"))
            subject = subject or (mime.text_header(part, "subject") or "")
            sender = sender or " ".join(mime.header_values(part, "from"))
    for part, _parent in parts:
        if mime.content_type(part) in _HEADERS_TYPES:
            try:
                headers = mime.parse_headers_only(mime.payload_bytes(part))
            except ParseError:
                continue
            ids += _ids(mime.raw_header(headers, "message-id"))
            subject = subject or (mime.text_header(headers, "subject") or "")
            sender = sender or " ".join(mime.header_values(headers, "from"))
    body = "\n".join(texts)
    ids += [m for m in _MSGID_LINE.findall(body)]
    if not subject:
        cut = _ORIGINAL_MARK.search(body)
        found = _SUBJECT_LINE.search(body, cut.start() if cut else 0)
        subject = found.group(1) if found else ""
    if not sender:
        cut = _ORIGINAL_MARK.search(body)
        found = _FROM_LINE.search(body, cut.start() if cut else 0)
        sender = found.group(1) if found else ""
    bounce.original_message_ids = [i for i in _unique(ids) if i != own][:10]
    bounce.original_subject = clean_line(subject)[:300]
    bounce.original_from = _address(sender) or ""


# --- small helpers ----------------------------------------------------------------------------


def _texts(parts: list) -> list[str]:
    """The decoded text of every textual part, the human part first."""
    out: list[str] = []
    for part, _parent in parts:
        ctype = mime.content_type(part)
        if part.is_multipart():
            continue
        if (
            ctype.startswith("text/")
            or ctype in _REPORT_TYPES
            or ctype == "message/rfc822"
            and not part.is_multipart()
        ):
            text = _part_text(part)
            if ctype == "text/html":
                text = re.sub(r"<[^>]{0,2000}>", " ", text)
                text = re.sub(
                    r"&(?:nbsp|lt|gt|amp|quot);",
                    lambda m: {
                        "&nbsp;": " ",
                        "&lt;": "<",
                        "&gt;": ">",
                        "&amp;": "&",
                        "&quot;": '"',
                    }[m.group(0)],
                    text,
                )
            if text.strip():
                out.append(text)
    return out


def _body_text(msg: Message) -> str:
    try:
        return "\n".join(_texts(list(mime.walk(msg))))[:200_000]
    except ParseError:
        return ""


def _part_text(part: Message) -> str:
    payload = part.get_payload()
    if isinstance(payload, list) and mime.content_type(part) in _REPORT_TYPES:
        # The parser reads a delivery-status body as header blocks: write them back.
        return "\n".join(
            decode_bytes(mime.message_bytes(block), ["utf-8"])
            for block in payload
            if isinstance(block, Message)
        )
    try:
        data = mime.payload_bytes(part)
    except Exception:  # a broken part reads as nothing
        return ""
    return decode_bytes(data[:1_000_000], [mime.content_charset(part)])


def _fields(block: str) -> dict[str, str]:
    out: dict[str, str] = {}
    last = None
    for line in block.splitlines():
        if line[:1] in (" ", "\t") and last:
            out[last] += " " + line.strip()
            continue
        name, sep, value = line.partition(":")
        if not sep or not re.fullmatch(r"[A-Za-z0-9-]{1,40}", name.strip()):
            last = None
            continue
        last = name.strip().lower()
        out.setdefault(last, value.strip())
    return out


def _after_semicolon(value: str) -> str:
    """``rfc822; jean@example.org`` -> ``jean@example.org`` (RFC 3464 typed fields)."""
    kind, sep, rest = value.partition(";")
    return (
        rest.strip() if sep and re.fullmatch(r"\s*[A-Za-z0-9-]{1,20}\s*", kind) else value.strip()
    )


def _status(text: str) -> str | None:
    found = _STATUS.search(text or "")
    return ".".join(found.groups()) if found else None


def _reply(text: str) -> str | None:
    found = _REPLY.search(text or "")
    return found.group(1) if found else None


def _address(text: str) -> str | None:
    found = _ADDR.search(text or "")
    return found.group(1).lower().strip(".") if found else None


def _ids(value: str | None) -> list[str]:
    return re.findall(r"<[^<>\s]{1,900}>", value or "")


# A signed envelope sender (BATV, Microsoft's SRS-like prvs): prvs=TAG=local@domain.
_SIGNED_SENDER = re.compile(r"^(?:prvs|btv1|msprvs\d*)=[^=@]{1,64}=", re.IGNORECASE)


def _envelope_daemon(msg: Message) -> bool:
    """Whether the envelope sender the delivering server wrote down (Return-Path, or the
    envelope headers of some filters) is a mailer daemon, whatever the From line says: a
    gateway that sends its reports with its own From is still sending them as a daemon."""
    for name in ("return-path", "x-env-sender", "x-mailfrom"):
        for value in mime.header_values(msg, name):
            found = _address(value)
            if found and _DAEMON.match(_SIGNED_SENDER.sub("", found)):
                return True
    return False


def _sender(msg: Message) -> str:
    for name in ("from", "sender", "return-path"):
        for value in mime.header_values(msg, name):
            found = _address(value)
            if found:
                return found
            local = re.search(r"<?\s*([A-Za-z][\w.-]{0,63})\s*>?\s*$", value)
            if local and local.group(1).lower() in ("mailer-daemon", "postmaster"):
                return local.group(1).lower()
    return ""


def _unique(items: list[str]) -> list[str]:
    seen: list[str] = []
    for item in items:
        item = clean_line(item)
        if item and item not in seen:
            seen.append(item)
    return seen
