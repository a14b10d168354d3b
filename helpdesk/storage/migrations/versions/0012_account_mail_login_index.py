"""an index on accounts' mail-login field, for policyd's status answer

``helpdesk policyd`` answers Postfix for the SASL login of each authenticated mail. A
suspended or deactivated account whose status was set without the postfix connector has
no sending block: policyd then finds the account by that login, which is its login or its
``mail-login`` field. The field lives in the account's JSON ``fields``; this expression
index lets that second lookup read one index entry instead of every account, on the path
of every authenticated mail.

Revision ID: 0012
Revises: 0011
"""

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

#: The expression, as helpdesk.connectors.policyd writes it (an index is used only for the
#: very same expression).
MAIL_LOGIN = {
    "sqlite": "json_extract(fields, '$.\"mail-login\"')",
    "postgresql": "(fields ->> 'mail-login')",
}


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    op.execute(f"CREATE INDEX ix_account_mail_login ON account ({MAIL_LOGIN[dialect]})")


def downgrade() -> None:
    op.execute("DROP INDEX ix_account_mail_login")
