"""``helpdesk policyd``: Postfix's SMTP access policy delegation, answered from the database.

Postfix (``check_policy_service``, see the README) sends ``name=value`` lines and an
empty line; we answer ``action=...`` and an empty line, and keep the connection for the
next request. The answer, for the SASL login of the request (``sasl_username``):

- a sending block written by the postfix connector (:mod:`helpdesk.connectors.postfix`)
  that is still running (no ``until``, or ``until`` in the future): ``REJECT`` with a
  short reason, in the account's language (``554 5.7.1 ... sending suspended until ...``);
- no block that still runs, but the account (by that login, or whose ``mail-login``
  field it is) is ``suspended``,
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

from typing import cast

import asyncio
import logging
import os
import signal
import unicodedata
from datetime import datetime, timezone
from zoneinfo import ZoneInfo


from helpdesk.base import clock
from helpdesk.storage import db
from helpdesk.base.i18n import tr

log = logging.getLogger("helpdesk.connectors.policyd")

MAX_REQUEST = 64 * 1024
BLOCKING = {"suspended", "deactivated", "erased"}
# One statement per request (two indexed reads: the login's blocks, then its account), sent
# as plain SQL on a driver connection of its own in autocommit: one round trip to the
# server, no BEGIN and no ROLLBACK around it. The answer is on Postfix's path for every
# authenticated mail (benchmarks/policyd.py).
# An account is found by its login, or else by its ``mail-login`` field (the SASL login
# when it differs), through the expression index of migration 0012: the same expression.
_LOOKUP = (
    "SELECT 1, until, reason, lang, timezone FROM mailblock WHERE login = {p}"
    " UNION ALL SELECT 2, NULL, status, lang, NULL FROM account WHERE login = {p}"
    " UNION ALL SELECT 3, NULL, status, lang, NULL FROM account WHERE {mail_login} = {p}"
)
_MAIL_LOGIN = {
    "sqlite": "json_extract(fields, '$.\"mail-login\"')",
    "postgresql": "(fields ->> 'mail-login')",
}


def _utc(value) -> datetime | None:
    """A stored UTC time as the driver returns it (SQLite: naive text; PostgreSQL: aware)."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return (
        value.replace(tzinfo=timezone.utc)
        if value.tzinfo is None
        else value.astimezone(timezone.utc)
    )


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
        text = tr("sending suspended until {when} ({zone})", lang).format(
            when=local.strftime("%Y-%m-%d %H:%M"), zone=tz
        )
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
        self.on_error = (
            on_error if on_error == "DUNNO" else "DEFER_IF_PERMIT Service temporarily unavailable"
        )
        self._conn = None
        self._cur = None
        self._sql = ""

    def _cursor(self):
        if self._conn is None:
            engine = db.get_engine(self.url)
            mark = "?" if engine.dialect.paramstyle == "qmark" else "%s"
            self._sql = _LOOKUP.format(p=mark, mail_login=_MAIL_LOGIN[engine.dialect.name])
            pooled = engine.raw_connection()  # the engine's connect settings (pragmas...)
            # The driver's own connection, kept by itself: the pool's proxy, once detached,
            # has no driver_connection any more, and a psycopg connection left out of
            # autocommit sits "idle in transaction" for the server's whole life, holding
            # its locks on account and mailblock (a migration waits on them for ever) and
            # the cluster's xmin (VACUUM cleans nothing behind it). Closed by us, never
            # reset by the pool: a dead connection is simply dropped, without a traceback.
            driver = pooled.dbapi_connection
            pooled.detach()  # its own for good: in autocommit, it never goes back to the pool
            if engine.dialect.name == "postgresql":
                driver.rollback()  # whatever the checkout left open (a no-op when idle)
                driver.autocommit = True
            # pysqlite: db.get_engine sets isolation_level None, so a SELECT runs alone.
            # One cursor for the connection's life: a new one per request costs psycopg
            # about a third of its CPU time for this read. Each execute fetches every row,
            # so nothing stays open between requests (SQLite resets the statement).
            self._cur = driver.cursor()
            self._conn = driver
        return self._cur

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except Exception:  # noqa: BLE001 - a broken connection is being dropped anyway
                pass
            finally:
                self._conn = self._cur = None

    def _read(self, login: str) -> tuple[list, tuple | None]:
        cur = self._cursor()
        cur.execute(self._sql, (login, login, login))
        rows = cur.fetchall()
        # Autocommit: the statement was its own transaction; the next one sees fresh data.
        blocks = [(_utc(u), reason, lang, tz) for k, u, reason, lang, tz in rows if k == 1]
        # The account of that login, else the one whose mail-login it is.
        found = sorted((k, status, lang) for k, _u, status, lang, _tz in rows if k != 1)
        account = (found[0][1], found[0][2]) if found else None
        return blocks, account

    def decide(self, login: str, now: datetime | None = None) -> str:
        if not login:
            return "DUNNO"
        now = now or clock.now()
        try:
            blocks, account = self._read(login)
        except Exception as exc:  # noqa: BLE001 - any driver's error (sqlite3, psycopg): answer, log, reconnect
            log.warning(
                "database unavailable (%s): answering %s",
                type(exc).__name__,
                self.on_error.split()[0],
            )
            self.close()
            return self.on_error
        running = [b for b in blocks if b[0] is None or b[0] > now]
        if running:
            until, reason, lang, tz = next((b for b in running if b[0] is None), None) or max(
                running, key=lambda b: b[0]
            )
            return reject(reason if until is None else "send-suspended", lang, until, tz)
        if account is not None and (
            account[0] in BLOCKING or (account[0] == "send-suspended" and not blocks)
        ):
            return reject(account[0], account[1] or "fr")
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


async def handle(
    answerer: Answerer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
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


async def start(url: str, listen: tuple[str, object], on_error: str = "DUNNO") -> asyncio.Server:
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
    host, port = cast(tuple[str, int], where)
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
