"""Make a benchmark database: ``python benchmarks/make_db.py PATH N [--seed S]``.

Creates (or upgrades) the database at PATH (an SQLite file path or an SQLAlchemy URL),
loads the policy packs, adds N tickets with accounts and hash-chained history through
``benchmarks.bulk.generate``, and prints the time taken.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import bulk
from helpdesk.storage import db
from helpdesk.policy import install  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", help="SQLite file path or SQLAlchemy URL")
    parser.add_argument("n", type=int, help="number of tickets to add")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    url = db.resolve_url(args.path)
    t0 = time.perf_counter()
    install.init(url)
    t1 = time.perf_counter()
    counts = bulk.generate(url, args.n, seed=args.seed)
    t2 = time.perf_counter()
    print(f"database   {url}")
    print(f"init       {t1 - t0:8.2f} s")
    print(
        f"generate   {t2 - t1:8.2f} s  ({counts['tickets']:,} tickets, {counts['events']:,} events, "
        f"{counts['deadlines']:,} deadlines, {counts['accounts']:,} accounts; {counts['overdue']:,} overdue)"
    )
    print(f"rate       {counts['tickets'] / max(t2 - t1, 1e-9):8,.0f} tickets/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
