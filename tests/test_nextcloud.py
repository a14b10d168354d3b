"""The Nextcloud connector against a stand-in that answers from Nextcloud's own OpenAPI
description of the provisioning API and validates every request and answer against it
(tests/nextcloud_standin.py): a deactivation disables the user, reinstatement enables it,
erasure deletes it, last logins are read (sync, and the inactivity procedure), and the
server's errors are retried or left for a person as they should be."""

from __future__ import annotations

import base64
import urllib.error
import urllib.request
from datetime import datetime

import pytest

from tests.nextcloud_standin import StandIn

NOW = "2026-11-23T10:00:00+01:00"
APP_PASSWORD = "xK9p-never-printed-app-password"


def ms(iso: str) -> int:
    return int(datetime.fromisoformat(iso).timestamp() * 1000)


@pytest.fixture
def cloud():
    with StandIn(app_password=APP_PASSWORD) as standin:
        yield standin
        assert standin.violations == []  # every request and answer fits the description


def configure(hd, monkeypatch, cloud, policy: str = "indigos", password: str = APP_PASSWORD):
    secret = hd.tmp_path / "nextcloud.secret"
    secret.write_text(password + "\n")
    secret.chmod(0o600)
    path = hd.tmp_path / "helpdesk.toml"
    path.write_text(
        f'[connectors.cloud]\ntype = "nextcloud"\npolicies = ["{policy}"]\nurl = "{cloud.url}"\n'
        f'user = "helpdesk"\npassword_file = "{secret}"\ntimeout = 5\n'
    )
    monkeypatch.setenv("HELPDESK_CONFIG", str(path))


@pytest.fixture
def indigos(hdi, cloud, monkeypatch):
    hdi.now = NOW
    hdi.account("camille", "indigos", "camille@example.org")
    cloud.add("camille", last_login_ms=ms("2026-11-01T08:00:00+00:00"))
    configure(hdi, monkeypatch, cloud)
    return hdi


def close_account(hd) -> int:
    tid = hd.open("abuse", "indigos", "camille", "a@example.net", "category=illegal")["id"]
    hd.act(tid, "contact", "--note", "illegal files shared")
    hd.act(tid, "suspend", "--note", "no answer, files still shared", as_="bob")
    hd.ok("actions", "run", now="2026-11-23T10:01:00+01:00")
    hd.act(tid, "close-account", "--note", "relapse after suspension", as_="bob")
    return tid


def test_deactivation_disables_and_erasure_deletes(indigos, cloud):
    hd = indigos
    tid = close_account(hd)
    assert cloud.users["camille"]["enabled"] is False  # the suspension disabled it already
    run = hd.ok("actions", "run", now="2026-11-23T10:02:00+01:00")
    (lock,) = [e for e in run["done"] if e["kind"] == "lock"]
    assert lock["connector"] == "cloud" and "disabled" in lock["answer"]
    assert cloud.users["camille"]["enabled"] is False  # twice disabled is disabled once
    assert ("PUT", "/ocs/v2.php/cloud/users/camille/disable") in cloud.requests

    sweep = hd.ok("sweep", now="2026-12-23T10:00:00+01:00")
    # The step waits for the services ("erasing"); the same sweep then runs the deletion.
    assert sweep["taken"] == [{"ticket": tid, "action": "erase", "state": "erasing"}]
    assert "camille" not in cloud.users
    assert ("DELETE", "/ocs/v2.php/cloud/users/camille") in cloud.requests
    view = hd.show(tid)
    (erase,) = [a for a in view["service_actions"] if a["kind"] == "erase"]
    assert erase["status"] == "done" and "deleted" in erase["answer"]
    assert view["state"] == "erased" and view["deadlines"]["backups-forget"]
    # Erasing again changes nothing: the user is already gone.
    from helpdesk import connectors
    from helpdesk.base import config

    conn = connectors.by_name(config.load(fresh=True), "cloud")
    assert "already erased" in conn.run("erase", "camille", {})


def test_reinstatement_enables(indigos, cloud):
    hd = indigos
    check = hd.run("connectors", "check", "indigos")
    assert check.code == 0 and "OCS provisioning API answers" in check.out + check.err
    assert APP_PASSWORD not in check.out + check.err
    tid = hd.open(
        "abuse", "indigos", "camille", "cert@example.net", "category=security", "urgent=yes"
    )["id"]
    hd.act(tid, "suspend", "--note", "outgoing port scan, now", as_="bob")
    hd.ok("actions", "run", now="2026-11-23T10:01:00+01:00")
    assert cloud.users["camille"]["enabled"] is False
    hd.act(tid, "reinstate", "--note", "machine cleaned, checked", as_="bob")
    run = hd.ok("actions", "run", now="2026-11-23T11:00:00+01:00")
    assert [(e["kind"], e["connector"]) for e in run["done"]] == [("unlock", "cloud")]
    assert cloud.users["camille"]["enabled"] is True
    assert ("PUT", "/ocs/v2.php/cloud/users/camille/enable") in cloud.requests


def test_last_logins_by_sync_and_by_the_inactivity_procedure(hdi, cloud, monkeypatch):
    hd = hdi
    hd.now = NOW
    configure(hd, monkeypatch, cloud, policy="wigii")
    # The helpdesk thinks "old" has not logged in for more than a year (art. 9)...
    hd.account("old", "wigii", "old@example.org", "--last-login", "2025-11-01T08:00:00Z")
    hd.account("never", "wigii", "never@example.org")
    # ... but Nextcloud saw it last week; "never" was never seen there (lastLogin 0).
    cloud.add("old", last_login_ms=ms("2026-11-16T09:30:00+00:00"))
    cloud.add("never", last_login_ms=0)
    for i in range(3):
        cloud.add(f"other{i}")

    sweep = hd.ok("sweep")
    (opened,) = sweep["opened"]
    assert opened["account"] == "old"
    tid = opened["ticket"]
    # The inactivity procedure read the last login again on every service that keeps one.
    reads = [e for e in sweep["actions"]["done"] if e["kind"] == "read-last-login"]
    assert [(e["connector"], e["answer"]) for e in reads] == [
        ("cloud", "last login 2026-11-16T09:30:00Z")
    ]
    assert ("GET", "/ocs/v2.php/cloud/users/old") in cloud.requests
    assert hd.ok("account", "show", "old")["last_login"] == "2026-11-16T09:30:00Z"
    # So the deactivation is refused, citing the text.
    hd.refused("ticket", "act", tid, "deactivate", rule="inactive_for", cite="Wigii CGU art. 9")

    # account sync reads every user's last login, a page at a time.
    from helpdesk.connectors import nextcloud

    monkeypatch.setattr(nextcloud, "PAGE", 2)
    report = hd.ok("account", "sync", "wigii", as_="bob")
    assert report["sources"] == ["cloud"] and report["problems"] == []
    assert "never" not in report["updated"]
    assert hd.ok("account", "show", "never").get("last_login") in (None, "")
    offsets = [p for m, p in cloud.requests if p.endswith("/users/details")]
    assert len(offsets) == 3  # 5 users, 2 a page


def test_errors_are_retried_or_left_for_a_person(indigos, cloud, monkeypatch):
    hd = indigos
    tid = hd.open(
        "abuse", "indigos", "camille", "cert@example.net", "category=security", "urgent=yes"
    )["id"]
    hd.act(tid, "suspend", "--note", "outgoing port scan, now", as_="bob")
    # In maintenance (503): nothing done, retried later.
    cloud.maintenance = True
    run = hd.run("actions", "run", now="2026-11-23T10:01:00+01:00")
    assert run.code == 0
    (retried,) = run.json["retried"]
    assert "HTTP 503" in retried["answer"] and "maintenance" in retried["answer"]
    assert cloud.users["camille"]["enabled"] is True
    # Back, but the app password was revoked: failed, a person must look.
    cloud.maintenance = False
    configure(hd, monkeypatch, cloud, password="revoked-app-password")
    run = hd.run("actions", "run", now="2026-11-23T10:03:00+01:00")
    assert run.code == 1
    (failed,) = run.json["failed"]
    assert "HTTP 401" in failed["answer"] and "OCS 997" in failed["answer"]
    assert "revoked-app-password" not in run.out + run.err and APP_PASSWORD not in run.out
    shown = next(a for a in hd.show(tid)["service_actions"] if a["kind"] == "lock")
    assert shown["status"] == "failed" and shown["needs_attention"]
    # Fixed, retried by on-call: done.
    configure(hd, monkeypatch, cloud)
    hd.ok("actions", "retry", shown["id"], "--note", "new app password", as_="bob")
    assert hd.ok("actions", "run", now="2026-11-23T10:10:00+01:00")["done"]
    assert cloud.users["camille"]["enabled"] is False
    # A user Nextcloud does not have: failed, said plainly.
    from helpdesk import connectors
    from helpdesk.base import config

    conn = connectors.by_name(config.load(fresh=True), "cloud")
    with pytest.raises(connectors.Permanent, match="no Nextcloud user ghost"):
        conn.run("lock", "ghost", {})
    assert conn.last_login("ghost") is None
    # Nothing listens: retried.
    monkeypatch.setattr(conn, "settings", {**conn.settings, "url": "http://127.0.0.1:9"})
    with pytest.raises(connectors.Temporary):
        conn.run("lock", "camille", {})


def test_the_stand_in_holds_requests_to_the_description(cloud):
    """The checks are real: a request that leaves out what the description requires is
    caught (and the fixture's empty list of violations means something)."""
    req = urllib.request.Request(
        cloud.url + "/ocs/v2.php/cloud/users/camille/disable?format=xml", method="PUT"
    )
    with pytest.raises(urllib.error.HTTPError) as exc:
        urllib.request.urlopen(req, timeout=5)
    assert exc.value.code == 401
    caught = list(cloud.violations)
    cloud.violations.clear()
    assert any("missing header parameter OCS-APIRequest" in v for v in caught)
    assert any("query parameter format is not in the description" in v for v in caught)
    assert any("not authenticated" in v for v in caught)
    assert any("application/json" in v for v in caught)


def test_plain_http_to_another_host_is_refused(hdi, cloud, monkeypatch):
    from helpdesk import connectors
    from helpdesk.base import config

    configure(hdi, monkeypatch, cloud)
    conn = connectors.by_name(config.load(fresh=True), "cloud")
    monkeypatch.setattr(conn, "settings", {**conn.settings, "url": "http://cloud.example.org"})
    with pytest.raises(connectors.Permanent, match="unencrypted"):
        conn.run("lock", "camille", {})
    assert cloud.requests == []  # nothing was sent anywhere


def test_the_stand_in_answers_from_the_whole_description(cloud):
    """The description is Nextcloud's whole file (its size at the noted commit), every one of
    its paths is routed, and an operation the connector has no business calling is known
    to the description but held against the stand-in, not silently answered."""
    from tests.nextcloud_standin import SPEC_PATH

    text = SPEC_PATH.read_text(encoding="utf-8")
    assert len(text) == 135903
    assert "135903" in (SPEC_PATH.parent / "README.md").read_text(encoding="utf-8")
    templates = {template for _n, _rx, template, _item in cloud.routes}
    assert templates == set(cloud.spec["paths"]) and len(templates) == 22
    # users/details, users/disabled and the user's own enable/disable are not taken for a
    # user id or a collection name.
    assert cloud.operation("GET", "/ocs/v2.php/cloud/users/details")[0].endswith("details")
    assert cloud.operation("PUT", "/ocs/v2.php/cloud/users/x/disable")[1]["operationId"] == (
        "users-disable-user"
    )
    assert cloud.operation("PUT", "/ocs/v2.php/cloud/users/x/email")[1]["operationId"] == (
        "users-edit-user-multi-value"
    )
    req = urllib.request.Request(
        cloud.url + "/ocs/v2.php/cloud/groups",
        headers={
            "OCS-APIRequest": "true",
            "Accept": "application/json",
            "Authorization": "Bearer some-token",
        },
    )
    with pytest.raises(urllib.error.HTTPError) as exc:
        urllib.request.urlopen(req, timeout=5)
    assert exc.value.code == 401  # not the stand-in's app password
    assert cloud.violations == []  # a valid request of the description
    req.add_header(
        "Authorization",
        "Basic " + base64.b64encode(b"helpdesk:" + APP_PASSWORD.encode()).decode(),
    )
    with pytest.raises(urllib.error.HTTPError) as exc:
        urllib.request.urlopen(req, timeout=5)
    assert exc.value.code == 501
    caught = list(cloud.violations)
    cloud.violations.clear()
    assert caught == [
        "GET /ocs/v2.php/cloud/groups: groups-get-groups is not answered by the stand-in"
    ]
