"""Untrusted text: control sequences, header decoding, body decoding, HTML, language."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helpdesk.ingest.errors import ParseError
from helpdesk.ingest.decoding import (
    clean,
    clean_line,
    decode_bytes,
    decode_header,
    guess_language,
    html_to_text,
)

FORBIDDEN = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")


@pytest.mark.parametrize(
    ("hostile", "expected"),
    [
        ("a\x1b]52;c;ZXZpbCBjb21tYW5k\x07b", "ab"),  # OSC 52 clipboard write, BEL-terminated
        ("a\x1b]52;c;ZXZpbA==\x1b\\b", "ab"),  # ... ST-terminated
        ("a\x1b]0;title", "a"),  # unterminated OSC swallows the rest
        ("x\x1b[2Jy", "xy"),  # clear screen
        ("\x1b[31mred\x1b[0m", "red"),
        ("\x9b2J8-bit CSI", "8-bit CSI"),
        ("\x1bP1$r\x1b\\dcs", "dcs"),
        ("\x1bcreset", "reset"),
        ("\x1b(Bcharset", "charset"),
        ("bell\x07 nul\x00 del\x7f c1\x85", "bell nul del c1"),
        ("lone escape\x1b", "lone escape"),
        ("[@click=app.quit]x[/]", "[@click=app.quit]x[/]"),  # markup is not this layer's job
        ("tab\tand\nnewline", "tab\tand\nnewline"),
        ("crlf\r\nline\rend", "crlf\nline\nend"),
        ("surrogate \udcff", "surrogate \ufffd"),
        ("accents été ☃ 测试", "accents été ☃ 测试"),
    ],
)
def test_clean_removes_control_sequences(hostile: str, expected: str) -> None:
    assert clean(hostile) == expected


@given(st.text())
@settings(max_examples=300)
def test_clean_leaves_no_control_characters(text: str) -> None:
    cleaned = clean(text)
    assert not FORBIDDEN.search(cleaned)
    assert "\x1b" not in cleaned
    assert clean(cleaned) == cleaned


@given(st.text())
def test_clean_line_is_one_line(text: str) -> None:
    line = clean_line(text)
    assert "\n" not in line and "\t" not in line
    assert not FORBIDDEN.search(line)


@pytest.mark.parametrize(
    ("raw", "fallback", "expected"),
    [
        ("=?gb18030?B?suLK1A===?=", (), "测试"),  # excess padding
        ("=?ISO-8859-1?Q?te?=\n =?ISO-8859-1?Q?st?=", (), "test"),  # adjacent words over a fold
        ("=?ISO-8859-1?Q?te?=\r\n =?ISO-8859-1?Q?st?=", (), "test"),
        (
            "=?utf-8?B?U2ltcGxlIHRleHQuIEhvdyBhcmUgeW91PyDQmtCw0Log0YLRiyDQv9C+0LY=?=\n =?utf-8?B?0LjQstCw0LXRiNGMPw==?=",
            (),
            "Simple text. How are you? Как ты поживаешь?",
        ),
        ("=?utf-8?B?w6k=?= plain =?utf-8?Q?=C3=A0?=", (), "é plain à"),
        ("=?utf-8?B?4pg=?= =?utf-8?B?gw==?=", (), "☃"),  # a character split between two words
        (b"\xcc\xe1\xca\xbe", ("gb2312",), "提示"),  # raw 8-bit GB2312 with the body's charset
        (b"Ingo L\xfctkebohle", (), "Ingo Lütkebohle"),  # raw latin-1
        (b"Jos\xc3\xa9", ("iso-8859-1",), "José"),  # raw UTF-8 wins over a wrong label
        ("=?unknown-charset?Q?caf=E9?=", (), "café"),
        ("=?utf-8?Q?evil=1B]52;c;x=07?=", (), "evil"),  # control sequence inside an encoded word
        ("Client =?ISO-2022-JP?B?Pw==?= Japanese", (), "Client ? Japanese"),
        (None, (), ""),
    ],
)
def test_decode_header(raw: str | bytes | None, fallback: tuple[str, ...], expected: str) -> None:
    assert decode_header(raw, fallback) == expected


def test_decode_header_invalid_utf8_keeps_the_valid_part() -> None:
    raw = "Юникод запрещен".encode() + b"\xf1 <h@example.com>"
    assert decode_header(raw) == "Юникод запрещен\ufffd <h@example.com>"


@given(
    st.binary(max_size=300),
    st.lists(st.sampled_from(["utf-8", "gb2312", "koi8-r", "bogus", "base64", ""]), max_size=2),
)
@settings(max_examples=300)
def test_decode_header_never_fails(raw: bytes, fallbacks: list[str]) -> None:
    decoded = decode_header(raw, fallbacks)
    assert "\n" not in decoded and not FORBIDDEN.search(decoded)


_SOUP = st.lists(
    st.sampled_from([*list("=?QqBb_utf-8iso: \r\n\tA0/+"), "=?", "?=", "=C3", "=A9", "=?utf-8?"]),
    max_size=40,
)


@given(_SOUP.map("".join))
def test_decode_header_survives_encoded_word_soup(raw: str) -> None:
    assert "\n" not in decode_header(raw)


def test_decode_bytes() -> None:
    assert decode_bytes("été".encode("cp1252"), ["iso-8859-1"]) == "été"
    assert decode_bytes("été".encode(), ["iso-8859-1"]) == "été"  # mislabelled UTF-8
    assert decode_bytes("测试".encode("gb18030"), ["gb2312"]) == "测试"
    assert decode_bytes(b"\x1b$B$3$s\x1b(B", ["iso-2022-jp"]) == "こん"
    assert decode_bytes("тест тест".encode("koi8-r")) == "тест тест"  # undeclared Cyrillic
    assert decode_bytes("Ça a été élevé".encode("latin-1")) == "Ça a été élevé"
    assert decode_bytes(b"abc", ["base64"]) == "abc"  # a codec that is not a charset


def test_html_to_text() -> None:
    html = (
        "<html><head><title>t</title><style>p{}</style><script>alert(1)</script></head>"
        "<body><p>Bonjour&nbsp;<b>vous</b></p><ul><li>un<li>deux</ul>Gr&uuml;&szlig;e</body></html>"
    )
    assert html_to_text(html) == "Bonjour vous\n\n- un\n- deux\nGrüße"
    assert html_to_text("<p>\x1b[2Jx</p>") == "x"


def test_guess_language() -> None:
    assert guess_language("Bonjour, je voudrais désactiver mon compte, merci") == "fr"
    assert guess_language("Hello, please close my account, thanks") == "en"
    assert guess_language("Ahorre dinero en su recibo de luz con nosotros y para todos") is None
    assert guess_language("12345") is None


def test_parse_error_reasons_are_clean_and_short() -> None:
    error = ParseError("bad member name '\x1b]52;c;eA==\x07evil\n" + "x" * 1000 + "'")
    assert error.reason.startswith("bad member name 'evil x")
    assert len(error.reason) == 300 and str(error) == error.reason
