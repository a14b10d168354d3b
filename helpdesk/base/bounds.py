"""Numbers given on the command line, within what the database and the code can hold.

An id, a version, a limit or an offset is a whole number from its floor to 2^63 - 1 (the
largest a database integer column holds); anything else is bad input (exit 2), said by
argparse before any database is opened.
"""

from __future__ import annotations

import argparse

MAX_INT = 2**63 - 1


def _whole(text: str, low: int, high: int, what: str) -> int:
    try:
        value = int(text)
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError(f"{what}: a whole number expected, not {text!r}") from None
    if not low <= value <= high:
        raise argparse.ArgumentTypeError(
            f"{what}: a number from {low} to {high} expected, not {value}"
        )
    return value


def ident(text: str) -> int:
    """A row id or a version: 1 or more."""
    return _whole(text, 1, MAX_INT, "id")


def limit(text: str) -> int:
    """How many rows to show: 1 or more."""
    return _whole(text, 1, MAX_INT, "limit")


def offset(text: str) -> int:
    """How many rows to skip: 0 or more."""
    return _whole(text, 0, MAX_INT, "offset")


def year(text: str) -> int:
    return _whole(text, 1970, 9999, "year")


def port(text: str) -> int:
    return _whole(text, 0, 65535, "port")
