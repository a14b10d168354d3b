"""Many volunteers at once: throughput, latency and lost updates (there must be none).

``python benchmarks/concurrency.py [--processes 16] [--actions 200] [--hot 0.25]
[--pg postgresql://postgres@127.0.0.1:5432/postgres] [--no-sqlite] [--keep DIR] [--writer-lock]``

(``HELPDESK_BENCH_PG`` works as ``--pg``.) On an SQLite file in WAL mode, and on a fresh
PostgreSQL database when a server URL is given, it sets up one volunteer per process, one
account and mail-reputation tickets (whose ``contact`` step can be repeated): one ticket of
its own per process and a few "hot" tickets that every process works on. Then each
process, all released at the same moment, takes ``--actions`` actions through the library
(``helpdesk.storage.db.write_session`` + ``helpdesk.workflow.engine.apply``, as the TUI does; not the CLI,
so the figures measure the database and not Python's start-up). An action reads the
ticket's version, then applies ``contact`` with ``expected_version``: on its own ticket it
always succeeds; on a hot ticket someone else may have been faster, and that is a
*conflict*, reported (as the TUI tells the volunteer who changed the ticket), never lost.

Afterwards it checks, from the database: every successful action has exactly one event
(its note is unique), no refused action left one, each ticket's version is 1 + its
successful actions, and the audit chain verifies. It prints p50/p95/p99 latency of the
action (the write transaction, commit included), throughput, and the counts.
Exit code 1 if any check fails.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

POLICY = "indigos"
QUEUE = "mail-reputation"
ACTION = "contact"


# --- the workers ----------------------------------------------------------------------------


def worker(
    url: str,
    index: int,
    own: int,
    hot: list[int],
    actions: int,
    hot_share: float,
    seed: int,
    start,
    results,
    writer_lock: str = "",
) -> None:
    from helpdesk.storage import db
    from helpdesk.workflow import engine
    from helpdesk.rules import registry
    from helpdesk.rules.context import Actor
    from helpdesk.base.errors import Conflict, HelpdeskError
    from helpdesk.storage.models import Ticket

    login = f"w{index:02d}"
    actor = Actor(login, "volunteer")
    rng = random.Random(seed * 1000 + index)
    write_session = db.write_session
    if writer_lock:
        write_session = _queued(write_session, writer_lock)
    registry.load()
    with db.read_session(url) as s:  # connect and warm up before the start
        s.get(Ticket, own)
    done: list[tuple[int, str]] = []  # (ticket, note) of each success
    conflicts: list[tuple[int, str]] = []
    errors: list[str] = []
    latencies: list[float] = []
    start.wait()
    began = time.perf_counter()
    for k in range(actions):
        ticket = rng.choice(hot) if hot and rng.random() < hot_share else own
        note = f"{login}-{k:04d}"
        with db.read_session(url) as s:  # what the screen shows: the version it was read at
            version = s.get(Ticket, ticket).version
        t0 = time.perf_counter()
        try:
            with write_session(url) as s:
                engine.apply(s, ticket, ACTION, actor, note=note, expected_version=version)
            latencies.append(time.perf_counter() - t0)
            done.append((ticket, note))
        except Conflict as exc:
            latencies.append(time.perf_counter() - t0)
            conflicts.append((ticket, exc.changed_by))
        except HelpdeskError as exc:
            errors.append(f"{type(exc).__name__}: {exc}")
        except Exception as exc:  # noqa: BLE001 - "database is locked", deadlocks...: counted, shown
            errors.append(f"{type(exc).__name__}: {str(exc).splitlines()[0]}")
    results.put(
        {
            "index": index,
            "done": done,
            "conflicts": conflicts,
            "errors": errors,
            "latencies": latencies,
            "seconds": time.perf_counter() - began,
        }
    )


def _queued(write_session, path: str):
    """An experiment (--writer-lock): writers queue on an flock() of a side file before
    BEGIN IMMEDIATE, so they sleep in the kernel and are woken when the lock is free,
    instead of SQLite's busy handler polling with growing sleeps (which is unfair)."""
    import fcntl
    from contextlib import contextmanager

    @contextmanager
    def locked(url):
        with open(path, "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                with write_session(url) as s:
                    yield s
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    return locked


# --- set-up and checks -----------------------------------------------------------------------


def setup(url: str, processes: int, hot_tickets: int) -> tuple[list[int], list[int]]:
    from helpdesk.storage import db
    from helpdesk.policy import install
    from helpdesk.service import api
    from helpdesk.rules.context import Actor

    install.init(url, [POLICY])
    with db.write_session(url) as s:
        for i in range(processes):
            api.add_volunteer(s, f"w{i:02d}", "volunteer")
        api.add_account(s, login="bench", policy=POLICY, email="bench@example.org")
        opener = Actor("w00", "volunteer")

        def open_one() -> int:
            return api.open_ticket(
                s,
                queue=QUEUE,
                policy=POLICY,
                actor=opener,
                account_login="bench",
                fields={"signal": "volume"},
            ).ticket.id

        own = [open_one() for _ in range(processes)]
        hot = [open_one() for _ in range(hot_tickets)]
    db.get_engine(url).dispose()
    return own, hot


def check(url: str, tickets: list[int], outcome: list[dict]) -> tuple[dict, list[str]]:
    """Counts read back from the database, and what is wrong with it ([] when nothing is)."""
    from sqlmodel import func, select

    from helpdesk.storage import audit, db
    from helpdesk.storage.models import Event, Ticket

    problems: list[str] = []
    succeeded = Counter(t for r in outcome for t, _note in r["done"])
    notes = {note for r in outcome for _t, note in r["done"]}
    with db.read_session(url) as s:
        wrong_versions = []
        for t in tickets:
            ticket = s.get(Ticket, t)
            if ticket.version != 1 + succeeded[t]:
                wrong_versions.append(
                    f"#{t}: version {ticket.version}, expected {1 + succeeded[t]}"
                )
        recorded = dict(
            s.exec(
                select(Event.note, func.count()).where(Event.action == ACTION).group_by(Event.note)
            ).all()
        )
        events, broken = audit.verify(s)
    db.get_engine(url).dispose()
    lost = notes - set(recorded)
    twice = {n for n, c in recorded.items() if c != 1}
    stray = set(recorded) - notes
    logins = {f"w{r['index']:02d}" for r in outcome}
    misreported = [
        (r["index"], who)
        for r in outcome
        for _t, who in r["conflicts"]
        if who == f"w{r['index']:02d}" or who not in logins
    ]
    if lost:
        problems.append(
            f"{len(lost)} successful action(s) left no event (lost updates), e.g. {sorted(lost)[:3]}"
        )
    if twice:
        problems.append(f"{len(twice)} action(s) recorded more than once, e.g. {sorted(twice)[:3]}")
    if stray:
        problems.append(
            f"{len(stray)} event(s) of actions that were refused, e.g. {sorted(stray)[:3]}"
        )
    if wrong_versions:
        problems.append(
            f"{len(wrong_versions)} ticket version(s) do not count the changes: {wrong_versions[:3]}"
        )
    if misreported:
        problems.append(
            f"{len(misreported)} conflict(s) do not name another volunteer, e.g. {misreported[:3]}"
        )
    if broken:
        problems.append(f"audit chain broken: {[p.as_dict() for p in broken[:3]]}")
    counts = {
        "events": sum(recorded.values()),
        "lost": len(lost),
        "duplicated": len(twice),
        "stray": len(stray),
        "wrong_versions": len(wrong_versions),
        "chain_events": events,
        "chain_ok": not broken,
    }
    return counts, problems


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


def run(label: str, url: str, args) -> bool:
    t0 = time.perf_counter()
    own, hot = setup(url, args.processes, args.hot_tickets)
    print(f"\n== {label}: {url}")
    print(
        f"   set-up {time.perf_counter() - t0:.1f}s: {args.processes} volunteers, {len(own)} own + {len(hot)} hot tickets"
    )

    ctx = mp.get_context("spawn")
    start = ctx.Barrier(args.processes + 1)
    results = ctx.Queue()
    lock = (
        f"{url.removeprefix('sqlite:///')}.writelock"
        if args.writer_lock and url.startswith("sqlite")
        else ""
    )
    procs = [
        ctx.Process(
            target=worker,
            args=(url, i, own[i], hot, args.actions, args.hot, args.seed, start, results, lock),
        )
        for i in range(args.processes)
    ]
    for p in procs:
        p.start()
    start.wait(timeout=300)  # every worker imported, connected and waiting
    began = time.perf_counter()
    outcome = [results.get(timeout=3600) for _ in procs]
    wall = time.perf_counter() - began
    for p in procs:
        p.join()

    done = sum(len(r["done"]) for r in outcome)
    conflicts = sum(len(r["conflicts"]) for r in outcome)
    errors = [e for r in outcome for e in r["errors"]]
    latencies = [x for r in outcome for x in r["latencies"]]
    attempted = args.processes * args.actions
    counts, problems = check(url, own + hot, outcome)
    hot_set = set(hot)
    on_hot = sum(1 for r in outcome for t, _n in r["done"] if t in hot_set)
    ms = lambda v: f"{v * 1000:.1f} ms"  # noqa: E731
    print(
        f"   {args.processes} processes x {args.actions} actions = {attempted} attempted in {wall:.2f}s"
    )
    print(
        f"   succeeded {done} ({on_hot} on the hot tickets), conflicts {conflicts} (reported, naming who changed "
        f"the ticket), errors {len(errors)}"
    )
    print(
        f"   events recorded {counts['events']}: lost {counts['lost']}, duplicated {counts['duplicated']}, "
        f"from refused actions {counts['stray']}; tickets whose version is not 1 + successes: {counts['wrong_versions']}; "
        f"audit chain {'verifies' if counts['chain_ok'] else 'BROKEN'} ({counts['chain_events']} events)"
    )
    print(
        f"   throughput {attempted / wall:.0f} actions/s attempted, {done / wall:.0f} changes/s committed"
    )
    print(
        f"   latency of an action (write transaction, commit included): p50 {ms(percentile(latencies, 50))}, "
        f"p95 {ms(percentile(latencies, 95))}, p99 {ms(percentile(latencies, 99))}, max {ms(max(latencies, default=0))}, "
        f"mean {ms(statistics.fmean(latencies) if latencies else 0)}"
    )
    for e, n in Counter(errors).most_common(5):
        print(f"   ERROR x{n}: {e}")
    for p in problems:
        print(f"   PROBLEM: {p}")
    return not problems and not errors


def _pg_database(server: str) -> tuple[str, str]:
    import psycopg
    from sqlalchemy.engine import make_url

    base = make_url(server)
    name = "hd_bench_" + uuid.uuid4().hex[:8]
    with psycopg.connect(
        base.set(drivername="postgresql").render_as_string(hide_password=False), autocommit=True
    ) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return base.set(database=name).render_as_string(hide_password=False), name


def _pg_drop(server: str, name: str) -> None:
    import psycopg
    from sqlalchemy.engine import make_url

    base = make_url(server)
    with psycopg.connect(
        base.set(drivername="postgresql").render_as_string(hide_password=False), autocommit=True
    ) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--processes", type=int, default=16)
    p.add_argument("--actions", type=int, default=200, help="actions per process")
    p.add_argument(
        "--hot", type=float, default=0.25, help="share of actions on the shared hot tickets"
    )
    p.add_argument("--hot-tickets", type=int, default=4)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument(
        "--pg",
        default=os.environ.get("HELPDESK_BENCH_PG", ""),
        help="a PostgreSQL server URL (env HELPDESK_BENCH_PG)",
    )
    p.add_argument("--no-sqlite", action="store_true")
    p.add_argument("--keep", help="keep the SQLite database in this directory")
    p.add_argument(
        "--writer-lock",
        action="store_true",
        help="experiment: SQLite writers queue on an flock() before BEGIN IMMEDIATE",
    )
    args = p.parse_args(argv)
    os.environ.pop("HELPDESK_NOW", None)

    ok = True
    if not args.no_sqlite:
        folder = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="hd-bench-"))
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"concurrency-{uuid.uuid4().hex[:6]}.db"
        try:
            label = "SQLite (WAL, BEGIN IMMEDIATE, busy timeout" + (
                ", writers queued on flock)" if args.writer_lock else ")"
            )
            ok &= run(label, f"sqlite:///{path}", args)
        finally:
            if not args.keep:
                for suffix in ("", "-wal", "-shm", ".writelock"):
                    Path(f"{path}{suffix}").unlink(missing_ok=True)
                folder.rmdir()
    if args.pg:
        url, name = _pg_database(args.pg)
        try:
            ok &= run("PostgreSQL", url, args)
        finally:
            from helpdesk.storage import db

            db.get_engine(url).dispose()
            _pg_drop(args.pg, name)
    print("\nOK: no lost update" if ok else "\nFAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
