"""service actions, mail blocks, logins seen

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 16:07:36.265640
"""

from alembic import op
import sqlalchemy as sa
import sqlmodel
import sqlmodel.sql.sqltypes
import helpdesk.storage.columns


revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # The action queue (helpdesk.outgoing.actions), the sending blocks helpdesk policyd
    # answers Postfix from, and the last logins each source reported.
    op.create_table(
        "mailblock",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("login", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
        sa.Column("policy_key", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=True),
        sa.Column("until", helpdesk.storage.columns.UTCDateTime(timezone=True), nullable=True),
        sa.Column("reason", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("lang", sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
        sa.Column("timezone", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("set_at", helpdesk.storage.columns.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("mailblock", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_mailblock_login"), ["login"], unique=False)
        batch_op.create_index(batch_op.f("ix_mailblock_ticket_id"), ["ticket_id"], unique=False)

    op.create_table(
        "loginseen",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("source", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("seen_at", helpdesk.storage.columns.UTCDateTime(timezone=True), nullable=False),
        sa.Column("read_at", helpdesk.storage.columns.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["account.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("account_id", "source"),
    )
    with op.batch_alter_table("loginseen", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_loginseen_account_id"), ["account_id"], unique=False)

    op.create_table(
        "serviceaction",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=True),
        sa.Column("account_id", sa.Integer(), nullable=True),
        sa.Column("policy_key", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("connector", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("service", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("target", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column(
            "next_attempt_at", helpdesk.storage.columns.UTCDateTime(timezone=True), nullable=True
        ),
        sa.Column(
            "created_at", helpdesk.storage.columns.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column("done_at", helpdesk.storage.columns.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=False),
        sa.Column("result", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["account.id"],
        ),
        sa.ForeignKeyConstraint(
            ["ticket_id"],
            ["ticket.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("serviceaction", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_serviceaction_account_id"), ["account_id"], unique=False
        )
        batch_op.create_index(
            "ix_serviceaction_status_due", ["status", "next_attempt_at"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_serviceaction_ticket_id"), ["ticket_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("serviceaction", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_serviceaction_ticket_id"))
        batch_op.drop_index("ix_serviceaction_status_due")
        batch_op.drop_index(batch_op.f("ix_serviceaction_account_id"))

    op.drop_table("serviceaction")
    with op.batch_alter_table("loginseen", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_loginseen_account_id"))

    op.drop_table("loginseen")
    with op.batch_alter_table("mailblock", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_mailblock_ticket_id"))
        batch_op.drop_index(batch_op.f("ix_mailblock_login"))

    op.drop_table("mailblock")
