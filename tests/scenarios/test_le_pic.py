"""Le PIC, politique RGPD (seeds/004): processor for its members, data removed within a
year of a membership not renewed, ten days of backups, interruption of a compromised
application, logs reserved to admins."""

from __future__ import annotations

import pytest

NOW = "2026-11-23T10:00:00+01:00"


@pytest.fixture
def pic(hd):
    hd.now = NOW
    hd.account(
        "asso-velo",
        "le-pic",
        "tech@velo.example",
        "--kind",
        "member",
        "--org",
        "Vélo en ville",
        "--contact",
        "bureau@velo.example",
        "--field",
        "membership-end=2026-09-30",
    )
    hd.account(
        "asso-jardin",
        "le-pic",
        "tech@jardin.example",
        "--kind",
        "member",
        "--org",
        "Jardins partagés",
        "--field",
        "membership-end=2027-09-30",
    )
    return hd


def test_membership_not_renewed_data_removed_within_a_year_backups_ten_days(pic):
    hd = pic
    sweep = hd.ok("sweep")
    assert [(o["account"], o["reason"]) for o in sweep["opened"]] == [("asso-velo", "non-renewal")]
    tid = sweep["opened"][0]["ticket"]
    t = hd.show(tid)
    assert t["state"] == "non-renewal"
    assert t["deadlines"]["data-removal"] == "2027-09-29T22:00:00Z"  # 30 Sept 2027, Paris
    t = hd.act(tid, "confirm-non-renewal")
    assert t["state"] == "ending"
    body = hd.ok("outbox", "show", hd.ok("outbox", "list", "--ticket", tid)[-1]["id"])["body"]
    assert "sftp" in body and "SYMPA" in body and "30 septembre 2027" in body
    # Removal may come earlier than the one-year limit, by hand.
    t = hd.act(tid, "deactivate", now="2027-01-15T10:00:00+01:00")
    assert t["state"] == "deactivated"
    assert t["deadlines"]["erasure"] == "2027-01-15T09:00:00Z"
    assert t["deadlines"]["backups-forget"] == "2027-01-25T09:00:00Z"  # "une dizaine de jours"
    assert hd.ok("sweep", now="2027-01-15T10:01:00+01:00")["taken"][0]["action"] == "erase"
    assert hd.ok("account", "show", "asso-velo")["status"] == "erased"


def test_the_clock_removes_the_data_at_the_latest_after_one_year(pic):
    hd = pic
    tid = hd.ok("sweep")["opened"][0]["ticket"]
    hd.act(tid, "confirm-non-renewal")
    assert hd.ok("sweep", now="2027-09-29T23:00:00+02:00")["taken"] == []
    taken = hd.ok("sweep", now="2027-09-30T00:00:00+02:00")["taken"]
    assert [x["action"] for x in taken] == ["deactivate", "erase"]


def test_requests_about_a_members_own_site_go_to_that_association(pic):
    hd = pic
    t = hd.open(
        "closure", "le-pic", "asso-jardin", "adherent@example.net", "reason=request", "scope=member"
    )
    tid = t["id"]
    refusal = hd.refused("ticket", "act", tid, "confirm", rule="requester_served", cite="Le PIC")
    assert "association" in refusal["message"]
    assert hd.act(tid, "redirect")["state"] == "redirected"


def test_compromised_application_interrupted_before_contact(pic):
    hd = pic
    t = hd.open("abuse", "le-pic", "asso-jardin", "", "category=harassment", as_="bob")
    hd.refused(
        "ticket",
        "act",
        t["id"],
        "interrupt",
        "--note",
        "x",
        as_="bob",
        rule="field_in",
        cite="Le PIC",
    )
    t = hd.open("abuse", "le-pic", "asso-jardin", "", "category=compromise", as_="bob")
    tid = t["id"]
    hd.refused("ticket", "act", tid, "interrupt", "--note", "x", as_="alice", rule="role")
    hd.bad("ticket", "act", tid, "interrupt", as_="bob")
    t = hd.act(tid, "interrupt", "--note", "WordPress defaced, spam script running", as_="bob")
    assert t["state"] == "interrupted"
    assert hd.ok("account", "show", "asso-jardin")["sanctions"][0]["step"] == "interruption"
    assert (
        hd.ok("account", "show", "asso-jardin")["status"] == "active"
    )  # the application, not the account
    t = hd.act(tid, "restore-application", "--note", "site restored from a clean backup", as_="bob")
    assert t["state"] == "resolved"
    assert hd.ok("account", "show", "asso-jardin")["status"] == "active"


def test_logs_are_read_by_admins_with_a_reason(pic):
    hd = pic
    t = hd.open("abuse", "le-pic", "asso-jardin", "", "category=resources", as_="bob")
    hd.refused("ticket", "act", t["id"], "read-logs", "--note", "cpu", as_="alice", rule="role")
    t = hd.act(t["id"], "read-logs", "--note", "which script eats the CPU", as_="chloe")
    assert t["events"][-1]["action"] == "read-logs"


def test_removing_a_members_contact_needs_a_replacement_while_the_membership_lasts(pic):
    hd = pic
    cite = "Le PIC, politique RGPD — Adhérents ayant un site"
    contacts = hd.ok(
        "account",
        "contact",
        "asso-jardin",
        "--add",
        "bureau@jardin.example",
        "--add",
        "Tresorier@jardin.example",
    )["contacts"]
    assert contacts == ["bureau@jardin.example", "tresorier@jardin.example"]
    refusal = hd.refused(
        "account",
        "contact",
        "asso-jardin",
        "--remove",
        "bureau@jardin.example",
        rule="contact-replacement",
        cite=cite,
    )
    assert "bureau@jardin.example" in refusal["message"]
    # 'account add' again: no --contact leaves them alone; a list without one is a removal.
    hd.account(
        "asso-jardin",
        "le-pic",
        "tech@jardin.example",
        "--kind",
        "member",
        "--org",
        "Jardins partagés",
        "--field",
        "contact-technique=Anne Martin",
    )
    hd.refused(
        "account",
        "add",
        "asso-jardin",
        "--policy",
        "le-pic",
        "--email",
        "tech@jardin.example",
        "--kind",
        "member",
        "--contact",
        "tresorier@jardin.example",
        rule="contact-replacement",
        cite=cite,
    )
    hd.refused(
        "account",
        "add",
        "asso-jardin",
        "--policy",
        "le-pic",
        "--email",
        "tech@jardin.example",
        "--kind",
        "member",
        "--field",
        "contact-technique=",
        rule="contact-replacement",
        cite=cite,
    )
    assert hd.ok("account", "show", "asso-jardin")["contacts"] == contacts
    # With a replacement it goes through, by either command.
    after = hd.ok(
        "account",
        "contact",
        "asso-jardin",
        "--remove",
        "bureau@jardin.example",
        "--add",
        "secretariat@jardin.example",
    )
    assert after["contacts"] == ["tresorier@jardin.example", "secretariat@jardin.example"]
    after = hd.account(
        "asso-jardin",
        "le-pic",
        "tech@jardin.example",
        "--kind",
        "member",
        "--contact",
        "secretariat@jardin.example",
        "--contact",
        "president@jardin.example",
        "--field",
        "contact-technique=Paul Durand",
    )
    assert after["contacts"] == ["secretariat@jardin.example", "president@jardin.example"]
    assert after["contact-technique"] == "Paul Durand"
    # A membership that ended (asso-velo, 30 September) keeps no contact against its will.
    assert (
        hd.ok("account", "contact", "asso-velo", "--remove", "bureau@velo.example")["contacts"]
        == []
    )
    hd.bad("account", "contact", "asso-jardin", "--remove", "nobody@jardin.example")
