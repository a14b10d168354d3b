"""SSH identities: one shared system account, one forced command per volunteer key.

``helpdesk volunteer authorized-keys`` prints the ``authorized_keys`` lines of the shared
account, the way gitolite does it: each key may only run ``helpdesk --as LOGIN`` on a
terminal (``restrict,pty,command="..."``), so a key is an identity and nothing else.
"""

from __future__ import annotations

import base64
import binascii
import errno
import re
import shlex
import struct
from pathlib import Path

from helpdesk.base import files
from helpdesk.base.errors import BadInput
from helpdesk.base.i18n import _

KEY_TYPES = {
    "ssh-ed25519",
    "ssh-rsa",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
}


def normalise(text: str) -> str:
    """A public key (or the path of a .pub file) as ``type base64``, checked; the comment and
    any options are dropped, since the helpdesk writes the options itself."""
    text = (text or "").strip()
    if text and "\n" not in text and not text.startswith(tuple(KEY_TYPES)):
        path = Path(text).expanduser()
        try:
            if path.is_file():
                text = path.read_text().strip()
        except OSError as exc:
            if exc.errno != errno.ENAMETOOLONG:  # too long for a path: it is not one
                raise BadInput(
                    _("cannot read {path}: {error}").format(
                        path=files.shown(path), error=exc.strerror
                    )
                ) from None
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    if len(lines) != 1:
        raise BadInput(_("give exactly one public key (one line of a .pub file)"))
    parts = lines[0].split()
    starts = [i for i, p in enumerate(parts) if p in KEY_TYPES]
    if not starts or starts[0] + 1 >= len(parts):
        raise BadInput(_("not an OpenSSH public key: {key!r}").format(key=lines[0][:60]))
    kind, blob = parts[starts[0]], parts[starts[0] + 1]
    try:
        raw = base64.b64decode(blob, validate=True)
        (n,) = struct.unpack(">I", raw[:4])
        inner = raw[4 : 4 + n].decode("ascii")
    except (binascii.Error, struct.error, UnicodeDecodeError, ValueError):
        raise BadInput(_("not an OpenSSH public key: {key!r}").format(key=lines[0][:60])) from None
    if inner != kind:
        raise BadInput(_("the key says it is {a} but holds a {b} key").format(a=kind, b=inner))
    return f"{kind} {blob}"


def is_key_line(key) -> bool:
    """Whether a stored key is what ``normalise`` makes: ``type base64`` on one line, so
    that an ``authorized_keys`` line built from it can hold nothing else."""
    parts = key.split(" ") if isinstance(key, str) else []
    return (
        len(parts) == 2
        and parts[0] in KEY_TYPES
        and re.fullmatch(r"[A-Za-z0-9+/]+={0,2}", parts[1]) is not None
    )


def forced_command(login: str, *, program: str, db: str | None = None) -> str:
    args = [program]
    if db:
        args += ["--db", db]
    args += ["--as", login]
    return " ".join(shlex.quote(a) for a in args)


def authorized_keys_line(login: str, key: str, *, program: str, db: str | None = None) -> str:
    command = (
        forced_command(login, program=program, db=db).replace("\\", "\\\\").replace('"', '\\"')
    )
    return f'restrict,pty,command="{command}" {key} helpdesk:{login}'
