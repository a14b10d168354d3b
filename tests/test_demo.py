"""The demo database (every state of every procedure, through the engine) and the bulk
generator for benchmarks (consistent rows, an intact audit chain)."""

from __future__ import annotations

import json
import re
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import func
from sqlmodel import col, select

from helpdesk.base import clock
from helpdesk.storage import audit, db
from benchmarks import bulk
from helpdesk.training import demo
from helpdesk.service import sweep
from helpdesk.workflow import engine
from helpdesk.policy import install
from helpdesk.service import api
from helpdesk.rules.context import Actor
from helpdesk.storage.models import Account, Deadline, Event, ResetToken, State, Ticket

NOW = datetime(2026, 11, 23, 9, 30, tzinfo=timezone.utc)
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def _forget(url: str) -> None:
    engine_ = db._engines.pop(url, None)
    if engine_ is not None:
        engine_.dispose()


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory):
    url = f"sqlite:///{tmp_path_factory.mktemp('demo') / 'demo.db'}"
    summary = demo.build_demo(url, now=NOW)
    yield url, summary
    _forget(url)


# --- the demo ------------------------------------------------------------------------------


def test_no_step_crashes_inside_the_core(demo_db):
    """Every step the demo takes is an allowed one: none may end in an exception."""
    _url, summary = demo_db
    assert summary["failures"] == [], "steps crashed inside the core:\n" + json.dumps(
        summary["failures"], indent=1, ensure_ascii=False
    )


def test_every_reachable_state_has_a_ticket(demo_db):
    url, summary = demo_db
    with db.read_session(url) as s:
        wanted = set(demo.all_states(s))
        have = set(s.exec(select(Ticket.policy_key, Ticket.queue, Ticket.state).distinct()).all())
    not_built = {w for w in wanted if demo.unreachable(*w)}  # e.g. an erasure under way
    missing = wanted - have - not_built
    # A crash inside the core (see the test above) may leave its procedure's later states empty.
    crashed = {(f["policy"], f["queue"]) for f in summary["failures"]}
    assert {m for m in missing if m[:2] not in crashed} == set()
    if not crashed:
        assert wanted - have == not_built
    assert len(wanted) > 100


def test_every_state_in_the_tables_is_reachable(demo_db):
    """Packs are pruned to reachable states: nothing in the tables is dead weight."""
    assert demo.UNREACHABLE == {}


def test_summary_counts_match_the_tables(demo_db):
    url, summary = demo_db
    with db.read_session(url) as s:
        assert summary["tickets"] == s.exec(select(func.count()).select_from(Ticket)).one()
        rows = s.exec(
            select(Ticket.policy_key, Ticket.queue, Ticket.state, func.count()).group_by(
                Ticket.policy_key, Ticket.queue, Ticket.state
            )
        ).all()
        for policy, queue, state, n in rows:
            assert summary["states"][policy][queue][state] == n
        assert sum(n for _p, _q, _s, n in rows) == summary["tickets"]
    assert 150 <= summary["tickets"] <= 600
    assert summary["overdue"] > 0
    assert summary["volunteers"] == 7


def test_audit_chain_is_intact(demo_db):
    url, _summary = demo_db
    with db.read_session(url) as s:
        count, problems = audit.verify(s)
    assert problems == []
    assert count > 300


def test_history_is_in_time_order_and_in_the_past(demo_db):
    url, _summary = demo_db
    with db.read_session(url) as s:
        ats = s.exec(select(Event.at).order_by(Event.id)).all()
        opened = s.exec(select(func.min(Ticket.opened_at), func.max(Ticket.opened_at))).one()
    assert ats == sorted(ats)
    assert ats[-1] <= NOW
    assert opened[0] < NOW - timedelta(days=300) and opened[1] > NOW - timedelta(days=2)


def test_hostile_text_is_stored_without_control_characters(demo_db):
    url, _summary = demo_db
    with db.read_session(url) as s:
        tickets = s.exec(select(Ticket)).all()
        accounts = s.exec(select(Account)).all()
        notes = s.exec(select(Event.note)).all()
    texts = (
        [t.subject for t in tickets]
        + [t.requester for t in tickets]
        + [json.dumps(t.fields, ensure_ascii=False) for t in tickets]
    )
    texts += [a.org for a in accounts] + [a.login for a in accounts] + list(notes)
    assert not [t for t in texts if CONTROL.search(t)]
    subjects = {t.subject for t in tickets}
    # Markup stays literal (the TUI must show it as text); escape sequences are gone.
    assert "[@click=app.quit]x[/]" in subjects
    assert "[bold]gras" in subjects
    assert "[link=https://phish.example.net]Cliquez ici[/link]" in subjects
    assert "écran effacé" in subjects
    assert any(sub.startswith("copie") for sub in subjects)
    assert "nul et cloche !" in subjects
    requesters = {t.requester for t in tickets}
    assert "[bold]eve[/bold]@example.net" in requesters
    assert "mallory@example.net" in requesters
    assert any("[@click=app.quit]" in a.org for a in accounts)
    assert any("[@click=app.quit]" in str(t.fields.get("reporter", "")) for t in tickets)


def test_the_scenarios_trainers_show(demo_db):
    url, summary = demo_db
    with db.read_session(url) as s:
        # A reset reporting suspicious access opened a linked compromise ticket.
        linked = s.exec(select(Ticket).where(Ticket.parent_id.is_not(None))).all()
        assert linked and all(
            t.queue == "abuse" and t.fields["category"] == "compromise" for t in linked
        )
        assert all(s.get(Ticket, t.parent_id).queue == "password-reset" for t in linked)
        # Weentime employees and CPAS end users are redirected.
        for policy, kind in (("weentime", "employee"), ("communesplone", "end-user")):
            rows = s.exec(
                select(Ticket.id)
                .join(Account, Account.id == Ticket.account_id)
                .where(
                    Ticket.policy_key == policy,
                    Ticket.queue == "password-reset",
                    Ticket.state == "redirected",
                    Account.kind == kind,
                )
            ).all()
            assert rows, policy
        # CommunesPlone gives codes by phone, never a link by mail; only hashes are stored.
        tokens = s.exec(
            select(ResetToken)
            .join(Ticket, Ticket.id == ResetToken.ticket_id)
            .where(Ticket.policy_key == "communesplone")
        ).all()
        assert tokens and all(t.channel == "phone" and len(t.token_hash) == 64 for t in tokens)
        # A reset blocked because the requester is not a registered contact.
        blocked = [
            t.id
            for t in s.exec(
                select(Ticket).where(Ticket.queue == "password-reset", Ticket.state == "received")
            ).all()
            for a in engine.actions(s, t, Actor("alice", "volunteer"), NOW)
            if a.key in ("issue-reset-link", "give-code-by-phone")
            and a.rule == "requester_is_contact"
        ]
        assert len(blocked) >= 5
        # Repeat offenders: one sanctions ledger across abuse and mail-reputation tickets.
        assert len(summary["repeat_offenders"]) >= 3
        for r in summary["repeat_offenders"]:
            view = api.account_view(s, api.find_account(s, r["login"], r["policy"]))
            assert len({x["ticket"] for x in view["sanctions"]}) >= 2, r
        ledger_queues = set(
            s.exec(
                select(Ticket.queue)
                .join(Event, Event.ticket_id == Ticket.id)
                .join(Account, Account.id == Ticket.account_id)
                .where(
                    Event.sanction.is_not(None),
                    Account.login == summary["repeat_offenders"][0]["login"],
                )
            ).all()
        )
        assert ledger_queues == {"abuse", "mail-reputation"}
        # Mail-reputation alerts hold figures only: fields are the workflow's declared ones.
        for t in s.exec(select(Ticket).where(Ticket.queue == "mail-reputation")).all():
            declared = engine.definition(s, t.workflow_id).workflow.fields
            assert set(t.fields) <= set(declared)
        # Scans opened closures on the clock (inactivity, lapse, term reached).
        scanned = s.exec(
            select(Event.ticket_id).where(
                Event.action == "open", Event.actor == "system", Event.note != ""
            )
        ).all()
        assert len(scanned) >= 5


def test_every_ticket_can_be_viewed(demo_db):
    url, _summary = demo_db
    with db.read_session(url) as s:
        for t in s.exec(select(Ticket).order_by(Ticket.id)).all()[::7]:
            view = api.ticket_view(s, t, Actor("bob", "oncall"), now=NOW)
            assert view["events"] and view["events"][0]["action"] == "open"


def test_demo_needs_an_empty_database(demo_db):
    url, _summary = demo_db
    with pytest.raises(ValueError):
        demo.build_demo(url, now=NOW)


def test_demo_url_is_a_fresh_file_in_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    url = demo.demo_url()
    assert url.startswith("sqlite:///")
    path = Path(url[len("sqlite:///") :])
    assert path.parent.is_dir() and str(path).startswith(str(tmp_path)) and not path.exists()


# --- bulk data ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bulk_db(tmp_path_factory):
    url = f"sqlite:///{tmp_path_factory.mktemp('bulk') / 'bulk.db'}"
    install.init(url)
    with db.write_session(url) as s:
        for login, role in (("alice", "volunteer"), ("bob", "oncall"), ("chloe", "techadmin")):
            api.add_volunteer(s, login, role)
    counts = bulk.generate(url, 2000, seed=3, now=NOW)
    yield url, counts
    _forget(url)


def test_bulk_counts(bulk_db):
    url, counts = bulk_db
    with db.read_session(url) as s:
        assert s.exec(select(func.count()).select_from(Ticket)).one() == counts["tickets"] == 2000
        assert counts["events"] >= 2000 and counts["accounts"] >= 400


def test_bulk_messages_are_indexed_with_their_tickets_tags(bulk_db):
    """What bulk writes into the messages' search index is what the triggers of migration
    0011 write: every message, with its ticket's tags, so a search in a view finds it."""
    from sqlalchemy import text

    from helpdesk.storage import search
    from helpdesk.storage.models import Message

    url, _counts = bulk_db
    with db.read_session(url) as s:
        n = s.exec(select(func.count()).select_from(Message)).one()
        assert s.exec(text("SELECT count(*) FROM message_fts")).one()[0] == n > 0
        for queue in ("password-reset", "abuse"):
            for kind in ("open", "done"):
                tags = search.tags_expression(search.TicketFilter(queue=queue, kind=kind))
                indexed = s.exec(
                    text("SELECT count(*) FROM message_fts WHERE message_fts MATCH :q"),
                    params={"q": tags},
                ).one()[0]
                held = s.exec(
                    select(func.count())
                    .select_from(Message)
                    .join(Ticket, col(Ticket.id) == Message.ticket_id)
                    .where(Ticket.queue == queue, Ticket.state_kind == kind)
                ).one()
                assert indexed == held > 0, (queue, kind)


def test_bulk_tickets_follow_the_workflow_tables(bulk_db):
    url, _counts = bulk_db
    with db.read_session(url) as s:
        bad = s.exec(
            select(func.count())
            .select_from(Ticket)
            .outerjoin(
                State, (State.workflow_id == Ticket.workflow_id) & (State.key == Ticket.state)
            )
            .where((State.id.is_(None)) | (State.kind != Ticket.state_kind))
        ).one()
        assert bad == 0
        # due_at is the earliest pending deadline, and only on tickets not done.
        for t in s.exec(select(Ticket)).all():
            first = s.exec(
                select(func.min(Deadline.due_at)).where(
                    Deadline.ticket_id == t.id, Deadline.status == "pending"
                )
            ).one()
            assert t.due_at == (first if t.state_kind != "done" else None), t.id
            assert (t.closed_at is not None) == (t.state_kind == "done")
        # Each history starts with the opening and ends in the ticket's state.
        last = dict(
            s.exec(
                select(Event.ticket_id, Event.to_state).where(
                    Event.id.in_(
                        select(func.max(Event.id))
                        .where(Event.ticket_id.is_not(None))
                        .group_by(Event.ticket_id)
                    )
                )
            ).all()
        )
        states = dict(s.exec(select(Ticket.id, Ticket.state)).all())
        assert last == states


def test_bulk_service_views(bulk_db):
    url, _counts = bulk_db
    with db.read_session(url) as s:
        rows = api.list_tickets(s, limit=50)
        assert len(rows) == 50 and all(r.state_kind != "done" for r in rows)
        for t in rows[:10] + api.list_tickets(s, include_done=True, order="new", limit=10):
            view = api.ticket_view(s, t, Actor("bob", "oncall"), now=NOW)
            assert view["events"][0]["action"] == "open"
        counts = api.queue_counts(s, NOW)
        expected: dict = {}
        for queue, kind, n in s.exec(
            select(Ticket.queue, Ticket.state_kind, func.count())
            .where(Ticket.state_kind != "done")
            .group_by(Ticket.queue, Ticket.state_kind)
        ):
            expected.setdefault(queue, {"open": 0, "waiting": 0, "overdue": 0})[kind] = n
        for queue, n in s.exec(
            select(Ticket.queue, func.count())
            .where(Ticket.state_kind != "done", Ticket.due_at <= NOW)
            .group_by(Ticket.queue)
        ):
            expected[queue]["overdue"] = n
        binding = {q: c.pop("binding") for q, c in counts.items() if "binding" in c}
        assert counts == expected
        assert sum(c["overdue"] for c in counts.values()) > 0
        # Open tickets carrying a date the text makes binding (Le PIC's removal, a
        # convention's 48 months): counted apart from the indicative targets.
        assert binding == api.binding_counts(s) and set(binding) <= {"closure"}


def test_bulk_audit_chain_verifies(bulk_db):
    url, _counts = bulk_db
    with db.read_session(url) as s:
        count, problems = audit.verify(s)
    assert problems == [] and count > 2000


def test_bulk_timers_are_all_in_the_future(bulk_db):
    """So that a sweep at now takes nothing that a guard would refuse."""
    url, _counts = bulk_db
    with db.read_session(url) as s:
        due = s.exec(
            select(func.count())
            .select_from(Deadline)
            .where(
                Deadline.status == "pending", Deadline.action.is_not(None), Deadline.due_at <= NOW
            )
        ).one()
    assert due == 0
    report = sweep.run(url, now=NOW)
    assert report.taken == [] and report.refused == []


def test_bulk_appends_to_an_existing_chain(demo_db, tmp_path):
    """Bulk data after the demo's events: the chain goes on from the demo's last hash."""
    import sqlite3

    src = Path(demo_db[0][len("sqlite:///") :])
    path = tmp_path / "copy.db"
    a, b = sqlite3.connect(src), sqlite3.connect(path)
    a.backup(b)  # the WAL included
    a.close()
    b.close()
    url = f"sqlite:///{path}"
    try:
        counts = bulk.generate(url, 300, seed=5, now=NOW)
        with db.read_session(url) as s:
            count, problems = audit.verify(s)
            assert problems == []
            assert count == demo_db[1]["events"] + counts["events"]
            # The engine keeps working on bulk tickets.
            t = api.list_tickets(s, queue="password-reset", state="received", limit=1)[0]
        with db.write_session(url) as s:
            engine.apply(s, t.id, "reject", Actor("alice", "volunteer"), note="test", now=NOW)
        with db.read_session(url) as s:
            assert audit.verify(s)[1] == []
    finally:
        _forget(url)


def test_demo_database_reuses_a_recent_build(tmp_path, monkeypatch):
    """``helpdesk demo`` gets a fresh copy of a build made within CACHE_HOURS."""
    import sqlite3

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    builds = []

    def fake_build(url, *, training=True, progress=None, **_kw):
        path = url[len("sqlite:///") :]
        with sqlite3.connect(path) as conn:
            conn.execute("CREATE TABLE marker (n INTEGER)")
            conn.execute("INSERT INTO marker VALUES (?)", (len(builds),))
        conn.close()
        builds.append(url)
        return {"url": url, "tickets": 1}

    monkeypatch.setattr(demo, "build_demo", fake_build)
    url1, s1 = demo.demo_database()
    url2, s2 = demo.demo_database()
    assert len(builds) == 1 and url1 != url2
    assert s2["cached"] is True and s2["url"] == url2 and s2["tickets"] == 1
    conn = sqlite3.connect(url2[len("sqlite:///") :])
    assert conn.execute("SELECT n FROM marker").fetchall() == [(0,)]
    conn.close()
    demo.demo_database(training=False)  # another key: built again
    assert len(builds) == 2


def test_helpdesk_demo_counts_the_tickets_while_it_builds_then_reuses_the_build(
    tmp_path, monkeypatch
):
    """``helpdesk demo`` (screens.start) shows a counter on the terminal while the demo
    database is built, and the next start copies that build without counting again."""
    import io

    from screens import start

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv("HELPDESK_NOW", raising=False)
    clock.set_now(None)  # the wall clock: a build at a moved clock is not kept
    first = Terminal()
    monkeypatch.setattr(sys, "stderr", first)
    url, user = start._demo_database(None)
    shown = first.getvalue()
    counts = [tuple(map(int, m)) for m in re.findall(r"(\d+)/(\d+) tickets", shown)]
    assert len(counts) > 3, shown
    done = [d for d, _t in counts]
    assert done == sorted(done) and counts[-1][0] == counts[-1][1]  # up to the last ticket
    assert shown.startswith("Construction de la base de démonstration…")
    assert user == "tom" and shown.endswith("\n")
    second = Terminal()
    monkeypatch.setattr(sys, "stderr", second)
    url2, user2 = start._demo_database(None)
    assert url2 != url and user2 == "tom" and second.getvalue() == ""  # copied, not built
    with db.read_session(url2) as s:
        assert s.exec(select(func.count()).select_from(Ticket)).one() > 100
    for u in (url, url2):
        _forget(u)
