"""Locks that keep two runs of the same scheduled work apart, on one host or several.

``sweep``, ``outbox send``, ``actions run`` and each ingest source hold a lock while they
work, so that a timer firing while the last run is still going, or two hosts sharing one
PostgreSQL database (two SSH front ends, say), never do the same work twice:

- on PostgreSQL, a session-level advisory lock (``pg_try_advisory_lock``) on a connection
  of its own, held for the run: every host sharing the database sees it, and it goes with
  the connection if the process dies;
- on SQLite, an exclusive ``flock`` on a file beside the database
  (``helpdesk.db-sweep.lock``), which goes with the process too. SQLite is one host's.

A run that finds its lock taken does nothing: :class:`Taken` says which lock.

The row-level leases of the outbox and of the service actions stay: the lock is the
coarse guard around them (a stale lease is judged only by the one run allowed to judge).
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import os
import re
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from helpdesk.base.errors import HelpdeskError
from helpdesk.storage import db

#: The locks of the scheduled commands; an ingest source's is ``source_lock(kind, where)``.
SWEEP = "sweep"
OUTBOX = "outbox-send"
ACTIONS = "actions-run"
_WHAT = {SWEEP: "sweep", OUTBOX: "outbox send", ACTIONS: "actions run"}


class Taken(HelpdeskError):
    """Another run (here or on another host) holds the lock: this one did nothing. Not a
    failure (exit code 0): the run that holds it does the work. ``what`` is the work as a
    person reads it (``sweep``, ``ingest mail /var/mail/helpdesk``)."""

    exit_code = 0

    def __init__(self, name: str, what: str = ""):
        super().__init__(name)
        self.name = name
        self.what = what or _WHAT.get(name, name)

    def __reduce__(self):  # pickled whole: it crosses from ingest postfix's database side
        return type(self), (self.name, self.what)

    def as_dict(self) -> dict:
        return {"skipped": "locked", "lock": self.name, "what": self.what}


def source_lock(kind: str, where: str) -> str:
    """The lock of one ingest source: its kind and its place (a path, an IMAP URL)."""
    return (
        f"ingest-{kind}-"
        + hashlib.sha256(where.encode("utf-8", "surrogateescape")).hexdigest()[:16]
    )


def key(name: str) -> int:
    """The advisory lock key of ``name``: a signed 64-bit number, the same on every host."""
    digest = hashlib.sha256(f"helpdesk:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def lock_file(url: str, name: str) -> Path | None:
    """The file an SQLite database's lock ``name`` is taken on (None: not an SQLite file)."""
    path = db.sqlite_path(url)
    if path is None or str(path) == ":memory:":
        return None
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", name)
    return path.with_name(f"{path.name}-{safe}.lock")


@contextmanager
def hold(url: str | None, name: str, what: str = "") -> Iterator[None]:
    """Hold the lock ``name`` of the database at ``url`` for the block, or raise
    :class:`Taken` at once (never wait: the run that holds it does the work)."""
    url = db.resolve_url(url)
    if db.sqlite_path(url) is None:
        with _advisory(url, name, what):
            yield
        return
    path = lock_file(url, name)
    if path is None:  # an in-memory database is one process's
        yield
        return
    with _flock(path, name, what):
        yield


@contextmanager
def _flock(path: Path, name: str, what: str) -> Iterator[None]:
    from helpdesk.base.files import make_private_dir

    make_private_dir(path.parent)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise Taken(name, what) from None
            raise
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


@contextmanager
def _advisory(url: str, name: str, what: str) -> Iterator[None]:
    number = key(name)
    # A connection of its own, outside the pool: the lock lives exactly as long as it, and
    # a pooled connection (perhaps inherited across a fork) never carries it elsewhere.
    engine = create_engine(db.get_engine(url).url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    try:
        with _locked(engine, number, name, what):
            yield
    finally:
        engine.dispose()


@contextmanager
def _locked(engine, number: int, name: str, what: str) -> Iterator[None]:
    with engine.connect() as conn:
        got = conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": number}).scalar()
        if not got:
            raise Taken(name, what)
        try:
            yield
        finally:
            # Released, then the connection closed; one that broke has released it already.
            try:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": number})
            except Exception:  # noqa: BLE001 - the lock went with the broken connection
                conn.invalidate()
