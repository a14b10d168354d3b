"""What an ingest run reports: the summary (counts, items, errors) and the progress bar.

Light on purpose (no database import): ``helpdesk ingest postfix`` reads its log with this
and the analyser alone while the database layer loads beside it (``helpdesk.ingest.postfix_log``).
"""

from __future__ import annotations

import sys
from collections import Counter
from dataclasses import dataclass, field

MAX_LISTED = 1000  # items listed one by one in a summary (counts are always complete)
COUNTS = ("opened", "threaded", "acknowledged", "updated", "recorded", "duplicates", "quarantined")
LOG_COUNTS = (
    "lines",
    "events",
    "ignored",
    "bad_lines",
    "quarantined",
    "duplicates",
    "alerts_opened",
    "alerts_updated",
    "alerts_unmatched",
    "rotations_followed",
    "rewritten_files",
    "bytes",
)


@dataclass
class Outcome:
    outcome: str  # opened | threaded | updated | recorded | duplicate | empty | quarantined
    ticket: int | None = None
    tickets: list[int] = field(default_factory=list)  # more than one (a DMARC mail, say)
    quarantine: int | None = None
    reason: str = ""
    acknowledged: bool = False
    details: dict = field(default_factory=dict)  # queue, policy, account...
    extra: Counter = field(default_factory=Counter)  # other counts (dmarc stats...)


@dataclass
class Summary:
    kind: str
    source: str
    counts: Counter = field(default_factory=Counter)
    items: list[dict] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    listed_all: bool = True

    def add(self, item_key: str, o: Outcome) -> None:
        key = {"duplicate": "duplicates"}.get(o.outcome, o.outcome)
        self.counts[key] += 1
        if o.acknowledged:
            self.counts["acknowledged"] += 1
        self.counts.update(o.extra)
        if len(self.items) < MAX_LISTED:
            entry: dict[str, object] = {"item": item_key, "outcome": o.outcome}
            if o.ticket is not None:
                entry["ticket"] = o.ticket
            if o.tickets:
                entry["tickets"] = o.tickets
            if o.quarantine is not None:
                entry["quarantine"] = o.quarantine
            if o.reason:
                entry["reason"] = o.reason
            if o.acknowledged:
                entry["acknowledged"] = True
            entry.update(o.details)
            self.items.append(entry)
        else:
            self.listed_all = False

    def as_dict(self) -> dict:
        counts = {
            k: self.counts.get(k, 0) for k in (LOG_COUNTS if self.kind == "postfix" else COUNTS)
        }
        counts.update({k: v for k, v in self.counts.items() if k not in counts})
        return {
            "kind": self.kind,
            "source": self.source,
            "counts": counts,
            "items": self.items,
            "all_items_listed": self.listed_all,
            "errors": self.errors,
        }


class Progress:
    """A rich progress bar on stderr when it is a terminal (never with --json)."""

    def __init__(self, enabled: bool, label: str, total: int | None):
        self._bar = None
        self._task = None
        if enabled and sys.stderr.isatty():
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress as RichProgress,
                TextColumn,
                TimeRemainingColumn,
            )

            self._bar = RichProgress(
                TextColumn("{task.description}", markup=False),
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
                console=Console(stderr=True),
                transient=True,
            )
            self._bar.start()
            self._task = self._bar.add_task(label, total=total or None)

    def advance(self, n: int = 1) -> None:
        if self._bar is not None:
            self._bar.advance(self._task, n)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
