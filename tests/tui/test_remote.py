"""The backend in a process of its own (``screens.remote``), as ``helpdesk`` runs it: the
app's process never loads the database layer, answers and errors cross whole, calls from
many threads get their own answers, the clocks agree, and a backend process that stops
says why and is started again."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from helpdesk.base import clock
from helpdesk.storage import db
from helpdesk.base.errors import BadInput, Conflict, NotFound, Refused
from helpdesk.storage.filters import TicketFilter
from helpdesk.storage.models import Ticket
from helpdesk.tui_api.views import QUEUES, ClockMoved
from helpdesk.tui_api.backend import Backend
from screens.remote import BackendError, BackendGone, RemoteBackend
from tests.conftest import ROOT


@pytest.fixture
def both(db_url):
    local, remote = Backend(db_url, "alice"), RemoteBackend(db_url, "alice")
    yield local, remote
    remote.close()
    local.close()


def test_the_apps_process_never_loads_the_database_layer(db_url, cli_env):
    """Everything the app imports, and every answer it unpickles, leaves SQLAlchemy,
    SQLModel and pydantic to the backend process."""
    code = f"""
import sys
from helpdesk.base import clock
clock.set_now("2026-03-02T11:00:00Z")
import screens.start, screens.app, screens.dashboard, screens.queue, screens.ticket, screens.ticket_list
import screens.modals, screens.commands, screens.training, screens.keybar
from screens.remote import RemoteBackend
from helpdesk.storage.filters import TicketFilter
b = RemoteBackend({db_url!r}, "alice")
b.load_info(); b.dashboard(); flt = TicketFilter(queue="abuse")
rows = b.page(flt, "due", 0, 10); b.count(flt); b.count(flt.with_(text="spam"))
b.ticket(rows[0].id); b.preview(rows[0].id, "contact", {{"note": "x"}}, None); b.find("1")
try:
    b.ticket(999999)
except Exception as exc:
    print(type(exc).__name__)
b.close()
print(sorted(m for m in sys.modules if m.split(".")[0] in ("sqlalchemy", "sqlmodel", "pydantic", "psycopg", "textual_dev")))
"""
    p = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=cli_env,
        timeout=60,
    )
    assert p.returncode == 0, p.stderr[-3000:]
    assert p.stdout.split() == ["NotFound", "[]"], p.stdout + p.stderr[-2000:]


def test_answers_are_the_in_process_backends(both):
    local, remote = both
    assert remote.load_info() == local.load_info()
    assert remote.info.actor.login == "alice" and remote.url == local.url
    assert remote.dashboard() == local.dashboard()
    for flt in [TicketFilter(queue=q) for q in QUEUES] + [
        TicketFilter(text="password"),
        TicketFilter(kind="all", assignee="-"),
    ]:
        assert remote.count(flt) == local.count(flt)
        for order in ("due", "age", "state"):
            assert remote.page(flt, order, 0, 7) == local.page(flt, order, 0, 7)
    assert remote.find("mot de passe") == local.find("mot de passe")
    first = local.page(TicketFilter(queue="abuse"), "due", 0, 1)[0]
    assert remote.ticket_at_once(first.id) == local.ticket_at_once(first.id)
    assert remote.scenarios() == local.scenarios()


def test_errors_cross_with_what_the_screens_show(both):
    local, remote = both
    local.load_info(), remote.load_info()
    with pytest.raises(NotFound, match="no ticket #999999"):
        remote.ticket(999999)
    # A step the policy blocks: the same rule, reason, citation and article text.
    view = local.ticket(2)
    blocked = next(a for a in view["actions"] if not a["allowed"] and a.get("citation"))
    with pytest.raises(Refused) as here:
        local.preview(2, blocked["key"], {}, view["version"])
    with pytest.raises(Refused) as there:
        remote.preview(2, blocked["key"], {}, view["version"])
    assert type(there.value) is type(here.value)
    assert vars(there.value) == vars(here.value) and str(there.value) == str(here.value)
    # Someone changed the ticket since it was read: who and how, as in this process.
    with pytest.raises(Conflict) as conflict:
        remote.apply(2, "confirm", {}, view["version"] - 1)
    assert conflict.value.rule == "conflict" and conflict.value.state == view["state"]
    # And a refusal travels to the backend too (the training feedback takes one).
    assert remote.training_feedback(2, blocked["key"], there.value) is None
    # An unexpected error keeps its name and where it was raised.
    with pytest.raises(BackendError) as unexpected:
        remote.count("not a filter")  # type: ignore[arg-type]
    assert type(unexpected.value).__name__ == "AttributeError"
    assert "search.py" in unexpected.value.remote_traceback
    with pytest.raises(BadInput, match="no backend call"):
        remote._call("__init__", None, None)


def test_calls_from_many_threads_get_their_own_answers(both):
    local, remote = both
    flts = [TicketFilter(queue=q, kind=k) for q in QUEUES for k in ("active", "done", "all")]
    flts += [TicketFilter(text=t) for t in ("spam", "password", "account", "zzzz")]
    expected = [(local.count(f), local.page(f, "age", 0, 5)) for f in flts] * 6
    with ThreadPoolExecutor(12) as pool:
        got = list(pool.map(lambda f: (remote.count(f), remote.page(f, "age", 0, 5)), flts * 6))
    assert got == expected


def test_the_clock_and_the_language_of_the_app_are_the_backends(db_url):
    clock.set_now("2026-04-01T09:30:00Z")
    remote = RemoteBackend(db_url, "alice")
    try:
        assert remote.dashboard().now == clock.parse_datetime("2026-04-01T09:30:00Z")
        with pytest.raises(NotFound, match="no ticket"):  # English, as this process speaks
            remote.ticket(999999)
    finally:
        remote.close()


def test_a_training_clock_is_the_apps_clock_too(training_url):
    url, _tid = training_url
    assert clock.fixed_at() is None
    remote = RemoteBackend(url, "alice")
    try:
        info = remote.load_info()
        assert info.training
        start = clock.fixed_at()  # adopted by the backend, copied with its answer
        assert start is not None and remote.dashboard().now == start
        move = remote.move_clock("+1d")
        assert isinstance(move, ClockMoved) and move.before == start
        assert (
            clock.fixed_at() == move.after == start + (move.after - move.before)
            and move.after > start
        )
    finally:
        remote.close()
        clock.set_now(None)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_a_backend_process_that_dies_is_started_again(db_url):
    remote = RemoteBackend(db_url, "alice")
    try:
        remote.load_info()
        pid = remote.pid
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while remote.pid == pid and time.monotonic() < deadline:
            time.sleep(0.01)
        assert remote.pid is None  # noticed
        # The next call starts another, which knows the volunteer again: the claim is hers.
        holder, until = remote.claim(3)
        assert holder is None and until is not None and remote.pid not in (None, pid)
        with db.read_session(db_url) as s:
            assert s.get(Ticket, 3).claimed_by == "alice"
    finally:
        remote.close()


def test_a_backend_process_that_cannot_start_says_why(db_url, tmp_path):
    fake = tmp_path / "python"
    fake.write_text("#!/bin/sh\necho 'ModuleNotFoundError: No module named sqlmodel' >&2\nexit 3\n")
    fake.chmod(0o755)
    remote = RemoteBackend(db_url, "alice", python=str(fake))
    try:
        with pytest.raises(BackendGone, match="No module named sqlmodel"):
            remote.load_info()
    finally:
        remote.close()


def test_closing_ends_the_backend_process(db_url):
    remote = RemoteBackend(db_url, "alice")
    remote.load_info()
    pid = remote.pid
    remote.close()
    assert not _alive(pid)
    with pytest.raises(BackendGone):
        remote.dashboard()


def test_a_call_still_waiting_when_the_app_closes_fails_and_never_hangs(db_url, tmp_path):
    """A backend that never answers (this one reads its calls until its pipe closes): at
    close, the call waiting on it fails with BackendGone; no thread is left waiting."""
    mute = tmp_path / "python"
    mute.write_text("#!/bin/sh\ncat > /dev/null\n")
    mute.chmod(0o755)
    remote = RemoteBackend(db_url, "alice", python=str(mute))
    with ThreadPoolExecutor(1) as pool:
        waiting = pool.submit(remote.dashboard)
        time.sleep(0.2)
        assert not waiting.done()
        remote.close()
        with pytest.raises(BackendGone):
            waiting.result(timeout=10)
