"""Calendar rules of the policies, as pure functions (property-tested).

All arithmetic is python-dateutil's ``relativedelta``: a month is a calendar month and a
year a calendar year, never 30 or 365 days.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from dateutil.relativedelta import relativedelta


def first_of_next_month(day: date) -> date:
    """CommunesPlone art. 8: the convention runs from the first day of the month that
    follows the signature (signed on the 1st: the month after)."""
    return (day + relativedelta(months=1)).replace(day=1)


@dataclass(frozen=True)
class ContractDates:
    start: date
    renewals: tuple[date, ...]  # the tacit renewal dates within the maximum term
    max_end: date  # start + the maximum term: the convention ends then in any case
    next_renewal: date | None  # the first renewal date after the request
    notice_limit: date | None  # the last day a non-renewal letter counts for next_renewal
    effective_end: date  # the day the convention stops
    late: bool  # the request came after notice_limit: it takes effect one renewal later


def contract_dates(
    signature: date,
    request: date,
    *,
    term: relativedelta = relativedelta(years=1),
    maximum: relativedelta = relativedelta(months=48),
    notice: relativedelta = relativedelta(months=1),
) -> ContractDates:
    """When a convention signed on ``signature`` stops, if its non-renewal is asked on
    ``request``: at the first renewal date at least ``notice`` after the request, or at the
    end of the maximum term, whichever comes first."""
    start = first_of_next_month(signature)
    max_end = start + maximum
    renewals: list[date] = []
    n = 1
    while True:
        r = start + term * n
        if r >= max_end:
            break
        renewals.append(r)
        n += 1
    upcoming = [r for r in renewals if r > request]
    next_renewal = upcoming[0] if upcoming else None
    notice_limit = next_renewal - notice if next_renewal else None
    effective = next((r for r in upcoming if request <= r - notice), max_end)
    late = next_renewal is not None and effective != next_renewal
    return ContractDates(
        start, tuple(renewals), max_end, next_renewal, notice_limit, effective, late
    )


def period_end(start: date, period: relativedelta = relativedelta(years=1)) -> date:
    """The last day of a period that runs from ``start``: one year from 2027-03-01 is paid
    up to and including 2028-02-29."""
    return start + period - relativedelta(days=1)


def renewal_after_lapse(
    previous_end: date, period: relativedelta = relativedelta(years=1)
) -> tuple[date, date]:
    """Weentime art. 8: a renewal, even late, starts the day after the previous end and runs
    one period from that start."""
    start = previous_end + relativedelta(days=1)
    return start, period_end(start, period)


def inactive_from(last_seen: date, period: relativedelta = relativedelta(years=1)) -> date:
    """Wigii CGU art. 9, "ne s'était pas logué depuis plus d'une année": the first day on
    which more than ``period`` has passed since the day of the last login. A login on
    2024-02-29 completes its year on 2025-02-28; it is more than a year from 2025-03-01.
    The deactivation guard and the inactivity sweep both ask this function."""
    return last_seen + period + relativedelta(days=1)


def membership_data_removal(
    membership_end: date, within: relativedelta = relativedelta(years=1)
) -> date:
    """Le PIC: an association that does not renew has its data removed within one year."""
    return membership_end + within
