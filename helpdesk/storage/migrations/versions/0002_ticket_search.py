"""full-text search of tickets (SQLite FTS5)

One FTS5 row per ticket (rowid = ticket.id) holding its subject, its requester, its
account (login, address, organisation), the notes of its events, and tags naming its
queue, state kind and provider, so that a search within a queue view is answered by the
index alone (``helpdesk.storage.search``). Kept current by triggers on ticket, event and account.
Only on SQLite: other databases search with LIKE. The FTS objects are not in the models:
the test that compares models and migrations leaves them out.

Revision ID: 0002
Revises: 0001
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

NOTES = "coalesce((SELECT group_concat(e.note, ' ') FROM event e WHERE e.ticket_id = {t} AND e.note <> ''), '')"
ACCOUNT = "coalesce((SELECT a.login || ' ' || a.email || ' ' || a.org FROM account a WHERE a.id = {t}.account_id), '')"
# Must match helpdesk.storage.search.tag(): letters and digits only, so the tokenizer keeps each whole.
TAGS = (
    "'tq' || replace({t}.queue, '-', '') || ' tk' || {t}.state_kind || ' tp' || replace({t}.policy_key, '-', '')"
    " || CASE WHEN {t}.state_kind IN ('open', 'waiting') THEN ' ta' || replace({t}.queue, '-', '') ELSE '' END"
)

STATEMENTS = [
    """CREATE VIRTUAL TABLE ticket_fts USING fts5(
        subject, requester, account, notes, tags,
        tokenize = 'unicode61 remove_diacritics 2',
        prefix = '2 3'
    )""",
    f"""CREATE TRIGGER ticket_fts_ai AFTER INSERT ON ticket BEGIN
        INSERT INTO ticket_fts(rowid, subject, requester, account, notes, tags)
        VALUES (new.id, new.subject, new.requester, {ACCOUNT.format(t="new")}, '', {TAGS.format(t="new")});
    END""",
    f"""CREATE TRIGGER ticket_fts_au AFTER UPDATE OF subject, requester, account_id, queue, state_kind, policy_key ON ticket BEGIN
        UPDATE ticket_fts SET subject = new.subject, requester = new.requester,
            account = {ACCOUNT.format(t="new")}, tags = {TAGS.format(t="new")}
        WHERE rowid = new.id;
    END""",
    """CREATE TRIGGER ticket_fts_ad AFTER DELETE ON ticket BEGIN
        DELETE FROM ticket_fts WHERE rowid = old.id;
    END""",
    """CREATE TRIGGER ticket_fts_event_ai AFTER INSERT ON event
        WHEN new.ticket_id IS NOT NULL AND new.note <> '' BEGIN
        UPDATE ticket_fts SET notes = notes || ' ' || new.note WHERE rowid = new.ticket_id;
    END""",
    # Retention redacts notes (helpdesk.storage.audit.redact): the index must forget them too.
    f"""CREATE TRIGGER ticket_fts_event_au AFTER UPDATE OF note, ticket_id ON event
        WHEN old.ticket_id IS NOT NULL BEGIN
        UPDATE ticket_fts SET notes = {NOTES.format(t="old.ticket_id")} WHERE rowid = old.ticket_id;
    END""",
    f"""CREATE TRIGGER ticket_fts_event_ad AFTER DELETE ON event
        WHEN old.ticket_id IS NOT NULL BEGIN
        UPDATE ticket_fts SET notes = {NOTES.format(t="old.ticket_id")} WHERE rowid = old.ticket_id;
    END""",
    """CREATE TRIGGER ticket_fts_account_au AFTER UPDATE OF login, email, org ON account BEGIN
        UPDATE ticket_fts SET account = new.login || ' ' || new.email || ' ' || new.org
        WHERE rowid IN (SELECT id FROM ticket WHERE account_id = new.id);
    END""",
    f"""INSERT INTO ticket_fts(rowid, subject, requester, account, notes, tags)
        SELECT t.id, t.subject, t.requester, {ACCOUNT.format(t="t")},
            {NOTES.format(t="t.id")},
            {TAGS.format(t="t")}
        FROM ticket t""",
]

DROPS = [
    "DROP TRIGGER IF EXISTS ticket_fts_event_ad",
    "DROP TRIGGER IF EXISTS ticket_fts_event_au",
    "DROP TRIGGER IF EXISTS ticket_fts_account_au",
    "DROP TRIGGER IF EXISTS ticket_fts_event_ai",
    "DROP TRIGGER IF EXISTS ticket_fts_ad",
    "DROP TRIGGER IF EXISTS ticket_fts_au",
    "DROP TRIGGER IF EXISTS ticket_fts_ai",
    "DROP TABLE IF EXISTS ticket_fts",
]


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for statement in STATEMENTS:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for statement in DROPS:
        op.execute(statement)
