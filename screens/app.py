"""The helpdesk's Textual app (``screens.start`` opens it for ``helpdesk`` / ``helpdesk demo``)."""

from __future__ import annotations

import gc
import time
from pathlib import Path
from typing import TYPE_CHECKING

from rich.text import Text
from textual import work
from textual.app import App
from textual.binding import Binding
from textual.worker import get_current_worker

from helpdesk.base.i18n import _
from screens import GC_YOUNG, keymap as keymaps
from screens.base import N_, BaseScreen, translate_bindings
from screens.commands import HelpdeskCommands
from screens.training import CLOCK_STEPS

#: Seconds after the app knows who is acting before it loads what opening a ticket needs:
#: the dashboard's counts and a queue's first rows, read without it, come first.
WARM_UP_AFTER = 1.0

if TYPE_CHECKING:
    from helpdesk.tui_api.backend import Backend

POLL_SECONDS = 1.0


class HelpdeskApp(App[int]):
    CSS_PATH = "app.tcss"
    TITLE = "helpdesk"
    COMMANDS = App.COMMANDS | {HelpdeskCommands}
    BINDINGS = [
        Binding("ctrl+q", "quit", N_("Quit"), show=False, priority=True, id="app.quit"),
        Binding(
            "ctrl+p", "command_palette", N_("Commands"), show=False, priority=True, id="app.palette"
        ),
        Binding("question_mark", "keys", N_("Keys"), key_display="?", id="app.keys"),
        Binding("g", "goto", N_("Go to #"), show=False, id="app.goto"),
        Binding("ctrl+d", "dashboard", N_("Dashboard"), show=False, id="app.dashboard"),
        # On a training database only: the trainer moves the clock and sweep runs.
        *[
            Binding(
                key, f"move_clock('{step}')", label, show=False, id=f"app.clock{step.strip('+')}"
            )
            for key, step, label in CLOCK_STEPS
        ],
    ]

    def __init__(
        self,
        backend: Backend,
        *,
        live: bool = True,
        poll_seconds: float = POLL_SECONDS,
        keymap_path: Path | None = None,
        cursor_blink: bool = True,
    ) -> None:
        super().__init__()
        translate_bindings(self)
        self.backend = backend
        self._warming = False  # what opening a ticket needs is loading or loaded
        self.live = live
        self.poll_seconds = poll_seconds
        self.keymap_path = keymap_path or keymaps.default_path()
        self.cursor_blink = cursor_blink
        self.changes = 0  # how many changes the watcher saw (tests read it)
        self._keymap_error = ""
        self._ticket_screen = None  # the installed TicketScreen (see open_ticket)
        keymap, self._keymap_error = keymaps.load(self.keymap_path)
        if keymap:
            self.set_keymap(keymap)

    def get_default_screen(self):
        from screens.dashboard import DashboardScreen

        return DashboardScreen()

    def on_mount(self) -> None:
        if self.console.color_system in ("standard", "windows") and not self.is_headless:
            # 16 colours: the accent (the list cursor) would become the red of errors and
            # of the training banner; a theme whose accent stays apart. (Not headless: the
            # snapshots must not depend on the TERM of the machine that takes them.)
            theme = sixteen_colour_theme(self.current_theme)
            self.register_theme(theme)
            self.theme = theme.name
        if self._keymap_error:
            self.notify(self._keymap_error, title=_("Keymap"), severity="warning", markup=False)
        if self.live:
            self.watch_database()
        self._tune_collector()

    def _tune_collector(self) -> None:
        """Keep the garbage collector's pauses off keys and searches. Textual's painted
        lines (``Strip``) hold themselves in their caches: cyclic garbage, by the thousand,
        that only a collection frees. With Python's default (a young collection every 700
        allocations) they outlive the young generation and pile up until a full collection
        frees them all at once, 50-100 ms under a key. Rarer young collections free them
        while they are young, a few milliseconds at a time. And what is alive once the first
        screen is up (Textual, its styles, the widgets) lives as long as the app: frozen,
        out of the collector's sight, a full collection no longer walks it."""
        self._gc_before = gc.get_threshold()
        gc.set_threshold(GC_YOUNG, *self._gc_before[1:])
        self.call_after_refresh(self._settled)

    def _settled(self) -> None:
        gc.freeze()
        gc.enable()  # off while the app loaded, when 'helpdesk' opened it (helpdesk.cli.entry)

    def on_unmount(self) -> None:
        gc.unfreeze()  # another app in this process (tests) starts afresh
        if getattr(self, "_gc_before", None):
            gc.set_threshold(*self._gc_before)

    # --- called by screens -----------------------------------------------------------------

    def info_loaded(self) -> None:
        for screen in self.screen_stack:
            if isinstance(screen, BaseScreen):
                screen.refresh_chrome()
        if not self._warming:
            self._warming = True
            self.set_timer(WARM_UP_AFTER, self._warm_up)

    @work(thread=True, group="warm-up", exit_on_error=False)
    def _warm_up(self) -> None:
        """Once the person is reading the first screen: load what opening a ticket needs
        (``Backend.warm_up``), so that the first ticket opens as fast as the others."""
        self.backend.warm_up()

    def fatal(self, message: str) -> None:
        from screens.modals import MessageScreen

        def close(_result) -> None:
            self.exit(return_code=2, message=message)

        self.push_screen(
            MessageScreen(_("Cannot open the helpdesk"), Text(message), kind="error"), close
        )

    def show_message(self, title: str, body: Text, *, kind: str = "refusal") -> None:
        from screens.modals import MessageScreen

        self.push_screen(MessageScreen(title, body, kind=kind))

    def open_queue(self, queue: str | None) -> None:
        from screens.queue import QueueScreen

        self.push_screen(QueueScreen(queue))

    def open_ticket(self, ticket_id: int) -> None:
        from screens.ticket import TicketScreen

        if isinstance(self.screen, TicketScreen) and self.screen.ticket_id == ticket_id:
            return
        # Read at once (a dozen milliseconds), so the screen is built with its ticket in one
        # layout; when that is not possible or fails, the screen's worker loads it and says why.
        try:
            preloaded = self.backend.ticket_at_once(ticket_id)
        except Exception:  # noqa: BLE001
            preloaded = None
        # One ticket screen, kept installed and pushed again for the next ticket: its
        # widgets are built once. A ticket opened from a ticket gets a screen of its own.
        screen = self._ticket_screen
        if screen is None:
            screen = self._ticket_screen = TicketScreen(ticket_id, preloaded)
            self.install_screen(screen, "ticket")
        elif screen in self.screen_stack:
            screen = TicketScreen(ticket_id, preloaded)
        else:
            screen.switch_to(ticket_id, preloaded)
        self.push_screen(screen)

    @work(thread=True, group="release", exit_on_error=False)
    def release_claim(self, ticket_id: int) -> None:
        try:
            self.backend.release(ticket_id)
        except Exception:  # noqa: BLE001 - a claim expires by itself anyway
            pass

    # --- app actions ---------------------------------------------------------------------------

    def get_system_commands(self, screen):
        """Textual's own palette entries, in the interface's language; "Keys" opens the
        helpdesk's key list."""
        from textual.app import SystemCommand

        yield SystemCommand(
            _("Theme"), _("Change the colours of the interface"), self.action_change_theme
        )
        yield SystemCommand(_("Quit"), _("Quit the helpdesk"), self.action_quit)
        yield SystemCommand(
            _("Keys"), _("The keys that work here, and what the marks mean"), self.action_keys
        )
        if screen.maximized is not None:
            yield SystemCommand(
                _("Minimise"), _("Give the other panes their place back"), screen.action_minimize
            )
        elif screen.focused is not None and screen.focused.allow_maximize:
            yield SystemCommand(
                _("Maximise"),
                _("Give the whole screen to the focused pane"),
                screen.action_maximize,
            )
        yield SystemCommand(
            _("Screenshot"),
            _("Save an SVG picture of the screen"),
            lambda: self.set_timer(0.1, self.deliver_screenshot),
        )

    def action_command_palette(self) -> None:
        """The command palette, its prompt in the interface's language."""
        from textual.command import CommandPalette

        if self.use_command_palette and not CommandPalette.is_open(self):
            self.push_screen(
                CommandPalette(id="--command-palette", placeholder=_("Search for commands…"))
            )

    def action_keys(self) -> None:
        from screens.modals import KeysScreen

        if type(self.screen).__name__ == "KeysScreen":
            return
        self.push_screen(KeysScreen(self.screen))

    def action_goto(self) -> None:
        from screens.modals import GotoScreen

        def go(number: int | None) -> None:
            if number is not None:
                self.open_ticket(number)

        self.push_screen(GotoScreen(), go)

    def check_action(self, action: str, parameters: tuple) -> bool | None:
        if action in ("move_clock", "start_scenario"):
            info = self.backend.info
            return bool(info and info.training and not info.read_only)
        return True

    def action_move_clock(self, step: str) -> None:
        self.notify(
            _("Moving the clock ({step}) and running sweep…").format(step=step),
            timeout=2,
            markup=False,
        )
        self.move_clock(step)

    @work(thread=True, exclusive=True, group="clock", exit_on_error=False)
    def move_clock(self, step: str) -> None:
        from screens.training import clock_move_text

        try:
            move = self.backend.move_clock(step)
        except Exception as exc:  # noqa: BLE001 - refused or failed: said, never a crash
            self.call_from_thread(
                self.show_message, _("The clock did not move"), Text(str(exc)), kind="error"
            )
            return
        tz = self.backend.info.scenario_tz if self.backend.info else "Europe/Paris"
        self.call_from_thread(self._clock_moved, clock_move_text(move, tz))

    def action_start_scenario(self, key: str = "") -> None:
        self.start_scenario(key or None)

    @work(thread=True, exclusive=True, group="clock", exit_on_error=False)
    def start_scenario(self, key: str | None) -> None:
        """Back to a scenario's start (or to another scenario's): the whole training
        database is replaced, so every screen goes back to the dashboard."""
        try:
            seeded = self.backend.start_scenario(key)
        except Exception as exc:  # noqa: BLE001
            self.call_from_thread(
                self.show_message, _("The scenario did not start"), Text(str(exc)), kind="error"
            )
            return
        self.call_from_thread(self._scenario_started, seeded)

    def _scenario_started(self, seeded) -> None:
        self.action_dashboard()
        self.data_changed()
        tickets = ", ".join(f"#{tid}" for tid in seeded.tickets.values())
        self.notify(
            _("Scenario {key} at its start: tickets {tickets}.").format(
                key=seeded.scenario, tickets=tickets
            ),
            markup=False,
        )

    def _clock_moved(self, body: Text) -> None:
        self.data_changed()
        self.show_message(_("The clock moved"), body, kind="info")

    def action_dashboard(self) -> None:
        from screens.dashboard import DashboardScreen

        while len(self.screen_stack) > 2 or not isinstance(self.screen, DashboardScreen):
            if len(self.screen_stack) <= 1:
                break
            self.pop_screen()

    # --- live -----------------------------------------------------------------------------------

    @work(thread=True, exclusive=True, group="poll", exit_on_error=False)
    def watch_database(self) -> None:
        """Polls the database cheaply; when another connection changed it, screens reload."""
        worker = get_current_worker()
        try:
            last = None
            while not worker.is_cancelled:
                try:
                    token = self.backend.changes()
                except Exception:  # noqa: BLE001 - a locked or missing database: look again later
                    token = last
                if last is not None and token != last:
                    info = self.backend.info
                    if info is not None and info.training:
                        # Another session may have moved the clock, or started another
                        # scenario: learn again what the database holds (the clock
                        # included), so that the banner follows.
                        try:
                            self.backend.load_info()
                        except Exception:  # noqa: BLE001 - being replaced: look again at the
                            time.sleep(self.poll_seconds)  # next poll, as a change still
                            continue
                    self.call_from_thread(self.data_changed)
                last = token
                time.sleep(self.poll_seconds)
        finally:
            try:
                self.backend.stop_watching()
            except Exception:  # noqa: BLE001 - closing at exit
                pass

    def data_changed(self) -> None:
        self.changes += 1
        for screen in self.screen_stack:
            if isinstance(screen, BaseScreen):
                screen.data_changed()
                screen.refresh_chrome()


def sixteen_colour_theme(base):
    """``base`` with an accent and a warning that a 16-colour terminal shows as yellow,
    never as the red it shows for errors."""
    from dataclasses import replace

    return replace(base, name="helpdesk-16", accent="#ffff00", warning="#ffff00")
