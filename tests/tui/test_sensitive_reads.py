"""Reading sensitive data from the TUI is an audited event, through the same core gate as
the CLI (``service.read_sensitive``): log material only for techadmin and with a reason,
a closed account's personal data only for an identified volunteer, once per session."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys

from sqlmodel import select

from helpdesk.storage import db
from helpdesk.storage.models import Account, Event, Evidence
from screens.modals import ActionForm, MessageScreen
from screens.ticket import TicketScreen
from tests.conftest import _clean_env
from tests.tui.conftest import press, settle, type_text
from tests.tui.seed import LATER

LOG_LINE = "Mar  2 08:12:01 mx postfix/smtp[123]: to=<victim@example.net>, status=sent"


def events(url: str, action: str) -> list[Event]:
    with db.read_session(url) as s:
        return list(s.exec(select(Event).where(Event.action == action).order_by(Event.id)))


def audit_verify(url: str) -> dict:
    p = subprocess.run(
        [sys.executable, "-m", "helpdesk", "--db", url, "audit", "verify", "--json"],
        capture_output=True,
        text=True,
        env=_clean_env(),
        timeout=120,
    )
    assert p.returncode == 0, p.stdout + p.stderr
    return json.loads(p.stdout)


def close_account(url: str, login: str) -> int:
    with db.write_session(url) as s:
        acc = s.exec(select(Account).where(Account.login == login)).one()
        acc.status = "deactivated"
        s.add(acc)
        return acc.id


def attach_log(url: str, ticket_id: int) -> None:
    from helpdesk.base import clock

    with db.write_session(url) as s:
        data = LOG_LINE.encode()
        s.add(
            Evidence(
                ticket_id=ticket_id,
                kind="log",
                source="test",
                sha256=hashlib.sha256(data).hexdigest(),
                content=data,
                received_at=clock.parse_datetime(LATER),
            )
        )


async def read_logs(pilot, screen: TicketScreen, reason: str) -> None:
    digit = screen.digit_of("read-logs")
    await press(pilot, digit)
    form = pilot.app.screen
    assert isinstance(form, ActionForm)
    form.query_one("#note").focus()
    await type_text(pilot, reason)
    await press(pilot, "ctrl+s")  # a step without a confirmation: done, and the logs shown


async def test_a_techadmin_reads_logs_with_a_reason_and_the_reading_is_recorded(db_url, make_app):
    attach_log(db_url, 3)
    app = make_app(db_url, user="tess")
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        app.open_ticket(3)
        await settle(pilot)
        await read_logs(pilot, app.screen, "check the reported times")
        shown = app.screen
        assert isinstance(shown, MessageScreen)
        assert "victim@example.net" in shown.body.plain
    [ev] = events(db_url, "read-logs")
    assert (ev.actor, ev.ticket_id, ev.note) == ("tess", 3, "check the reported times")
    assert (
        ev.data["sensitive_read"]["kind"] == "logs"
        and len(ev.data["sensitive_read"]["evidence"]) == 1
    )
    assert audit_verify(db_url)["ok"] is True


async def test_a_volunteer_is_refused_the_logs_and_nothing_is_recorded(db_url, make_app):
    attach_log(db_url, 3)
    app = make_app(db_url, user="bob")
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        app.open_ticket(3)
        await settle(pilot)
        screen = app.screen
        a = next(a for a in screen.view["actions"] if a["key"] == "read-logs")
        assert not a["allowed"] and a["rule"] == "role" and "technical admin" in a["reason"]
        screen.start(a)
        await settle(pilot)
        message = app.screen
        assert isinstance(message, MessageScreen)
        assert (
            "technical admin" in message.body.plain
            and "victim@example.net" not in message.body.plain
        )
    assert events(db_url, "read-logs") == []


async def test_opening_a_closed_accounts_ticket_is_recorded_once(db_url, make_app):
    account_id = close_account(db_url, "jdupont")
    app = make_app(db_url, user="bob")
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        app.open_ticket(1)
        await settle(pilot)
        screen = app.screen
        assert (
            isinstance(screen, TicketScreen)
            and screen.view["account_email"] == "jean.dupont@example.org"
        )
        screen.load()  # a refresh of the same screen is the same reading
        await settle(pilot)
        await press(pilot, "escape")
        app.open_ticket(2)  # an active account: nothing to record
        await settle(pilot)
    [ev] = events(db_url, "read-personal-data")
    assert (ev.actor, ev.account_id, ev.ticket_id) == ("bob", account_id, None)
    assert (
        ev.data == {"what": "personal-data", "ticket": 1, "status": "deactivated"}
        and ev.note == "ticket screen"
    )
    assert audit_verify(db_url)["ok"] is True


async def test_without_a_volunteer_a_closed_accounts_ticket_is_not_shown(db_url, make_app):
    close_account(db_url, "jdupont")
    app = make_app(db_url, user=None)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        app.open_ticket(1)
        await settle(pilot)
        assert not isinstance(app.screen, TicketScreen)
        app.open_ticket(2)  # an active account's ticket opens read-only as before
        await settle(pilot)
        assert isinstance(app.screen, TicketScreen) and app.screen.view is not None
    assert events(db_url, "read-personal-data") == []
