"""``ticket list`` reads with SQLAlchemy Core (``helpdesk.storage.tables``,
``helpdesk.service.listing``), without SQLModel, pydantic, the ORM or the models: it must read
what the models hold, decoded the same, and print what a read through the models prints."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy.types import TypeDecorator
from sqlmodel import SQLModel, col, select

from benchmarks import bulk
from helpdesk.base import clock
from helpdesk.service import api, listing
from helpdesk.service.listing import binding_names
from helpdesk.storage import db, tables
from helpdesk.storage.columns import UTCDateTime
from helpdesk.storage.models import Account, Deadline, Outbox, Policy, Ticket
from tests.conftest import ROOT

NOW = datetime(2026, 11, 23, 9, 30, tzinfo=timezone.utc)


def test_every_column_the_core_path_reads_is_in_the_models_with_the_same_type():
    """The one schema is the models'; a column renamed, dropped or retyped there fails here,
    not in a volunteer's ``ticket list``."""
    assert {t.name for t in tables.ALL} <= set(SQLModel.metadata.tables)
    for light in tables.ALL:
        model = SQLModel.metadata.tables[light.name]
        for c in light.c:
            assert c.name in model.c, f"{light.name}.{c.name} is not in the models"
            mine, theirs = c.type, model.c[c.name].type
            if isinstance(mine, UTCDateTime) or isinstance(theirs, UTCDateTime):
                assert type(mine) is type(theirs), f"{light.name}.{c.name}: UTC datetimes"
                continue
            if isinstance(theirs, TypeDecorator):  # SQLModel's str: an AutoString on a String
                assert not isinstance(mine, TypeDecorator)
                assert type(theirs).process_result_value is TypeDecorator.process_result_value
                theirs = theirs.impl_instance
            # What matters is how a value reads back: the same kind of type.
            assert isinstance(theirs, type(mine)), f"{light.name}.{c.name}: {theirs!r}, {mine!r}"
    assert {c.name for c in listing.TICKET_COLUMNS} <= set(tables.ticket.c.keys())


def _full_model_rows(s, tickets: list[Ticket]) -> list[dict]:
    """What ``ticket list --json`` printed when it read the models: each field from the
    model row, the account and the binding date by the ORM."""
    out = []
    for t in tickets:
        acc = s.get(Account, t.account_id) if t.account_id else None
        names = set(((s.get(Policy, t.policy_key).params or {}).get("binding_deadlines")) or [])
        b = None
        if names and t.state_kind != "done":
            b = s.exec(
                select(Deadline)
                .where(
                    Deadline.ticket_id == t.id,
                    col(Deadline.name).in_(sorted(names)),
                    col(Deadline.status).in_(("pending", "info")),
                )
                .order_by(col(Deadline.due_at))
            ).first()
        out.append(
            {
                "id": t.id,
                "queue": t.queue,
                "policy": t.policy_key,
                "state": t.state,
                "state_kind": t.state_kind,
                "account": acc.login if acc else None,
                "requester": t.requester,
                "subject": t.subject,
                "due_at": clock.iso(t.due_at),
                "binding_at": clock.iso(b.due_at) if b else None,
                "binding": b.name if b else None,
                "opened_at": clock.iso(t.opened_at),
                "assignee": t.assignee,
            }
        )
    return out


@pytest.fixture
def busy_db(db_url, hd):
    """A real database (SQLite, or PostgreSQL with HELPDESK_TEST_PG) with 400 bulk tickets,
    binding dates, a bounced mail on a finished ticket and a volunteer scoped to a provider."""
    bulk.generate(db_url, 400, seed=11, now=NOW)
    with db.write_session(db_url) as s:
        done = s.exec(select(Ticket).where(Ticket.state_kind == "done").order_by(col(Ticket.id)))
        t = done.first()
        s.add(Outbox(ticket_id=t.id, to_addr="x@example.org", status="bounced", created_at=NOW))
        pic = s.exec(
            select(Ticket)
            .where(Ticket.policy_key == "le-pic", Ticket.state_kind != "done")
            .order_by(col(Ticket.id))
            .limit(3)
        ).all()
        for i, p in enumerate(pic):
            for name, days in (("data-removal", 40 + i), ("data-removal", 10 + i)):
                s.add(Deadline(ticket_id=p.id, name=name, due_at=NOW + timedelta(days=days)))
            p.due_at = NOW + timedelta(microseconds=250_000)  # read back alike either way
    hd.ok("volunteer", "add", "paula", "--role", "volunteer", "--policy", "le-pic")
    return db_url, t.id


FILTERS = [
    {},
    {"include_done": True, "order": "new", "limit": 500},
    {"queue": "closure", "order": "age"},
    {"state": "received", "order": "state"},
    {"policy": "le-pic", "limit": 7, "offset": 3},
    {"overdue_at": NOW, "limit": 300},
    {"assignee": "alice", "include_done": True},
]


def test_the_core_path_gives_what_the_models_give(busy_db):
    url, _bounced = busy_db
    for filters in FILTERS:
        with db.read_connection(url) as conn:
            fast = listing.ticket_rows(conn, listing.list_tickets(conn, **filters))
        with db.read_session(url) as s:
            full = _full_model_rows(s, api.list_tickets(s, **filters))
        assert fast == full, filters
        assert fast, f"{filters} lists some tickets here"
        # The same decoded values, not only equal ones: UTC datetimes, ints, str.
        assert json.dumps(fast, default=str) == json.dumps(full, default=str)


def test_ticket_list_json_is_what_a_read_through_the_models_prints(busy_db, hd):
    """Byte for byte, through the real command line, with filters, scope and binding dates."""
    url, bounced = busy_db
    account = None
    with db.read_session(url) as s:
        account = s.exec(select(Account.login).where(Account.policy_key == "le-pic")).first()
    cases = [
        (["--all", "--limit", "500"], {"include_done": True, "limit": 500}, "chloe"),
        (["--sort", "age", "--queue", "closure"], {"order": "age", "queue": "closure"}, "chloe"),
        (["--policy", "le-pic"], {"policy": "le-pic"}, "paula"),
        ([], {}, "paula"),  # scoped: le-pic's tickets only
        (["--account", account, "--all"], {"account": account, "include_done": True}, "bob"),
        (["--overdue"], {"overdue_at": NOW}, "bob"),
    ]
    for argv, filters, who in cases:
        r = hd.run("ticket", "list", *argv, as_=who, now=clock.iso(NOW))
        assert r.code == 0, r.err
        with db.read_session(url) as s:
            actor = api.actor_for(s, who)
            full = _full_model_rows(s, api.list_tickets(s, actor=actor, **filters))
        assert full, argv
        assert r.out == json.dumps(full, ensure_ascii=False, indent=2, default=str) + "\n", argv
        if who == "paula":
            assert {row["policy"] for row in r.json} == {"le-pic"}
    listed = [row["id"] for row in hd.ok("ticket", "list", "--limit", "500", now=clock.iso(NOW))]
    assert bounced in listed  # finished, but its mail came back: still waits for a person
    assert any(row["binding"] == "data-removal" for row in hd.ok("ticket", "list", "--all"))


def test_the_scope_and_the_checks_are_the_full_paths(busy_db, hd):
    hd.refused("ticket", "list", "--policy", "indigos", as_="paula", rule="scope")
    assert "'nope'" in hd.bad("ticket", "list", "--policy", "nope").json["message"]
    assert "'nobody'" in hd.bad("ticket", "list", "--assignee", "nobody").json["message"]
    assert "'nobody'" in hd.bad("ticket", "list", as_="nobody").json["message"]
    assert hd.bad("ticket", "list", "--limit", "0").code == 2
    hd.ok("volunteer", "deactivate", "paula")
    hd.refused("ticket", "list", as_="paula", rule="withdrawn")


@pytest.mark.parametrize(
    "argv",
    [
        ["ticket", "list", "--json"],
        ["ticket", "list", "--all", "--sort", "state"],  # the table for people too
        ["dashboard", "--json"],
        ["dashboard"],
    ],
    ids=" ".join,
)
def test_reads_load_neither_sqlmodel_nor_the_orm_nor_the_models(hd, argv):
    """The read starts at the floor's cost plus its own: ``benchmarks/cli_bench.py``."""
    url = hd.url
    hd.account("camille", "indigos", "camille@example.org")
    hd.open("abuse", "indigos", "camille", "", "category=spam")
    code = (
        "import io, json, sys, contextlib\n"
        "from helpdesk.cli.entry import main\n"
        "out = io.StringIO()\n"
        "with contextlib.redirect_stdout(out):\n"
        f"    code = main(['--db', {url!r}, *{argv!r}, '--as', 'chloe'])\n"
        "assert code == 0 and out.getvalue().strip(), out.getvalue()\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    p = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=hd.env
    )
    assert p.returncode == 0, p.stderr[-3000:]
    loaded = set(json.loads(p.stdout))
    heavy = {"sqlmodel", "pydantic", "sqlalchemy.orm", "helpdesk.storage.models"}
    assert not loaded & heavy, sorted(loaded & heavy)
    assert "sqlalchemy" in loaded  # the floor it is measured beside


def test_dashboard_counts_what_the_models_hold(busy_db, hd):
    """``dashboard --json`` (Core) against counts made here from the model rows."""
    url, _bounced = busy_db
    got = hd.ok("dashboard", "--json", "--limit", "1000", now=clock.iso(NOW), as_="paula")
    with db.read_session(url) as s:
        names = binding_names(s.get(Policy, "le-pic"))
        queues: dict = {}
        binding: dict = {}
        for t in s.exec(select(Ticket).where(Ticket.policy_key == "le-pic")):
            if t.state_kind not in ("open", "waiting"):
                continue
            q = queues.setdefault(t.queue, {"open": 0, "waiting": 0, "overdue": 0, "binding": 0})
            q[t.state_kind] += 1
            q["overdue"] += bool(t.due_at and t.due_at <= NOW)
            dates = s.exec(
                select(Deadline).where(
                    Deadline.ticket_id == t.id,
                    col(Deadline.name).in_(sorted(names)),
                    col(Deadline.status).in_(("pending", "info")),
                )
            ).all()
            q["binding"] += bool(dates)
            if dates:
                b = min(dates, key=lambda d: d.due_at)
                binding[t.id] = {
                    "ticket": t.id,
                    "queue": t.queue,
                    "policy": "le-pic",
                    "name": b.name,
                    "at": clock.iso(b.due_at),
                    "subject": t.subject,
                }
    assert {q: c for q, c in got["queues"].items() if any(c.values())} == queues
    assert got["binding"] == sorted(binding.values(), key=lambda b: (b["at"], b["ticket"]))
    assert len(got["binding"]) >= 3  # the dates added above


def test_providers_are_named_as_the_models_name_them(db_url):
    """``policy_names`` (Core) gives each provider's name, time zone and short name: the
    pack's ``short_name`` kept with its parameters, else its name."""
    with db.write_session(db_url) as s:
        pic = s.get(Policy, "le-pic")
        pic.params = {**(pic.params or {}), "short_name": "Le PIC"}
        s.add(pic)
    with db.read_session(db_url) as s:
        models = {p.key: p for p in s.exec(select(Policy))}
    with db.read_connection(db_url) as conn:
        got = listing.policy_names(conn)
    assert set(got) == set(models) and got["le-pic"].short_name == "Le PIC"
    for key, p in models.items():
        assert (got[key].name, got[key].timezone) == (p.name, p.timezone)
        assert got[key].short_name == ((p.params or {}).get("short_name") or p.name)
