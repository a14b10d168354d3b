"""Postfix logs: the fast analyser agrees with ``postfix.SenderStats``; ``helpdesk ingest
postfix`` opens one alert per abusive sender on its provider's thresholds, none for ordinary
senders, resumes where it stopped and follows rotation."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.ingest.postfix_reference import SenderStats, Thresholds, iter_events, scan
from helpdesk.ingest.postfix_senders import SenderWindows, analyse, blocks, blocks_from
from tests.ingest.conftest import sample_files
from tests.ingest.mailmaker import NOW, db_rows

_qids = itertools.count(0x10000)


def stamp(when: datetime, iso: bool) -> str:
    if iso:
        return when.strftime("%Y-%m-%dT%H:%M:%S.%f") + "+00:00"
    return f"{when:%b} {when.day:>2} {when:%H:%M:%S}"


def message(
    when: datetime,
    login: str | None,
    sender: str,
    nrcpt: int = 1,
    bounced: int = 0,
    deferred: int = 0,
    iso: bool = False,
) -> list[str]:
    qid = f"{next(_qids):010X}"
    s = stamp(when, iso)
    auth = f", sasl_method=PLAIN, sasl_username={login}" if login else ""
    lines = [
        f"{s} mx1 postfix/submission/smtpd[100]: {qid}: client=client.example[198.51.100.5]{auth}",
        f"{s} mx1 postfix/cleanup[101]: {qid}: message-id=<{qid}@example>",
        f"{s} mx1 postfix/qmgr[200]: {qid}: from=<{sender}>, size=1234, nrcpt={nrcpt} (queue active)",
    ]
    later = stamp(when + timedelta(seconds=2), iso)
    for n in range(nrcpt):
        if n < bounced:
            status = "dsn=5.1.1, status=bounced (host mx.dest.example said: 550 5.1.1 unknown user)"
        elif n < bounced + deferred:
            status = "dsn=4.4.1, status=deferred (connect to mx.dest.example timed out)"
        else:
            status = "dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as ABCDEF1234)"
        lines.append(
            f"{later} mx1 postfix/smtp[300]: {qid}: to=<r{n}@dest.example>, relay=mx.dest.example[203.0.113.9]:25, delay=2, delays=0.1/0/1/0.9, {status}"
        )
    if not deferred:
        lines.append(f"{later} mx1 postfix/qmgr[200]: {qid}: removed")
    return lines


def traffic(start: datetime, minutes: int, per_sender: dict, iso: bool = False) -> list[str]:
    """``per_sender``: (login, sender) -> (messages, nrcpt, bounced per message)."""
    lines: list[str] = []
    schedule = []
    for (login, sender), (count, nrcpt, bounced) in per_sender.items():
        for i in range(count):
            schedule.append(
                (
                    start + timedelta(seconds=i * minutes * 60 // max(count, 1)),
                    login,
                    sender,
                    nrcpt,
                    bounced,
                )
            )
    for when, login, sender, nrcpt, bounced in sorted(schedule, key=lambda x: (x[0], x[2])):
        lines += message(when, login, sender, nrcpt, bounced, iso=iso)
    return lines


START = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)


def _windows_totals(lines: list[str], year: int) -> SenderWindows:
    """The fast analyser over ``lines``, read in small odd-sized blocks as from a file."""
    import io

    w = SenderWindows(year=year, tz=UTC)
    for data, end, _pos in blocks(io.BytesIO(("\n".join(lines) + "\n").encode()), 0, 5000):
        w.feed(data, end)
    return w


@pytest.mark.parametrize("iso", [False, True])
def test_fast_analyser_agrees_with_sender_stats(iso):
    lines = traffic(
        START,
        50,
        {
            ("alice@a.example", "alice@a.example"): (30, 2, 1),
            (None, "news@b.example"): (12, 5, 0),
            ("carol", "carol@c.example"): (250, 1, 0),
        },
        iso=iso,
    )
    lines.insert(5, "Nov 22 08:00:01 mx1 dovecot: imap-login: Login: user=<x>")  # another program
    reference = SenderStats()
    reference.feed_all(iter_events(lines, 2026, UTC))
    fast = _windows_totals(lines, 2026)
    for sender in ("alice@a.example", "news@b.example", "carol"):
        assert fast.totals(sender) == reference.totals(sender), sender
    limits = Thresholds(burst=200, bounce_ratio=0.3, bounce_min_messages=20)
    expected = {(a.sender, a.kinds) for a in scan(iter_events(lines, 2026, UTC), limits)}
    fast = SenderWindows(year=2026, tz=UTC, thresholds=lambda _s: limits)
    got = fast.feed(("\n".join(lines) + "\n").encode()) + fast.finish()
    assert {(a.sender, a.kinds) for a in got} == expected
    assert ("carol", ("burst",)) in expected and ("alice@a.example", ("bounce_ratio",)) in expected


@pytest.mark.parametrize("path", sample_files("postfix"), ids=lambda p: p.name)
def test_fast_analyser_agrees_on_real_logs(path: Path):
    text = path.read_text("utf-8", "replace").splitlines()
    reference = SenderStats()
    reference.feed_all(iter_events(text, 2023, UTC))
    fast = SenderWindows(year=2023, tz=UTC)
    with open(path, "rb") as handle:
        for data, end, _pos in blocks(handle, 0, 4096):
            fast.feed(data, end)
    senders = set(reference._senders) | {k.decode() for k in fast.senders}
    for sender in senders:
        assert fast.totals(sender) == reference.totals(sender), sender


def test_state_survives_a_snapshot():
    lines = traffic(
        START, 40, {("dave", "dave@d.example"): (150, 3, 1), ("erin", "erin@e.example"): (30, 1, 0)}
    )
    data = ("\n".join(lines) + "\n").encode()
    half = data.rfind(b"\n", 0, len(data) // 2) + 1
    whole = SenderWindows(year=2026, tz=UTC)
    whole.feed(data)
    first = SenderWindows(year=2026, tz=UTC)
    first.feed(data[:half])
    import json

    second = SenderWindows(year=2026, tz=UTC)
    second.restore(json.loads(json.dumps(first.snapshot())))
    second.feed(data[half:])
    for sender in ("dave", "erin"):
        assert second.totals(sender) == whole.totals(sender)


def test_checks_held_until_the_thresholds_come_give_the_same_alerts():
    # The command reads on while the database layer loads: the thresholds come late.
    lines = traffic(
        START,
        90,
        {
            ("carol", "carol@c.example"): (250, 1, 0),  # burst, and again after a window
            ("alice@a.example", "alice@a.example"): (30, 2, 1),  # bounces
            ("calm", "calm@c.example"): (15, 1, 0),
        },
    )
    data = ("\n".join(lines) + "\n").encode()
    limits = {
        "carol": Thresholds(burst=100),
        "alice@a.example": Thresholds(bounce_ratio=0.3),
        "calm": Thresholds(burst=5),
    }
    direct = SenderWindows(year=2026, tz=UTC, thresholds=limits.get)
    expected = direct.feed(data) + direct.finish()
    assert {a.sender for a in expected} == {"carol", "alice@a.example", "calm"}
    for cut in (len(data) // 5, len(data) // 2, len(data)):
        cut = data.rfind(b"\n", 0, cut) + 1
        late = SenderWindows(year=2026, tz=UTC)
        late.hold()
        got = late.feed(data[:cut])
        assert got == [] and late.holding
        got += late.release(limits.get)
        got += late.feed(data[cut:]) + late.finish()
        assert got == expected, cut


def test_blocks_from_a_later_read_are_the_blocks_read_from_the_start():
    # The command's database side scans blocks ahead of the reader, starting mid-file.
    import io

    data = b"".join(b"%d %s\n" % (n, b"x" * (n * 7919 % 300)) for n in range(20000)) + b"partial"
    handle = io.BytesIO(data)
    for offset in (0, data.find(b"\n", 12345) + 1):
        whole, start = [], offset
        for block, end, position in blocks(handle, offset, 4096):
            whole.append((start, block, end, position))
            start = position
        for chunk in (1, 2, 7, len(whole) - 1, len(whole), len(whole) + 3):
            assert list(blocks_from(handle, offset, chunk, 4096)) == whole[chunk:], (offset, chunk)


def test_library_path(tmp_path):
    log = tmp_path / "mail.log"
    log.write_text("\n".join(traffic(START, 30, {("zed", "zed@z.example"): (260, 1, 0)})) + "\n")
    result = analyse(str(log), year=2026, tz=UTC)
    assert [a["sender"] for a in result["alerts"]] == ["zed"]
    assert result["alerts"][0]["messages"] > 200


# --- the command -------------------------------------------------------------------------------


def _accounts(hd):
    hd.now = NOW
    hd.account("burster", "indigos", "burster@indigos.example")  # SASL login = account login
    hd.account("bouncer", "le-pic", "bouncer@le-pic.example")  # found by its address
    hd.account("calm", "indigos", "calm@indigos.example")
    hd.account("wigiiuser", "wigii", "w@wigii.example")  # Wigii has no mail-reputation procedure


def test_ingest_postfix_alerts_resumes_and_follows_rotation(hd, tmp_path):
    _accounts(hd)
    log = tmp_path / "mail.log"
    first = traffic(
        START,
        40,
        {
            ("burster", "burster@indigos.example"): (230, 1, 0),  # mail_burst 200 (indigos)
            (None, "bouncer@le-pic.example"): (40, 1, 0),
            ("calm", "calm@indigos.example"): (10, 2, 0),
            ("w@wigii.example", "w@wigii.example"): (400, 1, 0),
            ("nobody@else.example", "nobody@else.example"): (300, 1, 0),
        },
    )
    bounces = traffic(
        START + timedelta(minutes=10), 20, {(None, "bouncer@le-pic.example"): (30, 2, 1)}
    )  # 50 % bounces
    lines = sorted(first + bounces, key=lambda line: line[:15])
    lines.insert(
        100,
        "Nov 22 08:05:00 mx1 postfix/qmgr[200]: 0BADBADBAD: from=<broken@example, size=1, nrcpt=1 (queue active)",
    )
    log.write_text("\n".join(lines) + "\n")

    s1 = hd.ok("ingest", "postfix", log, "--year", "2026", "--tz", "UTC")
    c = s1["counts"]
    assert c["alerts_opened"] == 2
    assert c["alerts_unmatched"] >= 1  # nobody@else.example: figures in the summary, no ticket
    assert c["quarantined"] == 1
    assert c["lines"] == len(lines)
    tickets = hd.ok("ticket", "list", "--queue", "mail-reputation")
    assert sorted((t["policy"], t["account"]) for t in tickets) == [
        ("indigos", "burster"),
        ("le-pic", "bouncer"),
    ]
    burst = next(t for t in tickets if t["account"] == "burster")
    fields = hd.show(burst["id"])["fields"]
    assert (
        fields["signal"] == "volume" and fields["messages"] > 200 and fields["sender"] == "burster"
    )
    bounce = hd.show(next(t["id"] for t in tickets if t["account"] == "bouncer"))["fields"]
    assert bounce["signal"] == "bounces" and bounce["bounce-ratio"] > 0.3
    reasons = [q["reason"] for q in hd.ok("quarantine", "list", "--kind", "postfix")]
    assert reasons == ["from=< sans son > fermant"]  # French by default

    # Nothing new: nothing read, nothing raised.
    s2 = hd.ok("ingest", "postfix", log, "--year", "2026", "--tz", "UTC")
    assert s2["counts"]["lines"] == 0 and s2["counts"]["alerts_opened"] == 0

    # Two hours later the burster again, written partly before and partly after rotation.
    again = traffic(
        START + timedelta(hours=2), 30, {("burster", "burster@indigos.example"): (240, 1, 0)}
    )
    cut = len(again) // 2
    with open(log, "a") as handle:
        handle.write("\n".join(again[:cut]) + "\n")
    log.rename(tmp_path / "mail.log.1")
    log.write_text("\n".join(again[cut:]) + "\n")
    s3 = hd.ok("ingest", "postfix", log, "--year", "2026", "--tz", "UTC")
    assert s3["counts"]["lines"] == len(again)
    assert s3["counts"]["rotations_followed"] == 1
    assert (
        s3["counts"]["alerts_opened"] == 0 and s3["counts"]["alerts_updated"] >= 1
    )  # one open alert per sender
    assert len(hd.ok("ticket", "list", "--queue", "mail-reputation")) == 2
    events = [e["action"] for e in hd.show(burst["id"])["events"]]
    assert "alert-figures" in events
    cursor = db_rows(hd.url, "select state from ingestcursor where source like 'postfix:%'")
    assert len(cursor) == 1


def test_ingest_postfix_in_two_runs_gives_what_one_run_gives(hd, tmp_path):
    _accounts(hd)
    lines = traffic(
        START,
        50,
        {
            ("burster", "burster@indigos.example"): (220, 1, 0),
            ("calm", "calm@indigos.example"): (20, 1, 0),
        },
    )
    whole, halves = tmp_path / "whole.log", tmp_path / "halves.log"
    whole.write_text("\n".join(lines) + "\n")
    halves.write_text("\n".join(lines[: len(lines) // 2]) + "\n")
    hd.ok("ingest", "postfix", halves, "--year", "2026", "--tz", "UTC")
    with open(halves, "a") as handle:
        handle.write("\n".join(lines[len(lines) // 2 :]) + "\n")
    hd.ok("ingest", "postfix", halves, "--year", "2026", "--tz", "UTC")
    split_tickets = hd.ok("ticket", "list", "--queue", "mail-reputation")
    assert [t["account"] for t in split_tickets] == ["burster"]
    # One run over the same lines finds the same alert (on a fresh cursor, same open ticket).
    s = hd.ok("ingest", "postfix", whole, "--year", "2026", "--tz", "UTC")
    assert s["counts"]["alerts_opened"] == 0 and s["counts"]["alerts_updated"] == 1


def test_ingest_postfix_big_resumed_run_counts_every_line_once(hd, tmp_path):
    # Megabytes after the cursor: the reader takes blocks its database side scanned ahead.
    _accounts(hd)
    lines = traffic(
        START,
        600,
        {
            ("burster", "burster@indigos.example"): (3000, 1, 0),
            (None, "bouncer@le-pic.example"): (1500, 2, 1),
            ("calm", "calm@indigos.example"): (1500, 1, 0),
        },
    )
    log = tmp_path / "mail.log"
    log.write_text("\n".join(lines[:500]) + "\n")
    s1 = hd.ok("ingest", "postfix", log, "--year", "2026", "--tz", "UTC")
    with open(log, "a") as handle:
        handle.write("\n".join(lines[500:]) + "\n")
    assert log.stat().st_size > 3 * 1024 * 1024  # blocks of 1 MiB, scanned ahead from the third
    s2 = hd.ok("ingest", "postfix", log, "--year", "2026", "--tz", "UTC")
    whole = analyse(str(log), year=2026, tz=UTC)
    assert s1["counts"]["lines"] + s2["counts"]["lines"] == whole["lines"] == len(lines)
    assert s1["counts"]["events"] + s2["counts"]["events"] == whole["events"]
    tickets = hd.ok("ticket", "list", "--queue", "mail-reputation")
    assert sorted(t["account"] for t in tickets) == ["bouncer", "burster"]


def test_ingest_postfix_bad_arguments(hd, tmp_path):
    hd.now = NOW
    assert "missing.log" in hd.bad("ingest", "postfix", tmp_path / "missing.log").err
    log = tmp_path / "m.log"
    log.write_text("")
    assert "Mars/Olympus" in hd.bad("ingest", "postfix", log, "--tz", "Mars/Olympus").err
    empty = hd.ok("ingest", "postfix", log)
    assert empty["counts"]["lines"] == 0
