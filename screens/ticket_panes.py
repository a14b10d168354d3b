"""The panes of the ticket screen: each a scrolling region under the actions, one shown at
a time, named in a bar that shows which one is shown and whether it has the keys.

A pane is declared by a :class:`Pane`: its id, its label (a msgid) and either ``text`` (a
function from the screen and the ticket's view to a ``Text``: a :class:`TextPane` shows
it) or ``widget`` (a function building a widget of its own, for a pane with its own
inputs: the conversation and its composer). A widget pane is told of each new view of
the ticket through its ``show_ticket(view)`` method, if it has one. ``TicketScreen.PANES``
lists them in order; add one there and the bar, the keys (Tab, ← →, ``[`` ``]``) and the
focus follow.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from rich.text import Text
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widget import Widget
from textual.widgets import Static

from helpdesk.base.i18n import _
from screens.base import N_, Translated

if TYPE_CHECKING:
    from textual.screen import Screen as TicketScreen  # screens.ticket.TicketScreen


@dataclass(frozen=True)
class Pane:
    id: str
    label: str  # a msgid, shown translated
    text: Callable[["TicketScreen", dict], Text] | None = None
    widget: Callable[[], Widget] | None = None
    shown: Callable[["TicketScreen", dict], bool] | None = None  # None: always

    def visible(self, screen: "TicketScreen", view: dict | None) -> bool:
        return self.shown is None or view is None or self.shown(screen, view)


class TextPane(Translated, VerticalScroll, can_focus=True):
    """A pane of text: scrolls with the arrows, PageUp/PageDown, Home/End; ← → show the
    pane before or after. Reaching the end says so to the screen (history pages in)."""

    BINDINGS = [
        Binding("left", "screen.pane(-1)", N_("Previous pane"), show=False, id="pane.previous"),
        Binding("right", "screen.pane(1)", N_("Next pane"), show=False, id="pane.next"),
    ]

    DEFAULT_CSS = """
    TextPane { height: 1fr; padding: 0 1; background: $surface; }
    TextPane:focus { background: $boost; }
    TextPane > Static { width: 1fr; }
    """

    def __init__(self, pane_id: str, **kwargs) -> None:
        super().__init__(id=f"pane-{pane_id}", **kwargs)
        self.pane_id = pane_id

    def compose(self):
        yield Static(classes="pane-text")

    def update(self, text: Text) -> None:
        self.query_one(".pane-text", Static).update(text)

    def watch_scroll_y(self, old: float, new: float) -> None:
        super().watch_scroll_y(old, new)
        if self.max_scroll_y and new >= self.max_scroll_y:
            reached = getattr(self.screen, "pane_end_reached", None)
            if reached is not None:
                reached(self.pane_id)


class PaneBar(Static):
    """One line: the panes by name, the shown one marked; ▸ when it has the keys."""

    DEFAULT_CSS = """
    PaneBar { height: 1; padding: 0 1; background: $panel; text-wrap: nowrap; text-overflow: ellipsis; }
    """

    def show_panes(self, panes: list[Pane], current: str, focused: bool) -> None:
        out = Text()
        for i, pane in enumerate(panes):
            if i:
                out.append(" │ ", style="dim")
            name = _(pane.label)
            if pane.id == current:
                out.append(
                    ("▸ " if focused else "• ") + name,
                    style="bold reverse" if focused else "bold underline",
                )
            else:
                out.append(name, style="dim")
        out.append("  " + _("(Tab, ← →)"), style="dim")
        self.update(out)
