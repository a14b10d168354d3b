"""Postfix logs: line parsing, per-sender windows and alerts, resumable reading, samples."""

from __future__ import annotations

import os
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helpdesk.ingest.errors import ParseError
from tests.ingest.postfix_reference import (
    MAX_LINE_BYTES,
    LogCursor,
    LogEvent,
    SenderStats,
    Thresholds,
    iter_events,
    parse_line,
    read_from,
    scan,
)

from .conftest import assert_clear_reason, name_of, params, sample, sample_files

UTC = UTC

pytestmark = pytest.mark.usefixtures("english")  # the reasons read in English


def test_classic_timestamp_single_digit_day_and_zone() -> None:
    event = parse_line(
        "Mar 7 02:09:33 mx postfix/qmgr[1]: ABCDEF1234: removed", 2025, ZoneInfo("Europe/Paris")
    )
    assert event is not None and event.kind == "removed" and event.queue_id == "ABCDEF1234"
    assert event.timestamp == datetime(2025, 3, 7, 1, 9, 33, tzinfo=UTC)
    padded = parse_line("Apr  6 13:05:01 mx postfix/qmgr[1]: ABCDEF1234: removed", 2025)
    assert padded is not None and padded.timestamp == datetime(2025, 4, 6, 13, 5, 1, tzinfo=UTC)


def test_rfc3339_timestamp_and_long_queue_id() -> None:
    event = parse_line(
        "2023-03-14T00:31:06.621091+01:00 helga postfix/submission/smtpd[303987]: 4PbCZy4PWKz3tBr: "
        "client=unknown[2a02:8109:b240:41c8:9264:99a9:1b0d:15c8], sasl_method=PLAIN, sasl_username=vmail@uhu-banane.net",
        1999,
    )
    assert event is not None
    assert event.timestamp == datetime(2023, 3, 13, 23, 31, 6, 621091, tzinfo=UTC)
    assert (event.kind, event.queue_id, event.syslog_name, event.service) == (
        "client",
        "4PbCZy4PWKz3tBr",
        "postfix/submission",
        "smtpd",
    )
    assert (event.client_ip, event.sasl_method, event.sasl_username) == (
        "2a02:8109:b240:41c8:9264:99a9:1b0d:15c8",
        "PLAIN",
        "vmail@uhu-banane.net",
    )


@pytest.mark.parametrize(
    ("tag", "syslog_name", "service"),
    [
        ("postfix/smtpd", "postfix", "smtpd"),
        ("postfix-incoming/smtpd", "postfix-incoming", "smtpd"),
        ("postfix/submission/smtpd", "postfix/submission", "smtpd"),
        ("postfix-smo/submission/smtpd", "postfix-smo/submission", "smtpd"),
        ("postfix/10025/smtpd", "postfix/10025", "smtpd"),
    ],
)
def test_syslog_names(tag: str, syslog_name: str, service: str) -> None:
    event = parse_line(
        f"Jan 12 11:07:49 mx {tag}[13767]: ABCDE12345: client=h.example[192.0.2.1]", 2025
    )
    assert event is not None and (event.syslog_name, event.service) == (syslog_name, service)


def test_message_lifecycle_lines() -> None:
    queued = parse_line(
        "Mar 22 08:01:04 mx postfix/qmgr[1]: FGHIJ67890: from=<User2@Other.example.com>, size=5678, nrcpt=2 (queue active)",
        2025,
    )
    assert queued is not None and (queued.kind, queued.sender, queued.size, queued.nrcpt) == (
        "queued",
        "user2@other.example.com",
        5678,
        2,
    )
    for status in ("sent", "bounced", "deferred", "expired"):
        line = f"Mar 22 08:01:05 mx postfix/smtp[2]: FGHIJ67890: to=<r@dest.example>, orig_to=<o@x>, relay=mx[10.0.0.1]:25, delay=2, delays=0.1/0.2/0.3/1.4, dsn=5.1.1, status={status} (550 5.1.1 <x@y>: user=unknown)"
        event = parse_line(line, 2025)
        assert event is not None and (event.kind, event.recipient, event.status, event.dsn) == (
            "delivery",
            "r@dest.example",
            status,
            "5.1.1",
        )
    filtered = parse_line(
        "Mar 22 08:01:05 mx postfix/amavis/smtp[2]: 4PcV4C4sMlz3tBr: to=<u@x>, relay=127.0.0.1[127.0.0.1]:10024, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as 4PcV4H5dfWz3tG3)",
        2025,
    )
    assert filtered is not None and filtered.queued_as == "4PcV4H5dfWz3tG3"
    expired = parse_line(
        "Mar 22 08:01:05 mx postfix/qmgr[1]: FGHIJ67890: from=<a@b.example>, status=expired, returned to sender",
        2025,
    )
    assert expired is not None and expired.kind == "expired"
    pickup = parse_line(
        "Mar 22 08:02:01 mx postfix/pickup[3]: KLMNO11111: uid=1000 from=<localuser>", 2025
    )
    assert pickup is not None and (pickup.kind, pickup.sender) == ("pickup", "localuser")


def test_rejects_in_both_forms() -> None:
    smtpd = parse_line(
        "Mar 22 08:05:01 mx postfix/smtpd[4]: NOQUEUE: reject: RCPT from spammer.example.com[172.16.0.1]: 554 5.7.1 "
        "<spam@example.com>: Relay access denied; from=<spammer@spam.com> to=<victim@example.com> proto=ESMTP helo=<spammer.example.com>",
        2025,
    )
    assert smtpd is not None
    assert (smtpd.kind, smtpd.queue_id, smtpd.stage, smtpd.code, smtpd.dsn) == (
        "reject",
        None,
        "RCPT",
        "554",
        "5.7.1",
    )
    assert (smtpd.client_ip, smtpd.sender, smtpd.recipient) == (
        "172.16.0.1",
        "spammer@spam.com",
        "victim@example.com",
    )
    postscreen = parse_line(
        "May  5 15:51:11 mx postfix/postscreen[1148]: NOQUEUE: reject: RCPT from [216.245.194.173]:60591: 550 5.7.1 Service "
        "unavailable; client [216.245.194.173] blocked using rbl.example.com; from=<spammer@example.com>, to=<goodguy@example.com>, proto=ESMTP, helo=<bad>",
        2025,
    )
    assert postscreen is not None
    assert (postscreen.client_ip, postscreen.sender, postscreen.recipient) == (
        "216.245.194.173",
        "spammer@example.com",
        "goodguy@example.com",
    )
    milter = parse_line(
        "Mar 7 02:09:33 s postfix/smtpd[2]: 1D8CC1CA0A7F: milter-reject: DATA from h[192.0.2.151]: 550 5.7.1 Command rejected; from=<a@b> to=<c@d> proto=ESMTP helo=<x>",
        2025,
    )
    assert milter is not None and (milter.kind, milter.queue_id, milter.stage) == (
        "reject",
        "1D8CC1CA0A7F",
        "DATA",
    )


def test_sasl_failures() -> None:
    plain = parse_line(
        "Nov  4 09:11:01 mail postfix/submission/smtpd[27133]: warning: unknown[192.0.2.150]: SASL PLAIN authentication failed:",
        2025,
    )
    assert plain is not None and (
        plain.kind,
        plain.client_ip,
        plain.sasl_method,
        plain.sasl_username,
    ) == (
        "sasl_failed",
        "192.0.2.150",
        "PLAIN",
        None,
    )
    named = parse_line(
        "Nov  4 09:11:01 mail postfix/smtpd[1234]: warning: unknown[192.0.2.152]:55729: SASL login authentication failed: (reason unavailable), sasl_username=admin",
        2025,
    )
    assert named is not None and (named.sasl_method, named.sasl_username) == ("LOGIN", "admin")


@pytest.mark.parametrize(
    "line",
    [
        "",
        "   ",
        '# failJSON: { "time": "2005-02-21T09:21:54", "match": true }',
        "Mar 22 08:00:01 mx dovecot: imap-login: Login: user=<a>",
        "Mar 22 08:00:01 mx postfix/smtpd[1]: connect from h[192.0.2.1]",
        "Mar 22 08:00:03 mx postfix/cleanup[2]: ABCDE12345: message-id=<x@y>",
        "2023-03-16T02:26:33.882402+01:00 helga postfix/anvil[3163161]: statistics: max connection rate 1/60s",
        "Feb 30 08:00:01 mx postfix/qmgr[1]: ABCDE12345: removed",  # no such day
        "postfix postfix postfix",
        "Mar 22 08:00:01 mx postfix/qmgr[1]: warning: removed",
    ],
)
def test_lines_that_are_not_events(line: str) -> None:
    assert parse_line(line, 2025) is None


def test_year_rollover() -> None:
    lines = [
        "Dec 31 23:59:59 mx postfix/qmgr[1]: ABCDE12345: removed",
        "not postfix",
        "Jan  1 00:00:01 mx postfix/qmgr[1]: ABCDE12346: removed",
        "Jan  1 00:00:02 mx postfix/qmgr[1]: ABCDE12347: removed",
    ]
    assert [e.timestamp.year for e in iter_events(lines, 2025)] == [2025, 2026, 2026]
    paris = [e.timestamp for e in iter_events(lines, 2025, ZoneInfo("Europe/Paris"))]
    assert paris[1] == datetime(
        2025, 12, 31, 23, 0, 1, tzinfo=UTC
    )  # New Year in Paris, still 2025 in UTC


# --- windows and alerts ---------------------------------------------------------------------

T0 = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)


def _event(kind: str, queue_id: str, at: timedelta, **fields: object) -> LogEvent:
    return LogEvent(
        timestamp=T0 + at,
        host="mx",
        syslog_name="postfix",
        service="x",
        kind=kind,
        queue_id=queue_id,
        **fields,
    )  # type: ignore[arg-type]


def _message(
    n: int,
    at: timedelta,
    *,
    sasl: str | None = "alice@example.org",
    sender: str = "alice@example.org",
    client_ip: str = "198.51.100.5",
    statuses: tuple[str, ...] = ("sent",),
) -> list[LogEvent]:
    qid = f"Q{n:09X}"
    events = [
        _event("client", qid, at, client_ip=client_ip, sasl_username=sasl),
        _event("queued", qid, at, sender=sender, nrcpt=len(statuses)),
    ]
    events += [
        _event("delivery", qid, at, recipient=f"r{i}@dest.example", status=s)
        for i, s in enumerate(statuses)
    ]
    return [*events, _event("removed", qid, at)]


def test_burst_alert_and_figures_only() -> None:
    stats = SenderStats(timedelta(hours=1))
    for n in range(150):
        stats.feed_all(_message(n, timedelta(seconds=10 * n)))
    for n in range(150, 160):
        stats.feed_all(_message(n, timedelta(seconds=10 * n), sasl=None, sender="bob@example.org"))
    (alert,) = stats.check(Thresholds(burst=100))
    assert (alert.sender, alert.messages, alert.recipients, alert.bounces, alert.deferrals) == (
        "alice@example.org",
        150,
        150,
        0,
        0,
    )
    assert alert.kinds == ("burst",) and alert.reason == "150 messages in 1 h (limit 100)"
    assert alert.window_end == T0 + timedelta(seconds=1590)
    assert stats.totals("bob@example.org") == (10, 10, 0, 0)
    assert stats.tracked_queue_ids == 0  # every queue id was removed


def test_bounce_ratio_alert_needs_a_minimum_of_messages() -> None:
    stats = SenderStats()
    for n in range(10):
        stats.feed_all(_message(n, timedelta(minutes=n), statuses=("bounced", "sent")))
    assert stats.check(Thresholds(bounce_ratio=0.2, bounce_min_messages=20)) == []
    (alert,) = stats.check(Thresholds(bounce_ratio=0.2, bounce_min_messages=5))
    assert (alert.bounces, alert.recipients, alert.bounce_ratio, alert.kinds) == (
        10,
        20,
        0.5,
        ("bounce_ratio",),
    )


def test_retries_are_not_counted_twice() -> None:
    stats = SenderStats()
    events = _message(1, timedelta(0), statuses=("deferred",))[:-1]  # not removed yet
    events += [
        _event("queued", "Q000000001", timedelta(minutes=m), sender="alice@example.org", nrcpt=1)
        for m in (10, 20)
    ]
    events += [
        _event(
            "delivery",
            "Q000000001",
            timedelta(minutes=m),
            recipient="r0@dest.example",
            status="deferred",
        )
        for m in (10, 20)
    ]
    stats.feed_all(events)
    assert stats.totals("alice@example.org") == (1, 1, 0, 1)


def test_content_filter_reinjection_counts_once_and_keeps_bounces() -> None:
    stats = SenderStats()
    stats.feed_all(
        [
            _event(
                "client",
                "AAAAAA0001",
                timedelta(0),
                client_ip="203.0.113.9",
                sasl_username="carol@example.org",
            ),
            _event("queued", "AAAAAA0001", timedelta(0), sender="carol@example.org", nrcpt=1),
            _event("client", "BBBBBB0002", timedelta(seconds=2), client_ip="127.0.0.1"),
            _event(
                "queued", "BBBBBB0002", timedelta(seconds=2), sender="carol@example.org", nrcpt=1
            ),
            _event(
                "delivery",
                "AAAAAA0001",
                timedelta(seconds=3),
                status="sent",
                queued_as="BBBBBB0002",
            ),
            _event("removed", "AAAAAA0001", timedelta(seconds=3)),
            _event(
                "delivery",
                "BBBBBB0002",
                timedelta(seconds=4),
                status="bounced",
                recipient="x@dest.example",
            ),
            _event(
                "queued", "CCCCCC0003", timedelta(seconds=5), sender="", nrcpt=1
            ),  # the bounce notice
            _event("delivery", "CCCCCC0003", timedelta(seconds=6), status="bounced"),
        ]
    )
    assert stats.totals("carol@example.org") == (1, 1, 1, 0)
    assert stats.tracked_senders == 1


def test_window_slides_and_memory_stays_flat() -> None:
    stats = SenderStats(timedelta(hours=1), horizon=timedelta(hours=2), max_queue_ids=500)
    for n in range(20_000):
        at = timedelta(seconds=30 * n)  # a week of mail, never "removed" for a third of it
        for event in _message(n, at, sasl=f"user{n % 50}@example.org"):
            if event.kind != "removed" or n % 3:
                stats.feed(event)
        assert stats.tracked_queue_ids <= 500
        assert stats.tracked_senders <= 50
    assert (
        sum(stats.totals(f"user{i}@example.org")[0] for i in range(50)) == 120
    )  # one hour at 2 per minute


def test_senders_are_forgotten_after_the_window() -> None:
    stats = SenderStats(timedelta(hours=1))
    stats.feed_all(_message(1, timedelta(0)))
    stats.feed_all(_message(2, timedelta(hours=3), sasl="dave@example.org"))
    assert stats.tracked_senders == 1 and stats.totals("alice@example.org") == (0, 0, 0, 0)


def test_scan_reports_each_burst_once_per_window() -> None:
    events = [e for n in range(300) for e in _message(n, timedelta(seconds=10 * n))]
    alerts = list(scan(events, Thresholds(burst=100), timedelta(hours=1)))
    assert [a.kinds for a in alerts] == [("burst",)]
    assert alerts[0].messages == 120  # checked when the 5-minute slice turns, at 20 minutes


def test_sender_stats_rejects_bad_windows() -> None:
    with pytest.raises(ValueError):
        SenderStats(timedelta(0))


# --- resuming -------------------------------------------------------------------------------


def _read(path: Path, cursor: LogCursor | None) -> tuple[list[str], LogCursor | None]:
    lines, last = [], cursor
    for line, position in read_from(path, cursor):
        lines.append(line)
        last = position
    return lines, last


def test_cursor_resumes_and_waits_for_complete_lines(tmp_path: Path) -> None:
    log = tmp_path / "mail.log"
    log.write_bytes(b"one\ntwo\nthr")
    lines, cursor = _read(log, None)
    assert lines == ["one", "two"] and cursor is not None and cursor.offset == 8
    with log.open("ab") as handle:
        handle.write(b"ee\r\nfour\n")
    lines, cursor = _read(log, cursor)
    assert lines == ["three", "four"]
    assert _read(log, cursor) == ([], cursor)


def test_cursor_detects_truncation_replacement_and_rotation(tmp_path: Path) -> None:
    log = tmp_path / "mail.log"
    log.write_bytes(b"first\nsecond\nthird\n")
    _, cursor = _read(log, None)
    log.write_bytes(b"new\n")  # truncated (copytruncate), shorter than the offset
    assert _read(log, cursor)[0] == ["new"]
    log.write_bytes(b"first\nsecond\nthird\n")
    _, cursor = _read(log, None)
    log.write_bytes(b"other\nlines\nlonger than before\n")  # same inode, other first line
    assert _read(log, cursor)[0] == ["other", "lines", "longer than before"]
    _, cursor = _read(log, None)
    os.rename(log, tmp_path / "mail.log.1")
    log.write_bytes(b"other\nlines\nlonger than before\nand more\n")  # same content, new inode
    assert _read(log, cursor)[0][0] == "other"


def test_overlong_lines_are_cut_and_bad_bytes_replaced(tmp_path: Path) -> None:
    log = tmp_path / "mail.log"
    log.write_bytes(b"x" * (MAX_LINE_BYTES * 2 + 5) + b"\nok \xff\n")
    lines, cursor = _read(log, None)
    assert [len(line) for line in lines[:1]] == [MAX_LINE_BYTES] and lines[1] == "ok \ufffd"
    assert cursor is not None and cursor.offset == log.stat().st_size
    with log.open("ab") as handle:
        handle.write(b"later\n")
    assert _read(log, cursor)[0] == ["later"]  # an overlong first line still identifies the file


# --- samples --------------------------------------------------------------------------------

LOGS = sample_files("postfix")


@pytest.mark.parametrize("path", params(LOGS), ids=name_of)
def test_every_log_sample_reads(path: Path) -> None:
    stats = SenderStats()
    for line, _cursor in read_from(path):
        event = parse_line(line, 2023)
        if event is not None:
            stats.feed(event)
    stats.check(Thresholds())


def _kinds(name: str, year: int = 2005) -> Counter[str]:
    sample(f"postfix/{name}")
    path = next(p for p in LOGS if p.name == name)
    return Counter(
        e.kind for e in iter_events(path.read_text("utf-8", "replace").splitlines(), year)
    )


def test_log_sample_facts() -> None:
    assert _kinds("pflogsumm-go__testdata_sample.log") == Counter(
        {"delivery": 7, "queued": 4, "removed": 4, "client": 3, "pickup": 1, "reject": 1}
    )
    assert _kinds("fail2ban__tests_files_logs_postfix.log") == Counter(
        {"reject": 26, "sasl_failed": 14}
    )
    real = _kinds("postfix-logsums__mail.log.excerpt_lines1-800.log", 2023)
    assert real["client"] == 10 and real["reject"] == 2


def test_bounce_sample_is_charged_to_the_original_sender() -> None:
    path = next((p for p in LOGS if p.name.endswith("44060-44140_bounce.log")), None)
    if path is None:
        pytest.skip("postfix samples not available")
    stats = SenderStats(timedelta(hours=1))
    stats.feed_all(iter_events(path.read_text().splitlines(), 2023))
    assert stats.totals("bounce-no-reply@nebenan.de") == (2, 2, 1, 0)
    (alert,) = stats.check(Thresholds(burst=1000, bounce_ratio=0.2, bounce_min_messages=1))
    assert (alert.sender, alert.bounce_ratio) == ("bounce-no-reply@nebenan.de", 0.5)


# --- fuzzing --------------------------------------------------------------------------------

_SAMPLE_LINES = [
    line for p in LOGS for line in p.read_text("utf-8", "replace").splitlines() if line
][:2000] or ["Mar 22 08:00:01 mx postfix/qmgr[1]: ABCDE12345: removed"]


@given(
    st.sampled_from(_SAMPLE_LINES), st.integers(0, 300), st.text(max_size=20), st.integers(0, 40)
)
@settings(max_examples=300, deadline=None)
def test_mangled_lines_never_break(line: str, position: int, insert: str, cut: int) -> None:
    mangled = line[:position] + insert + line[position + cut :]
    stats = SenderStats()
    try:
        event = parse_line(mangled, 2024)
    except ParseError as error:
        assert_clear_reason(error)
        return
    if event is not None:
        stats.feed(event)
        stats.check(Thresholds(burst=0, bounce_min_messages=0, bounce_ratio=0.0))


@given(st.text(max_size=300))
def test_random_text_never_breaks(line: str) -> None:
    for candidate in (
        line,
        "Mar 22 08:00:01 mx postfix/smtpd[1]: " + line,
        "Mar 22 08:00:01 mx postfix/smtp[1]: ABCDE12345: " + line,
    ):
        event = parse_line(candidate, 2024)
        assert event is None or isinstance(event, LogEvent)
