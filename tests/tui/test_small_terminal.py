"""The TUI at 80×24: every pane of a ticket scrolls with the keyboard and shows whether it
has the keys; nothing the volunteer needs is out of reach (the whole article, whole notes,
earlier history, the requester, the account's contacts and phone, the sanctions ledger,
linked tickets); lists never hide a row under a scrollbar nor keep the cursor off screen;
action keys keep their meaning; claims follow the screen you are on."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import select

from helpdesk.storage import db
from helpdesk.workflow import engine
from helpdesk.service import api
from helpdesk.rules.context import Actor
from helpdesk.storage.models import Deadline, Event, Ticket
from screens.keybar import KeyBar
from screens.modals import ActionForm, ConfirmScreen, KeysScreen, MessageScreen
from screens.queue import QueueScreen
from screens.ticket import TicketScreen
from screens.ticket_list import TicketList
from tests.tui.conftest import indigos_mail_alert, press, settle, type_text

ALICE = Actor("alice", "oncall")
LONG_NOTE = (
    "Début de la note. " + "Une phrase de plus sur ce qui s'est passé. " * 30 + "Fin de la note."
)


def ticket(url: str, tid: int) -> Ticket:
    with db.read_session(url) as s:
        return s.get(Ticket, tid)


def _long_history(url: str, tid: int = 3, hand_overs: int = 14) -> None:
    with db.write_session(url) as s:
        for i in range(hand_overs):
            api.assign(s, tid, ALICE, "alice" if i % 2 == 0 else "bob")
    with db.write_session(url) as s:
        engine.apply(s, tid, "warn", ALICE, note=LONG_NOTE)


async def _open(pilot, tid: int) -> TicketScreen:
    pilot.app.open_ticket(tid)
    await settle(pilot)
    screen = pilot.app.screen
    assert isinstance(screen, TicketScreen) and screen.view is not None
    return screen


async def test_every_pane_scrolls_with_the_keys_and_shows_who_has_them(db_url, make_app):
    _long_history(db_url)
    app = make_app(db_url)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        screen = await _open(pilot, 3)
        bar = lambda: str(screen.query_one("#pane-bar").render())  # noqa: E731
        assert app.focused.id == "actions" and "▸ Actions" in str(
            screen.query_one("#actions-title").render()
        )
        await press(pilot, "tab")  # the keys go to the pane shown
        assert "▸ Details" in bar() and "▸ Actions" not in str(
            screen.query_one("#actions-title").render()
        )
        seen = []
        for _ in range(len(screen.visible_panes())):
            pane = screen.pane_widget()
            assert app.focused is pane and pane.region.height > 0
            if pane.max_scroll_y:  # longer than the screen: the keys scroll it
                await press(pilot, "pagedown")
                assert pane.scroll_y > 0
                await press(pilot, "end")
                assert pane.scroll_y == pane.max_scroll_y
                await press(pilot, "home")
                assert pane.scroll_y == 0
            seen.append(screen.current_pane)
            await press(pilot, "right")
        assert seen == ["details", "dates", "fields", "history", "mails", "conversation"]
        assert screen.current_pane == "details"  # round again
        await press(pilot, "]", "]", "]")
        assert screen.current_pane == "history" and "▸ History" in bar()
        assert screen.pane_widget().max_scroll_y > 0  # a long history at 80×24 does scroll
        await press(pilot, "d")  # the keys back to the actions
        assert app.focused.id == "actions" and "• History" in bar()
        app.exit()


async def test_history_notes_are_whole_and_earlier_events_page_in(db_url, make_app, monkeypatch):
    import helpdesk.tui_api.backend

    monkeypatch.setattr(helpdesk.tui_api.backend, "HISTORY", 5)
    import screens.ticket

    monkeypatch.setattr(screens.ticket, "HISTORY", 5)
    _long_history(db_url)
    app = make_app(db_url)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        screen = await _open(pilot, 3)
        total = screen.view["events_total"]
        assert len(screen.view["events"]) == 5 and total > 10
        text = screen.pane_text("history")
        assert " ".join(LONG_NOTE.split()) in " ".join(text.split())  # the note, whole
        screen.show_pane("history", focus=True)
        await settle(pilot)
        while len(screen.view["events"]) < total:
            before = len(screen.view["events"])
            await press(pilot, "end")
            assert len(screen.view["events"]) > before  # reaching the end pages in more
        assert "earlier events" not in screen.pane_text("history")
        assert "opened" in screen.pane_text("history")  # the first event, labelled
        app.exit()


async def test_the_article_is_read_whole(db_url, make_app):
    app = make_app(db_url)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        screen = await _open(pilot, 3)
        a = screen._highlighted_action()
        assert a["citation_text"] and len(a["citation_text"]) > 300
        await press(pilot, "c")
        assert isinstance(app.screen, MessageScreen)
        assert " ".join(a["citation_text"].split()) in " ".join(app.screen.body.plain.split())
        body = app.screen.query_one("#message-body")
        if body.max_scroll_y:
            await press(pilot, "tab") if app.focused is not body else None
            body.focus()
            await press(pilot, "end")
            assert body.scroll_y == body.max_scroll_y
        await press(pilot, "escape")
        assert app.screen is screen
        app.exit()


async def test_details_show_requester_contacts_phone_ledger_and_links(db_url, make_app):
    with db.write_session(db_url) as s:
        acc = api.find_account(s, "mairie-a", "communesplone")
        acc.contacts = ["secretariat@mairie-a.example"]
        acc.fields = {**acc.fields, "phone": "+32 81 24 60 00"}
        s.add(acc)
    with db.write_session(db_url) as s:
        linked = api.open_ticket(
            s,
            queue="password-reset",
            policy="indigos",
            actor=ALICE,
            account_login="jdupont",
            requester="jean.dupont@example.org",
            subject="Accès suspect",
            fields={"suspicious": True},
        )
        parent = linked.ticket.id
    app = make_app(db_url)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        screen = await _open(pilot, 5)
        details = screen.pane_text("details")
        assert "it@mairie-a.example" in details and "secretariat@mairie-a.example" in details
        assert "+32 81 24 60 00" in details and "Registered phone" in details
        assert "it@mairie-a.example" in str(
            screen.query_one("#summary").render()
        )  # the requester, on screen
        screen = await _open(pilot, 3)
        details = screen.pane_text("details")
        assert "Sanctions ledger" in details and "exchange" in details and "#3" in details
        screen = await _open(pilot, parent)
        child = screen.view["children"][0]
        assert f"#{child} (child) Abuse report" in " ".join(screen.pane_text("details").split())
        app.exit()


async def test_action_keys_keep_their_meaning_from_step_to_step(db_url, make_app):
    app = make_app(db_url)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        screen = await _open(pilot, 3)
        before = {
            a["key"]: screen.digit_of(a["key"])
            for a in screen.view["actions"]
            if screen.digit_of(a["key"])
        }
        warn = before["warn"]
        await press(pilot, warn)
        assert isinstance(app.screen, ActionForm)
        app.screen.query_one("#note").focus()
        await type_text(pilot, "Second wave")
        await press(pilot, "ctrl+s", "y")
        assert ticket(db_url, 3).state == "warned"
        after = {
            a["key"]: screen.digit_of(a["key"])
            for a in screen.view["actions"]
            if screen.digit_of(a["key"])
        }
        assert after and all(before.get(k, d) == d for k, d in after.items())
        assert warn not in after.values() or after.get("warn") == warn
        await press(pilot, warn)  # the same key again: never another step
        assert ticket(db_url, 3).state == "warned" and not isinstance(
            app.screen, (ActionForm, ConfirmScreen)
        )
        app.exit()


async def test_an_emergency_blocked_only_for_its_reason_opens_the_form(db_url, make_app):
    with db.write_session(db_url) as s:
        tid = api.open_ticket(
            s,
            queue="abuse",
            policy="indigos",
            actor=ALICE,
            account_login="cmartin",
            requester="cert@example.net",
            subject="Intrusion en cours",
            fields={"category": "security", "urgent": True},
        ).ticket.id
    app = make_app(db_url, "alice")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        screen = await _open(pilot, tid)
        suspend = next(a for a in screen.view["actions"] if a["key"] == "suspend")
        assert not suspend["allowed"] and suspend["needs_note"]
        key = screen.digit_of("suspend")
        assert key is not None
        await press(pilot, key)
        form = app.screen
        assert isinstance(form, ActionForm)
        form.query_one("#note").focus()
        await type_text(pilot, "Intrusion en cours, compte utilisé pour attaquer")
        await press(pilot, "ctrl+s")
        confirm = app.screen
        assert (
            isinstance(confirm, ConfirmScreen) and not confirm.irreversible
        )  # reinstate undoes it
        await press(pilot, "y")
    t = ticket(db_url, tid)
    assert t.state == "suspended"
    with db.read_session(db_url) as s:
        ev = s.exec(select(Event).where(Event.ticket_id == tid, Event.action == "suspend")).one()
    assert ev.note.startswith("Intrusion en cours") and ev.actor == "alice"


async def test_irreversible_only_for_steps_with_no_undo(db_url, make_app):
    tid = indigos_mail_alert(db_url)
    app = make_app(db_url)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        actions = {a["key"]: a for a in (await _open(pilot, tid)).view["actions"]}
        assert (
            actions["suspend-sending"]["undo"] == "lift"
            and not actions["suspend-sending"]["irreversible"]
        )
        assert actions["suspend"]["undo"] == "reinstate" and not actions["suspend"]["irreversible"]
        actions = {a["key"]: a for a in (await _open(pilot, 1)).view["actions"]}
        assert actions["issue-reset-link"]["irreversible"]
        app.exit()


async def test_take_says_give_back_when_you_hold_the_ticket(db_url, make_app):
    app = make_app(db_url, "alice")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        screen = await _open(pilot, 2)  # assigned to alice
        assert "t Give back" in str(screen.query_one(KeyBar).render())
        await press(pilot, "t")
        assert ticket(db_url, 2).assignee is None
        assert "t Take" in str(screen.query_one(KeyBar).render())
        assert not any("changed by" in str(n.message) for n in app._notifications)
        app.exit()


async def test_claims_follow_the_screen_you_are_on(db_url, make_app):
    app = make_app(db_url, "alice")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await _open(pilot, 3)
        assert ticket(db_url, 3).claimed_by == "alice"
        await press(pilot, "g")
        await type_text(pilot, "4")
        await press(pilot, "enter")
        assert app.screen.ticket_id == 4 and ticket(db_url, 4).claimed_by == "alice"
        assert ticket(db_url, 3).claimed_by is None  # left for #4: let go
        await press(pilot, "g")
        await type_text(pilot, "7")
        await press(pilot, "enter")
        assert ticket(db_url, 4).claimed_by is None and ticket(db_url, 7).claimed_by == "alice"
        await press(pilot, "escape")  # back to #4: claimed again
        assert app.screen.ticket_id == 4 and ticket(db_url, 4).claimed_by == "alice"
        assert ticket(db_url, 7).claimed_by is None
        app.exit()


async def test_lists_never_hide_a_row_nor_keep_the_cursor_off_screen(db_url, make_app):
    with db.write_session(db_url) as s:
        for i in range(40):
            api.open_ticket(
                s,
                queue="abuse",
                policy="indigos",
                actor=ALICE,
                account_login="jdupont",
                requester="noc@example.net",
                subject=f"Rapport {i}",
                fields={"category": "spam"},
            )
    app = make_app(db_url, "alice")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        app.open_queue(None)
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, QueueScreen)
        lst = screen.query_one(TicketList)
        assert not lst.show_horizontal_scrollbar
        assert "Queue" in str(screen.query_one("#list-header").render()) and "Assignee" in str(
            screen.query_one("#list-header").render()
        )
        for keys in (
            ("end",),
            ("home", "pagedown"),
            ("pagedown", "pagedown"),
            ("pageup",),
            ("end", "up"),
        ):
            await press(pilot, *keys)
            top = int(lst.scroll_offset.y)
            assert top <= lst.cursor < top + lst.rows_shown()
            assert lst.scrollable_content_region.bottom <= lst.region.bottom
        await press(pilot, "end")
        last = lst.row_at(lst.cursor)
        # the last row is drawn on the last line of the region, above no scrollbar
        line = lst.render_line(lst.cursor - int(lst.scroll_offset.y))
        assert f"#{last.id}" in line.text
        await press(pilot, "enter")
        assert isinstance(app.screen, TicketScreen) and app.screen.ticket_id == last.id
        await press(pilot, "escape")
        rows = {r.id: r for r in lst.loaded_rows()}
        assert rows[2].assignee == "alice"
        app.exit()


async def test_key_help_keeps_labels_apart_from_ids_and_explains_the_marks(db_url, make_app):
    from helpdesk.base.i18n import set_lang

    set_lang("fr")
    app = make_app(db_url)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await _open(pilot, 3)
        await press(pilot, "question_mark")
        assert isinstance(app.screen, KeysScreen)
        text = "\n".join(str(w.render()) for w in app.screen.query("Static"))
        for line in text.splitlines():
            if "ticket." in line:
                label, _sep, ident = line.rpartition("  ")
                assert ident.strip().startswith("ticket.") and label.strip()
        assert "numéroticket" not in text
        for mark in ("…", "!", "⚑", "✘"):
            assert f"  {mark}  " in text
        app.exit()


def test_reading_logs_does_not_meet_the_response_target(db_url):
    tess = Actor("tess", "techadmin")
    with db.write_session(db_url) as s:
        engine.apply(s, 9, "read-logs", tess, note="Vérifier l'origine")
    with db.read_session(db_url) as s:
        dl = s.exec(
            select(Deadline).where(Deadline.ticket_id == 9, Deadline.name == "respond-by")
        ).one()
        assert dl.status == "pending"  # nobody answered the reporter
    with db.write_session(db_url) as s:
        engine.apply(s, 9, "contact", Actor("alice", "oncall"), note="Prise de contact")
    with db.read_session(db_url) as s:
        dl = s.exec(
            select(Deadline).where(Deadline.ticket_id == 9, Deadline.name == "respond-by")
        ).one()
        assert dl.status == "done"  # a mail went to the account holder


async def test_counts_agree_with_their_number(db_url, make_app):
    from helpdesk.base.i18n import set_lang

    set_lang("fr")
    app = make_app(db_url)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        ol = app.screen.query_one("#queues")
        lines = [str(ol.get_option_at_index(i).prompt) for i in range(ol.option_count)]
        mail_line = next(line for line in lines if "réputation" in line)
        assert "1 ouvert " in mail_line + " " and "ouverts" not in mail_line
        assert "ouverts" in next(line for line in lines if "mot de passe" in line)
        app.open_queue("mail-reputation")
        await settle(pilot)
        status = str(app.screen.query_one("#status").render())
        assert status.startswith("1 ticket ") and "tickets" not in status
        app.exit()


async def test_a_checkbox_shows_its_state_as_a_character(db_url, make_app):
    from screens.modals import Tick

    app = make_app(db_url, "alice")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        screen = await _open(pilot, 5)
        await press(pilot, screen.digit_of("give-code-by-phone"))
        form = app.screen
        assert isinstance(form, ActionForm)
        box = form.query_one(Tick)
        assert "Called the account's registered number" in str(box.label)
        assert "▐ ▌" in str(box.render())
        box.value = True
        await settle(pilot)
        assert "▐X▌" in str(box.render())
        app.exit()


async def test_the_banner_and_the_clock_keys_fit_80_columns(training_url, make_app):
    from helpdesk.base.i18n import set_lang

    url, _tid = training_url
    for lang, last in (("fr", "F8 éch. suivante"), ("en", "F8 next deadline")):
        set_lang(lang)
        app = make_app(url, "tom")
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(pilot)
            banner = app.screen.query_one("#banners")
            lines = [line.text for line in banner.render_lines(banner.region.reset_offset)]
            clock_line = next((line for line in lines if last in line), None)
            assert clock_line is not None, lines
            assert "…" not in clock_line and clock_line.rstrip().endswith(last)
            assert lines[0].count("▲") == 2  # the warning, whole (the scenario's title may be cut)
            app.exit()


async def test_the_users_acknowledgement_asks_for_confirmation(db_url, make_app):
    with db.write_session(db_url) as s:
        engine.apply(
            s,
            11,
            "complete",
            ALICE,
            fields={"system": "https://espace-b.wigii.org", "day": "2026-03-20"},
        )
    app = make_app(db_url, "alice")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        screen = await _open(pilot, 11)
        assert ticket(db_url, 11).state == "awaiting-ack"
        for answer in ("n", "y"):
            await press(pilot, screen.digit_of("acknowledge"))
            assert isinstance(
                app.screen, ActionForm
            )  # not on a single key: its source first (issue 12)
            await type_text(pilot, "Quittance reçue par courriel le 3 mars")
            await press(pilot, "ctrl+s")
            assert isinstance(app.screen, ConfirmScreen)  # then a confirmation
            assert ticket(db_url, 11).state == "awaiting-ack"
            await press(pilot, answer)
        assert ticket(db_url, 11).state == "scheduled"
        app.exit()


def test_in_16_colours_the_cursor_is_not_the_red_of_errors():
    from rich.color import Color, ColorSystem
    from textual.theme import BUILTIN_THEMES

    from screens.app import sixteen_colour_theme

    def sixteen(value: str) -> int:
        return Color.parse(value).downgrade(ColorSystem.STANDARD).number

    base = BUILTIN_THEMES["textual-dark"]
    assert sixteen(base.accent) == sixteen(base.error)  # why the theme exists
    theme = sixteen_colour_theme(base)
    assert sixteen(theme.accent) != sixteen(theme.error) and sixteen(theme.warning) != sixteen(
        theme.error
    )


async def test_the_palette_speaks_french_throughout(db_url, make_app):
    from textual.command import CommandPalette

    from helpdesk.base.i18n import set_lang

    set_lang("fr")
    app = make_app(db_url)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        titles = [c.title for c in app.get_system_commands(app.screen)]
        assert {"Thème", "Quitter", "Touches"} <= set(titles), titles
        assert not {"Theme", "Quit", "Keys", "Screenshot"} & set(titles)
        await press(pilot, "ctrl+p")
        palette = app.screen
        assert isinstance(palette, CommandPalette)
        assert "Chercher une commande" in str(palette.query_one("Input").placeholder)
        app.exit()


async def test_left_and_right_change_panes_from_the_action_list(db_url, make_app):
    """← → change the pane shown while the action list keeps the keys (no Tab first);
    ↑ ↓ still move in the actions and a digit still runs its action."""
    app = make_app(db_url)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        screen = await _open(pilot, 3)
        actions = screen.query_one("#actions")
        assert app.focused is actions and screen.current_pane == "details"
        await press(pilot, "right")
        assert screen.current_pane == "dates" and app.focused is actions
        assert "▸ Actions" in str(screen.query_one("#actions-title").render())
        await press(pilot, "right", "right")
        assert screen.current_pane == "history"
        await press(pilot, "left")
        assert screen.current_pane == "fields"
        await press(pilot, "left", "left", "left")
        assert screen.current_pane == "conversation"  # round the other way
        before = actions.highlighted
        await press(pilot, "down")
        assert app.focused is actions and actions.highlighted != before
        assert screen.current_pane == "conversation"
        await press(pilot, "tab")  # the keys to the pane: ← → still change panes there
        assert app.focused is screen.pane_widget()
        await press(pilot, "right")
        assert screen.current_pane == "details" and app.focused is screen.pane_widget()
        app.exit()


async def test_a_long_scenario_title_is_whole_in_the_banner_at_80_columns(tmp_path, make_app):
    """The banner keeps a long scenario title whole at 80 columns (the warning takes its
    short form), and cuts one that still cannot fit at a word, with "…"."""
    from rich.text import Text

    from helpdesk.base.i18n import set_lang
    from helpdesk.training import sandbox, scenarios
    from screens.base import banner_title

    url = f"sqlite:///{tmp_path / 'training.db'}"
    key = "weentime-reset-admin"
    sandbox.seed(url, key)
    for lang in ("fr", "en"):
        set_lang(lang)
        title = scenarios.load(key).summary()["title"]
        app = make_app(url, "tom")
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(pilot)
            banner = app.screen.query_one("#banners")
            lines = [line.text for line in banner.render_lines(banner.region.reset_offset)]
            assert title in lines[0] and "…" not in lines[0], lines
            assert lines[0].count("▲") == 2 and ("FORMATION" in lines[0] or "TRAINING" in lines[0])
            app.exit()
    set_lang("fr")
    short = banner_title(Text("  Wigii : désactiver", style="bold"), 80).plain
    assert "BASE DE FORMATION — rien ici n'est réel" in short and short.endswith("désactiver")
    long = banner_title(Text("  " + "Un titre beaucoup trop long " * 4, style="bold"), 80).plain
    assert len(long) <= 80 and long.endswith("…") and long.startswith(" ▲ FORMATION ▲ ")
    assert long[:-1].endswith(("Un", "titre", "beaucoup", "trop", "long"))  # cut at a word
    set_lang("en")


async def test_without_colour_an_overdue_date_reads_as_overdue(db_url, make_app, monkeypatch):
    """NO_COLOR: an overdue date carries "!" in the lists and the word on the ticket (its
    header and its dates), never only a colour; a date still to come carries neither."""
    from helpdesk.base import clock

    monkeypatch.setenv("NO_COLOR", "1")
    now = clock.now()
    with db.read_session(db_url) as s:
        open_ = [t for t in s.exec(select(Ticket)) if t.due_at is not None]
    late = next(t for t in open_ if clock.as_utc(t.due_at) <= now)
    app = make_app(db_url)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        screen = await _open(pilot, late.id)
        summary = str(screen.query_one("#summary").render())
        due = next(x for x in summary.splitlines() if x.startswith("Due"))
        assert "! " in due and "overdue" in due, due
        dates = screen.pane_text("dates")
        assert any(x.startswith("! ") and "overdue" in x for x in dates.splitlines()), dates
        app.exit()
    with db.write_session(db_url) as s:  # the same ticket, due tomorrow: no mark, no word
        t = s.get(Ticket, late.id)
        t.due_at = now + timedelta(days=1)
        s.add(t)
    app = make_app(db_url)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        screen = await _open(pilot, late.id)
        summary = str(screen.query_one("#summary").render())
        due = next(x for x in summary.splitlines() if x.startswith("Due"))
        assert "!" not in due and "overdue" not in due, due
        app.exit()
