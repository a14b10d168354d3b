"""DMARC aggregate reports: namespaces, compression, limits, mails, every sample, fuzzing."""

from __future__ import annotations

import base64
import gzip
import io
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

from helpdesk.ingest import dmarc
from helpdesk.ingest.dmarc import extract_reports_from_mail, parse_dmarc, summarise
from helpdesk.ingest.errors import ParseError

from .conftest import (
    assert_clear_reason,
    mangled,
    name_of,
    params,
    sample,
    sample_files,
)

RECORDS = """
  <record>
    <row><source_ip>192.0.2.10</source_ip><count>3</count>
      <policy_evaluated><disposition>None</disposition><dkim>Pass</dkim><spf>FAIL</spf></policy_evaluated></row>
    <identifiers><header_from>Example.ORG</header_from><envelope_from></envelope_from></identifiers>
    <auth_results><dkim><domain>example.org</domain><selector>s1</selector><result>pass</result></dkim>
      <spf><domain>bounce.example.net</domain><scope>mfrom</scope><result>softfail</result></spf></auth_results>
  </record>
  <record>
    <row><source_ip>198.51.100.7</source_ip><count>5</count>
      <policy_evaluated><disposition>reject</disposition><dkim>fail</dkim><spf>fail</spf>
        <reason><type>other</type><comment>forged</comment></reason></policy_evaluated></row>
    <identifiers><header_from>example.org</header_from><envelope_from>spoof.example</envelope_from></identifiers>
    <auth_results/>
  </record>"""

pytestmark = pytest.mark.usefixtures("english")  # the reasons read in English


def document(root: str = "<feedback>", close: str = "</feedback>", prefix: str = "") -> bytes:
    body = f"""
  <{prefix}report_metadata><{prefix}org_name>Reporter Inc. </{prefix}org_name><{prefix}email>dmarc@reporter.example</{prefix}email>
    <{prefix}report_id>r-1</{prefix}report_id>
    <{prefix}date_range><{prefix}begin>1700000000</{prefix}begin><{prefix}end>1700086399</{prefix}end></{prefix}date_range>
  </{prefix}report_metadata>
  <{prefix}policy_published><{prefix}domain>example.org</{prefix}domain><{prefix}p>Reject</{prefix}p><{prefix}pct>100</{prefix}pct></{prefix}policy_published>"""
    records = (
        RECORDS
        if not prefix
        else RECORDS.replace("<", f"<{prefix}").replace(f"<{prefix}/", f"</{prefix}")
    )
    return f'<?xml version="1.0" encoding="UTF-8"?>\n{root}{body}{records}\n{close}\n'.encode()


PLAIN = document()


def check_report(report: dmarc.DmarcReport) -> None:
    assert report.org_name == "Reporter Inc."
    assert report.report_id == "r-1"
    assert report.email == "dmarc@reporter.example"
    assert report.begin == datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)
    assert report.end == datetime(2023, 11, 15, 22, 13, 19, tzinfo=UTC)
    assert report.domain == "example.org"
    assert report.policy == {"domain": "example.org", "p": "reject", "pct": "100"}
    first, second = report.records
    assert (first.source_ip, first.count, first.disposition, first.dkim, first.spf) == (
        "192.0.2.10",
        3,
        "none",
        "pass",
        "fail",
    )
    assert (first.header_from, first.envelope_from) == ("example.org", None)
    assert [(a.kind, a.domain, a.result) for a in first.auth_results] == [
        ("dkim", "example.org", "pass"),
        ("spf", "bounce.example.net", "softfail"),
    ]
    assert first.auth_results[0].selector == "s1" and first.auth_results[1].scope == "mfrom"
    assert second.reasons == ["other forged"] and second.envelope_from == "spoof.example"
    assert summarise(report) == {"example.org": {"pass": 3, "fail": 5}}


@pytest.mark.parametrize(
    "xml",
    [
        PLAIN,
        document('<feedback xmlns="urn:ietf:params:xml:ns:dmarc-2.0">'),
        document('<feedback xmlns="http://dmarc.org/dmarc-xml/0.1">'),
        document(
            "<ns1:feedback xmlns:ns1='http://dmarc.org/dmarc-xml/0.1'>",
            "</ns1:feedback>",
            prefix="ns1:",
        ),
        document('<feedback xmlns:xsd="http://www.w3.org/2001/XMLSchema">'),
        document(
            '<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema"><feedback>', "</feedback>"
        ),  # unclosed wrapper
        b"\xef\xbb\xbf" + PLAIN.replace(b"\n", b"\t\r\n"),
    ],
    ids=[
        "plain",
        "dmarc-2.0",
        "dmarc.org-0.1",
        "prefixed",
        "xsd-only",
        "unclosed-wrapper",
        "bom-tabs-crlf",
    ],
)
def test_namespaces_and_layouts(xml: bytes) -> None:
    check_report(parse_dmarc(xml))


def test_filename_is_kept() -> None:
    assert parse_dmarc(PLAIN, "r!example.org!1!2.xml").filename == "r!example.org!1!2.xml"


def test_gzip_with_trailing_garbage() -> None:
    check_report(parse_dmarc(gzip.compress(PLAIN) + b"\r\n\x00trailing junk"))


def _zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def test_zip_and_gzip_inside_zip() -> None:
    check_report(parse_dmarc(_zip({"readme.txt": b"hi", "report.xml": PLAIN})))
    check_report(parse_dmarc(_zip({"report.xml.gz": gzip.compress(PLAIN)})))


def test_invalid_utf8_is_tolerated() -> None:
    report = parse_dmarc(PLAIN.replace(b"Reporter Inc.", b"Reporter \x91Inc."))
    assert report.org_name == "Reporter \ufffdInc."


def test_declared_latin1() -> None:
    xml = PLAIN.replace(b'encoding="UTF-8"', b'encoding="ISO-8859-1"').replace(
        b"Reporter Inc.", b"R\xe9porter"
    )
    assert parse_dmarc(xml).org_name == "Réporter"


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty file"),
        (b"  \n", "empty file"),
        (b"hello, not xml", "neither XML, gzip nor zip"),
        (b"<feedback><record>", "invalid XML"),
        (b"<other/>", "not a DMARC aggregate report"),
        (b"\x1f\x8b\x08\x00garbage", "gzip"),
        (b"PK\x03\x04garbage", "zip"),
        (_zip({}), "empty"),
        (
            b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;">]><feedback>&lol2;</feedback>',
            "invalid XML",
        ),
        (b'<!DOCTYPE feedback SYSTEM "file:///etc/passwd"><feedback/>', "invalid XML"),
    ],
)
def test_bad_input_says_why(data: bytes, reason: str) -> None:
    with pytest.raises(ParseError, match=reason) as caught:
        parse_dmarc(data)
    assert_clear_reason(caught.value)


def test_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ParseError, match="expands beyond"):
        parse_dmarc(
            gzip.compress(b"<feedback>" + b" " * (dmarc.MAX_XML_BYTES + 10) + b"</feedback>")
        )
    monkeypatch.setattr(dmarc, "MAX_XML_BYTES", 1000)
    with pytest.raises(ParseError, match="expands beyond"):
        parse_dmarc(_zip({"report.xml": b"<feedback>" + b" " * 5000 + b"</feedback>"}))
    with pytest.raises(ParseError, match="too large"):
        parse_dmarc(b"<feedback>" + b" " * 5000 + b"</feedback>")
    monkeypatch.undo()
    monkeypatch.setattr(dmarc, "MAX_RECORDS", 1)
    with pytest.raises(ParseError, match="more than 1 records"):
        parse_dmarc(PLAIN)
    monkeypatch.setattr(dmarc, "MAX_COMPRESSED_BYTES", 10)
    with pytest.raises(ParseError, match="compressed report too large"):
        parse_dmarc(gzip.compress(PLAIN))


def test_element_floods_are_refused() -> None:
    with pytest.raises(ParseError, match="descendants"):
        parse_dmarc(
            b"<feedback><record>"
            + b"<x/>" * (dmarc.MAX_PENDING_ELEMENTS + 1)
            + b"</record></feedback>"
        )
    with pytest.raises(ParseError, match="levels deep"):
        parse_dmarc(b"<feedback>" * 100_000)
    with pytest.raises(ParseError, match="invalid XML"):
        parse_dmarc(b"<x>" + b"</feedback>" * 100_000)  # the salvage stays linear


def _mail(parts: list[tuple[str, bytes]]) -> bytes:
    chunks = [
        b"From: noreply-dmarc@reporter.example\r\nSubject: Report domain: example.org\r\n"
        b'Content-Type: multipart/mixed; boundary="M"\r\n\r\n--M\r\nContent-Type: text/plain\r\n\r\nReport attached.\r\n'
    ]
    for header, data in parts:
        chunks.append(
            b"--M\r\n"
            + header.encode()
            + b"\r\nContent-Transfer-Encoding: base64\r\n\r\n"
            + base64.encodebytes(data)
            + b"\r\n"
        )
    chunks.append(b"--M--\r\n")
    return b"".join(chunks)


def test_reports_from_mails() -> None:
    raw = _mail(
        [
            ('Content-Type: application/zip; name="r!example.org!1!2.zip"', _zip({"r.xml": PLAIN})),
            ("Content-Type: application/octet-stream", gzip.compress(PLAIN) + b"junk"),
        ]
    )
    found = extract_reports_from_mail(raw)
    assert [name for name, _ in found] == ["r!example.org!1!2.zip", "report-2.xml.gz"]
    for name, data in found:
        check_report(parse_dmarc(data, name))
    whole_body = (
        b"From: a@reporter.example\r\nContent-Type: application/gzip\r\nContent-Transfer-Encoding: base64\r\n"
        b'Content-Disposition: attachment; filename="r.xml.gz"\r\n\r\n'
        + base64.encodebytes(gzip.compress(PLAIN))
    )
    assert [name for name, _ in extract_reports_from_mail(whole_body)] == ["r.xml.gz"]
    inline = b"From: a@reporter.example\r\nContent-Type: text/plain\r\n\r\n" + PLAIN
    check_report(parse_dmarc(extract_reports_from_mail(inline)[0][1]))


def test_mail_without_report() -> None:
    with pytest.raises(ParseError, match="no DMARC aggregate report") as caught:
        extract_reports_from_mail(b"From: a@example.org\r\nSubject: hi\r\n\r\nhello")
    assert_clear_reason(caught.value)


# --- samples --------------------------------------------------------------------------------

AGGREGATE = sample_files("dmarc/aggregate")
QUARANTINED = {"parsedmarc__empty.xml": "empty file", "parsedmarc__invalid_xml.xml": "invalid XML"}


def _reports(path: Path) -> list[dmarc.DmarcReport]:
    data = path.read_bytes()
    if path.suffix == ".eml":
        return [parse_dmarc(payload, name) for name, payload in extract_reports_from_mail(data)]
    return [parse_dmarc(data, path.name)]


@pytest.mark.parametrize("path", params(AGGREGATE), ids=name_of)
def test_every_aggregate_sample_parses_or_says_why(path: Path) -> None:
    if path.name in QUARANTINED:
        with pytest.raises(ParseError, match=QUARANTINED[path.name]) as caught:
            _reports(path)
        assert_clear_reason(caught.value)
        return
    for report in _reports(path):
        assert report.records, "a namespaced report must not silently give 0 records"
        assert report.domain
        assert all(
            r.disposition in (None, "none", "quarantine", "reject", "pass") for r in report.records
        )
        assert all(
            r.dkim in (None, "pass", "fail") and r.spf in (None, "pass", "fail")
            for r in report.records
        )


@pytest.mark.parametrize(
    ("name", "facts"),
    [
        (
            "dmarc-report-viewer__gmxnet.xml",
            {"org_name": "GMX", "domain": "myserver.com", "records": 1},
        ),
        ("dmarc-report-viewer__aol.xml", {"org_name": "AOL", "domain": "website.com"}),
        (
            "dmarc-report-viewer__mailru.xml",
            {"org_name": "Mail.Ru", "summary": {"foobar.de": {"pass": 0, "fail": 1}}},
        ),
        (
            "parsedmarc__rfc9990-sample.xml",
            {"domain": "example.com", "summary": {"example.com": {"pass": 123, "fail": 0}}},
        ),
        (
            "parsedmarc__rfc9990-example.net!example.com!1700000000!1700086399.xml",
            {"records": 2, "summary": {"example.com": {"pass": 5, "fail": 2}}},
        ),
        (
            "parsedmarc__report_with_upper_cased_pass.xml",
            {"org_name": "example.com", "summary": {"example.com": {"pass": 1, "fail": 0}}},
        ),
        ("parsedmarc__usssa.com!example.com!1538784000!1538870399.xml", {"records": 2}),
        (
            "parsedmarc__ikea.com!example.de!1538690400!1538776800.xml",
            {"org_name": "ikea.com", "domain": "example.de"},
        ),
        ("parsedmarc__invalid_utf_8.xml", {"summary": {"bad_byte\ufffd": {"pass": 0, "fail": 1}}}),
        (
            "parsedmarc__!example.com!1538204542!1538463818.xml",
            {"org_name": None, "domain": "example.com"},
        ),
        (
            "parsedmarc__estadocuenta1.infonacot.gob.mx!example.com!1536853302!1536939702!2940.xml.zip",
            {"report_id": "2940"},
        ),
        (
            "parsedmarc__fastmail.com!example.com!1516060800!1516147199!102675056.xml.gz",
            {"org_name": "FastMail Pty Ltd"},
        ),
        (
            "parsedmarc__google_aggregate_report_email.eml",
            {"org_name": "google.com", "domain": "borschow.com"},
        ),
        ("parsedmarc__twilight.eml", {"org_name": "google.com", "domain": "twlnet.com"}),
        ("parsedmarc__mimecast-weird-gzip.eml", {"org_name": "Mimecast", "domain": "ab.id.au"}),
    ],
)
def test_aggregate_sample_facts(name: str, facts: dict[str, object]) -> None:
    sample(f"dmarc/aggregate/{name}")  # skips when absent
    (report,) = _reports(next(p for p in AGGREGATE if p.name == name))
    for field, expected in facts.items():
        if field == "records":
            assert len(report.records) == expected
        elif field == "summary":
            assert summarise(report) == expected
        else:
            assert getattr(report, field) == expected, field


def test_google_report_source_ip() -> None:
    ((name, data),) = extract_reports_from_mail(
        sample("dmarc/aggregate/parsedmarc__google_aggregate_report_email.eml")
    )
    assert name == "google.com!borschow.com!1549929600!1550015999.zip"
    (record,) = parse_dmarc(data, name).records
    assert (record.source_ip, record.disposition) == ("92.53.116.102", "reject")


# --- fuzzing --------------------------------------------------------------------------------

_ORIGINALS = [p.read_bytes() for p in AGGREGATE if p.stat().st_size < 30000] + [
    PLAIN,
    gzip.compress(PLAIN),
    _zip({"r.xml": PLAIN}),
]


@given(mangled(_ORIGINALS))
@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
def test_mangled_reports_parse_or_raise_parse_error(data: bytes) -> None:
    for attempt in (lambda: parse_dmarc(data), lambda: extract_reports_from_mail(data)):
        try:
            attempt()
        except ParseError as error:
            assert_clear_reason(error)
