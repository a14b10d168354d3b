"""The one exception type raised by the ingestion parsers."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from helpdesk.base.i18n import N_, _
from helpdesk.ingest.decoding import clean_line

P = ParamSpec("P")
R = TypeVar("R")

INTERNAL = N_("internal error")  # translated where shown: _(INTERNAL)


MAX_REASON_CHARS = 300


class ParseError(Exception):
    """Input that cannot be understood; ``reason`` says why, in plain words for a human.

    Reasons may quote the input (a zip member name, a parser message), so they are cleaned
    of control characters and shortened like any other untrusted text.
    """

    def __init__(self, reason: str) -> None:
        reason = clean_line(str(reason))[:MAX_REASON_CHARS] or _("unreadable input")
        super().__init__(reason)
        self.reason = reason

    def __str__(self) -> str:
        return self.reason


def guarded(what: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Make a parser entry point keep its promise that only ParseError escapes.

    Expected problems are raised as ParseError where they are found; anything else is a bug
    met on hostile input, reported as ParseError("internal error ...") so that one bad mail
    is quarantined instead of stopping an ingest run (the fuzz tests look for these).
    """

    def decorate(function: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(function)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            try:
                return function(*args, **kwargs)
            except ParseError:
                raise
            except RecursionError as exc:
                raise ParseError(_("{what} nested too deeply").format(what=_(what))) from exc
            except MemoryError as exc:
                raise ParseError(_("{what} too large to read").format(what=_(what))) from exc
            except Exception as exc:
                raise ParseError(
                    _("{internal} while reading {what} ({error})").format(
                        internal=_(INTERNAL), what=_(what), error=f"{type(exc).__name__}: {exc}"
                    )
                ) from exc

        return wrapper

    return decorate
