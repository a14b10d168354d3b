"""Reset time of every training scenario: ``python benchmarks/training_reset.py [--repeat N] [KEY...]``.

For each scenario: one build (``training.seed``, which also keeps the pristine copy), then N
resets (``training.reset``) of a training database that was played forward in between (the
clock moved, so the reset has something to undo). Prints the build time and the reset times
(p50 and max) per scenario, then over all of them. Target: a reset under one second.

Uses a private cache folder and scratch SQLite files in a temporary directory, so the
figures are those of a cold first build and warm resets, whatever the user's cache holds.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

TARGET = 1.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("keys", nargs="*", help="scenarios (default: all)")
    parser.add_argument("--repeat", type=int, default=5, help="resets per scenario (default 5)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="helpdesk-training-bench-") as scratch:
        os.environ["HELPDESK_TRAINING_CACHE"] = os.path.join(scratch, "cache")
        from helpdesk.training import scenarios, sandbox

        keys = args.keys or scenarios.available()
        everything: list[float] = []
        print(f"{'scenario':<36} {'build s':>8} {'reset p50 s':>12} {'reset max s':>12}")
        for key in keys:
            url = f"sqlite:///{Path(scratch) / (key + '.db')}"
            t0 = time.perf_counter()
            sandbox.seed(url, key)
            build = time.perf_counter() - t0
            times = []
            for _ in range(args.repeat):
                sandbox.advance(url, "+1w")
                t0 = time.perf_counter()
                seeded = sandbox.reset(url, key)
                times.append(time.perf_counter() - t0)
                assert seeded.cached, f"{key}: reset did not use the pristine build"
            sandbox._forget(url)
            everything += times
            print(f"{key:<36} {build:>8.2f} {statistics.median(times):>12.4f} {max(times):>12.4f}")
        p50, worst = statistics.median(everything), max(everything)
        print(f"{'all scenarios':<36} {'':>8} {p50:>12.4f} {worst:>12.4f}")
        print(f"target: reset under {TARGET:.1f} s — {'met' if worst < TARGET else 'NOT met'}")
    return 0 if worst < TARGET else 1


if __name__ == "__main__":
    raise SystemExit(main())
