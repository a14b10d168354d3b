"""What every screen shares: translated bindings, the top bar, the banners that nobody can
miss (training database, read-only), and the hook the live watcher calls."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import BindingsMap
from textual.screen import ModalScreen, Screen
from textual.widgets import Input, Static

from helpdesk.base.i18n import N_, _  # noqa: F401 - N_ for the screens that import it from here
from screens.safe import assemble

if TYPE_CHECKING:
    from helpdesk.tui_api.backend import Backend, Info


def translate_bindings(node) -> None:
    """Binding labels are English msgids in ``BINDINGS``; show them in the interface language."""
    old: BindingsMap = node._bindings
    fresh = BindingsMap()
    for key, bindings in old.key_to_bindings.items():
        fresh.key_to_bindings[key] = [
            replace(b, description=_(b.description)) if b.description else b for b in bindings
        ]
    node._bindings = fresh


class Translated:
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        translate_bindings(self)


class SafeInput(Input):
    """An Input whose cursor blinks only when the app says so (snapshots turn it off)."""

    def on_mount(self) -> None:
        self.cursor_blink = getattr(self.app, "cursor_blink", True)


class TopBar(Static):
    """One line: where you are, who you are, which database."""

    def __init__(self, title: Text | str = "", **kwargs) -> None:
        super().__init__(**kwargs)
        self.title_text = title

    def on_mount(self) -> None:
        self.refresh_bar()

    def set_title(self, title: Text | str) -> None:
        self.title_text = title
        self.refresh_bar()

    def refresh_bar(self) -> None:
        info = self.app.backend.info if hasattr(self.app, "backend") else None
        who: Text
        if info is None:
            who = Text("…")
        elif info.actor is None:
            who = Text(_("read-only"), style="bold")
        else:
            from helpdesk.base.labels import label

            who = assemble((info.actor.login, "bold"), f" ({label('role', info.actor.role)})")
        title = self.title_text if isinstance(self.title_text, Text) else Text(self.title_text)
        bar = assemble(("helpdesk", "bold"), " · ", title)
        width = self.content_region.width or self.size.width
        if width:
            bar.truncate(max(10, width - who.cell_len - 2), overflow="ellipsis")
            bar.append(" " * max(1, width - bar.cell_len - who.cell_len))
        else:
            bar.append("  ")
        bar.append_text(who)
        self.update(bar)

    def on_resize(self) -> None:
        self.refresh_bar()


def banner_title(title: Text, width: int) -> Text:
    """The banner's first line: the training warning, then the scenario's title. A long
    title takes the warning's short form, and is cut at a word, with "…", only if it
    still does not fit."""
    for words in (
        _("TRAINING DATABASE — nothing here is real"),
        _("TRAINING"),
    ):
        warning = Text(" ▲ " + words + " ▲ ", style="bold reverse")
        if warning.cell_len + title.cell_len <= width:
            break
    room = width - warning.cell_len
    if title.cell_len > room:
        plain = title.plain
        cut = plain[: max(room - 1, 0)]
        if " " in cut.strip():
            cut = cut[: cut.rstrip().rfind(" ")].rstrip(" :,;·—-")
        title = Text(cut + "…", style="bold")
    line = warning.append_text(title)
    line.no_wrap, line.overflow = True, "ellipsis"
    return line


class Banners(Static):
    """The training banner and the read-only notice, on every screen."""

    def on_mount(self) -> None:
        self.refresh_banners()

    def on_resize(self) -> None:
        self.refresh_banners()

    def refresh_banners(self) -> None:
        info = getattr(self.app, "backend", None) and self.app.backend.info
        parts: list[Text] = []
        self.set_class(False, "-training")
        if info is not None and info.training:
            self.set_class(True, "-training")
            from helpdesk.base import clock
            from helpdesk.tui_api.views import localise
            from screens.training import banner_text

            title, line = banner_text(info.scenario, localise(clock.now(), info.scenario_tz))
            parts += [banner_title(title, self.size.width or self.app.size.width), line]
        if info is not None and info.read_only:
            parts.append(assemble(("! ", "bold"), info.notice))
        self.display = bool(parts)
        self.update(Text("\n").join(parts))


class BaseScreen(Translated, Screen):
    """A full screen of the app."""

    TOP_TITLE = ""

    @property
    def backend(self) -> "Backend":
        return self.app.backend  # type: ignore[attr-defined]

    @property
    def info(self) -> "Info | None":
        return self.backend.info

    def compose_top(self) -> ComposeResult:
        yield TopBar(self.top_title(), id="topbar")
        yield Banners(id="banners")

    def top_title(self) -> Text | str:
        return _(self.TOP_TITLE) if self.TOP_TITLE else ""

    def refresh_chrome(self) -> None:
        for bar in self.query(TopBar):
            bar.refresh_bar()
        for b in self.query(Banners):
            b.refresh_banners()

    _stale = False  # the database changed while the screen was covered

    @property
    def shown(self) -> bool:
        """On top, or seen under dialogs only (Textual's ``is_current`` also counts the
        full screen right under the top one)."""
        stack = self.app.screen_stack
        if self not in stack:
            return False
        return all(isinstance(s, ModalScreen) for s in stack[stack.index(self) + 1 :])

    def data_changed(self) -> None:
        """The database changed (another process, or this one): a screen in sight reloads
        now; a covered one when it is shown again, so that work nobody sees does not slow
        down the screen being worked on."""
        if self.shown:
            self.refresh_data()
        else:
            self._stale = True

    def refresh_data(self) -> None:
        """Reload what the screen shows from the database."""

    def on_screen_resume(self) -> None:
        self.refresh_chrome()
        if self._stale:
            self._stale = False
            self.refresh_data()


class BaseModal(Translated, ModalScreen):
    @property
    def backend(self) -> "Backend":
        return self.app.backend  # type: ignore[attr-defined]
