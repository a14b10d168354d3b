"""The first screen: the queues with their counts, my tickets, what is due today and
what happened last."""

from __future__ import annotations

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option
from textual.worker import get_current_worker

from helpdesk.base.errors import HelpdeskError
from helpdesk.base.i18n import _, np_
from helpdesk.base.labels import label
from helpdesk.storage.filters import Row
from helpdesk.tui_api.views import QUEUES, Dashboard, localise
from screens.base import N_, BaseScreen
from screens.keybar import KeyBar
from screens.safe import assemble


def ticket_line(app, row: Row, now) -> Text:
    """One ticket on one line: number, due date, provider, state, subject (untrusted)."""
    info = app.backend.info
    tz = info.policies.get(row.policy, ("", "Europe/Paris"))[1] if info else "Europe/Paris"
    overdue = row.due_at is not None and row.due_at <= now
    label = info.state_label(row.workflow_id, row.state) if info else row.state
    due = localise(row.due_at, tz, with_time=False) if row.due_at else "—"
    return assemble(
        (f"#{row.id:<6}", "bold"),
        " ",
        (("!" if overdue else " ") + due, "bold" if overdue else ""),
        " ",
        (info.provider(row.policy) if info else row.policy, "dim"),
        " · ",
        label,
        " · ",
        row.subject or row.account or "—",
        one_line=True,
    )


def _figures(c: dict[str, int], *, short: bool) -> Text:
    """A queue's open, waiting and overdue counts; ``short`` labels for narrow screens."""
    if short:
        labels = (_("op."), _("wait."), _("late"))
    else:
        labels = (
            np_("count", "open", "open", c["open"]),
            np_("count", "waiting", "waiting", c["waiting"]),
            np_("count", "overdue", "overdue", c["overdue"]),
        )
    return assemble(
        (f"{c['open']:>6} ", "bold"),
        (labels[0], "dim"),
        "  ",
        (f"{c['waiting']:>5} ", "bold"),
        (labels[1], "dim"),
        "  ",
        (f"{c['overdue']:>5} ", "bold reverse" if c["overdue"] else "bold"),
        (labels[2], "dim"),
    )


class DashboardScreen(BaseScreen):
    TOP_TITLE = "Dashboard"

    BINDINGS = [
        Binding("1", "queue(0)", N_("Password resets"), show=False, id="dashboard.queue1"),
        Binding("2", "queue(1)", N_("Closures"), show=False, id="dashboard.queue2"),
        Binding("3", "queue(2)", N_("Abuse"), show=False, id="dashboard.queue3"),
        Binding("4", "queue(3)", N_("Mail reputation"), show=False, id="dashboard.queue4"),
        Binding("5", "queue(4)", N_("General"), show=False, id="dashboard.queue5"),
        Binding("t", "all_tickets", N_("All tickets"), id="dashboard.all"),
        Binding("r", "reload", N_("Reload"), show=False, id="dashboard.reload"),
        Binding("q", "app.quit", N_("Quit"), id="dashboard.quit"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.data: Dashboard | None = None
        self._started = False  # its first load was asked for

    def compose(self) -> ComposeResult:
        yield from self.compose_top()
        with Vertical(id="dash"):
            yield Static(Text(_("Queues"), style="bold"), classes="section")
            yield OptionList(id="queues", markup=False)
            yield OptionList(id="binding", markup=False)
            with Horizontal(id="dash-lists"):
                with Vertical(classes="half"):
                    yield Static(Text(_("My tickets"), style="bold"), classes="section")
                    yield OptionList(id="mine", markup=False)
                with Vertical(classes="half"):
                    yield Static(Text(_("Due today"), style="bold"), classes="section")
                    yield OptionList(id="due", markup=False)
            yield Static(Text(_("Recent activity"), style="bold"), classes="section")
            yield OptionList(id="recent", markup=False)
        yield KeyBar()

    def on_resize(self) -> None:
        self._fill_queues(self.data)

    def on_mount(self) -> None:
        self.query_one("#queues", OptionList).focus()
        self._fill_queues(None)
        # Painted first, loaded next: the screen and its keys are there at once, the
        # figures follow (the reads hold the interpreter lock the painting needs).
        self.call_after_refresh(self._start)

    def _start(self) -> None:
        if not self._started:
            self._started = True
            self.load()

    def on_screen_suspend(self) -> None:
        # Covered before its first paint (a key pressed at once): what the app learns at
        # start (``load_info``) is still needed by the screen on top.
        self._start()

    def refresh_data(self) -> None:
        self.load()

    def action_reload(self) -> None:
        self.load()

    @work(thread=True, exclusive=True, group="load", exit_on_error=False)
    def load(self) -> None:
        backend = self.backend
        try:
            first = backend.info is None
            if first:
                backend.load_info()
                self.app.call_from_thread(self.app.info_loaded)  # type: ignore[attr-defined]
            if not self.shown:
                # Covered already (a key pressed at once): its figures are read when it is
                # shown again, and meanwhile the screen on top has the database to itself.
                self.app.call_from_thread(self._covered)
                return
            data = backend.dashboard()
        except Exception as exc:  # noqa: BLE001 - e.g. a database from another version
            message = str(exc) if isinstance(exc, HelpdeskError) else f"{type(exc).__name__}: {exc}"
            if self.data is None:  # nothing to show at all: say why and leave (exit code 2)
                self.app.call_from_thread(self.app.fatal, message)  # type: ignore[attr-defined]
            else:  # a refresh failed: keep what is on screen
                self.app.call_from_thread(self.notify, message, severity="error", markup=False)
            return
        if not get_current_worker().is_cancelled:
            self.app.call_from_thread(self.show, data)

    def _covered(self) -> None:
        if self.shown:  # shown again meanwhile
            self.load()
        else:
            self._stale = True

    def show(self, data: Dashboard) -> None:
        self.data = data
        self._fill_queues(data)
        self._fill_binding(data)
        self._fill(
            self.query_one("#mine", OptionList),
            data.mine,
            _("Nothing assigned to you or open by you."),
            data,
        )
        self._fill(
            self.query_one("#due", OptionList), data.due_today, _("Nothing due today."), data
        )
        recent = self.query_one("#recent", OptionList)
        highlighted = recent.highlighted
        recent.clear_options()
        from helpdesk.base.labels import label

        for a in (
            data.actions
        ):  # failed or uncertain service actions, mails back on finished tickets: first
            line = assemble(("! ", "bold red"), (a["line"], "red"), one_line=True)
            key = a.get("key") or (f"t{a['ticket']}-a{a['id']}" if a["ticket"] else f"a{a['id']}")
            recent.add_option(Option(line, id=key))
        for e in data.recent:
            what = e.get("action_label") or label("event", e["action"])
            who = label("role", "system") if e["actor"] == "system" else e["actor"]
            line = assemble(
                (localise(e["at"], e.get("tz") or "Europe/Paris"), "dim"),
                " ",
                (who, "bold"),
                " ",
                what,
                (f" #{e['ticket']}" if e["ticket"] else ""),
                (f" → {e.get('to_label') or e['to']}" if e["to"] else ""),
                ("  " + e["note"]) if e["note"] else "",
                one_line=True,
            )
            recent.add_option(
                Option(line, id=f"t{e['ticket']}-{e['id']}" if e["ticket"] else f"e{e['id']}")
            )
        if not data.recent:
            recent.add_option(Option(Text(_("Nothing yet."), style="dim"), disabled=True))
        if highlighted is not None and highlighted < recent.option_count:
            recent.highlighted = highlighted

    def _fill_queues(self, data: Dashboard | None) -> None:
        ol = self.query_one("#queues", OptionList)
        highlighted = ol.highlighted
        ol.clear_options()
        titles = self.info.queue_titles if self.info else {}
        width = ol.scrollable_content_region.width or 78
        longest = max(len(titles.get(q, q)) for q in QUEUES)
        zero = {"open": 0, "waiting": 0, "overdue": 0}
        # Long labels when they fit beside the longest title (French titles at 80 columns
        # do not), the same for every row so that the columns line up.
        short = 2 + longest + 2 + _figures(zero, short=False).cell_len > width
        for i, q in enumerate(QUEUES, start=1):
            c = (data.counts.get(q) if data else None) or zero
            title = titles.get(q, q)
            figures = Text("…", style="dim") if data is None else _figures(c, short=short)
            # The figures keep their room; a title too long for what is left gives way.
            room = max(12, min(longest, width - 2 - _figures(zero, short=short).cell_len - 2))
            if len(title) > room:
                title = title[: room - 1] + "…"
            line = assemble(
                (f"{i} ", "bold"), (f"{title:<{room}}", ""), "  ", figures, one_line=True
            )
            ol.add_option(Option(line, id=q))
        ol.highlighted = highlighted if highlighted is not None else 0

    def _fill_binding(self, data: Dashboard) -> None:
        """The dates the providers' texts make binding (kept even when nobody acts), apart
        from the indicative targets: how many open tickets carry one, and the soonest,
        in its provider's zone. Enter opens that ticket."""
        ol = self.query_one("#binding", OptionList)
        ol.clear_options()
        total = sum(c.get("binding", 0) for c in data.counts.values())
        if not data.binding:
            ol.add_option(
                Option(Text(_("No date fixed by the texts ahead."), style="dim"), disabled=True)
            )
            return
        first = data.binding[0]
        info = self.info
        provider = info.provider(first["policy"]) if info else first["policy"]
        # At 80 columns the count, the soonest date, its ticket and its name fit; the
        # provider and the subject follow as far as the width allows.
        line = assemble(
            (_("Dates fixed by the texts: {n}").format(n=total), "bold"),
            " · ",
            (localise(first["at"], first["tz"], with_time=False), "bold"),
            f" #{first['ticket']} ",
            label("deadline", first["name"]),
            " · ",
            (provider, "dim"),
            " · ",
            first["subject"] or "—",
            one_line=True,
        )
        ol.add_option(Option(line, id=f"t{first['ticket']}"))
        ol.highlighted = 0

    def _fill(self, ol: OptionList, rows: list[Row], empty: str, data: Dashboard) -> None:
        highlighted = ol.highlighted
        ol.clear_options()
        for r in rows:
            ol.add_option(Option(ticket_line(self.app, r, data.now), id=f"t{r.id}"))
        if not rows:
            ol.add_option(Option(Text(empty, style="dim"), disabled=True))
        elif highlighted is not None and highlighted < ol.option_count:
            ol.highlighted = highlighted

    @on(OptionList.OptionSelected)
    def _selected(self, event: OptionList.OptionSelected) -> None:
        oid = event.option.id or ""
        if event.option_list.id == "queues":
            self.app.open_queue(oid)  # type: ignore[attr-defined]
        elif oid.startswith("t"):
            self.app.open_ticket(int(oid[1:].split("-")[0]))  # type: ignore[attr-defined]

    def action_queue(self, index: int) -> None:
        self.app.open_queue(QUEUES[index])  # type: ignore[attr-defined]

    def action_all_tickets(self) -> None:
        self.app.open_queue(None)  # type: ignore[attr-defined]
