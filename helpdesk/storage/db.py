"""Database engine and sessions.

SQLite is the embedded default (a file in the user data directory) with WAL, foreign keys
and a busy timeout; any SQLAlchemy URL works through ``--db`` / ``HELPDESK_DB``.
Write transactions on SQLite start with ``BEGIN IMMEDIATE`` so that two processes never
both read and then fail to upgrade their lock: one waits for the other instead.

The engine is SQLAlchemy Core's: a command that reads with Core (``ticket list``,
``helpdesk.service.listing``) imports neither SQLModel nor the ORM. The sessions import them
when first asked for.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Iterator, Union

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

if TYPE_CHECKING:
    from sqlmodel import Session

BUSY_TIMEOUT_MS = 30_000

#: What a Core read runs on: a Core connection (``read_connection``: no ORM loaded) or an
#: ORM session (``read_session``); the same Core queries run on either.
Reader = Union["Session", Connection]


def sqlite_path(url: str) -> Path | None:
    """The file of an SQLite URL (None for another database)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return None
    return Path(parsed.database or ":memory:")


def default_url() -> str:
    from platformdirs import user_data_dir

    folder = Path(user_data_dir("helpdesk", appauthor=False))
    return f"sqlite:///{folder / 'helpdesk.db'}"


def resolve_url(url: str | None = None) -> str:
    if not url and not os.environ.get("HELPDESK_DB"):
        from helpdesk.base import config  # [database] url in helpdesk.toml

        url = config.load().value("database.url")
    url = url or os.environ.get("HELPDESK_DB") or default_url()
    if "://" not in url:  # a bare path means an SQLite file
        url = f"sqlite:///{Path(url).expanduser().absolute()}"
    return url


_engines: dict[str, Engine] = {}
_lean: set[str] = set()  # the URLs ``lean`` was called for

#: SQLite's page cache per connection of a ``lean`` process, in KiB (SQLite's default: 2000).
LEAN_CACHE_KIB = 512


def lean(url: str | None = None) -> None:
    """Keep this process's connections to ``url`` few and small: one stays open between
    reads (the others, opened while reads overlap, close when their read ends), and on
    SQLite each holds a page cache of ``LEAN_CACHE_KIB`` instead of 2 MiB.

    For the TUI, one long-lived process per volunteer connected: on the 1,000,000-ticket
    database its three connections' caches filled to 6 MiB of the session's memory, for
    pages the system's own file cache holds anyway (benchmarks/tui_bench.py). The
    commands, the ingestion and the servers keep the defaults."""
    url = resolve_url(url)
    if url not in _lean:
        _lean.add(url)
        engine = _engines.pop(url, None)
        if engine is not None:
            engine.dispose()


def get_engine(url: str | None = None) -> Engine:
    url = resolve_url(url)
    engine = _engines.get(url)
    if engine is None:
        try:
            engine = _make_engine(url)
        except (ArgumentError, NoSuchModuleError, ImportError, ValueError) as exc:
            from helpdesk.base.errors import BadInput

            raise BadInput(
                f"--db: not a database URL this helpdesk can open: {_safe(url)} ({type(exc).__name__})"
            ) from None
        _engines[url] = engine
    return engine


def _safe(url: str) -> str:
    """A URL as it may be printed: no password, no control characters."""
    from helpdesk.base.files import shown

    try:
        return shown(make_url(url).render_as_string(hide_password=True))
    except Exception:  # noqa: BLE001 - not even parseable: shown as given, escaped
        return shown(url)


def _make_engine(url: str) -> Engine:
    parsed = make_url(url)
    pool = {"pool_size": 1, "max_overflow": 10} if url in _lean else {}
    if parsed.get_backend_name() != "sqlite":
        if parsed.drivername == "postgresql":
            url = parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
        return create_engine(url, pool_pre_ping=True, **pool)

    database = parsed.database
    if database and database != ":memory:":
        from helpdesk.base.files import make_private_dir

        make_private_dir(Path(database).parent)
    if database == ":memory:" or not database:
        pool = {}  # one connection per thread, whatever is asked (SingletonThreadPool)
    cache = f"PRAGMA cache_size=-{LEAN_CACHE_KIB}" if url in _lean else None
    engine = create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_MS / 1000}, **pool)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record):  # pragma: no branch
        # Let SQLAlchemy, not pysqlite, say when transactions begin (see _on_begin).
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        cur.execute("PRAGMA synchronous=NORMAL")
        if cache:
            cur.execute(cache)
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):
        immediate = conn.get_execution_options().get("immediate", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


@contextmanager
def read_session(url: str | None = None) -> Iterator[Session]:
    from sqlmodel import Session

    with Session(get_engine(url), expire_on_commit=False) as session:
        yield session


@contextmanager
def read_connection(url: str | None = None) -> Iterator[Connection]:
    """A Core connection for a read (SQLAlchemy Core only, no ORM): one transaction, rolled
    back at the end, so that every query of the read sees the same database. Its
    ``read_info`` is this read's own, as a session's ``info`` is."""
    with get_engine(url).connect() as conn:
        conn.execution_options(read_info={})
        yield conn


def read_info(reader: Reader) -> dict:
    """What one read keeps for itself (what it found once, the scope it reads in): a
    session's ``info``, or the dict of a ``read_connection``. Not ``Connection.info``, which
    stays with the pooled connection from one read to the next."""
    if isinstance(reader, Connection):
        if "read_info" not in reader.get_execution_options():
            reader.execution_options(read_info={})
        return reader.get_execution_options()["read_info"]
    return reader.info


def connection_of(reader: Reader) -> Connection:
    """The Core connection a read runs on (a session's, in its transaction)."""
    return reader if isinstance(reader, Connection) else reader.connection()


@contextmanager
def write_session(url: str | None = None) -> Iterator[Session]:
    """One transaction: committed when the block ends, rolled back on any exception."""
    from sqlmodel import Session

    engine = get_engine(url).execution_options(immediate=True)
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


def is_sqlite(session: Session) -> bool:
    return session.get_bind().dialect.name == "sqlite"
