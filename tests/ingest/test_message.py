"""Raw mails: headers, addresses, dates, best text, attachments; every sample; fuzzing."""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

from helpdesk.ingest import message
from helpdesk.ingest.errors import ParseError
from helpdesk.ingest.message import parse_mail

from .conftest import (
    assert_clear_reason,
    mangled,
    name_of,
    params,
    sample,
    sample_files,
)

SIMPLE = (
    b"From: =?utf-8?Q?Ren=C3=A9e_Dupont?= <renee@example.org>\r\n"
    b'To: contact@wigii.example, "Support, team" <support@example.net>\r\n'
    b"Cc: other@example.net\r\n"
    b"Subject: =?utf-8?B?TW90IGRlIHBhc3NlIG91Ymxpw6k=?=\r\n"
    b"Date: Tue, 3 Mar 2026 10:15:00 +0100\r\n"
    b"Message-ID: <abc@example.org>\r\n"
    b"In-Reply-To: <conf-1@helpdesk.example>\r\n"
    b"References: <first@x.example>\r\n <conf-1@helpdesk.example>\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"Content-Transfer-Encoding: quoted-printable\r\n"
    b"\r\n"
    b"Bonjour, j'ai oubli=C3=A9 mon mot de passe. Merci de le r=C3=A9initialiser.\r\n"
)

pytestmark = pytest.mark.usefixtures("english")  # the reasons read in English


def test_simple_mail() -> None:
    mail = parse_mail(SIMPLE)
    assert mail.from_name == "Renée Dupont"
    assert mail.from_addr == "renee@example.org"
    assert mail.to_addrs == ["contact@wigii.example", "support@example.net"]
    assert mail.cc_addrs == ["other@example.net"]
    assert mail.subject == "Mot de passe oublié"
    assert mail.date == datetime(2026, 3, 3, 9, 15, tzinfo=UTC)
    assert mail.date.utcoffset() == timedelta(hours=1)
    assert mail.message_id == "<abc@example.org>"
    assert mail.in_reply_to == "<conf-1@helpdesk.example>"
    assert mail.references == ["<first@x.example>", "<conf-1@helpdesk.example>"]
    assert mail.text_body == "Bonjour, j'ai oublié mon mot de passe. Merci de le réinitialiser."
    assert mail.attachments == []
    assert mail.raw_sha256 == hashlib.sha256(SIMPLE).hexdigest()
    assert mail.lang_guess == "fr"


def _multipart(*parts: bytes, boundary: bytes = b"XYZ", ctype: bytes = b"multipart/mixed") -> bytes:
    body = b"".join(b"--" + boundary + b"\n" + part + b"\n" for part in parts)
    return (
        b"From: a@example.org\nSubject: parts\nContent-Type: "
        + ctype
        + b'; boundary="'
        + boundary
        + b'"\n\n'
        + body
        + b"--"
        + boundary
        + b"--\n"
    )


def test_plain_text_preferred_over_html() -> None:
    raw = _multipart(
        b"Content-Type: text/plain; charset=iso-8859-1\n\nCaf\xe9 plain",
        b"Content-Type: text/html\n\n<p>HTML version</p>",
        ctype=b"multipart/alternative",
    )
    assert parse_mail(raw).text_body == "Café plain"


def test_html_only_is_stripped() -> None:
    raw = b"From: a@example.org\nContent-Type: text/html; charset=utf-8\n\n<p>Hello <b>there</b></p><script>x()</script>"
    assert parse_mail(raw).text_body == "Hello there"


def test_attachments() -> None:
    pdf = b"%PDF-1.4 fake"
    raw = _multipart(
        b"Content-Type: text/plain\n\nSee attached.",
        b'Content-Type: application/pdf; name="../../etc/r\xc3\xa9sum\xc3\xa9.pdf"\n'
        b'Content-Disposition: attachment; filename="../../etc/r\xc3\xa9sum\xc3\xa9.pdf"\n'
        b"Content-Transfer-Encoding: base64\n\n" + base64.b64encode(pdf),
        b"Content-Type: message/rfc822\n\nFrom: x@example.org\nSubject: inner\n\ninner body",
    )
    mail = parse_mail(raw)
    assert mail.text_body == "See attached."
    pdf_part, inner = mail.attachments
    assert (pdf_part.filename, pdf_part.content_type, pdf_part.data) == (
        "résumé.pdf",
        "application/pdf",
        pdf,
    )
    assert inner.content_type == "message/rfc822"
    assert b"Subject: inner" in inner.data


def test_forwarded_message_only_gives_its_text() -> None:
    raw = _multipart(
        b"Content-Type: message/rfc822\n\nFrom: x@example.org\nSubject: inner\n\ninner body"
    )
    assert parse_mail(raw).text_body == "inner body"


def test_mbox_from_line_and_cr_line_endings() -> None:
    raw = b">From someone Tue Jan 19 15:16:03 2016\rFrom: a@example.org\rSubject: cr\r\rbody\rline 2\r"
    mail = parse_mail(raw)
    assert (mail.from_addr, mail.subject, mail.text_body) == ("a@example.org", "cr", "body\nline 2")


def test_hostile_header_and_body_are_cleaned() -> None:
    raw = b"From: \x1b[31mEvil\x1b[0m <e@example.org>\nSubject: =?utf-8?Q?hi=1B]52;c;eA=3D=3D=07?= [@click=app.quit]x[/]\n\nbody\x1b[2J\x07end"
    mail = parse_mail(raw)
    assert mail.from_name == "Evil"
    assert mail.subject == "hi [@click=app.quit]x[/]"
    assert mail.text_body == "bodyend"


def test_boundary_mismatch_is_salvaged() -> None:
    raw = (
        b'From: a@example.org\nContent-Type: multipart/alternative; boundary="declared"\n\n'
        b"--actual\nContent-Type: text/plain\n\nsalvaged text\n--actual--\n"
    )
    assert parse_mail(raw).text_body == "salvaged text"


def test_base64_declared_but_plain() -> None:
    raw = (
        b"From: a@example.org\nContent-Type: text/plain\nContent-Transfer-Encoding: base64\n\nHello"
    )
    assert parse_mail(raw).text_body == "Hello"


def test_missing_or_bad_dates() -> None:
    assert parse_mail(b"From: a@example.org\nDate: (invalid)\n\nx").date is None
    assert parse_mail(b"From: a@example.org\n\nx").date is None
    assert message.parse_date("Thu, 8 Mar 2005 17:40:36 -0000").tzinfo is not None
    assert message.parse_date("2015-07-23T01:58:17+00:00") == datetime(
        2015, 7, 23, 1, 58, 17, tzinfo=UTC
    )


@pytest.mark.parametrize("raw", [b"", b"   \r\n\r\n", "not bytes"])
def test_empty_or_wrong_input(raw: object) -> None:
    with pytest.raises(ParseError) as caught:
        parse_mail(raw)  # type: ignore[arg-type]
    assert_clear_reason(caught.value)


def test_size_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(message, "MAX_MAIL_BYTES", 100)
    with pytest.raises(ParseError, match="too large"):
        parse_mail(SIMPLE)


def test_too_many_parts() -> None:
    raw = _multipart(*[b"Content-Type: text/plain\n\npart"] * 1200)
    with pytest.raises(ParseError, match="too many MIME parts"):
        parse_mail(raw)


def test_deep_nesting() -> None:
    raw = b"From: a@example.org\n"
    for depth in range(300):
        raw += b"Content-Type: multipart/mixed; boundary=b%d\n\n--b%d\n" % (depth, depth)
    raw += b"Content-Type: text/plain\n\ndeep\n"
    try:
        parse_mail(raw)
    except ParseError as error:
        assert_clear_reason(error)


# --- samples --------------------------------------------------------------------------------

EMAILS = sample_files("emails")


@pytest.mark.parametrize("path", params(EMAILS), ids=name_of)
def test_every_email_sample_parses(path: Path) -> None:
    raw = path.read_bytes()
    mail = parse_mail(raw)
    assert mail.raw_sha256 == hashlib.sha256(raw).hexdigest()
    assert mail.from_addr and "@" in mail.from_addr
    for text in (mail.subject, mail.from_name, mail.text_body):
        assert "\x1b" not in text and "\x00" not in text


@pytest.mark.parametrize(
    ("name", "facts"),
    [
        (
            "flanker__bilingual-simple.eml",
            {"subject": "Simple text. How are you? Как ты поживаешь?"},
        ),
        (
            "flanker__charset-gb2312_html_only_raw8bit.eml",
            {
                "subject": "提示：您的企业成员暂时无法登录邮件客户端",
                "from_name": "腾讯企业邮箱",
                "from_addr": "10000@qq.com",
            },
        ),
        (
            "flanker__from-encoding.eml",
            {"from_name": "Ingo Lütkebohle", "from_addr": "ingo@blank.pages.de"},
        ),
        (
            "flanker__mailformed-headers.eml",
            {"from_addr": "headers@gmail.com", "text_body": "Hello"},
        ),
        (
            "flanker__missing-final-boundary.eml",
            {"text_body": "Some body", "to_addrs": ["bob@example.com", "hithere@example.com"]},
        ),
        (
            "mail-parser__mail_test_12.eml",
            {
                "subject": "代开各地增值税发票",
                "from_name": "张先生",
                "to_addrs": ["danglüe@email.com"],
            },
        ),
        (
            "mail-parser__mail_test_17.eml",
            {"subject": "Transferencia Interbancaria Banca en Línea"},
        ),
        (
            "mail-parser__mail_test_18.eml",
            {
                "from_name": "LastßlName, FirstName",
                "from_addr": "comma.name@example.com",
                "to_addrs": ["tony.stark@example.com"],
                "cc_addrs": ["simple@example.net", "john.doe@example.com"],
            },
        ),
        (
            "mail-parser__mail_test_19.eml",
            {"from_name": "alice@example.com", "from_addr": "bob@example.com"},
        ),
        (
            "rt__new-ticket-from-gb18030.eml",
            {"subject": "测试", "text_body": "测试", "date": None, "message_id": None},
        ),
        ("rt__russian-subject-no-content-type.eml", {"subject": "тест тест"}),
        ("rt__subject-with-folding-ws.eml", {"subject": "test", "text_body": "test"}),
        (
            "rt__rfc2231-attachment-filename-continuations.eml",
            {"subject": "Client ? Japanese Attachment Name issue"},
        ),
        ("rt__text-html-with-umlaut.eml", {"date": datetime(2003, 6, 12, 6, 14, 39, tzinfo=UTC)}),
        (
            "sisimai__bsd_arf-26_apple_mail_unsubscribe.eml",
            {"subject": "unsubscribe", "lang_guess": "en"},
        ),
    ],
)
def test_email_sample_facts(name: str, facts: dict[str, object]) -> None:
    mail = parse_mail(sample(f"emails/{name}"))
    for field, expected in facts.items():
        assert getattr(mail, field) == expected, field


def test_sample_bodies_and_attachments() -> None:
    crashes = parse_mail(sample("emails/rt__crashes-file-based-parser.eml"))
    assert "Somebody at IP 127.0.0.1 scanned my ports." in crashes.text_body
    assert [(a.filename, a.content_type) for a in crashes.attachments] == [
        ("BackGrnd.jpg", "image/jpeg")
    ]
    assert crashes.attachments[0].data.startswith(b"\xff\xd8")  # a JPEG

    japanese = parse_mail(sample("emails/rt__rfc2231-attachment-filename-continuations.eml"))
    assert [a.filename for a in japanese.attachments] == ["新しいテキスト ドキュメント.txt"]

    assert (
        "Mit freundlichen Grüßen"
        in parse_mail(sample("emails/rt__text-html-with-umlaut.eml")).text_body
    )
    assert (
        "密码错误"
        in parse_mail(sample("emails/flanker__charset-gb2312_html_only_raw8bit.eml")).text_body
    )
    assert (
        "Problemas para visualizar"
        in parse_mail(sample("emails/mail-parser__mail_malformed_3.eml")).text_body
    )
    assert (
        "А эта линия по-русски."
        in parse_mail(sample("emails/flanker__bilingual-simple.eml")).text_body
    )
    dsn = parse_mail(sample("emails/mail-parser__mail_malformed_2.eml"))
    assert "message/delivery-status" in [a.content_type for a in dsn.attachments]


# --- fuzzing --------------------------------------------------------------------------------

_ORIGINALS = [p.read_bytes() for p in EMAILS if p.stat().st_size < 20000] + [SIMPLE]


@given(mangled(_ORIGINALS))
@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
def test_mangled_mails_parse_or_raise_parse_error(raw: bytes) -> None:
    try:
        mail = parse_mail(raw)
    except ParseError as error:
        assert_clear_reason(error)
        return
    assert isinstance(mail.text_body, str)
    assert "\x1b" not in mail.subject + mail.from_name + mail.text_body
