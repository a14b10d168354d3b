"""A virtual list of tickets, in the manner of toolong's log view.

Only the rows on screen are fetched and rendered: the list knows how many rows its filter
matches (one COUNT), asks for pages of ``PAGE`` rows (LIMIT/OFFSET pushed into SQL, in a
thread worker) as they scroll into view, keeps the most recent pages in an LRU cache, and
renders each visible line with ``render_line``. A queue of a million tickets costs what a
screenful costs.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from rich.cells import cell_len, set_cell_size
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import work
from textual.binding import Binding
from textual.cache import LRUCache
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.worker import get_current_worker

from helpdesk.base import clock
from helpdesk.base.i18n import _
from helpdesk.storage.filters import Row, TicketFilter
from helpdesk.base.labels import label
from helpdesk.tui_api.views import localise
from screens.base import N_, Translated
from screens.safe import fit, scrub

if TYPE_CHECKING:
    from helpdesk.tui_api.backend import Backend

PAGE = 64
PAGES_KEPT = 32


def provider_width(info) -> int:
    """How wide the provider's column is below 100 columns: the longest of the packs' short
    names (at most 13, ``helpdesk.policy.packs.SHORT_NAME_MAX``), at least 9."""
    names = list((info.short_names or {}).values()) if info is not None else []
    return max(9, min(13, max((cell_len(n) for n in names), default=9)))


def columns(width: int, all_queues: bool = False, provider: int = 9) -> list[tuple[str, int]]:
    """(name, width) of each column for a list ``width`` cells wide; the subject takes the rest.
    A list of every queue shows each row's queue and assignee (below 100 columns, instead
    of the provider, which the ticket shows). ``provider``: the provider column's width
    below 100 columns (:func:`provider_width`), so that a short name is whole."""
    if width < 100:
        policy, state, account = provider, 12, 10
    elif width < 140:
        policy, state, account = 13, 16, 14
    else:
        policy, state, account = 14, 26, 18
    cols = [("mark", 1), ("id", 7), ("flag", 1), ("due", 11)]
    if all_queues:
        cols.append(("queue", 11))
        if width >= 100:
            cols.append(("policy", policy))
        cols += [
            ("state", 10 if width < 100 else state),
            ("assignee", 8 if width < 100 else 10),
            ("account", 9 if width < 100 else account),
        ]
    else:
        cols += [("policy", policy), ("state", state), ("account", account)]
    used = sum(w + 1 for _n, w in cols)
    cols.append(("subject", max(8, width - used)))
    return cols


def header_text(width: int, all_queues: bool = False, provider: int = 9) -> Text:
    names = {
        "mark": "",
        "id": _("#"),
        "flag": "",
        "due": _("Due"),
        "queue": _("Queue"),
        "policy": _("Provider"),
        "state": _("State"),
        "assignee": _("Assignee"),
        "account": _("Account"),
        "subject": _("Subject"),
    }
    out = Text()
    for name, w in columns(width, all_queues, provider):
        out.append_text(fit(names[name], w))
        out.append(" ")
    out.truncate(width)
    return out


class TicketList(Translated, ScrollView, can_focus=True):
    """The rows of one queue view. Set the view with :meth:`show`."""

    BINDINGS = [
        Binding("up,k", "cursor_up", N_("Up"), show=False, id="list.up"),
        Binding("down,j", "cursor_down", N_("Down"), show=False, id="list.down"),
        Binding("pageup", "page_up", N_("Page up"), show=False, id="list.page_up"),
        Binding("pagedown", "page_down", N_("Page down"), show=False, id="list.page_down"),
        Binding("home", "first", N_("First"), show=False, id="list.first"),
        Binding("end", "last", N_("Last"), show=False, id="list.last"),
        Binding("enter", "open", N_("Open"), id="list.open"),
    ]

    COMPONENT_CLASSES = {
        "ticket-list--cursor",
        "ticket-list--overdue",
        "ticket-list--waiting",
        "ticket-list--done",
        "ticket-list--loading",
    }

    DEFAULT_CSS = """
    TicketList {
        height: 1fr;
        background: $surface;
        overflow-x: hidden;
    }
    TicketList > .ticket-list--cursor { background: $accent 40%; text-style: bold; }
    TicketList:focus > .ticket-list--cursor { background: $accent; color: $text; text-style: bold; }
    TicketList > .ticket-list--overdue { color: $error; text-style: bold; }
    TicketList > .ticket-list--waiting { color: $text-muted; }
    TicketList > .ticket-list--done { color: $text-disabled; }
    TicketList > .ticket-list--loading { color: $text-disabled; }
    """

    cursor: reactive[int] = reactive(0, always_update=True, repaint=False)

    class Opened(Message):
        def __init__(self, ticket_id: int) -> None:
            super().__init__()
            self.ticket_id = ticket_id

    class Counted(Message):
        def __init__(self, total: int) -> None:
            super().__init__()
            self.total = total

    class Failed(Message):
        def __init__(self, error: str) -> None:
            super().__init__()
            self.error = error

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.flt = TicketFilter()
        self.order = "due"
        self.total = 0
        self.counted = False
        self.generation = 0
        self.now: datetime = clock.now()
        self._pages: LRUCache[int, list[Row]] = LRUCache(PAGES_KEPT)
        self._lines: LRUCache[tuple, Strip] = LRUCache(512)
        self._cell_cache: LRUCache[tuple, tuple] = LRUCache(PAGE * PAGES_KEPT)
        self._style_key: tuple | None = None
        self._style_cache: dict[str, Style] = {}
        self._inflight: set[tuple[int, int]] = set()
        self._keep_id: int | None = None
        self.all_queues = False  # every queue in one list: show each row's queue and assignee

    @property
    def backend(self) -> "Backend":
        return self.app.backend  # type: ignore[attr-defined]

    # --- what to show --------------------------------------------------------------------

    def show(self, flt: TicketFilter, order: str, *, keep_cursor: bool = False) -> None:
        """Show another view (or the same one afresh): drops the caches and counts again."""
        self._keep_id = self.current_id() if keep_cursor else None
        self.flt, self.order = flt, order
        self.generation += 1
        self.now = clock.now()
        self._pages.clear()
        self._lines.clear()
        self._cell_cache.clear()
        self._inflight.clear()
        self.counted = False
        if not keep_cursor:
            self.cursor = 0
            self.scroll_to(y=0, animate=False, immediate=True)
        self._count(self.generation, flt)
        self._want(self.cursor // PAGE)
        self.refresh()

    @work(thread=True, exclusive=True, group="list-count", exit_on_error=False)
    def _count(self, generation: int, flt: TicketFilter) -> None:
        try:
            total = self.backend.count(flt, share=(id(self), generation))
        except Exception as exc:  # noqa: BLE001 - shown, never fatal
            self.app.call_from_thread(self.post_message, self.Failed(str(exc)))
            return
        if not get_current_worker().is_cancelled:
            self.app.call_from_thread(self._counted, generation, total)

    def _counted(self, generation: int, total: int) -> None:
        if generation != self.generation:
            return
        self.total = total
        self.counted = True
        self.virtual_size = Size(self.scrollable_content_region.width, total)
        if self.cursor >= total:
            self.cursor = max(0, total - 1)
        self._lines.clear()
        self.refresh()
        self.post_message(self.Counted(total))

    def _want(self, page_no: int) -> None:
        key = (self.generation, page_no)
        if page_no < 0 or page_no in self._pages or key in self._inflight:
            return
        if self.counted and page_no * PAGE >= self.total:
            return
        self._inflight.add(key)
        self._fetch(self.generation, page_no, self.flt, self.order)

    @work(thread=True, group="list-pages", exit_on_error=False)
    def _fetch(self, generation: int, page_no: int, flt: TicketFilter, order: str) -> None:
        try:
            rows = self.backend.page(flt, order, page_no * PAGE, PAGE, share=(id(self), generation))
        except Exception as exc:  # noqa: BLE001
            self.app.call_from_thread(self.post_message, self.Failed(str(exc)))
            rows = None
        self.app.call_from_thread(self._arrived, generation, page_no, rows)

    def _arrived(self, generation: int, page_no: int, rows: list[Row] | None) -> None:
        self._inflight.discard((generation, page_no))
        if generation != self.generation or rows is None:
            return
        self._pages[page_no] = rows
        if self._keep_id is not None:
            for i, r in enumerate(rows):
                if r.id == self._keep_id:
                    self.cursor = page_no * PAGE + i
                    self._keep_id = None
                    break
        self.refresh()

    # --- reading rows --------------------------------------------------------------------

    def row_at(self, index: int) -> Row | None:
        page = self._pages.get(index // PAGE)
        if page is None:
            return None
        i = index % PAGE
        return page[i] if i < len(page) else None

    def current_id(self) -> int | None:
        row = self.row_at(self.cursor)
        return row.id if row else None

    def loaded_rows(self) -> list[Row]:
        """The rows in memory now (for tests and the palette): never more than the cache."""
        out = []
        for page_no in sorted(self._pages.keys()):
            out += self._pages[page_no]
        return out

    # --- rendering -----------------------------------------------------------------------

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        index = scroll_y + y
        width = self.scrollable_content_region.width
        if index >= self.total or (not self.counted and index > 0):
            if index == 0 and not self.counted:
                return self._message(_("Loading…"), width)
            if index == 0 and self.counted and self.total == 0:
                return self._message(_("No ticket here."), width)
            return Strip.blank(width, self._styles()["base"])
        page_no = index // PAGE
        row = self.row_at(index)
        if row is None:
            self._want(page_no)
            return self._message("  …", width)
        # Fetch the next page early, so moving down never waits.
        if (index % PAGE) > PAGE - 2 * max(1, self.size.height):
            self._want(page_no + 1)
        selected = index == self.cursor
        key = (self.generation, index, width, selected, self.has_focus)
        strip = self._lines.get(key)
        if strip is None:
            strip = self._render_row(row, width, selected)
            self._lines[key] = strip
        return strip.crop(scroll_x, scroll_x + width)

    def _message(self, text: str, width: int) -> Strip:
        style = self.get_component_rich_style("ticket-list--loading")
        return Strip([Segment(text[:width], style)]).extend_cell_length(
            width, self._styles()["base"]
        )

    def _cells(self, row: Row) -> tuple[dict[str, str], bool, str]:
        """The text of each column of a row (cleaned once), whether it is overdue, its kind."""
        info = self.backend.info
        tz = info.policies.get(row.policy, ("", "Europe/Paris"))[1] if info else "Europe/Paris"
        overdue = row.due_at is not None and row.state_kind != "done" and row.due_at <= self.now
        me = info.actor.login if info and info.actor else None
        claimed = (
            row.claimed_by
            and row.claimed_by != me
            and row.claim_expires is not None
            and row.claim_expires > self.now
        )
        values = {
            "id": f"#{row.id}",
            "flag": "⚑" if claimed else ("@" if me and row.assignee == me else ""),
            "due": ("!" if overdue else " ")
            + (localise(row.due_at, tz, with_time=False) if row.due_at else "—"),
            "policy": scrub(info.provider(row.policy) if info else row.policy),
            "queue": label("queue-short", row.queue),
            "assignee": scrub(row.assignee or "—"),
            "state": scrub(info.state_label(row.workflow_id, row.state) if info else row.state),
            "account": scrub(row.account or row.requester or "—"),
            "subject": scrub(row.subject or "—"),
        }
        for k in ("policy", "queue", "assignee", "state", "account", "subject"):
            values[k] = " ".join(values[k].split())
        return values, overdue, row.state_kind

    def _styles(self) -> dict[str, Style]:
        key = (
            self.app.theme,
            self.has_focus,
            self.app.current_theme.dark if hasattr(self.app, "current_theme") else None,
        )
        if self._style_key != key:
            base = self.rich_style
            self._style_cache = {
                "base": base,
                "waiting": base + self.get_component_rich_style("ticket-list--waiting"),
                "done": base + self.get_component_rich_style("ticket-list--done"),
                "cursor": self.get_component_rich_style("ticket-list--cursor"),
                "overdue": self.get_component_rich_style("ticket-list--overdue"),
            }
            self._style_key = key
        return self._style_cache

    def _render_row(self, row: Row, width: int, selected: bool) -> Strip:
        cells = self._cell_cache.get((self.generation, row.id))
        if cells is None:
            cells = self._cells(row)
            self._cell_cache[(self.generation, row.id)] = cells
        values, overdue, kind = cells
        styles = self._styles()
        line_style = (
            styles.get(kind, styles["base"]) if kind in ("waiting", "done") else styles["base"]
        )
        if selected:
            line_style = line_style + styles["cursor"]
        segments = []
        for name, w in columns(width, self.all_queues, provider_width(self.backend.info)):
            value = "▸" if (name == "mark" and selected) else values.get(name, "")
            text = (
                set_cell_size(value, w)
                if cell_len(value) <= w
                else set_cell_size(value, w - 1) + "…"
            )
            style = line_style + styles["overdue"] if (name == "due" and overdue) else line_style
            segments.append(Segment(text, style))
            segments.append(Segment(" ", line_style))
        return Strip(segments).crop_extend(0, width, line_style)

    def on_resize(self) -> None:
        self._lines.clear()
        if self.counted:
            self.virtual_size = Size(self.scrollable_content_region.width, self.total)
            self._scroll_to_cursor()

    def on_focus(self) -> None:
        self.refresh()

    def on_blur(self) -> None:
        self.refresh()

    # --- moving ----------------------------------------------------------------------------

    def watch_cursor(self, old: int, new: int) -> None:
        top = int(self.scroll_offset.y)
        if self._scroll_to_cursor():
            self.refresh()
        else:
            for index in {old, new}:
                if top <= index < top + self.size.height:
                    self.refresh_line(index)

    def _scroll_to_cursor(self) -> bool:
        """Scroll so the cursor is on screen; True if the view moved."""
        height = self.rows_shown()
        top = int(self.scroll_offset.y)
        if self.cursor < top:
            self.scroll_to(y=self.cursor, animate=False, immediate=True)
            return True
        if self.cursor >= top + height:
            self.scroll_to(y=self.cursor - height + 1, animate=False, immediate=True)
            return True
        return False

    def _move(self, to: int) -> None:
        if self.total == 0:
            return
        self.cursor = max(0, min(self.total - 1, to))

    def action_cursor_up(self) -> None:
        self._move(self.cursor - 1)

    def action_cursor_down(self) -> None:
        self._move(self.cursor + 1)

    def rows_shown(self) -> int:
        """How many rows are on screen: the region inside the scrollbars."""
        return max(1, self.scrollable_content_region.height)

    def action_page_up(self) -> None:
        self._move(self.cursor - max(1, self.rows_shown() - 1))

    def action_page_down(self) -> None:
        self._move(self.cursor + max(1, self.rows_shown() - 1))

    def action_first(self) -> None:
        self._move(0)

    def action_last(self) -> None:
        self._move(self.total - 1)

    def action_open(self) -> None:
        tid = self.current_id()
        if tid is not None:
            self.post_message(self.Opened(tid))

    def on_click(self, event) -> None:
        index = int(self.scroll_offset.y) + event.y
        if 0 <= index < self.total:
            if index == self.cursor and event.chain >= 2:
                self.action_open()
            self.cursor = index
