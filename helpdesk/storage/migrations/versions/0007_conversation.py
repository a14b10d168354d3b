"""the conversation: messages of tickets, merged tickets, search over message bodies

A ``message`` row per mail received, mail sent and internal note (``helpdesk.storage.models.Message``);
``ticket.merged_into`` for ``ticket merge``. Search covers message subjects and bodies: on
SQLite an FTS5 table ``message_fts`` (rowid = message.id) kept current by triggers (a
redaction empties it too); on PostgreSQL a GIN index on the same expression as the query
(``helpdesk.storage.search.PG_MESSAGE_INDEX``).

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

import helpdesk.storage.columns

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

SQLITE = [
    """CREATE VIRTUAL TABLE message_fts USING fts5(
        subject, body,
        tokenize = 'unicode61 remove_diacritics 2',
        prefix = '2 3'
    )""",
    """CREATE TRIGGER message_fts_ai AFTER INSERT ON message BEGIN
        INSERT INTO message_fts(rowid, subject, body) VALUES (new.id, new.subject, new.body);
    END""",
    """CREATE TRIGGER message_fts_au AFTER UPDATE OF subject, body ON message BEGIN
        UPDATE message_fts SET subject = new.subject, body = new.body WHERE rowid = new.id;
    END""",
    """CREATE TRIGGER message_fts_ad AFTER DELETE ON message BEGIN
        DELETE FROM message_fts WHERE rowid = old.id;
    END""",
]
SQLITE_DROPS = [
    "DROP TRIGGER IF EXISTS message_fts_ad",
    "DROP TRIGGER IF EXISTS message_fts_au",
    "DROP TRIGGER IF EXISTS message_fts_ai",
    "DROP TABLE IF EXISTS message_fts",
]


def upgrade() -> None:
    op.create_table(
        "message",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("at", helpdesk.storage.columns.UTCDateTime(), nullable=False),
        sa.Column("direction", sa.String(length=8), nullable=False),
        sa.Column("author", sa.String(length=64), nullable=False),
        sa.Column("from_addr", sa.String(length=320), nullable=False),
        sa.Column("from_name", sa.String(), nullable=False),
        sa.Column("to_addrs", sa.JSON(), nullable=False),
        sa.Column("subject", sa.String(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("attachments", sa.JSON(), nullable=False),
        sa.Column("message_id", sa.String(length=998), nullable=False),
        sa.Column("outbox_id", sa.Integer(), nullable=True),
        sa.Column("evidence_id", sa.Integer(), nullable=True),
        sa.Column("redacted_at", helpdesk.storage.columns.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["ticket_id"], ["ticket.id"]),
        sa.ForeignKeyConstraint(["outbox_id"], ["outbox.id"]),
        sa.ForeignKeyConstraint(["evidence_id"], ["evidence.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_message_ticket_at", "message", ["ticket_id", "at", "id"], unique=False)
    op.create_index("ix_message_outbox_id", "message", ["outbox_id"], unique=False)
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        # Not a batch (copy and move) operation: that would drop the FTS triggers on ticket.
        op.execute("ALTER TABLE ticket ADD COLUMN merged_into INTEGER REFERENCES ticket (id)")
    else:
        op.add_column("ticket", sa.Column("merged_into", sa.Integer(), nullable=True))
        op.create_foreign_key("fk_ticket_merged_into", "ticket", "ticket", ["merged_into"], ["id"])
    # Opening a ticket looks up the tickets merged into it.
    op.create_index("ix_ticket_merged_into", "ticket", ["merged_into"], unique=False)
    if dialect == "sqlite":
        for statement in SQLITE:
            op.execute(statement)
    elif dialect == "postgresql":
        from helpdesk.storage.search import PG_MESSAGE_INDEX

        op.execute(PG_MESSAGE_INDEX)


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    op.drop_index("ix_ticket_merged_into", table_name="ticket")
    if dialect == "sqlite":
        for statement in SQLITE_DROPS:
            op.execute(statement)
    elif dialect == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_message_search")
    if dialect == "sqlite":
        op.execute("ALTER TABLE ticket DROP COLUMN merged_into")
    else:
        op.drop_constraint("fk_ticket_merged_into", "ticket", type_="foreignkey")
        op.drop_column("ticket", "merged_into")
    op.drop_index("ix_message_outbox_id", table_name="message")
    op.drop_index("ix_message_ticket_at", table_name="message")
    op.drop_table("message")
