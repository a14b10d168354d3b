"""Where raw items come from: a Maildir, an mbox, a folder of files, one file, or an IMAP
mailbox (``imap://`` / ``imaps://``, see ``helpdesk.ingest.imap``).

Sources are read, never changed: messages stay where they are (the MDA or the mail client
owns the mailbox), so an ingest can be run again at any time; items already dealt with are
recognised by their hash (see ``records``). Items are read one at a time, so memory stays
flat on big mailboxes.
"""

from __future__ import annotations

import mailbox as stdlib_mailbox
import os
from collections.abc import Iterator
from pathlib import Path

from helpdesk.base.i18n import _
from helpdesk.ingest.items import MAX_ITEM_BYTES, Item, Source, SourceError  # noqa: F401 - re-exported
from helpdesk.base.files import shown


def _read(path: Path) -> tuple[bytes, int | None]:
    """An item's bytes, or its first 64 KiB and its size when it is too large. The cap is
    on the bytes actually read, not on what ``stat`` says (a device or a growing file)."""
    with open(path, "rb") as handle:
        data = handle.read(MAX_ITEM_BYTES + 1)
        if len(data) > MAX_ITEM_BYTES:
            return data[: 64 * 1024], max(len(data), os.fstat(handle.fileno()).st_size)
        return data, None


class Maildir(Source):
    """``new/`` then ``cur/``, oldest first (Maildir names start with the delivery time)."""

    def __init__(self, path: Path):
        self.path = path
        self.label = str(path)
        self._files = sorted(
            (
                p
                for sub in ("new", "cur")
                if (path / sub).is_dir()
                for p in (path / sub).iterdir()
                if p.is_file() and not p.name.startswith(".")
            ),
            key=lambda p: (p.name, p.parent.name),
        )

    def __len__(self) -> int:
        return len(self._files)

    def __iter__(self) -> Iterator[Item]:
        for path in self._files:
            try:
                data, size = _read(path)
            except FileNotFoundError:
                continue  # moved by a mail client meanwhile (new/ -> cur/): found again next run
            yield Item(f"{path.parent.name}/{path.name}", data, self.label, too_large=size)


class Mbox(Source):
    def __init__(self, path: Path):
        self.path = path
        self.label = str(path)
        try:
            self._box = stdlib_mailbox.mbox(str(path), factory=None, create=False)
            self._keys = list(self._box.iterkeys())
        except (OSError, stdlib_mailbox.Error) as exc:
            raise SourceError(
                _("cannot read the mbox {path}: {error}").format(path=path, error=exc)
            ) from None

    def __len__(self) -> int:
        return len(self._keys)

    def __iter__(self) -> Iterator[Item]:
        for n, key in enumerate(self._keys, start=1):
            yield Item(f"mbox #{n}", self._box.get_bytes(key), self.label)

    def close(self) -> None:
        self._box.close()


class Files(Source):
    """One file, or every file under a folder (sorted, hidden ones skipped)."""

    def __init__(self, path: Path):
        self.path = path
        self.label = str(path)
        if path.is_dir():
            self._files = sorted(
                p
                for p in path.rglob("*")
                if p.is_file()
                and not any(part.startswith(".") for part in p.relative_to(path).parts)
            )
        else:
            self._files = [path]

    def __len__(self) -> int:
        return len(self._files)

    def __iter__(self) -> Iterator[Item]:
        for path in self._files:
            data, size = _read(path)
            key = path.name if path == self.path else str(path.relative_to(self.path))
            yield Item(key, data, self.label if path != self.path else str(path), too_large=size)


def is_maildir(path: Path) -> bool:
    return path.is_dir() and (path / "cur").is_dir() and (path / "new").is_dir()


def is_mbox(path: Path) -> bool:
    """An mbox: named so, or a file of several messages each opened by a ``From `` line."""
    if path.suffix.lower() == ".mbox":
        return True
    try:
        with open(path, "rb") as handle:
            head = handle.read(5)
            if head != b"From ":
                return False
            handle.seek(0)
            blank_before = False
            for n, line in enumerate(handle):
                if n and blank_before and line.startswith(b"From "):
                    return True  # a second message: a one-message mbox is just a mail file
                blank_before = line in (b"\n", b"\r\n")
                if n > 1_000_000:
                    break
    except OSError:
        return False
    return False


def open_source(target: str, *, environ: dict | None = None) -> Source:
    """The source named on the command line: an IMAP URL, a Maildir, an mbox, a folder of
    files or one file."""
    if target.lower().startswith(("imap://", "imaps://")):
        from helpdesk.ingest.imap import ImapSource

        return ImapSource(target, environ=environ if environ is not None else dict(os.environ))
    path = Path(target).expanduser()
    if not path.exists():
        raise SourceError(_("no such file or folder: {path}").format(path=shown(target)))
    if not (
        path.is_dir() or path.is_file()
    ):  # a device, a FIFO, a socket: never read until it ends
        raise SourceError(_("not a regular file or a folder: {path}").format(path=shown(target)))
    if is_maildir(path):
        return Maildir(path)
    if path.is_file() and is_mbox(path):
        return Mbox(path)
    return Files(path)
