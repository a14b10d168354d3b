"""One ticket: where it stands, its procedure as a checklist, the actions one key away
(and the blocked ones, with the rule and the article that block them), its history.

Taking an action: the form if it needs fields, a checklist or a note; then a dry run (the
action applied in a transaction that is rolled back) to show what it will do — mails,
dates, state, account status — and, if it sends mail or cannot be undone, a confirmation;
then the action for real, guarded by the ticket's version.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import ContentSwitcher, OptionList, Static
from textual.widgets.option_list import Option
from textual.worker import get_current_worker

from helpdesk.base import clock
from helpdesk.base.errors import Conflict, HelpdeskError, Refused
from helpdesk.base.i18n import _, n_, pick
from helpdesk.base.labels import choice, label
from helpdesk.base.labels import event as event_label
from helpdesk.base.labels import has as has_label
from helpdesk.base.labels import read_timer_note
from helpdesk.base.paths import template_subject
from helpdesk.tui_api.views import HISTORY, localise, parse_iso
from screens.base import N_, BaseScreen, TopBar
from screens.composer import AskValue, Composer
from screens.conversation import conversation_text
from screens.keybar import KeyBar
from screens.safe import assemble, plain
from screens.ticket_panes import Pane, PaneBar, TextPane

DIGITS = "123456789"
CLAIM_RENEW_SECONDS = 180


def _when(value: Any, tz: str) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        value = parse_iso(value)
    return localise(value, tz)


def _is_moment(value: str) -> bool:
    try:
        return parse_iso(value) is not None
    except (ValueError, TypeError):
        return False


class TicketScreen(BaseScreen):
    BINDINGS = [
        Binding("escape", "back", N_("Back"), id="ticket.back"),
        *[
            Binding(
                d,
                f"act({i})",
                N_("Run the action with this number"),
                show=False,
                id=f"ticket.action{d}",
            )
            for i, d in enumerate(DIGITS)
        ],
        Binding("c", "citation", N_("Article"), id="ticket.citation"),
        Binding("t", "take", N_("Take"), id="ticket.take"),
        Binding("d", "details", N_("Panes"), show=False, id="ticket.details"),
        Binding("[", "pane(-1)", N_("Previous pane"), show=False, id="ticket.pane_previous"),
        Binding("]", "pane(1)", N_("Next pane"), show=False, id="ticket.pane_next"),
        # ← → from the action list too (which uses ↑ ↓ only); a focused field or pane
        # that reads ← → itself still gets them first.
        Binding("left", "pane(-1)", N_("Previous pane"), show=False, id="ticket.pane_left"),
        Binding("right", "pane(1)", N_("Next pane"), show=False, id="ticket.pane_right"),
        Binding("r", "reload", N_("Reload"), show=False, id="ticket.reload"),
        Binding("w", "walkthrough", N_("Walkthrough"), id="ticket.walkthrough"),
        Binding("p", "play", N_("Play the step's role"), id="ticket.play"),
        Binding("m", "compose('reply')", N_("Reply"), id="ticket.reply"),
        Binding("n", "compose('note')", N_("Note"), id="ticket.note"),
        Binding("k", "compose('ask')", N_("Ask"), id="ticket.ask"),
        Binding("a", "set_account", N_("Account"), show=False, id="ticket.account"),
        Binding("j", "merge", N_("Merge"), show=False, id="ticket.merge"),
    ]

    #: The panes under the actions, in order (see ``screens.ticket_panes``).
    PANES: list[Pane] = []

    def __init__(self, ticket_id: int, preloaded: tuple[dict, dict | None] | None = None) -> None:
        super().__init__()
        self.switch_to(ticket_id, preloaded)

    def switch_to(self, ticket_id: int, preloaded: tuple[dict, dict | None] | None = None) -> None:
        """Show another ticket the next time the screen is shown: the app keeps one ticket
        screen and pushes it again, which skips building its widgets (most of the time it
        takes to open a ticket). ``preloaded``: (view, walkthrough) already read."""
        self.ticket_id = ticket_id
        self.preloaded = preloaded
        self.fresh = True  # not shown yet: done when the screen is next resumed
        self.holding = False  # shown, and claimed for the volunteer
        self.view: dict | None = None
        self.show_citation_text = False
        self.holder: tuple[str, datetime] | None = None
        self.last_inputs: dict[str, dict] = {}
        self.busy = False
        self.walk: dict | None = None  # the scenario's steps, on a training database
        self.own_step = False  # the next change shown is this volunteer's own step
        self.history_limit: int | None = (
            None  # events asked for (None: the backend's HISTORY); more page in at the end
        )
        self.loading_more = False

    def top_title(self) -> Text:
        return Text(f"#{self.ticket_id}")

    def compose(self) -> ComposeResult:
        yield from self.compose_top()
        yield Static(Text(_("Loading…"), style="dim"), id="summary")
        yield Static(id="claim")
        with Horizontal(id="ticket-body"):
            with Vertical(id="actions-pane"):
                yield Static(id="actions-title", classes="section")
                yield OptionList(id="actions", markup=False)
                yield Static(id="citation")
            with Vertical(id="details"):
                yield PaneBar(id="pane-bar")
                with ContentSwitcher(id="panes", initial=f"pane-{self.PANES[0].id}"):
                    for pane in self.PANES:
                        if pane.widget is not None:
                            widget = pane.widget()
                            widget.id = f"pane-{pane.id}"
                            yield widget
                        else:
                            yield TextPane(pane.id)
        yield KeyBar()

    # --- panes -------------------------------------------------------------------------------

    def visible_panes(self) -> list[Pane]:
        return [p for p in self.PANES if p.visible(self, self.view)]

    @property
    def current_pane(self) -> str:
        current = self.query_one("#panes", ContentSwitcher).current or ""
        return current.removeprefix("pane-")

    def pane_widget(self, pane_id: str | None = None):
        return self.query_one(f"#pane-{pane_id or self.current_pane}")

    def show_pane(self, pane_id: str, *, focus: bool | None = None) -> None:
        """Show a pane; ``focus``: give it the keys (None: keep them where they are)."""
        switcher = self.query_one("#panes", ContentSwitcher)
        had_focus = self._pane_has_focus()
        switcher.current = f"pane-{pane_id}"
        if focus or (focus is None and had_focus):
            self.pane_widget(pane_id).focus()
        self._show_pane_bar()

    def _pane_has_focus(self) -> bool:
        focused = self.focused
        switcher = self.query_one("#panes", ContentSwitcher)
        return focused is not None and (focused is switcher or switcher in focused.ancestors)

    def action_pane(self, step: int) -> None:
        panes = self.visible_panes()
        ids = [p.id for p in panes]
        current = self.current_pane
        i = ids.index(current) if current in ids else 0
        self.show_pane(ids[(i + step) % len(ids)])

    def _show_pane_bar(self) -> None:
        focused = self._pane_has_focus()
        self.query_one("#pane-bar", PaneBar).show_panes(
            self.visible_panes(), self.current_pane, focused
        )
        title = Text(
            ("▸ " if not focused else "  ") + _("Actions"), style="bold" if not focused else "dim"
        )
        self.query_one("#actions-title", Static).update(title)

    def on_descendant_focus(self) -> None:
        self._show_pane_bar()

    def on_descendant_blur(self) -> None:
        self.call_after_refresh(self._show_pane_bar)

    def pane_end_reached(self, pane_id: str) -> None:
        """A pane was scrolled to its end: the history pages in its earlier events."""
        v = self.view
        if (
            pane_id == "history"
            and v
            and not self.loading_more
            and v["events_total"] > len(v["events"])
        ):
            self.loading_more = True
            self.history_limit = len(v["events"]) + HISTORY
            self.load()

    def _fill_panes(self, view: dict) -> None:
        for pane in self.PANES:
            widget = self.pane_widget(pane.id)
            if pane.text is not None:
                widget.update(pane.text(self, view))
            elif hasattr(widget, "show_ticket"):
                widget.show_ticket(view)
        if self.current_pane not in [p.id for p in self.visible_panes()]:
            self.show_pane(self.visible_panes()[0].id)
        self._show_pane_bar()

    def on_mount(self) -> None:
        self._layout()
        self._renew = self.set_interval(CLAIM_RENEW_SECONDS, self.claim, pause=True)
        self._opened()

    def _opened(self) -> None:
        """Show the ticket set by :meth:`switch_to` (once; a modal closing resumes the
        screen too, with the same ticket)."""
        if not self.fresh or not self.is_mounted:
            return
        self.fresh = False
        self.first_show = True
        self.history_limit = None
        self.holding = True
        self.query_one("#topbar", TopBar).set_title(self.top_title())
        self.query_one("#claim").display = False
        actions = self.query_one("#actions", OptionList)
        actions.highlighted = None
        actions.focus()
        self.show_pane(self.PANES[0].id, focus=False)
        for pane in self.PANES:
            self.pane_widget(pane.id).scroll_home(animate=False)
        if self.preloaded is not None:
            view, walk = self.preloaded
            self.preloaded = None
            self.show(view, walk)
        else:
            self.query_one("#summary", Static).update(Text(_("Loading…"), style="dim"))
            for pane in self.PANES:
                if pane.text is not None:
                    self.pane_widget(pane.id).update(Text(""))
            self.query_one("#citation", Static).update("")
            actions.clear_options()
            self.load()
        # Claimed once the ticket is on screen: the claim is a write, and its thread would
        # slow the first paint down.
        self.call_after_refresh(self.claim)
        self._renew.reset()
        self._renew.resume()

    def on_screen_resume(self) -> None:
        super().on_screen_resume()
        if not self.fresh and not self.holding and self.view is not None:
            # Back on this ticket after another one covered it: claim it again.
            self.holding = True
            self.claim()
            self._renew.reset()
            self._renew.resume()
        self._opened()

    def on_screen_suspend(self) -> None:
        # Left, or covered by another ticket (``g`` from a ticket): let it go. A form or a
        # dialog over this ticket keeps it.
        from textual.screen import ModalScreen

        if self not in self.app.screen_stack or not isinstance(
            self.app.screen_stack[-1], ModalScreen
        ):
            self._left()

    def on_unmount(self) -> None:
        self._left()

    def _left(self) -> None:
        if not self.holding:
            return
        self.holding = False
        self._renew.pause()
        self.app.release_claim(self.ticket_id)  # type: ignore[attr-defined]

    def on_resize(self) -> None:
        self._layout()

    def _layout(self) -> None:
        self.set_class(self.size.width >= 110, "-wide")

    def refresh_data(self) -> None:
        self.load()

    def action_reload(self) -> None:
        self.load()

    # --- loading ---------------------------------------------------------------------------

    @work(thread=True, exclusive=True, group="load", exit_on_error=False)
    def load(self) -> None:
        try:
            view = self.backend.ticket(self.ticket_id, self.history_limit)
            walk = self.backend.walkthrough(self.ticket_id)
        except HelpdeskError as exc:
            self.app.call_from_thread(self._missing, str(exc))
            return
        except Exception as exc:  # noqa: BLE001 - shown, never a silent "Loading…"
            self.app.call_from_thread(self._missing, f"{type(exc).__name__}: {exc}")
            return
        if not get_current_worker().is_cancelled:
            self.app.call_from_thread(self.show, view, walk)

    def _missing(self, message: str) -> None:
        self.notify(message, severity="error", markup=False)
        self.app.pop_screen()

    @work(thread=True, exclusive=True, group="claim", exit_on_error=False)
    def claim(self) -> None:
        try:
            holder, until = self.backend.claim(self.ticket_id)
        except HelpdeskError:
            return
        except Exception:  # noqa: BLE001 - a claim is a courtesy: never fatal
            return
        self.app.call_from_thread(self._claimed, holder, until)

    def _claimed(self, holder: str | None, until: datetime | None) -> None:
        self.holder = (holder, until) if holder else None
        if self.view is not None:
            self._show_claim(self.view)

    # --- showing -------------------------------------------------------------------------

    def show(self, view: dict, walk: dict | None = None) -> None:
        if view["id"] != self.ticket_id:  # a load for the ticket shown before
            return
        old = self.view
        self.view = view
        self.walk = walk
        self.loading_more = False
        if getattr(self, "first_show", False):
            self.first_show = False
            self.show_pane("walkthrough" if walk is not None else self.PANES[0].id, focus=False)
        tz = view["timezone"]
        self.query_one("#topbar").set_title(
            assemble(
                f"#{view['id']} · ",
                view["queue_title"],
                " · ",
                view.get("policy_short") or view["policy_name"],
                one_line=True,
            )
        )
        self.query_one("#summary", Static).update(self._summary(view, tz))
        self._show_claim(view)
        self._show_actions(view)
        self._fill_panes(view)
        self._label_take()
        me = self.info.actor.login if self.info and self.info.actor else None
        if (
            old is not None
            and old["id"] == view["id"]
            and old["version"] != view["version"]
            and not self.busy
        ):
            who = view["events"][-1]["actor"] if view["events"] else "?"
            if who != me and not self.own_step:
                self.notify(
                    _("#{id} was changed by {who}.").format(id=view["id"], who=who), markup=False
                )
        self.own_step = False

    def _summary(self, v: dict, tz: str) -> Text:
        """Four lines that fit 80 columns: subject; state and due date; account; requester."""
        due = v.get("due_at")
        now = v.get("now") or clock.now()
        overdue = bool(due and parse_iso(due) <= now and v["state_kind"] != "done")
        pending = [d for d in v["deadline_details"] if d["status"] == "pending"]
        state_line: list = [
            (_("State") + ": ", "dim"),
            (v["state_label"], "bold reverse" if v["state_kind"] != "done" else "bold"),
            " (" + label("state-kind", v["state_kind"]) + ")   ",
            (_("Assignee") + ": ", "dim"),
            v.get("assignee") or "—",
        ]
        due_line: list = [(_("Due") + ": ", "dim")]
        if due:
            due_line.append(
                (
                    ("! " if overdue else "") + f"{_when(due, tz)} {tz}",
                    "bold reverse" if overdue else "bold",
                )
            )
            names = [label("deadline", d["name"]) for d in pending if d["at"] == due]
            if names:
                due_line.append(f" ({', '.join(names)})")
            if overdue:  # in words too: legible without colour (NO_COLOR)
                due_line.append((" · " + _("overdue"), "bold"))
        else:
            due_line.append("—")
        account: list = [(_("Account") + ": ", "dim"), (v["account"] or "—", "bold")]
        if v["account_status"]:
            account.append(" (" + label("account-status", v["account_status"]) + ")")
        account += ["   ", (_("Requester") + ": ", "dim"), v["requester"] or "—"]
        lines = [
            assemble(
                (f"#{v['id']} ", "bold"), (v["subject"] or _("(no subject)"), "bold"), one_line=True
            ),
            assemble(*state_line, one_line=True),
            assemble(*due_line, one_line=True),
            assemble(*account, one_line=True),
        ]
        for a in v.get("attention") or []:  # a mail of ours came back: a volunteer decides
            lines.append(
                assemble(
                    (
                        _("⚠ Mail #{id} to {to} came back: {reason}").format(
                            id=a["outbox"],
                            to=a["to"] or "—",
                            reason=a["text"] or a["status"] or "—",
                        ),
                        "bold reverse",
                    ),
                    one_line=True,
                )
            )
        return Text("\n").join(lines)

    def _show_claim(self, v: dict) -> None:
        widget = self.query_one("#claim", Static)
        holder = self.holder
        now = v.get("now") or clock.now()
        me = self.info.actor.login if self.info and self.info.actor else None
        if (
            holder is None
            and v.get("claimed_by")
            and v["claimed_by"] != me
            and v.get("claim_expires")
            and v["claim_expires"] > now
        ):
            holder = (v["claimed_by"], v["claim_expires"])
        if holder:
            widget.update(
                assemble(
                    ("⚑ ", "bold"),
                    (
                        _(
                            "{who} has this ticket open (until {until}): agree before acting."
                        ).format(who=holder[0], until=localise(holder[1], v["timezone"])[11:]),
                        "bold",
                    ),
                )
            )
            widget.display = True
        else:
            widget.display = False

    def action_walkthrough(self) -> None:
        """Show the scenario's walkthrough pane (and back to the one shown before)."""
        if self.current_pane == "walkthrough":
            self.show_pane(getattr(self, "pane_before_walk", "details"))
        else:
            self.pane_before_walk = self.current_pane
            self.show_pane("walkthrough")

    def check_action(self, action: str, parameters: tuple) -> bool | None:
        if action == "walkthrough":
            return self.walk is not None
        if action == "play":  # a trainer on a scenario's ticket only
            return self.walk is not None and self._trainer() is not None
        return True

    def _trainer(self) -> str | None:
        """The trainer at the keys (playing a volunteer or not), else None."""
        info = self.info
        if info is None or info.actor is None:
            return None
        trainer = getattr(self.backend, "trainer", None)
        if trainer:
            return trainer
        return info.actor.login if info.actor.role == "trainer" else None

    def action_play(self) -> None:
        """The trainer plays the volunteer the current step names (a refusal counts only
        when seen as the role it is about); pressed again, the trainer is themselves."""
        trainer = self._trainer()
        if self.walk is None or trainer is None:
            return
        me = self.info.actor.login
        step = next((st for st in self.walk["steps"] if st["current"]), None)
        who = step["who"] if step else ""
        if me != trainer:
            self.play(None)
        elif who and who not in ("system", trainer):
            self.play(who)
        else:
            self.notify(_("This step has no volunteer to play: take it as yourself."), markup=False)

    @work(thread=True, exclusive=True, group="act", exit_on_error=False)
    def play(self, login: str | None) -> None:
        try:
            self.backend.release(self.ticket_id)  # the ticket passes to who plays now
            info = self.backend.play_as(login)
            self.backend.claim(self.ticket_id)
        except HelpdeskError as exc:
            self.app.call_from_thread(self._failed, {"label": _("Play the step's role")}, exc)
            return
        self.app.call_from_thread(self._played, info)

    def _played(self, info) -> None:
        actor = info.actor
        self.notify(
            _("You now act as {login} ({role}); p: back to yourself.").format(
                login=actor.login, role=label("role", actor.role)
            )
            if actor.login != self._trainer()
            else _("You act as yourself again ({login}).").format(login=actor.login),
            title=_("Walkthrough"),
            markup=False,
        )
        self.refresh_chrome()
        self.refresh_bindings()
        self.load()

    def _digits(self, v: dict) -> dict[str, str]:
        """Each action's key: its place in the procedure (the workflow's order), the same
        on every step of the ticket, so that a digit never changes meaning under the
        fingers. Actions past the ninth are reached with the arrows and Enter."""
        keys = list(dict.fromkeys(a["key"] for a in v["actions"]))
        return {k: DIGITS[i] for i, k in enumerate(keys) if i < len(DIGITS)}

    def _show_actions(self, v: dict) -> None:
        ol = self.query_one("#actions", OptionList)
        highlighted = ol.highlighted
        ol.clear_options()
        read_only = self.info is None or self.info.read_only
        digits = self._digits(v)

        # Allowed first, then those a rule blocks with its reason (those that need only
        # the reason the form asks for are shown as allowed). Steps of other states
        # ("rule": "state") are not this step's business: the checklist shows them.
        def takeable(a: dict) -> bool:
            return a["allowed"] or a.get("needs_note", False)

        ordered = sorted(
            (a for a in v["actions"] if takeable(a) or a["rule"] != "state"),
            key=lambda a: not takeable(a),
        )
        self.ordered = ordered
        self.by_digit = {digits[a["key"]]: a for a in ordered if takeable(a) and a["key"] in digits}
        for a in ordered:
            if takeable(a):
                digit = digits.get(a["key"], " ")
                needs = []
                if a["fields"] or a["checklist"] or a["note_required"] or a.get("needs_note"):
                    needs.append("…")
                if a["confirm"]:
                    needs.append("!")
                prompt = assemble(
                    (f"{digit}", "bold reverse" if not read_only else "dim"),
                    " ",
                    (a["label"], "bold"),
                    (" " + "".join(needs)) if needs else "",
                )
                if a.get("needs_note") and not a["allowed"]:
                    prompt.append_text(assemble((" — " + _("with the reason it needs"), "dim")))
            else:
                prompt = assemble(
                    ("✘", "dim"),
                    " ",
                    (a["label"], "dim strike"),
                    (" — " + a["reason"], "dim"),
                )
            ol.add_option(Option(prompt, id=a["key"]))
        if not ordered:
            empty = (
                _("No action: the ticket is finished.")
                if v["state_kind"] == "done"
                else _("No action at this step: a reply, a deadline or the clock moves it on.")
            )
            ol.add_option(Option(Text(empty, style="dim"), disabled=True))
        if highlighted is not None and highlighted < ol.option_count:
            ol.highlighted = highlighted
        elif ol.option_count:
            first = next((i for i, a in enumerate(ordered) if takeable(a)), 0)
            ol.highlighted = first
        self._show_citation()

    def digit_of(self, key: str) -> str | None:
        """The digit that runs action ``key`` now (None if it cannot be taken)."""
        return next((d for d, a in getattr(self, "by_digit", {}).items() if a["key"] == key), None)

    def pane_text(self, pane_id: str) -> str:
        """What a text pane shows, as plain text (tests, the palette)."""
        return str(self.pane_widget(pane_id).query_one(".pane-text", Static).render())

    def _action(self, key: str | None) -> dict | None:
        if not self.view or key is None:
            return None
        return next((a for a in self.view["actions"] if a["key"] == key), None)

    def _highlighted_action(self) -> dict | None:
        ol = self.query_one("#actions", OptionList)
        if ol.highlighted is None:
            return None
        option = ol.get_option_at_index(ol.highlighted)
        return self._action(option.id)

    @on(OptionList.OptionHighlighted, "#actions")
    def _highlight(self) -> None:
        self._show_citation()

    def _show_citation(self) -> None:
        widget = self.query_one("#citation", Static)
        a = self._highlighted_action()
        if a is None or not a.get("citation"):
            widget.update("")
            return
        line = assemble(("§ ", "bold"), (a["citation"], "italic"), one_line=True)
        if a.get("citation_text"):
            line.append_text(Text("  " + _("c: read the article"), style="dim"))
        widget.update(line)

    # --- the panes' text ---------------------------------------------------------------------

    def _details(self, v: dict) -> Text:
        """The procedure, then who is concerned: requester, account and its contacts, the
        sanctions ledger, the linked tickets."""
        tz = v["timezone"]
        visited = set(v["visited"])
        lines = [Text(_("Procedure"), style="bold")]
        for st in v["steps"]:
            if st["current"]:
                mark, style = "▶", "bold reverse"
            elif st["key"] in visited:
                mark, style = "✔", ""
            else:
                mark, style = "○", "dim"
            end = "  " + _("(end)") if st["kind"] == "done" else ""
            lines.append(assemble(f" {mark} ", (st["label"], style), (end, "dim")))
        lines.append(Text("\n" + _("People"), style="bold"))
        lines.append(assemble(" ", (_("Requester") + ": ", "dim"), v["requester"] or "—"))
        lines.append(assemble(" ", (_("Provider") + ": ", "dim"), v["policy_name"]))
        if v["account"]:
            status = label("account-status", v["account_status"]) if v["account_status"] else ""
            lines.append(
                assemble(
                    " ",
                    (_("Account") + ": ", "dim"),
                    (v["account"], "bold"),
                    f" ({status})" if status else "",
                )
            )
            if v.get("account_org"):
                lines.append(assemble("   ", (_("Organisation") + ": ", "dim"), v["account_org"]))
            if v.get("account_email"):
                lines.append(assemble("   ", (_("E-mail") + ": ", "dim"), v["account_email"]))
            for contact in v.get("account_contacts") or []:
                lines.append(assemble("   ", (_("Contact") + ": ", "dim"), contact))
            for key, value in sorted((v.get("account_fields") or {}).items()):
                if value in (None, "", [], {}):
                    continue
                name = (
                    label("account-field", key)
                    if has_label("account-field", key)
                    else label("deadline", key)
                )
                shown = (
                    f"{_when(value, tz)} {tz}"
                    if isinstance(value, str) and "T" in value and _is_moment(value)
                    else str(value)
                )
                lines.append(assemble("   ", (name + ": ", "dim"), shown))
        lines.append(
            assemble(
                " ",
                (_("Mail language") + ": ", "dim"),
                _("French") if v["lang"] == "fr" else _("English"),
            )
        )
        lines.append(Text("\n" + _("Sanctions ledger of the account"), style="bold"))
        if not v.get("sanctions"):
            lines.append(
                Text(
                    " " + (_("No sanction recorded.") if v["account"] else _("No account.")),
                    style="dim",
                )
            )
        for row in v.get("sanctions") or []:
            lines.append(
                assemble(
                    " ",
                    (_when(row["at"], tz), "dim"),
                    " ",
                    (label("sanction", row["step"]), "bold"),
                    f"  #{row['ticket']}  ",
                    row["actor"],
                    one_line=True,
                )
            )
            if row.get("note"):
                lines.append(assemble("    ", plain(row["note"], "italic")))
        if v.get("linked"):
            lines.append(Text("\n" + _("Linked tickets"), style="bold"))
            for other in v["linked"]:
                relation = _("parent") if other["relation"] == "parent" else _("child")
                lines.append(
                    assemble(
                        " ",
                        (f"#{other['id']}", "bold"),
                        f" ({relation}) ",
                        other["queue_title"],
                        " · ",
                        other["state_label"],
                        ("  " + other["subject"]) if other.get("subject") else "",
                        one_line=True,
                    )
                )
            lines.append(Text(" " + _("g: go to a ticket by its number"), style="dim"))
        return Text("\n").join(lines)

    def _deadlines(self, v: dict) -> Text:
        tz = v["timezone"]
        if not v["deadline_details"]:
            actions = self._service_actions(v)
            return (
                Text("\n").join(actions)
                if actions
                else Text(_("No date on this ticket."), style="dim")
            )
        now = v.get("now") or clock.now()
        lines = [Text(_("Dates") + f"  ({tz})", style="bold")]
        for d in v["deadline_details"]:
            at = parse_iso(d["at"])
            late = d["status"] == "pending" and at is not None and at <= now
            lines.append(
                assemble(
                    ("! " if late else "  "),
                    (label("deadline", d["name"]), "bold"),
                    "  ",
                    (_when(d["at"], tz), "bold" if d["status"] == "pending" else ""),
                    (
                        "  " + (_("overdue") if late else label("deadline-status", d["status"])),
                        "bold" if late else "dim",
                    ),
                )
            )
            if d.get("action"):
                step = v.get("step_labels", {}).get(d["action"], d["action"])
                lines.append(assemble("    ", ("→ " + step, "dim")))
            if d.get("note"):
                lines.append(assemble("    ", plain(d["note"], "dim")))
        return Text("\n").join(lines + self._service_actions(v))

    def _service_actions(self, v: dict) -> list[Text]:
        """The ticket's actions on the real services; failed and uncertain ones marked."""
        actions = v.get("service_actions") or []
        if not actions:
            return []
        lines = [Text("\n" + _("Service actions:"), style="bold")]
        for a in actions:
            lines.append(
                assemble(
                    " ",
                    ("!" if a["needs_attention"] else " "),
                    (f"#{a['id']} ", "dim"),
                    (
                        label("service-action-status", a["status"]),
                        "bold red" if a["needs_attention"] else "bold",
                    ),
                    "  ",
                    a["line"],
                    ("  — " + a["answer"], "dim") if a["answer"] else "",
                    one_line=True,
                )
            )
        return lines

    def _fields(self, v: dict) -> Text:
        items = [(k, val) for k, val in (v["fields"] or {}).items() if val not in (None, "")]
        if not items and not v.get("checklist"):
            return Text(_("No field filled in."), style="dim")
        lines = [Text(_("Fields"), style="bold")]
        specs = v.get("field_specs") or {}
        for k, val in items:
            spec = specs.get(k) or {}
            # A field of the workflow has its label there; a date an effect noted on the
            # ticket (contract-end, membership-end…) is labelled as the date it is.
            name = pick(spec.get("label")) or label("deadline", k)
            if val is True:
                shown = "☑ " + _("yes")
            elif val is False:
                shown = "☐ " + _("no")
            elif isinstance(val, str) and "T" in val and _is_moment(val):
                shown = f"{_when(val, v['timezone'])} {v['timezone']}"
            else:
                shown = choice(k, val)
            lines.append(assemble(" ", (name + ": ", "dim"), shown))
        if v.get("checklist"):
            lines.append(Text("\n" + _("Checklist"), style="bold"))
        for item in v.get("checklist") or []:
            lines.append(assemble(" ☑ ", v.get("checklist_labels", {}).get(item, item)))
        return Text("\n").join(lines)

    def _history(self, v: dict) -> Text:
        tz = v["timezone"]
        labels = v.get("state_labels", {})
        steps = v.get("step_labels", {})
        lines = [Text(_("History") + f"  ({tz}, " + _("newest first") + ")", style="bold")]
        for e in reversed(v["events"]):
            arrow = ""
            if e["to"] and e["to"] != e["from"]:
                arrow = f" → {labels.get(e['to'], e['to'])}"
            who = label("role", "system") if e["actor"] == "system" else e["actor"]
            lines.append(
                assemble(
                    (_when(e["at"], tz), "dim"),
                    " ",
                    (who, "bold"),
                    " ",
                    event_label(e["action"], steps),
                    arrow,
                    (f"  [{label('sanction', e['sanction'])}]", "dim") if e.get("sanction") else "",
                )
            )
            if e["note"]:
                timer = read_timer_note(e["note"])
                note = (
                    f"{label('deadline', timer[0])}: {_when(timer[1], tz)} {tz}"
                    if timer
                    else e["note"]
                )
                lines.append(assemble("    ", plain(note, "italic")))
        older = v["events_total"] - len(v["events"])
        if older > 0:
            lines.append(
                Text(
                    _("… {n} earlier events: they load when you reach this line.").format(n=older),
                    style="dim",
                )
            )
        return Text("\n").join(lines)

    def _mails(self, v: dict) -> Text:
        tz = v["timezone"]
        if not v.get("mails"):
            return Text(_("No mail for this ticket."), style="dim")
        lines = [Text(_("Mails") + f"  ({tz})", style="bold")]
        for m in v["mails"]:
            lines.append(
                assemble(
                    (_when(m["at"], tz), "dim"),
                    " ",
                    (label("mail-status", m["status"]), "bold"),
                    " ",
                    m["to"],
                )
            )
            lines.append(assemble("    ", m["subject"]))
        return Text("\n").join(lines)

    # --- acting ----------------------------------------------------------------------------

    def action_back(self) -> None:
        self.app.pop_screen()

    def action_citation(self) -> None:
        """The highlighted action's article, whole, in a dialog that scrolls."""
        a = self._highlighted_action()
        if a is None or not a.get("citation"):
            self.notify(_("No article for this line."), markup=False)
            return
        body = [assemble(("§ ", "bold"), (a["citation"], "bold italic"))]
        if a.get("citation_text"):
            body.append(assemble("« ", (a["citation_text"], "italic"), " »"))
        self.app.show_message(a["label"], Text("\n\n").join(body), kind="citation")  # type: ignore[attr-defined]

    def action_details(self) -> None:
        """Give the keys to the pane shown, or back to the actions."""
        if self._pane_has_focus():
            self.query_one("#actions").focus()
        else:
            self.pane_widget().focus()

    def action_act(self, index: int) -> None:
        if self.view is None:
            return
        a = getattr(self, "by_digit", {}).get(DIGITS[index])
        if a is not None:
            self.start(a)
        else:
            self.notify(
                _("Key {digit} runs no action on this step.").format(digit=DIGITS[index]),
                markup=False,
            )

    @on(OptionList.OptionSelected, "#actions")
    def _selected(self, event: OptionList.OptionSelected) -> None:
        a = self._action(event.option.id)
        if a is not None:
            self.start(a)

    def start(self, a: dict) -> None:
        """Begin an action: refusal, form, dry run, confirmation, apply."""
        if self.busy or self.view is None:
            return
        self.app.clear_notifications()  # what was said of the step before is done with
        if self.info is None or self.info.read_only:
            self.app.show_message(  # type: ignore[attr-defined]
                _("Read-only"),
                plain(_("This session is read-only: nothing can be changed from it.")),
                kind="refusal",
            )
            return
        if not a["allowed"] and a.get("needs_note"):
            # Blocked only for want of a recorded reason (an emergency): the form asks for it.
            a = {**a, "note_required": True}
        elif not a["allowed"]:
            if self.walk is not None:  # a trainee's attempt counts, refused or not
                self.blocked_attempt(a)
            else:
                self._show_refusal(a)
            return
        if a["fields"] or a["checklist"] or a["note_required"]:
            from screens.modals import ActionForm

            prefill = self.last_inputs.get(a["key"]) or {
                "fields": dict(self.view["fields"] or {}),
                "note": "",
            }

            def filled(inputs: dict | None) -> None:
                if inputs is not None:
                    self.last_inputs[a["key"]] = inputs
                    self.dry_run(a, inputs)

            self.app.push_screen(
                ActionForm(
                    a,
                    self.view.get("field_specs") or {},
                    self.view.get("checklist_labels") or {},
                    prefill,
                    self.view["timezone"],
                ),
                filled,
            )
            return
        self.dry_run(a, {})

    @work(thread=True, exclusive=True, group="act", exit_on_error=False)
    def blocked_attempt(self, a: dict) -> None:
        feedback = self._feedback(
            a, Refused(a["rule"], a["reason"], a.get("citation", ""), a.get("citation_text", ""))
        )
        self.app.call_from_thread(self._show_refusal, a, feedback)
        self.app.call_from_thread(self.load)

    def _show_refusal(self, a: dict, feedback: str | None = None) -> None:
        """The refusal, with what the walkthrough says of it inside the dialog (a notice
        would cover the dialog's buttons on a small terminal)."""
        from screens.modals import refusal_body

        body = refusal_body(a["reason"], a["rule"], a["citation"], a.get("citation_text", ""))
        if feedback:
            body = Text("\n\n").join([body, assemble((_("Walkthrough") + ": ", "bold"), feedback)])
        self.app.show_message(_("Not possible now: {action}").format(action=a["label"]), body)  # type: ignore[attr-defined]

    @work(thread=True, exclusive=True, group="act", exit_on_error=False)
    def dry_run(self, a: dict, inputs: dict, lang: str | None = None) -> None:
        version = self.view["version"] if self.view else None
        self.app.call_from_thread(self._set_busy, True)
        try:
            preview = self.backend.preview(self.ticket_id, a["key"], inputs, version, lang)
        except HelpdeskError as exc:
            self.app.call_from_thread(self._failed, a, exc, self._feedback(a, exc))
            return
        except Exception as exc:  # noqa: BLE001 - shown, never a crash
            self.app.call_from_thread(self._crashed, exc)
            return
        finally:
            self.app.call_from_thread(self._set_busy, False)
        self.app.call_from_thread(self._previewed, a, inputs, preview, lang)

    def _set_busy(self, busy: bool) -> None:
        self.busy = busy

    def _previewed(self, a: dict, inputs: dict, preview, lang: str | None = None) -> None:
        from screens.modals import ConfirmScreen

        must_ask = a["confirm"] or preview.mails or preview.account_status or preview.reveal
        if not must_ask:
            self.apply(a, inputs, lang)
            return

        def answered(answer) -> None:
            if isinstance(answer, tuple) and answer[0] == "lang":
                self.dry_run(a, inputs, answer[1])  # the same step, mails in the other language
            elif answer:
                self.apply(a, inputs, lang)

        shown = lang or (self.view["lang"] if self.view else "fr")
        irreversible = a.get("irreversible", a["confirm"])
        self.app.push_screen(
            ConfirmScreen(preview, irreversible=irreversible, lang=shown, ticket_id=self.ticket_id),
            answered,
        )

    @work(thread=True, exclusive=True, group="act", exit_on_error=False)
    def apply(self, a: dict, inputs: dict, lang: str | None = None) -> None:
        version = self.view["version"] if self.view else None
        self.app.call_from_thread(self._set_busy, True)
        try:
            result = self.backend.apply(
                self.ticket_id,
                a["key"],
                inputs,
                version,
                lang if lang != (self.view or {}).get("lang") else None,
            )
        except HelpdeskError as exc:
            self.app.call_from_thread(self._failed, a, exc, self._feedback(a, exc))
            return
        except Exception as exc:  # noqa: BLE001
            self.app.call_from_thread(self._crashed, exc)
            return
        finally:
            self.app.call_from_thread(self._set_busy, False)
        self.app.call_from_thread(self._applied, a, result, self._feedback(a))

    def _feedback(self, a: dict, exc: HelpdeskError | None = None) -> str | None:
        """On a training database (in the worker's thread): what the walkthrough says of
        this attempt — out of the expected order, or refused by a rule."""
        if self.walk is None or (exc is not None and not isinstance(exc, Refused)):
            return None
        try:
            return self.backend.training_feedback(self.ticket_id, a["key"], exc)  # type: ignore[arg-type]
        except Exception:  # noqa: BLE001 - feedback is a help, never a failure of the step
            return None

    def _applied(self, a: dict, result, feedback: str | None = None) -> None:
        from screens.modals import material_body, reveal_body

        if feedback:
            self.notify(
                feedback, title=_("Walkthrough"), severity="warning", timeout=12, markup=False
            )

        self.last_inputs.pop(a["key"], None)
        self.own_step = True
        message = _("{action}: done → {state}").format(action=a["label"], state=result.state_label)
        if result.mails:
            message += "\n" + n_("{n} mail queued", "{n} mails queued", len(result.mails)).format(
                n=len(result.mails)
            )
        self.notify(message, title=f"#{self.ticket_id}", markup=False)
        if result.output:
            self.app.show_message(
                _("Logs (this reading is recorded)"), material_body(result.output), kind="material"
            )  # type: ignore[attr-defined]
        if result.reveal:
            self.app.show_message(_("One-time code"), reveal_body(result.reveal), kind="reveal")  # type: ignore[attr-defined]
        self.load()

    def _failed(self, a: dict, exc: HelpdeskError, feedback: str | None = None) -> None:
        from screens.modals import refusal_body

        if feedback:
            self.notify(
                feedback, title=_("Walkthrough"), severity="information", timeout=12, markup=False
            )

        if isinstance(exc, Conflict):
            self.app.show_message(  # type: ignore[attr-defined]
                _("Changed meanwhile"),
                assemble(
                    (str(exc), "bold"),
                    "\n",
                    _(
                        "Nothing was applied. The ticket is shown as it is now: read it again before acting."
                    ),
                ),
                kind="conflict",
            )
            self.load()
        elif isinstance(exc, Refused):
            self.app.show_message(  # type: ignore[attr-defined]
                _("Refused: {action}").format(action=a["label"]),
                refusal_body(exc.reason, exc.rule, exc.citation, exc.citation_text),
            )
            self.load()
        else:
            self.app.show_message(
                _("Cannot do that: {action}").format(action=a["label"]),
                plain(str(exc)),
                kind="error",
            )  # type: ignore[attr-defined]

    def _crashed(self, exc: Exception) -> None:
        self.app.show_message(
            _("Unexpected error"), plain(f"{type(exc).__name__}: {exc}"), kind="error"
        )  # type: ignore[attr-defined]

    # --- taking a ticket -----------------------------------------------------------------------

    def _label_take(self) -> None:
        """``t`` says what it will do: take the ticket, or give it back when you hold it."""
        from dataclasses import replace

        wanted = _("Give back") if self._holds() else _("Take")
        bindings = self._bindings.key_to_bindings.get("t", [])
        if bindings and bindings[0].description != wanted:
            self._bindings.key_to_bindings["t"] = [replace(b, description=wanted) for b in bindings]
            self.refresh_bindings()

    def _holds(self) -> bool:
        me = self.info.actor.login if self.info and self.info.actor else None
        return bool(self.view and me and self.view.get("assignee") == me)

    def action_take(self) -> None:
        if self.view is None or self.info is None or self.info.read_only:
            self.notify(
                _("This session is read-only: nothing can be changed from it."), markup=False
            )
            return
        me = self.info.actor.login
        self.assign(None if self.view.get("assignee") == me else me)

    @work(thread=True, exclusive=True, group="act", exit_on_error=False)
    def assign(self, login: str | None) -> None:
        try:
            self.backend.assign(self.ticket_id, login, self.view["version"] if self.view else None)
        except HelpdeskError as exc:
            self.app.call_from_thread(self._failed, {"label": _("Take / give back")}, exc)
            return
        self.app.call_from_thread(self._assigned, login)

    # --- the conversation: reply, note, ask (screens.composer) ------------------------------

    def action_compose(self, kind: str) -> None:
        if self.view is None or self.info is None or self.info.read_only:
            self.notify(_("Read-only"), markup=False)
            return
        self.open_composer(kind)

    @work(thread=True, exclusive=True, group="act", exit_on_error=False)
    def open_composer(self, kind: str) -> None:
        lang = (self.view or {}).get("lang") or "fr"
        replies = self.backend.saved_replies(lang) if kind == "reply" else []
        # Each saved reply by the subject it leaves with, never by its key.
        subjects = {k: template_subject(k, lang, "replies") for k in replies}
        items = self.backend.ask_items(self.ticket_id) if kind == "ask" else {}
        self.app.call_from_thread(
            self.app.push_screen,
            Composer(
                kind,
                self.ticket_id,
                replies=replies,
                reply_subjects=subjects,
                items=items,
                preview=self._draft,
            ),
            self._composed,
        )

    def _draft(self, request: dict, answer) -> None:
        self.draft(request, answer)

    @work(thread=True, exclusive=True, group="draft", exit_on_error=False)
    def draft(self, request: dict, answer) -> None:
        try:
            draft = self.backend.draft(self.ticket_id, request)
        except HelpdeskError as exc:
            self.app.call_from_thread(answer, None, str(exc))
            return
        self.app.call_from_thread(answer, draft)

    def _composed(self, request: dict | None) -> None:
        if request is not None:
            self.converse(request)

    @work(thread=True, exclusive=True, group="act", exit_on_error=False)
    def converse(self, request: dict) -> None:
        try:
            self.backend.converse(
                self.ticket_id, request, self.view["version"] if self.view else None
            )
        except HelpdeskError as exc:
            self.app.call_from_thread(self._failed, {"label": _("Reply")}, exc)
            return
        said = _("Note saved (never mailed).") if request["kind"] == "note" else _("Mail queued.")
        self.app.call_from_thread(self.notify, said, markup=False)
        self.app.call_from_thread(self.load)

    def action_set_account(self) -> None:
        if self.view is None or self.info is None or self.info.read_only:
            self.notify(_("Read-only"), markup=False)
            return
        hint = ""
        if self.view.get("candidates"):
            hint = _("Named by the complaint: {logins}").format(
                logins=", ".join(self.view["candidates"])
            )
        self.app.push_screen(
            AskValue(
                _("#{id}: the account it is about").format(id=self.ticket_id),
                hint,
                _("login ('-': none)"),
            ),
            lambda login: self.change_account(login) if login else None,
        )

    @work(thread=True, exclusive=True, group="act", exit_on_error=False)
    def change_account(self, login: str) -> None:
        try:
            self.backend.set_account(
                self.ticket_id,
                None if login == "-" else login,
                self.view["version"] if self.view else None,
            )
        except HelpdeskError as exc:
            self.app.call_from_thread(self._failed, {"label": _("Account")}, exc)
            return
        self.app.call_from_thread(self.load)

    def action_merge(self) -> None:
        if self.view is None or self.info is None or self.info.read_only:
            self.notify(_("Read-only"), markup=False)
            return
        self.app.push_screen(
            AskValue(
                _("#{id}: merge into ticket number").format(id=self.ticket_id),
                _("Its conversation and history move there; later mails too."),
                "#",
            ),
            lambda into: self.merge_into(into) if into else None,
        )

    @work(thread=True, exclusive=True, group="act", exit_on_error=False)
    def merge_into(self, into: str) -> None:
        number = into.strip().lstrip("#")
        if not number.isdigit():
            self.app.call_from_thread(self.notify, _("a ticket number"), markup=False)
            return
        try:
            self.backend.merge(self.ticket_id, int(number))
        except HelpdeskError as exc:
            self.app.call_from_thread(self._failed, {"label": _("Merge")}, exc)
            return
        self.app.call_from_thread(self.app.open_ticket, int(number))

    def _assigned(self, login: str | None) -> None:
        self.own_step = True
        self.notify(
            _("Assigned to {who}").format(who=login) if login else _("Given back"), markup=False
        )
        self.load()


TicketScreen.PANES = [
    Pane("details", N_("Details"), text=TicketScreen._details),
    Pane(
        "walkthrough",
        N_("Walkthrough"),
        text=lambda screen, v: _walkthrough(screen),
        shown=lambda screen, v: screen.walk is not None,
    ),
    Pane("dates", N_("Dates"), text=TicketScreen._deadlines),
    Pane("fields", N_("Fields"), text=TicketScreen._fields),
    Pane("history", N_("History"), text=TicketScreen._history),
    Pane("mails", N_("Mails"), text=TicketScreen._mails),
    Pane("conversation", N_("Conversation"), text=lambda screen, v: conversation_text(v)),
]


def _walkthrough(screen: TicketScreen) -> Text:
    from screens.training import walkthrough_text

    if screen.walk is None:
        return Text("")
    acting = screen.info.actor.login if screen.info and screen.info.actor else ""
    return walkthrough_text(screen.walk, play=(screen._trainer(), acting))
