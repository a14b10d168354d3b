"""an index on deadline names, for the binding dates the dashboard counts

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07 19:20:00
"""

from alembic import op


revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # The dashboard counts, on each refresh, the open tickets carrying a date their
    # provider's text makes binding (by deadline name): without it, a scan of the table.
    with op.batch_alter_table("deadline", schema=None) as batch_op:
        batch_op.create_index("ix_deadline_name_status", ["name", "status"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("deadline", schema=None) as batch_op:
        batch_op.drop_index("ix_deadline_name_status")
