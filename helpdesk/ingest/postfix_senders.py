"""Per-sender mail figures from Postfix logs, fast: the streaming path behind
``helpdesk ingest postfix``.

It keeps the rules of ``postfix.SenderStats`` (the reference implementation, tested line by
line; a test checks both give the same figures): messages are charged to the SASL login, else
the envelope sender; the null sender and re-injections from a loopback content filter are not
counted; a bounce or an expiry counts once, a deferral once per recipient; windows slide by a
twelfth of their length; queue ids are forgotten when removed, after a horizon, or past a
maximum. Only figures and envelope metadata are kept, never content (Indigos art. 7).

What makes it fast (about 8x pflogsumm, where parse_line + SenderStats run slower than it):
it never looks at most lines. Whole blocks of the log are searched by the regex engine for
the few markers that matter (a client= line with a SASL login or from loopback, qmgr's
from=/size=/nrcpt=, a bounced, deferred or expired status, ": removed", a hand-over to a
loopback content filter), which also captures the login, sender and recipient count; Python
then only slices the queue id and, once a minute, reads a time stamp (a minute lies within one
window slice). Memory stays flat (one block, the queue ids in flight, the senders of the
current window), and the state is saved and restored (``snapshot``/``restore``) so that a run
resumes where the previous one stopped. Differences with SenderStats, on purpose: times are
kept to the minute; client= lines without a login and not from loopback are skipped (they
teach nothing); deliveries are linked to a re-queued id only for loopback content filters.
"""

from __future__ import annotations

from typing import Any

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, tzinfo

from helpdesk.base.i18n import _
from helpdesk.ingest.limits import Alert, Thresholds

EPOCH = 946684800  # 2000-01-01T00:00:00Z, where SenderStats' slices start
_MONTHS = {
    m.encode(): i
    for i, m in enumerate("Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split(), 1)
}

# One search for the lines that matter, most of their reading done by the regex engine:
#   1: SASL login of a client= line (Postfix writes ", sasl_method=M, sasl_username=U" right
#      after the client's address);  2: loopback address of a client= line without one
#      (other client= lines do not match at all: nothing to learn from them);
#   3: sender of a from=< line, then 4: its nrcpt (qmgr's "from=<s>, size=N, nrcpt=N")
#      or 5: the rest of another from= line (qmgr's "status=expired"); neither: no ">".
_MAIN = re.compile(
    rb": (?:client=[^\[\n]*\[(?:[^\]\n]*\](?::\d+)?, sasl_method=[^,\n]*, sasl_username=([^\s,]*)"
    rb"|(127\.|::1\]|IPv6:::1\]))"
    rb"|from=<([^>\n]*)(?:>, size=\d+, nrcpt=(\d+)|(>[^\n]*))?)"
)
_REMOVED = re.compile(rb": removed\r?\n")
# Rarer markers, each searched alone so that the C search can skip ahead on its literal.
_STATUS = re.compile(rb", status=(?:bounced|deferred|expired)")
_LOOPBACK_RELAYS = (re.compile(rb"127\.0\.0\.1\]:\d"), re.compile(rb"\[::1\]:\d"))
MAX_BAD_KEPT = 1000
UNKNOWN_TIME = 2**62
_UNKNOWN: Any = object()  # a key not looked up yet (None: looked up, no limits)

# queue entry fields (a list, for speed)
SENDER, SASL, LOOPBACK, COUNTED, DEFERRED, SEEN = range(6)


class BadLine(Exception):
    pass


def zone_ok(minute: bytes) -> bool:
    return bool(minute) and minute[-1:] == b":"


def scan(data: bytes, end: int) -> tuple[int, list[int], list[bytes], list[tuple]]:
    """What ``feed`` needs of a block that does not depend on what came before: its number of
    lines, where its bounced/deferred/expired statuses are, the queue ids it removes, and the
    matches of the main search (start, which alternative, groups). Kept apart so that another
    process can do it ahead (``helpdesk.ingest.postfix_log``)."""
    lines = data.count(b"\n", 0, end)
    matches = [(m.start(), m.lastindex, m.groups()) for m in _MAIN.finditer(data, 0, end)]
    statuses = [m.start() for m in _STATUS.finditer(data, 0, end)]
    if b"\r" in data:  # (one memchr: far cheaper than looking for "removed\r")
        removed = []
        rfind = data.rfind
        for m in _REMOVED.finditer(data, 0, end):
            p = m.start()
            removed.append(data[rfind(b" ", 0, p) + 1 : p])
    else:  # the common case, a little faster: split at ": removed\n", the queue id ends each piece
        pieces = (data if end == len(data) else data[:end]).split(b": removed\n")
        removed = [piece[piece.rfind(b" ") + 1 :] for piece in pieces[:-1]]
    return lines, statuses, removed, matches


class SenderWindows:
    def __init__(
        self,
        *,
        year: int,
        tz: tzinfo | None = None,
        window: timedelta = timedelta(hours=1),
        buckets: int = 12,
        horizon: timedelta = timedelta(days=5),
        max_queue_ids: int = 200_000,
        count_loopback: bool = False,
        thresholds: Callable[[str], Thresholds | None] | None = None,
        not_after: float | None = None,
    ) -> None:
        if window <= timedelta(0) or buckets < 1:
            raise ValueError("window must be positive and buckets at least 1")
        self.window_s = int(window.total_seconds())
        self.buckets = buckets
        self.slice_s = max(1, self.window_s // buckets)
        self.horizon_s = int(horizon.total_seconds())
        self.max_queue_ids = max_queue_ids
        self.count_loopback = count_loopback
        self.tz = tz or UTC
        self.year = year
        self.not_after = not_after  # classic stamps after this are last year's (checked once)
        self._year_checked = not_after is None
        self.thresholds = thresholds or (lambda _sender: Thresholds())
        self._limits: dict[bytes, Thresholds | None] = {}
        self.now = 0  # epoch seconds of the latest line
        self.cur = -1  # current slice index
        self.last_month = 0
        self.queue: dict[bytes, list] = {}
        self.senders: dict[
            bytes, list
        ] = {}  # key -> [buckets, messages, recipients, bounces, deferrals]
        self.active: dict[bytes, int] = {}  # key -> last slice with activity, oldest first
        self.dirty: set[bytes] = set()
        self.reported: dict[tuple[bytes, tuple[str, ...]], int] = {}
        self.lines = self.events = self.bad_count = 0
        self.bad: list[tuple[bytes, str]] = []  # (line, reason) of unreadable Postfix lines
        self._filter_seen = False  # a loopback content filter re-injects mail
        self._minute = b"\xff"  # the last minute read ("Mar 14 00:00:"), its epoch and slice
        self._minute_base = self._minute_idx = 0
        self._whole_minutes = self.slice_s % 60 == 0
        self._hours: dict[tuple, int] = {}
        self._held: list | None = None  # checks waiting for the thresholds (see hold)

    # --- feeding ---------------------------------------------------------------------------------

    def feed(
        self, data: bytes, end: int | None = None, scanned: tuple | None = None
    ) -> list[Alert]:
        """Complete lines: ``data[:end]`` (all of it by default) ends with a newline. Returns
        the alerts raised meanwhile. ``scanned``: ``scan(data, end)``, if another process
        already did it.

        The loop is the hot path of a million-line log: it inlines the common case (a from=
        line in the same minute as the line before) and leaves the rest to the methods."""
        if end is None:
            end = len(data)
        lines, statuses, removed, matches = scanned or scan(data, end)
        self.lines += lines
        self._too_long(data, end)
        alerts: list[Alert] = []
        # Hand-overs to a loopback content filter are looked for once one is known to exist
        # (a client= line from loopback), which spares two scans of every block otherwise.
        filter_known = self._filter_seen
        rare = [(q, 1) for q in statuses]
        if filter_known:
            rare += self._relays(data, end)
        rare.sort()
        rare.append((end + 1, 0))
        ri = 0
        next_rare = rare[0][0]
        queue, senders, active, dirty = self.queue, self.senders, self.active, self.dirty
        rfind, find, startswith = data.rfind, data.find, data.startswith
        count_loopback = self.count_loopback
        # The minute read last and the latest time, kept in locals: only _head and _rare
        # (through _stamp and _advance) change them.
        minute, minute_base, minute_idx = self._minute, self._minute_base, self._minute_idx
        latest = self.now or UNKNOWN_TIME
        _SENDER, _SASL, _LOOPBACK, _COUNTED, _SEEN = (
            SENDER,
            SASL,
            LOOPBACK,
            COUNTED,
            SEEN,
        )  # locals: faster
        events = 0
        for p, which, g in matches:
            if next_rare < p:
                while next_rare < p:
                    self._rare(data, next_rare, rare[ri][1], alerts)
                    ri += 1
                    next_rare = rare[ri][0]
                minute, minute_base, minute_idx = self._minute, self._minute_base, self._minute_idx
                latest = self.now or UNKNOWN_TIME
            if which == 1:  # client= with a SASL login
                qid = data[rfind(b" ", 0, p) + 1 : p]
                entry = queue.get(qid)
                if entry is None:  # its time: the latest read ("unknown" before any)
                    queue[qid] = [None, g[0].lower() or None, False, False, None, latest]
                else:
                    entry[_SASL] = g[0].lower() or None
                    entry[_LOOPBACK] = False
                events += 1
                continue
            if which == 2:  # client= from loopback, without a login: a content filter's
                qid = data[rfind(b" ", 0, p) + 1 : p]
                entry = queue.get(qid)
                if entry is None:
                    queue[qid] = [None, None, True, False, None, latest]
                else:
                    entry[_SASL] = None
                    entry[_LOOPBACK] = True
                self._filter_seen = True
                events += 1
                continue
            # from=<sender>: the time decides the window slice. A minute lies in one slice
            # (slices are whole minutes, see __init__): a line of the minute read last needs no
            # more reading of its time.
            ls = rfind(b"\n", 0, p) + 1
            sp = rfind(b" ", ls, p)
            # (qmgr's "from=<s>, size=N, nrcpt=N" is Postfix's own: other lines must say so)
            if startswith(minute, ls) and (
                which == 4 or (data[sp - 1] == 58 and find(b" postfix", ls, sp) >= 0)
            ):
                qid = data[sp + 1 : p]
                ts, idx = minute_base, minute_idx
            else:
                head = self._head(data, p, alerts)
                minute, minute_base, minute_idx = self._minute, self._minute_base, self._minute_idx
                latest = self.now or UNKNOWN_TIME
                if head is None:
                    continue
                ts, idx, qid, ls = head
            if which == 4:  # qmgr: the message enters the queue
                events += 1
                entry = queue.get(qid)
                if entry is None:
                    entry = queue[qid] = [None, None, False, False, None, ts]
                else:
                    entry[_SEEN] = ts
                if entry[_SENDER] is not None:  # (set before COUNTED, so it covers it)
                    continue  # qmgr logs from= again at each retry of a deferred message
                sender, nrcpt = g[2], g[3]
                key = entry[_SASL] or sender.lower()
                entry[_SENDER] = key
                if not key:
                    continue  # the null sender: bounces and notifications
                if entry[_LOOPBACK] and not entry[_SASL] and not count_loopback:
                    continue  # re-injected by a content filter: counted under its first queue id
                entry[_COUNTED] = True
                nrcpt = int(nrcpt)
                # self._add(key, idx, 1, nrcpt, 0, 0), inlined
                rec = senders.get(key)
                if rec is None:
                    rec = senders[key] = [[], 0, 0, 0, 0]
                buckets = rec[0]
                if buckets and buckets[-1][0] >= idx:
                    bucket = buckets[-1]
                else:  # a new slice for this sender: it moves to the end of "active"
                    bucket = [idx, 0, 0, 0, 0]
                    buckets.append(bucket)
                    active.pop(key, None)
                    active[key] = idx
                bucket[1] += 1
                bucket[2] += nrcpt
                rec[1] += 1
                rec[2] += nrcpt
                dirty.add(key)
            elif which == 3:
                self._bad(data, ls, _("from=< without its closing >"))
            elif b"status=expired" in g[4]:
                events += 1
                entry = queue.get(qid)
                if entry is not None and entry[SENDER]:
                    self._add(entry[SENDER], idx, 0, 0, 1, 0)
        while ri < len(rare) - 1:
            self._rare(data, rare[ri][0], rare[ri][1], alerts)
            ri += 1
        if self._filter_seen and not filter_known:  # the filter showed up in this block
            for q, kind in sorted(self._relays(data, end)):
                self._rare(data, q, kind, alerts)
        # Queue ids removed in this block are forgotten last: all their lines were read.
        pop = queue.pop
        for qid in removed:
            pop(qid, None)
        events += len(removed)
        self.events += events
        return alerts

    @staticmethod
    def _relays(data: bytes, end: int) -> list[tuple[int, int]]:
        return [
            (m.start(), 2) for pattern in _LOOPBACK_RELAYS for m in pattern.finditer(data, 0, end)
        ]

    def _head(self, data: bytes, p: int, alerts: list[Alert]) -> tuple[int, int, bytes, int] | None:
        """Time, slice and queue id of the line holding ``p`` (the ": " after its queue id):
        ``STAMP HOST postfix[-x]/service[pid]: QUEUEID: ...``, read with byte operations."""
        ls = data.rfind(b"\n", 0, p) + 1
        sp = data.rfind(b" ", ls, p)
        if sp <= ls or data[sp - 1] != 58 or data.find(b" postfix", ls, sp) < 0:
            self._not_ours(data, ls, p)
            return None
        qid = data[sp + 1 : p]
        if not 5 <= len(qid) <= 20 or not qid.isalnum():
            self._bad(data, ls, _("unreadable queue id"))
            return None
        if data.startswith(self._minute, ls):  # most lines: the same minute as the line before
            return self._minute_base, self._minute_idx, qid, ls
        try:
            ts = self._stamp(data, ls)
        except BadLine as exc:
            self._bad(data, ls, str(exc))
            return None
        idx = (ts - EPOCH) // self.slice_s
        if idx > self.cur:
            self._advance(idx, alerts)
        if ts > self.now:
            self.now = ts
        return ts, idx, qid, ls

    def finish(self) -> list[Alert]:
        """A last check at the end of the log (what the window holds now)."""
        alerts: list[Alert] = []
        if self.cur >= 0:
            self._check(alerts)
        return alerts

    def _not_ours(self, data: bytes, ls: int, p: int) -> None:
        segment = data[ls:p]
        if b" postfix" in segment and (segment[:1].isdigit() or segment[:1].isalpha()):
            self._bad(
                data,
                ls,
                _("Postfix line with an unreadable head (time stamp, host, service or queue id)"),
            )

    def _too_long(self, data: bytes, end: int) -> None:
        """Lines of ``data[:end]`` longer than ``MAX_LOG_LINE``: no Postfix line is, so each
        is quarantined with its reason (kept raw) rather than counted as ignored."""
        for ls, le in long_lines(data, end):
            self._bad(
                data,
                ls,
                f"line too long for a Postfix log ({le - ls} bytes, limit {MAX_LOG_LINE}); "
                f"only its first {min(le - ls, LONG_LINE_KEPT)} bytes are kept here",
                keep=LONG_LINE_KEPT,
            )

    def _bad(self, data: bytes, ls: int, reason: str, keep: int | None = None) -> None:
        self.bad_count += 1
        if len(self.bad) < MAX_BAD_KEPT:  # the caller empties it after each block
            le = data.find(b"\n", ls)
            le = le if le >= 0 else len(data)
            self.bad.append((data[ls : le if keep is None else min(le, ls + keep)], reason))

    def _stamp(self, data: bytes, ls: int) -> int:
        """Epoch seconds of the line at ``ls``: a classic stamp (``Mar 14 00:00:02``, local
        time in ``tz``, the year from ``year``) or RFC 3339. Remembers its minute, so that the
        next lines of that minute need only their seconds read (see ``_head``)."""
        end = data.find(b" ", ls + 1, ls + 48)
        if data[ls : ls + 1].isdigit():
            stamp = data[ls:end] if end > ls else b""
            if (
                len(stamp) < 19
                or stamp[10:11] not in (b"T", b"t", b" ")
                or stamp[13:14] != b":"
                or stamp[16:17] != b":"
            ):
                raise BadLine(_("unreadable time stamp"))
            zone = stamp[19:].lstrip(b".0123456789")
            try:
                base = self._iso_hour(stamp[:13], zone) + int(stamp[14:16]) * 60
                seconds = int(stamp[17:19])
            except (ValueError, OverflowError) as exc:
                raise BadLine(_("unreadable time stamp ({error})").format(error=exc)) from None
            minute = stamp[:17]
        else:
            parts = data[ls : ls + 32].split(None, 3)
            if (
                len(parts) < 3
                or len(parts[2]) != 8
                or parts[2][2:3] != b":"
                or parts[2][5:6] != b":"
            ):
                raise BadLine(_("unreadable time stamp"))
            mon, day, hms = parts[:3]
            try:
                base = self._classic_hour(mon, day, hms[:2]) + int(hms[3:5]) * 60
                seconds = int(hms[6:8])
            except (ValueError, OverflowError) as exc:
                raise BadLine(_("unreadable time stamp ({error})").format(error=exc)) from None
            at = data.find(hms, ls, ls + 32)
            minute = data[ls : at + 6]
        # The minute is remembered (a plain prefix of the stamp), with its start and slice.
        if zone_ok(minute) and self._whole_minutes:
            self._minute, self._minute_base, self._minute_idx = (
                minute,
                base,
                (base - EPOCH) // self.slice_s,
            )
        else:
            self._minute = b"\xff"
        return base + seconds

    def _iso_hour(self, hour: bytes, zone: bytes) -> int:
        key = (hour, zone)
        found = self._hours.get(key)
        if found is not None:
            return found
        if len(self._hours) > 10_000:
            self._hours.clear()
        value = self._hours[key] = self._iso_hour_uncached(hour, zone)
        return value

    def _iso_hour_uncached(self, hour: bytes, zone: bytes) -> int:
        text = hour.decode("ascii").replace(" ", "T").replace("t", "T") + ":00:00"
        if not zone:
            return int(datetime.fromisoformat(text).replace(tzinfo=self.tz).timestamp())
        z = zone.decode("ascii")
        if z in ("Z", "z"):
            z = "+00:00"
        elif ":" not in z:
            z = z[:3] + ":" + z[3:]
        return int(datetime.fromisoformat(text + z).timestamp())

    def _classic_hour(self, mon: bytes, day: bytes, hour: bytes) -> int:
        key = (mon, day, hour, self.year)
        found = self._hours.get(key)
        if found is not None:
            return found
        if len(self._hours) > 10_000:
            self._hours.clear()
        value = self._classic_hour_uncached(mon, day, hour)
        self._hours[(mon, day, hour, self.year)] = value
        return value

    def _classic_hour_uncached(self, mon: bytes, day: bytes, hour: bytes) -> int:
        month = _MONTHS.get(mon)
        if month is None:
            raise BadLine(_("unknown month {month!r}").format(month=mon.decode("ascii", "replace")))
        if self.last_month and month < self.last_month and self.last_month - month >= 6:
            self.year += 1  # December -> January
        self.last_month = month
        when = datetime(self.year, month, int(day), int(hour), tzinfo=self.tz)
        ts = int(when.timestamp())
        if not self._year_checked:
            self._year_checked = True
            if self.not_after is not None and ts > self.not_after + 86400:
                self.year -= 1
                ts = int(when.replace(year=self.year).timestamp())
        return ts

    # --- the events SenderStats counts -----------------------------------------------------------------

    def _entry(self, qid: bytes, ts: int) -> list:
        entry = self.queue.get(qid)
        if entry is None:
            entry = self.queue[qid] = [None, None, False, False, None, ts]
        return entry

    def _rare(self, data: bytes, q: int, kind: int, alerts: list[Alert]) -> None:
        ls = data.rfind(b"\n", 0, q) + 1
        le = data.find(b"\n", q)
        t = data.find(b": to=<", ls, q)
        if t < 0:
            return  # qmgr's own "status=expired" line (read with from=), or not a delivery
        head = self._head(data, t, alerts)
        if head is None:
            return
        ts, idx, qid, _ls = head
        entry = self.queue.get(qid)
        if kind == 2:  # handed to a loopback content filter, which re-queued it
            line = data[ls:le]
            qa = line.find(b"queued as ")
            if b"status=sent" not in line or qa < 0:
                return
            follower_id = line[qa + 10 :].split(b")", 1)[0].split(b" ", 1)[0].strip()
            self.events += 1
            if entry is None or not entry[SENDER] or not follower_id:
                return
            follower = self._entry(follower_id, ts)
            if not follower[COUNTED]:
                follower[SENDER] = entry[SENDER]
            return
        self.events += 1
        if entry is None or not entry[SENDER]:
            return
        status = data[q + 9 : q + 12]
        if status in (b"bou", b"exp"):
            self._add(entry[SENDER], idx, 0, 0, 1, 0)
        else:  # deferred: once per recipient of this message
            r = data.find(b">", t + 6, le)
            rcpt = data[t + 6 : r].lower() if r >= 0 else b""
            deferred = entry[DEFERRED]
            if deferred is None:
                deferred = entry[DEFERRED] = set()
            if rcpt not in deferred and len(deferred) < 1000:
                deferred.add(rcpt)
                self._add(entry[SENDER], idx, 0, 0, 0, 1)

    def _add(
        self, key: bytes, idx: int, messages: int, recipients: int, bounces: int, deferrals: int
    ) -> None:
        rec = self.senders.get(key)
        if rec is None:
            rec = self.senders[key] = [[], 0, 0, 0, 0]
        buckets = rec[0]
        if buckets and buckets[-1][0] >= idx:
            b = buckets[-1]  # same slice (or a line slightly out of order)
        else:
            b = [idx, 0, 0, 0, 0]
            buckets.append(b)
            self.active.pop(key, None)
            self.active[key] = idx
        b[1] += messages
        b[2] += recipients
        b[3] += bounces
        b[4] += deferrals
        rec[1] += messages
        rec[2] += recipients
        rec[3] += bounces
        rec[4] += deferrals
        self.dirty.add(key)

    # --- windows -------------------------------------------------------------------------------

    def _advance(self, idx: int, alerts: list[Alert]) -> None:
        """A new slice begins: forget what left the window, check who changed."""
        self.cur = idx
        first = idx - self.buckets + 1
        active, senders, dirty = self.active, self.senders, self.dirty
        stale = []
        for key, last in active.items():  # oldest activity first
            if last >= first:
                break
            stale.append(key)
        for key in stale:
            del active[key]
            senders.pop(key, None)
            dirty.discard(key)
        queue = self.queue
        if idx % self.buckets == 0 or len(queue) > self.max_queue_ids:  # once a window is enough
            oldest = self.now - self.horizon_s
            excess = len(queue) - self.max_queue_ids
            gone: list[bytes] = []
            for qid, entry in queue.items():  # oldest first
                if entry[SEEN] >= oldest and len(gone) >= excess:
                    break
                gone.append(qid)
            for qid in gone:
                del queue[qid]
        self._check(alerts)

    def _window_totals(self, key: bytes) -> tuple[int, int, int, int]:
        rec = self.senders.get(key)
        if rec is None:
            return (0, 0, 0, 0)
        first = self.cur - self.buckets + 1
        buckets = rec[0]
        while buckets and buckets[0][0] < first:
            b = buckets.pop(0)
            rec[1] -= b[1]
            rec[2] -= b[2]
            rec[3] -= b[3]
            rec[4] -= b[4]
        return rec[1], rec[2], rec[3], rec[4]

    def totals(self, sender: str) -> tuple[int, int, int, int]:
        """(messages, recipients, bounces, deferrals) of ``sender`` in the current window."""
        return self._window_totals(sender.encode("utf-8", "surrogateescape").lower())

    @property
    def tracked_senders(self) -> int:
        return len(self.senders)

    @property
    def tracked_queue_ids(self) -> int:
        return len(self.queue)

    def _limit(self, key: bytes) -> Thresholds | None:
        try:
            return self._limits[key]
        except KeyError:
            if len(self._limits) > 100_000:
                self._limits.clear()
            found = self._limits[key] = self.thresholds(key.decode("utf-8", "replace"))
            return found

    def _check(self, alerts: list[Alert]) -> None:
        dirty = list(self.dirty)
        self.dirty.clear()  # the same set object: feed() holds it
        window_start = datetime.fromtimestamp(
            EPOCH + (self.cur - self.buckets + 1) * self.slice_s, UTC
        )
        window_end = datetime.fromtimestamp(self.now, UTC)
        minutes = self.window_s // 60
        label = f"{minutes // 60} h" if minutes and minutes % 60 == 0 else f"{minutes} min"
        senders, known = self.senders, self._limits
        if self._held is not None:  # thresholds not known yet: keep the figures, decide later
            first, totals = self.cur - self.buckets + 1, []
            for key in dirty:
                rec = senders.get(key)
                if rec is not None:  # (_window_totals, inlined for the common case: nothing stale)
                    totals.append(
                        (
                            key,
                            (rec[1], rec[2], rec[3], rec[4])
                            if rec[0] and rec[0][0][0] >= first
                            else self._window_totals(key),
                        )
                    )
            self._held.append((window_start, window_end, label, self.now, totals))
            return
        now = self.now
        for key in dirty:
            limits = known.get(key, _UNKNOWN)
            if limits is _UNKNOWN:
                limits = self._limit(key)
            rec = senders.get(key)
            if limits is None or rec is None:
                continue
            # Totals that may still hold slices gone from the window: when even they stay
            # under every limit, the sender cannot alert (most senders, most of the time).
            if (
                rec[1] <= limits.burst
                and rec[1] < limits.bounce_min_messages
                and (limits.max_recipients is None or rec[2] <= limits.max_recipients)
            ):
                continue
            self._decide(
                alerts, key, self._window_totals(key), limits, window_start, window_end, label, now
            )
        self._after_check(alerts, now)

    def _decide(
        self,
        alerts: list[Alert],
        key: bytes,
        totals: Any,  # (messages, recipients, bounces, deferred), a tuple or a list
        limits: Thresholds,
        window_start,
        window_end,
        label: str,
        now: int,
    ) -> None:
        ratio, found = limits.breaches(totals[0], totals[1], totals[2], label)
        if not found:
            return
        kinds = tuple(kind for kind, _ in found)
        previous = self.reported.get((key, kinds))
        if previous is not None and now - previous < self.window_s:
            return  # the same sender and reasons: again only after a full window
        self.reported[(key, kinds)] = now
        alerts.append(
            Alert.of(key.decode("utf-8", "replace"), window_start, window_end, totals, ratio, found)
        )

    def _after_check(self, alerts: list[Alert], now: int) -> None:
        if len(alerts) > 1:
            alerts.sort(key=lambda a: (a.window_end, a.sender))
        for k in [k for k, when in self.reported.items() if now - when > 2 * self.window_s]:
            del self.reported[k]

    # --- thresholds known late ---------------------------------------------------------------

    def hold(self) -> None:
        """Read on before the thresholds are known (they come from the database, which may
        still be loading): each check keeps the window figures of the senders it would look
        at, and ``release`` decides on them later, in order, as the checks would have."""
        if self._held is None:
            self._held = []

    @property
    def holding(self) -> bool:
        return self._held is not None

    def release(self, thresholds: Callable[[str], Thresholds | None]) -> list[Alert]:
        """The thresholds are known: the alerts the held checks raise, in order."""
        self.thresholds = thresholds
        self._limits.clear()
        held, self._held = self._held or [], None
        alerts: list[Alert] = []
        known = self._limits
        for window_start, window_end, label, now, totals in held:
            for key, figures in totals:
                limits = known.get(key, _UNKNOWN)
                if limits is _UNKNOWN:
                    limits = self._limit(key)
                if limits is None:
                    continue
                messages, recipients = figures[0], figures[1]
                if (
                    messages <= limits.burst
                    and messages < limits.bounce_min_messages
                    and (limits.max_recipients is None or recipients <= limits.max_recipients)
                ):
                    continue  # under every limit (as _check's shortcut)
                self._decide(alerts, key, figures, limits, window_start, window_end, label, now)
            self._after_check(alerts, now)
        return alerts

    # --- saving and resuming ---------------------------------------------------------------------

    def snapshot(self) -> dict:
        """A JSON-able state to resume from (with the byte offset saved beside it)."""
        if self._held is not None:
            raise RuntimeError("checks are held: release them before saving the state")

        def s(b: bytes | None) -> str | None:
            return None if b is None else b.decode("latin-1")

        return {
            "v": 1,
            "year": self.year,
            "last_month": self.last_month,
            "now": self.now,
            "cur": self.cur,
            "year_checked": self._year_checked,
            "filter_seen": self._filter_seen,
            "queue": [
                [
                    s(q),
                    s(e[SENDER]),
                    s(e[SASL]),
                    e[LOOPBACK],
                    e[COUNTED],
                    [s(r) for r in e[DEFERRED]] if e[DEFERRED] else None,
                    e[SEEN],
                ]
                for q, e in self.queue.items()
            ],
            "senders": [[s(k), rec[0]] for k, rec in self.senders.items()],
            "active": [[s(k), v] for k, v in self.active.items()],
            "dirty": sorted(s(k) for k in self.dirty),
            "reported": [[s(k), list(kinds), when] for (k, kinds), when in self.reported.items()],
        }

    def restore(self, state: dict) -> None:
        if not state or state.get("v") != 1:
            return

        def b(text: str | None) -> bytes | None:
            return None if text is None else text.encode("latin-1")

        self.year = int(state.get("year", self.year))
        self.last_month = int(state.get("last_month", 0))
        self.now = int(state.get("now", 0))
        self.cur = int(state.get("cur", -1))
        self._year_checked = bool(state.get("year_checked", True))
        self._filter_seen = bool(state.get("filter_seen", False))
        self.queue = {
            b(q): [
                b(sender),
                b(sasl),
                bool(loop),
                bool(counted),
                {b(r) for r in deferred} if deferred else None,
                int(seen),
            ]
            for q, sender, sasl, loop, counted, deferred, seen in state.get("queue", [])
        }
        self.senders = {}
        for key, buckets in state.get("senders", []):
            rec: list[Any] = [[list(x) for x in buckets], 0, 0, 0, 0]
            for x in rec[0]:
                for i in range(1, 5):
                    rec[i] += x[i]
            self.senders[b(key)] = rec
        self.active = {b(k): int(v) for k, v in state.get("active", [])}
        self.dirty.clear()
        self.dirty.update(b(k) for k in state.get("dirty", []))
        self.reported = {
            (b(k), tuple(kinds)): int(when) for k, kinds, when in state.get("reported", [])
        }


# --- lines too long to be log lines ----------------------------------------------------------

MAX_LOG_LINE = 64 * 1024  # Postfix logs a few hundred bytes a line; syslog cuts at 8 KiB
_PROBE = MAX_LOG_LINE // 2


def long_lines(data: bytes, end: int) -> list[tuple[int, int]]:
    """``(start, end)`` of each line of ``data[:end]`` (complete lines) longer than
    ``MAX_LOG_LINE``. Such a line holds a whole aligned window of half that size with no
    newline: a few ``find`` calls per block clear an ordinary one; only a block that fails
    them is walked line by line."""
    if not any(data.find(b"\n", at, at + _PROBE) < 0 for at in range(0, end - _PROBE + 1, _PROBE)):
        return []
    out = []
    start = 0
    while start < end:
        stop = data.find(b"\n", start, end)
        stop = end if stop < 0 else stop
        if stop - start > MAX_LOG_LINE:
            out.append((start, stop))
        start = stop + 1
    return out


# --- reading a file -----------------------------------------------------------------------------

BLOCK = 1024 * 1024  # four regex passes over a block; its size changes little, memory a bit
MAX_LINE = 64 * 1024 * 1024  # a "line" longer than this is not a log line: not analysed
LONG_LINE_KEPT = 64 * 1024  # what is kept of it, raw, for the quarantine


def blocks(handle, offset: int, block: int = BLOCK, *, carry: bytes = b"", long_lines=None):
    """``(data, end, end offset)``: ``data[:end]`` is complete lines read from ``offset`` (a
    last line without its newline is left for the next run: it may still be being written).
    Each block is copied once (the carried-over partial line is small). ``carry``: the bytes
    from ``offset`` on already read (the first block then reads from ``offset + len(carry)``).

    A line longer than ``MAX_LINE`` is not analysed: it is passed over to its end, and
    ``(first LONG_LINE_KEPT bytes, length, start offset)`` is appended to ``long_lines``
    (a list, when given) for the caller to quarantine."""
    handle.seek(offset + len(carry))
    position = offset
    skipping: list | None = None  # [head, length, start] of a line too long, until its end
    while True:
        chunk = handle.read(block)
        if not chunk:
            return
        if skipping is not None:
            newline = chunk.find(b"\n")
            if newline < 0:
                skipping[1] += len(chunk)
                position += len(chunk)
                continue
            skipping[1] += newline
            position += newline + 1
            if long_lines is not None:
                long_lines.append(tuple(skipping))
            skipping = None
            chunk = chunk[newline + 1 :]
            if not chunk:
                continue
        data = carry + chunk if carry else chunk
        cut = data.rfind(b"\n") + 1
        if not cut:
            if len(data) > MAX_LINE:  # not a log line: passed over to its end
                skipping = [data[:LONG_LINE_KEPT], len(data), position]
                position += len(data)
                carry = b""
            else:
                carry = data
            continue
        position += cut
        carry = data[cut:]
        yield data, cut, position


def blocks_from(handle, offset: int, chunk: int, block: int = BLOCK):
    """The blocks ``blocks(handle, offset, block)`` yields from its ``chunk``-th read on (each
    read is ``block`` bytes from ``offset``): ``(start offset, data, end, end offset)``, found
    without reading what comes before but one block. Nothing when a line is longer than that."""
    boundary = offset + chunk * block
    back = min(block, boundary - offset)
    handle.seek(boundary - back)
    head = handle.read(back)
    newline = head.rfind(b"\n")
    if len(head) < back or newline < 0:
        return
    start = boundary - back + newline + 1
    for data, end, position in blocks(handle, start, block, carry=head[newline + 1 :]):
        yield start, data, end, position
        start = position


def analyse(
    path: str,
    *,
    year: int | None = None,
    tz: tzinfo | None = None,
    thresholds: Thresholds | None = None,
) -> dict:
    """The library path (no database): figures and alerts for one whole log file."""
    import os

    limit = thresholds or Thresholds()
    stat = os.stat(path)
    windows = SenderWindows(
        year=year or datetime.fromtimestamp(stat.st_mtime, UTC).year,
        tz=tz,
        thresholds=lambda _sender: limit,
        not_after=None if year else stat.st_mtime,
    )
    found: list[Alert] = []
    long_lines: list = []
    with open(path, "rb") as handle:
        for data, end, _offset in blocks(handle, 0, long_lines=long_lines):
            found += windows.feed(data, end)
    found += windows.finish()
    windows.bad_count += len(long_lines)
    return {
        "lines": windows.lines,
        "events": windows.events,
        "bad_lines": windows.bad_count,
        "senders_in_window": windows.tracked_senders,
        "alerts": [
            {
                "sender": a.sender,
                "window_start": a.window_start.isoformat(),
                "window_end": a.window_end.isoformat(),
                "messages": a.messages,
                "recipients": a.recipients,
                "bounces": a.bounces,
                "deferrals": a.deferrals,
                "bounce_ratio": a.bounce_ratio,
                "reason": a.reason,
            }
            for a in found
        ],
    }
