"""The one clock of the helpdesk.

Every "now" in the core comes from :func:`now`. Tests and trainers move it with
``--now`` / ``HELPDESK_NOW`` (or :func:`set_now`); otherwise it is the wall clock.
All datetimes in the core are timezone-aware and stored in UTC.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from datetime import date, datetime, time, timezone
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

if TYPE_CHECKING:  # imported by parse_duration: a command that reads no duration skips it
    from dateutil.relativedelta import relativedelta

UTC = timezone.utc

_fixed: datetime | None = None


class BadDate(ValueError):
    """A date or duration written in a way we cannot read."""


def set_now(value: datetime | str | None) -> None:
    """Fix the clock (a datetime or an ISO string), or give it back to the wall clock."""
    global _fixed
    if value is None or value == "":
        _fixed = None
    elif isinstance(value, str):
        _fixed = parse_datetime(value)
    else:
        _fixed = as_utc(value)


def fixed_at() -> datetime | None:
    """The moment the clock is fixed at by :func:`set_now` (None: it follows the wall clock,
    or ``HELPDESK_NOW``)."""
    return _fixed


@contextmanager
def fixed(value: datetime | str):
    """Fix the clock for the duration of a block, then give back whatever it was."""
    global _fixed
    previous = _fixed
    set_now(value)
    try:
        yield now()
    finally:
        _fixed = previous


def now() -> datetime:
    if _fixed is not None:
        return _fixed
    env = os.environ.get("HELPDESK_NOW")
    if env:
        return parse_datetime(env)
    return datetime.now(UTC).replace(microsecond=0)


def as_utc(value: datetime, tz: str | None = None) -> datetime:
    """A naive datetime is read in ``tz`` (UTC if none), then converted to UTC."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=ZoneInfo(tz) if tz else UTC)
    return value.astimezone(UTC)


def _isoparse(text: str):
    # dateutil's parser package costs ~50 ms to import; commands that read no date skip it.
    from dateutil.parser import isoparse

    return isoparse(text)


def parse_datetime(text: str, tz: str | None = None) -> datetime:
    """Read an ISO-8601 date or date-time; a bare date means midnight in ``tz``."""
    text = (text or "").strip()
    if not text:
        raise BadDate("empty date")
    try:
        value = _isoparse(text)
    except (ValueError, OverflowError) as exc:
        raise BadDate(f"not an ISO date: {text!r}") from exc
    if isinstance(value, date) and not isinstance(value, datetime):  # pragma: no cover
        value = datetime.combine(value, time())
    return as_utc(value, tz)


def parse_day(text: str) -> date:
    """Read an ISO calendar day (YYYY-MM-DD; a date-time keeps its day)."""
    text = (text or "").strip()
    try:
        return _isoparse(text).date()
    except (ValueError, OverflowError) as exc:
        raise BadDate(f"not an ISO day: {text!r}") from exc


def start_of_day(day: date, tz: str) -> datetime:
    """Midnight of ``day`` in the provider's time zone, as UTC."""
    return datetime.combine(day, time(), tzinfo=ZoneInfo(tz)).astimezone(UTC)


def local_day(moment: datetime, tz: str) -> date:
    return moment.astimezone(ZoneInfo(tz)).date()


MAX_DURATION_YEARS = 100  # no period in a provider's text or a setting is longer


def parse_duration(text: str) -> relativedelta:
    """An ISO-8601 duration (``P1Y``, ``P2M``, ``P10D``, ``PT24H``, ``P1Y2M3DT4H``) as a relativedelta.

    Calendar units stay calendar units: ``P1M`` from 31 January is the end of February,
    never "30 days" (python-dateutil does the arithmetic).
    """
    import re

    m = re.fullmatch(
        r"(-)?P(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)W)?(?:(\d+)D)?"
        r"(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?",
        (text or "").strip(),
    )
    if not m or text.strip() in ("P", "PT", "-P"):
        raise BadDate(f"not an ISO-8601 duration: {text!r}")
    sign = -1 if m.group(1) else 1
    y, mo, w, d, h, mi, s = (int(g or 0) if len(g or "") < 12 else 10**12 for g in m.groups()[1:])
    if y * 366 + mo * 31 + w * 7 + d + h / 24 + mi / 1440 + s / 86400 > MAX_DURATION_YEARS * 366:
        raise BadDate(
            f"a duration of at most {MAX_DURATION_YEARS} years expected, not {text.strip()[:40]!r}"
        )
    from dateutil.relativedelta import relativedelta

    return sign * relativedelta(years=y, months=mo, weeks=w, days=d, hours=h, minutes=mi, seconds=s)


def add(moment: datetime, delta: relativedelta, tz: str) -> datetime:
    """``moment + delta`` counted on the provider's calendar: one month from midnight on
    1 December in Paris is midnight on 1 January in Paris, whatever UTC says. A date past
    the calendar's end (year 9999) is a ``BadDate``."""
    local = moment.astimezone(ZoneInfo(tz))
    try:
        return (local + delta).astimezone(UTC)
    except (OverflowError, ValueError):
        raise BadDate(f"{iso(moment)} + {delta}: past the end of the calendar") from None


def iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    return as_utc(value).isoformat().replace("+00:00", "Z")
