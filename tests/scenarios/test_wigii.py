"""Wigii (CGU, seeds/000): the four procedures through the real CLI, with a moved clock."""

from __future__ import annotations

import sqlite3

import pytest

NOW = "2026-11-23T09:00:00+01:00"


@pytest.fixture
def wigii(hd):
    hd.now = NOW
    hd.account(
        "jdupont", "wigii", "jean.dupont@example.org", "--last-login", "2026-10-01T10:00:00Z"
    )
    return hd


def test_deactivation_request_three_items_ack_and_day(wigii):
    hd = wigii
    # Art. 9: the request lacks the system address: it waits on the requester.
    t = hd.open(
        "closure", "wigii", "jdupont", "jean.dupont@example.org", "reason=request", "day=2026-12-15"
    )
    assert t["state"] == "incomplete"
    tid = t["id"]
    mails = hd.ok("outbox", "list", "--ticket", tid)
    assert [m["template"] for m in mails] == ["closure-missing-items"]
    body = hd.ok("outbox", "show", mails[0]["id"])["body"]
    assert "manquante" in body and "jdupont" in body

    hd.refused(
        "ticket",
        "act",
        tid,
        "deactivate",
        as_="alice",
        rule="not_in_states",
        cite="Wigii CGU art. 9",
    )

    # The missing item arrives: the confirmation goes out, with the export reminder.
    t = hd.act(tid, "complete", "--field", "system=https://relation.wigii.org")
    assert t["state"] == "awaiting-ack"
    confirmation = hd.ok("outbox", "list", "--ticket", tid)[-1]
    assert (
        confirmation["template"] == "closure-confirmation"
        and confirmation["to"] == "jean.dupont@example.org"
    )
    body = hd.ok("outbox", "show", confirmation["id"])["body"]
    assert "quittancer" in body and "15 décembre 2026" in body
    assert "données partagées" in body  # art. 9: remove what was shared with others

    # No deactivation without the acknowledgement.
    refusal = hd.refused("ticket", "act", tid, "deactivate", as_="bob", rule="not_in_states")
    assert "quittance" in refusal["message"]
    assert hd.show(tid)["fields"]["system"] == "https://relation.wigii.org"

    # Art. 9: the acknowledgement is recorded with where it came from; no one-key step.
    hd.bad("ticket", "act", tid, "acknowledge")
    t = hd.act(tid, "acknowledge", "--note", "acknowledged by phone call from Jean Dupont, 14:05")
    assert t["state"] == "scheduled"
    assert t["deadlines"]["deactivation"] == "2026-12-14T23:00:00Z"  # midnight in Zurich

    # Not before the requested day, by hand or by the clock.
    hd.refused(
        "ticket",
        "act",
        tid,
        "deactivate",
        as_="bob",
        rule="day_reached",
        now="2026-12-14T22:59:00Z",
    )
    sweep = hd.ok("sweep", now="2026-12-14T22:00:00Z")
    assert sweep["taken"] == []
    assert hd.ok("account", "show", "jdupont")["status"] == "active"

    sweep = hd.ok("sweep", now="2026-12-15T00:05:00+01:00")
    assert sweep["taken"] == [{"ticket": tid, "action": "deactivate", "state": "deactivated"}]
    t = hd.show(tid)
    assert t["state"] == "deactivated"
    assert hd.ok("account", "show", "jdupont")["status"] == "deactivated"
    # Erasure at the next maintenance, and the day the backups forget the data.
    assert t["deadlines"]["erasure"] == "2027-01-14T23:05:00Z"
    assert t["deadlines"]["backups-forget"] == "2027-02-13T23:05:00Z"
    done = hd.ok("outbox", "list", "--ticket", tid)[-1]
    assert done["template"] == "closure-done"

    sweep = hd.ok("sweep", now="2027-01-15T00:10:00+01:00")
    assert [s["action"] for s in sweep["taken"]] == ["erase"]
    assert hd.ok("account", "show", "jdupont")["status"] == "erased"
    assert hd.show(tid)["state"] == "erased"
    history = [(e["actor"], e["action"]) for e in hd.show(tid)["events"]]
    assert history == [
        ("alice", "open"),
        ("system", "route-incomplete"),
        ("alice", "complete"),
        ("system", "route-complete"),
        ("alice", "acknowledge"),
        ("system", "deactivate"),
        ("system", "erase"),
        ("system", "erasure-complete"),  # no service configured: nothing to wait for
    ]


def test_deactivation_request_from_someone_else_waits_and_is_rejected(wigii):
    hd = wigii
    t = hd.open(
        "closure",
        "wigii",
        "jdupont",
        "mallory@example.net",
        "reason=request",
        "day=2026-12-15",
        "system=https://rise.wigii.org",
    )
    assert t["state"] == "received"  # no confirmation went to anyone
    assert hd.ok("outbox", "list", "--ticket", t["id"]) == []
    hd.bad("ticket", "act", t["id"], "reject", as_="alice")  # the reason is required
    t = hd.act(t["id"], "reject", "--note", "not sent from the registered address")
    assert t["state"] == "rejected"
    assert hd.ok("account", "show", "jdupont")["status"] == "active"


def test_inactivity_found_by_sweep(wigii):
    hd = wigii
    hd.account("old", "wigii", "old@example.org", "--last-login", "2025-11-01T08:00:00Z")
    hd.account("recent", "wigii", "recent@example.org", "--last-login", "2025-11-24T08:00:00Z")
    sweep = hd.ok("sweep")
    opened = {o["account"]: o for o in sweep["opened"]}
    assert set(opened) == {"old"}  # more than one year without login; "recent" is 364 days
    tid = opened["old"]["ticket"]
    t = hd.show(tid)
    assert t["state"] == "proposed" and t["fields"]["reason"] == "inactivity"
    assert hd.ok("sweep")["opened"] == []  # one ticket per account, not one per sweep

    # The user logs in meanwhile: deactivating is refused with art. 9.
    hd.account("old", "wigii", "old@example.org", "--last-login", "2026-11-20T08:00:00Z")
    hd.refused(
        "ticket",
        "act",
        tid,
        "deactivate",
        as_="alice",
        rule="inactive_for",
        cite="Wigii CGU art. 9",
    )
    hd.act(tid, "cancel", "--note", "logged in again")
    assert hd.show(tid)["state"] == "cancelled"


def test_space_closure_two_month_notice(wigii):
    hd = wigii
    hd.account("espace-xyz", "wigii", "titulaire@example.org", "--org", "Projet XYZ")
    t = hd.open("closure", "wigii", "espace-xyz", "", "reason=space", as_="bob")
    tid = t["id"]
    assert t["state"] == "space-proposed"
    hd.refused(
        "ticket",
        "act",
        tid,
        "give-notice",
        "--note",
        "obsolete",
        "--check",
        "notice-posted",
        as_="alice",
        rule="role",
    )
    hd.refused(
        "ticket", "act", tid, "give-notice", "--note", "obsolete", as_="bob", rule="checklist"
    )
    hd.refused(
        "ticket", "act", tid, "deactivate", as_="bob", rule="not_in_states", cite="Wigii CGU art. 9"
    )
    t = hd.act(
        tid, "give-notice", "--note", "unused since 2019", "--check", "notice-posted", as_="bob"
    )
    assert t["state"] == "notice"
    assert t["deadlines"]["notice-ends"] == "2027-01-23T08:00:00Z"  # two calendar months
    hd.refused(
        "ticket",
        "act",
        tid,
        "deactivate",
        as_="bob",
        rule="deadline_reached",
        now="2027-01-22T08:00:00Z",
    )
    assert hd.ok("sweep", now="2027-01-23T09:00:00Z")["taken"][0]["action"] == "deactivate"
    assert hd.ok("account", "show", "espace-xyz")["status"] == "deactivated"


def test_password_reset_link_to_registered_contact_only(wigii):
    hd = wigii
    stranger = hd.open("password-reset", "wigii", "jdupont", "jean.dupont@evil.example")
    refusal = hd.refused(
        "ticket",
        "act",
        stranger["id"],
        "issue-reset-link",
        rule="requester_is_contact",
        cite="Wigii CGU art. 6",
    )
    assert "jean.dupont@evil.example" in refusal["message"]
    hd.bad(
        "ticket", "act", stranger["id"], "redirect"
    )  # Wigii serves its users itself: no redirect step

    t = hd.open("password-reset", "wigii", "jdupont", "Jean.Dupont@example.org")
    blocked = {a["key"]: a for a in t["actions"]}
    assert blocked["issue-reset-link"]["allowed"] is True
    assert blocked["issue-reset-link"]["citation"] == "Wigii CGU art. 6"
    assert "give-code-by-phone" not in blocked  # out of band is CommunesPlone's way only
    t = hd.act(t["id"], "issue-reset-link")
    assert t["state"] == "reset-issued"
    assert "reset-expires" in t["deadlines"]
    mail = hd.ok("outbox", "show", hd.ok("outbox", "list", "--ticket", t["id"])[0]["id"])
    assert mail["to"] == "jean.dupont@example.org"
    assert "[[reset-link]]" in mail["body"]  # the secret is minted only at delivery
    assert "mot de passe" in mail["body"].lower()

    path = hd.url.removeprefix("sqlite:///")
    if hd.url.startswith("sqlite"):
        con = sqlite3.connect(path)
        (hashed, minted) = con.execute("select token_hash, minted_at from resettoken").fetchone()
        assert hashed == "" and minted is None


def test_abuse_logs_reserved_to_technical_admins(wigii):
    hd = wigii
    t = hd.open("abuse", "wigii", "jdupont", "victim@example.net", "category=harassment")
    tid = t["id"]
    hd.refused(
        "ticket",
        "act",
        tid,
        "read-logs",
        "--note",
        "harassment report",
        as_="bob",
        rule="role",
        cite="Wigii CGU art. 5",
    )
    hd.refused(
        "ticket",
        "act",
        tid,
        "read-logs",
        "--note",
        "curious",
        as_="chloe",
        rule="log_purpose_given",
        cite="Wigii CGU art. 5",
    )
    hd.bad(
        "ticket", "act", tid, "read-logs", "--field", "purpose=misuse", as_="chloe"
    )  # a reason must be recorded
    t = hd.act(
        tid,
        "read-logs",
        "--field",
        "purpose=misuse",
        "--note",
        "check the reported messages' times",
        as_="chloe",
    )
    assert t["state"] == "open"  # reading changes nothing but the trail
    read = t["events"][-1]
    assert read["action"] == "read-logs" and read["actor"] == "chloe" and read["note"]
    # Wigii art. 7 has no exchange-first rule, but suspension is an on-call step.
    hd.refused("ticket", "act", tid, "suspend", "--note", "x", as_="alice", rule="role")
    t = hd.act(tid, "suspend", "--note", "threats confirmed", as_="bob")
    assert t["state"] == "suspended"
    assert hd.ok("account", "show", "jdupont")["sanctions"][0]["step"] == "suspension"
