"""Ingest as an attacker feeds it (issue 13): a 45 MB header held the database lock while
the parser worked on it, and a concurrent ``ticket assign`` died; long headers had no bound;
a quarantined item was parsed again at full cost on every run; an over-long Postfix line
was dropped without a trace."""

from __future__ import annotations

from helpdesk.ingest import intake
from tests.ingest.mailmaker import NOW, mail, maildir, sha


def _request(subject: str = "Mot de passe oublié", body: str = "Bonjour, merci.") -> bytes:
    return mail(
        "Jean <jean.dupont@example.org>", "contact@wigii.org", subject, body, message_id=None
    )


def _with_account(attacker) -> None:
    attacker.ok(
        "account",
        "add",
        "jdupont",
        "--policy",
        "wigii",
        "--email",
        "jean.dupont@example.org",
        as_="chloe",
    )


def test_a_long_header_is_quarantined_with_its_reason_and_kept_raw(attacker, tmp_path):
    _with_account(attacker)
    hostile = _request(subject="\x1b[31m" + "A" * 200_000)
    box = maildir(tmp_path / "box", [hostile, _request(body="Bonjour, c'est pour mon accès.")])
    run = attacker.ok("ingest", "mail", box, "--now", NOW, as_="chloe")
    assert run["counts"]["quarantined"] == 1 and run["counts"]["opened"] == 1, run
    item = next(i for i in run["items"] if i["outcome"] == "quarantined")
    assert "en-tête 'Subject' trop long" in item["reason"] and "limite 65536" in item["reason"]
    shown = attacker.ok("quarantine", "show", item["quarantine"], "--reason", "triage", as_="bob")
    assert shown["sha256"] == sha(hostile) and shown["bytes"] == len(hostile)
    from tests.ingest.mailmaker import db_rows

    kept = db_rows(
        attacker.url, "SELECT content FROM quarantine WHERE id = :p0", item["quarantine"]
    )
    assert bytes(kept[0][0]) == hostile  # the exact item, raw


def test_a_quarantined_item_is_not_parsed_again(attacker, tmp_path, monkeypatch):
    calls = []
    real = intake.parse_mail

    def counted(raw: bytes):  # the real parser, counted
        calls.append(len(raw))
        return real(raw)

    monkeypatch.setattr(intake, "parse_mail", counted)
    stray = mail(  # to no provider's address: quarantined until a volunteer triages it
        "Jean <jean.dupont@example.org>",
        "quelquun@ailleurs.example",
        "Mot de passe oublié",
        "Bonjour, mon mot de passe ne marche plus.",
        message_id=None,
    )
    box = maildir(tmp_path / "box", [stray])
    first = attacker.ok("ingest", "mail", box, "--now", NOW, as_="chloe")
    assert first["counts"]["quarantined"] == 1 and len(calls) == 1
    for _ in range(2):
        again = attacker.ok("ingest", "mail", box, "--now", NOW, as_="chloe")
        assert again["counts"]["duplicates"] == 1, again
        assert "toujours en quarantaine" in again["items"][0]["reason"]
    assert len(calls) == 1  # known by its digest: not parsed again
    # A triage run (the volunteer says where it belongs) tries it again.
    _with_account(attacker)
    triage = attacker.ok("ingest", "mail", box, "--policy", "wigii", "--now", NOW, as_="chloe")
    assert len(calls) == 2 and triage["counts"]["opened"] == 1, triage
    assert attacker.ok("quarantine", "list", as_="chloe") == []  # released


def test_another_writer_commits_while_a_large_mail_is_parsed(attacker, tmp_path, monkeypatch):
    """While the parser works, no write transaction of the ingest is open: a write by
    another connection (as ``ticket assign`` from another process) commits at once. When
    the ingest held the lock there, this write waited the busy timeout and failed."""
    import time

    from helpdesk.rules.context import Actor
    from helpdesk.service import api
    from helpdesk.storage import db

    _with_account(attacker)
    tid = attacker.ok(
        "ticket", "open", "password-reset", "--policy", "wigii", "--account", "jdupont", as_="bob"
    )["id"]
    real = intake.parse_mail
    waited = []

    def concurrent_write(raw: bytes):
        start = time.monotonic()
        with db.write_session(attacker.url) as s:
            api.assign(s, tid, Actor("bob", "oncall"), "alice")
        waited.append(time.monotonic() - start)
        return real(raw)

    monkeypatch.setattr(intake, "parse_mail", concurrent_write)
    large = _request(body="Bonjour, mon mot de passe.\n" + "x" * 8_000_000)
    run = attacker.ok(
        "ingest", "mail", maildir(tmp_path / "box", [large]), "--now", NOW, as_="chloe"
    )
    assert waited and max(waited) < 5, waited
    assert run["counts"]["opened"] == 1 and run["counts"].get("errors", 0) == 0, run
    assert attacker.ok("ticket", "show", tid, as_="bob")["assignee"] == "alice"


def test_an_over_long_postfix_line_is_quarantined_and_the_run_goes_on(attacker, tmp_path):
    from helpdesk.ingest.postfix_senders import BLOCK, LONG_LINE_KEPT, MAX_LINE, MAX_LOG_LINE

    head = b"Nov 23 09:00:01 mx1 postfix/smtpd[1]: ABCDEF1230: client=x[192.0.2.1], \x1b]0;"
    long = head + b"Z" * (MAX_LOG_LINE + 10)
    log = tmp_path / "mail.log"
    with open(log, "wb") as f:
        f.write(b"Nov 23 09:00:00 mx1 postfix/qmgr[200]: ABCDEF1234: removed\n")
        f.write(long + b"\n")
        f.write(head + b"Y" * (MAX_LINE + BLOCK) + b"\n")  # not even read whole: passed over
        f.write(b"Nov 23 09:00:05 mx1 postfix/qmgr[200]: ABCDEF1235: removed\n")
    run = attacker.ok("ingest", "postfix", log, "--year", "2026", "--now", NOW, as_="chloe")
    assert run["counts"]["quarantined"] == 2 and run["counts"]["events"] == 2, run
    rows = attacker.ok("quarantine", "list", "--kind", "postfix", as_="chloe")
    reasons = sorted(r["reason"] for r in rows)
    assert len(rows) == 2 and all("line too long for a Postfix log" in r for r in reasons)
    assert any(f"limit {MAX_LOG_LINE}" in r for r in reasons)
    assert any(f"limit {MAX_LINE}" in r for r in reasons)
    assert [r["bytes"] for r in rows] == [LONG_LINE_KEPT, LONG_LINE_KEPT]
    from tests.ingest.mailmaker import db_rows

    kept = db_rows(attacker.url, "SELECT content FROM quarantine ORDER BY id")
    assert [bytes(k[0]) for k in kept] == [
        long[:LONG_LINE_KEPT],
        head + b"Y" * (LONG_LINE_KEPT - len(head)),
    ]
    # Read again: nothing new, nothing lost.
    again = attacker.ok("ingest", "postfix", log, "--year", "2026", "--now", NOW, as_="chloe")
    assert again["counts"].get("quarantined", 0) == 0
