"""helpdesk.storage.search: FTS5 on SQLite (migration 0002, kept current by triggers), full text
(to_tsvector) on PostgreSQL, LIKE elsewhere, what was typed never read as query syntax;
and the models still agree with the migrations apart from the FTS objects."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import text
from sqlmodel import select

from helpdesk.storage import db, search
from helpdesk.workflow import engine
from helpdesk.service import api
from helpdesk.rules.context import Actor
from helpdesk.storage.models import Account, Ticket
from helpdesk.storage.search import TicketFilter
from tests.conftest import PG

ALICE = Actor("alice", "oncall")


def ids(url: str, q: str, *, fts: bool = True) -> list[int]:
    with db.read_session(url) as s:
        if not fts:
            s.info["has_fts"] = False
        return sorted(search.search(s, q, limit=100))


@pytest.mark.skipif(
    bool(PG),
    reason="the FTS5 virtual table is SQLite's; PostgreSQL: test_postgresql_search_can_use_its_indexes",
)
def test_the_migration_made_the_fts_table(db_url):
    with db.read_session(db_url) as s:
        assert search.has_fts(s)
        n = s.exec(text("SELECT count(*) FROM ticket_fts")).one()[0]
        assert n == s.exec(text("SELECT count(*) FROM ticket")).one()[0]


@pytest.mark.skipif(not PG, reason="PostgreSQL's full text")
def test_postgresql_search_can_use_its_indexes(db_url):
    """The words are matched with to_tsvector/to_tsquery, and the query is written so that
    the GIN expression indexes of ``search.PG_INDEXES`` answer it."""
    with db.write_session(db_url) as s:
        assert search.has_pg_text(s) and not search.has_fts(s)
        # migrations 0004 and 0007 (messages) made them
        made = set(
            s.exec(text("SELECT indexname FROM pg_indexes WHERE indexname LIKE 'ix_%_search'"))
        )
        assert {r[0] for r in made} == {*search.PG_INDEXES, "ix_message_search"}
        # The tables are tiny: keep the planner from reading them whole, as it would not
        # at a million rows.
        for scan in ("seqscan", "indexscan"):
            s.exec(text(f"SET LOCAL enable_{scan} = off"))
        q = select(search.T.c.id).where(*search.text_clauses(s, "titulaire"))
        sql = str(q.compile(s.get_bind(), compile_kwargs={"literal_binds": True}))
        plan = "\n".join(r[0] for r in s.exec(text("EXPLAIN " + sql)))
        for name in (*search.PG_INDEXES, "ix_message_search"):
            assert name in plan, plan
        assert sorted(s.execute(q).scalars()) == [3]


@pytest.mark.parametrize("fts", [True, False], ids=["fts", "like"])
def test_search_finds_subjects_requesters_accounts_and_notes(db_url, fts):
    assert ids(db_url, "Spam network", fts=fts) == [3]
    assert ids(db_url, "impostor", fts=fts) == [6]
    assert ids(db_url, "cmartin", fts=fts) == [2]  # account login
    assert ids(db_url, "Vélo Libre", fts=fts) == [4, 9, 10]  # account organisation
    assert ids(db_url, "titulaire", fts=fts) == [3]  # a note in the history
    assert ids(db_url, "#5", fts=fts) == [5]


def test_fts_ignores_accents_and_matches_prefixes(db_url):
    assert ids(db_url, "oublie") == [1]
    assert ids(db_url, "oubl") == [1]
    assert ids(db_url, "INACTIVITE") == [7]


@pytest.mark.parametrize(
    "typed",
    [
        '"',
        "a OR",
        "NEAR(a b)",
        "subject:x",
        "*",
        "-",
        "a AND NOT",
        "(",
        '"unbalanced',
        "^x",
        "{a b}",
        "x:",
    ],
)
def test_what_is_typed_is_never_fts_syntax(db_url, typed):
    with db.read_session(db_url) as s:
        search.search(s, typed)  # no OperationalError
        search.count(s, TicketFilter(text=typed))
    query = search.fts_query(typed)
    assert query == "" or re.fullmatch(r'"[\w ]+"\*( "[\w ]+"\*)*', query), query


def test_triggers_follow_tickets_accounts_and_notes(db_url):
    with db.write_session(db_url) as s:
        acc = s.exec(select(Account).where(Account.login == "shop-c")).one()
        acc.email = "owner@renamed.example"
        s.add(acc)
    assert ids(db_url, "renamed") == [8]
    with db.write_session(db_url) as s:
        t = s.get(Ticket, 5)
        t.subject = "Zebra crossing"
        s.add(t)
    assert ids(db_url, "zebra") == [5] and ids(db_url, "back-office") == []
    with db.write_session(db_url) as s:
        engine.apply(s, 4, "contact", ALICE, note="Conseils hygiène de liste envoyés")
    assert ids(db_url, "hygiene") == [4]
    with db.write_session(db_url) as s:
        out = api.open_ticket(
            s,
            queue="abuse",
            policy="indigos",
            actor=ALICE,
            account_login="cmartin",
            subject="Quokka",
            fields={"category": "spam"},
        )
        new = out.ticket.id
    assert ids(db_url, "quokka") == [new]
    assert ids(db_url, "quokka", fts=False) == [new]


def test_pages_filters_and_counts(db_url):
    with db.read_session(db_url) as s:
        flt = TicketFilter(queue="password-reset")
        assert search.count(s, flt) == 4
        rows = search.page(s, flt, "due", limit=2, offset=0)
        rest = search.page(s, flt, "due", limit=2, offset=2)
        assert [r.id for r in rows + rest] == [10, 5, 1, 6]
        assert search.count(s, flt.with_(policy="indigos")) == 2
        assert search.count(s, flt.with_(kind="done")) == 0
        assert search.count(s, TicketFilter(assignee="alice")) == 1
        assert search.count(s, TicketFilter(text="mot de passe")) == 2
        assert [r.id for r in search.page(s, TicketFilter(), "age", limit=3)] == [9, 10, 1]
        assert search.position(s, flt, "due", 1) == 2


def test_models_and_migrations_agree_apart_from_fts(db_url):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from sqlmodel import SQLModel

    import helpdesk.storage.models  # noqa: F401
    from tests.test_schema import EXPRESSION_INDEXES

    def include(obj, name, type_, reflected, compare_to):
        return not (name or "").startswith((search.FTS_TABLE, search.MESSAGE_FTS)) and name not in (
            *search.PG_INDEXES,
            *EXPRESSION_INDEXES,
        )

    with db.get_engine(db_url).connect() as conn:
        ctx = MigrationContext.configure(
            conn, opts={"include_object": include, "compare_type": True}
        )
        diff = compare_metadata(ctx, SQLModel.metadata)
    assert diff == []


def test_migration_0002_downgrades_and_upgrades(db_url):
    from alembic import command

    from helpdesk.policy import install

    cfg = install.alembic_config(db_url)
    with db.get_engine(db_url).begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0001")
    with db.read_session(db_url) as s:
        assert not search.has_fts(s)
        # (LIKE on a database without FTS: test_search_finds_subjects_requesters_accounts_and_notes[like];
        # the models here are the head's, which 0001 lacks parts of.)
    with db.get_engine(db_url).begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
    assert ids(db_url, "titulaire") == [3]  # rebuilt from the events' notes


def test_tags_narrow_the_match_to_the_view_and_follow_state_changes(db_url):
    active = TicketFilter(queue="password-reset", text="oublié")
    everything = TicketFilter(queue="password-reset", kind="all", text="oublié")
    with db.read_session(db_url) as s:
        assert search.match_expression("oublié", active).endswith('AND tags : "tapasswordreset"')
        assert search.count(s, active) == 1
    with db.write_session(db_url) as s:
        engine.apply(s, 1, "reject", ALICE, note="no")
    with db.read_session(db_url) as s:
        assert search.count(s, active) == 0
        assert search.count(s, everything) == 1
        assert search.count(s, everything.with_(kind="done")) == 1
        assert search.count(s, everything.with_(policy="le-pic")) == 0


def test_redacted_notes_leave_the_index(db_url):
    from helpdesk.storage import audit
    from helpdesk.storage.models import Event

    assert ids(db_url, "titulaire") == [3]
    with db.write_session(db_url) as s:
        ev = s.exec(select(Event).where(Event.ticket_id == 3, Event.action == "contact")).one()
        audit.redact(s, ev, actor="system", reason="retention")
    assert ids(db_url, "titulaire") == []
    assert ids(db_url, "retention") == [3]  # the redaction's own note


def test_the_count_of_a_search_is_what_its_pages_hold_in_every_view(db_url):
    """The count of a text search comes from the match alone when the tags express the
    whole view; it must then be exactly what the pages list, finished tickets excluded."""
    with db.write_session(db_url) as s:
        engine.apply(s, 1, "reject", ALICE, note="no")  # a finished ticket that still matches
    views = [
        TicketFilter(text="mot"),
        TicketFilter(text="mot", kind="all"),
        TicketFilter(text="mot", kind="done"),
        TicketFilter(text="mot", queue="password-reset"),
        TicketFilter(text="mot", policy="indigos"),
        TicketFilter(text="mot", assignee="-"),
        TicketFilter(text="example"),
        TicketFilter(text="example", kind="waiting"),
    ]
    with db.read_session(db_url) as s:
        for flt in views:
            listed = search.page(s, flt, "due", limit=1000)
            assert search.count(s, flt) == len(listed), flt
            kinds = {r.state_kind for r in listed}
            if flt.kind == "active":
                assert kinds <= {"open", "waiting"}, flt
            elif flt.kind != "all":
                assert kinds <= {flt.kind}, flt
        assert search.count(s, TicketFilter(text="mot", kind="done")) >= 1
        assert search.count(s, TicketFilter(text="mot")) < search.count(
            s, TicketFilter(text="mot", kind="all")
        )
    # A role scoped to some providers: the count is of what its pages list, too.
    with db.read_connection(db_url) as c:
        whole = search.count(c, TicketFilter(text="mot", kind="all"))
        db.read_info(c)["scope"] = ("indigos",)
        for flt in views:
            listed = search.page(c, flt, "due", limit=1000)
            assert {r.policy for r in listed} <= {"indigos"}, flt
            assert search.count(c, flt) == len(listed), flt
        assert search.count(c, TicketFilter(text="mot", kind="all")) < whole


@pytest.mark.skipif(bool(PG), reason="the shared match is the FTS5 path's (SQLite)")
def test_count_and_pages_of_one_refresh_share_one_match(db_url):
    flt = TicketFilter(queue="password-reset", text="oublié")
    with db.read_session(db_url) as s:
        s.info["share"] = ("view", 1)
        assert search.count(s, flt) == 1
    with db.write_session(db_url) as s:
        engine.apply(s, 1, "reject", ALICE, note="no")  # leaves the view
    with db.read_session(db_url) as s:  # the same refresh: the match it counted
        s.info["share"] = ("view", 1)
        assert [r.id for r in search.page(s, flt, "due")] == []  # rows are read afresh...
        assert search.count(s, flt) == 1  # ...the match is the refresh's own
    with db.read_session(db_url) as s:  # the next refresh sees the change
        s.info["share"] = ("view", 2)
        assert search.count(s, flt) == 0
    with db.read_session(db_url) as s:  # and so does a session with no token
        assert search.count(s, flt) == 0


def test_a_word_in_every_subject_of_a_view_or_in_one_mail_body_counts_every_ticket(db_url):
    """Words that match every ticket of the view by their subjects leave the messages
    unread (nothing could be added); one ticket matched only by a mail's body still counts."""
    from helpdesk.base import clock
    from helpdesk.ingest.message import parse_mail
    from helpdesk.storage import messages

    flt = TicketFilter(queue="password-reset")
    with db.read_session(db_url) as s:
        view = [r.id for r in search.page(s, flt, "due", limit=1000)]
    assert len(view) >= 2
    with db.write_session(db_url) as s:
        for tid in view[:-1]:
            t = s.get(Ticket, tid)
            t.subject = f"{t.subject} zébulon"
            s.add(t)
        mail = parse_mail(
            b"From: x@example.org\nSubject: suite\nMessage-ID: <zb-1@example.org>\n\n"
            b"Le Zebulon du club est parti.\n"
        )
        messages.record_incoming(s, view[-1], mail, evidence_id=None, now=clock.now())
    searched = flt.with_(text="zébul")
    with db.read_session(db_url) as s:
        assert search.count(s, searched) == len(view)  # the last one by its mail's body
        assert sorted(r.id for r in search.page(s, searched, "due", limit=1000)) == sorted(view)
    with db.write_session(db_url) as s:
        t = s.get(Ticket, view[-1])
        t.subject = f"{t.subject} zébulon"
        s.add(t)
    with db.read_session(db_url) as s:  # every subject matches: the same count, bodies unread
        assert search.count(s, searched) == len(view)
        assert search.count(s, searched.with_(kind="done")) == 0


def _mail(s, ticket_id: int, body: bytes, n: int) -> None:
    from helpdesk.base import clock
    from helpdesk.ingest.message import parse_mail
    from helpdesk.storage import messages

    mail = parse_mail(
        b"From: x@example.org\nSubject: suite\nMessage-ID: <tags-%d@example.org>\n\n" % n + body
    )
    messages.record_incoming(s, ticket_id, mail, evidence_id=None, now=clock.now())


@pytest.mark.parametrize("via_view", [False, True], ids=["by-message", "via-view"])
def test_a_mail_body_is_found_in_its_tickets_view_and_follows_its_state(
    db_url, via_view, monkeypatch
):
    """The messages' index carries its ticket's tags (migration 0011): a word of a mail finds
    the ticket in the views that hold it, and no longer once the ticket left them. Both ways
    of finding the tickets of the messages matched (each message's row; the index of the
    view's tickets' messages, taken past ``VIA_VIEW_FROM`` messages) give the same."""
    if via_view:
        monkeypatch.setattr(search, "VIA_VIEW_FROM", 0)
    with db.write_session(db_url) as s:
        _mail(s, 1, b"Le wombat du club a mange la cle.\n", 1)
    active = TicketFilter(queue="password-reset", text="wombat")
    with db.read_session(db_url) as s:
        assert search.count(s, active) == 1
        assert [r.id for r in search.page(s, active, "due")] == [1]
        assert search.count(s, active.with_(queue="abuse")) == 0
        assert search.count(s, active.with_(kind="done")) == 0
        assert search.count(s, active.with_(policy="le-pic")) == 0
        assert search.count(s, TicketFilter(text="wombat")) == 1
    with db.write_session(db_url) as s:
        engine.apply(s, 1, "reject", ALICE, note="no")
    with db.read_session(db_url) as s:
        assert search.count(s, active) == 0
        assert search.count(s, active.with_(kind="done")) == 1
        assert [r.id for r in search.page(s, active.with_(kind="all"), "due")] == [1]
    # The tags are never what a search looks for: only subjects and bodies.
    with db.read_session(db_url) as s:
        for typed in ("tqpasswordreset", "tkdone", "tpindigos", "ta"):
            assert (
                search.count(s, TicketFilter(queue="password-reset", kind="all", text=typed)) == 0
            )
            assert ids(db_url, typed) == []


@pytest.mark.skipif(bool(PG), reason="message_fts is SQLite's; 0011 leaves PostgreSQL as it is")
def test_migration_0011_downgrades_and_upgrades(db_url):
    from alembic import command

    from helpdesk.policy import install

    with db.write_session(db_url) as s:
        _mail(s, 1, b"Un ornithorynque dans la boite.\n", 2)
    cfg = install.alembic_config(db_url)
    with db.get_engine(db_url).begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0010")
    with db.read_session(db_url) as s:
        columns = s.exec(text("SELECT * FROM message_fts LIMIT 0")).keys()
        assert list(columns) == ["subject", "body"]
        assert ids(db_url, "ornithorynque") == [1]  # 0007's index, rebuilt
    with db.write_session(db_url) as s:  # and 0007's triggers
        _mail(s, 2, b"Un second ornithorynque.\n", 3)
    assert ids(db_url, "ornithorynque") == [1, 2]
    with db.get_engine(db_url).begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
    with db.read_session(db_url) as s:
        assert list(s.exec(text("SELECT * FROM message_fts LIMIT 0")).keys()) == [
            "subject",
            "body",
            "tags",
        ]
        # each ticket in its own queue's view, and in no other
        queue_of = {tid: s.get(Ticket, tid).queue for tid in (1, 2)}
        for queue in ("password-reset", "closure", "abuse", "mail-reputation", "general"):
            flt = TicketFilter(queue=queue, kind="all", text="ornithorynque")
            mine = [tid for tid, q in queue_of.items() if q == queue]
            assert search.count(s, flt) == len(mine)
            assert sorted(r.id for r in search.page(s, flt, "due")) == mine


def test_a_redacted_mail_leaves_the_message_index(db_url):
    """Retention and erasure empty a message (``messages.redact``): its words leave the
    index with it, in every view, and the index keeps no copy of them."""
    from helpdesk.base import clock
    from helpdesk.storage import messages

    with db.write_session(db_url) as s:
        _mail(s, 1, b"Le capybara habite rue des Lilas.\n", 4)
    flt = TicketFilter(queue="password-reset", text="capybara")
    with db.read_session(db_url) as s:
        assert search.count(s, flt) == 1 and ids(db_url, "capybara") == [1]
    with db.write_session(db_url) as s:
        assert messages.redact(s, 1, clock.now()) >= 1
    with db.read_session(db_url) as s:
        assert search.count(s, flt) == 0 and search.count(s, flt.with_(kind="all")) == 0
        if search.has_fts(s):  # SQLite: the FTS5 table keeps no copy of the words
            kept = s.exec(text("SELECT body FROM message_fts WHERE body LIKE '%capybara%'"))
            assert kept.all() == []
    assert ids(db_url, "capybara") == [] and ids(db_url, "Lilas") == []
