"""``helpdesk policyd``: Postfix's SMTP access policy delegation, answered from the database.

Postfix (``check_policy_service``, see the README) sends ``name=value`` lines and an
empty line; we answer ``action=...`` and an empty line, and keep the connection for the
next request. The answer, for the SASL login of the request (``sasl_username``):

- a sending block written by the postfix connector (:mod:`helpdesk.connectors.postfix`)
  that is still running (no ``until``, or ``until`` in the future): ``REJECT`` with a
  short reason, in the account's language (``554 5.7.1 ... sending suspended until ...``);
- no block that still runs, but the account (by that login) is ``suspended``,
  ``deactivated`` or ``erased``, or ``send-suspended`` with no block at all (its status
  was set without the connector): ``REJECT``;
- anyone else, and requests without a SASL login: ``DUNNO`` (no opinion: Postfix's other
  restrictions decide).

A block with an ``until`` stops counting at that moment: the suspension lifts by itself,
with nothing to push and nothing to run.

**It never answers garbage.** A request that is not ``request=smtpd_access_policy``, a
line that is not ``name=value``, or a request longer than 64 KiB is logged and the
connection closed (Postfix then applies its ``default_action``).

**The database briefly busy or away.** Each answer is one short read. If it fails, the
answer is ``on_error`` (``[policyd] on_error`` in helpdesk.toml): ``DUNNO`` (fail open:
suspended users can send while the database is away; the default) or ``DEFER_IF_PERMIT``
(fail closed: authenticated mail is deferred, never lost, until it is back). The failure
is logged and the next request tries again. Postfix's own ``default_action`` (in
``check_policy_service { ..., default_action=DUNNO }``) decides the same when the service
itself is down.

Logs go to standard error (journald under systemd): one line per refusal and per problem,
never the content of a request beyond the login.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import unicodedata
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from helpdesk import clock, db
from helpdesk.i18n import tr
from helpdesk.models import Account, MailBlock

log = logging.getLogger("helpdesk.policyd")

MAX_REQUEST = 64 * 1024
BLOCKING = {"suspended", "deactivated", "erased"}
_BLOCKS = select(MailBlock.until, MailBlock.reason, MailBlock.lang, MailBlock.timezone)
_ACCOUNT = select(Account.status, Account.lang)


class BadRequest(Exception):
    pass


def _ascii(text: str) -> str:
    """SMTP replies are ASCII: accents dropped, controls removed."""
    flat = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return "".join(ch for ch in flat if 32 <= ord(ch) < 127)


def reject(reason: str, lang: str, until: datetime | None = None, tz: str = "Europe/Paris") -> str:
    lang = lang if lang in ("fr", "en") else "fr"
    if reason == "send-suspended" and until is not None:
        local = until.astimezone(ZoneInfo(tz))
        text = tr("sending suspended until {when} ({zone})", lang).format(when=local.strftime("%Y-%m-%d %H:%M"), zone=tz)
    elif reason == "deactivated" or reason == "erased":
        text = tr("account deactivated", lang)
    elif reason == "suspended":
        text = tr("account suspended", lang)
    else:
        text = tr("sending suspended", lang)
    return "REJECT " + _ascii(text)


class Answerer:
    """Answers one request from the database; keeps one connection, reopened after a failure."""

    def __init__(self, url: str, on_error: str = "DUNNO"):
        self.url = url
        self.on_error = on_error if on_error == "DUNNO" else "DEFER_IF_PERMIT Service temporarily unavailable"
        self._conn = None

    def _connection(self):
        if self._conn is None:
            self._conn = db.get_engine(self.url).connect()
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            finally:
                self._conn = None

    def decide(self, login: str, now: datetime | None = None) -> str:
        if not login:
            return "DUNNO"
        now = now or clock.now()
        try:
            conn = self._connection()
            blocks = conn.execute(_BLOCKS.where(MailBlock.login == login)).all()
            account = conn.execute(_ACCOUNT.where(Account.login == login)).first()
            conn.rollback()  # end the read transaction: the next request sees fresh data
        except SQLAlchemyError as exc:
            log.warning("database unavailable (%s): answering %s", type(exc).__name__, self.on_error.split()[0])
            self.close()
            return self.on_error
        running = [b for b in blocks if b.until is None or b.until > now]
        if running:
            b = next((b for b in running if b.until is None), None) or max(running, key=lambda b: b.until)
            reason = b.reason if b.until is None else "send-suspended"
            return reject(reason, b.lang, b.until, b.timezone)
        if account is not None and (account.status in BLOCKING or (account.status == "send-suspended" and not blocks)):
            return reject(account.status, account.lang or "fr")
        return "DUNNO"


def parse(lines: list[bytes]) -> dict[str, str]:
    attrs: dict[str, str] = {}
    for raw in lines:
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise BadRequest("not UTF-8") from None
        name, sep, value = line.partition("=")
        if not sep or not name or not name.replace("_", "").isalnum():
            raise BadRequest(f"not a name=value line: {line[:40]!r}")
        attrs[name] = value
    if attrs.get("request") != "smtpd_access_policy":
        raise BadRequest(f"unknown request {attrs.get('request', '')[:40]!r}")
    return attrs


async def handle(answerer: Answerer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            lines: list[bytes] = []
            size = 0
            while True:
                raw = await reader.readline()
                if not raw:  # Postfix closed the connection
                    return
                if not raw.endswith(b"\n"):
                    raise BadRequest("truncated request")
                size += len(raw)
                if size > MAX_REQUEST:
                    raise BadRequest("request too long")
                line = raw.rstrip(b"\r\n")
                if not line:
                    break
                lines.append(line)
            if not lines:
                continue
            attrs = parse(lines)
            login = attrs.get("sasl_username", "").strip()
            action = answerer.decide(login)
            if action.startswith("REJECT"):
                log.info("reject %s (%s): %s", login, attrs.get("protocol_state", ""), action)
            writer.write(f"action={action}\n\n".encode("ascii"))
            await writer.drain()
    except BadRequest as exc:
        log.warning("bad request, closing the connection: %s", exc)
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    finally:
        writer.close()


async def start(url: str, listen: tuple[str, object], on_error: str = "DUNNO") -> asyncio.AbstractServer:
    answerer = Answerer(url, on_error)
    family, where = listen
    cb = lambda r, w: handle(answerer, r, w)  # noqa: E731
    if family == "unix":
        path = str(where)
        if os.path.exists(path):
            os.unlink(path)
        server = await asyncio.start_unix_server(cb, path=path)
        os.chmod(path, 0o660)  # Postfix's group reads it; nobody else
        return server
    host, port = where
    return await asyncio.start_server(cb, host=host, port=port, reuse_address=True)


def serve(url: str, listen: tuple[str, object], on_error: str = "DUNNO") -> int:
    """Run until SIGTERM or SIGINT. Prints the address it listens on, then serves."""
    logging.basicConfig(level=logging.INFO, format="helpdesk policyd: %(message)s")

    async def main() -> None:
        server = await start(url, listen, on_error)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        names = ", ".join(str(s.getsockname()) for s in server.sockets)
        log.info("listening on %s (database errors: %s)", names, on_error)
        async with server:
            await stop.wait()

    asyncio.run(main())
    return 0
