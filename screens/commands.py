"""The command palette (Ctrl+P): queues, tickets (by number or full-text search) and the
actions of the ticket on screen. Ticket subjects are untrusted: they are shown as plain
``Content``, never through the palette's markup-reading highlighter."""

from __future__ import annotations

import asyncio
from functools import partial

from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.content import Content

from helpdesk.base.i18n import _
from helpdesk.tui_api.views import QUEUES
from screens.safe import scrub


class HelpdeskCommands(Provider):
    def _commands(self) -> list[tuple[str, object, str]]:
        app = self.app
        info = app.backend.info  # type: ignore[attr-defined]
        titles = info.queue_titles if info else {q: q for q in QUEUES}
        out: list[tuple[str, object, str]] = [
            (_("Dashboard"), app.action_dashboard, _("the queues, my tickets, what is due")),  # type: ignore[attr-defined]
            (_("All tickets"), partial(app.open_queue, None), ""),  # type: ignore[attr-defined]
            (_("Go to ticket number…"), app.action_goto, ""),  # type: ignore[attr-defined]
            (_("Keys"), app.action_keys, _("every key and its id for keymap.toml")),  # type: ignore[attr-defined]
        ]
        for q in QUEUES:
            out.append(
                (_("Queue: {title}").format(title=titles.get(q, q)), partial(app.open_queue, q), "")
            )  # type: ignore[attr-defined]
        if info and info.training and not info.read_only:
            from screens.training import CLOCK_STEPS

            for _key, step, label in CLOCK_STEPS:
                out.append(
                    (
                        _("Training clock: {label}").format(label=_(label)),
                        partial(app.action_move_clock, step),
                        _("then sweep runs"),
                    )
                )  # type: ignore[attr-defined]
            out.append(
                (
                    _("Training: this scenario again from its start"),
                    partial(app.action_start_scenario, ""),
                    "",
                )
            )  # type: ignore[attr-defined]
            for sc in self._scenarios():
                out.append(
                    (
                        _("Training scenario: {title}").format(title=sc["title"]),
                        partial(app.action_start_scenario, sc["key"]),
                        sc["key"],
                    )
                )  # type: ignore[attr-defined]
        screen = self.screen
        from screens.queue import QueueScreen
        from screens.ticket import TicketScreen

        if isinstance(screen, TicketScreen) and screen.view is not None:
            for a in screen.view["actions"]:
                label = _("Action: {label}").format(label=a["label"])
                if not a["allowed"]:
                    label += " " + _("(blocked)")
                out.append((label, partial(screen.start, a), a.get("citation", "")))
            out.append((_("Show or hide the article's text"), screen.action_citation, ""))
            out.append((_("Take the ticket or give it back"), screen.action_take, ""))
            out.append((_("Reply to the requester"), partial(screen.action_compose, "reply"), ""))
            out.append((_("Add an internal note"), partial(screen.action_compose, "note"), ""))
            out.append(
                (
                    _("Ask the requester for what is missing"),
                    partial(screen.action_compose, "ask"),
                    "",
                )
            )
            out.append((_("Set the account it is about"), screen.action_set_account, ""))
            out.append((_("Merge into another ticket"), screen.action_merge, ""))
            if screen.walk is not None:
                out.append((_("Show or hide the walkthrough"), screen.action_walkthrough, ""))
        if isinstance(screen, QueueScreen):
            out.append((_("Sort: next order"), screen.action_sort, _("due date, age, state")))
            out.append((_("Filter…"), screen.action_filter, _("provider, state, assignee")))
            out.append(
                (_("Search"), screen.action_search, _("subjects, requesters, accounts, notes"))
            )
            out.append((_("Clear filters"), screen.action_clear, ""))
        return out

    def _scenarios(self) -> list[dict]:
        cached = getattr(self.app, "_scenario_list", None)
        if cached is None:
            try:
                cached = self.app.backend.scenarios()  # type: ignore[attr-defined]
            except Exception:  # noqa: BLE001 - the palette never fails
                cached = []
            self.app._scenario_list = cached  # type: ignore[attr-defined]
        return cached

    async def discover(self) -> Hits:
        for name, callback, help_text in self._commands():
            yield DiscoveryHit(Content(name), callback, text=name, help=None)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for name, callback, help_text in self._commands():
            score = matcher.match(name)
            if score > 0:
                yield Hit(
                    score,
                    matcher.highlight(Content(name).plain) if "[" not in name else Content(name),
                    callback,
                    text=name,
                )
        text = query.strip()
        if not text:
            return
        number = text.lstrip("#")
        if number.isdigit():
            yield Hit(
                1.0,
                Content(_("Open ticket #{n}").format(n=number)),
                partial(self.app.open_ticket, int(number)),
                text=text,
            )  # type: ignore[attr-defined]
        if len(text) < 3:
            return
        try:
            rows = await asyncio.to_thread(self.app.backend.find, text, 8)  # type: ignore[attr-defined]
        except Exception:  # noqa: BLE001 - the palette never fails on a search
            return
        for r in rows:
            info = self.app.backend.info  # type: ignore[attr-defined]
            provider = info.provider(r.policy) if info else r.policy
            shown = Content(scrub(f"#{r.id}  {provider} · {r.subject or r.account or ''}")[:120])
            yield Hit(0.5, shown, partial(self.app.open_ticket, r.id), text=f"#{r.id}")  # type: ignore[attr-defined]
