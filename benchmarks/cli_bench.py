"""CLI read start: ``helpdesk ticket list --json`` on a database of N tickets.

    python benchmarks/cli_bench.py [--n 10000] [--runs 15] [--db PATH]

Builds (once, then reuses) a database of N tickets with ``benchmarks.bulk.generate``, then
times, alternately and in the same run so that the machine's load weighs on both alike:

- ``python -c "import sqlalchemy"``: the floor, what any command that reads the database
  pays before it does anything;
- ``helpdesk ticket list --json`` (the installed entry point, ``python -m helpdesk``), from
  process start to exit, its output read to the end.

Prints the median and the spread of each. Target: the command's median ≤ 0.3 s.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.tui_bench import NOW, ensure_db  # noqa: E402 - the same 10,000-ticket file


def timed(cmd: list[str], env: dict) -> float:
    t0 = time.perf_counter()
    p = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    elapsed = time.perf_counter() - t0
    if p.returncode != 0:
        raise SystemExit(f"{cmd}: exit {p.returncode}\n{p.stderr.decode()}")
    return elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000, help="tickets in the database")
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--db", type=Path, help="where the database is built and kept")
    args = parser.parse_args(argv)
    path = args.db or Path(tempfile.gettempdir()) / f"helpdesk-bench-{args.n}.db"  # as tui_bench
    url = ensure_db(path, args.n)
    env = {k: v for k, v in os.environ.items() if not k.startswith("HELPDESK_")}
    # An installed program has its byte code: the warm-up run writes it, whatever the
    # caller's environment says (PYTHONDONTWRITEBYTECODE would compile every changed
    # module on every run, and time the compiler).
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["HELPDESK_NOW"] = NOW
    py = sys.executable
    commands = {
        'python -c "import sqlalchemy"': [py, "-c", "import sqlalchemy"],
        "helpdesk ticket list --json": [
            py,
            "-m",
            "helpdesk",
            "--db",
            url,
            "ticket",
            "list",
            "--json",
            "--as",
            "bench",
        ],
    }
    for cmd in commands.values():  # warm: byte code written, files in the page cache
        timed(cmd, env)
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(args.runs):
        for name, cmd in commands.items():
            times[name].append(timed(cmd, env))
    print(f"{args.n:,} tickets, {args.runs} runs each, alternated")
    for name, ts in times.items():
        q = statistics.quantiles(ts, n=4)
        print(
            f"  {name:<32} median {statistics.median(ts):6.3f} s"
            f"   (quartiles {q[0]:.3f}–{q[2]:.3f}, min {min(ts):.3f})"
        )
    median = statistics.median(times["helpdesk ticket list --json"])
    print(f"target: median ≤ 0.300 s: {'met' if median <= 0.3 else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
