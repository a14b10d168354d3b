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

The command and the library both run ``ingest_postfix``: the directory and the cursors are
read first, then the logs, in one process.
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING

from helpdesk.ingest.limits import Alert, Thresholds
from helpdesk.ingest.postfix_senders import (
    BLOCK,
    MAX_LINE,
    SenderWindows,
    blocks,
)
from helpdesk.ingest.summary import MAX_LISTED, Progress, Summary

if TYPE_CHECKING:
    from sqlmodel import Session

    from helpdesk.ingest.routing import Directory

COMMIT_BYTES = 32 * 1024 * 1024  # a checkpoint (alerts, quarantined lines, position) this often
MAX_QUARANTINED_LINES = 10_000
_COMPRESSED = (".gz", ".bz2", ".xz", ".zst", ".lz4", ".zip")


def thresholds_for(directory: Directory):
    """Sender -> the thresholds of its provider; None when the provider does not watch mail."""
    from helpdesk.ingest import alerts
    from helpdesk.ingest.routing import unique

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
    return (
        key
        if len(key) <= 500
        else "postfix:sha256:" + hashlib.sha256(str(path).encode()).hexdigest()
    )


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


class _Store:
    """The database side of a run: writes checkpoints (alerts, quarantined lines, cursor)."""

    def __init__(self, url: str, directory: Directory, summary: Summary, *, now):
        self.url = url
        self.directory = directory
        self.summary = summary
        self.now = now
        self.quarantined = 0

    def checkpoint(
        self, path: Path, alerts: list[Alert], bad: list[tuple[bytes, str]], state: dict
    ) -> None:
        """One transaction: the alerts and bad lines read up to ``state`` (with the analyser's
        state), and the cursor, so that a run stopped anywhere resumes without loss or repeat."""
        from helpdesk.storage.db import write_session
        from helpdesk.ingest import store as records

        with write_session(self.url) as s:
            for alert in alerts:
                self._alert(s, path, alert)
            for line, reason in bad:
                self._quarantine(s, path, line, reason, state)
            records.save_cursor(s, _cursor_key(path), state, self.now)

    def _quarantine(self, s: Session, path: Path, line: bytes, reason: str, state: dict) -> None:
        from helpdesk.ingest import store as records

        if self.quarantined >= MAX_QUARANTINED_LINES:
            self.summary.counts["bad_lines_not_kept"] += 1
            return
        digest = records.sha256(line)
        if records.seen_outcome(s, digest) is not None:
            self.summary.counts["duplicates"] += 1
            return
        row = records.quarantine(
            s,
            data=line,
            kind="postfix",
            source=f"{path} before byte {state['offset']}",
            reason=reason,
            now=self.now,
        )
        records.mark(s, digest, "quarantined", now=self.now, quarantine=row.id)
        self.quarantined += 1
        self.summary.counts["quarantined"] += 1

    def _alert(self, s: Session, path: Path, alert: Alert) -> None:
        from helpdesk.base import clock
        from helpdesk.ingest import alerts
        from helpdesk.ingest.routing import unique
        from helpdesk.storage.models import Account

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
        entry = {
            "sender": alert.sender,
            "reason": alert.reason,
            **{k: v for k, v in figures.items() if k != "sender"},
        }
        if ref is None:
            self.summary.counts["alerts_unmatched"] += 1
            self._list(path, {"outcome": "unmatched", **entry})
            return
        signal = "volume" if any(k in ("burst", "recipients") for k in alert.kinds) else "bounces"
        status, ticket = alerts.raise_alert(
            s,
            policy=ref.policy,
            account=s.get(Account, ref.id),
            fields={"signal": signal, **figures},
            subject=f"{alert.sender}: {alert.reason}",
            note=f"Postfix log {path.name}: {alert.reason}",
            now=self.now,
        )
        self.summary.counts["alerts_opened" if status == "opened" else "alerts_updated"] += 1
        self._list(
            path,
            {
                "outcome": status,
                "ticket": ticket.id,
                "policy": ref.policy,
                "account": ref.login,
                **entry,
            },
        )

    def _list(self, path: Path, entry: dict) -> None:
        if len(self.summary.items) < MAX_LISTED:
            self.summary.items.append({"item": str(path), **entry})
        else:
            self.summary.listed_all = False


class _Reader:
    """One file's run: feeds the analyser, checkpoints alerts and position together."""

    def __init__(self, store, path: Path, *, progress: Progress):
        self.store = store
        self.path = path
        self.progress = progress
        self.pending: list[Alert] = []

    def checkpoint(self, windows: SenderWindows, state: dict) -> None:
        self.store.checkpoint(
            self.path, self.pending, list(windows.bad), {**state, "stats": windows.snapshot()}
        )
        self.pending = []
        windows.bad.clear()

    def read(
        self, windows: SenderWindows, target: Path, offset: int, inode: int, first_hash: str | None
    ) -> int:
        """Read ``target`` from ``offset`` to its last complete line; returns the new offset."""
        since = 0
        long_lines: list = []
        with open(target, "rb") as handle:
            for data, end, position in blocks(handle, offset, BLOCK, long_lines=long_lines):
                _too_long(windows, long_lines)
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
        _too_long(windows, long_lines)  # a long line the file ends with
        return offset


def _too_long(windows: SenderWindows, long_lines: list) -> None:
    """Lines too long to be log lines (``senders.blocks``): quarantined with the next
    checkpoint, their start kept raw, with the reason; the run goes on after them."""
    for head, length, at in long_lines:
        windows.bad_count += 1
        windows.bad.append(
            (
                head,
                f"line too long for a Postfix log ({length} bytes from byte {at}, "
                f"limit {MAX_LINE}); only its first {len(head)} bytes are kept here",
            )
        )
    long_lines.clear()


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
    """The database first (the directory, the cursors), then the logs."""
    from helpdesk.base import clock
    from helpdesk.storage.db import read_session
    from helpdesk.ingest import store as records
    from helpdesk.ingest.routing import Directory

    now = now or clock.now()
    summary = Summary(kind="postfix", source=", ".join(paths))
    with read_session(url) as s:
        directory = Directory.load(s)
        cursors = {
            p: (
                {}
                if from_start
                else records.load_cursor(s, _cursor_key(Path(p).expanduser().absolute()))
            )
            for p in paths
        }
    store = _Store(url, directory, summary, now=now)
    lookup = thresholds_for(directory)
    tz = tz or _local_zone()
    for given in paths:
        path = Path(given).expanduser().absolute()
        try:
            _one_file(
                store,
                path,
                cursors[given],
                summary,
                lookup,
                year=year,
                tz=tz,
                window=window,
                show_progress=show_progress,
            )
        except OSError as exc:
            summary.errors.append(f"{given}: {exc.strerror or exc}")
    _finish_counts(summary)
    return summary


def _local_zone() -> tzinfo:
    from dateutil.tz import tzlocal

    return tzlocal()


def _finish_counts(summary: Summary) -> None:
    lines, events = summary.counts.get("lines", 0), summary.counts.get("events", 0)
    summary.counts["ignored"] = max(0, lines - events - summary.counts.get("bad_lines", 0))


def _one_file(
    store,
    path: Path,
    cursor: dict | None,
    summary: Summary,
    lookup,
    *,
    year,
    tz,
    window,
    show_progress,
) -> None:
    """``cursor`` None or empty: read as a first run."""
    status = os.stat(path)
    if not stat.S_ISREG(status.st_mode):  # a device or a FIFO has no end and no offset to resume at
        raise OSError(errno.EINVAL, "not a regular file")
    with open(path, "rb") as handle:
        first_hash = _first_line_hash(handle)
    windows = SenderWindows(
        year=year or datetime.fromtimestamp(status.st_mtime, UTC).year,
        tz=tz,
        window=window,
        thresholds=lookup,
        not_after=None if year else status.st_mtime,
    )
    cursor = cursor or {}
    if cursor.get("stats"):
        windows.restore(cursor["stats"])
    offset = 0
    todo: list[tuple[Path, int, int, str | None]] = []
    if cursor and cursor.get("inode") == status.st_ino:
        same = (
            cursor.get("first_line_hash") in (None, first_hash)
            and int(cursor.get("offset", 0)) <= status.st_size
        )
        offset = int(cursor.get("offset", 0)) if same else 0
        if not same:
            summary.counts["rewritten_files"] += 1
    elif cursor.get("inode") is not None:
        old = _rotated(path, int(cursor["inode"]))
        if old is not None:
            todo.append(
                (
                    old,
                    int(cursor.get("offset", 0)),
                    int(cursor["inode"]),
                    cursor.get("first_line_hash"),
                )
            )
        summary.counts["rotations_followed"] += 1
    todo.append((path, offset, status.st_ino, first_hash))
    total = sum(max(0, t.stat().st_size - o) for t, o, _i, _h in todo)
    progress = Progress(show_progress, f"ingest postfix {path.name}", total)
    reader = _Reader(store, path, progress=progress)
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
