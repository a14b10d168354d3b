"""The action queue through the real CLI: queued with the step, carried out after it,
retried, audited, decided by a person, previewed by --dry-run, never run in training; and
helpdesk.toml: where it is found, secrets only from private files, errors with their line."""

from __future__ import annotations

import json
import socket

import pytest

from tests import servers

NOW = "2026-11-23T10:00:00+01:00"


def write_config(hd, text: str):
    path = hd.tmp_path / "helpdesk.toml"
    path.write_text(text)
    hd.env["HELPDESK_CONFIG"] = str(path)
    return path


def closed_port() -> int:
    port = servers.free_port()
    with socket.socket() as s:  # nothing listens there
        s.bind(("127.0.0.1", port))
    return port


def ldap_nowhere(hd, port: int) -> None:
    secret = hd.tmp_path / "ldap.secret"
    secret.write_text("never-printed-secret")
    secret.chmod(0o600)
    write_config(
        hd,
        f'''
[connectors.directory]
type = "ldap"
policies = ["indigos"]
url = "ldap://127.0.0.1:{port}"
bind_dn = "cn=admin,dc=example,dc=org"
password_file = "{secret}"
base = "ou=users,dc=example,dc=org"
timeout = 2

[connectors.mail]
type = "postfix"
policies = ["indigos"]
''',
    )


@pytest.fixture
def indigos(hd):
    hd.now = NOW
    hd.account("camille", "indigos", "camille@example.org")
    return hd


def _suspend(hd) -> int:
    tid = hd.open(
        "abuse", "indigos", "camille", "cert@example.net", "category=security", "urgent=yes"
    )["id"]
    return tid


def test_a_step_queues_its_actions_and_a_run_carries_them_out(indigos):
    hd = indigos
    ldap_nowhere(hd, closed_port())
    tid = _suspend(hd)
    view = hd.act(tid, "suspend", "--note", "outgoing port scan, now", as_="bob")
    # Nothing configured here kicks sessions: only the lock and the sending block are queued.
    assert len(view["actions_queued"]) == 2
    kinds = {(a["kind"], a["connector"], a["status"]) for a in view["service_actions"]}
    assert kinds == {("lock", "directory", "pending"), ("suspend-sending", "mail", "pending")}

    # The directory is down: the lock waits and is retried; the Postfix block is done.
    run = hd.run("actions", "run", now="2026-11-23T10:01:00+01:00")
    assert run.code == 0, run.err
    report = run.json
    assert [e["kind"] for e in report["done"]] == ["suspend-sending"]
    assert [e["kind"] for e in report["retried"]] == ["lock"]
    assert "never-printed-secret" not in run.out + run.err
    lock = next(a for a in hd.ok("actions", "list") if a["kind"] == "lock")
    assert lock["status"] == "pending" and lock["attempts"] == 1
    assert lock["next_attempt_at"] == "2026-11-23T09:02:00Z"  # 1 minute later
    # Not yet due: a run now does nothing more.
    assert hd.ok("actions", "run", now="2026-11-23T10:01:30+01:00")["retried"] == []


def test_actions_run_text_names_statuses_and_kinds_by_their_labels(indigos):
    hd = indigos
    ldap_nowhere(hd, closed_port())
    tid = _suspend(hd)
    hd.act(tid, "suspend", "--note", "outgoing port scan, now", as_="bob")
    out = hd.run("actions", "run", now="2026-11-23T10:01:00+01:00", json_out=False).out
    assert "(fait) suspendre l'envoi" in out and "(à réessayer) verrouiller le compte" in out
    for key in ("(done)", "(retried)", "suspend-sending", " lock "):
        assert key not in out, out
    english = hd.run(
        "actions", "run", "--lang", "en", now="2026-11-23T10:03:00+01:00", json_out=False
    ).out
    assert "(to retry) lock the account" in english and "(à réessayer)" not in english
    (lock,) = [a for a in hd.ok("actions", "list") if a["kind"] == "lock"]  # JSON: the keys
    assert lock["status"] == "pending"


def test_failed_and_uncertain_wait_for_a_person(indigos):
    hd = indigos
    ldap_nowhere(hd, closed_port())
    tid = _suspend(hd)
    hd.act(tid, "suspend", "--note", "outgoing port scan, now", as_="bob")
    # Eight attempts, backing off: then failed, shown on the ticket and waiting.
    when = [
        "2026-11-23T10:01",
        "2026-11-23T10:03",
        "2026-11-23T10:09",
        "2026-11-23T10:40",
        "2026-11-23T12:41",
        "2026-11-23T18:42",
        "2026-11-24T00:43",
        "2026-11-24T06:44",
    ]
    codes = [hd.run("actions", "run", now=w + ":00+01:00").code for w in when]
    assert codes[-1] == 1 and set(codes[:-1]) == {0}
    lock = next(a for a in hd.ok("actions", "list") if a["kind"] == "lock")
    assert (
        lock["status"] == "failed"
        and lock["attempts"] == 8
        and "après 8 tentatives" in lock["answer"]
    )
    shown = hd.ok("ticket", "show", tid)["service_actions"]
    assert any(a["needs_attention"] for a in shown)
    human = hd.ok("ticket", "show", tid, json_out=False).out
    assert "verrouiller le compte" in human and "[échoué]" in human  # by their labels

    # A volunteer may not decide; oncall may, with a note; both are audited.
    hd.refused(
        "actions", "retry", lock["id"], "--note", "directory is back", as_="alice", rule="role"
    )
    assert hd.run("actions", "mark-done", lock["id"], as_="bob").code == 2  # --note is required
    done = hd.ok(
        "actions", "mark-done", lock["id"], "--note", "locked by hand with ldapmodify", as_="bob"
    )
    assert done["status"] == "done"
    hd.refused("actions", "retry", lock["id"], "--note", "again", as_="bob", rule="action-status")
    assert hd.ok("audit", "verify")["ok"]


def test_dry_run_prints_the_actions_and_does_nothing(indigos):
    hd = indigos
    write_config(hd, '[connectors.mail]\ntype = "postfix"\npolicies = ["indigos"]\n')
    alert = hd.open(
        "mail-reputation", "indigos", "camille", "", "signal=volume", "compromised=yes", as_="bob"
    )["id"]
    dry = hd.ok(
        "ticket",
        "act",
        alert,
        "secure-compromised",
        "--field",
        "until=2026-11-30T10:00",
        "--note",
        "stolen password",
        "--dry-run",
        as_="bob",
    )
    assert dry["dry_run"] is True and dry["state"] == "send-suspended"
    assert [(a["kind"], a["connector"], a["until"]) for a in dry["service_actions"]] == [
        ("suspend-sending", "mail", "2026-11-30T09:00:00Z")
    ]
    assert any("force-change" in w for w in dry["warnings"]) and any(
        "revoke-sessions" in w for w in dry["warnings"]
    )
    text = hd.ok(
        "ticket",
        "act",
        alert,
        "secure-compromised",
        "--field",
        "until=2026-11-30T10:00",
        "--note",
        "x",
        "--dry-run",
        as_="bob",
        json_out=False,
    ).out
    assert (
        "2026-11-30 10:00 (Europe/Paris)" in text and "09:00" not in text
    )  # a person reads local time
    after = hd.show(alert)
    assert after["state"] == "alert" and after["service_actions"] == []
    assert hd.ok("outbox", "list", "--ticket", alert) == []


def test_a_training_database_records_what_it_would_have_done(hd, tmp_path):
    hd.now = NOW
    training = tmp_path / "training.db"
    hd.url = str(training)
    hd.ok("init", "--training")
    hd.ok(
        "volunteer", "add", "bob", "--role", "oncall", as_=""
    )  # the first volunteer of a new database
    hd.ok(
        "account",
        "add",
        "camille",
        "--policy",
        "indigos",
        "--email",
        "camille@example.org",
        as_="bob",
    )
    ldap_nowhere(hd, closed_port())
    tid = hd.open(
        "abuse",
        "indigos",
        "camille",
        "cert@example.net",
        "category=security",
        "urgent=yes",
        as_="bob",
    )["id"]
    view = hd.act(tid, "suspend", "--note", "scan", as_="bob")
    assert {a["status"] for a in view["service_actions"]} == {"would-have-done"}
    text = hd.ok("ticket", "show", tid, json_out=False).out
    assert "aurait été fait (formation)" in text and "would-have-done" not in text  # by its label
    report = hd.ok("actions", "run")
    assert report["done"] == report["retried"] == []
    assert {a["status"] for a in hd.ok("actions", "list")} == {"would-have-done"}


def test_configuration_errors_name_the_file_and_line(hd):
    hd.now = NOW
    path = write_config(
        hd, '[connectors.directory]\ntype = "ldap"\npolicies = ["indigos"]\npassword = "inline!"\n'
    )
    bad = hd.bad("connectors", "check")
    assert f"{path}:4" in bad.err and "password_file" in bad.err and "inline!" not in bad.err
    write_config(hd, '[connectors.directory]\ntype = "ldapp"\npolicies = ["indigos"]\n')
    assert ":1" in hd.bad("connectors", "check").err
    write_config(hd, '[connectors.directory\ntype = "ldap"\n')
    assert f"{path}:1:" in hd.bad("connectors", "check").err  # file:line:column
    secret = hd.tmp_path / "open.secret"
    secret.write_text("s3cret")
    secret.chmod(0o644)
    write_config(
        hd,
        f'[connectors.d]\ntype = "ldap"\npolicies = "*"\nurl = "ldap://127.0.0.1:1"\npassword_file = "{secret}"\nbase = "dc=x"\n',
    )
    r = hd.run("connectors", "check")
    assert r.code == 1 and "chmod 600" in r.out and "s3cret" not in r.out
    hd.env["HELPDESK_CONFIG"] = str(hd.tmp_path / "missing.toml")
    assert "fichier introuvable" in hd.bad("connectors", "check").err


def test_policyd_listen_address_comes_from_flag_env_or_file(hd):
    from helpdesk.base import config

    cfg = config.parse('[policyd]\nlisten = "127.0.0.1:10040"\non_error = "defer_if_permit"\n')
    assert cfg.get("policyd.listen") == "127.0.0.1:10040"
    cfg.override("policyd.listen", "unix:/run/helpdesk/policyd.sock", "--listen")
    assert cfg.origin("policyd.listen") == "--listen"
    assert config.parse_listen("[::1]:25") == ("tcp", ("::1", 25))
    assert config.parse_listen("unix:/run/p.sock") == ("unix", "/run/p.sock")
    with pytest.raises(config.ConfigError):
        config.parse_listen("localhost")
    with pytest.raises(config.ConfigError):
        config.parse('[policyd]\non_error = "REJECT"\n')
    bad = hd.bad("policyd", "--listen", "nowhere")
    assert "HOST:PORT" in bad.err


def test_actions_list_json_is_stable_and_untrusted_text_is_plain(indigos):
    hd = indigos
    write_config(
        hd,
        '[connectors.mail]\ntype = "postfix"\npolicies = ["indigos"]\nlogin_field = "mail-login"\n',
    )
    hd.ok(
        "account",
        "add",
        "camille",
        "--policy",
        "indigos",
        "--email",
        "camille@example.org",
        "--field",
        "mail-login=[bold]cam\x1b[31m@example.org",
    )
    tid = _suspend(hd)
    hd.act(tid, "suspend", "--note", "scan", as_="bob")
    rows = hd.ok("actions", "list")
    assert set(rows[0]) >= {
        "id",
        "ticket",
        "kind",
        "connector",
        "target",
        "status",
        "attempts",
        "answer",
        "needs_attention",
    }
    text = hd.ok("actions", "list", json_out=False).out
    assert "\x1b" not in text
    # a person reads the action and its status by their labels, the JSON keeps the keys
    kinds = {r["kind"] for r in rows}
    assert "suspend-sending" in kinds and "suspendre l'envoi" in text, text
    assert not any(f" {k} " in text for k in kinds), text
    assert "en file" in text and "pending" not in text and "Cible" in text, text
    json.dumps(rows)


def test_a_broken_config_holds_a_timers_actions_back_and_they_run_once_it_is_mended(indigos):
    """A broken helpdesk.toml is not the step's fault nor the action's: the timer stays due,
    the queued action stays pending with its attempt not counted, the error is said (exit
    2, the file and line), audited once; mended, the next sweep does both."""
    hd = indigos
    good = '[connectors.mail]\ntype = "postfix"\npolicies = ["indigos"]\n'
    path = write_config(hd, good)
    alert = hd.open(
        "mail-reputation", "indigos", "camille", "", "signal=volume", "compromised=yes", as_="bob"
    )["id"]
    hd.act(
        alert,
        "suspend-sending",
        "--field",
        "until=2026-11-25T10:00:00+01:00",
        "--note",
        "900 mails an hour",
        as_="bob",
    )
    # Queued, then the file breaks before anything ran: the action is held, not failed.
    path.write_text(good + "[connectors.directory\n")
    held = hd.run("actions", "run", now="2026-11-23T10:01:00+01:00")
    assert held.code == 2 and held.json["config_error"] and f"{path}" in held.json["config_error"]
    assert held.json["failed"] == [] and held.json["uncertain"] == []
    (action,) = hd.ok("actions", "list")
    assert action["status"] == "pending" and action["attempts"] == 0
    human = hd.run("actions", "run", now="2026-11-23T10:02:00+01:00", json_out=False)
    assert human.code == 2 and "Traceback" not in human.out + human.err
    assert "Erreur de configuration, rien n'est perdu" in human.out and str(path) in human.out
    path.write_text(good)
    assert [
        e["kind"] for e in hd.ok("actions", "run", now="2026-11-23T10:03:00+01:00")["done"]
    ] == ["suspend-sending"]

    # The lift is due on the 25th, and the file is broken again (a typo in a new connector).
    path.write_text(good + '[connectors.directory]\ntype = "ldapp"\npolicies = ["indigos"]\n')
    for when in ("2026-11-25T10:05:00+01:00", "2026-11-25T10:10:00+01:00"):
        swept = hd.run("sweep", now=when)
        assert swept.code == 2, swept.err
        report = swept.json
        assert report["taken"] == [] and f"{path}:4" in report["config_error"]
        (refused,) = report["refused"]
        assert refused["ticket"] == alert and "au prochain sweep" in refused["reason"]
        assert hd.show(alert)["state"] == "send-suspended"  # the timer waits, still due
    deferred = [e for e in hd.show(alert)["events"] if e["action"] == "timer-deferred"]
    assert len(deferred) == 1  # once per distinct error, not once per sweep
    human = hd.run("sweep", now="2026-11-25T10:15:00+01:00", json_out=False)
    assert human.code == 2 and "Traceback" not in human.out + human.err and str(path) in human.out

    # Mended: the next sweep lifts the suspension and carries out the lift.
    path.write_text(good)
    swept = hd.run("sweep", now="2026-11-25T10:20:00+01:00")
    assert swept.code == 0, swept.err
    assert [t["action"] for t in swept.json["taken"]] == ["lift"]
    assert [e["kind"] for e in swept.json["actions"]["done"]] == ["lift-sending"]
    assert hd.ok("audit", "verify")["ok"]
