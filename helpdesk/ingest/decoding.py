"""Untrusted text: strip terminal control sequences, decode mail headers and bodies.

Everything that comes from outside (mail subjects and bodies, report fields, log lines) goes
through ``clean`` before it reaches the core.  Markup (``[@click=...]``) is not this module's
concern: the screens show untrusted text as plain ``Text``; here only control characters go.
"""

from __future__ import annotations

import binascii
import codecs
import html
import re
from collections.abc import Iterable
from html.parser import HTMLParser

# clean() and clean_line() live in the core (helpdesk.base.untrusted): one definition for every
# untrusted string, whether it comes from a mail, a report or the command line.
from helpdesk.base.untrusted import clean, clean_line  # noqa: E402,F401


# --- charsets -------------------------------------------------------------------------------

# Labels mail software writes that Python spells differently, or that are routinely used for
# a superset (WHATWG encoding standard: gb2312 means gbk, latin-1 means windows-1252, ...).
_CHARSET_ALIASES = {
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "cp936": "gb18030",
    "euc-cn": "gb18030",
    "iso-8859-1": "cp1252",
    "iso8859-1": "cp1252",
    "latin1": "cp1252",
    "latin-1": "cp1252",
    "l1": "cp1252",
    "ks_c_5601-1987": "cp949",
    "ks_c_5601": "cp949",
    "euc-kr": "cp949",
    "x-sjis": "shift_jis",
    "shift-jis": "shift_jis",
    "windows-874": "cp874",
    "tis-620": "cp874",
    "x-mac-roman": "mac_roman",
    "macintosh": "mac_roman",
    "unicode-1-1-utf-7": "utf-7",
}
_ASCII_LABELS = {"us-ascii", "ascii", "ansi_x3.4-1968", "646", "us"}


def lookup_charset(label: str | None) -> str | None:
    """Python codec name for a MIME charset label, or None if unknown or not a text codec."""
    if not label or not isinstance(label, str):
        return None
    name = label.strip().strip("\"'").split("*", 1)[0].strip().lower()
    if not name or len(name) > 40:
        return None
    if name in _ASCII_LABELS:
        return "ascii"
    name = _CHARSET_ALIASES.get(name, name)
    try:
        info = codecs.lookup(name)
    except (LookupError, ValueError, TypeError):
        return None
    if not getattr(info, "_is_text_encoding", True):
        return None  # e.g. "base64", "zlib", "rot13": codecs, but not charsets
    return info.name


def decode_bytes(data: bytes, charsets: Iterable[str | None] = ()) -> str:
    """Decode ``data`` as text, never raising; undecodable bytes become U+FFFD.

    8-bit data that is valid UTF-8 is UTF-8 whatever the label says (mislabelled UTF-8 is far
    more common than legacy text that happens to be valid UTF-8); otherwise the declared
    charsets are tried in order, then UTF-8 with replacement or cp1252.  The result is not
    yet ``clean``-ed.
    """
    labels = list(charsets)
    candidates: list[str] = []
    for label in labels:
        codec = lookup_charset(label)
        if codec == "ascii":
            codec = "utf-8"
        if codec and codec not in candidates:
            candidates.append(codec)
    if data.isascii():
        candidates.append("utf-8")  # pure ASCII: the label matters (ISO-2022-JP, UTF-7, HZ)
    elif not (candidates and candidates[0].startswith(("utf-16", "utf-32"))):
        candidates.insert(0, "utf-8")
    for codec in candidates:
        try:
            return data.decode(codec)
        except (UnicodeError, LookupError, ValueError, TypeError):
            continue
    # Nothing fits strictly.  Mostly-UTF-8 text with a few bad bytes stays UTF-8 (with U+FFFD);
    # otherwise it is most likely a Western 8-bit charset.
    as_utf8 = data.decode("utf-8", "replace")
    bad = as_utf8.count("\ufffd")
    good = sum(1 for ch in as_utf8 if ord(ch) > 0x7F) - bad
    if good > 0 and good >= bad:
        return as_utf8
    western = data.decode("cp1252", "replace")
    if not any(lookup_charset(label) for label in labels):
        return _maybe_cyrillic(data, western)
    return western


def _maybe_cyrillic(data: bytes, western: str) -> str:
    """Undeclared 8-bit text made mostly of high letters is not Western European: KOI8-R
    puts lowercase Cyrillic at 0xC0-0xDF, cp1251 at 0xE0-0xFF; running text is mostly
    lowercase, so the busier half tells which."""
    letters = [ch for ch in western if ch.isalpha()]
    high = [ch for ch in letters if ord(ch) > 0x7F]
    if len(high) < 4 or len(high) < 0.6 * len(letters):
        return western
    low_half = sum(1 for b in data if 0xC0 <= b <= 0xDF)
    high_half = sum(1 for b in data if b >= 0xE0)
    return data.decode("koi8_r" if low_half >= high_half else "cp1251", "replace")


# --- headers --------------------------------------------------------------------------------

_ENCODED_WORD = re.compile(rb"=\?([^?\s]{1,60})\?([bBqQ])\?([^?\s]*)\?=")
_FOLD = re.compile(rb"\r\n?(?=[ \t])|\n(?=[ \t])")
_QP_HEX = re.compile(rb"=([0-9A-Fa-f]{2})")
_B64_JUNK = re.compile(rb"[^A-Za-z0-9+/]")


def to_bytes(value: str | bytes) -> bytes:
    """Bytes back from a str that may carry raw bytes as surrogate escapes (email package)."""
    if isinstance(value, bytes):
        return value
    try:
        return value.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return value.encode("utf-8", "replace")


def _decode_b(text: bytes) -> bytes:
    data = _B64_JUNK.sub(b"", text)  # drops excess "=" padding and stray characters
    data = data[: len(data) - len(data) % 4] if len(data) % 4 == 1 else data
    data += b"=" * (-len(data) % 4)
    try:
        return binascii.a2b_base64(data)
    except (binascii.Error, ValueError):
        return b""


def _decode_q(text: bytes) -> bytes:
    return _QP_HEX.sub(lambda m: bytes([int(m.group(1), 16)]), text.replace(b"_", b" "))


def decode_header(value: str | bytes | None, fallback_charsets: Iterable[str | None] = ()) -> str:
    """Decode a raw header value into clean one-line text.

    Handles RFC 2047 encoded words (excess base64 padding, adjacent words split across folds,
    multi-byte characters split between words), raw 8-bit bytes (tried as UTF-8, then the
    ``fallback_charsets`` — e.g. the message's body charset — then cp1252), and invalid UTF-8.
    Never raises.
    """
    if value is None:
        return ""
    raw = _FOLD.sub(b"", to_bytes(value))
    fallbacks = list(fallback_charsets)
    pieces: list[str] = []
    # Consecutive encoded words in one charset are decoded together (their bytes joined),
    # and whitespace between adjacent encoded words is dropped (RFC 2047 section 6.2).
    pending = bytearray()
    pending_charset: str | None = None
    pos = 0

    def flush() -> None:
        nonlocal pending_charset
        if pending:
            pieces.append(decode_bytes(bytes(pending), [pending_charset, *fallbacks]))
            pending.clear()
        pending_charset = None

    for match in _ENCODED_WORD.finditer(raw):
        between = raw[pos : match.start()]
        if between and not (pending and between.strip() == b""):
            flush()
            pieces.append(_decode_plain(between, fallbacks))
        charset = match.group(1).decode("ascii", "replace")
        word = _decode_b(match.group(3)) if match.group(2) in b"bB" else _decode_q(match.group(3))
        if pending and lookup_charset(charset) != lookup_charset(pending_charset):
            flush()
        pending_charset = charset
        pending.extend(word)
        pos = match.end()
    flush()
    if pos < len(raw):
        pieces.append(_decode_plain(raw[pos:], fallbacks))
    return clean_line("".join(pieces))


def _decode_plain(data: bytes, fallbacks: list[str | None]) -> str:
    if data.isascii():
        return data.decode("ascii")
    return decode_bytes(data, fallbacks)


# --- HTML -----------------------------------------------------------------------------------

_BLOCK_TAGS = frozenset(
    "p div br tr li ul ol table h1 h2 h3 h4 h5 h6 blockquote hr pre section article header "
    "footer address dd dt dl".split()
)
_SKIP_TAGS = frozenset({"script", "style", "head", "title", "noscript", "template"})
_TAG = re.compile(r"<[^>]*>")
_BLANK_LINES = re.compile(r"\n{3,}")


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.chunks: list[str] = []
        self.skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP_TAGS:
            self.skipping += 1
        elif tag in _BLOCK_TAGS:
            self.chunks.append("\n- " if tag == "li" else "\n")
        elif tag in ("td", "th"):
            self.chunks.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP_TAGS:
            self.skipping = max(0, self.skipping - 1)
        elif tag in _BLOCK_TAGS:
            self.chunks.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.skipping:
            self.chunks.append(data)


def html_to_text(markup: str) -> str:
    """Readable plain text from an HTML body, never rendered: html2text (a well-kept
    library) keeps paragraphs, lists, quotes and link targets; scripts, styles and images
    go. Cleaned of control characters. Falls back to stripping tags if it fails."""
    try:
        text = _html2text(markup)
    except Exception:  # a converter failure must not lose the mail: the plain fallback
        parser = _TextExtractor()
        try:
            parser.feed(markup)
            parser.close()
            text = "".join(parser.chunks)
        except Exception:  # html.parser can still trip on broken marked sections
            text = html.unescape(_TAG.sub(" ", markup))
    lines = (
        " ".join(line.split()) if not line.lstrip().startswith(">") else line.rstrip()
        for line in clean(text).split("\n")
    )
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()


def _html2text(markup: str) -> str:
    import html2text

    h = html2text.HTML2Text()
    h.body_width = 0  # no re-wrapping: lines as the sender wrote them
    h.ignore_images = True
    h.ignore_emphasis = True  # no ** or _ around words
    h.ignore_tables = False
    h.protect_links = False
    h.unicode_snob = True  # letters as they are, not ASCII look-alikes
    h.skip_internal_links = True
    h.ul_item_mark = "-"
    return h.handle(markup)


# --- language -------------------------------------------------------------------------------

_WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?")
# Words frequent in one language and rare in the others (Spanish and German only compete).
_MARKERS = {
    "fr": frozenset(
        "le les une des du et est je tu il nous vous ils mon ma mes votre vos notre pour pas ne "
        "qui avec sur dans bonjour merci cordialement compte être avoir c'est j'ai n'est d'un "
        "d'une l'adresse s'il svp madame monsieur au aux ce cette sont mais ou où très".split()
    ),
    "en": frozenset(
        "the and is are you he we they my your our for not that which with on to of hello hi "
        "thanks thank regards please account be have it's i'm don't this from was will".split()
    ),
    "es": frozenset(
        "el los las y es su por para con una del al lo como más pero sus muy sin sobre también "
        "hola gracias usted ustedes cuenta está están".split()
    ),
    "de": frozenset(
        "der die das und ist ich sie wir ihr mein dein nicht mit auf für von zu den dem ein eine "
        "hallo danke bitte grüßen".split()
    ),
}


def guess_language(text: str) -> str | None:
    """ "fr", "en" or None, from common function words; good enough to pick a reply template."""
    scores = dict.fromkeys(_MARKERS, 0)
    for word in _WORD.findall(text[:20000].lower().replace("’", "'")):
        for lang, markers in _MARKERS.items():
            if word in markers:
                scores[lang] += 1
    best = max(scores, key=lambda lang: scores[lang])
    ranked = sorted(scores.values(), reverse=True)
    if best not in ("fr", "en") or ranked[0] < 2 or ranked[0] == ranked[1]:
        return None
    return best
