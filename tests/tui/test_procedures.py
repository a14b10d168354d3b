"""One procedure per queue, worked through the UI with the keyboard alone, then checked in
the database: password reset, closure, abuse, mail reputation. Plus refusals, conflicts,
read-only mode and claims."""

from __future__ import annotations

from sqlmodel import select

from helpdesk.base import clock
from helpdesk.storage import db
from helpdesk.workflow import engine
from helpdesk.rules.context import Actor
from helpdesk.storage.models import Account, Deadline, Event, Outbox, Ticket
from screens.modals import ActionForm, ConfirmScreen, MessageScreen
from screens.queue import QueueScreen
from screens.ticket import TicketScreen
from screens.ticket_list import TicketList
from tests.tui.conftest import indigos_mail_alert, press, settle, type_text


def ticket(url: str, tid: int) -> Ticket:
    with db.read_session(url) as s:
        return s.get(Ticket, tid)


def outbox(url: str, tid: int) -> list[Outbox]:
    with db.read_session(url) as s:
        return list(s.exec(select(Outbox).where(Outbox.ticket_id == tid).order_by(Outbox.id)))


def account(url: str, login: str) -> Account:
    with db.read_session(url) as s:
        return s.exec(select(Account).where(Account.login == login)).one()


def action_digit(screen: TicketScreen, key: str) -> str:
    """The digit shown next to an allowed action."""
    digit = screen.digit_of(key)
    if digit is None:
        raise AssertionError(f"{key} is not an allowed action: {list(screen.by_digit)}")
    return digit


def static_text(screen, selector: str) -> str:
    return str(screen.query_one(selector).render())


async def open_ticket_by_search(pilot, queue_key: str, text: str, tid: int) -> TicketScreen:
    await press(pilot, queue_key)
    assert isinstance(pilot.app.screen, QueueScreen)
    await press(pilot, "slash")
    await type_text(pilot, text)
    await pilot.pause(0.2)  # the search waits for typing to pause (0.15 s)
    await press(pilot, "enter")  # leaves the search box for the list
    lst = pilot.app.screen.query_one(TicketList)
    assert lst.total == 1, [r.id for r in lst.loaded_rows()]
    assert lst.current_id() == tid
    await press(pilot, "enter")
    screen = pilot.app.screen
    assert isinstance(screen, TicketScreen) and screen.ticket_id == tid
    return screen


async def test_password_reset_by_link(db_url, make_app):
    app = make_app(db_url)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        screen = await open_ticket_by_search(pilot, "1", "oublié", 1)
        # bob has this ticket open: the screen says so
        assert screen.query_one("#claim").display
        assert "bob" in static_text(screen, "#claim")
        await press(pilot, action_digit(screen, "issue-reset-link"))
        confirm = app.screen
        assert isinstance(confirm, ConfirmScreen)
        p = confirm.preview
        assert p.to_state == "Access reset"
        assert [m["to"] for m in p.mails] == ["jean.dupont@example.org"]
        assert p.mails[0]["lang"] == "fr" and "Bonjour" in p.mails[0]["body"]
        assert any(d["name"] == "reset-expires" for d in p.deadlines)
        # the dry run changed nothing
        assert ticket(db_url, 1).state == "received" and outbox(db_url, 1) == []
        await press(pilot, "y")
        assert isinstance(app.screen, TicketScreen)
    t = ticket(db_url, 1)
    assert t.state == "reset-issued"
    mails = outbox(db_url, 1)
    assert [(m.template, m.to_addr) for m in mails] == [("reset-link", "jean.dupont@example.org")]
    with db.read_session(db_url) as s:
        last = s.exec(select(Event).where(Event.ticket_id == 1).order_by(Event.id.desc())).first()
    assert (last.actor, last.action) == ("alice", "issue-reset-link")


async def test_preview_switches_mail_language_and_keeps_it_only_if_confirmed(db_url, make_app):
    app = make_app(db_url)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        screen = await open_ticket_by_search(pilot, "1", "oublié", 1)
        await press(pilot, action_digit(screen, "issue-reset-link"))
        assert app.screen.preview.mails[0]["lang"] == "fr"
        await press(pilot, "l")  # the same step again, the mail in English
        await settle(pilot)
        assert isinstance(app.screen, ConfirmScreen)
        mail = app.screen.preview.mails[0]
        assert mail["lang"] == "en" and "Bonjour" not in mail["body"]
        await press(pilot, "n")  # cancelled: nothing changed, not even the language
        assert ticket(db_url, 1).lang == "fr" and outbox(db_url, 1) == []
        await press(pilot, action_digit(screen, "issue-reset-link"))
        await press(pilot, "l")
        await settle(pilot)
        await press(pilot, "y")
        await settle(pilot)
    t = ticket(db_url, 1)
    assert (t.state, t.lang) == ("reset-issued", "en")
    assert [m.lang for m in outbox(db_url, 1)] == ["en"]
    with db.read_session(db_url) as s:
        actions = [
            e.action for e in s.exec(select(Event).where(Event.ticket_id == 1).order_by(Event.id))
        ]
    assert actions[-2:] == ["set-lang", "issue-reset-link"]


async def test_closure_confirm_then_deactivate_on_the_day(db_url, make_app):
    app = make_app(db_url)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        screen = await open_ticket_by_search(pilot, "2", "close my account", 2)
        # Confirming sends the confirmation mail (in English: the ticket's language): shown first.
        await press(pilot, action_digit(screen, "confirm"))
        assert isinstance(app.screen, ConfirmScreen)
        assert app.screen.preview.mails[0]["lang"] == "en"
        assert (
            "Hello" in app.screen.preview.mails[0]["body"]
            or "Dear" in app.screen.preview.mails[0]["body"]
        )
        await press(pilot, "y")
        assert ticket(db_url, 2).state == "scheduled"
        # Indigos' charte holds no "not before the requested day": the day is information,
        # deactivation is not refused before it (a pack is exactly its text).
        deactivate = next(a for a in screen.view["actions"] if a["key"] == "deactivate")
        assert deactivate["allowed"]
        # The day comes.
        clock.set_now("2026-03-20T09:00:00Z")
        await press(pilot, "r")
        await press(pilot, action_digit(screen, "deactivate"))
        confirm = app.screen
        assert isinstance(confirm, ConfirmScreen) and confirm.irreversible
        assert confirm.preview.account_status == ("active", "deactivated")
        assert {d["name"] for d in confirm.preview.deadlines} >= {"erasure", "backups-forget"}
        await press(pilot, "y")
    assert ticket(db_url, 2).state == "deactivated"
    assert account(db_url, "cmartin").status == "deactivated"
    with db.read_session(db_url) as s:
        names = {
            d.name
            for d in s.exec(
                select(Deadline).where(Deadline.ticket_id == 2, Deadline.status != "cancelled")
            )
        }
    assert {"erasure", "backups-forget"} <= names


async def test_abuse_warning_needs_a_note(db_url, make_app):
    app = make_app(db_url)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        screen = await open_ticket_by_search(pilot, "3", "Spam network", 3)
        assert ticket(db_url, 3).state == "contacted"
        await press(pilot, action_digit(screen, "warn"))
        form = app.screen
        assert isinstance(form, ActionForm)
        await press(pilot, "ctrl+s")  # empty note: the form says why and stays
        assert app.screen is form
        assert "required" in static_text(form, "#err-note")
        form.query_one("#note").focus()
        await type_text(pilot, "Second spam wave after contact")
        await press(pilot, "ctrl+s")
        assert isinstance(app.screen, ConfirmScreen)
        assert (
            app.screen.preview.mails
            and app.screen.preview.mails[0]["to"] == "jean.dupont@example.org"
        )
        await press(pilot, "y")
    assert ticket(db_url, 3).state == "warned"
    with db.read_session(db_url) as s:
        ev = s.exec(select(Event).where(Event.ticket_id == 3, Event.action == "warn")).one()
    assert (
        ev.sanction == "warning"
        and ev.note == "Second spam wave after contact"
        and ev.actor == "alice"
    )


async def test_mail_reputation_contact_then_suspend_sending(db_url, make_app):
    tid = indigos_mail_alert(db_url)  # Indigos art. 7
    app = make_app(db_url)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        app.open_ticket(tid)
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, TicketScreen) and screen.ticket_id == tid
        blocked = next(a for a in screen.view["actions"] if a["key"] == "suspend-sending")
        assert not blocked["allowed"]  # no prevention exchange yet
        # 1. the prevention exchange
        await press(pilot, action_digit(screen, "contact"))
        assert isinstance(app.screen, ActionForm)
        app.screen.query_one("#note").focus()
        await type_text(pilot, "Bounces: list hygiene advice sent")
        await press(pilot, "ctrl+s")
        assert isinstance(app.screen, ConfirmScreen)  # it sends a mail: shown first
        await press(pilot, "y")
        assert ticket(db_url, tid).state == "contacted"
        # 2. suspend sending until a date, with a validated date field
        await press(pilot, action_digit(screen, "suspend-sending"))
        form = app.screen
        assert isinstance(form, ActionForm)
        form.query_one("#field-until").focus()
        await type_text(pilot, "next week")
        form.query_one("#note").focus()
        await type_text(pilot, "Bounces go on")
        await press(pilot, "ctrl+s")
        assert app.screen is form and "until" in static_text(form, "#err-until")
        form.query_one("#field-until").value = ""
        form.query_one("#field-until").focus()
        await type_text(pilot, "2026-03-05 12:00")
        await press(pilot, "ctrl+s")
        confirm = app.screen
        assert isinstance(confirm, ConfirmScreen)
        assert confirm.preview.account_status == ("active", "send-suspended")
        assert any(
            d["name"] == "sending-resumes" and d["at"] == "2026-03-05 12:00"
            for d in confirm.preview.deadlines
        )
        await press(pilot, "y")
    t = ticket(db_url, tid)
    assert t.state == "send-suspended"
    assert t.fields["until"] == "2026-03-05T11:00:00Z"  # 12:00 in Paris
    assert account(db_url, "cmartin").status == "send-suspended"


async def test_blocked_action_shows_rule_and_citation(db_url, make_app):
    app = make_app(db_url)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        app.open_ticket(6)  # the requester is not a registered contact
        await settle(pilot)
        screen = app.screen
        a = next(a for a in screen.view["actions"] if a["key"] == "issue-reset-link")
        assert not a["allowed"] and "impostor@elsewhere.example" in a["reason"]
        screen.start(a)
        await settle(pilot)
        message = app.screen
        assert isinstance(message, MessageScreen)
        body = message.body.plain
        assert "impostor@elsewhere.example" in body and "Charte Indigos" in body
        await press(pilot, "escape")
        assert app.screen is screen
    assert ticket(db_url, 6).state == "received"


async def test_refused_by_a_rule_on_apply_never_crashes(db_url, make_app):
    """A rule that passes in the list but refuses at apply time (the account changed
    meanwhile) is shown as a refusal; nothing is applied."""
    app = make_app(db_url)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        app.open_ticket(1)
        await settle(pilot)
        screen = app.screen
        digit = action_digit(screen, "issue-reset-link")
        with db.write_session(db_url) as s:  # someone deactivates the account meanwhile
            acc = s.exec(select(Account).where(Account.login == "jdupont")).one()
            acc.status = "deactivated"
            s.add(acc)
        await press(pilot, digit)
        assert isinstance(app.screen, MessageScreen)
        assert "deactivated" in app.screen.body.plain
        await press(pilot, "escape")
    assert ticket(db_url, 1).state == "received"


async def test_conflict_is_shown_with_who_and_the_view_refreshes(db_url, make_app):
    app = make_app(db_url)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        app.open_ticket(2)
        await settle(pilot)
        screen = app.screen
        digit = action_digit(screen, "confirm")
        # bob confirms the same ticket from another terminal
        with db.write_session(db_url) as s:
            engine.apply(s, 2, "confirm", Actor("bob", "volunteer"))
        await press(pilot, digit)
        message = app.screen
        assert isinstance(message, MessageScreen) and message.kind == "conflict"
        assert "bob" in message.body.plain
        await press(pilot, "escape")
        assert screen.view["state"] == "scheduled"  # refreshed
    with db.read_session(db_url) as s:
        confirms = list(
            s.exec(select(Event).where(Event.ticket_id == 2, Event.action == "confirm"))
        )
    assert [e.actor for e in confirms] == ["bob"]


async def test_read_only_without_a_volunteer(db_url, make_app):
    app = make_app(db_url, user=None)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert app.backend.info.read_only
        banners = app.screen.query_one("#banners")
        assert banners.display and "Read-only" in str(banners.render())
        app.open_ticket(1)
        await settle(pilot)
        await press(pilot, "1")
        assert isinstance(app.screen, MessageScreen)
        assert "read-only" in app.screen.body.plain and "volunteer" not in app.screen.body.plain
    assert ticket(db_url, 1).state == "received"
    assert ticket(db_url, 1).claimed_by == "bob"  # a reader claims nothing


async def test_opening_a_ticket_claims_it_and_leaving_releases_it(db_url, make_app):
    app = make_app(db_url)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        app.open_ticket(3)
        await settle(pilot)
        t = ticket(db_url, 3)
        assert t.claimed_by == "alice" and t.claim_expires > clock.now()
        await press(pilot, "escape")
        await settle(pilot)
    assert ticket(db_url, 3).claimed_by is None


async def test_take_assigns_to_me(db_url, make_app):
    app = make_app(db_url)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        app.open_ticket(3)
        await settle(pilot)
        await press(pilot, "t")
        assert ticket(db_url, 3).assignee == "alice"
        await press(pilot, "t")
        assert ticket(db_url, 3).assignee is None
