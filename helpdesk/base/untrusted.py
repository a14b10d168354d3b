"""Untrusted text (mail subjects and bodies, report fields, log lines) is cleaned of
terminal control sequences and control characters when it enters the core."""

from __future__ import annotations

import re

# One alternation, tried left to right at each ESC / C1 introducer:
#  1. string sequences (OSC, DCS, SOS, PM, APC) up to BEL or ST (ESC \ or 0x9C), or the end;
#  2. CSI sequences: parameters, intermediates and an optional final byte;
#  3. any other ESC sequence: intermediates and an optional final byte (lone ESC included).
_ESCAPES = re.compile(
    r"(?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f])[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"
    r"|(?:\x1b\[|\x9b)[\x30-\x3f]*[\x20-\x2f]*[\x40-\x7e]?"
    r"|\x1b[\x20-\x2f]*[\x30-\x7e]?"
)
# C0 except TAB and LF, DEL, C1.
_CONTROLS = re.compile(
    r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]"
)  # and bidi overrides
# Lone surrogates (left by surrogateescape decoding) cannot be encoded for output.
_SURROGATES = re.compile(r"[\ud800-\udfff]")
_NEWLINES = re.compile(r"\r\n?")


def clean(s: str) -> str:
    """Return ``s`` without terminal escape sequences or control characters.

    Keeps ``\\n`` and ``\\t``; CRLF and lone CR become ``\\n``; lone surrogates become U+FFFD.
    """
    if not s:
        return ""
    if s.isascii() and s.isprintable():
        return s  # fast path: no control character at all
    s = _NEWLINES.sub("\n", s)
    s = _ESCAPES.sub("", s)
    s = _CONTROLS.sub("", s)
    return _SURROGATES.sub("\ufffd", s)


def clean_line(s: str) -> str:
    """``clean`` for one-line values (headers, report fields): whitespace runs become one space."""
    if s.isascii() and s.isprintable():
        return " ".join(s.split())  # fast path: nothing to strip
    return " ".join(clean(s).split())


def one_line(text: str, limit: int = 200) -> str:
    text = clean_line(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


_LIST_SEPARATORS = re.compile(r"[\s,;]+")


def items(value: object) -> list[str]:
    """A list given as a list or as one string ("a, b; c d"): its non-empty items, stripped."""
    if value is None:
        return []
    parts = value if isinstance(value, (list, tuple)) else _LIST_SEPARATORS.split(str(value))
    return [str(p).strip() for p in parts if str(p).strip()]
