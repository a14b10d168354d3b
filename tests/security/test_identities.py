"""Identities and roles, replayed as the attacks that found the holes (issue 13)."""

from __future__ import annotations

import pytest
from sqlmodel import select

from helpdesk.storage import db
from helpdesk.storage.models import Account, Volunteer

EVIL_URL = "reset_url=https://evil.example/reset?token="


# --- no login is above the rules --------------------------------------------------------


@pytest.mark.parametrize("name", ["system", "intake", "SYSTEM"])
def test_the_cores_own_names_cannot_act(attacker, name):
    # Found: 'helpdesk --as system policy set indigos reset_url=...' succeeded.
    attacker.refused("policy", "set", "indigos", EVIL_URL, as_=name, rule="reserved-login")
    attacker.refused("ticket", "list", env={"HELPDESK_USER": name}, rule="reserved-login")
    assert not attacker.events("policy-settings")


@pytest.mark.parametrize("name", ["system", "intake"])
def test_the_cores_own_names_cannot_be_registered(attacker, name):
    # Found: a volunteer registered as 'system' got every right over SSH.
    attacker.refused(
        "volunteer", "add", name, "--role", "volunteer", as_="chloe", rule="reserved-login"
    )
    with db.read_session(attacker.url) as s:
        assert s.get(Volunteer, name) is None


@pytest.mark.parametrize(
    "login",
    ["", " ", "a b", "x\nssh-ed25519 AAAA", "-rf", "a\x1b[31m", "é" * 3, "a" * 65, "a\udcff"],
)
def test_logins_are_validated(attacker, login):
    attacker.bad("volunteer", "add", login, "--role", "volunteer", as_="chloe")
    attacker.bad("ticket", "list", as_=login) if login else None


def test_authorized_keys_cannot_be_made_to_emit_an_extra_line(attacker):
    from helpdesk.service import sshkeys

    key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFauJdVsDgCCqV6858Decxhv6iRJOR/qlP9fijLcPVre"
    attacker.ok("volunteer", "add", "dora", "--role", "volunteer", "--ssh-key", key, as_="chloe")
    with db.write_session(attacker.url) as s:  # rows written behind the CLI's back
        s.add(
            Volunteer(
                login="evil\nssh-rsa AAAAB3 attacker",
                role="techadmin",
                ssh_keys=[key.replace("AAAAC3", "AAAAC4")],
                active=True,
                created_at=sshkeys and __import__("helpdesk.base.clock", fromlist=["now"]).now(),
            )
        )
        s.get(Volunteer, "alice").ssh_keys = ['ssh-ed25519 AAAA\ncommand="sh" ssh-ed25519 AAAA']
    r = attacker.run(
        "volunteer", "authorized-keys", "--program", "/usr/bin/helpdesk", json_out=False
    )
    assert r.code == 0, r.err
    lines = r.out.splitlines()
    assert len(lines) == 1 and lines[0].endswith("helpdesk:dora"), lines


# --- every change to accounts, volunteers and settings is role-checked and audited -------


def test_account_changes_need_an_identity_and_leave_a_trace(attacker):
    # Found: 'account add ... --status erased' (or active) by anyone left no trace.
    attacker.bad("account", "add", "jd", "--policy", "wigii", "--email", "jd@example.org")
    attacker.ok(
        "account", "add", "jd", "--policy", "wigii", "--email", "jd@example.org", as_="alice"
    )
    added = attacker.events("account-add")[-1]
    assert (
        added.actor == "alice"
        and added.data["before"] is None
        and added.data["after"]["status"] == "active"
    )

    for status in ("erased", "active", "suspended"):
        attacker.refused(
            "account",
            "add",
            "jd",
            "--policy",
            "wigii",
            "--email",
            "jd@example.org",
            "--status",
            status,
            as_="bob",
            rule="role",
        ) if status != "active" else attacker.ok(
            "account",
            "add",
            "jd",
            "--policy",
            "wigii",
            "--email",
            "jd@example.org",
            "--status",
            status,
            as_="bob",
        )
    attacker.ok(
        "account",
        "add",
        "jd",
        "--policy",
        "wigii",
        "--email",
        "jd@example.org",
        "--status",
        "suspended",
        as_="chloe",
    )
    changed = attacker.events("account-update")[-1]
    assert (
        changed.actor == "chloe"
        and changed.data["before"] == {"status": "active"}
        and changed.data["after"] == {"status": "suspended"}
    )
    # Re-adding without --status keeps the status: a status changes through a procedure.
    attacker.ok(
        "account", "add", "jd", "--policy", "wigii", "--email", "jd@example.org", as_="alice"
    )
    with db.read_session(attacker.url) as s:
        assert s.exec(select(Account.status).where(Account.login == "jd")).one() == "suspended"
    # A new account loaded as erased is a techadmin's act too.
    attacker.refused(
        "account",
        "add",
        "old",
        "--policy",
        "wigii",
        "--email",
        "o@example.org",
        "--status",
        "erased",
        as_="alice",
        rule="role",
    )


def test_a_contact_added_for_a_reset_is_on_the_record(attacker):
    # Found: adding an attacker's address as a contact (then a reset to it) left no trace.
    attacker.ok(
        "account", "add", "asso", "--policy", "indigos", "--email", "it@asso.example", as_="alice"
    )
    attacker.bad("account", "contact", "asso", "--add", "mallory@evil.example")
    attacker.ok("account", "contact", "asso", "--add", "mallory@evil.example", as_="bob")
    ev = attacker.events("account-contacts")[-1]
    assert ev.actor == "bob"
    assert ev.data["before"] == {"contacts": []} and ev.data["after"] == {
        "contacts": ["mallory@evil.example"]
    }
    assert attacker.ok("audit", "verify")["ok"] is True


def test_an_import_is_checked_and_recorded_row_by_row(attacker, tmp_path):
    csv = tmp_path / "accounts.csv"
    csv.write_text(
        "login,policy,email,status\nu1,wigii,u1@example.org,\nu2,wigii,u2@example.org,erased\n"
    )
    attacker.bad("account", "import", csv)
    r = attacker.ok("account", "import", csv, as_="alice")
    assert (
        r["imported"] == 1 and "admin technique" in r["errors"][0]["error"]
    )  # the role, by its French label
    assert [e.data["login"] for e in attacker.events("account-add")] == ["u1"]
    assert attacker.events("account-import")[-1].actor == "alice"


@pytest.mark.parametrize("as_", ["alice", "bob", "tom"])
def test_volunteers_settings_and_restore_are_a_techadmins(attacker, as_, tmp_path):
    attacker.refused("volunteer", "add", "mallory", "--role", "techadmin", as_=as_)
    attacker.refused(
        "volunteer", "add", as_, "--role", "techadmin", as_=as_
    )  # no raise of one's own role
    attacker.refused("volunteer", "deactivate", "chloe", as_=as_)
    attacker.refused("policy", "set", "indigos", EVIL_URL, as_=as_)
    backup = tmp_path / "b.db"
    attacker.ok("backup", backup, as_="chloe")
    attacker.refused("restore", backup, "--yes", as_=as_)
    with db.read_session(attacker.url) as s:
        assert s.get(Volunteer, "mallory") is None and s.get(Volunteer, "chloe").active


def test_without_an_identity_only_the_first_techadmin_can_be_set_up(empty_db_url):
    from tests.security.conftest import Attacker

    a = Attacker(empty_db_url)
    a.ok("init")
    a.ok(
        "volunteer", "add", "alice", "--role", "volunteer"
    )  # a fresh database: the installer sets it up
    a.ok("volunteer", "add", "root1", "--role", "techadmin")
    a.bad("volunteer", "add", "mallory", "--role", "techadmin")  # now a techadmin must say who acts
    a.ok("volunteer", "add", "bob", "--role", "oncall", as_="root1")
    assert [(e.actor, e.data["login"]) for e in a.events("volunteer-add")][-1] == ("root1", "bob")
    assert a.events("volunteer-add")[0].actor.startswith("unix:")


def test_every_change_is_before_and_after(attacker):
    attacker.ok("volunteer", "add", "alice", "--role", "oncall", as_="chloe")
    ev = attacker.events("volunteer-add")[-1]
    assert (
        ev.actor == "chloe"
        and ev.data["before"]["role"] == "volunteer"
        and ev.data["after"]["role"] == "oncall"
    )
    attacker.ok("volunteer", "deactivate", "alice", as_="chloe")
    ev = attacker.events("volunteer-withdraw")[-1]
    assert (
        ev.actor == "chloe"
        and ev.data["before"]["active"] is True
        and ev.data["after"]["active"] is False
    )
    attacker.ok(
        "policy", "set", "indigos", "reset_url=https://reset.indigos.example/?t=", as_="chloe"
    )
    assert attacker.events("policy-settings")[-1].actor == "chloe"


# --- roles scoped to providers ----------------------------------------------------------


def test_a_role_scoped_to_a_provider_stays_within_it(attacker):
    attacker.ok(
        "volunteer", "add", "wanda", "--role", "techadmin", "--policy", "wigii", as_="chloe"
    )
    assert attacker.ok("volunteer", "list", as_="chloe")[-1]["policies"] == ["wigii"]
    attacker.ok(
        "account", "add", "w1", "--policy", "wigii", "--email", "w1@example.org", as_="alice"
    )
    attacker.ok(
        "account", "add", "p1", "--policy", "le-pic", "--email", "p1@example.org", as_="alice"
    )
    tw = attacker.ok(
        "ticket",
        "open",
        "abuse",
        "--policy",
        "wigii",
        "--account",
        "w1",
        "--field",
        "category=spam",
        as_="bob",
    )["id"]
    tp = attacker.ok(
        "ticket",
        "open",
        "abuse",
        "--policy",
        "le-pic",
        "--account",
        "p1",
        "--field",
        "category=harassment",
        as_="bob",
    )["id"]

    # A Wigii techadmin does not read Le PIC's logs, tickets or accounts...
    attacker.refused(
        "ticket", "act", tp, "read-logs", "--note", "curious", as_="wanda", rule="scope"
    )
    attacker.refused("ticket", "show", tp, as_="wanda", rule="scope")
    assert [t["id"] for t in attacker.ok("ticket", "list", as_="wanda")] == [tw]
    attacker.refused("ticket", "list", "--policy", "le-pic", as_="wanda", rule="scope")
    attacker.refused("account", "show", "p1", as_="wanda", rule="scope")
    assert {a["login"] for a in attacker.ok("account", "list", as_="wanda")} == {"w1"}
    attacker.refused(
        "account",
        "add",
        "p2",
        "--policy",
        "le-pic",
        "--email",
        "p2@example.org",
        as_="wanda",
        rule="scope",
    )
    attacker.refused(
        "ticket",
        "open",
        "abuse",
        "--policy",
        "le-pic",
        "--account",
        "p1",
        "--field",
        "category=spam",
        as_="wanda",
        rule="scope",
    )
    # ... nor changes its settings, nor gives rights beyond Wigii.
    attacker.refused(
        "policy", "set", "le-pic", "reset_url=https://x.example/?t=", as_="wanda", rule="scope"
    )
    attacker.refused(
        "volunteer", "add", "mallory", "--role", "techadmin", as_="wanda", rule="scope"
    )
    attacker.refused("volunteer", "deactivate", "chloe", as_="wanda", rule="scope")
    # Within Wigii the role is whole.
    attacker.ok(
        "ticket",
        "act",
        tw,
        "read-logs",
        "--note",
        "reported spam run",
        "--field",
        "purpose=misuse",
        as_="wanda",
    )
    attacker.ok("policy", "set", "wigii", "reset_url=https://wigii.example/reset?t=", as_="wanda")
    attacker.ok("volunteer", "add", "walt", "--role", "volunteer", "--policy", "wigii", as_="wanda")
    attacker.refused("ticket", "show", tp, as_="walt", rule="scope")
    # Scopes can name several providers; an unknown one is bad input.
    attacker.ok(
        "volunteer",
        "add",
        "walt",
        "--role",
        "volunteer",
        "--policy",
        "wigii",
        "--policy",
        "le-pic",
        as_="chloe",
    )
    attacker.ok("ticket", "show", tp, as_="walt")
    attacker.bad("volunteer", "add", "walt", "--role", "volunteer", "--policy", "nope", as_="chloe")


def test_the_tui_backend_keeps_the_scope(attacker):
    from helpdesk.tui_api.backend import Backend

    attacker.ok(
        "volunteer", "add", "wanda", "--role", "techadmin", "--policy", "wigii", as_="chloe"
    )
    attacker.ok(
        "account", "add", "p1", "--policy", "le-pic", "--email", "p1@example.org", as_="alice"
    )
    tp = attacker.ok(
        "ticket",
        "open",
        "abuse",
        "--policy",
        "le-pic",
        "--account",
        "p1",
        "--field",
        "category=harassment",
        as_="bob",
    )["id"]
    b = Backend(attacker.url, "wanda")
    b.load_info()
    from helpdesk.base.errors import Refused

    with pytest.raises(Refused):
        b.ticket(tp)


# --- a withdrawn volunteer is out at once -------------------------------------------------


def test_a_withdrawn_volunteer_is_out_at_once(attacker):
    # Found: 'helpdesk --as alice' still opened the interface read-only, personal data shown,
    # until someone re-ran 'volunteer authorized-keys'.
    from helpdesk.tui_api.backend import Backend

    from helpdesk.base.errors import Refused

    attacker.ok("volunteer", "deactivate", "alice", as_="chloe")
    attacker.refused("ticket", "list", as_="alice", rule="withdrawn")
    with pytest.raises(Refused):
        Backend(attacker.url, "alice").load_info()
    r = attacker.run(
        "--as", "alice", json_out=False
    )  # the forced command itself: no terminal here, still refused first
    assert r.code in (1, 2) and "Traceback" not in r.err
