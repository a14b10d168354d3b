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
    raise BadInput(_("{tool} is needed to back up a PostgreSQL database (Debian: postgresql-client)").format(tool=name))


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
        source = sqlite3.connect(_sqlite_path(url))
        copy = sqlite3.connect(dest)
        try:
            with copy:
                source.backup(copy)
        finally:
            copy.close()
            source.close()
    elif backend == "postgresql":
        plain, env = _libpq(url)
        p = subprocess.run([_pg_tool("pg_dump"), "--format=custom", "--no-owner", f"--file={dest}", plain],
                           capture_output=True, text=True, env=env)
        if p.returncode != 0:
            raise BadInput(_("pg_dump failed: {error}").format(error=p.stderr.strip()[-500:]))
    else:
        raise BadInput(_("no backup method for {backend}").format(backend=backend))
    return {"database": backend, "path": str(dest), "bytes": dest.stat().st_size}


def restore(url: str, source: str) -> dict:
    url = db.resolve_url(url)
    src = Path(source).expanduser()
    if not src.is_file():
        raise BadInput(_("no backup file {path}").format(path=src))
    backend = make_url(url).get_backend_name()
    db.get_engine(url).dispose()
    if backend == "sqlite":
        try:
            origin = sqlite3.connect(f"file:{src}?mode=ro", uri=True)
            origin.execute("SELECT count(*) FROM event").fetchone()
        except sqlite3.DatabaseError as exc:
            raise BadInput(_("{path} is not a helpdesk SQLite backup: {error}").format(path=src, error=exc)) from None
        target = sqlite3.connect(_sqlite_path(url))
        try:
            origin.backup(target)
        finally:
            target.close()
            origin.close()
    elif backend == "postgresql":
        plain, env = _libpq(url)
        p = subprocess.run([_pg_tool("pg_restore"), "--clean", "--if-exists", "--no-owner", "--single-transaction",
                            f"--dbname={plain}", str(src)], capture_output=True, text=True, env=env)
        if p.returncode != 0:
            raise BadInput(_("pg_restore failed: {error}").format(error=p.stderr.strip()[-500:]))
    else:
        raise BadInput(_("no restore method for {backend}").format(backend=backend))
    db.get_engine(url).dispose()
    with db.write_session(url) as s:
        audit.record(s, actor="system", action="restore", data={"source": src.name})
    return {"database": backend, "path": str(src)}
