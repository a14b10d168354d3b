"""Abuse reports: ARF (RFC 5965, with RFC 6591 auth-failure) and X-ARF feedback mails.

Tolerates what real reporters send: ``message/feedback-report`` inside multipart/mixed
(forwarded), base64-encoded report parts, no blank line before the next boundary,
``text/rfc822-header(s)`` spellings, ``Received-Date`` for ``Arrival-Date``, ``Version: 0.1``,
CR-only line endings, mbox ``From `` / ``>From `` lines.
"""

from __future__ import annotations

import ipaddress
import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from email.message import Message
from urllib.parse import urlsplit

from helpdesk.base.i18n import N_, _
from helpdesk.ingest import mime
from helpdesk.ingest.errors import ParseError, guarded
from helpdesk.ingest.message import addresses, parse_date
from helpdesk.ingest.decoding import clean_line, decode_bytes, decode_header

MAX_REPORT_BYTES = 20 * 1024 * 1024
MAX_FIELDS = 500

ORIGINAL_HEADERS = ("From", "Subject", "Message-ID", "Date")
_ORIGINAL_TYPES = frozenset(
    {
        "message/rfc822",
        "message/global",
        "text/rfc822-headers",
        "text/rfc822-header",
        "message/rfc822-headers",
        "message/rfc822-header",
        "message/global-headers",
    }
)


@dataclass(frozen=True, slots=True)
class ArfReport:
    kind: str  # "arf" or "xarf"
    feedback_type: str
    user_agent: str | None
    version: str | None
    original_mail_from: str | None  # "" when the report names the null sender
    original_rcpt_to: list[str]
    arrival_date: datetime | None
    source_ip: str | None
    reported_domain: str | None
    reported_uris: list[str]
    auth_results: list[str]
    sasl_user: str | None
    original_headers: dict[str, str]
    reporter: str | None
    xarf: dict[str, str] = field(default_factory=dict)
    reported_domains: list[str] = field(default_factory=list)
    fields: dict[str, list[str]] = field(default_factory=dict)  # every field, lower-case names


@guarded(N_("the report"))
def parse_arf(raw: bytes) -> ArfReport:
    """Parse an ARF or X-ARF report mail; ParseError says why when it is not one."""
    msg = mime.load_message(raw, MAX_REPORT_BYTES)
    parts = list(mime.walk(msg))
    reporter = _reporter(msg)
    feedback = next(
        ((p, parent) for p, parent in parts if mime.content_type(p) == "message/feedback-report"),
        None,
    )
    if feedback is not None:
        return _arf(feedback[0], feedback[1], reporter)
    xarf = _xarf_part(msg, parts)
    if xarf is not None:
        return _xarf(xarf, reporter)
    raise ParseError(_why_not(msg, parts))


def _why_not(msg: Message, parts: list[tuple[Message, Message | None]]) -> str:
    ctype = mime.content_type(msg)
    if _xarf_flag(msg) not in ("", "no", "false", "0"):
        return _("X-ARF mail without a machine-readable report part (report.txt with Report-Type)")
    if ctype == "multipart/report":
        return _(
            "multipart/report without a machine-readable feedback part (message/feedback-report)"
        )
    if mime.raw_header(msg, "x-hmxmroriginalrecipient") is not None or any(
        mime.raw_header(p, "x-hmxmroriginalrecipient") is not None for p, _ in parts
    ):
        return _(
            "Microsoft JMRP-style complaint (forwarded message without a feedback-report part), not ARF"
        )
    return _(
        "not an abuse report: {type} without a message/feedback-report part or X-ARF headers"
    ).format(type=ctype)


def _reporter(msg: Message) -> str | None:
    found = addresses(mime.header_values(msg, "from"))
    return found[0][1] if found else None


# --- ARF ------------------------------------------------------------------------------------


def _arf(part: Message, parent: Message | None, reporter: str | None) -> ArfReport:
    fields = _feedback_fields(part)
    feedback_type = _first(fields, "feedback-type")
    if not feedback_type:
        raise ParseError(_("feedback report without a Feedback-Type field"))
    original = _original_headers(part, parent)
    auth_results = fields.get("authentication-results", [])
    domains = [
        d.strip().lower()
        for v in fields.get("reported-domain", [])
        for d in v.split(",")
        if d.strip()
    ]
    return ArfReport(
        kind="arf",
        feedback_type=feedback_type.lower(),
        user_agent=_first(fields, "user-agent"),
        version=_first(fields, "version"),
        original_mail_from=_mailbox(_first(fields, "original-mail-from", keep_empty=True)),
        original_rcpt_to=[
            m for m in (_mailbox(v) for v in fields.get("original-rcpt-to", [])) if m
        ],
        arrival_date=parse_date(_first(fields, "arrival-date") or _first(fields, "received-date")),
        source_ip=_ip(_first(fields, "source-ip")),
        reported_domain=domains[0] if domains else None,
        reported_domains=domains,
        reported_uris=fields.get("reported-uri", []),
        auth_results=auth_results,
        sasl_user=sasl_user(auth_results) or sasl_user(original.pop("_auth", "").split("\n")),
        original_headers={k: v for k, v in original.items() if not k.startswith("_")},
        reporter=reporter,
        fields=fields,
    )


def _feedback_fields(part: Message) -> dict[str, list[str]]:
    """The fields of a message/feedback-report part, whatever way it was packed."""
    embedded = mime.children(part)
    items: list[tuple[str, str]] = []
    body = b""
    if embedded:  # parsed as an embedded message: the fields are its headers
        inner = embedded[0]
        items = [(str(name), str(value)) for name, value in inner.raw_items()]
        body = mime.raw_payload(inner) or b""
    else:
        body = mime.raw_payload(part) or b""
    if not items and body.strip():
        body = mime.decode_transfer(body, mime.raw_header(part, "content-transfer-encoding") or "")
        items = parse_fields(body)
    elif body.strip():
        items += parse_fields(body)  # a stray blank line inside the fields
    fields: dict[str, list[str]] = {}
    for name, value in items[:MAX_FIELDS]:
        text = clean_line(decode_header(value))
        fields.setdefault(name.strip().lower(), []).append(text)
    return fields


_FIELD = re.compile(rb"^([!-9;-~]{1,76})[ \t]*:[ \t]*(.*)$")


def parse_fields(data: bytes) -> list[tuple[str, str]]:
    """``Name: value`` lines (folded continuations joined) from a header-like block."""
    items: list[tuple[str, str]] = []
    for line in re.split(rb"\r\n|\r|\n", data):
        if line[:1] in (b" ", b"\t") and items:
            name, value = items[-1]
            items[-1] = (name, value + " " + decode_bytes(line.strip()))
            continue
        match = _FIELD.match(line)
        if match:
            items.append(
                (match.group(1).decode("ascii", "replace"), decode_bytes(match.group(2).strip()))
            )
    return items


def _first(fields: dict[str, list[str]], name: str, keep_empty: bool = False) -> str | None:
    for value in fields.get(name, []):
        if value or keep_empty:
            return value
    return None


def _mailbox(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    match = re.search(r"<([^<>]*)>", value)
    if match:
        value = match.group(1)
    return value.strip().removeprefix("rfc822;").strip()


def _ip(value: str | None) -> str | None:
    words = (value or "").split()
    if not words:
        return None
    try:
        return str(ipaddress.ip_address(words[0].strip("[]")))
    except ValueError:
        return None


_SMTP_AUTH = re.compile(r"\bsmtp\.auth=(\"[^\"]*\"|[^\s;]+)", re.IGNORECASE)
_AUTH = re.compile(r"(?<![\w.-])auth=(\"[^\"]*\"|[^\s;]+)", re.IGNORECASE)
_RESULT_WORDS = frozenset(
    {"pass", "fail", "none", "neutral", "temperror", "permerror", "policy", "softfail"}
)


def sasl_user(auth_results: list[str]) -> str | None:
    """The authenticated submitter named in Authentication-Results (``smtp.auth=`` or an
    ``auth=`` property that is not a result word)."""
    for value in auth_results:
        match = _SMTP_AUTH.search(value)
        if match:
            return match.group(1).strip('"') or None
    for value in auth_results:
        for match in _AUTH.finditer(value):
            user = match.group(1).strip('"')
            if user and user.lower() not in _RESULT_WORDS:
                return user
    return None


def _original_headers(feedback: Message, parent: Message | None) -> dict[str, str]:
    """Key headers of the reported message (the part after the feedback part), decoded,
    plus its Authentication-Results under the private key "_auth"."""
    siblings = mime.children(parent) if parent is not None else []
    position = next((i for i, p in enumerate(siblings) if p is feedback), -1)
    after = siblings[position + 1 :]
    original = next((p for p in after if mime.content_type(p) in _ORIGINAL_TYPES), None)
    if original is None:
        return {}
    headers, charset = _embedded_headers(original)
    result = {
        name: decode_header(value, (charset,) if charset else ()) for name, value in headers.items()
    }
    return {name: value for name, value in result.items() if value or name == "_auth"}


def _embedded_headers(part: Message) -> tuple[dict[str, str], str | None]:
    """Raw values of ORIGINAL_HEADERS (and "_auth") of an embedded message or header block."""
    embedded = mime.children(part)
    if embedded:
        inner = embedded[0]
        body = mime.raw_payload(inner) or b""
        if not inner.keys() and re.match(rb"\A>*From ", body):
            inner = mime.parse_headers_only(body)  # mbox ">From " line before the headers
            body = mime.raw_payload(inner) or b""
    else:
        inner = mime.parse_headers_only(mime.payload_bytes(part))
        body = mime.raw_payload(inner) or b""
    found = {
        name: value
        for name in ORIGINAL_HEADERS
        if (value := mime.raw_header(inner, name)) is not None
    }
    auth = mime.header_values(inner, "authentication-results")
    # RFC 5965 B.2 publishes a blank line inside the headers: read on when what follows is
    # more headers and Subject and Message-ID are both still missing.
    lines = re.split(rb"\r\n|\r|\n", body.lstrip(b"\r\n"), maxsplit=200)
    if "Subject" not in found and "Message-ID" not in found and lines and _FIELD.match(lines[0]):
        block = []
        for line in lines:
            if not line.strip():
                break
            block.append(line)
        wanted = {h.lower(): h for h in ORIGINAL_HEADERS if h not in found}
        for name, value in parse_fields(b"\n".join(block)):
            if name.lower() in wanted:
                found[wanted.pop(name.lower())] = value
            elif name.lower() == "authentication-results":
                auth.append(value)
    if auth:
        found["_auth"] = "\n".join(auth)
    return found, mime.content_charset(inner)


# --- X-ARF ----------------------------------------------------------------------------------


def _xarf_flag(msg: Message) -> str:
    return (mime.raw_header(msg, "x-xarf") or mime.raw_header(msg, "x-arf") or "").strip().lower()


def _xarf_part(msg: Message, parts: list[tuple[Message, Message | None]]) -> Message | None:
    """The machine-readable part of an X-ARF mail: ``report.txt`` when the mail carries an
    X-XARF / X-ARF flag; otherwise only a part that reads like one (a Report-Type field)."""
    flag = _xarf_flag(msg)
    if flag in ("no", "false", "0"):
        return None
    candidates = [
        p
        for p, _ in parts
        if not p.is_multipart() and mime.content_type(p).startswith(("text/", "application/"))
    ]
    for part in candidates if flag else ():
        if (mime.filename(part) or "").lower() in (
            "report.txt",
            "report.yaml",
            "report.yml",
            "report.json",
        ):
            return part
    for part in candidates:
        text = decode_bytes(mime.payload_bytes(part)[:65536])
        if (
            re.search(r"^\s*\"?report-type\"?\s*:", text, re.IGNORECASE | re.MULTILINE)
            or '"ReporterInfo"' in text
        ):
            return part
    return None


def _xarf(part: Message, reporter: str | None) -> ArfReport:
    report = parse_xarf_fields(decode_bytes(mime.payload_bytes(part), [mime.content_charset(part)]))
    if not report:
        raise ParseError(_("X-ARF report part holds no 'key: value' fields"))
    lower = {k.lower(): v for k, v in report.items()}

    def pick(*names: str) -> str | None:
        for name in names:
            if lower.get(name):
                return lower[name]
        return None

    source = pick("source", "report.source", "report.sourceip")
    source_type = (pick("source-type", "report.sourcetype") or "").lower()
    uris = [u for u in (pick("download-link"), pick("url"), pick("report.url")) if u]
    if source and (source_type.startswith("uri") or source_type == "url" or "://" in source):
        uris.insert(0, source)
    domains = []
    for uri in uris:
        try:
            host = urlsplit(uri).hostname
        except ValueError:
            host = None
        if host and host not in domains:
            domains.append(host)
    return ArfReport(
        kind="xarf",
        feedback_type=(
            pick("category", "report.category", "report-type", "report.reporttype") or "other"
        ).lower(),
        user_agent=pick("user-agent", "reporter.reporterorg", "reporterinfo.reporterorg"),
        version=pick("version", "schema_version"),
        original_mail_from=None,
        original_rcpt_to=[],
        arrival_date=parse_date(pick("date", "report.date", "reportedtime")),
        source_ip=_ip(source),
        reported_domain=domains[0] if domains else None,
        reported_domains=domains,
        reported_uris=uris,
        auth_results=[],
        sasl_user=None,
        original_headers={},
        reporter=reporter,
        xarf=report,
        fields={k.lower(): [v] for k, v in report.items()},
    )


def parse_xarf_fields(text: str) -> dict[str, str]:
    """Flat fields of an X-ARF report: YAML-style ``Key: value`` lines (v0.1/v0.2) or a
    JSON object (later versions, nested keys joined with ".").  Only simple scalars are kept;
    no YAML library is needed for this subset."""
    stripped = text.strip()
    if stripped.startswith("{"):
        try:
            data = json.loads(stripped)
        except (ValueError, RecursionError):
            data = None
        if isinstance(data, dict):
            flat: dict[str, str] = {}
            _flatten(data, "", flat)
            return flat
    fields: dict[str, str] = {}
    last: str | None = None
    for line in text.splitlines():
        if not line.strip() or line.strip() in ("---", "...") or line.lstrip().startswith("#"):
            continue
        if line[:1] in (" ", "\t") and last is not None:
            fields[last] = clean_line(f"{fields[last]} {line.strip()}")
            continue
        key, sep, value = line.partition(":")
        if not sep or not re.fullmatch(r"[\w.-]{1,80}", key.strip()):
            continue
        last = key.strip()
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        fields[last] = clean_line(value)
        if len(fields) >= MAX_FIELDS:
            break
    return fields


def _flatten(data: object, prefix: str, out: dict[str, str], depth: int = 0) -> None:
    if depth > 10 or len(out) >= MAX_FIELDS:
        return
    if isinstance(data, dict):
        for key, value in data.items():
            _flatten(value, f"{prefix}.{key}" if prefix else str(key), out, depth + 1)
    elif isinstance(data, list):
        if all(not isinstance(v, (dict, list)) for v in data):
            out[prefix] = clean_line(", ".join(str(v) for v in data))
        else:
            for index, value in enumerate(data):
                _flatten(value, f"{prefix}.{index}", out, depth + 1)
    elif data is not None:
        out[prefix] = clean_line(str(data))
