"""One item of a sweep at a time: a failure is reported and the sweep goes on."""

from __future__ import annotations

from typing import Callable

from helpdesk.base.errors import HelpdeskError


def isolated(report, item: dict, step: Callable, *args) -> bool:
    """Run one item of the sweep; if it fails, report it (and why) and go on with the rest:
    one bad setting, date or row never stops every later sweep. Its own transaction was
    rolled back, so nothing of it half-remains."""
    try:
        step(*args)
        return True
    except Exception as exc:  # noqa: BLE001 - reported, and the sweep goes on
        report.refused.append({**item, "reason": failure(exc)})
        return False


def failure(exc: BaseException) -> str:
    """What went wrong with one item, for the report and the audit trail."""
    if isinstance(exc, HelpdeskError):
        return str(exc)
    return f"{type(exc).__name__}: {str(exc)[:300]}"
