"""An IMAP mailbox as an ingest source: ``imap://user[:password]@host[:port]/Folder``.

- ``imaps://`` is IMAP over TLS (port 993), verified against the system's CAs, or the file
  named by ``HELPDESK_IMAP_CAFILE``; ``imap://...?tls=starttls`` upgrades a plain connection
  and refuses to go on without it; plain ``imap://`` is for a server on the same host.
- The password comes from the URL or, better (it stays out of ``ps`` and shell history),
  from ``HELPDESK_IMAP_PASSWORD``. It is never shown: labels and cursors omit it.
- The folder is opened read-only (EXAMINE) and messages fetched with ``BODY.PEEK[]``: the
  helpdesk never changes flags, so the mailbox looks the same to its other readers.
- Where it stopped is an ``IngestCursor`` row (``imap://user@host:port/Folder``) holding the
  folder's UIDVALIDITY and the last UID dealt with, saved in each message's transaction. A new
  UIDVALIDITY (folder recreated) starts again from the first message; the hashes of the
  messages already dealt with make those duplicates, not new tickets.
"""

from __future__ import annotations

import imaplib
import re
import socket
import ssl
from collections.abc import Iterator
from urllib.parse import parse_qs, unquote, urlsplit

from helpdesk.base.i18n import _
from helpdesk.ingest.items import MAX_ITEM_BYTES, Item, Source, SourceError

TIMEOUT = 60


def _quote(folder: str) -> str:
    return '"' + folder.replace("\\", "\\\\").replace('"', '\\"') + '"'


class ImapSource(Source):
    def __init__(self, url: str, *, environ: dict):
        parts = urlsplit(url)
        self.tls = parts.scheme.lower() == "imaps"
        query = parse_qs(parts.query)
        self.starttls = (query.get("tls") or [""])[0].lower() == "starttls"
        self.host = parts.hostname or ""
        if not self.host:
            raise SourceError(_("no host in the IMAP URL {url}").format(url=self._safe(url)))
        try:
            self.port = parts.port or (993 if self.tls else 143)
        except ValueError:
            raise SourceError(
                _("bad port in the IMAP URL {url}").format(url=self._safe(url))
            ) from None
        self.user = unquote(parts.username or "") or environ.get("HELPDESK_IMAP_USER", "")
        password = unquote(parts.password or "") or environ.get("HELPDESK_IMAP_PASSWORD", "")
        if not self.user:
            raise SourceError(_("no IMAP user: write imap://USER@host/Folder"))
        if not password:
            raise SourceError(
                _("no IMAP password: set HELPDESK_IMAP_PASSWORD (or put it in the URL)")
            )
        self.folder = unquote(parts.path.lstrip("/")) or "INBOX"
        self.cafile = environ.get("HELPDESK_IMAP_CAFILE") or None
        self.label = (
            f"{'imaps' if self.tls else 'imap'}://{self.user}@{self.host}:{self.port}/{self.folder}"
        )
        self.cursor_key = self.label
        self._conn: imaplib.IMAP4 | None = None
        self._uids: list[int] = []
        self.uidvalidity: int | None = None
        self._connect(password)

    @staticmethod
    def _safe(url: str) -> str:
        return re.sub(r"//[^/@]*@", "//…@", url)

    def _context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.cafile)

    def _connect(self, password: str) -> None:
        try:
            conn: imaplib.IMAP4
            if self.tls:
                conn = imaplib.IMAP4_SSL(
                    self.host, self.port, ssl_context=self._context(), timeout=TIMEOUT
                )
            else:
                conn = imaplib.IMAP4(self.host, self.port, timeout=TIMEOUT)
                if self.starttls:
                    try:
                        conn.starttls(ssl_context=self._context())
                    except imaplib.IMAP4.error as exc:
                        conn.shutdown()
                        raise SourceError(
                            _(
                                "{source}: STARTTLS refused ({error}); the password was not sent in clear"
                            ).format(source=self.label, error=_text(exc))
                        ) from None
            conn.login(self.user, password)
        except (OSError, socket.timeout, ssl.SSLError) as exc:
            raise SourceError(
                _("cannot reach {source}: {error}").format(source=self.label, error=exc)
            ) from None
        except imaplib.IMAP4.error as exc:
            raise SourceError(
                _("{source}: login refused ({error})").format(source=self.label, error=_text(exc))
            ) from None
        self._conn = conn
        try:
            typ, data = conn.select(_quote(self.folder), readonly=True)
            if typ != "OK":
                raise SourceError(
                    _("{source}: cannot open the folder ({error})").format(
                        source=self.label, error=_text(data)
                    )
                )
            _typ, values = conn.response("UIDVALIDITY")
            self.uidvalidity = int(values[0]) if values and values[0] else None
        except imaplib.IMAP4.error as exc:
            raise SourceError(
                _("{source}: cannot open the folder ({error})").format(
                    source=self.label, error=_text(exc)
                )
            ) from None

    def plan(self, cursor: dict) -> None:
        """Choose the messages to read after the saved position (call before iterating)."""
        last = 0
        if cursor and cursor.get("uidvalidity") == self.uidvalidity:
            last = int(cursor.get("last_uid") or 0)
        assert self._conn is not None
        try:
            typ, data = self._conn.uid("SEARCH", None, f"UID {last + 1}:*")
        except imaplib.IMAP4.error as exc:
            raise SourceError(
                _("{source}: search failed ({error})").format(source=self.label, error=_text(exc))
            ) from None
        if typ != "OK":
            raise SourceError(
                _("{source}: search failed ({error})").format(source=self.label, error=_text(data))
            )
        uids = sorted({int(u) for chunk in data if chunk for u in chunk.split()})
        self._uids = [u for u in uids if u > last]  # "N:*" always includes the last message

    def __len__(self) -> int:
        return len(self._uids)

    def __iter__(self) -> Iterator[Item]:
        assert self._conn is not None
        for uid in self._uids:
            try:
                typ, data = self._conn.uid("FETCH", str(uid), "(RFC822.SIZE BODY.PEEK[])")
            except (imaplib.IMAP4.error, OSError) as exc:
                raise SourceError(
                    _("{source}: fetching UID {uid} failed ({error})").format(
                        source=self.label, uid=uid, error=_text(exc)
                    )
                ) from None
            if typ != "OK":
                raise SourceError(
                    _("{source}: fetching UID {uid} failed ({error})").format(
                        source=self.label, uid=uid, error=_text(data)
                    )
                )
            raw = next(
                (part[1] for part in data if isinstance(part, tuple) and len(part) > 1), None
            )
            position = {"uidvalidity": self.uidvalidity, "last_uid": uid}
            if raw is None:
                continue  # expunged meanwhile
            size = len(raw) if len(raw) > MAX_ITEM_BYTES else None
            yield Item(
                f"uid {uid}",
                raw if size is None else raw[: 64 * 1024],
                self.label,
                position,
                too_large=size,
            )

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
                self._conn.logout()
            except (imaplib.IMAP4.error, OSError):
                pass
            self._conn = None


def _text(value: object) -> str:
    if isinstance(value, (list, tuple)):
        value = b" ".join(v if isinstance(v, bytes) else str(v).encode() for v in value)
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return " ".join(str(value).split())[:200]
