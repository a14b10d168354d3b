"""PostgreSQL full-text search indexes

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 04:40:00

On PostgreSQL, search matches to_tsvector() expressions over ticket subjects and
requesters, account logins, addresses and organisations, and event notes; these GIN
indexes on the very same expressions (``helpdesk.storage.search.PG_INDEXES``, one source for the
query and the index) let it answer without reading every row. SQLite has its FTS5 table
(migration 0002) instead: nothing to do there.
"""

from alembic import op


revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    from helpdesk.storage.search import PG_INDEXES

    for ddl in PG_INDEXES.values():
        op.execute(ddl)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    from helpdesk.storage.search import PG_INDEXES

    for name in PG_INDEXES:
        op.execute(f"DROP INDEX IF EXISTS {name}")
