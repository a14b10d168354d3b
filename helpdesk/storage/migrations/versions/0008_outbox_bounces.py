"""outbox rows remember a bounce: when, what kind, the server's status code and reason

Revision ID: 0008
Revises: 0007
"""

from alembic import op
import sqlalchemy as sa
import helpdesk.storage.columns


revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(
            sa.Column(
                "bounced_at", helpdesk.storage.columns.UTCDateTime(timezone=True), nullable=True
            )
        )
        batch.add_column(sa.Column("bounce_kind", sa.String(), nullable=False, server_default=""))
        batch.add_column(sa.Column("bounce_status", sa.String(), nullable=False, server_default=""))
        batch.add_column(sa.Column("bounce_reason", sa.Text(), nullable=False, server_default=""))


def downgrade() -> None:
    # Plain ALTER TABLE ... DROP COLUMN, also on SQLite: a batch copy of the outbox table
    # would drop a table that the conversation's messages (0007) refer to.
    for name in ("bounce_reason", "bounce_status", "bounce_kind", "bounced_at"):
        if op.get_bind().dialect.name == "sqlite":
            op.execute(f"ALTER TABLE outbox DROP COLUMN {name}")
        else:
            op.drop_column("outbox", name)
