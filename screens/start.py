"""Opening the TUI for ``helpdesk`` / ``helpdesk demo``: the service API's ``Backend`` in
this process, then the app. The screens call it from Textual's thread workers; SQLite and
the PostgreSQL driver let go of the interpreter lock while a query runs, so a long count
or search does not hold up keys and painting."""

from __future__ import annotations

import sys
import threading

from helpdesk.base.i18n import _


class DeferredBackend:
    """The service API's ``Backend``, built at its first use. The first use is the dashboard's
    first read, a thread worker started once the dashboard is painted: the database layer
    (SQLAlchemy, SQLModel, the core) loads then, in that thread, and the first screen is
    on the terminal without waiting for it. Until then ``info`` is None, as a ``Backend``'s
    is before ``load_info``; everything else is the ``Backend``'s own attribute."""

    def __init__(self, url: str | None, login: str | None):
        self._args = (url, login)
        self._built = None
        self._building = threading.Lock()

    def _backend(self):
        if self._built is None:
            with self._building:
                if self._built is None:
                    from helpdesk.tui_api.backend import Backend

                    self._built = Backend(*self._args)
        return self._built

    @property
    def info(self):
        return self._built.info if self._built is not None else None

    def close(self) -> None:
        if self._built is not None:
            self._built.close()

    def __getattr__(self, name: str):
        return getattr(self._backend(), name)


def open_backend(db: str | None, user: str | None) -> DeferredBackend:
    """The backend the app talks to, in this process (``DeferredBackend``). Opened before
    the app starts any thread (see ``one_malloc_arena``)."""
    one_malloc_arena()
    return DeferredBackend(db, user)


M_ARENA_MAX = -8  # glibc's malloc.h


def one_malloc_arena() -> None:
    """Let every thread of this process allocate from one glibc malloc arena.

    By default glibc gives each new thread an arena of its own (up to 8 per processor),
    and what a thread frees stays in its arena. The screens read in thread workers, a new
    thread each time, and SQLite's full-text searches allocate megabytes in them: on the
    1,000,000-ticket database the peak memory of a session was 147 MiB with an arena per
    thread, 109 MiB with one (benchmarks/tui_bench.py), keys and searches no slower, since
    the interpreter lock already takes the threads one at a time. Elsewhere than glibc
    (no ``mallopt``), nothing changes."""
    import ctypes

    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt(M_ARENA_MAX, 1)


def _demo_database(user: str | None) -> tuple[str, str | None]:
    from sqlmodel import select

    from helpdesk.storage import db
    from helpdesk.training import demo
    from helpdesk.storage.models import Volunteer

    tty = sys.stderr.isatty()
    shown = [False]

    def progress(done: int, total: int) -> None:
        # A counter on one line while the tickets are walked through the engine.
        if not shown[0]:
            sys.stderr.write(_("Building a demo database…") + ("" if tty else "\n"))
            shown[0] = True
        if tty:
            sys.stderr.write(
                "\r\x1b[K"
                + _("Building a demo database… {done}/{total} tickets").format(
                    done=done, total=total
                )
            )
            sys.stderr.flush()

    url, summary = demo.demo_database(progress=progress)
    if shown[0] and tty:
        sys.stderr.write("\n")
    sys.stderr.flush()
    if not user:
        with db.read_session(url) as s:
            people = list(
                s.exec(select(Volunteer).where(Volunteer.active).order_by(Volunteer.login))
            )
        ranked = sorted(
            people, key=lambda v: {"trainer": 0, "techadmin": 1, "oncall": 2}.get(v.role, 3)
        )
        user = ranked[0].login if ranked else None
    return url, user


def run(
    db: str | None = None, user: str | None = None, demo: bool = False, training: bool = False
) -> int:
    """Open the TUI; returns the exit code."""
    if demo:
        db, user = _demo_database(user)
    backend = open_backend(db, user)
    try:
        from screens.app import HelpdeskApp

        app = HelpdeskApp(backend)
        app.run()
    finally:
        backend.close()
    return app.return_code or 0
