"""Fixtures for the TUI tests: a seeded database copied per test, a fixed clock, an app
factory (its backend in a process of its own, as in use) with cursor blink off and no user keymap, and ``settle`` to wait for workers
(never sleeping for a guessed time). With ``HELPDESK_TEST_PG`` set, the seeded databases
are PostgreSQL databases, copied per test from a template database."""

from __future__ import annotations

from pathlib import Path

import pytest
import textual._wait
from textual.worker import WorkerCancelled, WorkerState

from helpdesk.base import clock
from helpdesk.storage import db
from helpdesk.storage.sqlite_copy import copy_sqlite
from helpdesk.base.i18n import set_lang
from tests.conftest import PG, _pg_create, _pg_drop
from tests.tui import seed

# Pilot (each key pressed, each pause()) waits until the process is idle: Textual sleeps in
# slices of 20 ms and stops at the first slice in which the process used under 1/20 of it.
# Thousands of such waits in the TUI tests were mostly sleeping; slices of 5 ms keep the
# same test (under 1/20 of the slice busy: the app has nothing left to do) at a quarter of
# the idle time. textual is pinned in pyproject.toml; its wait_for_idle reads both values
# each time it runs.
textual._wait.SLEEP_GRANULARITY = 1 / 200
textual._wait.SLEEP_IDLE = textual._wait.SLEEP_GRANULARITY / 20.0


@pytest.fixture(scope="session")
def tui_templates(tmp_path_factory):
    """The seeded databases by name: SQLite files, or PostgreSQL URLs."""
    folder = tmp_path_factory.mktemp("tui-templates")
    out = {}
    for name, hostile in (("plain", False), ("hostile", True)):
        url = _pg_create() if PG else f"sqlite:///{folder / f'{name}.db'}"
        seed.build(url, hostile=hostile)
        db._engines.pop(url).dispose()
        out[name] = url if PG else folder / f"{name}.db"
    clock.set_now(None)
    yield out
    if PG:
        for url in out.values():
            _pg_drop(url)


@pytest.fixture(autouse=True)
def _fixed_clock_and_lang():
    clock.set_now(seed.LATER)
    set_lang("en")
    yield
    clock.set_now(None)
    set_lang(None)


def _db(tui_templates, tmp_path, name: str) -> str:
    if PG:
        from sqlalchemy.engine import make_url

        url = _pg_create(make_url(tui_templates[name]).database)
        yield url
        _pg_drop(url)
        return
    path = tmp_path / "helpdesk.db"
    copy_sqlite(tui_templates[name], path)
    url = f"sqlite:///{path}"
    yield url
    engine = db._engines.pop(url, None)
    if engine is not None:
        engine.dispose()


@pytest.fixture
def db_url(tui_templates, tmp_path):
    yield from _db(tui_templates, tmp_path, "plain")


@pytest.fixture
def hostile_url(tui_templates, tmp_path):
    yield from _db(tui_templates, tmp_path, "hostile")


SCENARIO = "wigii-closure-request"


@pytest.fixture
def training_url(tmp_path):
    """A training database at the start of ``SCENARIO``, and its main ticket."""
    from helpdesk.training import sandbox

    if PG:
        url = _pg_create()
    else:
        url = f"sqlite:///{tmp_path / 'training.db'}"
    seeded = sandbox.seed(url, SCENARIO)
    clock.set_now(None)  # the app adopts the training clock itself
    yield (
        url,
        seeded.tickets["main"] if "main" in seeded.tickets else next(iter(seeded.tickets.values())),
    )
    engine = db._engines.pop(url, None)
    if engine is not None:
        engine.dispose()
    if PG:
        _pg_drop(url)


@pytest.fixture
def make_app(tmp_path):
    """Builds the app as ``helpdesk`` does (``screens.start``): the backend in this process."""
    from screens.app import HelpdeskApp
    from screens.start import open_backend

    opened = []

    def make(
        url: str,
        user: str | None = "alice",
        *,
        live: bool = False,
        keymap: Path | None = None,
        **kw,
    ):
        backend = open_backend(url, user)
        opened.append(backend)
        return HelpdeskApp(
            backend,
            live=live,
            cursor_blink=False,
            keymap_path=keymap or Path("/nonexistent/helpdesk/keymap.toml"),
            **kw,
        )

    yield make
    for backend in opened:
        backend.close()


async def settle(pilot, rounds: int = 100) -> None:
    """Wait until no worker but the live watcher is pending or running, and the screen
    has processed what they sent back."""
    app = pilot.app
    for _ in range(rounds):
        # The screen and its widgets have handled what was sent to them (pause(0) waits for
        # their message queues, then repaints); only the last look, below, also waits for the
        # process to go idle (Textual's heuristic, which sleeps a slice at least).
        await pilot.pause(0)
        busy = [
            w
            for w in app.workers
            if w.group != "poll" and w.state in (WorkerState.PENDING, WorkerState.RUNNING)
        ]
        if not busy:
            await pilot.pause()
            busy = [
                w
                for w in app.workers
                if w.group != "poll" and w.state in (WorkerState.PENDING, WorkerState.RUNNING)
            ]
            if not busy:
                return
        # Wait for the running ones (a pending one cannot be waited for: look again); one
        # cancelled meanwhile (an exclusive worker replaced by a newer one) has finished too.
        running = [w for w in busy if w.state == WorkerState.RUNNING]
        if not running:
            await pilot.pause()
            continue
        try:
            await app.workers.wait_for_complete(running)
        except WorkerCancelled:
            pass
    raise AssertionError("workers did not settle")


async def press(pilot, *keys: str) -> None:
    """Press keys one at a time, letting workers finish after each."""
    for key in keys:
        await pilot.press(key)
        await settle(pilot)


async def type_text(pilot, text: str) -> None:
    await pilot.press(*[("space" if c == " " else c) for c in text])
    await settle(pilot)


def indigos_mail_alert(url: str) -> int:
    """A new Indigos mail-reputation alert on cmartin (art. 7: sending, then the account, may
    be suspended; Le PIC's text, the seed's ticket 4, gives neither). Its id."""
    from helpdesk.rules.context import Actor
    from helpdesk.service import api
    from helpdesk.storage import db

    with db.write_session(url) as s:
        return api.open_ticket(
            s,
            queue="mail-reputation",
            policy="indigos",
            actor=Actor("alice", "oncall"),
            account_login="cmartin",
            subject="Bounce ratio 0.45 on 300 messages",
            fields={
                "signal": "bounces",
                "messages": "300",
                "bounces": "135",
                "bounce-ratio": "0.45",
            },
        ).ticket.id
