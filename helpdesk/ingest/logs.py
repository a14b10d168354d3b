"""``helpdesk ingest postfix``: Postfix logs become mail-reputation alerts, figures only.

A log is read as a stream (``senders.SenderWindows``) from where the previous run stopped.
The position (inode, byte offset, hash of the first line) and the analyser's state (queue ids
in flight, the senders' current windows, what was already reported) are one ``IngestCursor``
row, saved in the same transaction as the alerts they produced: a run killed at any point
resumes without losing or repeating an alert. Rotation is followed: when the file at the path
is a new one, the rest of the old one is read first if it is still beside it (``mail.log.1``),
then the new one from its start; a file truncated or rewritten in place is read again from
its start.

A sender passing its provider's thresholds (pack params ``mail_burst``, ``mail_bounce_ratio``,
``mail_min_messages``; the provider found from the account whose login or address the sender
is) gets one mail-reputation alert; while it is open, later figures are added to it as events.
Senders of providers without a mail-reputation procedure are not watched; senders with no
account are reported in the summary only (figures, no ticket: no provider to give it to).
Unreadable Postfix lines are quarantined (first ``MAX_QUARANTINED_LINES`` of a run).
"""

from __future__ import annotations

import hashlib
import os
from collections import Counter
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path

from sqlmodel import Session

from helpdesk import clock
from helpdesk.db import read_session, write_session
from helpdesk.ingest import alerts, records
from helpdesk.ingest.limits import Alert, Thresholds
from helpdesk.ingest.routing import Directory, unique
from helpdesk.ingest.summary import MAX_LISTED, Progress, Summary
from helpdesk.ingest.senders import BLOCK, SenderWindows, blocks
from helpdesk.models import Account

COMMIT_BYTES = 32 * 1024 * 1024  # a checkpoint (alerts, quarantined lines, position) this often
MAX_QUARANTINED_LINES = 10_000
_COMPRESSED = (".gz", ".bz2", ".xz", ".zst", ".lz4", ".zip")


def thresholds_for(directory: Directory):
    """Sender -> the thresholds of its provider; None when the provider does not watch mail."""

    def lookup(sender: str) -> Thresholds | None:
        ref = unique(directory.accounts_for_sender(sender))
        if ref is None:
            return Thresholds()  # no account: figures for the summary, no ticket
        info = directory.policy(ref.policy)
        if info is None or alerts.QUEUE not in info.queues:
            return None
        p = info.params
        if "mail_burst" not in p and "mail_bounce_ratio" not in p:
            return None
        default = Thresholds()
        return Thresholds(
            burst=int(p.get("mail_burst", default.burst)),
            bounce_ratio=float(p.get("mail_bounce_ratio", default.bounce_ratio)),
            bounce_min_messages=int(p.get("mail_min_messages", default.bounce_min_messages)),
            max_recipients=int(p["mail_max_recipients"]) if p.get("mail_max_recipients") else None,
        )

    return lookup


def _first_line_hash(handle) -> str | None:
    handle.seek(0)
    line = handle.readline(64 * 1024)
    return hashlib.sha256(line[:4096]).hexdigest() if line.endswith(b"\n") else None


def _cursor_key(path: Path) -> str:
    key = f"postfix:{path}"
    return key if len(key) <= 500 else "postfix:sha256:" + hashlib.sha256(str(path).encode()).hexdigest()


def _rotated(path: Path, inode: int) -> Path | None:
    """The file rotation moved away from ``path`` (same inode), if still uncompressed beside it."""
    try:
        siblings = list(path.parent.iterdir())
    except OSError:
        return None
    for p in sorted(siblings):
        if p != path and p.name.startswith(path.name + ".") and not p.name.endswith(_COMPRESSED):
            try:
                if p.stat().st_ino == inode:
                    return p
            except OSError:
                continue
    return None


class _Reader:
    """One file's run: feeds the analyser, checkpoints alerts and position together."""

    def __init__(self, url: str, path: Path, directory: Directory, summary: Summary, *, now, progress: Progress):
        self.url = url
        self.path = path
        self.directory = directory
        self.summary = summary
        self.now = now
        self.progress = progress
        self.key = _cursor_key(path)
        self.pending: list[Alert] = []
        self.quarantined = 0

    def checkpoint(self, windows: SenderWindows, state: dict) -> None:
        with write_session(self.url) as s:
            for alert in self.pending:
                self._alert(s, alert)
            for line, reason in windows.bad:
                self._quarantine(s, line, reason, state)
            records.save_cursor(s, self.key, {**state, "stats": windows.snapshot()}, self.now)
        self.pending = []
        windows.bad.clear()

    def _quarantine(self, s: Session, line: bytes, reason: str, state: dict) -> None:
        if self.quarantined >= MAX_QUARANTINED_LINES:
            self.summary.counts["bad_lines_not_kept"] += 1
            return
        digest = records.sha256(line)
        if records.seen_outcome(s, digest) is not None:
            self.summary.counts["duplicates"] += 1
            return
        row = records.quarantine(s, data=line, kind="postfix", source=f"{self.path} before byte {state['offset']}", reason=reason, now=self.now)
        records.mark(s, digest, "quarantined", now=self.now, quarantine=row.id)
        self.quarantined += 1
        self.summary.counts["quarantined"] += 1

    def _alert(self, s: Session, alert: Alert) -> None:
        ref = unique(self.directory.accounts_for_sender(alert.sender))
        figures = {
            "sender": alert.sender,
            "window": f"{clock.iso(alert.window_start)}/{clock.iso(alert.window_end)}",
            "messages": alert.messages,
            "recipients": alert.recipients,
            "bounces": alert.bounces,
            "deferrals": alert.deferrals,
            "bounce-ratio": alert.bounce_ratio,
        }
        entry = {"sender": alert.sender, "reason": alert.reason, **{k: v for k, v in figures.items() if k != "sender"}}
        if ref is None:
            self.summary.counts["alerts_unmatched"] += 1
            self._list({"outcome": "unmatched", **entry})
            return
        signal = "volume" if any(k in ("burst", "recipients") for k in alert.kinds) else "bounces"
        status, ticket = alerts.raise_alert(
            s,
            policy=ref.policy,
            account=s.get(Account, ref.id),
            fields={"signal": signal, **figures},
            subject=f"{alert.sender}: {alert.reason}",
            note=f"Postfix log {self.path.name}: {alert.reason}",
            now=self.now,
        )
        self.summary.counts["alerts_opened" if status == "opened" else "alerts_updated"] += 1
        self._list({"outcome": status, "ticket": ticket.id, "policy": ref.policy, "account": ref.login, **entry})

    def _list(self, entry: dict) -> None:
        if len(self.summary.items) < MAX_LISTED:
            self.summary.items.append({"item": str(self.path), **entry})
        else:
            self.summary.listed_all = False

    def read(self, windows: SenderWindows, target: Path, offset: int, inode: int, first_hash: str | None) -> int:
        """Read ``target`` from ``offset`` to its last complete line; returns the new offset."""
        since = 0
        with open(target, "rb") as handle:
            for data, end, position in blocks(handle, offset, BLOCK):
                self.pending += windows.feed(data, end)
                since += end
                self.progress.advance(end)
                state = {"inode": inode, "offset": position, "first_line_hash": first_hash}
                # Alerts wait for the next checkpoint: a run stopped before it reads these
                # lines again from the last one, and raises them again, exactly once.
                if since >= COMMIT_BYTES or len(windows.bad) >= 100:
                    self.checkpoint(windows, state)
                    since = 0
                offset = position
        return offset


def ingest_postfix(
    url: str,
    paths: list[str],
    *,
    year: int | None = None,
    tz: tzinfo | None = None,
    window: timedelta = timedelta(hours=1),
    from_start: bool = False,
    show_progress: bool = False,
    now=None,
) -> Summary:
    now = now or clock.now()
    summary = Summary(kind="postfix", source=", ".join(paths))
    with read_session(url) as s:
        directory = Directory.load(s)
        cursors = {p: ({} if from_start else records.load_cursor(s, _cursor_key(Path(p).expanduser().absolute()))) for p in paths}
    if tz is None:
        from dateutil.tz import tzlocal

        tz = tzlocal()
    lookup = thresholds_for(directory)
    for given in paths:
        path = Path(given).expanduser().absolute()
        try:
            _one_file(url, path, cursors[given], directory, summary, lookup, year=year, tz=tz, window=window, now=now, show_progress=show_progress)
        except OSError as exc:
            summary.errors.append(f"{given}: {exc.strerror or exc}")
    lines, events = summary.counts.get("lines", 0), summary.counts.get("events", 0)
    summary.counts["ignored"] = max(0, lines - events - summary.counts.get("bad_lines", 0))
    return summary


def _one_file(url, path: Path, cursor: dict, directory, summary: Summary, lookup, *, year, tz, window, now, show_progress) -> None:
    status = os.stat(path)
    with open(path, "rb") as handle:
        first_hash = _first_line_hash(handle)
    windows = SenderWindows(
        year=year or datetime.fromtimestamp(status.st_mtime, UTC).year,
        tz=tz,
        window=window,
        thresholds=lookup,
        not_after=None if year else status.st_mtime,
    )
    if cursor.get("stats"):
        windows.restore(cursor["stats"])
    offset = 0
    todo: list[tuple[Path, int, int, str | None]] = []
    if cursor and cursor.get("inode") == status.st_ino:
        same = cursor.get("first_line_hash") in (None, first_hash) and int(cursor.get("offset", 0)) <= status.st_size
        offset = int(cursor.get("offset", 0)) if same else 0
        if not same:
            summary.counts["rewritten_files"] += 1
    elif cursor.get("inode") is not None:
        old = _rotated(path, int(cursor["inode"]))
        if old is not None:
            todo.append((old, int(cursor.get("offset", 0)), int(cursor["inode"]), cursor.get("first_line_hash")))
        summary.counts["rotations_followed"] += 1
    todo.append((path, offset, status.st_ino, first_hash))
    total = sum(max(0, t.stat().st_size - o) for t, o, _i, _h in todo)
    progress = Progress(show_progress, f"ingest postfix {path.name}", total)
    reader = _Reader(url, path, directory, summary, now=now, progress=progress)
    lines0, events0, bad0 = windows.lines, windows.events, windows.bad_count
    try:
        state = {"inode": status.st_ino, "offset": offset, "first_line_hash": first_hash}
        for target, start, inode, fhash in todo:
            end = reader.read(windows, target, start, inode, fhash)
            state = {"inode": inode, "offset": end, "first_line_hash": fhash}
        # done with any rotated file: the cursor points into the current one
        state = {"inode": status.st_ino, "offset": end, "first_line_hash": first_hash}
        reader.pending += windows.finish()
        reader.checkpoint(windows, state)
    finally:
        progress.close()
    summary.counts["lines"] += windows.lines - lines0
    summary.counts["events"] += windows.events - events0
    summary.counts["bad_lines"] += windows.bad_count - bad0
    summary.counts["bytes"] += total
