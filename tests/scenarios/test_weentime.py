"""Weentime CGU (seeds/003): only the client's administrator account is served; a lapsed
subscription restricts access and a late renewal starts the day after the previous end."""

from __future__ import annotations

import pytest

NOW = "2026-11-23T10:00:00+01:00"


@pytest.fixture
def wt(hd):
    hd.now = NOW
    hd.account(
        "admin.acme",
        "weentime",
        "rh@acme.example",
        "--kind",
        "admin",
        "--org",
        "ACME SARL",
        "--field",
        "subscription-end=2026-11-30",
        "--field",
        "country=TN",
    )
    hd.account(
        "s.benali", "weentime", "s.benali@acme.example", "--kind", "employee", "--org", "ACME SARL"
    )
    return hd


def test_employee_reset_is_redirected_to_the_clients_administrator(wt):
    hd = wt
    t = hd.open("password-reset", "weentime", "s.benali", "s.benali@acme.example")
    tid = t["id"]
    refusal = hd.refused(
        "ticket",
        "act",
        tid,
        "issue-reset-link",
        rule="requester_served",
        cite="CGU Weentime art. 15",
    )
    assert "administrateur" in refusal["message"]
    t = hd.act(tid, "redirect")
    assert t["state"] == "redirected"
    mail = hd.ok("outbox", "show", hd.ok("outbox", "list", "--ticket", tid)[0]["id"])
    assert mail["to"] == "s.benali@acme.example" and "relation contractuelle" in mail["body"]


def test_administrator_reset_is_handled_for_the_client(wt):
    hd = wt
    t = hd.open("password-reset", "weentime", "admin.acme", "rh@acme.example")
    hd.refused("ticket", "act", t["id"], "redirect", rule="requester_not_served")
    assert hd.act(t["id"], "issue-reset-link")["state"] == "reset-issued"


def test_lapsed_subscription_restricts_and_late_renewal_starts_the_next_day(wt):
    hd = wt
    assert (
        hd.ok("sweep", now="2026-11-30T23:00:00+01:00")["opened"] == []
    )  # still the last valid day
    sweep = hd.ok("sweep", now="2026-12-01T08:00:00+01:00")
    assert [(o["account"], o["reason"]) for o in sweep["opened"]] == [("admin.acme", "lapse")]
    tid = sweep["opened"][0]["ticket"]
    assert hd.ok("account", "show", "admin.acme")["status"] == "restricted"
    t = hd.show(tid)
    assert t["state"] == "restricted"
    deactivate = next(a for a in t["actions"] if a["key"] == "deactivate")
    assert deactivate["allowed"] is False and deactivate["citation"] == "CGU Weentime art. 8"
    hd.refused(
        "ticket",
        "act",
        tid,
        "deactivate",
        as_="bob",
        rule="not_in_states",
        cite="CGU Weentime art. 8",
    )
    assert hd.ok("sweep", now="2026-12-02T08:00:00+01:00")["opened"] == []

    # Paid on 10 December: the new year still starts on 1 December.
    t = hd.act(tid, "record-renewal", now="2026-12-10T09:00:00+01:00")
    assert t["state"] == "renewed"
    acc = hd.ok("account", "show", "admin.acme")
    assert acc["status"] == "active"
    assert acc["fields"]["subscription-start"] == "2026-12-01"
    assert acc["fields"]["subscription-end"] == "2027-11-30"


def test_the_country_can_never_change(wt):
    hd = wt
    refusal = hd.refused(
        "account",
        "add",
        "admin.acme",
        "--policy",
        "weentime",
        "--email",
        "rh@acme.example",
        "--kind",
        "admin",
        "--field",
        "country=FR",
        rule="immutable-field",
        cite="CGU Weentime art. 2",
    )
    assert "TN" in refusal["message"]
    assert hd.ok("account", "show", "admin.acme")["country"] == "TN"
    hd.account(
        "admin.acme", "weentime", "rh2@acme.example", "--kind", "admin", "--field", "country=TN"
    )  # the rest may change


def test_closure_request_from_the_client_and_unknown_reasons(wt):
    hd = wt
    hd.bad(
        "ticket",
        "open",
        "closure",
        "--policy",
        "weentime",
        "--account",
        "admin.acme",
        "--field",
        "reason=inactivity",
    )
    t = hd.open("closure", "weentime", "s.benali", "s.benali@acme.example", "reason=request")
    hd.refused("ticket", "act", t["id"], "confirm", rule="requester_served", cite="art. 15")
    t = hd.open(
        "closure", "weentime", "admin.acme", "rh@acme.example", "reason=request", "day=2026-12-31"
    )
    assert hd.act(t["id"], "confirm")["state"] == "scheduled"
