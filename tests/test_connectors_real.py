"""The procedures acting on real services started here on 127.0.0.1 (tests/servers.py):
slapd with ppolicy and lastbind, Dovecot with the last_login plugin, Postfix asking
``helpdesk policyd`` with SASL through Dovecot."""

from __future__ import annotations

import imaplib
import os
import signal
import smtplib
import socket
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone

import pytest

from tests import servers
from tests.conftest import ROOT

NOW = "2026-11-23T10:00:00+01:00"


def configure(hd, *tables: str) -> None:
    path = hd.tmp_path / "helpdesk.toml"
    path.write_text("\n".join(tables))
    hd.env["HELPDESK_CONFIG"] = str(path)


def done_events(hd, kind: str) -> int:
    from helpdesk.storage import db
    from helpdesk.storage.models import Event
    from sqlmodel import select

    with db.read_session(hd.url) as s:
        return sum(
            1
            for e in s.exec(select(Event).where(Event.action == "service-action-done"))
            if e.data.get("kind") == kind
        )


def ldap_attrs(server: servers.Slapd, login: str) -> str:
    p = subprocess.run(
        [
            "ldapsearch",
            "-x",
            "-LLL",
            "-H",
            server.url,
            "-D",
            servers.ADMIN_DN,
            "-w",
            servers.ADMIN_PW,
            "-b",
            f"uid={login},{servers.USERS}",
            "-s",
            "base",
            "(objectClass=*)",
            "+",
        ],
        capture_output=True,
        text=True,
    )
    return p.stdout


@servers.needs_slapd
def test_directory_lock_unlock_force_sync_and_last_login(hd):
    with servers.slapd() as ldap:
        ldap.add_user("camille", "old-pass", "camille@example.org")
        ldap.add_user("dominique", "pass-2", "dominique@example.org")
        assert ldap.bind("camille", "old-pass")  # sets pwdLastSuccess
        configure(hd, ldap.connector_toml())
        hd.now = NOW

        check = hd.ok("connectors", "check", "indigos")
        assert check["connectors"][0]["ok"] and "bound as" in check["connectors"][0]["answer"]

        # account sync: accounts and their last logins, from the directory.
        report = hd.ok("account", "sync", "indigos", as_="bob")
        assert sorted(report["added"]) == ["camille", "dominique"] and report["logins"] == 1
        shown = hd.ok("account", "show", "camille")
        assert shown["email"] == "camille@example.org" and shown["last_login"]
        first_seen = shown["last_login"]
        assert servers.ADMIN_PW not in str(report)

        # An emergency suspension locks the account: binds fail.
        tid = hd.open(
            "abuse",
            "indigos",
            "camille",
            "cert@example.net",
            "category=security",
            "urgent=yes",
            as_="bob",
        )["id"]
        hd.act(tid, "suspend", "--note", "outgoing port scan, now", as_="bob")
        assert ldap.bind("camille", "old-pass")  # nothing happens before the queue runs
        run = hd.ok("actions", "run")
        assert [e["kind"] for e in run["done"]] == ["lock"]
        assert not ldap.bind("camille", "old-pass")
        assert "pwdAccountLockedTime: 000001010000Z" in ldap_attrs(ldap, "camille")
        assert hd.ok("actions", "run")["done"] == []  # done once, never twice
        assert done_events(hd, "lock") == 1

        # Reinstatement unlocks.
        hd.act(tid, "reinstate", "--note", "owner cleaned the machine", as_="bob")
        assert [e["kind"] for e in hd.ok("actions", "run")["done"]] == ["unlock"]
        assert ldap.bind("camille", "old-pass")
        assert "pwdAccountLockedTime" not in ldap_attrs(ldap, "camille")

        # A compromised mailbox: the next login must change the password.
        alert = hd.open(
            "mail-reputation",
            "indigos",
            "camille",
            "",
            "signal=volume",
            "compromised=yes",
            as_="bob",
        )["id"]
        hd.act(
            alert,
            "secure-compromised",
            "--field",
            "until=2026-11-30T10:00",
            "--note",
            "password stolen",
            as_="bob",
        )
        hd.ok("actions", "run")
        assert "pwdReset: TRUE" in ldap_attrs(ldap, "camille")

        # The reset page's call: the server hashes the password it is given.
        from helpdesk.base import config
        from helpdesk import connectors

        os.environ["HELPDESK_CONFIG"] = hd.env["HELPDESK_CONFIG"]
        try:
            conn = connectors.by_name(config.load(fresh=True), "directory")
            conn.set_password("dominique", "brand-new-pass")
        finally:
            del os.environ["HELPDESK_CONFIG"]
        assert ldap.bind("dominique", "brand-new-pass") and not ldap.bind("dominique", "pass-2")

        # The directory forgets (an admin reset clears pwdLastSuccess): we do not.
        subprocess.run(
            [
                "ldappasswd",
                "-x",
                "-H",
                ldap.url,
                "-D",
                servers.ADMIN_DN,
                "-w",
                servers.ADMIN_PW,
                "-s",
                "reset-by-admin",
                f"uid=camille,{servers.USERS}",
            ],
            check=True,
            capture_output=True,
        )
        assert "pwdLastSuccess" not in ldap_attrs(ldap, "camille")
        hd.ok("account", "sync", "indigos", as_="bob")
        assert hd.ok("account", "show", "camille")["last_login"] == first_seen
        hd.refused("account", "sync", "indigos", as_="alice", rule="role")


@servers.needs_slapd
def test_a_directory_down_during_the_step_is_retried_and_nothing_is_done_twice(hd):
    with servers.slapd() as ldap:
        ldap.add_user("camille", "old-pass")
        configure(hd, ldap.connector_toml().replace("base = ", "timeout = 2\nbase = "))
        hd.now = NOW
        hd.ok("account", "sync", "indigos", as_="bob")
        pid = int((ldap.root / "slapd.pid").read_text())
        tid = hd.open(
            "abuse",
            "indigos",
            "camille",
            "cert@example.net",
            "category=security",
            "urgent=yes",
            as_="bob",
        )["id"]
        os.kill(pid, signal.SIGSTOP)  # the directory hangs
        try:
            hd.act(tid, "suspend", "--note", "scan", as_="bob")
            run = hd.ok("actions", "run", now="2026-11-23T10:00:30+01:00")
            assert [e["kind"] for e in run["retried"]] == ["lock"] and run["done"] == []
        finally:
            os.kill(pid, signal.SIGCONT)
        assert ldap.bind("camille", "old-pass")
        run = hd.ok("actions", "run", now="2026-11-23T10:02:00+01:00")
        assert [e["kind"] for e in run["done"]] == ["lock"]
        assert not ldap.bind("camille", "old-pass")
        assert hd.ok("actions", "run", now="2026-11-23T12:00:00+01:00")["done"] == []
        assert done_events(hd, "lock") == 1
        lock = hd.ok("actions", "list")[0]
        assert lock["status"] == "done" and lock["attempts"] == 2


@servers.needs_slapd
@servers.needs_dovecot
def test_deactivation_on_its_day_locks_the_account_and_closes_its_imap_session(hd):
    with servers.slapd() as ldap, servers.dovecot({"camille": "imap-pass"}) as mail:
        ldap.add_user("camille", "old-pass", "camille@example.org")
        configure(hd, ldap.connector_toml(), mail.connector_toml())
        hd.now = NOW
        hd.ok("account", "sync", "indigos", as_="bob")
        tid = hd.open(
            "closure",
            "indigos",
            "camille",
            "camille@example.org",
            "reason=request",
            "system=cloud",
            "day=2026-11-25",
        )["id"]
        assert hd.act(tid, "confirm")["state"] == "scheduled"

        imap = imaplib.IMAP4("127.0.0.1", mail.imap_port)
        imap.login("camille", "imap-pass")
        imap.select("INBOX")
        assert imap.noop()[0] == "OK"

        hd.ok("sweep", now="2026-11-24T10:00:00+01:00")
        assert imap.noop()[0] == "OK"  # not before its day
        swept = hd.ok("sweep", now="2026-11-25T00:30:00+01:00")
        assert [t["action"] for t in swept["taken"]] == ["deactivate"]
        assert sorted(e["kind"] for e in swept["actions"]["done"]) == ["lock", "revoke-sessions"]
        with pytest.raises((imaplib.IMAP4.abort, OSError, EOFError)):
            for _ in range(20):
                imap.noop()
                time.sleep(0.1)
        assert not ldap.bind("camille", "old-pass")
        assert hd.ok("account", "show", "camille")["status"] == "deactivated"


@servers.needs_dovecot
def test_last_login_is_the_latest_across_sources_and_names_its_source(hd):
    with servers.dovecot({"camille": "imap-pass"}) as mail:
        imap = imaplib.IMAP4("127.0.0.1", mail.imap_port)
        imap.login("camille", "imap-pass")
        imap.logout()
        for _ in range(50):
            if mail.last_login_file.exists() and "camille" in mail.last_login_file.read_text():
                break
            time.sleep(0.1)
        configure(hd, mail.connector_toml())
        hd.account("camille", "wigii", "camille@example.org", "--last-login", "2020-01-01")
        hd.account("never", "wigii", "never@example.org")
        report = hd.ok("account", "sync", "wigii", as_="bob")
        assert report["updated"] == ["camille"] and report["added"] == []
        seen = datetime.fromisoformat(
            hd.ok("account", "show", "camille")["last_login"].replace("Z", "+00:00")
        )
        assert abs(seen - datetime.now(timezone.utc)) < timedelta(minutes=5)

    # More than a year later, the inactivity scan (Wigii art. 9) says which source saw the
    # last login; an account no source ever saw is counted from the day it was added.
    later = (datetime.now(timezone.utc) + timedelta(days=400)).isoformat()
    swept = hd.ok("sweep", now=later)
    opened = {o["account"]: o["ticket"] for o in swept["opened"]}
    assert set(opened) == {"camille", "never"}
    notes = {login: hd.show(tid, now=later)["events"][0]["note"] for login, tid in opened.items()}
    assert "source: mailbox" in notes["camille"]
    assert "no login seen by any source" in notes["never"]


def policyd_answers(proc: subprocess.Popen) -> str:
    """What the policy server logged so far (for a failure's message)."""
    import os as _os

    if proc.stdout is None:
        return ""
    _os.set_blocking(proc.stdout.fileno(), False)
    try:
        return (proc.stdout.read() or b"").decode("utf-8", "replace")[-2000:]
    except OSError:
        return ""


def _policyd(hd, port: int) -> subprocess.Popen:
    env = dict(hd.env)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "helpdesk",
            "--db",
            hd.url,
            "policyd",
            "--listen",
            f"127.0.0.1:{port}",
        ],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    servers.wait_port(port, proc, "helpdesk policyd")
    return proc


def _send(port: int, user: str, password: str) -> tuple[int, bytes]:
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as s:
        s.login(user, password)
        s.mail(f"{user}@example.org")
        return s.rcpt("someone@elsewhere.example")


@servers.needs_dovecot
@servers.needs_postfix
def test_postfix_rejects_a_suspended_sender_until_the_suspension_ends(hd):
    with servers.dovecot({"camille": "pw-c", "dominique": "pw-d"}) as mail:
        configure(hd, '[connectors.mail]\ntype = "postfix"\npolicies = ["indigos"]\n')
        hd.account("camille", "indigos", "camille@example.org")
        hd.account("dominique", "indigos", "dominique@example.org")
        port = servers.free_port()
        policyd = _policyd(hd, port)
        try:
            with servers.postfix(sasl_port=mail.auth_port, policy=f"inet:127.0.0.1:{port}") as mta:
                assert _send(mta.port, "camille", "pw-c")[0] == 250
                until = datetime.now(timezone.utc) + timedelta(
                    seconds=40
                )  # room for a slow shared machine
                alert = hd.open(
                    "mail-reputation",
                    "indigos",
                    "camille",
                    "",
                    "signal=volume",
                    "compromised=yes",
                    as_="bob",
                )["id"]
                hd.act(
                    alert,
                    "suspend-sending",
                    "--field",
                    f"until={until.isoformat()}",
                    "--note",
                    "900 mails an hour",
                    as_="bob",
                )
                hd.ok("actions", "run")

                code, text = _send(mta.port, "camille", "pw-c")
                assert datetime.now(timezone.utc) < until, (
                    "the machine was too slow to check before the end"
                )
                assert code == 554 and b"5.7.1" in text and b"suspendu" in text, text
                assert _send(mta.port, "dominique", "pw-d")[0] == 250

                # After its end, with nothing run and nothing pushed, camille sends again.
                time.sleep(max(0.0, (until - datetime.now(timezone.utc)).total_seconds()) + 0.5)
                # On a loaded machine a send can take seconds: the lift is asked of Postfix
                # until it is seen, for a few seconds past the end, not at one instant.
                deadline = time.monotonic() + 15
                code, text = _send(mta.port, "camille", "pw-c")
                while code != 250 and time.monotonic() < deadline:
                    time.sleep(1)
                    code, text = _send(mta.port, "camille", "pw-c")
                assert code == 250, (code, text, policyd_answers(policyd))
                assert "reject" in mta.log()
        finally:
            policyd.terminate()
            policyd.wait(10)


def test_policyd_never_answers_garbage_and_survives_the_database(hd, tmp_path):
    hd.account("camille", "indigos", "camille@example.org")
    port = servers.free_port()
    policyd = _policyd(hd, port)
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(
                b"request=smtpd_access_policy\nsasl_username=camille\n\nrequest=smtpd_access_policy\nsasl_username=nobody\n\n"
            )
            answer = b""
            while answer.count(b"\n\n") < 2:
                answer += s.recv(4096)
            assert answer == b"action=DUNNO\n\naction=DUNNO\n\n"  # one connection, several requests
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(b"GET / HTTP/1.0\n\n")
            assert s.recv(4096) == b""  # closed, no answer
        assert policyd.poll() is None  # still serving
    finally:
        policyd.terminate()
        out = policyd.communicate(timeout=10)[0].decode()
    assert "bad request" in out

    from helpdesk.connectors import policyd as pd

    broken = pd.Answerer(f"sqlite:///{tmp_path / 'nothing-here.db'}")
    assert broken.decide("camille") == "DUNNO"
    closed = pd.Answerer(f"sqlite:///{tmp_path / 'nothing-here.db'}", on_error="DEFER_IF_PERMIT")
    assert closed.decide("camille").startswith("DEFER_IF_PERMIT")


def test_policyd_finds_an_account_by_its_mail_login_through_an_index(hd):
    """An account whose status was set without the postfix connector (no sending block) is
    found by its SASL login: its login, or its ``mail-login`` field, read through the
    expression index of migration 0012 (the query plan says so), never by reading every
    account."""
    from sqlalchemy import text
    from sqlalchemy.engine import make_url

    from helpdesk.connectors import policyd as pd
    from helpdesk.storage import db

    hd.account(
        "asso-velo", "le-pic", "tech@velo.example", "--field", "mail-login=velo@le-pic.example"
    )
    hd.account(
        "asso-rando",
        "le-pic",
        "tech@rando.example",
        "--status",
        "deactivated",
        "--field",
        "mail-login=rando@le-pic.example",
    )
    answerer = pd.Answerer(hd.url)
    try:
        assert (
            answerer.decide("rando@le-pic.example") == "REJECT compte desactive"
        )  # ASCII: an SMTP reply
        assert answerer.decide("asso-rando") == "REJECT compte desactive"  # ASCII: an SMTP reply
        assert answerer.decide("velo@le-pic.example") == "DUNNO"  # active
        assert answerer.decide("tech@rando.example") == "DUNNO"  # an address, not a login
    finally:
        answerer.close()
    postgres = make_url(hd.url).get_backend_name() == "postgresql"
    expression = pd._MAIL_LOGIN["postgresql" if postgres else "sqlite"]
    with db.get_engine(hd.url).connect() as conn:
        if postgres:
            conn.execute(text("SET enable_seqscan = off"))  # a handful of rows: force the choice
            plan = " ".join(
                r[0]
                for r in conn.execute(
                    text(f"EXPLAIN SELECT status FROM account WHERE {expression} = 'x'")
                )
            )
        else:
            plan = " ".join(
                str(r[-1])
                for r in conn.execute(
                    text(f"EXPLAIN QUERY PLAN SELECT status FROM account WHERE {expression} = 'x'")
                )
            )
    assert "ix_account_mail_login" in plan, plan


def test_policyd_holds_nothing_between_answers_and_reconnects(hd):
    """Between two answers, the policy server's connection holds no transaction: it locks
    nothing that a migration needs and keeps no snapshot that VACUUM (PostgreSQL) or a WAL
    checkpoint (SQLite) waits on. A connection the database drops costs one on_error answer;
    the next request reconnects."""
    import sqlite3

    import psycopg
    from sqlalchemy.engine import make_url

    from helpdesk.connectors import policyd as pd

    hd.account("camille", "indigos", "camille@example.org", "--status", "suspended")
    answerer = pd.Answerer(hd.url, on_error="DEFER_IF_PERMIT")
    try:
        assert answerer.decide("camille") == "REJECT compte suspendu"
        assert answerer.decide("nobody") == "DUNNO"
        url = make_url(hd.url)
        if url.get_backend_name() != "postgresql":
            with sqlite3.connect(url.database or "", timeout=5) as other:
                busy, _log, _done = other.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            assert busy == 0  # no reader left in the WAL
            return
        plain = url.set(drivername="postgresql").render_as_string(hide_password=False)
        with psycopg.connect(plain, autocommit=True) as other:
            sessions = other.execute(
                "SELECT pid, state, backend_xmin FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            ).fetchall()
            assert sessions and all(state == "idle" for _p, state, _x in sessions), sessions
            assert all(xmin is None for _p, _s, xmin in sessions), sessions
            with other.transaction():
                other.execute("SET LOCAL lock_timeout = '5s'")
                other.execute("LOCK TABLE account, mailblock IN ACCESS EXCLUSIVE MODE")
            for pid, _state, _xmin in sessions:
                other.execute("SELECT pg_terminate_backend(%s)", (pid,))
        assert answerer.decide("camille").startswith("DEFER_IF_PERMIT")  # the dropped one
        assert answerer.decide("camille") == "REJECT compte suspendu"  # reconnected
    finally:
        answerer.close()


@servers.needs_dovecot
def test_sessions_are_closed_through_the_doveadm_http_api(hd):
    with servers.dovecot({"camille": "imap-pass"}) as mail:
        configure(hd, mail.api_toml(policies='["indigos"]'))
        hd.now = NOW
        hd.account("camille", "indigos", "camille@example.org")
        assert hd.ok("connectors", "check")["connectors"][0]["ok"]
        imap = imaplib.IMAP4("127.0.0.1", mail.imap_port)
        imap.login("camille", "imap-pass")
        assert imap.noop()[0] == "OK"
        tid = hd.open(
            "abuse",
            "indigos",
            "camille",
            "cert@example.net",
            "category=security",
            "urgent=yes",
            as_="bob",
        )["id"]
        hd.act(tid, "suspend", "--note", "account sending spam", as_="bob")
        run = hd.ok("actions", "run")
        assert [e["kind"] for e in run["done"]] == ["revoke-sessions"]
        with pytest.raises((imaplib.IMAP4.abort, OSError, EOFError)):
            for _ in range(20):
                imap.noop()
                time.sleep(0.1)
        # Nobody left to kick: kicking again is done, not an error (idempotent).
        from helpdesk.base import config
        from helpdesk import connectors

        conn = connectors.by_name(
            config.parse(mail.api_toml(policies='["indigos"]')), "mailbox-api"
        )
        assert "nobody to kick" in conn.run("revoke-sessions", "camille", {})


async def test_policyd_answers_on_a_unix_socket_for_postfix_only(hd, tmp_path):
    import asyncio
    import stat

    from helpdesk.connectors import policyd as pd

    hd.account("camille", "indigos", "camille@example.org", "--status", "suspended")
    path = tmp_path / "policy.sock"
    server = await pd.start(hd.url, ("unix", str(path)))
    try:
        assert stat.S_IMODE(path.stat().st_mode) == 0o660  # Postfix's group, nobody else
        reader, writer = await asyncio.open_unix_connection(str(path))
        writer.write(b"request=smtpd_access_policy\nprotocol_state=RCPT\nsasl_username=camille\n\n")
        await writer.drain()
        answer = await reader.readuntil(b"\n\n")
        assert answer == b"action=REJECT compte suspendu\n\n"
        writer.close()
    finally:
        server.close()
        await server.wait_closed()
