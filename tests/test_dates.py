"""Property tests of the calendar rules (python-dateutil arithmetic, never 365 days)."""

from __future__ import annotations

from datetime import date, datetime, timezone

from dateutil.relativedelta import relativedelta
from hypothesis import given, settings
from hypothesis import strategies as st

from helpdesk.base import clock, dates

days = st.dates(min_value=date(2000, 1, 1), max_value=date(2090, 12, 31))


@given(days)
def test_convention_starts_on_the_first_of_the_next_month(signature):
    start = dates.first_of_next_month(signature)
    assert start.day == 1
    assert start > signature
    assert (start - relativedelta(months=1)) <= signature  # the very next month, not later


@given(days, st.integers(min_value=-400, max_value=2000))
@settings(max_examples=300)
def test_non_renewal_takes_effect_at_the_first_renewal_at_least_a_month_away(signature, offset):
    request = signature + relativedelta(days=offset)
    c = dates.contract_dates(signature, request)
    assert c.start == dates.first_of_next_month(signature)
    assert c.max_end == c.start + relativedelta(months=48)
    assert list(c.renewals) == [c.start + relativedelta(years=n) for n in (1, 2, 3)]
    assert c.effective_end in (*c.renewals, c.max_end)
    assert c.effective_end <= c.max_end
    if c.effective_end != c.max_end:
        # The letter came at least one month before the date it stops the renewal at...
        assert request <= c.effective_end - relativedelta(months=1)
    # ...and no earlier renewal date would have been possible.
    for r in c.renewals:
        if r < c.effective_end:
            assert not (request < r and request <= r - relativedelta(months=1))
    assert c.late == (c.next_renewal is not None and c.effective_end != c.next_renewal)
    if c.notice_limit is not None:
        assert c.notice_limit == c.next_renewal - relativedelta(months=1)


def test_contract_examples():
    c = dates.contract_dates(date(2025, 6, 10), date(2026, 6, 15))
    assert (c.start, c.next_renewal, c.effective_end, c.late) == (
        date(2025, 7, 1),
        date(2026, 7, 1),
        date(2027, 7, 1),
        True,
    )
    c = dates.contract_dates(date(2025, 6, 10), date(2026, 6, 1))  # exactly one month before
    assert (c.effective_end, c.late) == (date(2026, 7, 1), False)
    c = dates.contract_dates(
        date(2025, 6, 1), date(2025, 6, 2)
    )  # signed on the 1st: starts the month after
    assert c.start == date(2025, 7, 1)
    c = dates.contract_dates(date(2025, 6, 10), date(2028, 6, 20))  # too late for the last renewal
    assert c.effective_end == c.max_end == date(2029, 7, 1)


@given(days)
def test_late_renewal_starts_the_day_after_the_previous_end(previous_end):
    start, end = dates.renewal_after_lapse(previous_end)
    assert start == previous_end + relativedelta(days=1)
    assert end == start + relativedelta(years=1) - relativedelta(days=1)  # one year from its start
    assert start <= end


def test_a_renewal_from_1_march_runs_to_29_february_of_a_leap_year():
    assert dates.renewal_after_lapse(date(2027, 2, 28)) == (date(2027, 3, 1), date(2028, 2, 29))
    assert dates.renewal_after_lapse(date(2026, 11, 30)) == (date(2026, 12, 1), date(2027, 11, 30))


def test_more_than_a_year_after_a_leap_day():
    assert dates.inactive_from(date(2024, 2, 29)) == date(2025, 3, 1)
    assert dates.inactive_from(date(2025, 11, 24)) == date(2026, 11, 25)


@given(days)
def test_membership_data_removed_within_one_calendar_year(end):
    removal = dates.membership_data_removal(end)
    assert removal == end + relativedelta(years=1)
    assert 365 <= (removal - end).days <= 366


@given(
    st.datetimes(
        min_value=datetime(2000, 1, 1),
        max_value=datetime(2090, 1, 1),
        timezones=st.just(timezone.utc),
    ),
    st.sampled_from(["Europe/Paris", "Europe/Brussels", "Europe/Zurich", "Africa/Tunis"]),
    st.integers(min_value=0, max_value=30),
)
def test_months_are_counted_on_the_providers_calendar(moment, tz, months):
    later = clock.add(moment, relativedelta(months=months), tz)
    local, local_later = clock.local_day(moment, tz), clock.local_day(later, tz)
    assert local_later == local + relativedelta(months=months)


@given(
    st.integers(0, 5),
    st.integers(0, 24),
    st.integers(0, 4),
    st.integers(0, 40),
    st.integers(0, 48),
    st.integers(0, 90),
)
def test_iso_durations_read_as_calendar_units(y, mo, w, d, h, mi):
    text = "P" + "".join(f"{n}{u}" for n, u in ((y, "Y"), (mo, "M"), (w, "W"), (d, "D")) if n)
    if h or mi:
        text += "T" + "".join(f"{n}{u}" for n, u in ((h, "H"), (mi, "M")) if n)
    if text == "P":
        return
    assert clock.parse_duration(text) == relativedelta(
        years=y, months=mo, weeks=w, days=d, hours=h, minutes=mi
    )


@given(st.text(max_size=20))
def test_bad_durations_are_refused_cleanly(text):
    try:
        clock.parse_duration(text)
    except clock.BadDate:
        pass


def test_one_month_from_the_31st():
    assert clock.parse_duration("P1M") + date(2027, 1, 31) == date(2027, 2, 28)
