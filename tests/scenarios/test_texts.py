"""Issue 12, "say exactly what the texts say": each rule the packs had wrong, played through
the real CLI (in-process) with the clock moved to its edges."""

from __future__ import annotations

import csv

import pytest

NOW = "2026-11-23T10:00:00+01:00"


def mails(hd, tid):
    return [hd.ok("outbox", "show", m["id"]) for m in hd.ok("outbox", "list", "--ticket", tid)]


def at(hd, now: str, *accounts: tuple):
    """The in-process CLI at ``now``, with these accounts (``account add`` arguments)."""
    hd.now = now
    for args in accounts:
        hd.account(*args)
    return hd


# --- the sanctions ledger informs; the text decides ------------------------------------------


@pytest.fixture
def indigos(hdi):
    return at(hdi, NOW, ("camille", "indigos", "camille@example.org"))


def test_indigos_a_contact_on_another_matter_long_ago_does_not_count(indigos):
    hd = indigos
    alert = hd.open(
        "mail-reputation", "indigos", "camille", "", "signal=volume", "messages=900", as_="bob"
    )["id"]
    hd.act(alert, "contact", "--note", "900 messages in an hour: was it you?", as_="bob")
    hd.act(alert, "resolve", "--note", "a newsletter, now sent through the list server", as_="bob")

    later = "2028-11-23T10:00:00+01:00"
    tid = hd.open(
        "abuse", "indigos", "camille", "victim@example.net", "category=harassment", now=later
    )["id"]
    view = hd.show(tid, now=later, as_="bob")
    assert [(r["ticket"], r["queue"], r["step"]) for r in view["sanctions"]] == [
        (alert, "mail-reputation", "contact")
    ]
    suspend = next(a for a in view["actions"] if a["key"] == "suspend")
    assert suspend["allowed"] is False and suspend["rule"] == "prior_exchange_or_emergency"
    hd.refused(
        "ticket",
        "act",
        tid,
        "suspend",
        "--note",
        "again",
        as_="bob",
        now=later,
        rule="prior_exchange_or_emergency",
        cite="Charte Indigos art. 11",
    )
    cited = hd.ok("ticket", "show", tid, "--citations", as_="bob", now=later)["actions"]
    assert (
        "Sauf urgence ou contrainte particulière"
        in next(a for a in cited if a["key"] == "suspend")["citation_text"]
    )
    # The text decides: an exchange on this matter, then the suspension.
    hd.act(tid, "contact", "--note", "please stop writing to this person", now=later)
    assert (
        hd.act(tid, "suspend", "--note", "went on after the exchange", as_="bob", now=later)[
            "state"
        ]
        == "suspended"
    )

    # The CLI preview (ticket show) prints the ledger beside the actions.
    text = hd.ok("ticket", "show", tid, json_out=False, now=later, as_="bob").out
    assert f"#{alert} Réput. mail" in text and "contact" in text and "(ce ticket)" in text


def test_indigos_an_emergency_still_skips_the_exchange_with_a_recorded_reason(indigos):
    hd = indigos
    tid = hd.open(
        "abuse", "indigos", "camille", "cert@example.net", "category=security", "urgent=yes"
    )["id"]
    hd.refused(
        "ticket",
        "act",
        tid,
        "suspend",
        "--note",
        "scan",
        as_="alice",
        rule="role",
        cite="Charte Indigos art. 11",
    )
    refusal = hd.refused(
        "ticket", "act", tid, "suspend", as_="bob", rule="prior_exchange_or_emergency"
    )
    assert "note" in refusal["message"]  # the reason goes in the step's note
    assert (
        hd.act(tid, "suspend", "--note", "outgoing port scan, now", as_="bob")["state"]
        == "suspended"
    )


def test_a_warning_is_always_possible_on_a_new_matter(indigos):
    hd = indigos
    first = hd.open("abuse", "indigos", "camille", "a@example.net", "category=spam")["id"]
    hd.act(first, "warn", "--note", "unsolicited mail to a bought list")
    hd.act(first, "resolve", "--note", "stopped")
    second = hd.open("abuse", "indigos", "camille", "b@example.net", "category=harassment")["id"]
    t = hd.act(second, "warn", "--note", "insults on a shared calendar")
    assert t["state"] == "warned"
    assert [r["step"] for r in t["sanctions"]] == ["warning", "warning"]


@pytest.fixture
def cp(hdi):
    return at(
        hdi,
        "2026-06-15T10:00:00+02:00",
        (
            "cpas-namur",
            "communesplone",
            "informatique@cpas-namur.example",
            "--kind",
            "member",
            "--org",
            "CPAS de Namur",
            "--contact",
            "secretariat@cpas-namur.example",
            "--field",
            "signature-date=2025-06-10",
        ),
    )


def test_communesplone_a_grave_matter_may_go_to_suspension_or_the_authorities_at_once(cp):
    hd = cp
    minor = hd.open(
        "abuse", "communesplone", "cpas-namur", "cert@example.be", "category=resources"
    )["id"]
    refusal = hd.refused(
        "ticket",
        "act",
        minor,
        "suspend",
        "--note",
        "x",
        as_="bob",
        rule="prior_step_or_grave",
        cite="Convention CommunesPlone art. 6.11",
    )
    assert "grave" in refusal["message"]
    hd.refused(
        "ticket",
        "act",
        minor,
        "report-authorities",
        "--note",
        "x",
        as_="bob",
        rule="prior_step_or_grave",
    )
    assert hd.act(minor, "warn", "--note", "ZMI shared with a contractor")["state"] == "warned"

    grave = hd.open(
        "abuse", "communesplone", "cpas-namur", "police@example.be", "category=illegal", "grave=yes"
    )["id"]
    hd.refused(
        "ticket", "act", grave, "report-authorities", "--note", "x", as_="alice", rule="role"
    )
    refusal = hd.refused(
        "ticket", "act", grave, "report-authorities", as_="bob", rule="prior_step_or_grave"
    )
    assert "note" in refusal["message"]  # the reason goes in the step's note
    t = hd.act(
        grave,
        "report-authorities",
        "--note",
        "gravity: child abuse material on the site",
        as_="bob",
    )
    assert t["state"] == "reported"

    other = hd.open(
        "abuse", "communesplone", "cpas-namur", "cert@example.be", "category=security", "grave=yes"
    )["id"]
    assert (
        hd.act(other, "suspend", "--note", "gravity: the access attacks other members", as_="bob")[
            "state"
        ]
        == "suspended"
    )
    steps = [r["step"] for r in hd.ok("account", "show", "cpas-namur")["sanctions"]]
    assert steps == ["warning", "authorities", "suspension"]


# --- each provider gets only the sanctions its text gives ------------------------------------


@pytest.fixture
def pic(hdi):
    return at(
        hdi,
        NOW,
        (
            "asso-jardin",
            "le-pic",
            "tech@jardin.example",
            "--kind",
            "member",
            "--org",
            "Jardins partagés",
            "--contact",
            "bureau@jardin.example",
            "--field",
            "membership-end=2027-09-30",
        ),
    )


def test_le_pic_has_no_warning_suspension_or_closure_of_a_member(pic):
    hd = pic
    tid = hd.open("abuse", "le-pic", "asso-jardin", "", "category=compromise", as_="bob")["id"]
    keys = {a["key"] for a in hd.show(tid)["actions"]}
    assert {"contact", "interrupt", "read-logs", "resolve"} <= keys
    assert not keys & {"warn", "suspend", "close-account", "reinstate"}
    for action in ("warn", "suspend", "close-account"):
        hd.bad("ticket", "act", tid, action, "--note", "x", as_="bob")
    t = hd.act(tid, "interrupt", "--note", "WordPress defaced, spam script running", as_="bob")
    assert (
        t["state"] == "interrupted" and t["account_status"] == "active"
    )  # the application, not the account
    notice = mails(hd, tid)[-1]
    assert notice["to"] == "tech@jardin.example" and "interrompue" in notice["body"]

    alert = hd.open(
        "mail-reputation", "le-pic", "asso-jardin", "", "signal=volume", "messages=900", as_="bob"
    )["id"]
    keys = {a["key"] for a in hd.show(alert)["actions"]}
    assert not keys & {"suspend-sending", "suspend", "lift", "reinstate"}
    hd.refused(
        "ticket",
        "act",
        alert,
        "interrupt",
        "--note",
        "x",
        as_="bob",
        rule="field_true",
        cite="Le PIC",
    )
    t = hd.act(
        alert,
        "interrupt",
        "--field",
        "compromised=yes",
        "--note",
        "contact form abused by a bot",
        as_="bob",
    )
    assert t["state"] == "interrupted"


def test_le_pic_abuse_about_a_members_site_goes_to_that_association(pic):
    hd = pic
    tid = hd.open(
        "abuse",
        "le-pic",
        "asso-jardin",
        "lecteur@example.net",
        "category=harassment",
        "scope=member",
    )["id"]
    refusal = hd.refused(
        "ticket", "act", tid, "contact", "--note", "x", rule="requester_served", cite="Le PIC"
    )
    assert "association" in refusal["message"]
    t = hd.act(tid, "redirect")
    assert t["state"] == "redirected"
    assert mails(hd, tid)[-1]["to"] == "lecteur@example.net"
    own = hd.open(
        "abuse",
        "le-pic",
        "asso-jardin",
        "lecteur@example.net",
        "category=harassment",
        "scope=provider",
    )["id"]
    hd.refused("ticket", "act", own, "redirect", rule="requester_not_served")


def test_indigos_mail_ladder_emergencies_and_the_three_grounds_of_art_7(indigos):
    hd = indigos
    tid = hd.open(
        "mail-reputation",
        "indigos",
        "camille",
        "",
        "signal=complaint",
        "complaints=40",
        "urgent=yes",
        as_="bob",
    )["id"]
    until = "--field", "until=2026-11-25T10:00:00+01:00"
    hd.refused(
        "ticket",
        "act",
        tid,
        "suspend-sending",
        *until,
        "--note",
        "x",
        as_="alice",
        rule="role",
        cite="Charte Indigos art. 7",
    )
    refusal = hd.refused(
        "ticket",
        "act",
        tid,
        "suspend-sending",
        *until,
        as_="bob",
        rule="prior_exchange_or_compromise",
    )
    assert "note" in refusal["message"]  # the reason goes in the step's note
    t = hd.act(
        tid,
        "suspend-sending",
        *until,
        "--note",
        "40 complaints in an hour, still sending",
        as_="bob",
    )
    assert t["state"] == "send-suspended"

    calm = hd.open(
        "mail-reputation", "indigos", "camille", "", "signal=bounces", "messages=100", as_="bob"
    )["id"]
    refusal = hd.refused(
        "ticket",
        "act",
        calm,
        "suspend-sending",
        *until,
        "--note",
        "x",
        as_="bob",
        rule="prior_exchange_or_compromise",
        cite="Charte Indigos art. 7",
    )
    assert (
        "Cela peut aller d'un simple échange de prévention à une suspension temporaire d'envoi"
        in refusal["message"]
    )
    refusal = hd.refused(
        "ticket",
        "act",
        calm,
        "suspend",
        "--note",
        "x",
        as_="bob",
        rule="suspension_grounds",
        cite="Charte Indigos art. 7",
    )
    assert (
        "voire à une suspension du compte en cas de risque grave, d'abus manifeste ou de compromission"
        in refusal["message"]
    )
    hd.bad("ticket", "act", calm, "suspend", "--field", "ground=boredom", "--note", "x", as_="bob")
    t = hd.act(
        calm,
        "suspend",
        "--field",
        "ground=grave-risk",
        "--note",
        "relay used by a botnet",
        as_="bob",
    )
    assert t["state"] == "suspended" and t["fields"]["ground"] == "grave-risk"


# --- dates ----------------------------------------------------------------------------------------


def test_weentime_a_renewal_from_1_march_runs_to_29_february(hdi):
    hd = hdi
    hd.now = "2027-03-02T09:00:00+01:00"
    hd.account(
        "admin.acme",
        "weentime",
        "rh@acme.example",
        "--kind",
        "admin",
        "--org",
        "ACME SARL",
        "--field",
        "subscription-end=2027-02-28",
        "--field",
        "country=TN",
    )
    tid = hd.ok("sweep")["opened"][0]["ticket"]
    hd.act(tid, "record-renewal")
    acc = hd.ok("account", "show", "admin.acme")
    assert (acc["fields"]["subscription-start"], acc["fields"]["subscription-end"]) == (
        "2027-03-01",
        "2028-02-29",
    )
    assert hd.ok("sweep", now="2028-02-29T23:59:00+01:00")["opened"] == []  # a paid day
    assert hd.ok("account", "show", "admin.acme")["status"] == "active"
    assert [o["account"] for o in hd.ok("sweep", now="2028-03-01T00:00:00+01:00")["opened"]] == [
        "admin.acme"
    ]
    assert hd.ok("account", "show", "admin.acme")["status"] == "restricted"


def test_wigii_more_than_a_year_after_a_leap_day_guard_and_sweep_agree(hdi):
    hd = hdi
    hd.now = "2025-02-28T23:59:00+01:00"
    hd.account("bissextile", "wigii", "b@example.org", "--last-login", "2024-02-29T10:00:00+01:00")
    tid = hd.open("closure", "wigii", "bissextile", "", "reason=inactivity", as_="bob")["id"]
    refusal = hd.refused(
        "ticket", "act", tid, "deactivate", as_="bob", rule="inactive_for", cite="Wigii CGU art. 9"
    )
    assert "2025-03-01" in refusal["message"]
    assert hd.ok("sweep")["opened"] == []
    hd.act(tid, "cancel", "--note", "opened by hand too early")
    at = "2025-03-01T00:00:00+01:00"
    opened = hd.ok("sweep", now=at)["opened"]
    assert [o["account"] for o in opened] == ["bissextile"]
    assert hd.act(opened[0]["ticket"], "deactivate", as_="bob", now=at)["state"] == "deactivated"


def test_le_pic_the_clock_removes_the_data_after_a_year_even_when_nobody_acts(pic):
    hd = pic
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
    tid = hd.ok("sweep")["opened"][0]["ticket"]
    view = hd.show(tid)
    assert view["state"] == "non-renewal"
    removal = next(d for d in view["deadline_details"] if d["name"] == "data-removal")
    assert (
        removal["binding"] is True
        and removal["action"] == "expire"
        and removal["at"] == "2027-09-29T22:00:00Z"
    )
    respond = next(d for d in view["deadline_details"] if d["name"] == "respond-by")
    assert respond["indicative"] is True and respond["binding"] is False
    row = next(r for r in hd.ok("ticket", "list") if r["id"] == tid)
    assert (row["binding"], row["binding_at"]) == ("data-removal", "2027-09-29T22:00:00Z")
    text = hd.ok("ticket", "show", tid, json_out=False).out
    assert "CONTRAIGNANTE" in text and "indicative" in text
    # The dashboard shows it apart from the indicative targets: UTC and keys for scripts,
    # the provider's zone and labels for a person; a role scoped elsewhere does not see it.
    board = hd.ok("dashboard")
    assert board["queues"]["closure"]["binding"] == 1
    assert [(b["ticket"], b["policy"], b["name"], b["at"]) for b in board["binding"]] == [
        (tid, "le-pic", "data-removal", "2027-09-29T22:00:00Z")
    ]
    text = hd.ok("dashboard", json_out=False).out
    assert "2027-09-30 00:00 Europe/Paris" in text and "Suppression des données" in text
    assert "data-removal" not in text and "22:00" not in text
    hd.ok("volunteer", "add", "wanda", "--role", "volunteer", "--policy", "wigii")
    scoped = hd.ok("dashboard", as_="wanda")
    assert scoped["binding"] == [] and scoped["queues"]["closure"]["binding"] == 0
    assert hd.run("dashboard", "--limit", "0").code == 2

    assert hd.ok("sweep", now="2027-09-29T23:59:00+02:00")["taken"] == []
    taken = hd.ok("sweep", now="2027-09-30T00:00:00+02:00")["taken"]
    assert [(x["action"], x["state"]) for x in taken] == [
        ("expire", "deactivated"),
        ("erase", "erased"),
    ]
    assert hd.ok("account", "show", "asso-velo", "--reason", "check")["status"] == "erased"


def test_communesplone_the_convention_ends_at_48_months_even_when_nobody_acts(cp):
    hd = cp
    # Signed 2025-06-10: runs from 2025-07-01, 48 months at most: ends 2029-07-01 (Brussels).
    opened = hd.ok("sweep", now="2029-06-01T10:00:00+02:00")["opened"]
    assert [o["account"] for o in opened] == ["cpas-namur"]
    tid = opened[0]["ticket"]
    view = hd.show(tid, now="2029-06-01T10:00:00+02:00")
    end = next(d for d in view["deadline_details"] if d["name"] == "contract-max-end")
    assert end["binding"] is True and end["at"] == "2029-06-30T22:00:00Z"
    assert hd.ok("sweep", now="2029-06-30T23:59:00+02:00")["taken"] == []
    taken = hd.ok("sweep", now="2029-07-01T00:00:00+02:00")["taken"]
    assert taken[0] == {"ticket": tid, "action": "expire", "state": "deactivated"}
    assert hd.ok("account", "show", "cpas-namur", "--reason", "check")["status"] == "deactivated"


def test_an_account_closed_by_an_abuse_ticket_is_erased_like_a_closure(indigos):
    hd = indigos
    tid = hd.open("abuse", "indigos", "camille", "a@example.net", "category=illegal")["id"]
    hd.act(tid, "contact", "--note", "illegal files shared")
    hd.act(tid, "suspend", "--note", "no answer, files still shared", as_="bob")
    t = hd.act(tid, "close-account", "--note", "relapse after suspension", as_="bob")
    assert t["state"] == "account-closed"
    # Indigos closure: erasure a month later, backups forget 30 days after that.
    assert t["deadlines"]["erasure"] == "2026-12-23T09:00:00Z"
    assert t["deadlines"]["backups-forget"] == "2027-01-22T09:00:00Z"
    assert "23 décembre 2026" in mails(hd, tid)[-1]["body"]
    assert hd.ok("sweep", now="2026-12-23T09:59:00+01:00")["taken"] == []
    taken = hd.ok("sweep", now="2026-12-23T10:00:00+01:00")["taken"]
    assert taken == [{"ticket": tid, "action": "erase", "state": "erased"}]
    assert hd.ok("account", "show", "camille", "--reason", "check")["status"] == "erased"


# --- rules that were missing ----------------------------------------------------------------------


def test_le_pic_no_path_removes_a_members_last_contacts(pic, tmp_path):
    hd = pic
    cite = "Le PIC, politique RGPD — Adhérents ayant un site"
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
        "",
        rule="contact-replacement",
        cite=cite,
    )
    hd.refused(
        "account",
        "contact",
        "asso-jardin",
        "--remove",
        "bureau@jardin.example",
        rule="contact-replacement",
        cite=cite,
    )
    path = tmp_path / "accounts.csv"
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["login", "policy", "email", "kind", "contacts"])
        w.writerow(["asso-jardin", "le-pic", "tech@jardin.example", "member", ""])
    r = hd.run("account", "import", str(path), as_="alice")
    assert r.code == 2 and "asso-jardin" in r.json["errors"][0]["error"]
    assert hd.ok("account", "show", "asso-jardin")["contacts"] == ["bureau@jardin.example"]


def test_weentime_one_administrator_account_per_client(hdi):
    hd = hdi
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
        "country=TN",
    )
    refusal = hd.refused(
        "account",
        "add",
        "admin2.acme",
        "--policy",
        "weentime",
        "--email",
        "dg@acme.example",
        "--kind",
        "admin",
        "--org",
        "ACME SARL",
        rule="one-admin-per-client",
        cite="CGU Weentime art. 3",
    )
    assert "admin.acme" in refusal["message"]
    hd.account(
        "admin.other",
        "weentime",
        "rh@other.example",
        "--kind",
        "admin",
        "--org",
        "Other SA",
        "--field",
        "country=TN",
    )
    hd.account(
        "admin.acme", "weentime", "rh2@acme.example", "--kind", "admin", "--org", "ACME SARL"
    )  # the same one, updated


def test_wigii_logs_need_a_purpose_and_the_acknowledgement_its_source(hdi):
    hd = hdi
    hd.now = "2026-11-23T09:00:00+01:00"
    hd.account(
        "jdupont", "wigii", "jean.dupont@example.org", "--last-login", "2026-10-01T10:00:00Z"
    )
    tid = hd.open("abuse", "wigii", "jdupont", "victim@example.net", "category=harassment")["id"]
    hd.refused(
        "ticket",
        "act",
        tid,
        "read-logs",
        "--note",
        "x",
        as_="bob",
        rule="role",
        cite="Wigii CGU art. 5",
    )
    cited = hd.ok("ticket", "show", tid, "--citations", as_="bob")["actions"]
    assert (
        "disponible uniquement aux administrateurs techniques"
        in next(a for a in cited if a["key"] == "read-logs")["citation_text"]
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
    t = hd.act(
        tid,
        "read-logs",
        "--field",
        "purpose=judicial-order",
        "--note",
        "order of the Geneva prosecutor",
        as_="chloe",
    )
    assert t["events"][-1]["action"] == "read-logs"

    c = hd.open(
        "closure",
        "wigii",
        "jdupont",
        "jean.dupont@example.org",
        "reason=request",
        "system=https://relation.wigii.org",
        "day=2026-12-15",
    )["id"]
    hd.bad("ticket", "act", c, "acknowledge")  # no one-key acknowledgement
    assert (
        hd.act(
            c, "acknowledge", "--note", "acknowledged by phone, called back on the known number"
        )["state"]
        == "scheduled"
    )


# --- citations and mails ---------------------------------------------------------------------------


def test_indigos_the_requested_day_is_shown_and_blocks_nothing(indigos):
    """No article of the Indigos charte holds "not before the requested day" (art. 9 is about
    backups): the day is shown, on the ticket and as its timer, and never refuses a step."""
    hd = indigos
    tid = hd.open(
        "closure", "indigos", "camille", "camille@example.org", "reason=request", "day=2026-12-01"
    )["id"]
    hd.act(tid, "confirm")
    early = "2026-11-30T23:59:00+01:00"
    view = hd.show(tid, now=early)
    assert view["fields"]["day"] == "2026-12-01"
    deactivate = hd.action(tid, "deactivate")
    assert deactivate["allowed"] is True, deactivate
    assert hd.act(tid, "deactivate", now=early)["state"] == "deactivated"


def test_unshared_data_wording_only_in_wigii_mails(indigos):
    hd = indigos
    tid = hd.open(
        "closure", "indigos", "camille", "camille@example.org", "reason=request", "day=2026-12-01"
    )["id"]
    hd.act(tid, "confirm")
    hd.ok("sweep", now="2026-12-01T00:00:00+01:00")
    body = mails(hd, tid)[-1]["body"]
    assert "effacées" in body and "non partagées" not in body

    hd.account("jdupont", "wigii", "jean.dupont@example.org")
    w = hd.open(
        "closure",
        "wigii",
        "jdupont",
        "jean.dupont@example.org",
        "reason=request",
        "system=https://relation.wigii.org",
        "day=2026-12-15",
    )["id"]
    hd.act(w, "acknowledge", "--note", "reply mail of 23 November")
    hd.ok("sweep", now="2026-12-15T00:00:00+01:00")
    assert "non partagées" in mails(hd, w)[-1]["body"]
