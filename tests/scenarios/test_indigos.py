"""Indigos Cloud (charte, seeds/001): exchange before sanctions, the mail ladder, compromise."""

from __future__ import annotations

import pytest

NOW = "2026-11-23T10:00:00+01:00"


@pytest.fixture
def indigos(hd):
    hd.now = NOW
    hd.account("camille", "indigos", "camille@example.org")
    return hd


def test_abuse_needs_an_exchange_first_except_in_an_emergency(indigos):
    hd = indigos
    t = hd.open("abuse", "indigos", "camille", "plainte@example.net", "category=harassment")
    tid = t["id"]
    refusal = hd.refused(
        "ticket",
        "act",
        tid,
        "suspend",
        "--note",
        "harassment",
        as_="bob",
        rule="prior_exchange_or_emergency",
        cite="Charte Indigos art. 11",
    )
    assert "régularisation" in refusal["message"] or "regularisation" in refusal["message"]
    t = hd.act(tid, "contact", "--note", "asked to stop and remove the messages")
    assert t["state"] == "contacted"
    assert hd.ok("outbox", "list", "--ticket", tid)[-1]["template"] == "abuse-contact"
    t = hd.act(tid, "suspend", "--note", "went on after the exchange", as_="bob")
    assert t["state"] == "suspended"
    assert hd.ok("account", "show", "camille")["status"] == "suspended"


def test_emergency_path_needs_oncall_and_a_recorded_reason(indigos):
    hd = indigos
    t = hd.open(
        "abuse", "indigos", "camille", "cert@example.net", "category=security", "urgent=yes"
    )
    tid = t["id"]
    hd.refused(
        "ticket", "act", tid, "suspend", "--note", "scan in progress", as_="alice", rule="role"
    )
    refusal = hd.refused(
        "ticket", "act", tid, "suspend", as_="bob", rule="prior_exchange_or_emergency"
    )
    assert "note" in refusal["message"]  # an emergency needs its reason recorded
    t = hd.act(tid, "suspend", "--note", "outgoing port scan from the account, now", as_="bob")
    assert t["state"] == "suspended"
    ledger = hd.ok("account", "show", "camille")["sanctions"]
    assert [r["step"] for r in ledger] == ["suspension"]
    assert ledger[0]["note"] == "outgoing port scan from the account, now"


def test_the_ledger_informs_but_each_matter_needs_its_own_exchange(indigos):
    """Indigos art. 11: an exchange on each new matter before a suspension; an old contact
    on another ticket does not count, and an old warning does not refuse a new one."""
    hd = indigos
    first = hd.open("abuse", "indigos", "camille", "a@example.net", "category=illicit-content")[
        "id"
    ]
    hd.act(first, "warn", "--note", "illicit files shared publicly")
    hd.act(first, "resolve", "--note", "files removed")
    alert = hd.open(
        "mail-reputation", "indigos", "camille", "", "signal=volume", "messages=900", as_="bob"
    )["id"]
    hd.act(alert, "contact", "--note", "900 messages in an hour: was it you?", as_="bob")

    # Two years later, a new, unrelated matter.
    later = "2028-11-23T10:00:00+01:00"
    third = hd.open(
        "abuse", "indigos", "camille", "b@example.net", "category=harassment", now=later
    )["id"]
    view = hd.show(third, now=later)
    assert [r["step"] for r in view["sanctions"]] == [
        "warning",
        "contact",
    ]  # shown where the decision is taken
    assert {r["queue"] for r in view["sanctions"]} == {"abuse", "mail-reputation"}
    hd.refused(
        "ticket",
        "act",
        third,
        "suspend",
        "--note",
        "again",
        as_="bob",
        now=later,
        rule="prior_exchange_or_emergency",
        cite="Charte Indigos art. 11",
    )
    t = hd.act(
        third, "warn", "--note", "messages reported as harassment", now=later
    )  # a warning is always possible
    assert t["state"] == "warned"
    t = hd.act(third, "suspend", "--note", "went on after the warning", as_="bob", now=later)
    assert t["state"] == "suspended"
    steps = [r["step"] for r in hd.ok("account", "show", "camille")["sanctions"]]
    assert steps == ["warning", "contact", "warning", "suspension"]


def test_mail_ladder_contact_then_temporary_send_suspension_then_account(indigos):
    hd = indigos
    t = hd.open(
        "mail-reputation",
        "indigos",
        "camille",
        "",
        "signal=bounces",
        "messages=120",
        "bounces=80",
        "bounce-ratio=0.66",
        as_="bob",
    )
    tid = t["id"]
    assert t["fields"]["bounce-ratio"] == 0.66
    hd.refused(
        "ticket",
        "act",
        tid,
        "suspend-sending",
        "--field",
        "until=2026-11-25",
        "--note",
        "x",
        as_="bob",
        rule="prior_exchange_or_compromise",
        cite="Charte Indigos art. 7",
    )
    refusal = hd.refused(
        "ticket",
        "act",
        tid,
        "suspend",
        "--note",
        "x",
        as_="bob",
        rule="suspension_grounds",
        cite="Charte Indigos art. 7",
    )
    assert "en cas de risque grave, d'abus manifeste ou de compromission" in refusal["message"]
    hd.act(tid, "contact", "--note", "your list has many dead addresses", as_="bob")
    hd.bad("ticket", "act", tid, "suspend-sending", "--note", "x", as_="bob")  # needs until
    hd.refused(
        "ticket",
        "act",
        tid,
        "suspend-sending",
        "--field",
        "until=2026-11-01",
        "--note",
        "x",
        as_="bob",
        rule="field_in_future",
    )
    t = hd.act(
        tid,
        "suspend-sending",
        "--field",
        "until=2026-11-26T10:00:00+01:00",
        "--note",
        "bounces go on",
        as_="bob",
    )
    assert t["state"] == "send-suspended"
    assert t["deadlines"]["sending-resumes"] == "2026-11-26T09:00:00Z"
    assert hd.ok("account", "show", "camille")["status"] == "send-suspended"
    notice = hd.ok("outbox", "show", hd.ok("outbox", "list", "--ticket", tid)[-1]["id"])
    assert "26 novembre 2026" in notice["body"]

    # The clock lifts the suspension at its end date.
    assert hd.ok("sweep", now="2026-11-26T09:30:00+01:00")["taken"] == []
    sweep = hd.ok("sweep", now="2026-11-26T10:00:00+01:00")
    assert sweep["taken"] == [{"ticket": tid, "action": "lift", "state": "contacted"}]
    assert hd.ok("account", "show", "camille")["status"] == "active"

    # A later relapse: the account suspension is now open (after a temporary suspension).
    t = hd.act(
        tid,
        "suspend",
        "--field",
        "ground=manifest-abuse",
        "--note",
        "sending again to dead lists",
        as_="bob",
        now="2026-11-28T10:00:00+01:00",
    )
    assert t["state"] == "suspended"
    assert hd.ok("account", "show", "camille")["status"] == "suspended"


def test_compromised_account_goes_straight_to_suspension(indigos):
    hd = indigos
    t = hd.open(
        "mail-reputation",
        "indigos",
        "camille",
        "",
        "signal=complaint",
        "complaints=40",
        "compromised=yes",
        as_="bob",
    )
    t = hd.act(t["id"], "suspend", "--note", "password leaked, spam run", as_="bob")
    assert t["state"] == "suspended"


def test_alerts_hold_metadata_only(indigos):
    hd = indigos
    r = hd.bad(
        "ticket",
        "open",
        "mail-reputation",
        "--policy",
        "indigos",
        "--account",
        "camille",
        "--field",
        "body=Buy now",
        as_="bob",
    )
    assert "body" in r.err and ("métadonnées" in r.err or "metadata" in r.err)
    hd.bad(
        "ticket",
        "open",
        "mail-reputation",
        "--policy",
        "indigos",
        "--account",
        "camille",
        "--field",
        "messages=lots",
        as_="bob",
    )


def test_suspicious_access_opens_a_linked_compromise_ticket(indigos):
    hd = indigos
    t = hd.open("password-reset", "indigos", "camille", "camille@example.org", "suspicious=yes")
    assert len(t["children"]) == 1
    child = hd.show(t["children"][0])
    assert child["queue"] == "abuse" and child["parent"] == t["id"]
    assert child["fields"]["category"] == "compromise" and child["fields"]["urgent"] is True
    # The reset itself goes on as usual.
    assert hd.act(t["id"], "issue-reset-link")["state"] == "reset-issued"


def test_closure_request_confirmed_then_on_its_day(indigos):
    hd = indigos
    t = hd.open(
        "closure", "indigos", "camille", "camille@example.org", "reason=request", "day=2026-12-01"
    )
    tid = t["id"]
    assert t["state"] == "received"
    hd.refused("ticket", "act", tid, "deactivate", rule="not_in_states")
    t = hd.act(tid, "confirm")
    assert t["state"] == "scheduled"
    body = hd.ok("outbox", "show", hd.ok("outbox", "list", "--ticket", tid)[-1]["id"])["body"]
    assert "export" in body
    # No article of the charte holds "not before the requested day": shown, not a block.
    assert hd.action(tid, "deactivate")["allowed"] is True
    assert hd.ok("sweep", now="2026-12-01T00:00:00+01:00")["taken"][0]["state"] == "deactivated"
    assert hd.show(tid)["deadlines"]["backups-forget"] == "2027-01-30T23:00:00Z"


def test_unknown_ticket_bad_date_and_missing_field_are_bad_input(indigos):
    hd = indigos
    hd.bad("ticket", "show", "999")
    hd.bad("ticket", "act", "999", "contact", "--note", "x")
    hd.bad(
        "ticket",
        "open",
        "closure",
        "--policy",
        "indigos",
        "--account",
        "camille",
        "--field",
        "day=2026-12-01",
    )  # no reason
    hd.bad(
        "ticket",
        "open",
        "closure",
        "--policy",
        "indigos",
        "--account",
        "camille",
        "--field",
        "reason=request",
        "--field",
        "day=31/12/2026",
    )
    hd.bad("ticket", "list", now="yesterday")
    hd.bad(
        "ticket",
        "open",
        "closure",
        "--policy",
        "nope",
        "--account",
        "camille",
        "--field",
        "reason=request",
    )
    t = hd.open("abuse", "indigos", "camille", "", "category=spam")
    hd.bad("ticket", "act", t["id"], "fly-to-the-moon")
