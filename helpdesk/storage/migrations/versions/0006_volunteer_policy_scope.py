"""Volunteers' roles scoped to providers

Revision ID: 0006
Revises: 0004
Create Date: 2026-12-07 16:30:00

``volunteer.policies`` lists the policy packs a volunteer's role covers (an empty list:
every provider), so that ``volunteer add alice --role techadmin --policy wigii`` gives
alice a techadmin's rights over Wigii's tickets, accounts, logs and settings only.
"""

import sqlalchemy as sa
from alembic import op


revision = "0006"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("volunteer") as batch:
        batch.add_column(sa.Column("policies", sa.JSON(), nullable=False, server_default="[]"))


def downgrade() -> None:
    with op.batch_alter_table("volunteer") as batch:
        batch.drop_column("policies")
