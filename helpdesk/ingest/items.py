"""What every ingest source yields: raw items, one at a time, with where they came from."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

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
