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

The command (``ingest_postfix_beside``) reads the log while the database layer loads: a
forked child imports the ORM, loads the directory and the cursors and then writes the
checkpoints the reader sends it, while this process reads from the start of the first file,
holding its checks until the thresholds arrive (``SenderWindows.hold``). When the cursor
says the file was read before, that guess is dropped and the reading starts again from the
cursor. Once ready, the child also runs the stateless searches (``senders.scan``) on blocks a
little ahead of the reader, which uses a result only for the very block it was made of. This
module imports nothing of the database layer at its top for these reasons.
"""

from __future__ import annotations

import errno
import hashlib
import os
import pickle
import select
import stat
import struct
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Callable

from helpdesk.base.errors import BadInput, HelpdeskError
from helpdesk.ingest.limits import Alert, Thresholds
from helpdesk.ingest.postfix_senders import (
    BLOCK,
    MAX_LINE,
    SenderWindows,
    blocks,
    blocks_from,
    scan,
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
    """One file's run: feeds the analyser, checkpoints alerts and position together.

    ``poll`` (while the analyser holds its checks) is asked after each block whether the
    database side has answered; it releases the checks, or raises ``_Restart``."""

    def __init__(self, store, path: Path, *, progress: Progress, poll=None):
        self.store = store
        self.path = path
        self.progress = progress
        self.poll = poll
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
        scans = getattr(self.store, "scans", None)
        origin = start = offset
        long_lines: list = []
        with open(target, "rb") as handle:
            for index, (data, end, position) in enumerate(
                blocks(handle, offset, BLOCK, long_lines=long_lines)
            ):
                _too_long(windows, long_lines)
                scanned = (
                    scans.take(target, inode, origin, index, start, end)
                    if scans is not None
                    else None
                )
                self.pending += windows.feed(data, end, scanned)
                start = position
                since += end
                self.progress.advance(end)
                if self.poll is not None and windows.holding:
                    self.poll(self, windows, wait=False)
                state = {"inode": inode, "offset": position, "first_line_hash": first_hash}
                # Alerts wait for the next checkpoint: a run stopped before it reads these
                # lines again from the last one, and raises them again, exactly once. (None
                # while the checks are held: the database side is not there yet.)
                if (since >= COMMIT_BYTES or len(windows.bad) >= 100) and not windows.holding:
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
    """One process: the database first, then the logs (the library path, and the command's
    where ``os.fork`` is missing)."""
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
    poll=None,
) -> None:
    """``cursor`` None: not known yet, read as a first run; ``lookup`` None: the thresholds
    are not known yet, the checks are held. ``poll`` tells when the database side answers."""
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
    if lookup is None:
        windows.hold()
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
    reader = _Reader(store, path, progress=progress, poll=poll)
    lines0, events0, bad0 = windows.lines, windows.events, windows.bad_count
    try:
        state = {"inode": status.st_ino, "offset": offset, "first_line_hash": first_hash}
        for target, start, inode, fhash in todo:
            end = reader.read(windows, target, start, inode, fhash)
            state = {"inode": inode, "offset": end, "first_line_hash": fhash}
        if windows.holding:  # the whole file read before the database side answered
            poll(reader, windows, wait=True)
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


# --- the command: reading beside the database side --------------------------------------------


class _Restart(Exception):
    """The first file was read before: drop what was read as a first run."""


class DatabaseSideError(Exception):
    """The database side failed in an unexpected way (its traceback is the message)."""


def ingest_postfix_beside(
    db: str | None,
    paths: list[str],
    *,
    year: int | None = None,
    tz: tzinfo | None = None,
    window: timedelta = timedelta(hours=1),
    from_start: bool = False,
    show_progress: bool = False,
    prologue=None,
) -> Summary:
    """``helpdesk ingest postfix``: like ``ingest_postfix``, with the database layer loaded by
    a forked child on the other core while this process reads. ``prologue(db)`` runs first
    in the child (checks, clock) and returns the database URL."""
    up_r, up_w = os.pipe()  # child -> this process
    down_r, down_w = os.pipe()  # this process -> child
    scan_r, scan_w = os.pipe()  # child -> this process: blocks scanned ahead
    _widen(scan_w)
    pid = os.fork()
    if pid == 0:  # the database side
        code = 0
        try:
            os.close(up_r)
            os.close(down_w)
            os.close(scan_r)
            _database_side(
                _Link(down_r, up_w),
                _Scanner(scan_w),
                db,
                paths,
                from_start=from_start,
                prologue=prologue,
            )
        except BaseException as exc:  # noqa: BLE001 (reported to the reader, which raises it)
            code = 1
            try:
                _Link(None, up_w).send(("error", *_portable(exc)))
            except BaseException:  # noqa: BLE001 (the reader is gone: nothing to tell)
                pass
        finally:
            os._exit(code)
    os.close(up_w)
    os.close(down_r)
    os.close(scan_w)
    link = _Link(up_r, down_w)
    scans = _Scans(link, scan_r)
    summary = Summary(kind="postfix", source=", ".join(paths))
    tz = tz or _local_zone()
    options = {"year": year, "tz": tz, "window": window, "show_progress": show_progress}
    try:
        store = _RemoteStore(link, scans)
        for n, given in enumerate(paths):
            path = Path(given).expanduser().absolute()
            try:
                if n == 0 and link.cursors is None:
                    try:
                        _one_file(
                            store,
                            path,
                            {} if from_start else None,
                            summary,
                            None,
                            poll=link.poll(given, from_start),
                            **options,
                        )
                        continue
                    except _Restart:
                        pass
                link.wait()
                _one_file(store, path, link.cursors[given], summary, link.lookup, **options)
            except OSError as exc:
                summary.errors.append(f"{given}: {exc.strerror or exc}")
        link.send(("done",))
        reply = link.receive()
        if reply is None or reply[0] != "summary":
            link.failed(reply)
        _kind, counts, items, listed_all = reply
        summary.counts.update(counts)
        summary.items = items
        summary.listed_all = listed_all
    finally:
        scans.close()
        link.close()
        os.waitpid(pid, 0)
    _finish_counts(summary)
    return summary


def _database_side(
    link: "_Link",
    scanner: "_Scanner",
    db: str | None,
    paths: list[str],
    *,
    from_start: bool,
    prologue,
) -> None:
    from helpdesk.base import clock
    from helpdesk.storage.db import read_session, resolve_url
    from helpdesk.ingest import store as records
    from helpdesk.ingest.routing import Directory

    url = prologue(db) if prologue is not None else resolve_url(db)
    now = clock.now()
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
    # Thresholds of every known sender key: lookup(key) for each login and address; any
    # other sender has no account (default thresholds, figures without a ticket).
    lookup = thresholds_for(directory)
    table = {key: lookup(key) for key in {*directory.by_login, *directory.by_address}}
    link.send(("ready", cursors, table))
    summary = Summary(kind="postfix", source="")
    store = _Store(url, directory, summary, now=now)
    while True:
        if scanner.busy():  # checkpoints first; scanning ahead in between
            wait = None if scanner.wants_to_write() else 0
            readable, writable, _ = select.select(
                [link.rfd], [scanner.wfd] if scanner.wants_to_write() else [], [], wait
            )
            if not readable:
                scanner.step()
                continue
        message = link.receive()
        if message is None:  # the reader stopped (killed): what was committed stays
            return
        if message[0] == "checkpoint":
            _kind, path, alerts, bad, state = message
            store.checkpoint(Path(path), alerts, bad, state)
        elif message[0] == "scan":
            scanner.ask(*message[1:])
        elif message[0] == "done":
            scanner.stop()
            link.send(("summary", dict(summary.counts), summary.items, summary.listed_all))
            return


def _portable(exc: BaseException) -> tuple:
    """An exception as the reader can raise it again: HelpdeskErrors pickled, others as text."""
    if isinstance(exc, HelpdeskError):
        try:
            data = pickle.dumps(exc)
            pickle.loads(data)
            return ("helpdesk", data, str(exc))
        except Exception:  # noqa: BLE001
            return ("helpdesk", None, str(exc))
    if isinstance(exc, KeyboardInterrupt):
        return ("interrupt", None, "")
    import traceback

    return ("other", None, "".join(traceback.format_exception(exc)))


class _RemoteStore:
    """Checkpoints sent to the database side, which commits each one whole."""

    def __init__(self, link: "_Link", scans: "_Scans | None" = None):
        self.link = link
        self.scans = scans

    def checkpoint(
        self, path: Path, alerts: list[Alert], bad: list[tuple[bytes, str]], state: dict
    ) -> None:
        self.link.wait()  # (the reader never checkpoints before, this is a safeguard)
        self.link.send(("checkpoint", str(path), alerts, bad, state))


_HEADER = struct.Struct("!Q")


class _Link:
    """Length-prefixed pickles over a pair of pipes, and what the database side answered.
    Reads go straight to the file descriptor (no buffer), so that ``select`` tells the truth."""

    def __init__(self, rfd: int | None, wfd: int | None):
        self.rfd = rfd
        self.writer = os.fdopen(wfd, "wb") if wfd is not None else None
        self.cursors: dict | None = None
        self.lookup: Callable[[str], Thresholds] | None = None

    def send(self, message: tuple) -> None:
        data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
        try:
            self.writer.write(_HEADER.pack(len(data)))
            self.writer.write(data)
            self.writer.flush()
        except BrokenPipeError:  # the database side stopped: say why
            self.failed(self.receive())

    def receive(self) -> tuple | None:
        header = _read_exactly(self.rfd, _HEADER.size)
        if header is None:
            return None
        data = _read_exactly(self.rfd, _HEADER.unpack(header)[0])
        return pickle.loads(data) if data is not None else None

    def readable(self) -> bool:
        return bool(select.select([self.rfd], [], [], 0)[0])

    def failed(self, reply: tuple | None):
        if reply is not None and reply[0] == "error":
            kind, data, text = reply[1:]
            if kind == "helpdesk":
                raise (pickle.loads(data) if data is not None else BadInput(text))
            if kind == "interrupt":
                raise KeyboardInterrupt
            raise DatabaseSideError(text)
        raise DatabaseSideError("the database side of the run stopped without a word")

    def ready(self, reply: tuple | None) -> None:
        if reply is None or reply[0] != "ready":
            self.failed(reply)
        _kind, self.cursors, table = reply
        default = Thresholds()
        self.lookup = lambda sender: table.get(sender.strip().lower(), default)

    def wait(self) -> None:
        if self.cursors is None:
            self.ready(self.receive())

    def poll(self, given: str, from_start: bool):
        """The reader's ``poll`` for the first file, read before its cursor is known."""

        def poll(reader: _Reader, windows: SenderWindows, *, wait: bool) -> None:
            if not wait and not self.readable():
                return
            self.wait()
            if self.cursors.get(given) and not from_start:
                reader.progress.close()
                raise _Restart
            reader.pending += windows.release(self.lookup)

        return poll

    def close(self) -> None:
        if self.rfd is not None:
            try:
                os.close(self.rfd)
            except OSError:
                pass
        if self.writer is not None:
            try:
                self.writer.close()
            except OSError:
                pass
        self.rfd = self.writer = None


def _widen(fd: int) -> None:
    """A pipe that holds several scanned blocks (about 80 KB each), where the system allows it
    (Linux: up to /proc/sys/fs/pipe-max-size, 1 MiB by default); else the default 64 KiB
    lets the scanning ahead fall behind the reader, which then simply scans for itself."""
    try:
        import fcntl

        fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, 1 << 20)
    except (ImportError, AttributeError, OSError):
        pass


def _read_exactly(fd: int, size: int) -> bytes | None:
    parts, left = [], size
    while left:
        part = os.read(fd, min(left, 1 << 20))
        if not part:
            return None  # the other side is gone
        parts.append(part)
        left -= len(part)
    return b"".join(parts)


# --- scanning ahead, on the database side's idle core -------------------------------------------


class _Scans:
    """The reader's side of the scanning ahead: once the database side is ready, it is asked
    to run ``senders.scan`` (the regex searches, about half of the reading) on the blocks a
    little ahead of the reader, and its results come
    back on a pipe of their own, read without ever waiting (a block it has not done yet is
    scanned by the reader, as always). A result is used only for the block it was made of:
    same file, same start and end."""

    AHEAD = 2  # blocks between the reader and the first block asked for
    KEPT = 8  # results read ahead at most

    def __init__(self, link: _Link, rfd: int):
        self.link = link
        self.rfd = rfd
        os.set_blocking(rfd, False)
        self.buffer = bytearray()
        self.results: dict[tuple[int, int], tuple] = {}
        self.asked: tuple | None = None  # (target, inode, offset) of the current request
        self.seq = 0
        self.first = 0  # the block asked for first
        self.latest: int | None = None  # start of the latest block received

    def take(
        self, target: Path, inode: int, offset: int, index: int, start: int, end: int
    ) -> tuple | None:
        if self.link.cursors is None or self.rfd is None:
            return None  # the database side is not ready (or is gone)
        if self.asked != (target, inode, offset):
            self.asked = (target, inode, offset)
            self._ask(target, inode, offset, index)
            return None
        if len(self.results) < self.KEPT:
            self._drain()
        found = self.results.pop((self.seq, start), None)
        for key in [k for k in self.results if k[0] != self.seq or k[1] < start]:
            del self.results[key]
        if found is None or found[0] != end:
            # Fallen behind (the reader goes faster with its help than it scans): ask it to
            # go on from a little ahead again, rather than scan blocks already read.
            if (
                found is None
                and index >= self.first + self.AHEAD
                and (self.latest is None or self.latest < start)
            ):
                self._ask(target, inode, offset, index)
            return None
        return found[1:]

    def _ask(self, target: Path, inode: int, offset: int, index: int) -> None:
        self.seq += 1
        self.results.clear()
        self.first = index + self.AHEAD
        self.latest = None
        self.link.send(("scan", self.seq, str(target), inode, offset, self.first))

    def _drain(self) -> None:
        while True:
            try:
                part = os.read(self.rfd, 1 << 20)
            except BlockingIOError:
                break
            if not part:
                self.close()
                break
            self.buffer += part
        while len(self.buffer) >= _HEADER.size:
            size = _HEADER.unpack_from(self.buffer)[0]
            if len(self.buffer) < _HEADER.size + size:
                break
            seq, start, end, *scanned = pickle.loads(
                self.buffer[_HEADER.size : _HEADER.size + size]
            )
            del self.buffer[: _HEADER.size + size]
            if seq == self.seq:
                self.results[(seq, start)] = (end, *scanned)
                self.latest = start

    def close(self) -> None:
        if self.rfd is not None:
            os.close(self.rfd)
            self.rfd = None


class _Scanner:
    """The database side's part: scans blocks ahead between two checkpoints, and sends each
    result when the pipe has room (never blocking on it: checkpoints come first)."""

    def __init__(self, wfd: int):
        self.wfd = wfd
        os.set_blocking(wfd, False)
        self.blocks = None
        self.handle: BinaryIO | None = None
        self.seq = 0
        self.out = b""  # a result not (wholly) sent yet

    def ask(self, seq: int, path: str, inode: int, offset: int, chunk: int) -> None:
        self.stop()
        self.seq = seq
        try:
            self.handle = open(path, "rb")
            if (
                os.fstat(self.handle.fileno()).st_ino != inode
            ):  # rotated meanwhile: not the reader's file
                self.stop()
                return
        except OSError:
            self.stop()
            return
        self.blocks = blocks_from(self.handle, offset, chunk, BLOCK)

    def busy(self) -> bool:
        return self.blocks is not None or bool(self.out)

    def step(self) -> None:
        """Send what waits, else scan the next block."""
        if self.out:
            try:
                sent = os.write(self.wfd, self.out)
            except BlockingIOError:
                return
            except OSError:  # the reader is gone
                self.out = b""
                self.stop()
                return
            self.out = self.out[sent:]
            return
        if self.blocks is None:
            return
        try:
            start, data, end, _position = next(self.blocks)
        except (StopIteration, OSError):
            self.stop()
            return
        data = pickle.dumps(
            (self.seq, start, end, *scan(data, end)), protocol=pickle.HIGHEST_PROTOCOL
        )
        self.out = _HEADER.pack(len(data)) + data

    def wants_to_write(self) -> bool:
        return bool(self.out)

    def stop(self) -> None:
        self.blocks = None
        if self.handle is not None:
            self.handle.close()
            self.handle = None
