"""What every ingest source yields: raw items, one at a time, with where they came from."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

MAX_ITEM_BYTES = 100 * 1024 * 1024  # larger files are quarantined unread (their start kept)


class SourceError(Exception):
    """The source as a whole cannot be read (missing path, login refused, connection lost)."""


@dataclass
class Item:
    key: str  # where in the source: "cur/1700000000.M1.host:2,S", "mbox #12", "uid 42"
    data: bytes
    source: str  # the source's label (a path, or an IMAP URL without its password)
    position: dict | None = None  # cursor state to save with this item (IMAP)
    too_large: int | None = None  # the real size, when ``data`` is only the start
    # What parsers made of ``data`` (``parsed``): computed before the write transaction,
    # used inside it, so that the database is never locked while a parser works.
    cache: dict = field(default_factory=dict, repr=False, compare=False)


def parsed(item: Item, parse: Callable[[bytes], Any]) -> Any:
    """``parse(item.data)``, computed once per item: its result, or the error it raised
    raised again. Ingest calls the handlers' ``prepare`` outside any transaction; the
    handlers then find the work done."""
    if parse not in item.cache:
        try:
            item.cache[parse] = (True, parse(item.data))
        except Exception as exc:  # noqa: BLE001 - kept, and raised again where it is used
            item.cache[parse] = (False, exc)
    ok, value = item.cache[parse]
    if ok:
        return value
    raise value


class Source:
    label = ""
    cursor_key: str | None = None  # IngestCursor row the positions belong to

    def __len__(self) -> int:  # items to expect, for the progress bar
        return 0

    def __iter__(self) -> Iterator[Item]:
        return iter(())

    def close(self) -> None:
        pass

    def __enter__(self) -> "Source":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
