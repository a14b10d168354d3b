"""Untrusted text is shown literally on every screen and triggers nothing: Rich/Textual
markup (``[@click=app.quit]``, ``[link=...]``, ``[bold]``, an unbalanced ``[/``) stays
brackets, terminal escapes (OSC 52 clipboard, clear screen) are removed."""

from __future__ import annotations

from textual.command import CommandPalette

from screens.modals import ActionForm, ConfirmScreen
from screens.queue import QueueScreen
from screens.safe import assemble, plain
from screens.ticket import TicketScreen
from tests.tui.conftest import press, settle, type_text
from tests.tui.seed import HOSTILE, HOSTILE_SUBJECT

LITERALS = [
    "[@click=app.quit]x[/]",
    '[link="http://x"]y[/link]',
    "[bold]loud",
    "unbalanced [/ and [/]",
]


def screen_dump(app) -> tuple[str, list]:
    """The text of every line on screen, and every segment's style."""
    strips = app.screen._compositor.render_strips()
    text = "\n".join(s.text for s in strips)
    styles = [seg.style for s in strips for seg in s if seg.style is not None]
    return text, styles


def assert_inert(app, *must_show: str) -> None:
    text, styles = screen_dump(app)
    assert "\x1b" not in text and "\x07" not in text
    for style in styles:
        assert not style.link, style
        assert "app.quit" not in repr(style.meta), style.meta
    flat = " ".join(text.split())
    for literal in must_show:
        assert literal in flat, (literal, text)
    assert app.is_running


def test_plain_never_reads_markup():
    for s in HOSTILE:
        t = plain(s)
        assert not t.spans
        assert "\x1b" not in t.plain
    assert plain("[@click=app.quit]x[/]").plain == "[@click=app.quit]x[/]"
    assert assemble(("[bold]", "italic"), "[/]").plain == "[bold][/]"
    assert plain("osc52 \x1b]52;c;ZXZpbA==\x07 clip").plain == "osc52  clip"
    assert plain("a\u202eb").plain == "ab"  # bidi override dropped


async def test_hostile_strings_on_every_screen(hostile_url, make_app):
    app = make_app(hostile_url)
    async with app.run_test(size=(160, 40)) as pilot:
        await settle(pilot)
        # dashboard: recent activity carries the note
        assert_inert(app, "[@click=app.quit]x[/]")
        # the abuse queue
        await press(pilot, "3")
        assert isinstance(app.screen, QueueScreen)
        assert_inert(app, "[@click=app.quit]x[/]")
        # the search box takes it as text, the search works on it
        await press(pilot, "slash")
        await type_text(pilot, "click")
        await pilot.pause(0.2)
        await press(pilot, "enter")
        assert app.screen.query_one("#tickets").total == 1
        assert_inert(app, "[@click=app.quit]x[/]")
        # the ticket: summary, fields, history
        await press(pilot, "enter")
        screen = app.screen
        assert isinstance(screen, TicketScreen) and screen.ticket_id == 9
        assert_inert(app, "[@click=app.quit]x[/]")
        await press(pilot, "d")  # scroll the details into view
        for _ in range(6):
            await press(pilot, "pagedown")
        assert_inert(app)
        # clicking on the subject does nothing
        await pilot.click("#summary", offset=(6, 0))
        await settle(pilot)
        assert app.is_running and isinstance(app.screen, TicketScreen)
        # a note with the same text goes into the preview and the history as text
        digit = screen.digit_of("contact")
        await press(pilot, digit)
        form = app.screen
        assert isinstance(form, ActionForm)
        form.query_one("#note").text = HOSTILE_SUBJECT
        await press(pilot, "ctrl+s")
        assert isinstance(app.screen, ConfirmScreen)
        assert_inert(app)
        await press(pilot, "y")
        await settle(pilot)
        assert isinstance(app.screen, TicketScreen)
        assert screen.view["events"][-1]["note"].startswith("[@click=app.quit]x[/]")
        assert_inert(app)
        # the command palette's full-text results
        await press(pilot, "ctrl+p")
        assert isinstance(app.screen, CommandPalette)
        await type_text(pilot, "unbalanced")
        await pilot.pause(0.6)
        await settle(pilot)
        assert_inert(app, "#9")
        await press(pilot, "escape")
        assert app.is_running
    assert app.return_code in (None, 0)
