"""The TUI on a training database: the banner no one can miss, the guided walkthrough
beside a scenario's ticket (steps, what to check, the French article), feedback on a step
refused or taken out of order, and the trainer's clock keys running sweep."""

from __future__ import annotations

from sqlmodel import select

from helpdesk.base import clock
from helpdesk.storage import db
from helpdesk.workflow import engine
from helpdesk.training import sandbox
from helpdesk.rules.context import Actor
from helpdesk.storage.models import Account, Event, Outbox, Ticket
from screens.modals import ActionForm, ConfirmScreen, MessageScreen
from screens.ticket import TicketScreen
from tests.tui.conftest import press, settle, type_text


def walk_text(screen: TicketScreen) -> str:
    return screen.pane_text("walkthrough")


def current(screen: TicketScreen) -> dict:
    return next(s for s in screen.walk["steps"] if s["current"])


def select_action(screen: TicketScreen, key: str) -> None:
    ol = screen.query_one("#actions")
    index = next(i for i in range(ol.option_count) if ol.get_option_at_index(i).id == key)
    ol.highlighted = index


async def test_walkthrough_guides_a_scenario_and_the_clock_runs_sweep(training_url, make_app):
    url, tid = training_url
    app = make_app(url, "alice")
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        banner = str(app.screen.query_one("#banners").render())
        assert "TRAINING DATABASE" in banner and "Wigii" in banner and "F5" in banner
        app.open_ticket(tid)
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, TicketScreen) and screen.walk is not None
        text = walk_text(screen)
        assert "Walkthrough" in text and "▶" in text
        # step 1: show that deactivating is refused while the request is incomplete
        step = current(screen)
        assert step["index"] == 1 and step["refused"] == "not_in_states"
        assert "Wigii" in step["citation"] and "art. 9" in step["citation"]
        assert (
            step["citation_text"]
            and step["citation_text"] in text.replace("\n", " ")
            or step["citation_text"][:30] in text
        )
        select_action(screen, "deactivate")
        await press(pilot, "enter")
        assert isinstance(app.screen, MessageScreen)  # the refusal, with its rule
        await press(pilot, "escape")
        await settle(pilot)
        assert current(screen)["index"] == 2, screen.walk["steps"]
        with db.read_session(url) as s:
            refusals = list(
                s.exec(
                    select(Event).where(
                        Event.ticket_id == tid, Event.action == sandbox.REFUSAL_EVENT
                    )
                )
            )
        assert [(e.actor, e.data["action"], e.data["rule"]) for e in refusals] == [
            ("alice", "deactivate", "not_in_states")
        ]
        # step 2: complete the request with the system address (a form, then the preview)
        await press(pilot, digit(screen, "complete"))
        assert isinstance(app.screen, ActionForm)
        form = app.screen
        form.query_one("#field-system").value = "https://relation.wigii.org"
        await press(pilot, "ctrl+s")
        if isinstance(app.screen, ConfirmScreen):
            await press(pilot, "y")
        await settle(pilot)
        assert ticket(url, tid).state == "awaiting-ack"
        assert current(screen)["index"] == 3
        # step 3 (refusal shown), then step 4: the acknowledgement; after it the clock +1 day
        select_action(screen, "deactivate")
        await press(pilot, "enter")
        await press(pilot, "escape")
        await settle(pilot)
        assert current(screen)["index"] == 4
        await press(pilot, digit(screen, "acknowledge"))
        assert isinstance(app.screen, ActionForm)  # art. 9: recorded with where it came from
        app.screen.query_one("#note").focus()
        await type_text(pilot, "reply mail from jean.dupont@example.org")
        await press(pilot, "ctrl+s")
        if isinstance(app.screen, ConfirmScreen):
            await press(pilot, "y")
        await settle(pilot)
        assert ticket(url, tid).state == "scheduled"
        # the trainer's keys: +1 day moves the clock and runs sweep (nothing due yet)
        before = sandbox.clock_of(url)
        await press(pilot, "f5")
        assert isinstance(app.screen, MessageScreen) and "Clock" in app.screen.body.plain
        await press(pilot, "escape")
        after = sandbox.clock_of(url)
        assert after.date() > before.date()
        assert clock.now() == after  # the app lives at the training clock
        # step 5: deactivation before the day is refused, by the day rule
        select_action(screen, "deactivate")
        await press(pilot, "enter")
        assert isinstance(app.screen, MessageScreen)
        await press(pilot, "escape")
        await settle(pilot)
        assert current(screen)["index"] == 6
        # step 6: to the next deadline, the requested day: sweep deactivates the account
        await press(pilot, "f8")
        assert isinstance(app.screen, MessageScreen)
        body = app.screen.body.plain
        # the step and the state by their labels in the procedure, not their keys
        assert "Deactivate the account → Deactivated, erasure pending" in body, body
        assert "deactivate " not in body and "→ deactivated" not in body
        await press(pilot, "escape")
        await settle(pilot)
        assert ticket(url, tid).state == "deactivated"
        with db.read_session(url) as s:
            assert (
                s.exec(select(Account).where(Account.login == "jdupont")).one().status
                == "deactivated"
            )
        assert current(screen)["index"] == 7
        # step 7: the next deadline again: erasure
        await press(pilot, "f8")
        await press(pilot, "escape")
        await settle(pilot)
        assert ticket(url, tid).state == "erased"
        assert screen.walk["finished"] and "Scenario complete" in walk_text(screen)
        app.exit()


def ticket(url: str, tid: int) -> Ticket:
    with db.read_session(url) as s:
        return s.get(Ticket, tid)


def digit(screen: TicketScreen, key: str) -> str:
    found = screen.digit_of(key)
    if found is None:
        raise AssertionError(f"{key} is not allowed: {list(screen.by_digit)}")
    return found


async def test_clock_keys_do_nothing_on_a_real_database(db_url, make_app):
    app = make_app(db_url, "bob")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert "TRAINING" not in str(app.screen.query_one("#banners").render())
        before = clock.now()
        await press(pilot, "f8")
        assert not isinstance(app.screen, MessageScreen)
        assert clock.now() == before
        app.open_ticket(1)
        await settle(pilot)
        assert app.screen.walk is None and "walkthrough" not in [
            p.id for p in app.screen.visible_panes()
        ]
        app.exit()


async def test_a_step_taken_out_of_order_is_told(training_url, make_app):
    url, tid = training_url
    app = make_app(url, "alice")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        app.open_ticket(tid)
        await settle(pilot)
        screen = app.screen
        assert current(screen)["index"] == 1  # the path first shows deactivation refused
        await press(pilot, digit(screen, "cancel"))  # allowed, but not this scenario's path
        if isinstance(app.screen, ActionForm):
            await type_text(pilot, "le demandeur renonce")
            await press(pilot, "ctrl+s")
        if isinstance(app.screen, ConfirmScreen):
            await press(pilot, "y")
        await settle(pilot)
        assert ticket(url, tid).state == "cancelled"
        told = [n.message for n in app._notifications if n.title == "Walkthrough"]
        assert told and "step 1" in told[-1] and "deactivate" in told[-1], told
        assert "Taken outside the expected path: cancel (alice)" in walk_text(screen)
        app.exit()


async def test_the_trainer_starts_a_scenario_again_or_another_one(training_url, make_app):
    url, tid = training_url
    start = sandbox.clock_of(url)
    app = make_app(url, "tom")
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await press(pilot, "f7")  # a month later: the request went unanswered
        await press(pilot, "escape")
        assert sandbox.clock_of(url) > start
        with db.read_session(url) as s:
            at_start = len(list(s.exec(select(Event).where(Event.ticket_id == tid))))
            mails_at_start = [m.template for m in s.exec(select(Outbox))]
        with db.write_session(url) as s:  # a trainee completes the request meanwhile
            engine.apply(
                s,
                tid,
                "complete",
                Actor("alice", "volunteer"),
                fields={"system": "https://relation.wigii.org"},
            )
        assert ticket(url, tid).state == "awaiting-ack"
        with db.read_session(url) as s:
            assert len(list(s.exec(select(Outbox)))) > len(mails_at_start)  # the confirmation
        app.action_start_scenario("")
        await settle(pilot)
        assert sandbox.clock_of(url) == start and clock.now() == start
        with db.read_session(url) as s:
            assert len(list(s.exec(select(Event).where(Event.ticket_id == tid)))) == at_start
            assert [m.template for m in s.exec(select(Outbox))] == mails_at_start
        assert ticket(url, tid).state == "incomplete"
        # another scenario: the banner follows
        app.action_start_scenario("indigos-abuse-exchange")
        await settle(pilot)
        assert sandbox.scenario_of(url).key == "indigos-abuse-exchange"
        assert "Indigos" in str(app.screen.query_one("#banners").render())
        app.exit()


async def test_a_scenario_started_in_another_session_reaches_this_banner(training_url, make_app):
    """Another session (the trainer's, or `helpdesk train start`) puts another scenario in
    the training database: this session's banner follows through the live watcher, and
    its clock too."""
    from tests.tui.test_app import wait_for

    url, _tid = training_url
    app = make_app(url, "tom", live=True, poll_seconds=0.25)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        banner = lambda: str(app.screen.query_one("#banners").render())  # noqa: E731
        assert "Wigii" in banner() and "Indigos" not in banner()
        seeded = sandbox.reset(url, "indigos-abuse-exchange")  # as another session does
        await wait_for(pilot, lambda: "Indigos" in banner(), 10.0)
        assert "Wigii" not in banner(), banner()
        assert clock.now() == seeded.clock  # the clock of the scenario now held
        app.exit()


async def test_the_trainer_plays_the_steps_volunteer_to_see_a_role_refusal(tmp_path, make_app):
    """tom holds every role, so he never sees the role refusal: the walkthrough tells him
    to press p, which plays the volunteer the step names; the refusal seen as alice ticks
    that step (and only it), then p plays bob for the next one."""
    url = f"sqlite:///{tmp_path / 'training.db'}"
    seeded = sandbox.seed(url, "indigos-abuse-emergency")
    tid = seeded.tickets["main"]
    clock.set_now(None)
    app = make_app(url, "tom")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        app.open_ticket(tid)
        await settle(pilot)
        screen = app.screen
        assert current(screen)["index"] == 1 and current(screen)["who"] == "alice"
        assert "play alice (volunteer) for this step" in walk_text(screen)
        await press(pilot, "p")
        await settle(pilot)
        assert app.backend.info.actor.login == "alice"
        assert "you play alice (volunteer)" in walk_text(screen)
        assert "alice" in str(screen.query_one("#topbar").render())
        select_action(screen, "suspend")
        await press(pilot, "enter")
        await settle(pilot)
        if isinstance(app.screen, ActionForm):  # the form asks for the reason first
            await type_text(pilot, "Scan de ports en cours")
            await press(pilot, "ctrl+s")
            await settle(pilot)
        assert isinstance(app.screen, MessageScreen)
        await press(pilot, "escape")
        await settle(pilot)
        assert [s["done"] for s in screen.walk["steps"]][:2] == [True, False]
        assert current(screen)["index"] == 2 and current(screen)["who"] == "bob"
        assert "play bob (on call)" in walk_text(screen)
        await press(pilot, "p")  # back to tom
        await settle(pilot)
        assert app.backend.info.actor.login == "tom"
        await press(pilot, "p")  # bob for step 2
        await settle(pilot)
        assert app.backend.info.actor.login == "bob"
        with db.read_session(url) as s:
            played = [
                (e.actor, e.data["as"])
                for e in s.exec(select(Event).where(Event.action == sandbox.PLAY_EVENT))
            ]
        assert played == [("tom", "alice"), ("tom", "tom"), ("tom", "bob")]
        app.exit()
