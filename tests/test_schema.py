"""The database: migrations and models agree; init creates and upgrades; packs load."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlmodel import SQLModel

from helpdesk.storage import db
from helpdesk.policy import install


def test_models_and_migrations_agree(empty_db_url):
    install.upgrade(empty_db_url)
    with db.get_engine(empty_db_url).connect() as conn:
        diff = compare_metadata(
            MigrationContext.configure(conn, opts={"compare_type": True}), SQLModel.metadata
        )
    diff = [d for d in diff if not _is_search_index(d)]
    assert diff == []


#: Expression indexes, made by migrations only (SQLModel declares none).
EXPRESSION_INDEXES = ("ix_message_search", "ix_account_mail_login")


def _is_search_index(d) -> bool:
    """Full-text search objects and expression indexes are made by migrations, not by
    models: SQLite's FTS5 tables (0002, 0007), PostgreSQL's GIN expression indexes (0004,
    0007), and the index of accounts' mail-login field (0012)."""
    from helpdesk.storage.search import PG_INDEXES

    text = repr(d)
    name = getattr(d[1], "name", "") if isinstance(d, tuple) and len(d) > 1 else ""
    return "fts" in text.lower() or name in PG_INDEXES or name in EXPRESSION_INDEXES


def test_head_constant_is_alembics_head():
    assert install.HEAD == install.head_revision()


def test_init_is_idempotent_and_reloads_changed_packs(empty_db_url):
    first = install.init(empty_db_url)
    assert sorted(first) == ["communesplone", "indigos", "le-pic", "weentime", "wigii"]
    assert install.init(empty_db_url) == []
    assert install.is_current(empty_db_url)


def test_sqlite_pragmas(db_url):
    if not db_url.startswith("sqlite"):
        return
    with db.get_engine(db_url).connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 5000


def test_commands_on_an_uninitialised_database_say_so(tmp_path, cli_env):
    import subprocess
    import sys

    p = subprocess.run(
        [sys.executable, "-m", "helpdesk", "--db", str(tmp_path / "none.db"), "ticket", "list"],
        capture_output=True,
        text=True,
        env=cli_env,
    )
    assert p.returncode == 2 and "helpdesk init" in p.stderr and "Traceback" not in p.stderr
