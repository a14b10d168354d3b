"""DMARC aggregate (RUA) reports: plain XML, gzip or zip, alone or attached to a mail.

Untrusted XML goes through defusedxml only.  Elements are matched on their local name, so
reports with no namespace, ``urn:ietf:params:xml:ns:dmarc-2.0`` or the old dmarc.org 0.1 one
all parse.  Decompression is streamed and bounded (see the limits below).
"""

from __future__ import annotations

import io
import re
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import lru_cache
from xml.etree.ElementTree import Element
from xml.etree.ElementTree import ParseError as XMLParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import iterparse

from helpdesk.base.i18n import N_, _
from helpdesk.ingest import mime
from helpdesk.ingest.errors import ParseError, guarded
from helpdesk.ingest.decoding import clean_line

MAX_COMPRESSED_BYTES = 20 * 1024 * 1024  # gzip or zip input
MAX_XML_BYTES = 50 * 1024 * 1024  # XML, given as such or once decompressed
MAX_RECORDS = 100_000
MAX_PENDING_ELEMENTS = 10_000  # elements inside one record (or other child of <feedback>)
MAX_XML_DEPTH = 32  # reports are 6 levels deep
MAX_MAIL_BYTES = 2 * MAX_XML_BYTES  # a base64 attachment is a third larger

_GZIP_MAGIC = b"\x1f\x8b"
_ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08")  # member, empty archive, spanned
_CHUNK = 64 * 1024


@dataclass(frozen=True, slots=True)
class DmarcAuthResult:
    kind: str  # "dkim" or "spf"
    domain: str | None
    result: str | None
    selector: str | None = None  # DKIM selector
    scope: str | None = None  # SPF scope (mfrom, helo)


@dataclass(frozen=True, slots=True)
class DmarcRecord:
    source_ip: str | None
    count: int
    disposition: str | None
    dkim: str | None  # policy_evaluated: DKIM aligned pass/fail
    spf: str | None  # policy_evaluated: SPF aligned pass/fail
    header_from: str | None
    envelope_from: str | None
    envelope_to: str | None = None
    reasons: list[str] = field(default_factory=list)
    auth_results: list[DmarcAuthResult] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """DMARC passes when either aligned DKIM or aligned SPF passes."""
        return self.dkim == "pass" or self.spf == "pass"


@dataclass(frozen=True, slots=True)
class DmarcReport:
    org_name: str | None
    report_id: str | None
    begin: datetime | None
    end: datetime | None
    domain: str | None
    policy: dict[str, str]
    records: list[DmarcRecord]
    email: str | None = None
    filename: str | None = None


@guarded(N_("the DMARC report"))
def parse_dmarc(data: bytes, filename: str | None = None) -> DmarcReport:
    """Parse one aggregate report given as XML, gzip or zip bytes."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise ParseError(_("DMARC report input must be bytes"))
    data = bytes(data)
    if not data.strip():
        raise ParseError(_("empty file"))
    compressed = data.startswith((_GZIP_MAGIC, *_ZIP_MAGICS))
    limit = MAX_COMPRESSED_BYTES if compressed else MAX_XML_BYTES
    if len(data) > limit:
        kind = _("compressed report") if compressed else _("report")
        raise ParseError(
            _("{kind} too large ({size} bytes, limit {limit})").format(
                kind=kind, size=len(data), limit=limit
            )
        )
    report = _parse_xml(_unpack(data))
    return replace(report, filename=clean_line(filename) if filename else None)


# --- unpacking ------------------------------------------------------------------------------


def _unpack(data: bytes, depth: int = 0) -> bytes:
    if data.startswith(_GZIP_MAGIC):
        data = gunzip(data)
    elif data.startswith(_ZIP_MAGICS):
        data = unzip_report(data)
    else:
        return data
    if depth < 1 and data.startswith((_GZIP_MAGIC, *_ZIP_MAGICS)):
        return _unpack(data, depth + 1)  # a .xml.gz inside a .zip, say
    return data


def gunzip(data: bytes) -> bytes:
    """Decompress one gzip member, streaming, ignoring trailing bytes after its end
    (Mimecast), refusing more than MAX_XML_BYTES of output."""
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    out = bytearray()
    stream = io.BytesIO(data)
    try:
        while not inflater.eof:
            chunk = inflater.unconsumed_tail or stream.read(_CHUNK)
            if not chunk:
                break
            out += inflater.decompress(chunk, MAX_XML_BYTES + 1 - len(out))
            if len(out) > MAX_XML_BYTES:
                raise ParseError(
                    _("gzip report expands beyond {limit} bytes").format(limit=MAX_XML_BYTES)
                )
    except zlib.error as exc:
        raise ParseError(_("corrupt gzip data ({error})").format(error=exc)) from exc
    if not inflater.eof and not out:
        raise ParseError(_("truncated gzip data"))
    return bytes(out)


def unzip_report(data: bytes) -> bytes:
    """The XML member of a zip archive (the first ``.xml``, else the only member), bounded."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = [i for i in archive.infolist() if not i.is_dir()]
            if not members:
                raise ParseError(_("zip archive is empty"))
            xml_members = [i for i in members if i.filename.lower().endswith((".xml", ".xml.gz"))]
            member = (xml_members or members)[0]
            if len(members) > 1 and not xml_members:
                raise ParseError(_("zip archive holds several files and no .xml"))
            if member.file_size > MAX_XML_BYTES:
                raise ParseError(
                    _("zip member expands beyond {limit} bytes").format(limit=MAX_XML_BYTES)
                )
            out = bytearray()
            with archive.open(member) as stream:  # file_size can lie: count what comes out
                while chunk := stream.read(_CHUNK):
                    out += chunk
                    if len(out) > MAX_XML_BYTES:
                        raise ParseError(
                            _("zip member expands beyond {limit} bytes").format(limit=MAX_XML_BYTES)
                        )
            return bytes(out)
    except ParseError:
        raise
    except (
        zipfile.BadZipFile,
        zipfile.LargeZipFile,
        NotImplementedError,
        RuntimeError,
        EOFError,
        OSError,
        ValueError,
        zlib.error,
    ) as exc:
        raise ParseError(_("unreadable zip archive ({error})").format(error=exc)) from exc


# --- XML ------------------------------------------------------------------------------------

_DECLARATION = re.compile(rb"\A\s*<\?xml[^>]*\?>", re.IGNORECASE)
_ENCODING = re.compile(rb"encoding\s*=\s*[\"']([A-Za-z0-9._-]+)[\"']", re.IGNORECASE)
_FEEDBACK_OPEN = re.compile(rb"<(?:[\w.-]+:)?feedback[\s>]")
_FEEDBACK_CLOSE = re.compile(rb"</(?:[\w.-]+:)?feedback\s*>")


def _parse_xml(xml: bytes) -> DmarcReport:
    xml = xml.lstrip(b"\xef\xbb\xbf \t\r\n")
    if not xml:
        raise ParseError(_("empty file"))
    if not xml.startswith(b"<"):
        raise ParseError(_("not a DMARC report: neither XML, gzip nor zip"))
    first_error: str | None = None
    for candidate in _candidates(xml):
        try:
            return _read_feedback(candidate)
        except _XMLFailure as exc:
            first_error = first_error or str(exc)
    raise ParseError(_("invalid XML: {error}").format(error=first_error))


def _candidates(xml: bytes) -> Iterator[bytes]:
    """The document as given, then repaired versions, each tried only if the previous failed:
    invalid bytes replaced, then the <feedback> element cut out of surrounding junk (ikea's
    unclosed xs:schema wrapper)."""
    yield xml
    repaired = _repair_encoding(xml)
    if repaired is not None:
        yield repaired
    for document in (xml, repaired):
        if document is None:
            continue
        inner = _feedback_element(document)
        if inner is not None and inner != document.strip():
            yield inner


def _feedback_element(document: bytes) -> bytes | None:
    """From the first <feedback> opening tag to the last closing one (linear time)."""
    opening = _FEEDBACK_OPEN.search(document)
    end = None
    for end_match in _FEEDBACK_CLOSE.finditer(document, opening.start() if opening else 0):
        end = end_match.end()
    if opening is None or end is None:
        return None
    return document[opening.start() : end]


class _XMLFailure(Exception):
    pass


def _repair_encoding(xml: bytes) -> bytes | None:
    """The document with bytes invalid in its declared encoding (UTF-8 by default) replaced,
    re-encoded as UTF-8 under a matching declaration; None when it already decodes."""
    declared = _DECLARATION.match(xml)
    encoding = "utf-8"
    if declared:
        found = _ENCODING.search(declared.group(0))
        if found:
            encoding = found.group(1).decode("ascii").lower()
    try:
        xml.decode(encoding)
        return None  # decodes fine: the problem is elsewhere
    except LookupError:
        text = xml.decode("utf-8", "replace")
    except UnicodeDecodeError:
        text = xml.decode(encoding, "replace")
    body = _DECLARATION.sub(b"", text.encode("utf-8"), count=1)
    return b'<?xml version="1.0" encoding="UTF-8"?>' + body


@lru_cache(maxsize=512)
def _local_name(tag: str) -> str:
    return tag.rsplit("}", 1)[-1].lower()


def _local(tag: object) -> str:
    return _local_name(tag) if isinstance(tag, str) else ""


def _read_feedback(xml: bytes) -> DmarcReport:
    """Stream the document: each direct child of <feedback> is read when it ends, then
    dropped, so memory stays bounded by the largest single record."""
    metadata: dict[str, Element] = {}
    policy: dict[str, str] = {}
    records: list[DmarcRecord] = []
    feedback: Element | None = None
    feedback_depth = depth = pending = 0
    done = False
    try:
        for event, element in iterparse(io.BytesIO(xml), events=("start", "end"), forbid_dtd=True):
            if event == "start":
                depth += 1
                if depth > MAX_XML_DEPTH:
                    raise ParseError(
                        _("XML nested more than {n} levels deep").format(n=MAX_XML_DEPTH)
                    )
                if feedback is None and _local(element.tag) == "feedback":
                    feedback, feedback_depth = element, depth
                continue
            depth -= 1
            pending += 1
            if pending > MAX_PENDING_ELEMENTS:
                raise ParseError(
                    _("XML element with more than {n} descendants").format(n=MAX_PENDING_ELEMENTS)
                )
            if feedback is None or depth != feedback_depth:
                if element is feedback:
                    done = True
                    break
                continue
            name = _local(element.tag)
            if name == "record":
                records.append(_record(element))
                if len(records) > MAX_RECORDS:
                    raise ParseError(_("report has more than {n} records").format(n=MAX_RECORDS))
            elif name == "report_metadata":
                metadata = _kids(element)  # the element stays readable once detached
            elif name == "policy_published":
                policy = {
                    _local(c.tag): v
                    for c in element
                    if _local(c.tag) and (v := _value(c)) is not None
                }
            del feedback[-1]  # the child that just ended is the last one
            pending = 0
    except (XMLParseError, DefusedXmlException, ValueError, UnicodeError, LookupError) as exc:
        raise _XMLFailure(clean_line(str(exc)) or type(exc).__name__) from exc
    if not done:
        raise ParseError(_("XML is not a DMARC aggregate report (no <feedback> element)"))
    dates = _kids(metadata.get("date_range"))
    return DmarcReport(
        org_name=_text(metadata.get("org_name")),
        report_id=_text(metadata.get("report_id")),
        begin=_timestamp(_text(dates.get("begin"))),
        end=_timestamp(_text(dates.get("end"))),
        domain=policy.get("domain"),
        policy=policy,
        records=records,
        email=_text(metadata.get("email")),
    )


def _kids(element: Element | None) -> dict[str, Element]:
    """Children by local name (the first one wins)."""
    kids: dict[str, Element] = {}
    if element is not None:
        for child in element:
            kids.setdefault(_local(child.tag), child)
    return kids


def _text(element: Element | None) -> str | None:
    if element is None or element.text is None:
        return None
    return clean_line(element.text) or None


def _value(element: Element | None) -> str | None:
    """Text normalised for comparisons: trimmed, lower-case ("Pass" -> "pass")."""
    text = _text(element)
    return text.lower() if text else None


def _timestamp(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromtimestamp(int(float(text)), tz=UTC)
    except (ValueError, OverflowError, OSError):
        return None


def _count(text: str | None) -> int:
    try:
        return max(0, int(text or "0"))
    except ValueError:
        return 0


def _record(element: Element) -> DmarcRecord:
    kids = _kids(element)
    row = _kids(kids.get("row"))
    evaluated_element = row.get("policy_evaluated")
    evaluated = _kids(evaluated_element)
    identifiers = _kids(kids.get("identifiers"))
    auth = kids.get("auth_results")
    results = []
    for item in auth if auth is not None else ():
        kind = _local(item.tag)
        if kind in ("dkim", "spf"):
            fields = _kids(item)
            results.append(
                DmarcAuthResult(
                    kind=kind,
                    domain=_value(fields.get("domain")),
                    result=_value(fields.get("result")),
                    selector=_text(fields.get("selector")) if kind == "dkim" else None,
                    scope=_value(fields.get("scope")) if kind == "spf" else None,
                )
            )
    reasons = []
    for reason in evaluated_element if evaluated_element is not None else ():
        if _local(reason.tag) == "reason":
            fields = _kids(reason)
            label = " ".join(
                filter(None, (_value(fields.get("type")), _text(fields.get("comment"))))
            )
            if label:
                reasons.append(label)
    return DmarcRecord(
        source_ip=_text(row.get("source_ip")),
        count=_count(_text(row.get("count"))),
        disposition=_value(evaluated.get("disposition")),
        dkim=_value(evaluated.get("dkim")),
        spf=_value(evaluated.get("spf")),
        header_from=_value(identifiers.get("header_from")),
        envelope_from=_value(identifiers.get("envelope_from")),
        envelope_to=_value(identifiers.get("envelope_to")),
        reasons=reasons,
        auth_results=results,
    )


# --- mails and summaries ----------------------------------------------------------------------

_REPORT_TYPES = frozenset(
    {
        "application/gzip",
        "application/x-gzip",
        "application/x-gunzip",
        "application/gzip-compressed",
        "application/zip",
        "application/x-zip",
        "application/x-zip-compressed",
        "application/xml",
        "text/xml",
        "application/octet-stream",
    }
)


@guarded(N_("the mail"))
def extract_reports_from_mail(raw: bytes) -> list[tuple[str, bytes]]:
    """``(file name, bytes)`` of every report a mail carries: attachments, or the whole body
    (Mimecast sends the gzip as the message itself).  ParseError when there is none."""
    msg = mime.load_message(raw, MAX_MAIL_BYTES)
    found: list[tuple[str, bytes]] = []
    for part, _parent in mime.walk(msg):
        if part.is_multipart():
            continue
        ctype = mime.content_type(part)
        name = mime.filename(part)
        named = name is not None and name.lower().endswith((".xml", ".gz", ".zip", ".xml.gz"))
        if ctype not in _REPORT_TYPES and not named and ctype != "text/plain":
            continue
        data = mime.payload_bytes(part)
        if _looks_like_report(data):
            found.append((name or f"report-{len(found) + 1}{_extension(data)}", data))
    if not found:
        raise ParseError(_("mail carries no DMARC aggregate report (no XML, gzip or zip part)"))
    return found


def _looks_like_report(data: bytes) -> bool:
    if data.startswith((_GZIP_MAGIC, *_ZIP_MAGICS)):
        return True
    head = data[:4096].lstrip(b"\xef\xbb\xbf \t\r\n")
    return head.startswith(b"<") and b"feedback" in data[:65536]


def _extension(data: bytes) -> str:
    if data.startswith(_GZIP_MAGIC):
        return ".xml.gz"
    return ".zip" if data.startswith(_ZIP_MAGICS) else ".xml"


def summarise(report: DmarcReport) -> dict[str, dict[str, int]]:
    """Messages passing and failing DMARC per header-from domain, weighted by count."""
    summary: dict[str, dict[str, int]] = {}
    for record in report.records:
        domain = record.header_from or report.domain or "(unknown)"
        counts = summary.setdefault(domain, {"pass": 0, "fail": 0})
        counts["pass" if record.passed else "fail"] += record.count
    return summary
