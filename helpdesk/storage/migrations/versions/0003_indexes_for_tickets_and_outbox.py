"""indexes for tickets and outbox

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 02:07:20.455053
"""

from alembic import op


revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Opening a ticket looks up its children; "my tickets" reads assignee and claims;
    # large views sort by age; replies are threaded on the Message-IDs we sent.
    op.create_index("ix_outbox_message_id", "outbox", ["message_id"], unique=False)
    op.create_index("ix_ticket_assignee", "ticket", ["assignee"], unique=False)
    op.create_index("ix_ticket_claimed_by", "ticket", ["claimed_by"], unique=False)
    op.create_index("ix_ticket_opened_at", "ticket", ["opened_at"], unique=False)
    op.create_index("ix_ticket_parent_id", "ticket", ["parent_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_ticket_parent_id", table_name="ticket")
    op.drop_index("ix_ticket_opened_at", table_name="ticket")
    op.drop_index("ix_ticket_claimed_by", table_name="ticket")
    op.drop_index("ix_ticket_assignee", table_name="ticket")
    op.drop_index("ix_outbox_message_id", table_name="outbox")
