"""The key bar at the bottom of every screen: the keys that work here, on one line.

Textual's Footer builds a widget per key and recomposes them whenever the bindings change
(a focus change, a screen shown again), which costs more than the rest of a ticket screen
together. The key bar renders the same bindings as one line of text: it is one widget,
restyled once, and redrawn only when the keys it shows change. A click on a key presses it.
"""

from __future__ import annotations

from rich.style import Style
from rich.text import Text
from textual import events
from textual.widgets import Static


_PLAIN = Style()
_DIM = Style(dim=True)


class KeyBar(Static):
    """The shown bindings of the focused widget, its screen and the app (in that order),
    one entry per action; disabled ones dimmed; the command palette's key on the right."""

    ALLOW_SELECT = False
    COMPONENT_CLASSES = {"keybar--key", "keybar--description"}

    DEFAULT_CSS = """
    KeyBar {
        dock: bottom;
        height: 1;
        width: 1fr;
        text-wrap: nowrap;
        text-overflow: ellipsis;
        color: $footer-foreground;
        background: $footer-background;
    }
    KeyBar > .keybar--key {
        color: $footer-key-foreground;
        background: $footer-key-background;
        text-style: bold;
    }
    KeyBar > .keybar--description {
        color: $footer-description-foreground;
        background: $footer-description-background;
    }
    """

    def __init__(self, **kwargs) -> None:
        super().__init__("", **kwargs)
        self._shown: tuple | None = None
        self._spans: list[tuple[int, int, str]] = []  # (start, end, key) of each entry, for clicks

    def on_mount(self) -> None:
        self.screen.bindings_updated_signal.subscribe(self, self._bindings_changed)
        self.refresh_keys()

    def on_unmount(self) -> None:
        self.screen.bindings_updated_signal.unsubscribe(self)

    def _bindings_changed(self, screen) -> None:
        if self.is_attached and screen is self.screen:
            self.refresh_keys()

    def on_resize(self) -> None:
        self._shown = None
        self.refresh_keys()

    def entries(self) -> tuple[list[tuple[str, str, str, bool]], tuple[str, str, str, bool] | None]:
        """(key, key as shown, label, enabled) of each key shown, and of the palette's key."""
        app = self.app
        active = self.screen.active_bindings
        out: list[tuple[str, str, str, bool]] = []
        seen: set[str] = set()
        for _ns, binding, enabled, _tooltip in active.values():
            if not binding.show or binding.action in seen:
                continue
            seen.add(binding.action)
            out.append((binding.key, app.get_key_display(binding), binding.description, enabled))
        found = active.get(app.COMMAND_PALETTE_BINDING) if app.ENABLE_COMMAND_PALETTE else None
        palette = None
        if found is not None:
            _ns, binding, enabled, _tooltip = found
            palette = (binding.key, app.get_key_display(binding), binding.description, enabled)
        return out, palette

    def refresh_keys(self) -> None:
        keys, palette = self.entries()
        width = self.size.width
        shown = (tuple(keys), palette, width, self.app.theme)
        if shown == self._shown:
            return
        self._shown = shown
        key_style = self.get_component_rich_style("keybar--key")
        label_style = self.get_component_rich_style("keybar--description")
        text = Text(no_wrap=True, overflow="ellipsis")
        spans: list[tuple[int, int, str]] = []
        for key, display, label, enabled in keys:
            start = text.cell_len
            text.append(f" {display} ", key_style + (_DIM if not enabled else _PLAIN))
            text.append(f"{label} ", label_style + (_DIM if not enabled else _PLAIN))
            spans.append((start, text.cell_len, key))
        if palette is not None and width:
            key, display, label, enabled = palette
            right = Text.assemble((f" {display} ", key_style), (f"{label} ", label_style))
            room = width - right.cell_len
            if text.cell_len < room:
                text.append(" " * (room - text.cell_len))
                spans.append((room, width, key))
                text.append_text(right)
        self._spans = spans
        self.update(text)

    def on_click(self, event: events.Click) -> None:
        for start, end, key in self._spans:
            if start <= event.x < end:
                event.stop()
                self.app.simulate_key(key)
                return
