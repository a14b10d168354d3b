"""Sensitive reads from the command line go through ``service.read_sensitive``, the gate the
TUI uses too: the personal data of a closed account, shown by ``account show`` or
``ticket show``, is recorded with who read it and why; log material needs techadmin and a
reason; the chain still verifies."""

from __future__ import annotations

from sqlalchemy import text

from helpdesk.storage import db


def reads(url: str) -> list[tuple]:
    with db.get_engine(url).connect() as conn:
        rows = conn.execute(
            text(
                "SELECT actor, action, note, account_id, ticket_id FROM event WHERE action LIKE 'read-%' ORDER BY id"
            )
        )
        return [tuple(r) for r in rows]


def test_a_closed_accounts_data_read_through_account_or_ticket_show_is_recorded(hd):
    hd.now = "2026-01-10T10:00:00+01:00"
    hd.account("gone", "indigos", "gone@example.org")
    tid = hd.open("password-reset", "indigos", "gone", "gone@example.org")["id"]
    hd.show(tid)  # an active account: nothing recorded
    hd.account("gone", "indigos", "gone@example.org", "--status", "deactivated")
    acc_id = hd.ok("account", "show", "gone", "--reason", "erasure request check", as_="bob")
    assert acc_id["status"] == "deactivated"
    view = hd.show(tid, as_="alice")
    assert view["requester"] == "gone@example.org"
    hd.show(tid)  # without --as: the Unix user is the reader
    rows = reads(hd.url)
    assert [(r[0], r[1], r[2]) for r in rows[:2]] == [
        ("bob", "read-personal-data", "erasure request check"),
        ("alice", "read-personal-data", "ticket show"),
    ]
    assert rows[2][0].startswith("unix:") and rows[2][1] == "read-personal-data"
    assert len({r[3] for r in rows}) == 1 and all(
        r[4] is None for r in rows
    )  # the account's; no ticket history line
    assert hd.ok("audit", "verify")["ok"] is True


def test_reading_a_closed_account_as_an_unknown_volunteer_shows_nothing(hd):
    hd.account("gone", "indigos", "gone@example.org", "--status", "erased")
    r = hd.run("account", "show", "gone", as_="mallory")
    assert r.code == 2 and "gone@example.org" not in r.out
    assert reads(hd.url) == []


def test_log_material_needs_techadmin_and_a_reason(hd):
    hd.now = "2026-01-10T10:00:00+01:00"
    hd.account("spammer", "wigii", "s@example.org")
    tid = hd.open("abuse", "wigii", "spammer", "", "category=spam", as_="bob")["id"]
    hd.refused("ticket", "act", tid, "read-logs", "--note", "why not", as_="alice", rule="role")
    hd.refused(
        "ticket", "act", tid, "read-logs", "--note", "why not", as_="tom", rule="training-only"
    )
    hd.refused(
        "ticket",
        "act",
        tid,
        "read-logs",
        "--note",
        "why not",
        as_="chloe",
        rule="log_purpose_given",
        cite="Wigii CGU art. 5",
    )
    hd.bad("ticket", "act", tid, "read-logs", "--field", "purpose=misuse", as_="chloe")
    hd.act(
        tid,
        "read-logs",
        "--field",
        "purpose=misuse",
        "--note",
        "times of the reported messages",
        as_="chloe",
    )
    assert [(r[0], r[1], r[2], r[4]) for r in reads(hd.url)] == [
        ("chloe", "read-logs", "times of the reported messages", tid)
    ]
    assert hd.ok("audit", "verify")["ok"] is True


def test_quarantined_input_and_lists_of_closed_accounts_are_recorded_reads(hd, tmp_path):
    hd.now = "2026-01-10T10:00:00+01:00"
    hd.account("open1", "indigos", "open1@example.org")
    hd.ok("account", "list", as_="alice")
    assert reads(hd.url) == []  # no closed account listed: nothing to record
    hd.account("gone", "indigos", "gone@example.org", "--status", "erased")
    listed = hd.ok("account", "list", "--status", "erased", "--reason", "erasure audit", as_="bob")
    assert [a["login"] for a in listed] == ["gone"]
    bad = tmp_path / "bad.eml"
    bad.write_bytes(
        b"From: someone@example.net\nTo: x@indigos.example\nSubject: ?\n\nJe suis Jeanne, 12 rue des Lilas.\n"
    )
    summary = hd.ok("ingest", "mail", bad)
    qid = summary["items"][0]["quarantine"]
    raw = hd.run(
        "quarantine", "show", qid, "--raw", "--reason", "triage", as_="alice", json_out=False
    )
    assert raw.code == 0 and "rue des Lilas" in raw.out
    rows = reads(hd.url)
    assert [(r[0], r[1], r[2]) for r in rows] == [
        ("bob", "read-personal-data", "erasure audit"),
        ("alice", "read-quarantine", "triage"),
    ]
    assert hd.ok("audit", "verify")["ok"] is True
