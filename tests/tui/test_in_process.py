"""The TUI calls the service API in its own process (``screens.start``): ``helpdesk`` on a
terminal is one process; calls from many thread workers at once get their own answers;
a training database's clock is the app's clock."""

from __future__ import annotations

import os
import pty
import select
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from helpdesk.base import clock
from helpdesk.storage.filters import TicketFilter
from helpdesk.tui_api.views import QUEUES, ClockMoved
from screens.start import open_backend
from tests.conftest import ROOT


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            pass
    return found


def test_helpdesk_on_a_terminal_is_one_process(db_url, cli_env):
    """The dashboard painted, with its counts: no other process was started for it."""
    env = dict(cli_env, TERM="xterm-256color", TEXTUAL_ANIMATIONS="none")
    env.pop("TEXTUAL_DRIVER", None)
    cmd = [sys.executable, "-m", "helpdesk", "--db", db_url, "--as", "alice", "--lang", "en"]
    pid, fd = pty.fork()
    if pid == 0:  # pragma: no cover - the child: the pty is its terminal
        os.chdir(ROOT)
        os.execve(sys.executable, cmd, env)
    try:
        seen, deadline = b"", time.monotonic() + 60
        while b"Dashboard" not in seen and time.monotonic() < deadline:
            if select.select([fd], [], [], 0.1)[0]:
                try:
                    seen += os.read(fd, 1 << 16)
                except OSError:
                    break
        assert b"Dashboard" in seen, seen[-2000:]
        time.sleep(0.5)  # the counts' worker has run
        assert _children(pid) == []
        os.write(fd, b"\x11")  # ctrl+q
        end = time.monotonic() + 20
        while time.monotonic() < end:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                assert os.waitstatus_to_exitcode(status) == 0
                pid = 0
                break
            if select.select([fd], [], [], 0.1)[0]:
                try:
                    os.read(fd, 1 << 16)
                except OSError:
                    pass
        assert pid == 0, "ctrl+q did not end the helpdesk"
    finally:
        if pid:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
        os.close(fd)


def test_calls_from_many_threads_get_their_own_answers(db_url):
    backend = open_backend(db_url, "alice")
    try:
        backend.load_info()
        flts = [TicketFilter(queue=q, kind=k) for q in QUEUES for k in ("active", "done", "all")]
        flts += [TicketFilter(text=t) for t in ("spam", "password", "account", "zzzz")]
        expected = [(backend.count(f), backend.page(f, "age", 0, 5)) for f in flts] * 6
        assert any(n for n, _rows in expected)
        with ThreadPoolExecutor(12) as pool:
            got = list(
                pool.map(lambda f: (backend.count(f), backend.page(f, "age", 0, 5)), flts * 6)
            )
        assert got == expected
    finally:
        backend.close()


def test_a_training_clock_is_the_apps_clock(training_url):
    url, _tid = training_url
    assert clock.fixed_at() is None
    backend = open_backend(url, "alice")
    try:
        info = backend.load_info()
        assert info.training
        start = clock.fixed_at()  # adopted from the training database
        assert start is not None and backend.dashboard().now == start
        move = backend.move_clock("+1d")
        assert isinstance(move, ClockMoved) and move.before == start
        assert clock.fixed_at() == move.after and move.after > start
    finally:
        backend.close()
        clock.set_now(None)


def test_the_app_keeps_few_small_connections(db_url, tmp_path):
    """One process per volunteer connected: after reads from many threads at once, one
    connection stays open, and on SQLite its page cache is small; a command's engine keeps
    the defaults."""
    from sqlalchemy import text

    from helpdesk.storage import db

    backend = open_backend(db_url, "alice")
    try:
        backend.load_info()
        flts = [TicketFilter(queue=q) for q in QUEUES] * 4
        with ThreadPoolExecutor(8) as pool:
            assert all(n >= 0 for n in pool.map(backend.count, flts))
        engine = db.get_engine(db_url)
        assert engine.pool.checkedin() <= 1 and engine.pool.checkedout() == 0
        if db.sqlite_path(db_url) is not None:
            with engine.connect() as c:
                assert c.execute(text("PRAGMA cache_size")).scalar() == -db.LEAN_CACHE_KIB
            other = f"sqlite:///{tmp_path / 'command.db'}"
            with db.get_engine(other).connect() as c:
                assert c.execute(text("PRAGMA cache_size")).scalar() == -2000  # SQLite's own
    finally:
        backend.close()


ORM = (
    "sqlmodel",
    "pydantic",
    "sqlalchemy.orm",
    "helpdesk.storage.models",
    "helpdesk.workflow.engine",
)


def test_the_first_screens_load_no_orm(db_url, cli_env):
    """Who is acting, the dashboard, a queue's rows, a search and the palette read with Core:
    the ORM, the models and the engine load when a ticket is first opened (the start of the
    app, benchmarks/tui_bench.py). A fresh interpreter: what this one imported says nothing."""
    import subprocess

    code = f"""
import sys
from helpdesk.storage.filters import TicketFilter
from helpdesk.tui_api.backend import Backend
b = Backend({db_url!r}, "alice")
b.load_info()
b.dashboard()
for flt in (TicketFilter(queue="password-reset"), TicketFilter(text="spam")):
    assert b.count(flt) >= 0
    rows = b.page(flt, "due", 0, 20)
b.find("spam")
b.changes()
print(sorted(m for m in {ORM!r} if m in sys.modules))
b.ticket(rows[0].id if rows else 1)
print(sorted(m for m in {ORM!r} if m in sys.modules))
"""
    out = subprocess.run(
        [sys.executable, "-c", code], env=cli_env, cwd=ROOT, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    before, after = out.stdout.splitlines()
    assert before == "[]"
    assert "helpdesk.storage.models" in after
