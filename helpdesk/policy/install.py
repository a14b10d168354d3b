"""Creating and upgrading the database: Alembic migrations, then the policy packs."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from helpdesk.storage.db import get_engine, resolve_url, write_session

MIGRATIONS = Path(__file__).resolve().parent.parent / "storage" / "migrations"

# The newest migration. Read commands compare the database with it without importing
# Alembic (a test checks it is Alembic's head).
HEAD = "0004"


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
    """The database's migration, or None if it has none (not initialised)."""
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


def init(url: str | None = None, policies: list[str] | None = None, *, training: bool | None = None) -> list[str]:
    """Create or upgrade the schema, load (or reload changed) policy packs."""
    from helpdesk.policy import packs
    from helpdesk.storage.models import Meta

    upgrade(url)
    with write_session(url) as session:
        changed = packs.install_all(session, policies)
        if training is not None:
            meta = session.get(Meta, "training") or Meta(key="training")
            meta.value = "yes" if training else "no"
            session.add(meta)
    return changed
