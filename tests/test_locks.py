"""Several runs, or several hosts, on one database: ``sweep``, ``outbox send``, ``actions run``
and each ingest source hold a lock (a PostgreSQL advisory lock, or a file lock beside an
SQLite database), so overlapping runs never do the same work twice.

The runs are separate processes of the real CLI, as two hosts would start them. With
``HELPDESK_TEST_PG`` set they share one PostgreSQL database (the two-front-ends case); on
SQLite the same tests show the file lock. Overlap is made certain, not hoped for: a server
the first run talks to holds its answer until the second run has come and gone.
"""

from __future__ import annotations

import asyncio
import email
import os
import socket
import stat
import subprocess
import sys
import threading
import time
from collections import Counter
from email import policy as email_policy
from pathlib import Path

import pytest
from sqlmodel import select

from helpdesk.storage import db, locks
from helpdesk.storage.models import Event, Outbox, ServiceAction
from tests.conftest import PG, Result
from tests.test_delivery import SMTPServer

NOW = "2026-11-23T10:00:00+01:00"


def start(hd, *args, env: dict | None = None) -> subprocess.Popen:
    """The real CLI, as a process of its own (another cron job, another host)."""
    cmd = [sys.executable, "-m", "helpdesk", *hd.argv(list(args), None, None, True)]
    return subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**hd.env, **(env or {})},
    )


def finish(proc: subprocess.Popen, timeout: float = 120) -> Result:
    out, err = proc.communicate(timeout=timeout)
    assert "Traceback" not in err, err
    return Result(proc.returncode, out, err)


def wait_for(condition, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


# --- outbox send ----------------------------------------------------------------------------


class StallingSMTP(SMTPServer):
    """A real SMTP server (aiosmtpd) that holds its answer to the first DATA until told."""

    def __init__(self, port: int):
        super().__init__(port)
        self.release = threading.Event()
        self.stalled = threading.Event()
        handler = self.handler
        plain = handler.handle_DATA

        async def handle_DATA(server, session, envelope):
            if not self.stalled.is_set():
                self.stalled.set()
                for _ in range(1200):  # a minute at most
                    if self.release.is_set():
                        break
                    await asyncio.sleep(0.05)
            return await plain(server, session, envelope)

        handler.handle_DATA = handle_DATA


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def five_mails(hdi):
    """Five Wigii closure requests: five confirmation mails due in the outbox."""
    hd = hdi  # set up in-process; the runs under test are processes of their own
    hd.now = NOW
    for n in range(5):
        login = f"user{n}"
        hd.account(login, "wigii", f"{login}@example.org")
        t = hd.open(
            "closure",
            "wigii",
            login,
            f"{login}@example.org",
            "reason=request",
            "system=https://x.wigii.org",
            "day=2027-04-01",
        )
        assert t["mails_queued"], t
    return hd


def test_two_outbox_sends_at_once_deliver_each_mail_once(five_mails):
    hd = five_mails
    server = StallingSMTP(free_port()).start()
    try:
        env = {"HELPDESK_SMTP_HOST": "127.0.0.1", "HELPDESK_SMTP_PORT": str(server.port)}
        first = start(hd, "--now", NOW, "outbox", "send", env=env)
        # The first run holds the lock and waits in the middle of its first mail...
        wait_for(server.stalled.is_set, "the first run's first mail")
        # ...while the second (the next timer, or the other host) comes and goes.
        second = finish(start(hd, "--now", NOW, "outbox", "send", env=env))
        assert second.code == 0, second.err
        assert second.json == {"skipped": "locked", "lock": "outbox-send", "what": "outbox send"}
        text = hd.run("outbox", "send", "--lang", "en", json_out=False, now=NOW)  # in words
        assert text.code == 0 and "another run holds its lock" in text.out, text
        server.release.set()
        done = finish(first)
    finally:
        server.release.set()
        server.stop()
    assert done.code == 0, done.out + done.err
    assert len(done.json["sent"]) == 5
    ids = Counter(
        email.message_from_bytes(m["raw"], policy=email_policy.default)["Message-ID"]
        for m in server.messages
    )
    assert len(ids) == 5 and set(ids.values()) == {1}, ids  # five mails, none twice
    with db.read_session(hd.url) as s:
        assert {r.status for r in s.exec(select(Outbox))} == {"sent"}
        sent_events = [e for e in s.exec(select(Event)) if e.action == "mail-sent"]
    assert len(sent_events) == 5


# --- sweep and actions run ------------------------------------------------------------------


class StallingLDAP:
    """A TCP server where the directory should be: it accepts the connection and says
    nothing until released, then closes it (the action is retried later)."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.accepted: list[socket.socket] = []
        self.release = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _addr = self.sock.accept()
            except OSError:
                return
            self.accepted.append(conn)
            threading.Thread(target=self._hold, args=(conn,), daemon=True).start()

    def _hold(self, conn: socket.socket) -> None:
        self.release.wait(60)
        conn.close()

    def stop(self) -> None:
        self.release.set()
        self.sock.close()


def test_two_sweeps_at_once_carry_out_each_action_once(hdi, monkeypatch):
    hd = hdi  # set up in-process; the runs under test are processes of their own
    hd.now = NOW
    directory = StallingLDAP()
    secret = hd.tmp_path / "ldap.secret"
    secret.write_text("never-printed-secret")
    secret.chmod(0o600)
    config = hd.tmp_path / "helpdesk.toml"
    config.write_text(
        f"""
[connectors.directory]
type = "ldap"
policies = ["indigos"]
url = "ldap://127.0.0.1:{directory.port}"
bind_dn = "cn=admin,dc=example,dc=org"
password_file = "{secret}"
base = "ou=users,dc=example,dc=org"
timeout = 60

[connectors.mail]
type = "postfix"
policies = ["indigos"]
"""
    )
    hd.env["HELPDESK_CONFIG"] = str(config)
    monkeypatch.setenv("HELPDESK_CONFIG", str(config))
    try:
        hd.account("camille", "indigos", "camille@example.org")
        tid = hd.open(
            "abuse", "indigos", "camille", "cert@example.net", "category=security", "urgent=yes"
        )["id"]
        view = hd.act(tid, "suspend", "--note", "outgoing port scan, now", as_="bob")
        assert len(view["actions_queued"]) == 2  # lock (directory), suspend-sending (mail)

        later = "2026-11-23T10:05:00+01:00"
        first = start(hd, "--now", later, "sweep")
        wait_for(lambda: directory.accepted, "the first sweep at the directory")
        # A second sweep, and an 'actions run', on the same database meanwhile: both see the
        # work in hand and leave it.
        second = finish(start(hd, "--now", later, "sweep"))
        assert second.code == 0 and second.json["lock"] == "sweep", second
        run = finish(start(hd, "--now", later, "actions", "run"))
        assert run.code == 0 and run.json["lock"] == "actions-run", run
        directory.release.set()
        done = finish(first)
        assert done.code == 0, done.err
    finally:
        directory.stop()
    report = done.json["actions"]
    assert [a["kind"] for a in report["done"]] == ["suspend-sending"]
    assert [a["kind"] for a in report["retried"]] == ["lock"]
    with db.read_session(hd.url) as s:
        rows = {a.kind: a for a in s.exec(select(ServiceAction))}
        outcomes = Counter(
            e.action for e in s.exec(select(Event)) if e.action.startswith("service-action")
        )
    assert rows["lock"].attempts == 1 and rows["suspend-sending"].attempts == 1
    assert sum(outcomes.values()) == 2, outcomes  # one outcome each, nothing done twice
    assert "never-printed-secret" not in done.out + done.err + second.out + run.out


def test_two_sweeps_started_together_take_each_timer_once(hdi):
    """No server to stall: two sweeps started at the same moment on due timers. Whichever
    way they meet, each timer's step is taken once."""
    hd = hdi  # set up in-process; the runs under test are processes of their own
    hd.now = NOW
    for n in range(4):
        login = f"user{n}"
        hd.account(login, "wigii", f"{login}@example.org")
        t = hd.open(
            "closure",
            "wigii",
            login,
            f"{login}@example.org",
            "reason=request",
            "system=https://x.wigii.org",
            "day=2026-12-01",
        )
        hd.act(t["id"], "acknowledge", "--note", "reply of 23 Nov.")
    with db.read_session(hd.url) as s:
        before = len(list(s.exec(select(Event))))
    after = "2026-12-02T10:00:00+01:00"
    procs = [start(hd, "--now", after, "sweep") for _ in range(2)]
    results = [finish(p) for p in procs]
    assert all(r.code == 0 for r in results), [r.err for r in results]
    taken = [t for r in results for t in r.json.get("taken", [])]
    assert len(taken) == len({(t["ticket"], t["action"]) for t in taken}), taken
    with db.read_session(hd.url) as s:
        events = list(s.exec(select(Event)))[before:]
    steps = Counter((e.ticket_id, e.action) for e in events if e.actor == "system")
    assert steps and set(steps.values()) == {1}, steps


# --- the lock itself: another host holds it ---------------------------------------------------


def test_a_lock_held_elsewhere_stops_each_scheduled_command_quietly(hdi, tmp_path):
    """The test process holds each lock, as another host would (a connection or a file
    descriptor of its own): the command says so in one line, does nothing and exits 0; once
    released, the same command runs."""
    hd = hdi
    hd.now = NOW
    maildir = tmp_path / "inbox"
    for sub in ("cur", "new", "tmp"):
        (maildir / sub).mkdir(parents=True)
    (maildir / "new" / "1.eml").write_bytes(
        b"From: Jean <jean@example.org>\r\nTo: contact@wigii.org\r\n"
        b"Subject: question\r\nMessage-ID: <q1@example.org>\r\n\r\nBonjour, une question.\r\n"
    )
    log = tmp_path / "mail.log"
    log.write_text("")
    url = db.resolve_url(hd.url)
    cases = [
        (("sweep",), locks.SWEEP, "sweep"),
        (("outbox", "send"), locks.OUTBOX, "outbox send"),
        (("actions", "run"), locks.ACTIONS, "actions run"),
        (("ingest", "mail", str(maildir)), None, f"ingest mail {maildir}"),
        (("ingest", "postfix", str(log)), None, f"ingest postfix {log}"),
    ]
    from helpdesk.cli.ingest import source_lock

    for args, name, what in cases:
        if name is None:
            name, _what = source_lock(args[1], args[2])
        with locks.hold(url, name):
            r = hd.run(*args, "--lang", "en", json_out=False)
            assert r.code == 0, r
            assert r.out.strip().splitlines() == [
                f"{what}: another run holds its lock (here or on another host); nothing done."
            ], r.out
            assert r.err == ""
            j = hd.run(*args)
            assert j.code == 0 and j.json == {"skipped": "locked", "lock": name, "what": what}
        r = hd.run(*args)
        assert r.code == 0, r
        assert "skipped" not in r.json
    # The mail was read once, after the lock was released: one ticket.
    assert len(hd.ok("ticket", "list")) == 1


def test_each_source_has_its_own_lock(hdi, tmp_path):
    """Reading one mailbox does not stop another from being read meanwhile."""
    hd = hdi
    url = db.resolve_url(hd.url)
    from helpdesk.cli.ingest import source_lock

    a, b = tmp_path / "a", tmp_path / "b"
    for box in (a, b):
        for sub in ("cur", "new", "tmp"):
            (box / sub).mkdir(parents=True)
    with locks.hold(url, source_lock("mail", str(a))[0]):
        assert hd.ok("ingest", "mail", str(a))["skipped"] == "locked"
        assert "skipped" not in hd.ok("ingest", "mail", str(b))
        # The same mailbox named another way is the same source.
        os.chdir(tmp_path)
        try:
            assert hd.ok("ingest", "mail", "a")["skipped"] == "locked"
        finally:
            os.chdir(Path(__file__).parent)
        # Another kind of reading of the same place is another lock.
        assert "skipped" not in hd.ok("ingest", "arf", str(a))


@pytest.mark.skipif(bool(PG), reason="the SQLite file lock; PostgreSQL uses advisory locks")
def test_sqlite_lock_files_sit_beside_the_database_private(hd):
    path = Path(db.sqlite_path(db.resolve_url(hd.url)))
    assert hd.ok("sweep", now=NOW)
    lock = path.with_name(path.name + "-sweep.lock")
    assert lock.is_file()
    assert stat.S_IMODE(lock.stat().st_mode) == 0o600
    # A lock file left by a run that died holds nothing: the lock went with its process.
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            "import os, sys\n"
            "from helpdesk.storage import locks\n"
            "cm = locks.hold(sys.argv[1], 'sweep'); cm.__enter__(); os._exit(0)",
            hd.url,
        ],
        env=hd.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert "skipped" not in hd.ok("sweep", now=NOW)


@pytest.mark.skipif(not PG, reason="PostgreSQL advisory locks (HELPDESK_TEST_PG)")
def test_an_advisory_lock_goes_with_the_connection_of_a_dead_run(hd):
    """A run killed while holding the lock leaves nothing held: the next one runs."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\n"
            "from helpdesk.storage import locks\n"
            "with locks.hold(sys.argv[1], 'sweep'):\n"
            "    print('held', flush=True); time.sleep(120)",
            hd.url,
        ],
        env=hd.env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout.readline().strip() == "held"
        assert hd.ok("sweep", now=NOW)["skipped"] == "locked"
    finally:
        proc.kill()
        proc.wait()
    wait_for(lambda: "skipped" not in hd.ok("sweep", now=NOW), "the lock to go with its run")
