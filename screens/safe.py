"""Showing untrusted text: always as text, never as markup, never with control sequences.

Subjects, bodies, requesters, notes, account data, field values, log material: every string
that came from outside goes through :func:`plain` (or :func:`assemble`), which cleans it
with :func:`helpdesk.base.untrusted.clean` and wraps it in a Rich ``Text``. A ``Text`` is never
parsed for markup, so ``[@click=app.quit]`` stays a few brackets on the screen.
"""

from __future__ import annotations

import re
from typing import Iterable, Union

from rich.text import Text

from helpdesk.base.untrusted import clean

# Bidirectional overrides and isolates can reorder what the terminal shows; they are
# dropped too (helpdesk.base.untrusted.clean keeps them, being about terminal controls).
_BIDI = re.compile("[\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c]")

Part = Union[str, Text, tuple[str, str], None]


def scrub(value: object) -> str:
    """The text of any value, cleaned of control and bidi characters."""
    if value is None:
        return ""
    return _BIDI.sub("", clean(str(value))).replace("\t", "    ")


def plain(
    value: object, style: str = "", *, one_line: bool = False, limit: int | None = None
) -> Text:
    """Untrusted ``value`` as a ``Text`` (never markup)."""
    text = scrub(value)
    if one_line:
        text = text.replace("\n", " ")
    if limit is not None and len(text) > limit:
        text = text[: max(0, limit - 1)] + "…"
    return Text(text, style=style)


def assemble(*parts: Part, one_line: bool = False) -> Text:
    """Join pieces into one ``Text``: strings are cleaned (never parsed), ``(text, style)``
    pairs are cleaned and styled, ``Text`` pieces are kept as they are."""
    out = Text()
    for part in parts:
        if part is None:
            continue
        if isinstance(part, Text):
            out.append_text(part)
        elif isinstance(part, tuple):
            out.append_text(plain(part[0], part[1], one_line=one_line))
        else:
            out.append_text(plain(part, one_line=one_line))
    return out


def lines(rows: Iterable[Text]) -> Text:
    return Text("\n").join(list(rows))


def fit(value: object, width: int, style: str = "") -> Text:
    """One cell of a table row: cleaned, on one line, cut or padded to ``width`` cells."""
    text = plain(value, style, one_line=True)
    text.truncate(width, overflow="ellipsis", pad=True)
    return text
