"""Many volunteers at once: no lost update, no "database is locked", no fork in the chain.

Every racer is a real process running the real command line (``helpdesk.cli.main.main``) on
the same database: an SQLite file in WAL mode, or with ``HELPDESK_TEST_PG`` one PostgreSQL
database. Each racer imports everything first, says it is ready, then waits for a start
line (a file) so that all of them hit the database at the same moment.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sqlmodel import select

from helpdesk.storage import db
from helpdesk.service import api
from helpdesk.rules.context import Actor
from helpdesk.storage.models import Event, Ticket

RACER = r"""
import contextlib, io, json, os, sys, time
import helpdesk.cli.main, helpdesk.storage.db, helpdesk.workflow.engine, helpdesk.service.api, helpdesk.policy.install, sqlmodel  # before the start line
folder, me, commands = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
results = []
for k, argv in enumerate(commands):
    open(os.path.join(folder, f"ready-{me}-{k}"), "w").close()
    while not os.path.exists(os.path.join(folder, f"start-{k}")):
        time.sleep(0.001)
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out):
            code = helpdesk.cli.main.main(argv)
        results.append({"code": code, "out": out.getvalue()})
    except BaseException as exc:  # what must never happen: an error that escapes the CLI
        results.append({"code": "exception", "out": f"{type(exc).__name__}: {exc}"})
sys.stdout.write(json.dumps(results))
"""


def race(
    hd, tmp_path: Path, racers: list[list[list[str]]], *, rounds: bool = False, timeout: float = 120
) -> list[list[dict]]:
    """Start one process per racer (each a list of CLI argv), release them all at once, and
    return each one's results: [{"code": exit code, "out": its stdout}, ...].

    With ``rounds``, command k of every racer starts together, once all racers are done
    with command k-1; otherwise each racer runs its commands one after the other."""
    folder = Path(tmp_path) / f"race-{time.monotonic_ns()}"
    folder.mkdir()
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                RACER,
                str(folder),
                str(i),
                json.dumps([["--db", hd.url, *cmd, "--json"] for cmd in commands]),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=hd.env,
        )
        for i, commands in enumerate(racers)
    ]
    steps = max(len(c) for c in racers)

    def release(k: int) -> None:
        deadline = time.monotonic() + timeout
        while not all(
            (folder / f"ready-{i}-{k}").exists() for i in range(len(procs)) if k < len(racers[i])
        ):
            failed = [p for p in procs if p.poll() is not None and p.returncode != 0]
            if failed:
                pytest.fail(f"a racer died: {failed[0].communicate()[1]}")
            if time.monotonic() > deadline:
                pytest.fail(f"the racers were not ready for step {k} in time")
            time.sleep(0.005)
        (folder / f"start-{k}").touch()

    try:
        if rounds:
            for k in range(steps):
                release(k)
        else:
            release(0)
            for k in range(1, steps):
                (folder / f"start-{k}").touch()
        results = []
        for p in procs:
            out, err = p.communicate(timeout=timeout)
            assert p.returncode == 0 and "Traceback" not in err, err
            assert "locked" not in err.lower(), err
            results.append(json.loads(out))
        return results
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()


def state_of(url: str, ticket: int) -> tuple[int, str, list[tuple[str, str, str]]]:
    """(version, state, [(actor, action, note)...]) read straight from the database."""
    with db.read_session(url) as s:
        t = s.get(Ticket, ticket)
        events = s.exec(select(Event).where(Event.ticket_id == ticket).order_by(Event.id)).all()
        found = t.version, t.state, [(e.actor, e.action, e.note) for e in events]
    db.get_engine(url).dispose()
    return found


def act(ticket: int, action: str, login: str, *extra: str) -> list[str]:
    return ["--as", login, "ticket", "act", str(ticket), action, *extra]


@pytest.fixture
def camille(hd):
    hd.account("camille", "indigos", "camille@example.org")
    return hd


def _open_many(url: str, n: int, queue: str = "mail-reputation") -> list[int]:
    """Open n tickets in one transaction (faster than n commands)."""
    with db.write_session(url) as s:
        api.add_account(s, login="dana", policy="indigos", email="dana@example.org")
        actor = Actor("alice", "volunteer")
        ids = [
            api.open_ticket(
                s,
                queue=queue,
                policy="indigos",
                actor=actor,
                account_login="dana",
                fields={"signal": "volume"},
            ).ticket.id
            for _ in range(n)
        ]
    db.get_engine(url).dispose()
    return ids


# --- with --if-version: one wins, the others are told who changed the ticket ----------------


def test_two_people_at_the_same_moment_one_wins_the_other_is_told_who(camille, tmp_path):
    hd = camille
    t = hd.open("abuse", "indigos", "camille", "", "category=spam")
    assert t["version"] == 1 and t["state"] == "open"
    intents = {  # login -> (action, the state it leads to)
        "alice": ("contact", "contacted"),
        "bob": ("warn", "warned"),
        "chloe": ("contact", "contacted"),
    }
    results = race(
        hd,
        tmp_path,
        [
            [act(t["id"], action, login, "--note", f"{login} was here", "--if-version", "1")]
            for login, (action, _state) in intents.items()
        ],
    )
    outcomes = dict(zip(intents, (r[0] for r in results)))
    winners = [login for login, r in outcomes.items() if r["code"] == 0]
    assert len(winners) == 1, outcomes
    winner = winners[0]
    new_state = intents[winner][1]
    assert json.loads(outcomes[winner]["out"])["state"] == new_state

    for login, r in outcomes.items():
        if login == winner:
            continue
        assert r["code"] == 1, r
        refusal = json.loads(r["out"])
        assert refusal["rule"] == "conflict"
        assert refusal["changed_by"] == winner  # told who changed it...
        assert refusal["state"] == new_state  # ...and what it is now
        assert winner in refusal["message"]

    view = hd.show(t["id"], as_="alice")
    assert view["version"] == 2 and view["state"] == new_state
    assert [(e["actor"], e["action"]) for e in view["events"]] == [
        ("alice", "open"),
        (winner, intents[winner][0]),
    ]
    assert hd.ok("audit", "verify")["ok"] is True


def test_a_crowd_racing_on_one_version_leaves_exactly_one_change(hd, tmp_path):
    (ticket,) = _open_many(hd.url, 1)
    people, rounds = ["alice", "bob", "chloe", "alice", "bob", "chloe"], 3
    # In round k everybody acts at once on version 1 + k: exactly one change per round.
    results = race(
        hd,
        tmp_path,
        [
            [
                act(
                    ticket,
                    "contact",
                    login,
                    "--note",
                    f"round {k} racer {i}",
                    "--if-version",
                    str(1 + k),
                )
                for k in range(rounds)
            ]
            for i, login in enumerate(people)
        ],
        rounds=True,
    )
    winners = []
    for k in range(rounds):
        codes = [r[k]["code"] for r in results]
        assert sorted(codes) == [0] + [1] * (len(people) - 1), [r[k] for r in results]
        winner = people[codes.index(0)]
        winners.append((winner, f"round {k} racer {codes.index(0)}"))
        for r in results:
            if r[k]["code"] == 1:
                refusal = json.loads(r[k]["out"])
                assert (refusal["rule"], refusal["changed_by"], refusal["state"]) == (
                    "conflict",
                    winner,
                    "contacted",
                )
    version, state, events = state_of(hd.url, ticket)
    assert (version, state) == (1 + rounds, "contacted")
    assert [(a, n) for a, action, n in events if action == "contact"] == winners
    assert hd.ok("audit", "verify")["ok"] is True


# --- without --if-version: everyone waits their turn, nothing is lost --------------------------


def test_concurrent_writers_on_different_tickets_all_succeed(hd, tmp_path):
    writers, each = 8, 4
    tickets = _open_many(hd.url, writers)
    before = hd.ok("audit", "verify")
    assert before["ok"] is True
    people = ["alice", "bob", "chloe"]
    results = race(
        hd,
        tmp_path,
        [
            [
                act(ticket, "contact", people[i % 3], "--note", f"writer {i} action {k}")
                for k in range(each)
            ]
            for i, ticket in enumerate(tickets)
        ],
    )
    for r in results:
        assert [x["code"] for x in r] == [0] * each, r  # no "database is locked", no conflict
    for i, ticket in enumerate(tickets):
        version, _state, events = state_of(hd.url, ticket)
        assert version == 1 + each
        assert [n for _a, action, n in events if action == "contact"] == [
            f"writer {i} action {k}" for k in range(each)
        ]
    after = hd.ok("audit", "verify")
    assert after["ok"] is True, after["problems"]  # one chain, no fork
    assert after["events"] == before["events"] + writers * each


def test_concurrent_writers_on_one_ticket_without_if_version_lose_nothing(hd, tmp_path):
    (ticket,) = _open_many(hd.url, 1)
    writers, each = 6, 3
    results = race(
        hd,
        tmp_path,
        [
            [
                act(
                    ticket,
                    "contact",
                    ["alice", "bob", "chloe"][i % 3],
                    "--note",
                    f"writer {i} action {k}",
                )
                for k in range(each)
            ]
            for i in range(writers)
        ],
    )
    assert all(x["code"] == 0 for r in results for x in r), results
    version, _state, events = state_of(hd.url, ticket)
    assert version == 1 + writers * each
    notes = sorted(n for _a, action, n in events if action == "contact")
    assert notes == sorted(f"writer {i} action {k}" for i in range(writers) for k in range(each))
    assert hd.ok("audit", "verify")["ok"] is True
