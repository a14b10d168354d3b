"""the view's tags in the message search index; longer prefixes in both search indexes

A search in a queue view looks for the words in the tickets (``ticket_fts``) and in the
subjects and bodies of their mails (``message_fts``). The messages' index knew nothing of
the view: a word common in mail bodies matched most of the million messages, and each was
then looked up to find its ticket and whether that ticket was in the view (a second over
a million tickets). ``message_fts`` now carries the tags of its ticket (queue, state kind,
provider, open or waiting in a queue: the same tokens as ``ticket_fts.tags``, migration
0002), kept current by triggers on message and ticket, so that the match itself is narrowed
to the view (``helpdesk.storage.search``).

The last word typed is a prefix. FTS5 answers a prefix from an index of prefixes of that
length when it has one; otherwise it first merges the rows of every word that starts so
("passe": passe, passer, passé… four hundred thousand tickets at a million) before the view
narrows anything. Both indexes now keep prefixes of 2 to 12 letters (longer words are
few: 6 % more index than 2 to 8 at 100,000 tickets, and a search of "randonnée" or
"assemblée générale" 6 to 10 times faster).

FTS5 tables take no new column nor new prefix sizes: both are made again, ``message_fts``
from the messages, ``ticket_fts`` from its own content.

Revision ID: 0011
Revises: 0010
"""

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

PREFIX = "2 3 4 5 6 7 8 9 10 11 12"
PREFIX_0002 = "2 3"

# Must match helpdesk.storage.search.tag() and migration 0002's TAGS.
TAGS = (
    "'tq' || replace({t}.queue, '-', '') || ' tk' || {t}.state_kind || ' tp' || replace({t}.policy_key, '-', '')"
    " || CASE WHEN {t}.state_kind IN ('open', 'waiting') THEN ' ta' || replace({t}.queue, '-', '') ELSE '' END"
)
TICKET_TAGS = "coalesce((SELECT " + TAGS.format(t="t") + " FROM ticket t WHERE t.id = {id}), '')"

MESSAGE_TABLE = """CREATE VIRTUAL TABLE message_fts USING fts5(
        subject, body, {columns}
        tokenize = 'unicode61 remove_diacritics 2',
        prefix = '{prefix}'
    )"""
TICKET_TABLE = """CREATE VIRTUAL TABLE ticket_fts USING fts5(
        subject, requester, account, notes, tags,
        tokenize = 'unicode61 remove_diacritics 2',
        prefix = '{prefix}'
    )"""
TICKET_COLUMNS = "subject, requester, account, notes, tags"

MESSAGE_TRIGGERS = [
    f"""CREATE TRIGGER message_fts_ai AFTER INSERT ON message BEGIN
        INSERT INTO message_fts(rowid, subject, body, tags)
        VALUES (new.id, new.subject, new.body, {TICKET_TAGS.format(id="new.ticket_id")});
    END""",
    # A redaction empties the body: the index forgets it too. A merge moves messages.
    f"""CREATE TRIGGER message_fts_au AFTER UPDATE OF subject, body, ticket_id ON message BEGIN
        UPDATE message_fts SET subject = new.subject, body = new.body,
            tags = {TICKET_TAGS.format(id="new.ticket_id")}
        WHERE rowid = new.id;
    END""",
    """CREATE TRIGGER message_fts_ad AFTER DELETE ON message BEGIN
        DELETE FROM message_fts WHERE rowid = old.id;
    END""",
    # Only when a tag changes: an FTS5 update writes the whole row again (its bodies).
    f"""CREATE TRIGGER message_fts_ticket_au AFTER UPDATE OF queue, state_kind, policy_key ON ticket
        WHEN old.queue IS NOT new.queue OR old.state_kind IS NOT new.state_kind
            OR old.policy_key IS NOT new.policy_key BEGIN
        UPDATE message_fts SET tags = {TAGS.format(t="new")}
        WHERE rowid IN (SELECT id FROM message WHERE ticket_id = new.id);
    END""",
]
MESSAGE_FILL = f"""INSERT INTO message_fts(rowid, subject, body, tags)
        SELECT m.id, m.subject, m.body, {TAGS.format(t="t")}
        FROM message m JOIN ticket t ON t.id = m.ticket_id"""

# Migration 0007's table and triggers, for the downgrade.
MESSAGE_TRIGGERS_0007 = [
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
MESSAGE_FILL_0007 = (
    "INSERT INTO message_fts(rowid, subject, body) SELECT id, subject, body FROM message"
)

MESSAGE_DROPS = [
    "DROP TRIGGER IF EXISTS message_fts_ticket_au",
    "DROP TRIGGER IF EXISTS message_fts_ad",
    "DROP TRIGGER IF EXISTS message_fts_au",
    "DROP TRIGGER IF EXISTS message_fts_ai",
    "DROP TABLE IF EXISTS message_fts",
]

#: Page cache of this connection while the indexes are made again (KiB), and what FTS5 may
#: hold before it writes a segment (bytes; 1 MiB by default, put back after). The rebuild is
#: one transaction: with the defaults, a million messages make thousands of small segments
#: merged again and again, their pages spilling to the log and read back (hours instead of
#: minutes).
REBUILD_CACHE_KIB = 262144
REBUILD_HASHSIZE = 128 * 1024 * 1024
HASHSIZE = 1024 * 1024


def _fill(table: str, statement: str) -> list[str]:
    """``statement`` filling a new FTS5 ``table`` with a large buffer, the default put back."""
    return [
        f"INSERT INTO {table}({table}, rank) VALUES ('hashsize', {REBUILD_HASHSIZE})",
        statement,
        f"INSERT INTO {table}({table}, rank) VALUES ('hashsize', {HASHSIZE})",
    ]


def _ticket_fts(prefix: str) -> list[str]:
    """``ticket_fts`` made again with other prefix sizes, from its own content (its triggers,
    on ticket, event and account, stay as migration 0002 made them)."""
    return [
        "DROP TABLE IF EXISTS ticket_fts_copy",
        f"CREATE TEMP TABLE ticket_fts_copy AS SELECT rowid AS id, {TICKET_COLUMNS} FROM ticket_fts",
        "DROP TABLE ticket_fts",
        TICKET_TABLE.format(prefix=prefix),
        *_fill(
            "ticket_fts",
            f"INSERT INTO ticket_fts(rowid, {TICKET_COLUMNS})"
            f" SELECT id, {TICKET_COLUMNS} FROM ticket_fts_copy ORDER BY id",
        ),
        "DROP TABLE ticket_fts_copy",
    ]


def _run(statements: list[str]) -> None:
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        return
    before = bind.exec_driver_sql("PRAGMA cache_size").scalar()
    bind.exec_driver_sql(f"PRAGMA cache_size=-{REBUILD_CACHE_KIB}")
    try:
        for statement in statements:
            op.execute(statement)
    finally:
        bind.exec_driver_sql(f"PRAGMA cache_size={int(before)}")


def upgrade() -> None:
    _run(
        [
            *MESSAGE_DROPS,
            MESSAGE_TABLE.format(columns="tags,", prefix=PREFIX),
            *_fill("message_fts", MESSAGE_FILL),
            *MESSAGE_TRIGGERS,
            *_ticket_fts(PREFIX),
        ]
    )


def downgrade() -> None:
    _run(
        [
            *MESSAGE_DROPS,
            MESSAGE_TABLE.format(columns="", prefix=PREFIX_0002),
            *_fill("message_fts", MESSAGE_FILL_0007),
            *MESSAGE_TRIGGERS_0007,
            *_ticket_fts(PREFIX_0002),
        ]
    )
