"""ARF (RFC 5965 / 6591) and X-ARF reports: hand-made quirks, every sample, fuzzing."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

from helpdesk.ingest.arf import parse_arf, parse_xarf_fields, sasl_user
from helpdesk.ingest.errors import ParseError

from .conftest import (
    assert_clear_reason,
    mangled,
    name_of,
    params,
    sample,
    sample_files,
)

FIELDS = (
    b"Feedback-Type: abuse\n"
    b"User-Agent: Tiny/1.0\n"
    b"Version: 1\n"
    b"Original-Mail-From: <member@example.org>\n"
    b"Original-Rcpt-To: <victim@example.net>\n"
    b"Original-Rcpt-To: other@example.net\n"
    b"Received-Date: Thu, 8 Mar 2005 14:00:00 -0500\n"
    b"Source-IP: 192.0.2.7\n"
    b"Authentication-Results: mx.example.net;\n"
    b"  auth=pass smtp.auth=member@example.org\n"
    b"Reported-Domain: example.org\n"
    b"Reported-Uri: http://example.org/x\n"
)
ORIGINAL = b"From: Member <member@example.org>\nSubject: =?utf-8?Q?Offre_sp=C3=A9ciale?=\nMessage-ID: <m1@example.org>\n\nbuy now"

pytestmark = pytest.mark.usefixtures("english")  # the reasons read in English


def report(
    feedback_part: bytes,
    original_part: bytes = b"Content-Type: message/rfc822\n\n" + ORIGINAL,
    outer: bytes = b"multipart/report; report-type=feedback-report",
) -> bytes:
    return (
        b"From: FBL <fbl@reporter.example>\nSubject: FW: offer\nContent-Type: "
        + outer
        + b'; boundary="B"\n\n'
        b"--B\nContent-Type: text/plain\n\nThis is an abuse report.\n"
        b"--B\n" + feedback_part + b"\n--B\n" + original_part + b"\n--B--\n"
    )


def test_minimal_report() -> None:
    parsed = parse_arf(report(b"Content-Type: message/feedback-report\n\n" + FIELDS))
    assert parsed.kind == "arf"
    assert parsed.feedback_type == "abuse"
    assert (parsed.user_agent, parsed.version) == ("Tiny/1.0", "1")
    assert parsed.original_mail_from == "member@example.org"
    assert parsed.original_rcpt_to == ["victim@example.net", "other@example.net"]
    assert parsed.arrival_date == datetime(2005, 3, 8, 19, 0, tzinfo=UTC)
    assert parsed.source_ip == "192.0.2.7"
    assert parsed.reported_domain == "example.org"
    assert parsed.reported_uris == ["http://example.org/x"]
    assert parsed.auth_results == ["mx.example.net; auth=pass smtp.auth=member@example.org"]
    assert parsed.sasl_user == "member@example.org"
    assert parsed.original_headers == {
        "From": "Member <member@example.org>",
        "Subject": "Offre spéciale",
        "Message-ID": "<m1@example.org>",
    }
    assert parsed.reporter == "fbl@reporter.example"
    assert parsed.xarf == {}


def test_base64_feedback_part_in_multipart_mixed() -> None:
    encoded = base64.encodebytes(FIELDS.replace(b"\n", b"\r\n"))
    parsed = parse_arf(
        report(
            b"Content-Type: message/feedback-report\nContent-Transfer-Encoding: base64\n\n"
            + encoded,
            outer=b"multipart/mixed",
        )
    )
    assert (parsed.feedback_type, parsed.source_ip, parsed.sasl_user) == (
        "abuse",
        "192.0.2.7",
        "member@example.org",
    )


def test_fields_without_blank_line_before_boundary_and_header_spellings() -> None:
    raw = report(
        b"Content-Type: message/feedback-report\n\nUser-Agent: X/1\nVersion: 0.1\nSource-Ip: 2001:db8::1\nFeedback-Type: Opt-Out",
        b"Content-Type: text/rfc822-header\n\nFrom: a@example.org\nSubject: hi\n\nbody kept out",
    )
    parsed = parse_arf(raw)
    assert (parsed.feedback_type, parsed.version, parsed.source_ip) == (
        "opt-out",
        "0.1",
        "2001:db8::1",
    )
    assert parsed.original_headers == {"From": "a@example.org", "Subject": "hi"}


def test_cr_line_endings_and_mbox_lines() -> None:
    raw = b"From fbl@reporter.example Thu Jan 1 00:00:00 2015\n" + report(
        b"Content-Type: message/feedback-report\n\n" + FIELDS,
        b"Content-Type: message/rfc822\n\n>From member@example.org Thu Jan 1 2015\n" + ORIGINAL,
    )
    parsed = parse_arf(raw.replace(b"\n", b"\r"))
    assert parsed.feedback_type == "abuse"
    assert parsed.original_headers["Message-ID"] == "<m1@example.org>"


def test_hostile_field_values_are_cleaned() -> None:
    parsed = parse_arf(
        report(
            b"Content-Type: message/feedback-report\n\nFeedback-Type: abuse\x1b]52;c;eA==\x07\nUser-Agent: \x1b[2JX"
        )
    )
    assert (parsed.feedback_type, parsed.user_agent) == ("abuse", "X")


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (
            report(b"Content-Type: text/plain\n\nonly prose"),
            "multipart/report without a machine-readable feedback part",
        ),
        (
            report(b"Content-Type: message/feedback-report\n\nUser-Agent: X/1\nVersion: 1\n"),
            "without a Feedback-Type",
        ),
        (b"From: a@example.org\nSubject: hello\n\njust a mail", "not an abuse report"),
        (b"", "empty"),
    ],
)
def test_rejections_say_why(raw: bytes, reason: str) -> None:
    with pytest.raises(ParseError, match=reason) as caught:
        parse_arf(raw)
    assert_clear_reason(caught.value)


def test_xarf_inline() -> None:
    raw = (
        b'From: Reporter <abuse@reporter.example>\nX-XARF: PLAIN\nContent-Type: multipart/mixed; boundary="B"\n\n'
        b"--B\nContent-Type: text/plain\n\nHuman text\n"
        b'--B\nContent-Type: text/plain; name="report.txt"\n\n---\nReported-From: abuse@reporter.example\n'
        b"Category: abuse\nReport-Type: login-attack\nService: ssh\nVersion: 0.2\nUser-Agent: bot 1\n"
        b"Date: Fri, 31 Jan 2014 07:19:02 +0100\nSource-Type: ip-address\nSource: 192.0.2.99\nPort: 22\n"
        b"--B--\n"
    )
    parsed = parse_arf(raw)
    assert parsed.kind == "xarf"
    assert (parsed.feedback_type, parsed.source_ip, parsed.version) == (
        "abuse",
        "192.0.2.99",
        "0.2",
    )
    assert parsed.xarf["Report-Type"] == "login-attack"
    assert parsed.arrival_date == datetime(2014, 1, 31, 6, 19, 2, tzinfo=UTC)


def test_xarf_fields_json_and_yaml() -> None:
    assert parse_xarf_fields(
        '---\nCategory: "abuse"\nSource:  10.0.0.1\n  continued\n# comment\nnot a field\n'
    ) == {
        "Category": "abuse",
        "Source": "10.0.0.1 continued",
    }
    assert parse_xarf_fields(
        '{"Report": {"Category": "spam", "Source": {"Ip": "10.0.0.2"}, "Tags": ["a", "b"]}}'
    ) == {
        "Report.Category": "spam",
        "Report.Source.Ip": "10.0.0.2",
        "Report.Tags": "a, b",
    }


@pytest.mark.parametrize(
    ("values", "user"),
    [
        (
            ["test17.example.com; auth=pass smtp.auth=172.16.10.13@example.com"],
            "172.16.10.13@example.com",
        ),
        (['mx; smtp.auth="jane@example.org"'], "jane@example.org"),
        (["mx; auth=jdoe"], "jdoe"),
        (["mx; auth=pass", "mx; spf=pass smtp.mailfrom=a@b"], None),
        ([], None),
    ],
)
def test_sasl_user(values: list[str], user: str | None) -> None:
    assert sasl_user(values) == user


# --- samples --------------------------------------------------------------------------------

ARF_SAMPLES = sample_files("arf", "dmarc/forensic", pattern="*.eml")
QUARANTINED = {
    "sisimai__bsd_arf-22.eml": "Microsoft JMRP-style complaint",
    "parsedmarc__exim_plain_text_only_no_arf_part.eml": "multipart/report without a machine-readable feedback part",
}


@pytest.mark.parametrize("path", params(ARF_SAMPLES), ids=name_of)
def test_every_report_sample_parses_or_says_why(path: Path) -> None:
    raw = path.read_bytes()
    if path.name in QUARANTINED:
        with pytest.raises(ParseError, match=QUARANTINED[path.name]) as caught:
            parse_arf(raw)
        assert_clear_reason(caught.value)
        return
    parsed = parse_arf(raw)
    assert parsed.kind in ("arf", "xarf")
    assert parsed.feedback_type
    assert parsed.reporter and "@" in parsed.reporter


@pytest.mark.parametrize(
    ("name", "facts"),
    [
        (
            "arf/abuseio__spamexperts_1.eml",
            {
                "sasl_user": "172.16.10.13@example.com",
                "source_ip": "172.16.10.13",
                "feedback_type": "abuse",
                "original_rcpt_to": ["ashley@example.com"],
                "original_mail_from": "admin@example.com",
            },
        ),
        (
            "arf/rfc5965_B1_simple_required_fields_only.eml",
            {
                "feedback_type": "abuse",
                "user_agent": "SomeGenerator/1.0",
                "version": "1",
                "source_ip": None,
            },
        ),
        (
            "arf/rfc5965_B2_full_report_all_headers.eml",
            {
                "source_ip": "192.0.2.1",
                "reported_domain": "example.net",
                "original_mail_from": "somespammer@example.net",
                "reported_uris": ["http://example.net/earn_money.html", "mailto:user@example.com"],
                "original_headers": {
                    "From": "<somespammer@example.net>",
                    "Subject": "Earn money",
                    "Message-ID": "8787KJKJ3K4J3K4J3K4J3.mail@example.net",
                    "Date": "Thu, 02 Sep 2004 12:31:03 -0500",
                },
            },
        ),
        (
            "arf/abuseio__fbl_AOL_example_1.eml",
            {"version": "0.1", "source_ip": "10.17.18.1", "reported_domain": "server.domain5.tld"},
        ),
        (
            "arf/abuseio__fbl_Yahoo_example_2.eml",
            {"source_ip": "10.17.18.26", "original_rcpt_to": ["santaanaalgemesi@yahoo.es"]},
        ),
        (
            "arf/abuseio__fbl_Comcast_example_2.eml",
            {
                "user_agent": "ReturnPathFBL/1.0",
                "original_mail_from": "sadie_hubbard@server.domain4.tld",
            },
        ),
        ("arf/abuseio__fbl_Zoho_example_1.eml", {"source_ip": "10.17.18.28", "version": "0.1"}),
        ("arf/sisimai__bsd_arf-12.eml", {"feedback_type": "opt-out"}),
        ("arf/sisimai__bsd_arf-16.eml", {"reported_domains": ["example.com", "example.org"]}),
        (
            "arf/sisimai__bsd_arf-17.eml",
            {
                "original_rcpt_to": ["kijitora@example.com", "sabatora@example.net"],
                "source_ip": "192.0.2.3",
            },
        ),
        (
            "arf/sisimai__bsd_arf-19.eml",
            {"feedback_type": "auth-failure", "source_ip": "203.0.113.2"},
        ),
        (
            "arf/sisimai__mac_arf-01_CR_line_endings.eml",
            {"user_agent": "SMP-FBL", "version": "1.0", "source_ip": "192.0.2.89"},
        ),
        (
            "arf/xarf/abuseio__Netcraft_Example_1.eml",
            {
                "kind": "xarf",
                "source_ip": "10.0.2.2",
                "reported_uris": ["http://www.domain.tld/scripts/ufo.js"],
            },
        ),
        (
            "arf/xarf/abuseio__Blocklistde_Example_1.eml",
            {"kind": "xarf", "source_ip": "10.0.2.150", "version": "0.2"},
        ),
        (
            "arf/xarf/abuseio__Cleanmx_Example_1.eml",
            {"kind": "xarf", "feedback_type": "info", "source_ip": "192.168.2.20"},
        ),
        (
            "dmarc/forensic/parsedmarc__dmarc_ruf_report_linkedin.eml",
            {"feedback_type": "auth-failure", "original_mail_from": "", "source_ip": "10.10.10.10"},
        ),
        (
            "dmarc/forensic/parsedmarc__dmarc_ruf_report_linkedin.crlf.eml",
            {"reported_domain": "example.com"},
        ),
        (
            "dmarc/forensic/parsedmarc__failure_report_domain.de.eml",
            {"source_ip": "10.10.10.10", "reported_domain": "domain.de"},
        ),
        (
            "dmarc/forensic/parsedmarc__netease_failure_report.eml",
            {
                "feedback_type": "auth-failure",
                "source_ip": "167.89.69.24",
                "reported_domain": "cardinal.com",
            },
        ),
    ],
)
def test_report_sample_facts(name: str, facts: dict[str, object]) -> None:
    parsed = parse_arf(sample(name))
    for field, expected in facts.items():
        assert getattr(parsed, field) == expected, field


def test_report_sample_details() -> None:
    yahoo = parse_arf(sample("arf/abuseio__fbl_Yahoo_example_2.eml"))
    assert (
        yahoo.original_headers["Subject"] == "VIAJES EMPRESA DE AUTOBUSES."
    )  # behind a ">From " line
    netease = parse_arf(sample("dmarc/forensic/parsedmarc__netease_failure_report.eml"))
    assert netease.fields["identity-alignment"] == ["spf,dkim"]  # from the base64 part
    linkedin = parse_arf(sample("dmarc/forensic/parsedmarc__dmarc_ruf_report_linkedin.eml"))
    assert linkedin.fields["auth-failure"] == ["dmarc"]
    assert linkedin.original_headers["From"] == "Sender <sender@example.com>"


# --- fuzzing --------------------------------------------------------------------------------

_ORIGINALS = [p.read_bytes() for p in ARF_SAMPLES if p.stat().st_size < 30000] + [
    report(b"Content-Type: message/feedback-report\n\n" + FIELDS)
]


@given(mangled(_ORIGINALS))
@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
def test_mangled_reports_parse_or_raise_parse_error(raw: bytes) -> None:
    try:
        parsed = parse_arf(raw)
    except ParseError as error:
        assert_clear_reason(error)
        return
    assert parsed.kind in ("arf", "xarf") and parsed.feedback_type
