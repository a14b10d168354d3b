"""Opening the TUI for ``helpdesk`` / ``helpdesk demo``: the backend process first, then
Textual, so the two load side by side (``screens.remote``)."""

from __future__ import annotations

import sys

from helpdesk.base.i18n import _


def open_backend(db: str | None, user: str | None):
    """The backend the app talks to: a process of its own (``RemoteBackend``), or this
    process's ``Backend`` where no process can be started."""
    from screens.remote import RemoteBackend

    try:
        return RemoteBackend(db, user)
    except OSError:  # no subprocess here: the database layer loads in this process
        from helpdesk.tui_api.backend import Backend

        return Backend(db, user)


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
