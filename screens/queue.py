"""A queue: its tickets as a virtual list, sorted, filtered and searched incrementally."""

from __future__ import annotations

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Input, Static

from helpdesk.base.i18n import _, n_
from helpdesk.storage.filters import TicketFilter
from screens.base import N_, BaseScreen, SafeInput
from screens.keybar import KeyBar
from screens.modals import kind_label
from screens.safe import assemble
from screens.ticket_list import TicketList, header_text, provider_width

SORTS = ("due", "age", "state")


def sort_label(order: str) -> str:
    return {"due": _("due date"), "age": _("age"), "state": _("state"), "new": _("newest")}.get(
        order, order
    )


class QueueScreen(BaseScreen):
    BINDINGS = [
        Binding("escape", "back", N_("Back"), id="queue.back"),
        Binding("slash", "search", N_("Search"), key_display="/", id="queue.search"),
        Binding("s", "sort", N_("Sort"), id="queue.sort"),
        Binding("p", "provider", N_("Provider"), show=False, id="queue.provider"),
        Binding("a", "assignee", N_("Assignee"), show=False, id="queue.assignee"),
        Binding("f", "filter", N_("Filter"), id="queue.filter"),
        Binding("x", "clear", N_("Clear filters"), show=False, id="queue.clear"),
        Binding("r", "reload", N_("Reload"), show=False, id="queue.reload"),
    ]

    def __init__(
        self, queue: str | None, *, flt: TicketFilter | None = None, order: str = "due"
    ) -> None:
        super().__init__()
        self.queue = queue
        self.flt = flt or TicketFilter(queue=queue)
        self.order = order
        self._search_timer = None

    def top_title(self) -> Text:
        info = self.info
        title = (
            info.queue_titles.get(self.queue, self.queue)
            if (info and self.queue)
            else (self.queue or _("All queues"))
        )
        return Text(title or "")

    def compose(self) -> ComposeResult:
        yield from self.compose_top()
        yield SafeInput(
            placeholder=_("Search subjects, requesters, accounts, notes  (/)"), id="search"
        )
        yield Static(id="status")
        yield Static(id="list-header")
        yield TicketList(id="tickets")
        yield KeyBar()

    def on_mount(self) -> None:
        self.list.all_queues = self.queue is None
        self.query_one(TicketList).focus()
        self._show()

    @property
    def list(self) -> TicketList:
        return self.query_one(TicketList)

    def _show(self, keep_cursor: bool = False) -> None:
        self.list.show(self.flt, self.order, keep_cursor=keep_cursor)
        self._status()

    def _status(self) -> None:
        flt = self.flt
        lst = self.list
        total = Text(
            n_("{n} ticket", "{n} tickets", lst.total).format(n=f"{lst.total:,}".replace(",", " "))
            if lst.counted
            else _("counting…"),
            style="bold",
        )
        me = self.info.actor.login if self.info and self.info.actor else None
        assignee = (
            _("all") if not flt.assignee else (_("nobody") if flt.assignee == "-" else flt.assignee)
        )
        if me and flt.assignee == me:
            assignee = _("me")
        state = _("any")
        if flt.state:
            labels = dict(self.info.queue_states.get(self.queue or "", [])) if self.info else {}
            state = labels.get(flt.state, flt.state)
        parts: list = [total, "  ", (_("Sort") + ": ", "dim"), (sort_label(self.order), "bold")]
        # Only the filters that narrow the view are named; "f" changes them.
        if flt.policy:
            provider = self.info.provider(flt.policy) if self.info else flt.policy
            parts += ["  ", (_("Provider") + ": ", "dim"), (provider, "bold")]
        if flt.kind != "active":
            parts += ["  ", (_("Show") + ": ", "dim"), (kind_label(flt.kind), "bold")]
        if flt.state:
            parts += ["  ", (_("State") + ": ", "dim"), (state, "bold")]
        if flt.assignee:
            parts += ["  ", (_("Assignee") + ": ", "dim"), (assignee, "bold")]
        if flt.text:
            parts += ["  ", (_("Search") + ": ", "dim"), (flt.text, "bold")]
        if not (flt.policy or flt.state or flt.assignee or flt.kind != "active" or flt.text):
            parts += ["  ", (_("open and waiting") + " · " + _("f: filter"), "dim")]
        self.query_one("#status", Static).update(assemble(*parts, one_line=True))

    def on_resize(self) -> None:
        self.query_one("#list-header", Static).update(
            header_text(
                self.list.scrollable_content_region.width or self.size.width,
                self.queue is None,
                provider_width(self.info),
            )
        )

    def refresh_data(self) -> None:
        self._show(keep_cursor=True)

    @on(TicketList.Counted)
    def _counted(self, event: TicketList.Counted) -> None:
        self._status()
        self.query_one("#list-header", Static).update(
            header_text(
                self.list.scrollable_content_region.width or self.size.width,
                self.queue is None,
                provider_width(self.info),
            )
        )

    @on(TicketList.Failed)
    def _failed(self, event: TicketList.Failed) -> None:
        self.notify(
            event.error, title=_("Could not read the queue"), severity="error", markup=False
        )

    @on(TicketList.Opened)
    def _opened(self, event: TicketList.Opened) -> None:
        self.app.open_ticket(event.ticket_id)  # type: ignore[attr-defined]

    # --- search --------------------------------------------------------------------------

    @on(Input.Changed, "#search")
    def _typed(self, event: Input.Changed) -> None:
        if self._search_timer is not None:
            self._search_timer.stop()
        self._search_timer = self.set_timer(0.15, self._apply_search)

    def _apply_search(self) -> None:
        self._search_timer = None
        text = self.query_one("#search", Input).value.strip()
        if text != self.flt.text:
            self.flt = self.flt.with_(text=text)
            self._show()

    @on(Input.Submitted, "#search")
    def _submitted(self, event: Input.Submitted) -> None:
        if self._search_timer is not None:
            self._search_timer.stop()
        self._apply_search()
        self.list.focus()

    # --- actions -------------------------------------------------------------------------

    def action_back(self) -> None:
        if self.query_one("#search", Input).has_focus:
            self.list.focus()
            return
        self.app.pop_screen()

    def action_search(self) -> None:
        self.query_one("#search", Input).focus()

    def action_sort(self) -> None:
        self.order = (
            SORTS[(SORTS.index(self.order) + 1) % len(SORTS)] if self.order in SORTS else SORTS[0]
        )
        self._show()

    def action_provider(self) -> None:
        keys = [None] + (sorted(self.info.policies) if self.info else [])
        i = keys.index(self.flt.policy) if self.flt.policy in keys else 0
        self.flt = self.flt.with_(policy=keys[(i + 1) % len(keys)], state=None)
        self._show()

    def action_assignee(self) -> None:
        me = self.info.actor.login if self.info and self.info.actor else None
        cycle = [None, me, "-"] if me else [None, "-"]
        i = cycle.index(self.flt.assignee) if self.flt.assignee in cycle else 0
        self.flt = self.flt.with_(assignee=cycle[(i + 1) % len(cycle)])
        self._show()

    def action_clear(self) -> None:
        self.flt = TicketFilter(queue=self.queue)
        self.query_one("#search", Input).value = ""
        self._show()

    def action_reload(self) -> None:
        self._show(keep_cursor=True)

    def action_filter(self) -> None:
        from screens.modals import FilterScreen

        def done(flt: TicketFilter | None) -> None:
            if flt is not None:
                self.flt = flt
                self._show()

        self.app.push_screen(FilterScreen(self.flt, self.queue), done)
