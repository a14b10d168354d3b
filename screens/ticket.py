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
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option
from textual.worker import get_current_worker

from helpdesk.base import clock
from helpdesk.base.errors import Conflict, HelpdeskError, Refused
from helpdesk.base.i18n import _
from helpdesk.tui_api.views import localise, parse_iso
from screens.base import N_, BaseScreen, TopBar
from screens.keybar import KeyBar
from screens.safe import assemble, plain

DIGITS = "123456789"
CLAIM_RENEW_SECONDS = 180


def _when(value: Any, tz: str) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        value = parse_iso(value)
    return localise(value, tz)


class TicketScreen(BaseScreen):
    BINDINGS = [
        Binding("escape", "back", N_("Back"), id="ticket.back"),
        *[Binding(d, f"act({i})", N_("Run the action with this number"), show=False, id=f"ticket.action{d}") for i, d in enumerate(DIGITS)],
        Binding("c", "citation", N_("Article"), id="ticket.citation"),
        Binding("t", "take", N_("Take"), id="ticket.take"),
        Binding("d", "details", N_("Details"), show=False, id="ticket.details"),
        Binding("r", "reload", N_("Reload"), show=False, id="ticket.reload"),
        Binding("w", "walkthrough", N_("Walkthrough"), id="ticket.walkthrough"),
    ]

    def __init__(self, ticket_id: int, preloaded: tuple[dict, dict | None] | None = None) -> None:
        super().__init__()
        self.show_walkthrough = True
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

    def top_title(self) -> Text:
        return Text(f"#{self.ticket_id}")

    def compose(self) -> ComposeResult:
        yield from self.compose_top()
        yield Static(Text(_("Loading…"), style="dim"), id="summary")
        yield Static(id="claim")
        with Horizontal(id="ticket-body"):
            with Vertical(id="actions-pane"):
                yield Static(Text(_("Actions"), style="bold"), classes="section")
                yield OptionList(id="actions", markup=False)
                yield Static(id="citation")
            with VerticalScroll(id="details"):
                yield Static(id="walkthrough")
                yield Static(id="procedure")
                yield Static(id="deadlines")
                yield Static(id="fields")
                yield Static(id="history")
                yield Static(id="mails")
        yield KeyBar()

    def on_mount(self) -> None:
        self._layout()
        self._renew = self.set_interval(CLAIM_RENEW_SECONDS, self.claim, pause=True)
        self._opened()

    def on_screen_resume(self) -> None:
        super().on_screen_resume()
        self._opened()

    def _opened(self) -> None:
        """Show the ticket set by :meth:`switch_to` (once; a modal closing resumes the
        screen too, with the same ticket)."""
        if not self.fresh or not self.is_mounted:
            return
        self.fresh = False
        self.holding = True
        self.query_one("#topbar", TopBar).set_title(self.top_title())
        self.query_one("#claim").display = False
        self.query_one("#walkthrough").display = False
        actions = self.query_one("#actions", OptionList)
        actions.highlighted = None
        actions.focus()
        self.query_one("#details", VerticalScroll).scroll_home(animate=False)
        if self.preloaded is not None:
            view, walk = self.preloaded
            self.preloaded = None
            self.show(view, walk)
        else:
            self.query_one("#summary", Static).update(Text(_("Loading…"), style="dim"))
            for name in ("procedure", "deadlines", "fields", "history", "mails", "citation"):
                self.query_one(f"#{name}", Static).update("")
            actions.clear_options()
            self.load()
        # Claimed once the ticket is on screen: the claim is a write, and its thread would
        # slow the first paint down.
        self.call_after_refresh(self.claim)
        self._renew.reset()
        self._renew.resume()

    def on_screen_suspend(self) -> None:
        if self not in self.app.screen_stack:  # left (not covered by a form): let it go
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
            view = self.backend.ticket(self.ticket_id)
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
        self._show_walkthrough()
        tz = view["timezone"]
        self.query_one("#topbar").set_title(
            assemble(f"#{view['id']} · ", view["queue_title"], " · ", view["policy"], one_line=True)
        )
        self.query_one("#summary", Static).update(self._summary(view, tz))
        self._show_claim(view)
        self._show_actions(view)
        self.query_one("#procedure", Static).update(self._procedure(view))
        self.query_one("#deadlines", Static).update(self._deadlines(view, tz))
        self.query_one("#fields", Static).update(self._fields(view))
        self.query_one("#history", Static).update(self._history(view, tz))
        self.query_one("#mails", Static).update(self._mails(view, tz))
        me = self.info.actor.login if self.info and self.info.actor else None
        if old is not None and old["version"] != view["version"] and not self.busy:
            who = view["events"][-1]["actor"] if view["events"] else "?"
            if who != me:
                self.notify(_("#{id} was changed by {who}.").format(id=view["id"], who=who), markup=False)

    def _summary(self, v: dict, tz: str) -> Text:
        lines = [
            assemble((f"#{v['id']} ", "bold"), (v["subject"] or _("(no subject)"), "bold"), one_line=True),
            assemble(
                (_("State") + ": ", "dim"), (v["state_label"], "bold reverse" if v["state_kind"] != "done" else "bold"),
                f" ({v['state_kind']})  ",
                (_("Provider") + ": ", "dim"), v["policy_name"],
                one_line=True,
            ),
            assemble(
                (_("Account") + ": ", "dim"),
                (v["account"] or "—", "bold"),
                f" ({v['account_status']})" if v["account_status"] else "",
                ("  " + v["account_email"]) if v.get("account_email") else "",
                "  ",
                (_("Requester") + ": ", "dim"),
                v["requester"] or "—",
                one_line=True,
            ),
        ]
        due = v.get("due_at")
        now = v.get("now") or clock.now()
        overdue = bool(due and parse_iso(due) <= now and v["state_kind"] != "done")
        pending = [d for d in v["deadline_details"] if d["status"] == "pending"]
        deadline_bits: list = [(_("Due") + ": ", "dim")]
        if due:
            deadline_bits.append((("! " if overdue else "") + _when(due, tz), "bold reverse" if overdue else "bold"))
            names = [d["name"] for d in pending if d["at"] == due]
            if names:
                deadline_bits.append(f" ({', '.join(names)})")
        else:
            deadline_bits.append("—")
        deadline_bits += ["  ", (_("Assignee") + ": ", "dim"), v.get("assignee") or "—", "  ", (_("Mail language") + ": ", "dim"), v["lang"]]
        lines.append(assemble(*deadline_bits, one_line=True))
        return Text("\n").join(lines)

    def _show_claim(self, v: dict) -> None:
        widget = self.query_one("#claim", Static)
        holder = self.holder
        now = v.get("now") or clock.now()
        me = self.info.actor.login if self.info and self.info.actor else None
        if holder is None and v.get("claimed_by") and v["claimed_by"] != me and v.get("claim_expires") and v["claim_expires"] > now:
            holder = (v["claimed_by"], v["claim_expires"])
        if holder:
            widget.update(
                assemble(
                    ("⚑ ", "bold"),
                    (_("{who} has this ticket open (until {until}): agree before acting.").format(
                        who=holder[0], until=localise(holder[1], v["timezone"])[11:]
                    ), "bold"),
                )
            )
            widget.display = True
        else:
            widget.display = False

    def _show_walkthrough(self) -> None:
        from screens.training import walkthrough_text

        widget = self.query_one("#walkthrough", Static)
        widget.display = self.walk is not None and self.show_walkthrough
        if widget.display:
            widget.update(walkthrough_text(self.walk))

    def action_walkthrough(self) -> None:
        self.show_walkthrough = not self.show_walkthrough
        self._show_walkthrough()

    def check_action(self, action: str, parameters: tuple) -> bool | None:
        if action == "walkthrough":
            return self.walk is not None
        return True

    def _show_actions(self, v: dict) -> None:
        ol = self.query_one("#actions", OptionList)
        highlighted = ol.highlighted
        ol.clear_options()
        self.numbered: list[dict] = []
        read_only = self.info is None or self.info.read_only
        # Allowed first (numbered), then those a rule blocks with its reason. Steps of other
        # states ("rule": "state") are not this step's business: the checklist shows them.
        ordered = sorted((a for a in v["actions"] if a["allowed"] or a["rule"] != "state"), key=lambda a: not a["allowed"])
        self.ordered = ordered
        for a in ordered:
            if a["allowed"]:
                if len(self.numbered) < len(DIGITS):
                    digit = DIGITS[len(self.numbered)]
                    self.numbered.append(a)
                else:
                    digit = " "
                needs = []
                if a["fields"] or a["checklist"] or a["note_required"]:
                    needs.append("…")
                if a["confirm"]:
                    needs.append("!")
                prompt = assemble(
                    (f"{digit}", "bold reverse" if not read_only else "dim"),
                    " ",
                    (a["label"], "bold"),
                    (" " + "".join(needs)) if needs else "",
                )
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
            first = next((i for i, a in enumerate(ordered) if a["allowed"]), 0)
            ol.highlighted = first
        self._show_citation()

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
        parts = [assemble(("§ ", "bold"), (a["citation"], "italic"))]
        if self.show_citation_text and a.get("citation_text"):
            parts.append(assemble("« ", (a["citation_text"], "italic"), " »"))
        elif a.get("citation_text"):
            parts.append(Text(_("c: show the article's text"), style="dim"))
        widget.update(Text("\n").join(parts))

    def _procedure(self, v: dict) -> Text:
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
        return Text("\n").join(lines)

    def _deadlines(self, v: dict, tz: str) -> Text:
        if not v["deadline_details"]:
            return Text("")
        now = v.get("now") or clock.now()
        lines = [Text("\n" + _("Dates") + f"  ({tz})", style="bold")]
        for d in v["deadline_details"]:
            at = parse_iso(d["at"])
            late = d["status"] == "pending" and at is not None and at <= now
            lines.append(
                assemble(
                    " ",
                    ("!" if late else " "),
                    (f"{d['name']:<18}", ""),
                    (_when(d["at"], tz), "bold" if d["status"] == "pending" else ""),
                    (f"  {d['status']}", "dim"),
                    (f"  → {d['action']}", "dim") if d.get("action") else "",
                    ("  " + d["note"], "dim") if d.get("note") else "",
                    one_line=True,
                )
            )
        return Text("\n").join(lines)

    def _fields(self, v: dict) -> Text:
        items = [(k, val) for k, val in (v["fields"] or {}).items() if val not in (None, "")]
        if not items and not v.get("checklist"):
            return Text("")
        lines = [Text("\n" + _("Fields"), style="bold")]
        specs = v.get("field_specs") or {}
        from helpdesk.base.i18n import pick

        for k, val in items:
            label = pick((specs.get(k) or {}).get("label")) or k
            shown = _("yes") if val is True else (_("no") if val is False else val)
            lines.append(assemble(" ", (label + ": ", "dim"), shown, one_line=True))
        for item in v.get("checklist") or []:
            lines.append(assemble(" ☑ ", v.get("checklist_labels", {}).get(item, item)))
        return Text("\n").join(lines)

    def _history(self, v: dict, tz: str) -> Text:
        labels = v.get("state_labels", {})
        lines = [Text("\n" + _("History"), style="bold")]
        for e in reversed(v["events"]):
            arrow = ""
            if e["to"] and e["to"] != e["from"]:
                arrow = f" → {labels.get(e['to'], e['to'])}"
            lines.append(
                assemble(
                    (_when(e["at"], tz), "dim"), " ", (e["actor"], "bold"), " ", e["action"], arrow,
                    (f"  [{e['sanction']}]", "dim") if e.get("sanction") else "",
                    one_line=True,
                )
            )
            if e["note"]:
                lines.append(assemble("    ", plain(e["note"], "italic", one_line=True, limit=400)))
        older = v["events_total"] - len(v["events"])
        if older > 0:
            lines.append(Text(_("… and {n} earlier events (helpdesk ticket show {id})").format(n=older, id=v["id"]), style="dim"))
        return Text("\n").join(lines)

    def _mails(self, v: dict, tz: str) -> Text:
        if not v.get("mails"):
            return Text("")
        lines = [Text("\n" + _("Mails"), style="bold")]
        for m in v["mails"]:
            lines.append(
                assemble((_when(m["at"], tz), "dim"), " ", (m["status"], "bold"), " ", m["to"], "  ", m["subject"], one_line=True)
            )
        return Text("\n").join(lines)

    # --- acting ----------------------------------------------------------------------------

    def action_back(self) -> None:
        self.app.pop_screen()

    def action_citation(self) -> None:
        self.show_citation_text = not self.show_citation_text
        self._show_citation()

    def action_details(self) -> None:
        details = self.query_one("#details")
        if details.has_focus:
            self.query_one("#actions").focus()
        else:
            details.focus()

    def action_act(self, index: int) -> None:
        if self.view is None:
            return
        if index < len(getattr(self, "numbered", [])):
            self.start(self.numbered[index])

    @on(OptionList.OptionSelected, "#actions")
    def _selected(self, event: OptionList.OptionSelected) -> None:
        a = self._action(event.option.id)
        if a is not None:
            self.start(a)

    def start(self, a: dict) -> None:
        """Begin an action: refusal, form, dry run, confirmation, apply."""
        if self.busy or self.view is None:
            return
        if self.info is None or self.info.read_only:
            self.app.show_message(  # type: ignore[attr-defined]
                _("Read-only"), plain(self.info.notice if self.info else _("read-only")), kind="refusal"
            )
            return
        if not a["allowed"]:
            from screens.modals import refusal_body

            self.app.show_message(  # type: ignore[attr-defined]
                _("Not possible now: {action}").format(action=a["label"]),
                refusal_body(a["reason"], a["rule"], a["citation"], a.get("citation_text", "")),
            )
            if self.walk is not None:  # a trainee's attempt counts, refused or not
                self.blocked_attempt(a)
            return
        if a["fields"] or a["checklist"] or a["note_required"]:
            from screens.modals import ActionForm

            prefill = self.last_inputs.get(a["key"]) or {"fields": dict(self.view["fields"] or {}), "note": ""}

            def filled(inputs: dict | None) -> None:
                if inputs is not None:
                    self.last_inputs[a["key"]] = inputs
                    self.dry_run(a, inputs)

            self.app.push_screen(
                ActionForm(a, self.view.get("field_specs") or {}, self.view.get("checklist_labels") or {}, prefill, self.view["timezone"]),
                filled,
            )
            return
        self.dry_run(a, {})

    @work(thread=True, exclusive=True, group="act", exit_on_error=False)
    def blocked_attempt(self, a: dict) -> None:
        feedback = self._feedback(a, Refused(a["rule"], a["reason"], a.get("citation", ""), a.get("citation_text", "")))
        if feedback:
            self.app.call_from_thread(self.notify, feedback, title=_("Walkthrough"), severity="information", timeout=12, markup=False)
        self.app.call_from_thread(self.load)

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
        self.app.push_screen(ConfirmScreen(preview, irreversible=a["confirm"], lang=shown, ticket_id=self.ticket_id), answered)

    @work(thread=True, exclusive=True, group="act", exit_on_error=False)
    def apply(self, a: dict, inputs: dict, lang: str | None = None) -> None:
        version = self.view["version"] if self.view else None
        self.app.call_from_thread(self._set_busy, True)
        try:
            result = self.backend.apply(self.ticket_id, a["key"], inputs, version, lang if lang != (self.view or {}).get("lang") else None)
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
            self.notify(feedback, title=_("Walkthrough"), severity="warning", timeout=12, markup=False)

        self.last_inputs.pop(a["key"], None)
        message = _("{action}: done → {state}").format(action=a["label"], state=result.state_label)
        if result.mails:
            message += "\n" + _("{n} mail(s) queued").format(n=len(result.mails))
        self.notify(message, title=f"#{self.ticket_id}", markup=False)
        if result.output:
            self.app.show_message(_("Logs (this reading is recorded)"), material_body(result.output), kind="material")  # type: ignore[attr-defined]
        if result.reveal:
            self.app.show_message(_("One-time code"), reveal_body(result.reveal), kind="reveal")  # type: ignore[attr-defined]
        self.load()

    def _failed(self, a: dict, exc: HelpdeskError, feedback: str | None = None) -> None:
        from screens.modals import refusal_body

        if feedback:
            self.notify(feedback, title=_("Walkthrough"), severity="information", timeout=12, markup=False)

        if isinstance(exc, Conflict):
            self.app.show_message(  # type: ignore[attr-defined]
                _("Changed meanwhile"),
                assemble(
                    (str(exc), "bold"),
                    "\n",
                    _("Nothing was applied. The ticket is shown as it is now: read it again before acting."),
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
            self.app.show_message(_("Cannot do that: {action}").format(action=a["label"]), plain(str(exc)), kind="error")  # type: ignore[attr-defined]

    def _crashed(self, exc: Exception) -> None:
        self.app.show_message(_("Unexpected error"), plain(f"{type(exc).__name__}: {exc}"), kind="error")  # type: ignore[attr-defined]

    # --- taking a ticket -----------------------------------------------------------------------

    def action_take(self) -> None:
        if self.view is None or self.info is None or self.info.read_only:
            self.notify(_("Read-only"), markup=False)
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
        self.app.call_from_thread(self.notify, _("Assigned to {who}").format(who=login) if login else _("Given back"), markup=False)
        self.app.call_from_thread(self.load)
