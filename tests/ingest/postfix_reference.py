"""Postfix mail logs, read as a stream: line events, per-sender volume and bounce windows.

Only figures and envelope metadata are kept (counts per sender), never message content or
subjects (Indigos charter, art. 7: vigilance without monitoring members needlessly).
Memory stays flat on long logs: queue ids are forgotten once removed or past a horizon,
and per-sender counters only cover the current window.
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
import re
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from functools import lru_cache
from typing import BinaryIO, ClassVar

from helpdesk.ingest.errors import guarded
from helpdesk.ingest.limits import Alert, Thresholds  # noqa: F401  (also imported from here)
from helpdesk.ingest.decoding import clean

_MONTHS = {m: i for i, m in enumerate("jan feb mar apr may jun jul aug sep oct nov dec".split(), 1)}
_PREFIX = re.compile(
    r"^(?:(?P<mon>[A-Za-z]{3})\s+(?P<day>\d{1,2})\s+(?P<time>\d{1,2}:\d{2}:\d{2})(?:\.\d+)?"
    r"|(?P<iso>\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:Z|[+-]\d{2}:?\d{2})?))"
    r"\s+(?P<host>\S+)\s+(?P<tag>postfix(?:-[\w.-]+)?(?:/[\w.-]+)+)(?:\[(?P<pid>\d+)\])?:\s(?P<msg>.*)$"
)
# Short ids are upper-case hex; long ones (enable_long_queue_ids) mix digits and letters.
_QUEUE_ID = r"(?:[0-9A-F]{6,15}|(?=[0-9A-Za-z]*\d)[0-9A-Za-z]{10,20})"
_QUEUE_ID_RE = re.compile(_QUEUE_ID)
_CLIENT = re.compile(r"^client=(?P<host>[^\[\s,]*)\[(?P<ip>[^\]]*)\](?::\d+)?(?P<rest>.*)$")
_REJECT = re.compile(
    r"^(?:(?:milter-)?reject|discard|hold): (?P<stage>[A-Z]+) from (?P<host>[^\[\s]*)\[(?P<ip>[^\]]*)\](?::\d+)?:?\s*"
    r"(?:(?P<code>\d{3})(?: (?P<dsn>\d\.\d{1,3}\.\d{1,3}))? )?(?P<reason>.*)$"
)
_SASL_FAILED = re.compile(
    r"^warning: (?P<host>[^\[\s]*)\[(?P<ip>[^\]]*)\](?::\d+)?: SASL (?P<method>[\w-]+) authentication failed"
    r"(?::\s?(?P<reason>.*?))?(?:, sasl_username=(?P<user>\S+))?$"
)
_QUEUED_AS = re.compile(rf"\bqueued as (?P<qid>{_QUEUE_ID})\b")
_REJECT_TAIL = re.compile(r"(?:^|; )(?=(?:from|to|proto|helo)=)")


@dataclass(slots=True)  # not frozen: a frozen 20-field dataclass costs 10x more to build
class LogEvent:
    """One recognised Postfix log line.  ``kind`` is one of: "client" (smtpd accepted a
    connection for a queue id), "pickup" (local submission), "queued" (qmgr from=/size=/nrcpt=),
    "delivery" (to=/status=), "expired" (qmgr status=expired), "removed" (qmgr), "reject"
    (NOQUEUE or queue-id reject), "sasl_failed"."""

    timestamp: datetime
    host: str
    syslog_name: str  # "postfix", "postfix-smo/submission", "postfix/10025"
    service: str  # "smtpd", "qmgr", "smtp", ...
    kind: str
    queue_id: str | None = None
    client_host: str | None = None
    client_ip: str | None = None
    sasl_method: str | None = None
    sasl_username: str | None = None
    sender: str | None = None
    recipient: str | None = None
    size: int | None = None
    nrcpt: int | None = None
    status: str | None = None
    dsn: str | None = None
    relay: str | None = None
    stage: str | None = None  # reject: RCPT, EHLO, DATA, ...
    code: str | None = None  # reject: SMTP reply code
    queued_as: str | None = None  # delivery to a content filter: the re-injected queue id


@guarded("the log line")
def parse_line(line: str, year_hint: int, tz: tzinfo | None = None) -> LogEvent | None:
    """Recognise one syslog line from Postfix, or return None (other programs, other Postfix
    lines, comments, blanks, garbage).  Classic timestamps have no year: ``year_hint`` gives
    it and ``tz`` their zone (default UTC); RFC 3339 ones carry both.  Timestamps come back
    in UTC."""
    if not line or "postfix" not in line or line.lstrip().startswith("#"):
        return None
    line = clean(line.rstrip("\r\n")).strip()
    match = _PREFIX.match(line)
    if match is None:
        return None
    timestamp = _timestamp(match, year_hint, tz)
    if timestamp is None:
        return None
    tag = match.group("tag")
    syslog_name, _, service = tag.rpartition("/")
    base = {
        "timestamp": timestamp,
        "host": match.group("host"),
        "syslog_name": syslog_name,
        "service": service,
    }
    return _event(match.group("msg"), base)


def _timestamp(match: re.Match[str], year_hint: int, tz: tzinfo | None) -> datetime | None:
    return _convert_timestamp(
        match.group("mon"),
        match.group("day"),
        match.group("time"),
        match.group("iso"),
        year_hint,
        tz,
    )


@lru_cache(maxsize=256)  # consecutive lines often share their second
def _convert_timestamp(
    mon: str | None,
    day: str | None,
    clock: str | None,
    iso: str | None,
    year_hint: int,
    tz: tzinfo | None,
) -> datetime | None:
    try:
        if iso:
            value = datetime.fromisoformat(iso.replace(" ", "T"))
            if value.tzinfo is None:
                value = value.replace(tzinfo=tz or UTC)
        else:
            month = _MONTHS.get((mon or "").lower())
            if month is None or day is None or clock is None:
                return None
            hour, minute, second = (int(x) for x in clock.split(":"))
            value = datetime(year_hint, month, int(day), hour, minute, second, tzinfo=tz or UTC)
        return value.astimezone(UTC)
    except (ValueError, OverflowError, TypeError):
        return None


def _pairs(text: str) -> dict[str, str]:
    """``key=value`` items separated by commas and/or spaces, ``<...>`` unwrapped, the first
    value of each key kept, up to any " (...)" remark."""
    pairs: dict[str, str] = {}
    for item in text.split(" (", 1)[0].replace(",", " ").split():
        key, sep, value = item.partition("=")
        if sep and key not in pairs:
            pairs[key] = value[1:-1] if value.startswith("<") and value.endswith(">") else value
    return pairs


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _address(value: str | None) -> str | None:
    return value.strip().lower() if value is not None else None


def _event(msg: str, base: dict[str, object]) -> LogEvent | None:
    if msg.startswith("warning: "):
        return _sasl_failed(msg, base)
    if msg.startswith("NOQUEUE: "):
        queue_id, rest = None, msg[9:]
    else:
        queue_id, sep, rest = msg.partition(": ")
        if not sep or not _QUEUE_ID_RE.fullmatch(queue_id):
            return None
    if queue_id is None or "reject: " in rest[:16] or rest.startswith(("discard: ", "hold: ")):
        return _reject(rest, queue_id, base)
    if rest == "removed":
        return LogEvent(**base, kind="removed", queue_id=queue_id)  # type: ignore[arg-type]
    if rest.startswith("client="):
        client = _CLIENT.match(rest)
        if client is None:
            return None
        pairs = _pairs(client.group("rest"))
        return LogEvent(
            **base,  # type: ignore[arg-type]
            kind="client",
            queue_id=queue_id,
            client_host=client.group("host"),
            client_ip=_ip(client.group("ip")),
            sasl_method=pairs.get("sasl_method"),
            sasl_username=pairs.get("sasl_username") or None,
        )
    if rest.startswith("to="):
        pairs = _pairs(rest)
        if "status" not in pairs:
            return None
        queued_as = _QUEUED_AS.search(rest) if "queued as " in rest else None
        return LogEvent(
            **base,  # type: ignore[arg-type]
            kind="delivery",
            queue_id=queue_id,
            recipient=_address(pairs["to"]),
            relay=pairs.get("relay"),
            dsn=pairs.get("dsn"),
            status=pairs["status"],
            queued_as=queued_as.group("qid") if queued_as else None,
        )
    if rest.startswith("from="):
        pairs = _pairs(rest)
        if "size" in pairs:
            return LogEvent(
                **base,  # type: ignore[arg-type]
                kind="queued",
                queue_id=queue_id,
                sender=_address(pairs["from"]),
                size=_int(pairs.get("size")),
                nrcpt=_int(pairs.get("nrcpt")),
            )
        if pairs.get("status") == "expired":
            return LogEvent(
                **base,
                kind="expired",
                queue_id=queue_id,
                sender=_address(pairs["from"]),
                status="expired",
            )  # type: ignore[arg-type]
        return None
    if rest.startswith("uid="):
        pairs = _pairs(rest)
        if "from" in pairs:
            return LogEvent(
                **base, kind="pickup", queue_id=queue_id, sender=_address(pairs["from"])
            )  # type: ignore[arg-type]
    return None


def _sasl_failed(msg: str, base: dict[str, object]) -> LogEvent | None:
    sasl = _SASL_FAILED.match(msg)
    if sasl is None:
        return None
    return LogEvent(
        **base,  # type: ignore[arg-type]
        kind="sasl_failed",
        client_host=sasl.group("host"),
        client_ip=_ip(sasl.group("ip")),
        sasl_method=sasl.group("method").upper(),
        sasl_username=sasl.group("user"),
    )


def _reject(rest: str, queue_id: str | None, base: dict[str, object]) -> LogEvent | None:
    reject = _REJECT.match(rest)
    if reject is None:
        return None
    reason = reject.group("reason")
    tails = [m.start() for m in _REJECT_TAIL.finditer(reason)]
    pairs = _pairs(reason[tails[-1] :].replace(" (", " ")) if tails else {}
    return LogEvent(
        **base,  # type: ignore[arg-type]
        kind="reject",
        queue_id=queue_id,
        client_host=reject.group("host"),
        client_ip=_ip(reject.group("ip")),
        stage=reject.group("stage"),
        code=reject.group("code"),
        dsn=reject.group("dsn"),
        sender=_address(pairs.get("from")),
        recipient=_address(pairs.get("to")),
    )


def _ip(value: str | None) -> str | None:
    if not value:
        return None
    text = value.removeprefix("IPv6:").removeprefix("ipv6:")
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return None  # "unknown" and the like


def iter_events(
    lines: Iterable[str], year_hint: int, tz: tzinfo | None = None
) -> Iterator[LogEvent]:
    """``parse_line`` over many lines, moving classic (yearless) timestamps into the next
    year when the month goes back from December to January."""
    year = year_hint
    last_month = 0
    for line in lines:
        classic = _PREFIX_CLASSIC.match(line)
        month = _MONTHS.get(classic.group(1).lower(), 0) if classic else 0
        if month == 1 and last_month == 12:
            year += 1
        event = parse_line(line, year, tz)
        if event is None:
            continue
        if month:  # the month as written, not as converted to UTC
            last_month = month
        yield event


_PREFIX_CLASSIC = re.compile(r"^\s*([A-Za-z]{3})\s+\d{1,2}\s")


# --- per-sender windows ---------------------------------------------------------------------


@dataclass(slots=True)
class _Queued:
    seen: datetime
    sasl_username: str | None = None
    loopback: bool = False
    sender_key: str | None = None  # who deliveries are charged to; "" for nobody
    counted: bool = False  # the message was counted (once) for its sender
    deferred: set[str] = field(default_factory=set)


@dataclass(slots=True)
class _Bucket:
    start: datetime
    messages: int = 0
    recipients: int = 0
    bounces: int = 0
    deferrals: int = 0


_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


class SenderStats:
    """Correlates events by queue id and counts, per sender (SASL login if any, else the
    envelope sender), messages, recipients, bounces and deferrals over a sliding window.

    Feed events in log order.  The window is cut into ``buckets`` slices and slides by one
    slice at a time.  Queue ids are forgotten on ``removed``, after ``horizon``, or beyond
    ``max_queue_ids`` (oldest first).  Messages re-injected from loopback without SASL
    (content filters such as amavis) and bounces (null sender) are not counted.
    """

    def __init__(
        self,
        window: timedelta = timedelta(hours=1),
        *,
        buckets: int = 12,
        horizon: timedelta = timedelta(days=5),
        max_queue_ids: int = 200_000,
        count_loopback: bool = False,
    ) -> None:
        if window <= timedelta(0) or buckets < 1:
            raise ValueError("window must be positive and buckets at least 1")
        self.window = window
        self.slice = window / buckets
        self.horizon = horizon
        self.max_queue_ids = max_queue_ids
        self.count_loopback = count_loopback
        self.now: datetime | None = None
        self._current_slice: datetime | None = None
        self._queue: OrderedDict[str, _Queued] = OrderedDict()
        self._senders: dict[str, deque[_Bucket]] = {}

    # feeding

    def feed(self, event: LogEvent) -> None:
        if self.now is None or event.timestamp > self.now:
            self.now = event.timestamp
            current = self.slice_start(self.now)
            if current != self._current_slice:
                self._current_slice = current
                self._forget_senders()
        if event.queue_id is not None:
            handler = self._HANDLERS.get(event.kind)
            if handler is not None:
                handler(self, event)
        self._forget_queue_ids()

    def feed_all(self, events: Iterable[LogEvent]) -> None:
        for event in events:
            self.feed(event)

    def _entry(self, event: LogEvent) -> _Queued:
        entry = self._queue.get(event.queue_id)  # type: ignore[arg-type]
        if entry is None:
            entry = self._queue[event.queue_id] = _Queued(seen=event.timestamp)  # type: ignore[index]
        return entry

    def _on_client(self, event: LogEvent) -> None:
        entry = self._entry(event)
        entry.sasl_username = event.sasl_username.lower() if event.sasl_username else None
        entry.loopback = _is_loopback(event.client_ip)

    def _on_queued(self, event: LogEvent) -> None:
        entry = self._entry(event)
        if entry.counted or entry.sender_key is not None:
            return  # qmgr logs from= again each time a deferred message is retried
        entry.sender_key = entry.sasl_username or event.sender or ""
        if not entry.sender_key:
            return  # bounces and notifications have the null sender
        if entry.loopback and not entry.sasl_username and not self.count_loopback:
            return  # re-injected by a content filter: counted under its first queue id
        entry.counted = True
        bucket = self._bucket(entry.sender_key, event.timestamp)
        bucket.messages += 1
        bucket.recipients += event.nrcpt or 0

    def _on_delivery(self, event: LogEvent) -> None:
        entry = self._queue.get(event.queue_id)  # type: ignore[arg-type]
        if entry is None or not entry.sender_key:
            return
        if event.queued_as and event.status == "sent":
            # Handed to a content filter that re-queued it: the new queue id's deliveries
            # (and bounces) belong to this sender, without counting the message again.
            follower = self._queue.get(event.queued_as)
            if follower is None:
                follower = self._queue[event.queued_as] = _Queued(seen=event.timestamp)
            if not follower.counted:
                follower.sender_key = entry.sender_key
            return
        if event.status in ("bounced", "expired"):
            self._bucket(entry.sender_key, event.timestamp).bounces += 1
        elif event.status == "deferred":
            key = event.recipient or ""
            if key not in entry.deferred and len(entry.deferred) < 1000:
                entry.deferred.add(key)  # retries for one recipient count once
                self._bucket(entry.sender_key, event.timestamp).deferrals += 1

    def _on_expired(self, event: LogEvent) -> None:
        entry = self._queue.get(event.queue_id)  # type: ignore[arg-type]
        if entry is not None and entry.sender_key:
            self._bucket(entry.sender_key, event.timestamp).bounces += 1

    def _on_removed(self, event: LogEvent) -> None:
        self._queue.pop(event.queue_id, None)  # type: ignore[arg-type]

    _HANDLERS: ClassVar[dict[str, Callable[[SenderStats, LogEvent], None]]] = {
        "client": _on_client,
        "queued": _on_queued,
        "delivery": _on_delivery,
        "expired": _on_expired,
        "removed": _on_removed,
    }

    def _bucket(self, sender: str, when: datetime) -> _Bucket:
        buckets = self._senders.setdefault(sender, deque())
        start = self.slice_start(when)
        if buckets and buckets[-1].start >= start:
            return buckets[-1]  # same slice (or an event slightly out of order)
        bucket = _Bucket(start)
        buckets.append(bucket)
        return bucket

    def slice_start(self, when: datetime) -> datetime:
        return when - ((when - _EPOCH) % self.slice)

    def _window_start(self) -> datetime:
        assert self.now is not None
        return self.slice_start(self.now) - self.window + self.slice

    def _forget_senders(self) -> None:
        window_start = self._window_start()
        for sender in [s for s, b in self._senders.items() if b[-1].start < window_start]:
            del self._senders[sender]

    def _forget_queue_ids(self) -> None:
        assert self.now is not None
        oldest_kept = self.now - self.horizon
        while self._queue:
            queue_id, entry = next(iter(self._queue.items()))
            if entry.seen >= oldest_kept and len(self._queue) <= self.max_queue_ids:
                break
            del self._queue[queue_id]

    # reading

    @property
    def tracked_queue_ids(self) -> int:
        return len(self._queue)

    @property
    def tracked_senders(self) -> int:
        return len(self._senders)

    def totals(self, sender: str) -> tuple[int, int, int, int]:
        """(messages, recipients, bounces, deferrals) of ``sender`` in the current window."""
        if self.now is None:
            return (0, 0, 0, 0)
        window_start = self._window_start()
        buckets = [b for b in self._senders.get(sender, ()) if b.start >= window_start]
        return (
            sum(b.messages for b in buckets),
            sum(b.recipients for b in buckets),
            sum(b.bounces for b in buckets),
            sum(b.deferrals for b in buckets),
        )

    def check(self, thresholds: Thresholds) -> list[Alert]:
        """Alerts for the senders over a threshold in the current window."""
        if self.now is None:
            return []
        window_start, window = self._window_start(), _duration(self.window)
        alerts = []
        for sender in sorted(self._senders):
            totals = self.totals(sender)
            ratio, found = thresholds.breaches(*totals[:3], window)
            if found:
                alerts.append(Alert.of(sender, window_start, self.now, totals, ratio, found))
        return alerts


def _is_loopback(ip: str | None) -> bool:
    if not ip:
        return False
    try:
        return ipaddress.ip_address(ip).is_loopback
    except ValueError:
        return False


def _duration(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    return f"{minutes // 60} h" if minutes and minutes % 60 == 0 else f"{minutes} min"


def scan(
    events: Iterable[LogEvent], thresholds: Thresholds, window: timedelta = timedelta(hours=1)
) -> Iterator[Alert]:
    """Feed a whole log and yield alerts as it goes: a check whenever the window slides by a
    slice; the same sender and kinds are reported again only after a full window."""
    stats = SenderStats(window)
    checked: datetime | None = None
    reported: dict[tuple[str, tuple[str, ...]], datetime] = {}
    for event in events:
        stats.feed(event)
        current = stats.slice_start(event.timestamp)
        if checked is None or current > checked:
            yield from _fresh(stats.check(thresholds), reported, window)
            checked = current
    yield from _fresh(stats.check(thresholds), reported, window)


def _fresh(
    alerts: list[Alert], reported: dict[tuple[str, tuple[str, ...]], datetime], window: timedelta
) -> Iterator[Alert]:
    for alert in alerts:
        key = (alert.sender, alert.kinds)
        previous = reported.get(key)
        if previous is None or alert.window_end - previous >= window:
            reported[key] = alert.window_end
            yield alert
    if alerts:  # keep the memory of past reports bounded too
        now = alerts[0].window_end
        for key in [k for k, when in reported.items() if now - when > 2 * window]:
            del reported[key]


# --- resuming a log -------------------------------------------------------------------------

MAX_LINE_BYTES = 64 * 1024
_HASHED_BYTES = 4096


@dataclass(frozen=True, slots=True)
class LogCursor:
    """Where a reader stopped: the file's inode, the byte offset of the next line, and a hash
    of the file's first line (rotation by copy-and-truncate keeps the inode)."""

    inode: int
    offset: int
    first_line_hash: str | None


def _line_hash(line: bytes) -> str:
    return hashlib.sha256(line[:_HASHED_BYTES]).hexdigest()


def _first_line_hash(handle: BinaryIO) -> str | None:
    """Hash of the first line's beginning, once that line is complete (else None)."""
    handle.seek(0)
    head = chunk = handle.readline(MAX_LINE_BYTES)
    while chunk and not chunk.endswith(b"\n"):
        chunk = handle.readline(MAX_LINE_BYTES)
    return _line_hash(head) if chunk.endswith(b"\n") else None


def read_from(
    path: str | os.PathLike[str], cursor: LogCursor | None = None
) -> Iterator[tuple[str, LogCursor]]:
    """Yield each complete line after ``cursor`` (newline stripped, invalid UTF-8 replaced)
    with the cursor to resume after it.

    Starts again from the beginning when there is no cursor or the file was rotated: another
    inode, a file shorter than the offset (truncated), or another first line (replaced in
    place).  A last line without its newline is left for the next run; lines longer than
    MAX_LINE_BYTES are cut.  Opening errors (OSError) are the caller's to report.
    """
    with open(path, "rb") as handle:
        status = os.fstat(handle.fileno())
        inode = status.st_ino
        first_hash = _first_line_hash(handle)
        same_file = (
            cursor is not None and cursor.inode == inode and cursor.first_line_hash == first_hash
        )
        offset = (
            cursor.offset
            if same_file and cursor is not None and cursor.offset <= status.st_size
            else 0
        )
        handle.seek(offset)
        while True:
            start = handle.tell()
            raw = handle.readline(MAX_LINE_BYTES)
            if not raw.endswith(b"\n"):
                if len(raw) < MAX_LINE_BYTES:
                    return  # end of file, or a line still being written
                rest = raw
                while rest and not rest.endswith(b"\n"):  # overlong line: skip to its end
                    rest = handle.readline(MAX_LINE_BYTES)
                if not rest:
                    return
            if start == 0:
                first_hash = _line_hash(raw)
            yield (
                raw.rstrip(b"\r\n").decode("utf-8", "replace"),
                LogCursor(inode, handle.tell(), first_hash),
            )
