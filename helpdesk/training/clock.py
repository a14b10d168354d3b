"""The clock of a training database, as every command lives at it.

Every CLI command (and the TUI) first asks whether its database is a training database
with a moved clock: one read of ``meta``. This module holds that question alone, so that
asking it imports nothing of the training machinery (scenarios, packs); ``training``
moves the clock and calls :func:`follow`.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from helpdesk.base import clock
from helpdesk.storage import db
from helpdesk.storage.db import sqlite_path  # noqa: F401 - training.clock.sqlite_path

_adopted: str | None = None  # the URL whose training clock this process lives at


def adopt_clock(url: str | None = None) -> datetime | None:
    """Make ``clock.now()`` the training clock of ``url`` if it is a training database with
    a stored clock; returns that moment, or None (nothing changed). One read of ``Meta``;
    never creates a database file, never raises."""
    global _adopted
    url = db.resolve_url(url)
    path = sqlite_path(url)
    if path is not None and not path.is_file():
        return None
    try:
        with db.get_engine(url).connect() as conn:
            rows: dict[str, str] = dict(
                conn.execute(
                    text("SELECT key, value FROM meta WHERE key IN ('training', 'clock')")
                ).all()
            )
    except SQLAlchemyError:
        return None
    if rows.get("training") != "yes" or not rows.get("clock"):
        return None
    try:
        moment = clock.parse_datetime(rows["clock"])
    except clock.BadDate:
        return None
    clock.set_now(moment)
    _adopted = url
    return moment


def follow(url: str, moment: datetime) -> None:
    """A process living at this database's training clock follows its moves."""
    if _adopted == url:
        clock.set_now(moment)


def forget() -> None:
    """Live at the wall clock (or ``HELPDESK_NOW``) again, whatever database was adopted."""
    global _adopted
    _adopted = None
