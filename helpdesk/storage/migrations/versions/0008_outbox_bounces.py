"""outbox rows remember a bounce: when, what kind, the server's status code and reason

Revision ID: 0008
Revises: 0007
"""
from alembic import op
import sqlalchemy as sa
import helpdesk.storage.columns


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("bounced_at", helpdesk.storage.columns.UTCDateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("bounce_kind", sa.String(), nullable=False, server_default=""))
        batch.add_column(sa.Column("bounce_status", sa.String(), nullable=False, server_default=""))
        batch.add_column(sa.Column("bounce_reason", sa.Text(), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("bounce_reason")
        batch.drop_column("bounce_status")
        batch.drop_column("bounce_kind")
        batch.drop_column("bounced_at")
