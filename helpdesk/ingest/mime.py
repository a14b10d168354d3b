"""Tolerant MIME plumbing shared by the mail, ARF and DMARC parsers.

The stdlib ``email`` package does the parsing (``policy.default``, ``compat32`` when that raises);
this module adds what real mail needs on top: raw header access, salvage of multiparts whose
boundary does not match, content-transfer decoding that survives lies, bounded walking.
"""

from __future__ import annotations

import binascii
import email
import email.parser
import email.policy
import io
import quopri
import re
from collections.abc import Iterator
from email.generator import BytesGenerator
from email.message import Message
from email.utils import collapse_rfc2231_value

from helpdesk.base.i18n import _
from helpdesk.ingest.errors import ParseError
from helpdesk.ingest.decoding import (
    clean,
    clean_line,
    decode_bytes,
    decode_header,
    to_bytes,
)

MAX_PARTS = 1000
MAX_DEPTH = 20
# Header bounds, checked before the parser sees the mail (a 45 MB Subject kept the stdlib
# parser busy for over a minute): one field, folded lines included, and the whole block.
# A To: of a thousand addresses is some 40 KB; RFC 5322 lines are at most 998 bytes.
MAX_HEADER_FIELD = 64 * 1024
MAX_HEADER_BLOCK = 1024 * 1024

_COMPAT = email.policy.compat32.clone(max_line_length=0)
_LEADING_JUNK = re.compile(rb"\A(?:\xef\xbb\xbf)?(?:[ \t]*(?:\r\n|\r|\n))*")
_MBOX_FROM = re.compile(rb"\A>*From [^\r\n]*(?:\r\n|\r|\n)")


_FIELD_START = re.compile(rb"[!-9;-~]+[ \t]*:")
_FIELD_LINE = re.compile(rb"^(?![ \t\r\n])", re.M)


def header_problem(raw: bytes) -> str | None:
    """Why the top header block of ``raw`` is beyond bounds (a field longer than
    ``MAX_HEADER_FIELD``, the block longer than ``MAX_HEADER_BLOCK``), or None. Only scans:
    cheap on any size, so it runs before any parse. Data that does not start with a header
    field (a bare XML or gzip report) has no header block to bound."""
    head = _LEADING_JUNK.match(raw)
    start = head.end() if head else 0
    mbox = _MBOX_FROM.match(raw, start)
    start = mbox.end() if mbox else start
    if not _FIELD_START.match(raw, start):
        return None
    ends = [i for i in (raw.find(b"\n\n", start), raw.find(b"\r\n\r\n", start)) if i >= 0]
    end = min(ends) if ends else len(raw)
    if end - start > MAX_HEADER_BLOCK:
        return _("header block too long ({size} bytes, limit {limit})").format(
            size=end - start, limit=MAX_HEADER_BLOCK
        )
    block = raw[start:end]
    starts = [m.start() for m in _FIELD_LINE.finditer(block)] + [len(block)]
    for here, after in zip(starts, starts[1:]):
        if after - here > MAX_HEADER_FIELD:
            name = block[here : here + 80].split(b":", 1)[0].decode("ascii", "replace")
            return _("header {name!r} too long ({size} bytes, limit {limit})").format(
                name=clean_line(name)[:60], size=after - here, limit=MAX_HEADER_FIELD
            )
    return None


def load_message(raw: bytes, max_bytes: int) -> Message:
    """Parse raw mail bytes; mbox ``From `` / ``>From `` first lines and a BOM are skipped.
    Headers beyond bounds (``header_problem``) are refused before the parser sees them."""
    if not isinstance(raw, (bytes, bytearray, memoryview)):
        raise ParseError(_("mail input must be bytes"))
    raw = bytes(raw)
    if len(raw) > max_bytes:
        raise ParseError(
            _("mail too large ({size} bytes, limit {limit})").format(size=len(raw), limit=max_bytes)
        )
    problem = header_problem(raw)
    if problem is not None:
        raise ParseError(problem)
    raw = _MBOX_FROM.sub(b"", _LEADING_JUNK.sub(b"", raw), count=1)
    if not raw.strip():
        raise ParseError(_("empty mail"))
    try:
        return email.message_from_bytes(raw, policy=email.policy.default)
    except Exception:  # the stdlib parser registers defects; anything raised is a bug there
        try:
            return email.message_from_bytes(raw, policy=email.policy.compat32)
        except Exception as exc:
            raise ParseError(
                _("unreadable mail structure ({error})").format(error=type(exc).__name__)
            ) from exc


def parse_headers_only(raw: bytes) -> Message:
    """Parse a header block (text/rfc822-headers); the body, if any, is kept unparsed."""
    raw = _MBOX_FROM.sub(b"", _LEADING_JUNK.sub(b"", raw), count=1)
    try:
        return email.message_from_bytes(raw, policy=email.policy.compat32, _class=Message)
    except Exception as exc:
        raise ParseError(
            _("unreadable header block ({error})").format(error=type(exc).__name__)
        ) from exc


# --- headers --------------------------------------------------------------------------------


def header_values(msg: Message, name: str) -> list[str]:
    """All raw (undecoded, possibly folded) values of header ``name``."""
    wanted = name.lower()
    values = []
    for key, value in msg.raw_items():
        if isinstance(key, str) and key.lower() == wanted:
            values.append(value if isinstance(value, str) else str(value))
    return values


def raw_header(msg: Message, name: str) -> str | None:
    values = header_values(msg, name)
    return values[0] if values else None


def text_header(msg: Message, name: str, fallback_charsets: tuple[str, ...] = ()) -> str | None:
    """First value of ``name`` decoded and cleaned, or None when absent."""
    value = raw_header(msg, name)
    return None if value is None else decode_header(value, fallback_charsets)


def content_type(part: Message) -> str:
    try:
        return part.get_content_type().lower()
    except Exception:
        return "text/plain"


def content_charset(part: Message) -> str | None:
    try:
        charset = part.get_content_charset()
    except Exception:
        return None
    return charset if isinstance(charset, str) else None


def disposition(part: Message) -> str | None:
    try:
        value = part.get_content_disposition()
    except Exception:
        return None
    return value.lower() if isinstance(value, str) else None


def filename(part: Message) -> str | None:
    """The part's file name (RFC 2231 and RFC 2047 decoded), without any directory."""
    name: object
    try:
        name = part.get_filename()
        if not name:
            name = part.get_param("name")
            if isinstance(name, tuple):
                name = collapse_rfc2231_value(name)
    except Exception:
        name = None
    if not isinstance(name, str):
        return None
    name = decode_header(name) if "=?" in name or _has_escapes(name) else clean_line(name)
    name = re.split(r"[/\\]", name)[-1].strip()
    return name or None


def _has_escapes(value: str) -> bool:
    return any("\udc80" <= ch <= "\udcff" for ch in value)


# --- payloads -------------------------------------------------------------------------------

_B64_ALPHABET = re.compile(rb"[A-Za-z0-9+/=]*")
_WHITESPACE = re.compile(rb"\s+")


def raw_payload(part: Message) -> bytes | None:
    """The undecoded body of a non-multipart part as the original bytes, or None.

    ``Message.get_payload()`` re-decodes 8-bit bodies with the declared charset and replaces
    what does not fit, so the stored payload is read directly (stable since Python 3.2).
    """
    payload = getattr(part, "_payload", None)
    if isinstance(payload, bytes):
        return payload
    if isinstance(payload, str):
        return to_bytes(payload)
    return None


def payload_bytes(part: Message) -> bytes:
    """The decoded body of a non-multipart part.

    A body declared base64 that is not base64 at all (prose, or an impossible length) is
    returned as it stands instead of being decoded into garbage.
    """
    raw = raw_payload(part)
    if raw is None:
        return b""
    cte = (raw_header(part, "content-transfer-encoding") or "").strip().lower()
    if cte in ("x-uuencode", "uuencode", "x-uue", "uue"):
        try:
            decoded = part.get_payload(decode=True)
        except (ValueError, binascii.Error, UnicodeError, TypeError):
            return raw
        return decoded if isinstance(decoded, bytes) else raw
    return decode_transfer(raw, cte)


def decode_transfer(raw: bytes, encoding: str) -> bytes:
    """Undo a base64 or quoted-printable transfer encoding; other encodings pass through."""
    encoding = encoding.strip().lower()
    try:
        if encoding == "base64":
            return _decode_base64(raw)
        if encoding == "quoted-printable":
            return quopri.decodestring(raw)
    except (ValueError, binascii.Error, UnicodeError, TypeError):
        return raw
    return raw


def _decode_base64(raw: bytes) -> bytes:
    compact = _WHITESPACE.sub(b"", raw)
    if not compact:
        return b""
    if not _B64_ALPHABET.fullmatch(compact):
        # Junk inside: prose (spaces within lines) is not base64; otherwise skip the junk.
        if any(b" " in line.strip() for line in raw.splitlines()):
            return raw
        compact = re.sub(rb"[^A-Za-z0-9+/]", b"", compact)
    data = compact.rstrip(b"=")
    if len(data) % 4 == 1:
        return raw
    data += b"=" * (-len(data) % 4)
    return binascii.a2b_base64(data)


def payload_text(part: Message) -> str:
    """The decoded body of a text part as clean text."""
    return clean(decode_bytes(payload_bytes(part), [content_charset(part)]))


def message_bytes(msg: Message) -> bytes:
    """Serialise an embedded message as faithfully as the parsed form allows."""
    buffer = io.BytesIO()
    try:
        BytesGenerator(buffer, mangle_from_=False, policy=_COMPAT).flatten(msg)
    except Exception:
        return b""
    return buffer.getvalue()


# --- walking --------------------------------------------------------------------------------


def walk(msg: Message, *, into_messages: bool = True) -> Iterator[tuple[Message, Message | None]]:
    """Yield ``(part, parent)`` depth-first, in document order, without recursion.

    Multiparts whose declared boundary never occurs are salvaged (see ``salvage_multipart``).
    With ``into_messages`` the message inside message/rfc822 (and other message/*) parts is
    walked too.  More than MAX_PARTS parts raises ParseError.
    """
    stack: list[tuple[Message, Message | None, int]] = [(msg, None, 0)]
    seen = 0
    while stack:
        part, parent, depth = stack.pop()
        seen += 1
        if seen > MAX_PARTS:
            raise ParseError(_("too many MIME parts (more than {n})").format(n=MAX_PARTS))
        yield part, parent
        if depth >= MAX_DEPTH:
            continue
        ctype = content_type(part)
        found: list[Message] = []
        if ctype.startswith("multipart/"):
            found = children(part) if part.is_multipart() else salvage_multipart(part)
        elif into_messages:
            found = children(part)
        for child in reversed(found):
            stack.append((child, part, depth + 1))


def children(part: Message) -> list[Message]:
    """The sub-parts of a multipart, or the message inside a message/* part; else []."""
    payload = part.get_payload()
    if not isinstance(payload, list):
        return []
    return [child for child in payload if isinstance(child, Message)]


def salvage_multipart(part: Message) -> list[Message]:
    """Split a multipart whose declared boundary does not occur in its body.

    Delimiters are the declared boundary plus the first ``--token`` line found in the body
    (mail_malformed_3: the parts use another boundary; mailformed-headers: the first delimiter
    is mangled).  Without any delimiter, the whole body becomes one part.
    """
    body = raw_payload(part)
    if not body or not body.strip():
        return []
    try:
        declared = part.get_param("boundary")
    except Exception:
        declared = None
    boundaries: set[bytes] = set()
    if isinstance(declared, str) and declared:
        boundaries.add(to_bytes(declared))
    lines = body.splitlines(keepends=True)
    for line in lines:
        match = re.fullmatch(rb"--(\S{1,200}?)(?:--)?\s*", line)
        if match:
            boundaries.add(match.group(1))
            break
    chunks: list[bytes] = []
    current: list[bytes] | None = None
    for line in lines:
        stripped = line.rstrip()
        if stripped.startswith(b"--") and any(
            stripped in (b"--" + b, b"--" + b + b"--") for b in boundaries
        ):
            if current is not None:
                chunks.append(b"".join(current))
            current = None if stripped.endswith(b"--") and stripped[2:-2] in boundaries else []
            continue
        if current is not None:
            current.append(line)
    if current:
        chunks.append(b"".join(current))
    if not chunks:
        chunks = [body]
    parts = []
    for chunk in chunks[:MAX_PARTS]:
        try:
            parts.append(email.message_from_bytes(chunk, policy=part.policy))
        except Exception:
            continue
    return parts


def top_headers(raw: bytes) -> dict[str, str]:
    """The top-level headers, first value of each, lower-case names (a cheap parse)."""
    end = raw.find(b"\n\n")
    end2 = raw.find(b"\r\n\r\n")
    cut = min(x for x in (end, end2, 256 * 1024) if x >= 0)
    try:
        msg = email.parser.BytesHeaderParser(policy=email.policy.compat32).parsebytes(
            raw[: cut + 4]
        )
    except Exception:  # the stdlib parser is tolerant; a failure here only loses hints
        return {}
    out: dict[str, str] = {}
    for name, value in msg.items():
        if isinstance(name, str):
            out.setdefault(name.lower(), str(value))
    return out
