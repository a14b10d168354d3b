"""The app around the screens: live updates, the keymap, the keys screen, the command
palette, the interface language, the queue's virtual list."""

from __future__ import annotations

import asyncio

from helpdesk.storage import db
from helpdesk.service import api
from helpdesk.rules.context import Actor
from helpdesk.base.i18n import set_lang
from helpdesk.storage.models import Meta
from screens.dashboard import DashboardScreen
from screens.modals import GotoScreen, KeysScreen
from screens.queue import QueueScreen
from screens.ticket import TicketScreen
from screens.ticket_list import PAGE, TicketList
from tests.tui.conftest import press, settle, type_text


async def wait_for(pilot, condition, seconds: float = 2.0) -> float:
    """Poll ``condition`` until true; returns how long it took (fails after ``seconds``)."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    while not condition():
        if loop.time() - start > seconds:
            raise AssertionError("not within %.1f s" % seconds)
        await pilot.pause(0.05)
    return loop.time() - start


def another_process_opens_an_abuse_report(db_url: str) -> None:
    with db.write_session(db_url) as s:  # another connection, as another process would
        api.open_ticket(
            s,
            queue="abuse",
            policy="indigos",
            actor=Actor("bob", "volunteer"),
            account_login="jdupont",
            subject="New report",
            fields={"category": "spam"},
        )


async def test_a_change_by_another_process_appears_within_two_seconds(db_url, make_app):
    app = make_app(db_url, live=True, poll_seconds=0.25)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await press(pilot, "3")
        lst = app.screen.query_one(TicketList)
        before = lst.total
        another_process_opens_an_abuse_report(db_url)
        took = await wait_for(pilot, lambda: lst.total == before + 1, 2.0)
        assert took < 2.0
        # and a ticket someone else opens shows who
        app.open_ticket(3)
        await settle(pilot)
        screen = app.screen
        assert not screen.query_one("#claim").display
        with db.write_session(db_url) as s:
            api.release(s, 3, Actor("alice", "oncall"))
            api.claim(s, 3, Actor("tess", "techadmin"))
        await wait_for(pilot, lambda: screen.query_one("#claim").display, 2.0)
        assert "tess" in str(screen.query_one("#claim").render())
        app.exit()


async def test_a_covered_screen_reloads_when_shown_again_not_while_covered(db_url, make_app):
    app = make_app(db_url, live=True, poll_seconds=0.25)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        dash = app.screen
        assert isinstance(dash, DashboardScreen)
        before = dash.data.counts["abuse"]["open"]
        await press(pilot, "3")
        lst = app.screen.query_one(TicketList)
        total = lst.total
        another_process_opens_an_abuse_report(db_url)
        await wait_for(pilot, lambda: lst.total == total + 1, 2.0)
        await settle(pilot)
        # The dashboard under the queue was not read again: nobody could see it.
        assert dash.data.counts["abuse"]["open"] == before
        await press(pilot, "escape")
        assert app.screen is dash
        await wait_for(pilot, lambda: dash.data.counts["abuse"]["open"] == before + 1, 2.0)
        app.exit()


async def test_a_key_pressed_at_once_opens_the_queue_and_the_dashboard_fills_later(
    db_url, make_app
):
    app = make_app(db_url)
    read_while_covered = []
    dashboard = app.backend.dashboard

    def spy(*args, **kwargs):
        read_while_covered.append(not isinstance(app.screen, DashboardScreen))
        return dashboard(*args, **kwargs)

    app.backend.dashboard = spy
    async with app.run_test(size=(80, 24)) as pilot:
        dash = app.screen
        await pilot.press("1")  # at once, before the dashboard's figures
        await settle(pilot)
        assert isinstance(app.screen, QueueScreen)
        lst = app.screen.query_one(TicketList)
        assert lst.counted and lst.total > 0 and lst.row_at(0) is not None
        assert app.backend.info is not None  # what the screens need was still learnt
        assert "alice" in str(app.screen.query_one("#topbar").render())
        await press(pilot, "escape")
        await wait_for(pilot, lambda: dash.data is not None, 2.0)
        # The figures were read once the dashboard was in sight, never under the queue.
        assert read_while_covered and not any(read_while_covered)
        app.exit()


async def test_keymap_file_changes_keys_and_the_keys_screen_lists_ids(db_url, make_app, tmp_path):
    keymap = tmp_path / "keymap.toml"
    keymap.write_text('[keymap]\n"queue.search" = "ctrl+f"\n"app.keys" = "f1"\n', encoding="utf-8")
    app = make_app(db_url, keymap=keymap)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await press(pilot, "1")
        await press(pilot, "ctrl+f")
        assert app.screen.query_one("#search").has_focus
        await press(pilot, "escape")
        await press(pilot, "f1")
        keys = app.screen
        assert isinstance(keys, KeysScreen)
        listed = " ".join(str(w.render()) for w in keys.query("Static"))
        assert "queue.search" in listed and "^f" in listed.replace("ctrl+f", "^f")
        await press(pilot, "escape")
        assert isinstance(app.screen, QueueScreen)


async def test_bad_keymap_is_reported_not_fatal(db_url, make_app, tmp_path):
    keymap = tmp_path / "keymap.toml"
    keymap.write_text("this is = not toml [", encoding="utf-8")
    app = make_app(db_url, keymap=keymap)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert isinstance(app.screen, DashboardScreen)


def test_every_binding_has_an_id_and_a_label():
    from screens import app as app_mod
    from screens import dashboard, modals, queue, ticket, ticket_list

    classes = [
        app_mod.HelpdeskApp,
        dashboard.DashboardScreen,
        queue.QueueScreen,
        ticket.TicketScreen,
        ticket_list.TicketList,
        modals.ActionForm,
        modals.ConfirmScreen,
        modals.MessageScreen,
        modals.KeysScreen,
        modals.GotoScreen,
        modals.FilterScreen,
    ]
    ids = set()
    for cls in classes:
        for b in cls.BINDINGS:
            assert b.id and b.description, (cls.__name__, b)
            assert b.id not in ids, b.id
            ids.add(b.id)


async def test_question_mark_shows_the_keys(db_url, make_app):
    app = make_app(db_url)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await press(pilot, "question_mark")
        assert isinstance(app.screen, KeysScreen)
        await press(pilot, "escape")
        assert isinstance(app.screen, DashboardScreen)


async def test_palette_opens_a_ticket_by_number_and_lists_actions(db_url, make_app):
    app = make_app(db_url)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await press(pilot, "ctrl+p")
        await type_text(pilot, "3")
        await pilot.pause(0.5)
        await press(pilot, "enter")
        await settle(pilot)
        assert isinstance(app.screen, TicketScreen) and app.screen.ticket_id == 3
        from screens.commands import HelpdeskCommands

        provider = HelpdeskCommands(app.screen)
        names = [name for name, _cb, _help in provider._commands()]
        assert any(n.startswith("Action: ") for n in names)


async def test_goto_ticket_number(db_url, make_app):
    app = make_app(db_url)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await press(pilot, "g")
        assert isinstance(app.screen, GotoScreen)
        await type_text(pilot, "4")
        await press(pilot, "enter")
        assert isinstance(app.screen, TicketScreen) and app.screen.ticket_id == 4


async def test_interface_language(db_url, make_app):
    for lang, title in (("en", "Password reset"), ("fr", "Réinitialisation de mot de passe")):
        set_lang(lang)
        app = make_app(db_url)
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(pilot)
            assert app.backend.info.queue_titles["password-reset"] == title
            text = " ".join(s.text for s in app.screen._compositor.render_strips())
            assert title in text


async def test_training_banner(db_url, make_app):
    with db.write_session(db_url) as s:
        meta = s.get(Meta, "training") or Meta(key="training")
        meta.value = "yes"
        s.add(meta)
    app = make_app(db_url)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        banners = app.screen.query_one("#banners")
        assert banners.display and "TRAINING" in str(banners.render())
        await press(pilot, "1")
        assert "TRAINING" in str(app.screen.query_one("#banners").render())


async def test_unknown_volunteer_opens_nothing(db_url, make_app):
    """A login that names no active volunteer is not shown even read-only (issue 13)."""
    app = make_app(db_url, user="mallory")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert app.backend.info is None
        await press(pilot, "enter")
    assert app.return_code == 2


async def test_uninitialised_database_exits_with_code_2(tmp_path, make_app):
    app = make_app(f"sqlite:///{tmp_path / 'empty.db'}")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await press(pilot, "enter")
    assert app.return_code == 2


async def test_queue_sort_and_filter_cycle(db_url, make_app):
    app = make_app(db_url)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await press(pilot, "t")  # all tickets
        screen = app.screen
        lst = screen.query_one(TicketList)
        assert lst.total == 11
        due_order = [r.id for r in lst.loaded_rows()]
        await press(pilot, "s")
        assert screen.order == "age"
        assert [r.id for r in lst.loaded_rows()] != due_order
        await press(pilot, "p")  # first provider
        assert screen.flt.policy == "communesplone" and lst.total == 1
        await press(pilot, "x")
        await press(pilot, "a")  # assigned to me
        assert screen.flt.assignee == "alice" and [r.id for r in lst.loaded_rows()] == [2]


async def test_virtual_list_fetches_only_pages_on_screen(db_url, make_app):
    """With many tickets, the list reads a page or two, never the whole queue."""
    with db.write_session(db_url) as s:
        alice = Actor("alice", "oncall")
        for i in range(3 * PAGE + 10):
            api.open_ticket(
                s,
                queue="abuse",
                policy="indigos",
                actor=alice,
                account_login="jdupont",
                subject=f"bulk {i}",
                fields={"category": "spam"},
            )
    calls = []
    app = make_app(db_url)
    original = app.backend.page

    def spy(flt, order, offset, limit, **kw):
        calls.append((offset, limit))
        return original(flt, order, offset, limit, **kw)

    app.backend.page = spy
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await press(pilot, "3")
        lst = app.screen.query_one(TicketList)
        assert lst.total >= 3 * PAGE + 10
        assert calls == [(0, PAGE)]
        await press(pilot, "end")
        await settle(pilot)
        assert lst.cursor == lst.total - 1 and lst.current_id() is not None
        assert len(calls) <= 3 and all(limit == PAGE for _o, limit in calls)
        assert len(lst.loaded_rows()) < lst.total  # the pages seen, not the queue


async def test_a_long_history_is_read_only_as_far_as_the_screen_shows(
    db_url, make_app, monkeypatch
):
    import helpdesk.tui_api.backend

    monkeypatch.setattr(helpdesk.tui_api.backend, "HISTORY", 5)
    bob = Actor("bob", "oncall")
    with db.write_session(db_url) as s:
        for i in range(12):  # twelve hand-overs: a long history
            api.assign(s, 3, bob, "alice" if i % 2 == 0 else "bob")
        full = api.ticket_view(s, api.get_ticket(s, 3), bob)
    app = make_app(db_url)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        app.open_ticket(3)
        await settle(pilot)
        view = app.screen.view
        assert len(view["events"]) == 5 and view["events_total"] == len(full["events"]) > 5
        assert [e["id"] for e in view["events"]] == [e["id"] for e in full["events"][-5:]]
        # the procedure still knows every state the ticket went through
        assert set(view["visited"]) == {e["to"] for e in full["events"] if e["to"]} | {
            e["from"] for e in full["events"] if e["from"]
        }
        history = app.screen.pane_text("history")
        assert f"{len(full['events']) - 5} earlier events" in history
        app.exit()


async def test_key_5_opens_the_general_queue(db_url, make_app, tmp_path):
    """The dashboard lists the five queues; 5 opens the plain one, where a question that is
    none of the procedures waits for an answer."""
    from tests.conftest import Helpdesk

    hd = Helpdesk(db_url, tmp_path)
    hd.now = "2026-03-02T11:00:00Z"
    t = hd.ok(
        "ticket",
        "open",
        "general",
        "--policy",
        "wigii",
        "--requester",
        "jean@example.org",
        "--subject",
        "Sauvegardes ?",
        as_="alice",
    )
    app = make_app(db_url, "alice")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        queues = app.screen.query_one("#queues")
        assert queues.option_count == 5
        assert "5 Demande générale" in str(queues.get_option_at_index(4).prompt)  # French
        await press(pilot, "5")
        assert isinstance(app.screen, QueueScreen) and app.screen.queue == "general"
        lst = app.screen.query_one(TicketList)
        await wait_for(pilot, lambda: lst.row_at(0) is not None, 5.0)
        assert lst.row_at(0).id == t["id"]
        app.exit()
