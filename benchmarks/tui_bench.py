"""TUI benchmark: start-up, queue navigation, opening tickets, search, memory.

    python benchmarks/tui_bench.py [--n 1000000] [--small 10000] [--db PATH]

Builds (once, then reuses) a database of N tickets with ``benchmarks.bulk.generate`` and a
small one, then prints:

- start-up: time from process start to the dashboard's first paint and to the queue's
  rows on screen, next to floors measured the same way in the same run: an empty Textual
  app, and an empty Textual app that also imports sqlmodel and opens the database. Twice:
  headless (the app built as ``helpdesk`` builds it, paints seen from inside), then the
  ``helpdesk`` command itself in a pseudo-terminal (the text seen on the terminal);
- per-key latency moving in the queue (down, page down, end, home: until the row under
  the cursor is read and painted) and opening a ticket (until its view is painted), p50/p95;
- search latency (from the filter applied to the count and first rows painted), p50/p95
  (latencies pooled over ``--sessions`` sessions), and the same for words found only in the
  bodies of the tickets' mails (a few hundred words each, ``benchmarks.bulk``);
- peak memory (max RSS) of the same session, the app's process plus any it started, on
  the small, a middle-sized and the large database (flat: what grows from the small one is
  SQLite's page caches filling, up to their bound; the middle size shows whether anything
  grows past it).

Every measurement runs in a child process of this script (``--child``), headless, 80×24.
Targets: start within 1.2× floor, p95 key < 50 ms, p95 search < 100 ms, memory flat in N
and ≤ 80 MiB on the large database.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

NOW = "2026-03-02T11:00:00Z"
SEARCHES = [
    "mot",
    "passe",
    "oublié",
    "mot de passe",
    "spam",
    "intrusion",
    "rebonds",
    "dmarc",
    "jean",
    "martin",
    "cpas",
    "marie dubois",
    "fleurus",
    "zzzz",
    "compte",
]
# Words that only the bodies of the mails hold (benchmarks.bulk.body), not subjects or notes.
BODY_SEARCHES = [
    "sauvegardées",
    "assemblée générale",
    "trésorière",
    "randonnée",
    "coupure de courant",
    "salle des fêtes",
    "capture d'écran",
    "synchronise",
]


# --- the databases ------------------------------------------------------------------------


def ensure_db(path: Path, n: int) -> str:
    from benchmarks import bulk
    from helpdesk.base import clock
    from helpdesk.storage import db
    from helpdesk.policy import install
    from helpdesk.service import api

    url = f"sqlite:///{path}"
    marker = path.with_suffix(".ready")
    ready = f"{n} tickets, schema {install.HEAD}"  # a database of an older schema is built again
    if path.exists() and marker.exists() and marker.read_text() == ready:
        return url
    for p in path.parent.glob(path.name + "*"):
        p.unlink()
    clock.set_now(NOW)
    print(f"building {path} with {n:,} tickets…", file=sys.stderr, flush=True)
    t0 = time.perf_counter()
    install.init(url)
    with db.write_session(url) as s:
        api.add_volunteer(s, "bench", "techadmin", name="Benchmark")
    bulk.generate(url, n)
    print(f"  built in {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
    marker.write_text(ready)
    db._engines.pop(url).dispose()
    return url


# --- child processes ------------------------------------------------------------------------


def peak_rss_kb(pid: int | str = "self") -> int:
    """Peak resident memory of a process image (VmHWM: unlike ru_maxrss, it does not
    carry over the parent's peak through fork and exec)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def children() -> list[int]:
    """The processes this one started and that still run."""
    found = []
    for task in Path("/proc/self/task").iterdir():
        try:
            found += [int(pid) for pid in (task / "children").read_text().split()]
        except OSError:
            pass
    return found


def child(mode: str, url: str) -> None:
    """Runs in a fresh interpreter; prints one JSON line of absolute times and figures."""
    out: dict = {}
    if mode in ("empty", "empty-db"):
        from textual.app import App
        from textual.widgets import Static

        if mode == "empty-db":
            import sqlmodel  # noqa: F401
            from sqlalchemy import text

            from helpdesk.storage import db

            with db.read_session(url) as s:
                s.exec(text("SELECT count(*) FROM volunteer")).one()

        class Empty(App):
            def compose(self):
                yield Static("x")

            def on_mount(self) -> None:
                self.call_after_refresh(self.painted)

            def painted(self) -> None:
                out["painted"] = time.time()
                self.exit()

        Empty().run(headless=True, size=(80, 24))
        print(json.dumps(out))
        return

    import gc

    gc.disable()  # as 'helpdesk' does when it opens the TUI (helpdesk.cli.entry)
    from helpdesk.base import clock

    clock.set_now(NOW)
    from screens.start import open_backend

    backend = open_backend(url, "bench")  # as 'helpdesk' does: built at its first use
    from screens.app import HelpdeskApp

    app = HelpdeskApp(backend, live=False, cursor_blink=False, keymap_path=Path("/nonexistent"))

    def peak() -> int:
        """Peak memory of the app's process plus any process it started (the sum of their
        peaks: an upper bound of what they held together)."""
        return peak_rss_kb() + sum(peak_rss_kb(pid) for pid in children())

    async def until(pilot, condition, limit: float = 60.0) -> None:
        start = time.perf_counter()
        while not condition():
            if time.perf_counter() - start > limit:
                raise TimeoutError("condition not met")
            await pilot.pause(0.001)
        await pilot.pause()  # one more refresh: the result is painted

    async def startup(pilot) -> None:
        # The dashboard is mounted: its first paint is the first screen a person can use.
        dash = app.screen
        await until(pilot, lambda: getattr(dash, "data", None) is not None)
        # Wall-clock times of the first paints, and of the first paint after the counts
        # arrived: the Pilot returns only when the app is idle, later than they were shown.
        out["painted"] = paints_wall[0]
        out["dashboard_data"] = next(p for p in paints_wall if p >= dash_shown[0])
        app.exit()

    async def startup_queue(pilot) -> None:
        from screens.ticket_list import TicketList

        await pilot.press("1")  # straight to the first queue, as a hurried person would
        await until(
            pilot,
            lambda: (
                app.screen.query(TicketList)
                and app.screen.query_one(TicketList).row_at(0) is not None
            ),
        )
        arrived = marks_wall["arrived"]
        out["queue_rows"] = next(p for p in paints_wall if p >= arrived)
        app.exit()

    async def session(pilot) -> None:
        from screens.ticket import TicketScreen
        from screens.ticket_list import TicketList

        # When the data a key needs arrived, and when the screen was painted: a key's
        # latency is from the key to the first paint after its data is there (the Pilot's
        # own waiting for idle is left out).
        def painted_after(t: float) -> float | None:
            return next((r for r in paints if r >= t), None)

        async def settle_paint(t0: float, ready) -> float:
            while True:
                t_ready = ready()
                if t_ready is not None:
                    p = painted_after(max(t0, t_ready))
                    if p is not None:
                        return p - t0
                await asyncio.sleep(0.0005)

        dash = app.screen
        await until(pilot, lambda: getattr(dash, "data", None) is not None)
        await pilot.press("1")
        await until(
            pilot,
            lambda: (
                app.screen.query(TicketList)
                and app.screen.query_one(TicketList).row_at(0) is not None
            ),
        )
        queue = app.screen
        lst = queue.query_one(TicketList)
        out["queue_total"] = lst.total
        keys = ["down"] * 150 + ["pagedown"] * 30 + ["end", "home"] * 3 + ["up"] * 20
        lat: dict[str, list[float]] = {}

        def row_ready():
            return marks.get("arrived", 0.0) if lst.row_at(lst.cursor) is not None else None

        for key in keys:
            t0 = time.perf_counter()
            await pilot.press(key)
            lat.setdefault(key, []).append(await settle_paint(t0, row_ready))
        out["keys"] = lat
        out["rss_after"] = {"keys": peak()}
        opens = []
        for _ in range(20):
            t0 = time.perf_counter()
            await pilot.press("enter")
            opens.append(
                await settle_paint(
                    t0,
                    lambda: (
                        marks.get("shown")
                        if isinstance(app.screen, TicketScreen) and app.screen.view is not None
                        else None
                    ),
                )
            )
            await pilot.press("escape")
            await until(pilot, lambda: app.screen is queue)
            for _k in range(3):
                await pilot.press("down")
                await until(pilot, lambda: lst.row_at(lst.cursor) is not None)
            marks.pop("shown", None)
        out["open"] = opens
        out["rss_after"]["open"] = peak()
        search = queue.query_one("#search")

        async def searches(texts: list[str]) -> list[float]:
            times = []
            for text in texts * 2:
                search.value = text
                t0 = time.perf_counter()
                queue._apply_search()
                times.append(
                    await settle_paint(
                        t0,
                        lambda: (
                            max(marks.get("counted", 0.0), marks.get("arrived", 0.0))
                            if lst.counted and (lst.total == 0 or lst.row_at(0) is not None)
                            else None
                        ),
                    )
                )
            return times

        out["search"] = await searches(SEARCHES)
        out["body_search"] = await searches(BODY_SEARCHES)
        out["maxrss_kb"] = peak()
        out["app_kb"] = peak_rss_kb()
        app.exit()

    import asyncio

    from textual.screen import Screen

    from screens.ticket import TicketScreen
    from screens.ticket_list import TicketList

    paints: list[float] = []
    paints_wall: list[float] = []
    marks: dict[str, float] = {}
    marks_wall: dict[str, float] = {}

    def record(cls, name, label):
        original = getattr(cls, name)

        def wrapper(self, *a, **kw):
            result = original(self, *a, **kw)
            if label == "paint":
                paints.append(time.perf_counter())
                paints_wall.append(time.time())
            else:
                marks[label] = time.perf_counter()
                marks_wall.setdefault(label, time.time())
            return result

        setattr(cls, name, wrapper)

    record(Screen, "_compositor_refresh", "paint")
    record(TicketList, "_arrived", "arrived")
    record(TicketList, "_counted", "counted")
    record(TicketScreen, "show", "shown")
    from screens.dashboard import DashboardScreen

    dash_shown: list[float] = []
    original_show = DashboardScreen.show

    def show(self, data):
        original_show(self, data)
        dash_shown.append(time.time())

    DashboardScreen.show = show

    if mode == "app":
        app.run(headless=True, size=(80, 24), auto_pilot=startup)
    elif mode == "app-queue":
        app.run(headless=True, size=(80, 24), auto_pilot=startup_queue)
    else:
        app.run(headless=True, size=(80, 24), auto_pilot=session)
    backend.close()
    print(json.dumps(out))


# --- the real command, in a terminal ----------------------------------------------------------

EMPTY_APP = """
import sys
from textual.app import App
from textual.widgets import Static
if sys.argv[1:]:
    import sqlmodel
    from sqlalchemy import text
    from helpdesk.storage import db
    with db.read_session(sys.argv[1]) as s:
        s.exec(text("SELECT count(*) FROM volunteer")).one()
class Empty(App):
    def compose(self):
        yield Static("EMPTY-PAINTED")
Empty().run()
"""


def in_terminal(argv: list[str], marker: str, press: bytes = b"", limit: float = 30.0) -> float:
    """Seconds from starting ``argv`` in a pseudo-terminal of 80×24 to ``marker`` written
    on it (``press``: keys typed at once, before the program reads them)."""
    import fcntl
    import pty
    import select
    import struct
    import termios

    env = dict(os.environ, PYTHONPATH=str(ROOT), TERM="xterm-256color", TEXTUAL_ANIMATIONS="none")
    env.pop("NO_COLOR", None)
    started = time.perf_counter()
    pid, fd = pty.fork()
    if pid == 0:  # pragma: no cover - the child
        os.execve(argv[0], argv, env)
    try:
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
        if press:
            os.write(fd, press)
        seen, wanted = b"", marker.encode()
        while time.perf_counter() - started < limit:
            if select.select([fd], [], [], 0.05)[0]:
                try:
                    seen += os.read(fd, 1 << 16)
                except OSError:
                    break
                if wanted in seen:
                    return time.perf_counter() - started
        raise RuntimeError(f"{marker!r} never showed: {seen[-2000:]!r}")
    finally:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        os.close(fd)


def terminal_startup(url: str, runs: int) -> None:
    """The command a volunteer types, ``helpdesk``, against the floors, both in a terminal:
    what the headless figures above leave out (the command line, the terminal driver)."""
    helpdesk = str(Path(sys.executable).with_name("helpdesk"))
    if not Path(helpdesk).exists():
        print("(no 'helpdesk' command beside this Python: the terminal figures are skipped)")
        return
    command = [helpdesk, "--db", url, "--as", "bench", "--now", NOW, "--lang", "fr"]
    times: dict[str, list[float]] = {"empty": [], "floor": [], "dashboard": [], "rows": []}
    for _ in range(runs):
        times["empty"].append(in_terminal([sys.executable, "-c", EMPTY_APP], "EMPTY-PAINTED"))
        times["floor"].append(in_terminal([sys.executable, "-c", EMPTY_APP, url], "EMPTY-PAINTED"))
        times["dashboard"].append(in_terminal(command, "Tableau de bord"))
        times["rows"].append(in_terminal(command, "▸", press=b"1"))  # the queue's cursor row
    med = {k: statistics.median(v) for k, v in times.items()}
    print(
        "start-up of the command itself in a terminal (pseudo-terminal 80×24, process start → on the"
    )
    print("terminal, median of %d)" % runs)
    print(f"  floor: empty Textual app painted                 {ms(med['empty'])}")
    print(f"  floor: empty app + sqlmodel + database opened    {ms(med['floor'])}")
    print(
        f"  helpdesk: dashboard painted                      {ms(med['dashboard'])}   {med['dashboard'] / med['floor']:4.2f}× floor"
    )
    print(
        f"  helpdesk: queue rows on screen (key 1 at once)   {ms(med['rows'])}   {med['rows'] / med['floor']:4.2f}× floor"
    )
    print()


def spawn(mode: str, url: str) -> tuple[float, dict]:
    env = dict(os.environ, PYTHONPATH=str(ROOT), TEXTUAL_ANIMATIONS="none")
    env.pop("NO_COLOR", None)
    started = time.time()
    done = subprocess.run(
        [
            sys.executable,
            str(Path(__file__).resolve()),
            "--child",
            mode,
            "--db",
            url,
        ],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"child {mode} failed:\n{done.stderr[-3000:]}")
    line = [ln for ln in done.stdout.splitlines() if ln.startswith("{")][-1]
    return started, json.loads(line)


# --- figures --------------------------------------------------------------------------------


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    if not values:
        return float("nan")
    k = (len(values) - 1) * p
    lo, hi = int(k), min(int(k) + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


def ms(x: float) -> str:
    return f"{x * 1000:7.1f} ms"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=1_000_000)
    p.add_argument("--small", type=int, default=10_000)
    p.add_argument(
        "--mid", type=int, default=100_000, help="a third size for the memory figure (0: none)"
    )
    p.add_argument("--dir", default="/tmp", help="where the benchmark databases are kept")
    p.add_argument("--runs", type=int, default=5, help="start-up runs (the median is printed)")
    p.add_argument("--sessions", type=int, default=3, help="sessions whose latencies are pooled")
    p.add_argument(
        "--no-terminal",
        dest="terminal",
        action="store_false",
        help="skip the start-up of the 'helpdesk' command in a pseudo-terminal",
    )
    p.add_argument("--child")
    p.add_argument("--db")
    args = p.parse_args(argv)
    if args.child:
        child(args.child, args.db)
        return 0

    big = ensure_db(Path(args.dir) / f"helpdesk-bench-{args.n}.db", args.n)
    small = ensure_db(Path(args.dir) / f"helpdesk-bench-{args.small}.db", args.small)
    mid = (
        ensure_db(Path(args.dir) / f"helpdesk-bench-{args.mid}.db", args.mid) if args.mid else None
    )

    print(f"helpdesk TUI benchmark — {args.n:,} tickets ({big}), Python {sys.version.split()[0]}")
    print()
    runs: dict[str, list[dict]] = {"empty": [], "empty-db": [], "app": [], "app-queue": []}
    for _ in range(args.runs):
        for mode in runs:
            started, data = spawn(mode, big)
            runs[mode].append({k: v - started for k, v in data.items()})
    med = {
        mode: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for mode, rs in runs.items()
    }
    floor_empty = med["empty"]["painted"]
    floor_db = med["empty-db"]["painted"]
    print("start-up (process start → …, median of %d)" % args.runs)
    print(f"  floor: empty Textual app painted                 {ms(floor_empty)}")
    print(f"  floor: empty app + sqlmodel + database opened    {ms(floor_db)}")
    painted = med["app"]["painted"]
    print(
        f"  helpdesk dashboard painted (interactive)         {ms(painted)}   {painted / floor_db:4.2f}× floor"
    )
    rows = med["app-queue"]["queue_rows"]
    print(
        f"  helpdesk queue rows on screen (key 1 at once)    {ms(rows)}   {rows / floor_db:4.2f}× floor"
    )
    print(f"  helpdesk dashboard counts on screen              {ms(med['app']['dashboard_data'])}")
    print()
    if args.terminal:
        terminal_startup(big, args.runs)

    figures = {}
    for label, url in (("large", big), ("small", small), ("mid", mid)):
        if url:
            _s, figures[label] = spawn("session", url)
    # Latencies: the samples of --sessions sessions on the large database together (one
    # session's p95 of 30 searches moves with a single slow moment of a shared machine).
    f = figures["large"]
    for _ in range(args.sessions - 1):
        _s, more = spawn("session", big)
        for key, values in more["keys"].items():
            f["keys"].setdefault(key, []).extend(values)
        f["open"] += more["open"]
        f["search"] += more["search"]
        f["body_search"] += more["body_search"]
    print(f"queue of {f['queue_total']:,} open tickets (password resets), 80×24")
    every = [x for v in f["keys"].values() for x in v]
    for key, values in f["keys"].items():
        print(
            f"  key {key:<9} n={len(values):<4} p50 {ms(pct(values, 0.5))}  p95 {ms(pct(values, 0.95))}"
        )
    print(
        f"  all keys      n={len(every):<4} p50 {ms(pct(every, 0.5))}  p95 {ms(pct(every, 0.95))}   (target p95 < 50 ms)"
    )
    print(
        f"  open ticket   n={len(f['open']):<4} p50 {ms(pct(f['open'], 0.5))}  p95 {ms(pct(f['open'], 0.95))}"
    )
    print(
        f"  search        n={len(f['search']):<4} p50 {ms(pct(f['search'], 0.5))}  p95 {ms(pct(f['search'], 0.95))}   (target p95 < 100 ms)"
    )
    print(
        f"  body search   n={len(f['body_search']):<4} p50 {ms(pct(f['body_search'], 0.5))}  p95 {ms(pct(f['body_search'], 0.95))}"
        "   (words only in mail bodies; target p95 < 100 ms)"
    )
    print()
    print(
        "peak memory (peak RSS, VmHWM, of the same session: the app's process plus any it started)"
    )
    for n, label in sorted(
        (size, label)
        for size, label in ((args.small, "small"), (args.mid, "mid"), (args.n, "large"))
        if label in figures
    ):
        f = figures[label]
        print(
            f"  {n:>9,} tickets  {f['maxrss_kb'] / 1024:7.1f} MiB"
            f"   (app {f['app_kb'] / 1024:5.1f} + others {(f['maxrss_kb'] - f['app_kb']) / 1024:5.1f})"
            f"   (target ≤ 80 MiB on the large one)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
