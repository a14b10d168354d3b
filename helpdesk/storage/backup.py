"""``helpdesk backup PATH`` and ``helpdesk restore PATH``: consistent copies.

SQLite: the online backup API, which copies a consistent snapshot while others keep
working. PostgreSQL: ``pg_dump`` in its custom format, restored with ``pg_restore``.
A backup is recorded in the audit trail before the copy, so the copy holds its own record.
"""

from __future__ import annotations

import glob
import os
import shutil
import sqlite3
import subprocess
from pathlib import Path

from sqlalchemy.engine import make_url

from helpdesk.storage.sqlite_copy import copy_sqlite
from helpdesk.storage import audit, db
from helpdesk.base.errors import BadInput
from helpdesk.base.i18n import _


def _pg_tool(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if candidates:
        return candidates[-1]
    raise BadInput(
        _("{tool} is needed to back up a PostgreSQL database (Debian: postgresql-client)").format(
            tool=name
        )
    )


def _libpq(url: str) -> tuple[str, dict]:
    u = make_url(url)
    env = dict(os.environ)
    if u.password:
        env["PGPASSWORD"] = u.password
    plain = u.set(drivername="postgresql", password=None).render_as_string(hide_password=False)
    return plain, env


def _sqlite_path(url: str) -> Path:
    path = make_url(url).database
    if not path or path == ":memory:":
        raise BadInput(_("an in-memory database cannot be backed up"))
    return Path(path)


def backup(url: str, target: str, *, actor: str = "system") -> dict:
    url = db.resolve_url(url)
    dest = Path(target).expanduser()
    if dest.exists():
        raise BadInput(_("{path} exists already: choose a new file").format(path=dest))
    dest.parent.mkdir(parents=True, exist_ok=True)
    with db.write_session(url) as s:
        audit.record(s, actor=actor, action="backup", data={"target": dest.name})
    backend = make_url(url).get_backend_name()
    if backend == "sqlite":
        copy_sqlite(_sqlite_path(url), dest)
    elif backend == "postgresql":
        plain, env = _libpq(url)
        p = subprocess.run(
            [_pg_tool("pg_dump"), "--format=custom", "--no-owner", f"--file={dest}", plain],
            capture_output=True,
            text=True,
            env=env,
        )
        if p.returncode != 0:
            raise BadInput(_("pg_dump failed: {error}").format(error=p.stderr.strip()[-500:]))
    else:
        raise BadInput(_("no backup method for {backend}").format(backend=backend))
    return {"database": backend, "path": str(dest), "bytes": dest.stat().st_size}


def known_revisions() -> set[str]:
    """The schema versions this helpdesk knows (its migrations)."""
    folder = Path(__file__).resolve().parent / "migrations" / "versions"
    return {p.name.split("_", 1)[0] for p in folder.glob("[0-9]*_*.py")}


def _is_training(conn) -> bool:
    from sqlalchemy import text

    return conn.execute(text("SELECT value FROM meta WHERE key = 'training'")).scalar() == "yes"


def check_backup(engine, url: str, src: Path) -> None:
    """What ``restore`` checks before it touches the database: ``engine`` (the backup, opened
    read-only or restored aside) holds a helpdesk database of a known schema version, with
    the same training flag as the database at ``url``, and an intact audit chain."""
    from sqlalchemy import text
    from sqlalchemy.exc import SQLAlchemyError
    from sqlmodel import Session

    from helpdesk.base.errors import Refused

    try:
        with engine.connect() as conn:
            rev = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
            training = _is_training(conn)
    except SQLAlchemyError:
        raise BadInput(_("{path} is not a helpdesk backup").format(path=src)) from None
    if rev not in known_revisions():
        raise BadInput(
            _("{path} holds a schema version this helpdesk does not know ({rev})").format(
                path=src, rev=rev
            )
        )
    try:
        with db.get_engine(url).connect() as conn:
            current = _is_training(conn)
    except SQLAlchemyError:
        current = training  # the database is not initialised: nothing to mix up
    if training != current:
        raise Refused(
            "training-separation",
            (
                _("{path} is a training database and this one is not")
                if training
                else _("{path} is a production database and this one is a training database")
            ).format(path=src),
        )
    try:
        with Session(engine) as s:
            count, problems = audit.verify(s)
    except SQLAlchemyError:
        raise BadInput(_("{path} is not a helpdesk backup").format(path=src)) from None
    if problems:
        raise Refused(
            "audit-chain",
            _(
                "the audit trail of {path} is damaged (event {id}: {what}): nothing was restored"
            ).format(path=src, id=problems[0].event_id, what=problems[0].what),
        )


def _sqlite_source(src: Path):
    from sqlalchemy import create_engine
    from sqlalchemy.pool import NullPool

    return create_engine(
        "sqlite://",
        creator=lambda: sqlite3.connect(f"file:{src}?mode=ro", uri=True),
        poolclass=NullPool,
    )


def _pg_check(url: str, src: Path) -> None:
    """Restore a PostgreSQL dump into a scratch database beside the current one, check it
    there (``check_backup``), and drop it: the current database is not touched."""
    import uuid

    import psycopg
    from sqlalchemy import create_engine
    from sqlalchemy.pool import NullPool

    plain, env = _libpq(url)
    parsed = make_url(url)
    scratch = f"helpdesk_restore_check_{uuid.uuid4().hex[:12]}"
    admin = parsed.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{scratch}"')
    try:
        aside, _env = _libpq(parsed.set(database=scratch).render_as_string(hide_password=False))
        p = subprocess.run(
            [
                _pg_tool("pg_restore"),
                "--no-owner",
                "--single-transaction",
                f"--dbname={aside}",
                str(src),
            ],
            capture_output=True,
            text=True,
            env=env,
        )
        if p.returncode != 0:
            raise BadInput(
                _("{path} is not a helpdesk backup: {error}").format(
                    path=src, error=p.stderr.strip()[-300:]
                )
            )
        engine = create_engine(
            parsed.set(drivername="postgresql+psycopg", database=scratch), poolclass=NullPool
        )
        try:
            check_backup(engine, url, src)
        finally:
            engine.dispose()
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)')


def restore(url: str, source: str, *, actor: str = "system") -> dict:
    """Replace the database's content by a backup, once ``check_backup`` found it sound;
    on any mismatch nothing is touched."""
    url = db.resolve_url(url)
    src = Path(source).expanduser()
    if not src.is_file():
        raise BadInput(_("no backup file {path}").format(path=src))
    backend = make_url(url).get_backend_name()
    if backend == "sqlite":
        check = _sqlite_source(src)
        try:
            check_backup(check, url, src)
        finally:
            check.dispose()
    elif backend == "postgresql":
        _pg_check(url, src)
    db.get_engine(url).dispose()
    if backend == "sqlite":
        try:
            origin = sqlite3.connect(f"file:{src}?mode=ro", uri=True)
            try:
                origin.execute("SELECT count(*) FROM event").fetchone()
            finally:
                origin.close()
        except sqlite3.DatabaseError as exc:
            raise BadInput(
                _("{path} is not a helpdesk SQLite backup: {error}").format(path=src, error=exc)
            ) from None
        copy_sqlite(src, _sqlite_path(url), read_only=True)
    elif backend == "postgresql":
        plain, env = _libpq(url)
        p = subprocess.run(
            [
                _pg_tool("pg_restore"),
                "--clean",
                "--if-exists",
                "--no-owner",
                "--single-transaction",
                f"--dbname={plain}",
                str(src),
            ],
            capture_output=True,
            text=True,
            env=env,
        )
        if p.returncode != 0:
            raise BadInput(_("pg_restore failed: {error}").format(error=p.stderr.strip()[-500:]))
    else:
        raise BadInput(_("no restore method for {backend}").format(backend=backend))
    db.get_engine(url).dispose()
    with db.write_session(url) as s:
        audit.record(s, actor=actor, action="restore", data={"source": src.name})
    return {"database": backend, "path": str(src)}
