"""Files the helpdesk reads and writes, safely.

What it writes (the database and its WAL, backups, the sent Maildir, anchor files) can
hold personal data or reset links: created 0600 in 0700 folders, whatever the umask.
What it reads from a path a person gives (a CSV, an anchor file) must be a regular file,
is read up to a cap, and must be UTF-8; a path is shown with its control characters
escaped, so a file name cannot drive the terminal.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from helpdesk.base.errors import BadInput
from helpdesk.base.i18n import _

PRIVATE_FILE = 0o600
PRIVATE_DIR = 0o700
READ_CAP = 64 * 1024 * 1024  # what a file given by name may hold (a CSV of accounts, anchors)


def private_umask() -> None:
    """From here on, files and folders this process creates are its owner's only."""
    os.umask(0o077)


def shown(path) -> str:
    """A path as it may be printed: control characters, and bytes that are not UTF-8,
    escaped."""
    text = path if isinstance(path, str) else os.fsdecode(path)
    out = []
    for ch in text:
        code = ord(ch)
        if 0xDC80 <= code <= 0xDCFF:  # a byte that was not UTF-8 (surrogateescape)
            out.append(f"\\x{code - 0xDC00:02x}")
        elif ch.isprintable():
            out.append(ch)
        else:
            out.append(ch.encode("unicode_escape").decode("ascii"))
    return "".join(out)


def make_private_dir(folder: Path) -> None:
    """Create ``folder`` (and missing parents) 0700; an existing one is left as it is."""
    if not folder.exists():
        folder.mkdir(parents=True, mode=PRIVATE_DIR, exist_ok=True)
        os.chmod(folder, PRIVATE_DIR)


def append_private(path, text: str) -> None:
    """Append to a file created 0600 (an existing file keeps its mode)."""
    p = Path(path).expanduser()
    try:
        make_private_dir(p.parent)
        # O_NONBLOCK: a FIFO with no reader is refused at once instead of waited on
        fd = os.open(p, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NONBLOCK, PRIVATE_FILE)
        with os.fdopen(fd, "a", encoding="utf-8") as handle:
            if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                raise BadInput(_("{path} is not a regular file").format(path=shown(p)))
            handle.write(text)
    except OSError as exc:
        raise BadInput(
            _("cannot write {path}: {error}").format(path=shown(p), error=exc.strerror)
        ) from None


def read_bytes(path, cap: int = READ_CAP) -> bytes:
    """The content of a regular file given by name, at most ``cap`` bytes (more: refused)."""
    p = Path(path).expanduser()
    try:  # O_NONBLOCK: opening a FIFO does not wait for a writer, it is refused below
        with os.fdopen(os.open(p, os.O_RDONLY | os.O_NONBLOCK), "rb") as handle:
            if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                raise BadInput(_("{path} is not a regular file").format(path=shown(p)))
            data = handle.read(cap + 1)
    except OSError as exc:
        raise BadInput(
            _("cannot read {path}: {error}").format(path=shown(p), error=exc.strerror)
        ) from None
    if len(data) > cap:
        raise BadInput(
            _("{path} is larger than {n} MB").format(path=shown(p), n=cap // (1024 * 1024))
        )
    return data


def read_text(path, cap: int = READ_CAP) -> str:
    """``read_bytes`` decoded as UTF-8 (a byte-order mark is dropped)."""
    data = read_bytes(path, cap)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BadInput(
            _("{path} is not UTF-8 text (byte {n})").format(path=shown(path), n=exc.start)
        ) from None
