"""Creating and upgrading the database: Alembic migrations, then the policy packs."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from helpdesk.storage.db import get_engine, resolve_url, sqlite_path, write_session

MIGRATIONS = Path(__file__).resolve().parent.parent / "storage" / "migrations"

# The newest migration. Read commands compare the database with it without importing
# Alembic (a test checks it is Alembic's head).
HEAD = "0012"


def alembic_config(url: str | None = None):
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", resolve_url(url).replace("%", "%%"))
    return cfg


def upgrade(url: str | None = None) -> None:
    from alembic import command

    cfg = alembic_config(url)
    with get_engine(url).begin() as connection:
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, "head")


def current_revision(url: str | None = None) -> str | None:
    """The database's migration, or None if it has none (not initialised). A missing
    SQLite file is not created by asking."""
    path = sqlite_path(resolve_url(url))
    if path is not None and str(path) != ":memory:" and not path.is_file():
        return None
    try:
        with get_engine(url).connect() as connection:
            return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except SQLAlchemyError:
        return None


def head_revision() -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


def is_current(url: str | None = None) -> bool:
    return current_revision(url) == HEAD


def init(
    url: str | None = None, policies: list[str] | None = None, *, training: bool | None = None
) -> list[str]:
    """Create or upgrade the schema, load (or reload changed) policy packs."""
    from helpdesk.policy import packs
    from helpdesk.storage.models import Meta

    _check_training_switch(url, training)
    upgrade(url)
    _private_files(url)
    with write_session(url) as session:
        changed = packs.install_all(session, policies)
        if training is not None:
            meta = session.get(Meta, "training") or Meta(key="training")
            meta.value = "yes" if training else "no"
            session.add(meta)
    return changed


def _private_files(url: str | None) -> None:
    """An SQLite database and its WAL are 0600, whatever the umask it was created under."""
    import os

    path = sqlite_path(resolve_url(url))
    if path is None or str(path) == ":memory:":
        return
    for p in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        try:
            os.chmod(p, 0o600)
        except FileNotFoundError:
            pass


def _check_training_switch(url: str | None, training: bool | None) -> None:
    """``init --training`` refuses a database holding production data: a training database
    is one where anything may be tried, so it can never be a production one made over."""
    if not training or current_revision(url) is None:
        return
    from sqlalchemy.exc import SQLAlchemyError

    from helpdesk.base.errors import Refused
    from helpdesk.base.i18n import _

    try:
        with get_engine(url).connect() as conn:
            flag = conn.execute(text("SELECT value FROM meta WHERE key = 'training'")).scalar()
            if flag == "yes":
                return
            used = any(
                conn.execute(text(f"SELECT 1 FROM {table} LIMIT 1")).first() is not None
                for table in ("ticket", "account", "outbox", "evidence")
            )
    except SQLAlchemyError:
        return
    if used:
        raise Refused(
            "training-separation",
            _(
                "this database holds production data (accounts, tickets or mail): it cannot become a training database"
            ),
        )
