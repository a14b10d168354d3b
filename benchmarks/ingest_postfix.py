"""Postfix log analysis: ours against pflogsumm, on one generated log.

``python benchmarks/ingest_postfix.py [--lines 1000000] [--runs N] [--keep DIR] [--seed S]``

Generates a realistic Postfix log (classic syslog timestamps in its first half, RFC 3339
in its second; thousands of ordinary senders, a few abusive ones: a burst, a bouncer, a
compromised account doing both), then runs, each in a child process measured by
``/usr/bin/time -v`` (or ``resource.getrusage`` of the children when it is missing):

- ``pflogsumm`` (Debian package ``pflogsumm``) on the file;
- our library path (``helpdesk.ingest.postfix_senders.analyse``: parse, correlate, sliding windows,
  alerts; no database);
- the real command ``helpdesk ingest postfix FILE`` on a fresh SQLite database with accounts
  for the abusive senders (alerts become mail-reputation tickets).

and prints lines/s and peak RSS of each, and our speed-up over pflogsumm. With ``--runs N``
each is run N times, in turns (a machine's noise then falls on all of them), and the medians
are printed; the real command runs on a fresh copy of the prepared database each time. Python
runs with its byte code cached, as an installed package does (``--no-bytecode`` to keep a
PYTHONDONTWRITEBYTECODE of the environment), after an unmeasured warm-up. The
last line says whether the real command meets issue 4's target: at least 8x pflogsumm's
throughput, with a lower peak memory.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

ABUSERS = {
    # login (SASL user) -> (policy, behaviour)
    "burst@indigos.example": ("indigos", "burst"),
    "bouncer@le-pic.example": ("le-pic", "bounces"),
    "hacked@communesplone.example": ("communesplone", "both"),
}
START = datetime(2027, 3, 14, 0, 0, 0, tzinfo=UTC)


@dataclass
class _Writer:
    out: object
    lines: int = 0
    iso: bool = False

    _last: tuple = (None, None, "")

    def stamp(self, when: datetime) -> str:
        key = (int(when.timestamp()), self.iso)
        if key != self._last[:2]:
            text = (
                f"{when:%Y-%m-%dT%H:%M:%S}"
                if self.iso
                else f"{when:%b} {when.day:>2} {when:%H:%M:%S}"
            )
            self._last = (*key, text)
        if self.iso:
            return f"{self._last[2]}.{when.microsecond:06d}+00:00"
        return self._last[2]

    def emit(self, when: datetime, service: str, pid: int, text: str) -> None:
        self.out.write(f"{self.stamp(when)} mx1 postfix/{service}[{pid}]: {text}\n")
        self.lines += 1


def _qid(rng: random.Random) -> str:
    return f"{rng.getrandbits(40):010X}"


def generate(path: Path, lines: int, seed: int = 1) -> dict:
    """Write about ``lines`` lines; returns what was written (counts per kind)."""
    rng = random.Random(seed)
    senders = [f"user{i}@member{i % 300}.example" for i in range(3000)]
    domains = [f"dest{i}.example" for i in range(400)]
    abusers = list(ABUSERS)
    # Spread ~10 lines per message over three days.
    messages = max(1, lines // 10)
    step = timedelta(days=3) / messages
    abuse_hours = {name: START + timedelta(hours=6 + 20 * i) for i, name in enumerate(abusers)}
    counts = {"messages": 0, "abusive": 0, "bounced": 0, "deferred": 0}
    now = START
    with open(path, "w", encoding="utf-8") as handle:
        w = _Writer(handle)
        while w.lines < lines:
            w.iso = w.lines >= lines // 2
            now += step
            ip = f"198.51.{rng.randrange(256)}.{rng.randrange(1, 255)}"
            pid = rng.randrange(1000, 60000)
            noise = rng.random()
            if noise < 0.15:
                w.emit(
                    now,
                    "postscreen",
                    900,
                    f"CONNECT from [{ip}]:{rng.randrange(1024, 65535)} to [192.0.2.25]:25",
                )
                w.emit(now, "postscreen", 900, f"PASS OLD [{ip}]:{rng.randrange(1024, 65535)}")
                continue
            if noise < 0.20:
                w.emit(now, "smtpd", pid, f"connect from unknown[{ip}]")
                w.emit(
                    now,
                    "smtpd",
                    pid,
                    f"NOQUEUE: reject: RCPT from unknown[{ip}]: 554 5.7.1 <x@{rng.choice(domains)}>: Relay access denied; "
                    f"from=<spam@{rng.choice(domains)}> to=<x@{rng.choice(domains)}> proto=ESMTP helo=<bad>",
                )
                w.emit(
                    now,
                    "smtpd",
                    pid,
                    f"disconnect from unknown[{ip}] ehlo=1 mail=1 rcpt=0/1 commands=2/3",
                )
                continue
            if noise < 0.22:
                w.emit(
                    now,
                    "anvil",
                    77,
                    f"statistics: max connection rate 3/60s for (smtp:{ip}) at {w.stamp(now)}",
                )
                continue
            sender = rng.choice(senders)
            behaviour = None
            for name in abusers:  # an abusive hour: one message in three is theirs
                if (
                    abuse_hours[name] <= now < abuse_hours[name] + timedelta(hours=1)
                    and rng.random() < 0.6
                ):
                    sender, behaviour = name, ABUSERS[name][1]
                    counts["abusive"] += 1
                    break
            qid = _qid(rng)
            host = f"client{rng.randrange(5000)}.isp.example"
            w.emit(now, "submission/smtpd", pid, f"connect from {host}[{ip}]")
            w.emit(
                now,
                "submission/smtpd",
                pid,
                f"{qid}: client={host}[{ip}], sasl_method=PLAIN, sasl_username={sender}",
            )
            w.emit(
                now,
                "cleanup",
                pid + 1,
                f"{qid}: message-id=<{qid}.{rng.randrange(10**9)}@{sender.split('@')[1]}>",
            )
            nrcpt = 1 if rng.random() < 0.8 else rng.randrange(2, 6)
            if behaviour in ("burst", "both"):
                nrcpt = rng.randrange(5, 20)
            w.emit(
                now,
                "qmgr",
                300,
                f"{qid}: from=<{sender}>, size={rng.randrange(800, 90000)}, nrcpt={nrcpt} (queue active)",
            )
            w.emit(
                now,
                "submission/smtpd",
                pid,
                f"disconnect from {host}[{ip}] ehlo=1 auth=1 mail=1 rcpt={nrcpt} data=1 quit=1 commands=6",
            )
            later = now + timedelta(seconds=rng.randrange(1, 5))
            bounce_rate = 0.6 if behaviour in ("bounces", "both") else 0.01
            for _ in range(nrcpt):
                rcpt = f"r{rng.randrange(10**6)}@{rng.choice(domains)}"
                relay = f"mx.{rcpt.split('@')[1]}[203.0.113.{rng.randrange(1, 255)}]:25"
                roll = rng.random()
                if roll < bounce_rate:
                    counts["bounced"] += 1
                    w.emit(
                        later,
                        "smtp",
                        pid + 2,
                        f"{qid}: to=<{rcpt}>, relay={relay}, delay=1.2, delays=0.1/0/0.5/0.6, dsn=5.1.1, status=bounced (host said: 550 5.1.1 user unknown)",
                    )
                elif roll < bounce_rate + 0.02:
                    counts["deferred"] += 1
                    w.emit(
                        later,
                        "smtp",
                        pid + 2,
                        f"{qid}: to=<{rcpt}>, relay={relay}, delay=3, delays=0.1/0/3/0, dsn=4.4.1, status=deferred (connect timed out)",
                    )
                else:
                    w.emit(
                        later,
                        "smtp",
                        pid + 2,
                        f"{qid}: to=<{rcpt}>, relay={relay}, delay=0.9, delays=0.1/0/0.3/0.5, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as {_qid(rng)})",
                    )
            w.emit(later, "qmgr", 300, f"{qid}: removed")
            counts["messages"] += 1
    counts["lines"] = w.lines
    return counts


# --- measuring ------------------------------------------------------------------------------


class _TreeRss:
    """Samples the summed resident memory of a process's descendants, in KiB, every 50 ms
    (every 5 ms took enough of a core to slow the command it measured): pages shared by
    several processes are counted in each, so this errs on the high side."""

    def __init__(self, pid: int):
        import threading

        self.pid = pid
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _descendants(self, pid: int) -> list[int]:
        try:
            with open(f"/proc/{pid}/task/{pid}/children") as handle:
                children = [int(c) for c in handle.read().split()]
        except OSError:
            return []
        return children + [d for c in children for d in self._descendants(c)]

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            total = 0
            for pid in self._descendants(self.pid):
                try:
                    with open(f"/proc/{pid}/status") as handle:
                        total += next(
                            (int(line.split()[1]) for line in handle if line.startswith("VmRSS:")),
                            0,
                        )
                except OSError:
                    continue
            self.peak = max(self.peak, total)


def measure(cmd: list[str], env: dict | None = None) -> tuple[float, float, int, str]:
    """Run ``cmd``; (wall seconds, CPU seconds (user + system, its children included), peak
    RSS in KiB (of all its processes together), stdout)."""
    timer = shutil.which("time") or ("/usr/bin/time" if os.path.exists("/usr/bin/time") else None)
    if timer:
        with tempfile.NamedTemporaryFile("r", suffix=".time") as report:
            t0 = time.perf_counter()
            proc = subprocess.Popen(
                [timer, "-v", "-o", report.name, *cmd],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=env,
            )
            tree = _TreeRss(proc.pid)
            tree.start()
            stdout, stderr = proc.communicate()
            elapsed = time.perf_counter() - t0
            tree.stop()
            text = report.read()
        if proc.returncode != 0:
            raise SystemExit(f"{cmd[0]} failed ({proc.returncode}): {stderr[-2000:]}")
        rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", text).group(1))
        cpu = sum(
            float(re.search(rf"{kind} time \(seconds\): ([\d.]+)", text).group(1))
            for kind in ("User", "System")
        )
        # time -v gives the largest process's peak; a command that started others would be
        # charged the peak of their sum, sampled.
        return elapsed, cpu, max(rss, tree.peak), stdout
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True, env=env)
    elapsed = time.perf_counter() - t0
    if p.returncode != 0:
        raise SystemExit(f"{cmd[0]} failed ({p.returncode}): {p.stderr[-2000:]}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    # ru_maxrss of children is the largest child so far: exact only while each is bigger.
    return elapsed, cpu, after.ru_maxrss, p.stdout


LIBRARY = """
import json, sys
from datetime import UTC
from helpdesk.ingest.postfix_senders import analyse
result = analyse(sys.argv[1], year=2027, tz=UTC)
print(json.dumps(result))
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", help="keep the log and database in this folder")
    parser.add_argument(
        "--skip-cli", action="store_true", help="do not run the real command (database path)"
    )
    parser.add_argument(
        "--runs", type=int, default=1, help="run each this many times, print the medians"
    )
    parser.add_argument(
        "--no-bytecode",
        action="store_true",
        help="keep PYTHONDONTWRITEBYTECODE if set: every run compiles our sources",
    )
    args = parser.parse_args(argv)

    folder = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="hd-postfix-"))
    folder.mkdir(parents=True, exist_ok=True)
    log = folder / "mail.log"
    t0 = time.perf_counter()
    counts = generate(log, args.lines, args.seed)
    size = log.stat().st_size
    print(
        f"log        {log}  {counts['lines']:,} lines, {size / 1e6:.1f} MB, {counts['messages']:,} messages "
        f"({counts['abusive']:,} abusive), generated in {time.perf_counter() - t0:.1f} s"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    env = {k: v for k, v in env.items() if not k.startswith("HELPDESK_")}
    if not args.no_bytecode:
        # As installed (pip and Debian compile the .pyc files at install time): byte code
        # cached, here in the benchmark's folder so that the source tree stays as it is.
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(folder / "pycache")
    import json

    pflogsumm = shutil.which("pflogsumm") or (
        "/usr/sbin/pflogsumm" if os.path.exists("/usr/sbin/pflogsumm") else None
    )
    if not pflogsumm:
        print("pflogsumm is not installed (apt-get install pflogsumm): no comparison")
    prepared = folder / "prepared.db"
    if not args.skip_cli:
        url = f"sqlite:///{prepared}"
        for command in (["init"], ["volunteer", "add", "bench", "--role", "techadmin"]):
            subprocess.run(
                [sys.executable, "-m", "helpdesk", "--db", url, *command],
                env=env,
                check=True,
                capture_output=True,
            )
        for login, (policy, _kind) in ABUSERS.items():
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "helpdesk",
                    "--db",
                    url,
                    "--as",
                    "bench",
                    "account",
                    "add",
                    login,
                    "--policy",
                    policy,
                    "--email",
                    login,
                ],
                env=env,
                check=True,
                capture_output=True,
            )
        subprocess.run(
            [
                sys.executable,
                "-c",
                f"import sqlite3; sqlite3.connect({str(prepared)!r}).execute('pragma wal_checkpoint(truncate)')",
            ],
            check=True,
        )

    # A warm-up on the first lines (not measured): byte code written, files in the page cache.
    warm = folder / "warm.log"
    with open(log, "rb") as source, open(warm, "wb") as target:
        target.writelines(line for _, line in zip(range(5000), source))
    subprocess.run(
        [sys.executable, "-c", LIBRARY, str(warm)], env=env, check=True, capture_output=True
    )
    if not args.skip_cli:
        shutil.copy(prepared, folder / "warm.db")
        warm_url = f"sqlite:///{folder / 'warm.db'}"
        subprocess.run(
            [
                sys.executable,
                "-m",
                "helpdesk",
                "--db",
                warm_url,
                "ingest",
                "postfix",
                str(warm),
                "--json",
            ],
            env=env,
            check=True,
            capture_output=True,
        )
    print(
        "byte code   "
        + (
            "not cached (PYTHONDONTWRITEBYTECODE): every run compiles the sources"
            if args.no_bytecode
            else "cached, as installed (--no-bytecode: compiled at each run)"
        )
    )

    samples: dict[str, list[tuple[float, float, int]]] = {}
    notes: dict[str, str] = {}
    for _run in range(args.runs):
        if pflogsumm:
            secs, cpu, rss, _out = measure([pflogsumm, str(log)], env)
            samples.setdefault("pflogsumm", []).append((secs, cpu, rss))
        secs, cpu, rss, out = measure([sys.executable, "-c", LIBRARY, str(log)], env)
        result = json.loads(out)
        samples.setdefault("helpdesk (library)", []).append((secs, cpu, rss))
        notes["helpdesk (library)"] = f"{len(result['alerts'])} alert(s): " + ", ".join(
            sorted({a["sender"] for a in result["alerts"]})
        )
        if not args.skip_cli:
            db = folder / "bench.db"
            for suffix in ("", "-wal", "-shm"):
                Path(f"{db}{suffix}").unlink(missing_ok=True)
            shutil.copy(prepared, db)
            cmd = [
                sys.executable,
                "-m",
                "helpdesk",
                "--db",
                f"sqlite:///{db}",
                "ingest",
                "postfix",
                str(log),
                "--json",
                "--year",
                "2027",
                "--tz",
                "UTC",
            ]
            secs, cpu, rss, out = measure(cmd, env)
            c = json.loads(out)["counts"]
            samples.setdefault("helpdesk ingest postfix", []).append((secs, cpu, rss))
            notes["helpdesk ingest postfix"] = (
                f"{c['alerts_opened']} ticket(s) opened, {c['alerts_updated']} figure event(s)"
            )
    rows = [
        (name, *(statistics.median(x[i] for x in runs) for i in range(3)), notes.get(name, ""))
        for name, runs in samples.items()
    ]

    n = counts["lines"]
    print()
    label = "median of %d runs" % args.runs if args.runs > 1 else "one run"
    print(f"{label:26}{'wall s':>8}{'lines/s':>11}{'CPU s':>8}{'lines/CPU s':>13}{'peak RSS':>11}")
    for name, secs, cpu, rss, note in rows:
        print(
            f"{name:26}{secs:8.2f}{n / secs:11,.0f}{cpu:8.2f}{n / max(cpu, 1e-9):13,.0f}{rss / 1024:8.1f} MB  {note}"
        )
    if args.runs > 1:
        for name, runs in samples.items():
            print(f"  {name}: wall s of each run " + " ".join(f"{x[0]:.2f}" for x in runs))
    if pflogsumm:
        base = rows[0]
        for name, secs, cpu, rss, _note in rows[1:]:
            print(
                f"{name}: {base[1] / secs:.1f}x pflogsumm's throughput (wall clock), {base[2] / max(cpu, 1e-9):.1f}x "
                f"(CPU time, all processes), {rss / base[3]:.2f}x its peak memory"
            )
        if not args.skip_cli:
            name, secs, _cpu, rss, _note = rows[-1]
            speedup = base[1] / secs
            verdict = "met" if speedup >= 8 and rss < base[3] else "NOT met"
            print(
                f"target (real command >= 8x pflogsumm's throughput, lower peak memory): {verdict} ({speedup:.1f}x, {rss / 1024:.0f} MB vs {base[3] / 1024:.0f} MB)"
            )
    if not args.keep:
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
