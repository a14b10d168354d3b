"""Postfix: sending blocks that ``helpdesk policyd`` answers from (:mod:`helpdesk.connectors.policyd`).

Postfix asks the policy service about each authenticated sender; nothing is pushed to
Postfix itself. ``suspend-sending`` writes a block (its ``until``, if any: after it the
block no longer counts, so a temporary suspension lifts by itself at its end);
``lift-sending`` removes the ticket's block (``all``: every block of that login). Both are
idempotent: the block of a ticket is replaced, never doubled, and removing a block that is
gone changes nothing.

Settings: ``type = "postfix"``, ``policies``, and optionally ``login_field`` (the account
field holding the SASL login when it is not the account login; default ``mail-login``).
``check`` asks the running policy service (``[policyd] listen``) a harmless question.
"""

from __future__ import annotations

import socket

from sqlalchemy.exc import OperationalError
from sqlmodel import col, delete, select

from helpdesk.base import clock
from helpdesk.storage import db
from helpdesk.connectors import Connector, Permanent, Temporary


class Postfix(Connector):
    type = "postfix"
    kinds = frozenset({"suspend-sending", "lift-sending"})
    db_url: str | None = None  # the helpdesk database; set by the queue's runner

    def target(self, login: str, fields: dict | None = None) -> str:
        return str((fields or {}).get(self.setting("login_field", "mail-login")) or login)

    def _write(self, fn) -> str:
        from helpdesk.storage.models import MailBlock  # noqa: F401 - the table the callers use

        try:
            with db.write_session(self.db_url) as s:
                return fn(s)
        except OperationalError as exc:  # the database is busy or away: try again later
            raise Temporary(f"database: {exc.orig}") from None

    def _do_suspend_sending(self, target: str, params: dict) -> str:
        from helpdesk.storage.models import MailBlock

        until = clock.parse_datetime(params["until"]) if params.get("until") else None

        def write(s) -> str:
            s.exec(
                delete(MailBlock).where(
                    col(MailBlock.login) == target, col(MailBlock.ticket_id) == params.get("ticket")
                )
            )
            s.add(
                MailBlock(
                    login=target,
                    policy_key=params.get("policy", ""),
                    ticket_id=params.get("ticket"),
                    until=until,
                    reason=params.get("reason", "send-suspended"),
                    lang=params.get("lang", "fr"),
                    timezone=params.get("timezone", "Europe/Paris"),
                    set_at=clock.now(),
                )
            )
            return f"policyd rejects {target}" + (f" until {clock.iso(until)}" if until else "")

        return self._write(write)

    def _do_lift_sending(self, target: str, params: dict) -> str:
        from helpdesk.storage.models import MailBlock

        def write(s) -> str:
            q = delete(MailBlock).where(col(MailBlock.login) == target)
            if not params.get("all"):
                q = q.where(col(MailBlock.ticket_id) == params.get("ticket"))
            n = s.exec(q).rowcount
            return f"{n} block(s) of {target} removed" if n else f"{target} had no block"

        return self._write(write)

    def check(self) -> str:
        from helpdesk.base import config as config_mod
        from helpdesk.storage.models import MailBlock

        with db.read_session(self.db_url) as s:
            s.exec(select(MailBlock.id).limit(1)).all()
        listen = self.config.get("policyd.listen")
        if not listen:
            return "blocks table readable; no [policyd] listen address to ask"
        family, where = config_mod.parse_listen(str(listen), self.config)
        try:
            sock = socket.socket(
                socket.AF_UNIX
                if family == "unix"
                else socket.AF_INET6
                if ":" in where[0]
                else socket.AF_INET
            )
            sock.settimeout(3)
            with sock:
                sock.connect(where)
                sock.sendall(
                    b"request=smtpd_access_policy\nprotocol_state=RCPT\nsasl_username=\n\n"
                )
                answer = sock.recv(512).decode("ascii", "replace").strip()
        except OSError as exc:
            raise Temporary(f"policyd at {listen}: {exc}") from None
        if not answer.startswith("action="):
            raise Permanent(f"policyd at {listen} answered {answer[:60]!r}")
        return f"policyd at {listen} answers ({answer})"


CONNECTOR = Postfix
