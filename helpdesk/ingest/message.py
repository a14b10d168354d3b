"""One incoming mail, parsed into what the helpdesk needs (ids, people, date, text, files)."""

from __future__ import annotations

import hashlib
import re
import warnings
from dataclasses import dataclass, field
from datetime import UTC, datetime, timezone
from email.message import Message
from email.utils import parsedate_to_datetime

from dateutil import parser as date_parser

from helpdesk.base.i18n import N_
from helpdesk.ingest import mime
from helpdesk.ingest.errors import guarded
from helpdesk.ingest.decoding import clean_line, decode_header, guess_language, html_to_text

MAX_MAIL_BYTES = 50 * 1024 * 1024
MAX_BODY_CHARS = 1_000_000


@dataclass(frozen=True, slots=True)
class Attachment:
    filename: str | None
    content_type: str
    data: bytes


@dataclass(frozen=True, slots=True)
class ParsedMail:
    message_id: str | None
    in_reply_to: str | None
    references: list[str]
    subject: str
    from_addr: str | None
    from_name: str
    to_addrs: list[str]
    date: datetime | None
    text_body: str
    attachments: list[Attachment]
    raw_sha256: str
    lang_guess: str | None
    cc_addrs: list[str] = field(default_factory=list)


@guarded(N_("the mail"))
def parse_mail(raw: bytes) -> ParsedMail:
    """Parse raw mail bytes.  Raises ParseError (only) when nothing usable can be read."""
    msg = mime.load_message(raw, MAX_MAIL_BYTES)
    return _extract(msg, bytes(raw))


def _extract(msg: Message, raw: bytes) -> ParsedMail:
    leaves = _leaves(msg)
    charsets = tuple(c for c in (mime.content_charset(p) for p, _ in leaves) if c)[:4]
    subject = mime.text_header(msg, "subject", charsets) or ""
    from_name, from_addr = "", None
    for name in ("from", "sender"):
        found = addresses(mime.header_values(msg, name), charsets)
        if found:
            from_name, from_addr = found[0]
            break
    text_body, attachments = _body_and_attachments(leaves)
    return ParsedMail(
        message_id=_first_id(mime.raw_header(msg, "message-id")),
        in_reply_to=_first_id(mime.raw_header(msg, "in-reply-to")),
        references=_all_ids(" ".join(mime.header_values(msg, "references"))),
        subject=subject,
        from_addr=from_addr,
        from_name=from_name,
        to_addrs=[a for _, a in addresses(mime.header_values(msg, "to"), charsets)],
        cc_addrs=[a for _, a in addresses(mime.header_values(msg, "cc"), charsets)],
        date=parse_date(mime.raw_header(msg, "date")),
        text_body=text_body,
        attachments=attachments,
        raw_sha256=hashlib.sha256(raw).hexdigest(),
        lang_guess=guess_language(f"{subject}\n{text_body}"),
    )


# --- body ------------------------------------------------------------------------------------


def _leaves(msg: Message) -> list[tuple[Message, bool]]:
    """Leaf parts with a flag "inside an embedded message" (forwarded mail, report copy)."""
    result: list[tuple[Message, bool]] = []
    embedded: set[int] = set()
    for part, parent in mime.walk(msg):
        inside = parent is not None and (
            id(parent) in embedded or mime.content_type(parent).startswith("message/")
        )
        if inside:
            embedded.add(id(part))
        is_container = mime.content_type(part).startswith("multipart/") or part.is_multipart()
        if not is_container or mime.content_type(part).startswith("message/"):
            result.append((part, inside))
    return result


def _body_and_attachments(leaves: list[tuple[Message, bool]]) -> tuple[str, list[Attachment]]:
    plain: list[str] = []
    html: list[str] = []
    nested_plain: list[str] = []
    attachments: list[Attachment] = []
    for part, inside in leaves:
        ctype = mime.content_type(part)
        name = mime.filename(part)
        if ctype.startswith("message/"):
            if not inside:
                embedded = mime.children(part)
                data = mime.message_bytes(embedded[0]) if embedded else mime.payload_bytes(part)
                attachments.append(Attachment(name, ctype, data))
            continue
        if inside:
            if ctype == "text/plain":
                nested_plain.append(mime.payload_text(part))
            continue
        is_attachment = mime.disposition(part) == "attachment" or name is not None
        if ctype in ("text/plain", "text/html") and not is_attachment:
            (plain if ctype == "text/plain" else html).append(mime.payload_text(part))
        else:
            attachments.append(Attachment(name, ctype, mime.payload_bytes(part)))
    if any(t.strip() for t in plain):
        text = "\n\n".join(plain)
    elif any(h.strip() for h in html):
        text = "\n\n".join(html_to_text(h) for h in html)
    else:
        text = "\n\n".join(nested_plain)
    text = "\n".join(line.rstrip() for line in text.strip().splitlines())
    return _BLANK_RUNS.sub("\n\n", text)[:MAX_BODY_CHARS], attachments


_BLANK_RUNS = re.compile(r"\n{3,}")


# --- headers ---------------------------------------------------------------------------------

_ID = re.compile(r"<[^<>\s]+(?:\s[^<>\s]+)?>")


def _first_id(value: str | None) -> str | None:
    if value is None:
        return None
    ids = _all_ids(value)
    if ids:
        return ids[0]
    text = clean_line(decode_header(value))
    return text or None


def _all_ids(value: str) -> list[str]:
    return [clean_line(decode_header(m)) for m in _ID.findall(value)][:100]


def parse_date(value: str | None) -> datetime | None:
    """An aware datetime from a Date-like value (RFC 5322 or ISO 8601), or None.

    Values without a zone are taken as UTC; zones are fixed offsets, never the machine's.
    """
    if not value:
        return None
    text = clean_line(decode_header(value))[:200]
    result: datetime | None = None
    try:
        result = datetime.fromisoformat(text)
    except ValueError:
        try:
            result = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError, OverflowError):
            try:  # odd spellings; missing parts would come from 1900 and be refused below
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # unknown zone names ("JST"): taken as UTC
                    result = date_parser.parse(text, fuzzy=True, default=datetime(1900, 1, 1))
            except (ValueError, OverflowError, TypeError, LookupError, ArithmeticError):
                return None
    if result is None or not 1970 <= result.year <= 2200:
        return None
    offset = result.utcoffset()
    return result.replace(tzinfo=UTC if offset is None else timezone(offset))


def addresses(values: list[str], charsets: tuple[str, ...] = ()) -> list[tuple[str, str]]:
    """``(display name, address)`` pairs, decoding display names after splitting.

    Splitting before decoding keeps an encoded display name containing a comma in one piece;
    ``alice@example.com <bob@example.com>`` gives the name "alice@example.com" and address bob.
    """
    result = []
    for value in values:
        for piece in _split_addresses(value):
            pair = _one_address(piece, charsets)
            if pair is not None:
                result.append(pair)
            if len(result) >= 500:
                return result
    return result


def _split_addresses(value: str) -> list[str]:
    pieces: list[str] = []
    buf: list[str] = []
    quoted = escaped = False
    angle = paren = 0
    for ch in value:
        if escaped:
            escaped = False
        elif ch == "\\" and (quoted or paren):
            escaped = True
        elif ch == '"' and not paren:
            quoted = not quoted
        elif not quoted:
            if ch == "(":
                paren += 1
            elif ch == ")" and paren:
                paren -= 1
            elif ch == "<" and not paren:
                angle += 1
            elif ch == ">" and angle:
                angle -= 1
            elif ch == "," and not angle and not paren:
                pieces.append("".join(buf))
                buf = []
                continue
        buf.append(ch)
    pieces.append("".join(buf))
    return [p for p in (p.strip() for p in pieces) if p]


_ANGLE = re.compile(r"<([^<>]*)>")
_COMMENT = re.compile(r"\(([^()]*)\)")


def _one_address(piece: str, charsets: tuple[str, ...]) -> tuple[str, str] | None:
    angles = list(_ANGLE.finditer(piece))
    if angles:
        last = angles[-1]
        addr = last.group(1)
        name = piece[: last.start()] + piece[last.end() :]
    else:
        comment = _COMMENT.search(piece)
        name = comment.group(1) if comment else ""
        addr = _COMMENT.sub(" ", piece)
    addr = "".join(decode_header(addr, charsets).split()).strip("<>;")
    if ":" in addr and "@" in addr.split(":", 1)[1]:
        addr = addr.split(":", 1)[1]  # group syntax or a "mailto:" prefix
    if "@" not in addr:
        return None
    name = name.strip().strip(",;").strip()
    if len(name) >= 2 and name[0] == name[-1] == '"':
        name = name[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    return decode_header(name, charsets).strip('"').strip(), addr
