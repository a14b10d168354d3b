"""A consistent copy of an SQLite database file, its write-ahead log included.

SQLite's online backup API copies page by page under the source's read lock, so a copy
taken while another process writes is still one consistent state. Backups, restores,
the demo and training builds, and the tests' per-test databases all copy this way.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path


def copy_sqlite(source: Path | str, target: Path | str, *, read_only: bool = False) -> None:
    """Copy the database at ``source`` over the one at ``target`` (created if missing).
    ``read_only`` opens the source so that it is never written, not even its journal."""
    src = (
        sqlite3.connect(f"file:{source}?mode=ro", uri=True)
        if read_only
        else sqlite3.connect(source)
    )
    try:
        dst = sqlite3.connect(target)
        try:
            src.backup(dst)
        finally:
            dst.close()
    finally:
        src.close()
