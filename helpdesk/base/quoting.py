"""What a sender wrote, apart from the quoted history of a mail (``>`` lines, and
everything from a reply or forward header on), so that it can be read first and the rest
folded."""

from __future__ import annotations

import re

_QUOTE_HEADER = re.compile(
    r"^\s*(?:le .{0,120}a [ée]crit\s*:|on .{0,120}wrote\s*:|-{2,}\s*(?:original message|message d'origine|"
    r"forwarded message|message transf[ée]r[ée])\s*-{2,}|(?:de|from)\s*:.*@.*)\s*$",
    re.IGNORECASE,
)


def new_text(text: str) -> str:
    """The text the sender wrote: no quoted lines, nothing after a reply or forward header."""
    return split_quoted(text)[0]


def split_quoted(text: str) -> tuple[str, str]:
    """``(new, quoted)``: what the sender wrote, and the quoted history (``>`` lines, and
    everything from a reply or forward header on), so that a screen can fold the second."""
    kept: list[str] = []
    quoted: list[str] = []
    lines = text.splitlines()
    for n, line in enumerate(lines):
        if _QUOTE_HEADER.match(line):
            quoted.extend(lines[n:])
            break
        (quoted if line.lstrip().startswith(">") else kept).append(line)
    return "\n".join(kept), "\n".join(quoted)
