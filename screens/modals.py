"""Dialogs: the action form, the "what will happen" confirmation, refusals, one-time codes,
material read (logs), the keys, going to a ticket by number, the queue filter."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Button, Checkbox, Input, Label, Select, Static, TextArea

from helpdesk.base.errors import BadInput
from helpdesk.base.fields import coerce
from helpdesk.base.i18n import _, pick
from helpdesk.base.labels import evidence_heading
from helpdesk.storage.filters import KINDS, TicketFilter
from helpdesk.tui_api.views import Preview
from screens.base import N_, BaseModal, SafeInput
from screens.keybar import KeyBar
from screens.safe import assemble, fit, plain


def kind_label(kind: str) -> str:
    return {
        "active": _("open and waiting"),
        "open": _("open"),
        "waiting": _("waiting"),
        "done": _("finished"),
        "all": _("all"),
    }.get(kind, kind)


class Tick(Checkbox):
    """A checkbox whose state is a character ("X" ticked, blank not), not only a colour:
    it reads the same with NO_COLOR and in 16 colours."""

    @property
    def BUTTON_INNER(self) -> str:  # type: ignore[override]
        return "X" if self.value else " "


def heading(text: str) -> Static:
    return Static(Text(text, style="bold"), classes="dialog-title")


class SafeTextArea(TextArea):
    """A TextArea whose cursor blinks only when the app says so (snapshots turn it off).
    Here, not in ``base``: only forms use it, and TextArea costs every start ~8 ms to import."""

    def on_mount(self) -> None:
        self.cursor_blink = getattr(self.app, "cursor_blink", True)


class Dialog(BaseModal):
    """A modal with a box in the middle and a footer. Opening one clears the notices: they
    speak of what came before, and would cover the dialog's buttons on a small terminal."""

    DEFAULT_CLASSES = "dialog"

    def on_screen_resume(self) -> None:
        self.app.clear_notifications()


# --- the action form ---------------------------------------------------------------------


def lang_name(lang: str) -> str:
    return {"fr": _("French"), "en": _("English")}.get(lang, lang)


class ActionForm(Dialog):
    """Fields, checklist items and the note an action needs, checked before anything runs."""

    BINDINGS = [
        Binding("escape", "cancel", N_("Cancel"), id="form.cancel"),
        Binding("ctrl+s,f2", "submit", N_("Continue"), id="form.submit"),
    ]

    def __init__(
        self, action: dict, specs: dict, checklist_labels: dict, prefill: dict, tz: str
    ) -> None:
        super().__init__()
        self.action = action
        self.specs = specs
        self.checklist_labels = checklist_labels
        self.prefill = prefill
        self.tz = tz

    def compose(self) -> ComposeResult:
        a = self.action
        with Vertical(classes="dialog-box"):
            yield heading(a["label"])
            if a.get("citation"):
                yield Static(plain(a["citation"], "italic"), classes="dim")
            with VerticalScroll(classes="dialog-body"):
                for name in a.get("fields") or []:
                    spec = self.specs.get(name, {})
                    label = pick(spec.get("label")) or name
                    yield Label(assemble((label, "bold"), " *"), classes="field-label")
                    yield self._field_widget(name, spec)
                    yield Static("", id=f"err-{name}", classes="error")
                if a.get("checklist"):
                    yield Label(
                        Text(_("Checklist (every item must be ticked)"), style="bold"),
                        classes="field-label",
                    )
                    for item in a["checklist"]:
                        yield Tick(plain(self.checklist_labels.get(item, item)), id=f"check-{item}")
                    yield Static("", id="err-checklist", classes="error")
                yield Label(
                    assemble(
                        (_("Note"), "bold"),
                        " *" if a.get("note_required") else "",
                        ("  " + _("(recorded in the history)"), "dim"),
                    ),
                    classes="field-label",
                )
                yield SafeTextArea(
                    self.prefill.get("note", ""), id="note", classes="note", compact=True
                )
                yield Static("", id="err-note", classes="error")
            with Horizontal(classes="dialog-buttons"):
                yield Button(_("Continue"), id="submit", variant="primary", compact=True)
                yield Button(compact=True, label=_("Cancel"), id="cancel")
        yield KeyBar()

    def _field_widget(self, name: str, spec: dict):
        kind = spec.get("type", "string")
        value = self.prefill.get("fields", {}).get(name)
        wid = f"field-{name}"
        if kind == "choice":
            options = [(Text(c), c) for c in spec.get("choices", [])]
            return Select(
                options,
                prompt=_("Choose…"),
                id=wid,
                value=value if value in spec.get("choices", []) else Select.NULL,
                compact=True,
            )
        if kind == "bool":
            return Tick(_("yes"), value=value is True, id=wid)
        placeholder = {
            "date": _("YYYY-MM-DD"),
            "datetime": _("YYYY-MM-DD HH:MM (time in {tz})").format(tz=self.tz),
            "int": _("a whole number"),
            "float": _("a number"),
            "email": _("an e-mail address"),
        }.get(kind, "")
        return SafeInput(
            "" if value is None else str(value), placeholder=placeholder, id=wid, compact=True
        )

    def on_mount(self) -> None:
        self.focus_next()

    @on(Input.Submitted)
    def _next(self, event: Input.Submitted) -> None:
        self.focus_next()

    @on(Button.Pressed, "#submit")
    def _submit(self) -> None:
        self.action_submit()

    @on(Button.Pressed, "#cancel")
    def _cancel(self) -> None:
        self.action_cancel()

    def action_cancel(self) -> None:
        self.dismiss(None)

    def collect(self) -> tuple[dict | None, dict[str, str]]:
        """The inputs, or the errors by field."""
        a = self.action
        errors: dict[str, str] = {}
        fields: dict[str, Any] = {}
        for name in a.get("fields") or []:
            spec = self.specs.get(name, {})
            widget = self.query_one(f"#field-{name}")
            if isinstance(widget, Select):
                raw = None if widget.value is Select.NULL else widget.value
            elif isinstance(widget, Checkbox):
                raw = widget.value
            else:
                raw = widget.value.strip()
            if raw in (None, ""):
                errors[name] = _("required")
                continue
            try:
                fields[name] = coerce(name, spec, raw, self.tz)
            except BadInput as exc:
                errors[name] = str(exc)
        checks = []
        for item in a.get("checklist") or []:
            if self.query_one(f"#check-{item}", Checkbox).value:
                checks.append(item)
        if len(checks) != len(a.get("checklist") or []):
            errors["checklist"] = _("tick every item: the procedure requires it")
        note = self.query_one("#note", SafeTextArea).text.strip()
        if a.get("note_required") and not note:
            errors["note"] = _("a note recording the reason is required")
        if errors:
            return None, errors
        return {"fields": fields, "checks": checks, "note": note}, {}

    def action_submit(self) -> None:
        inputs, errors = self.collect()
        for err in self.query(".error"):
            err.update("")
        if errors:
            first = None
            for name, message in errors.items():
                self.query_one(f"#err-{name}", Static).update(plain(message))
                first = first or name
            target = {"note": "#note", "checklist": None}.get(first, f"#field-{first}")
            if target:
                self.query_one(target).focus()
            return
        self.dismiss(inputs)


# --- what will happen --------------------------------------------------------------------


def preview_text(p: Preview, *, irreversible: bool, lang: str) -> Text:
    from helpdesk.base.labels import label

    out: list[Text] = []
    if irreversible:
        out.append(Text(_("This step cannot be undone. Read what it will do:"), style="bold"))
    out.append(assemble((_("State") + ": ", "bold"), p.from_state, " → ", (p.to_state, "bold")))
    for step in p.steps[1:]:
        out.append(
            assemble(
                "  ",
                (_("then automatically") + ": ", "dim"),
                step["action"],
                " → ",
                step["to"] or "",
            )
        )
    if p.account_status:
        before, after = p.account_status
        out.append(
            assemble(
                (_("Account") + ": ", "bold"),
                p.account or "",
                "  ",
                label("account-status", before),
                " → ",
                (label("account-status", after), "bold"),
            )
        )
    if p.actions:
        out.append(Text(_("Service actions:"), style="bold"))
        out.extend(assemble("  ", a) for a in p.actions)
    if p.deadlines:
        out.append(Text(_("Dates set:"), style="bold"))
        for d in p.deadlines:
            extra = f"  → {d['action']}" if d.get("action") else ""
            note = f"  ({d['note']})" if d.get("note") else ""
            out.append(
                assemble(
                    "  ", (label("deadline", d["name"]), ""), "  ", (d["at"], "bold"), extra, note
                )
            )
    if p.linked:
        out.append(
            assemble(
                (_("Linked ticket opened") + ": ", "bold"), ", ".join(f"#{i}" for i in p.linked)
            )
        )
    if p.reveal:
        out.append(
            Text(
                _("A one-time code will be shown to you, once, to read out on the phone."),
                style="bold",
            )
        )
    if p.output:
        out.append(
            Text(
                _("The logs will be shown to you; the reading is recorded with your note."),
                style="bold",
            )
        )
    for w in p.warnings:
        out.append(assemble(("! ", "bold"), w))
    if p.mails:
        out.append(
            Text(
                _("Mails to be queued ({n}), in {lang}:").format(
                    n=len(p.mails), lang=lang_name(lang)
                ),
                style="bold",
            )
        )
        other = "en" if lang == "fr" else "fr"
        out.append(
            Text(_("(l: write them in {lang} instead)").format(lang=lang_name(other)), style="dim")
        )
        for m in p.mails:
            out.append(Text("─" * 40, style="dim"))
            out.append(assemble((_("To") + ": ", "bold"), m["to"]))
            out.append(assemble((_("Subject") + ": ", "bold"), m["subject"]))
            out.append(assemble((_("Language") + ": ", "dim"), lang_name(m["lang"])))
            out.append(Text(""))
            out.append(plain(m["body"].rstrip("\n")))
        out.append(Text("─" * 40, style="dim"))
    else:
        out.append(Text(_("No mail will be sent."), style="dim"))
    return Text("\n").join(out)


class ConfirmScreen(Dialog):
    """Shows what an action will do (from a dry run rolled back) and asks to go ahead."""

    BINDINGS = [
        Binding("y", "confirm", N_("Confirm"), id="confirm.yes"),
        Binding("n,escape", "cancel", N_("Cancel"), id="confirm.no"),
        Binding("l", "switch_lang", N_("Mail language"), id="confirm.lang"),
    ]

    #: What the dialog answers: True (go ahead), False (cancel), or ("lang", code): show the
    #: same step again with the mails in that language.
    def __init__(self, preview: Preview, *, irreversible: bool, lang: str, ticket_id: int) -> None:
        super().__init__()
        self.preview = preview
        self.irreversible = irreversible
        self.lang = lang
        self.ticket_id = ticket_id

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog-box wide"):
            yield heading(
                _("#{id}: {action} — what will happen").format(
                    id=self.ticket_id, action=self.preview.label
                )
            )
            with VerticalScroll(classes="dialog-body", id="preview"):
                yield Static(
                    preview_text(self.preview, irreversible=self.irreversible, lang=self.lang)
                )
            with Horizontal(classes="dialog-buttons"):
                yield Button(
                    compact=True,
                    label=_("Confirm (y)"),
                    id="yes",
                    variant="warning" if self.irreversible else "primary",
                )
                yield Button(compact=True, label=_("Cancel (n)"), id="no")
        yield KeyBar()

    def on_mount(self) -> None:
        self.query_one("#preview").focus()

    @on(Button.Pressed, "#yes")
    def _yes(self) -> None:
        self.action_confirm()

    @on(Button.Pressed, "#no")
    def _no(self) -> None:
        self.action_cancel()

    def action_confirm(self) -> None:
        self.dismiss(True)

    def action_cancel(self) -> None:
        self.dismiss(False)

    def check_action(self, action: str, parameters: tuple) -> bool | None:
        if action == "switch_lang":
            return bool(self.preview.mails)
        return True

    def action_switch_lang(self) -> None:
        self.dismiss(("lang", "en" if self.lang == "fr" else "fr"))


# --- messages ------------------------------------------------------------------------------


class MessageScreen(Dialog):
    """A refusal, a conflict, an error: read, then closed with Enter or Escape."""

    BINDINGS = [Binding("escape,enter", "close", N_("Close"), id="message.close")]

    def __init__(self, title: str, body: Text, *, kind: str = "refusal") -> None:
        super().__init__()
        self.title_text = title
        self.body = body
        self.kind = kind

    def compose(self) -> ComposeResult:
        with Vertical(classes=f"dialog-box {self.kind}"):
            yield heading(self.title_text)
            with VerticalScroll(classes="dialog-body", id="message-body"):
                yield Static(self.body)
            with Horizontal(classes="dialog-buttons"):
                yield Button(compact=True, label=_("Close"), id="close")
        yield KeyBar()

    def on_mount(self) -> None:
        self.query_one("#close").focus()

    @on(Button.Pressed, "#close")
    def _close(self) -> None:
        self.dismiss(None)

    def action_close(self) -> None:
        self.dismiss(None)


def refusal_body(reason: str, rule: str = "", citation: str = "", citation_text: str = "") -> Text:
    parts = [plain(reason, "bold")]
    if rule:
        from helpdesk.base.labels import label

        parts.append(assemble((_("Rule") + ": ", "dim"), label("rule", rule)))
    if citation:
        parts.append(assemble((_("Policy") + ": ", "dim"), (citation, "italic")))
    if citation_text:
        parts.append(assemble("« ", (citation_text, "italic"), " »"))
    return Text("\n").join(parts)


def reveal_body(secrets: list[dict]) -> Text:
    parts = [Text(_("One-time code, to read out on the phone to the registered contact:"))]
    for s in secrets:
        parts.append(Text(""))
        parts.append(plain("      " + s.get("secret", ""), "bold reverse"))
        parts.append(Text(""))
        parts.append(
            plain(
                _("Valid once, until {expires}. It will not be shown again.").format(
                    expires=s.get("expires", "")
                )
            )
        )
    return Text("\n").join(parts)


def material_body(items: list[dict]) -> Text:
    parts = []
    for item in items:
        parts.append(plain(evidence_heading(item), "bold"))
        text = str(item.get("text", ""))
        if len(text) > 200_000:
            text = text[:200_000] + "\n…"
        parts.append(plain(text))
    return (
        Text("\n").join(parts) if parts else Text(_("No log material is attached to this ticket."))
    )


# --- keys ----------------------------------------------------------------------------------


class KeysScreen(Dialog):
    """Every key that works here, with its label and the id to remap it in keymap.toml."""

    BINDINGS = [Binding("escape,question_mark,enter", "close", N_("Close"), id="keys.close")]

    def __init__(self, screen) -> None:
        super().__init__()
        self.under = screen

    def compose(self) -> ComposeResult:
        rows: list[Text] = []
        seen: set[tuple[str, str]] = set()
        app = self.app
        for key, active in self.under.active_bindings.items():
            b = active.binding
            if not b.description or b.system or not b.id:
                continue
            mark = (b.id or b.action, key)
            if mark in seen:
                continue
            seen.add(mark)
            # The label in a column of its own, cut to fit, and the id after a gap: they
            # never run into each other, whatever the language.
            rows.append(
                assemble(
                    (f"{app.get_key_display(b):>10}", "bold"),
                    "  ",
                    fit(b.description, 32),
                    "  ",
                    (b.id or "", "dim"),
                    one_line=True,
                )
            )
        path = getattr(app, "keymap_path", None)
        if path is not None:
            home = str(Path.home())
            path = "~" + str(path)[len(home) :] if str(path).startswith(home + "/") else str(path)
        with Vertical(classes="dialog-box wide"):
            yield heading(_("Keys"))
            with VerticalScroll(classes="dialog-body", id="keys-body"):
                yield Static(Text("\n").join(rows) if rows else Text(_("No key here.")))
                yield Static(
                    assemble(
                        (
                            "\n"
                            + _(
                                "Digits run the actions numbered on a ticket; each action keeps its digit from step to step. Ctrl+P opens the command palette."
                            )
                            + "\n",
                            "",
                        ),
                        (_("Marks") + "\n", "bold"),
                        _("  …  the action asks for fields, a checklist or a note first") + "\n",
                        _(
                            "  !  the action asks for confirmation (it sends mail or has legal weight)"
                        )
                        + "\n",
                        _("  ✘  blocked: the rule and its article follow") + "\n",
                        _("  ⚑  someone else has the ticket open;  @  assigned to you") + "\n",
                        _(
                            "  !  before a date: overdue;  ▶  the current step;  ▸  the cursor, or where the keys are"
                        )
                        + "\n\n",
                        (
                            _('Change keys in {path} (binding id = "keys").').format(
                                path=path or "keymap.toml"
                            ),
                            "dim",
                        ),
                    )
                )
        yield KeyBar()

    def on_mount(self) -> None:
        self.query_one("#keys-body").focus()

    def action_close(self) -> None:
        self.dismiss(None)


# --- go to a ticket ------------------------------------------------------------------------


class GotoScreen(Dialog):
    BINDINGS = [Binding("escape", "cancel", N_("Cancel"), id="goto.cancel")]

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog-box small"):
            yield heading(_("Go to ticket number"))
            yield SafeInput(placeholder="#", type="integer", id="goto-number", compact=True)
            yield Static("", classes="error", id="goto-error")
        yield KeyBar()

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    @on(Input.Submitted)
    def _go(self, event: Input.Submitted) -> None:
        value = event.value.strip().lstrip("#")
        if not value.isdigit():
            self.query_one("#goto-error", Static).update(Text(_("a ticket number")))
            return
        self.dismiss(int(value))

    def action_cancel(self) -> None:
        self.dismiss(None)


# --- queue filter ------------------------------------------------------------------------


class FilterScreen(Dialog):
    BINDINGS = [
        Binding("escape", "cancel", N_("Cancel"), id="filter.cancel"),
        Binding("ctrl+s,f2", "apply", N_("Apply"), id="filter.apply"),
    ]

    def __init__(self, flt: TicketFilter, queue: str | None) -> None:
        super().__init__()
        self.flt = flt
        self.queue = queue

    def compose(self) -> ComposeResult:

        info = self.backend.info
        policies = sorted(info.policies) if info else []
        states = info.queue_states.get(self.queue or "", []) if info else []
        if not self.queue and info:
            merged: dict[str, str] = {}
            for q_states in info.queue_states.values():
                for k, label in q_states:
                    merged.setdefault(k, label)
            states = list(merged.items())
        people = info.volunteers if info else []
        with Vertical(classes="dialog-box"):
            yield heading(_("Filter the queue"))
            with VerticalScroll(classes="dialog-body"):
                yield Label(_("Provider"))
                yield Select(
                    [(Text(info.policies[p][0] if info else p), p) for p in policies],
                    prompt=_("all"),
                    id="f-policy",
                    compact=True,
                    value=self.flt.policy or Select.NULL,
                )
                yield Label(_("Show"))
                yield Select(
                    [(Text(kind_label(k)), k) for k in KINDS],
                    allow_blank=False,
                    id="f-kind",
                    compact=True,
                    value=self.flt.kind,
                )
                yield Label(_("State"))
                yield Select(
                    [(assemble(label, (f"  {key}", "dim")), key) for key, label in states],
                    prompt=_("any"),
                    id="f-state",
                    compact=True,
                    value=self.flt.state if self.flt.state in dict(states) else Select.NULL,
                )
                yield Label(_("Assignee"))
                yield Select(
                    [(Text(_("nobody")), "-")] + [(Text(p), p) for p in people],
                    prompt=_("all"),
                    id="f-assignee",
                    compact=True,
                    value=self.flt.assignee
                    if self.flt.assignee in (["-"] + people)
                    else Select.NULL,
                )
            with Horizontal(classes="dialog-buttons"):
                yield Button(compact=True, label=_("Apply"), id="apply", variant="primary")
                yield Button(compact=True, label=_("Cancel"), id="cancel")
        yield KeyBar()

    def on_mount(self) -> None:
        self.query_one("#f-policy").focus()

    def _value(self, wid: str):
        v = self.query_one(wid, Select).value
        return None if v is Select.NULL else v

    @on(Button.Pressed, "#apply")
    def action_apply(self) -> None:
        self.dismiss(
            self.flt.with_(
                policy=self._value("#f-policy"),
                kind=self._value("#f-kind") or "active",
                state=self._value("#f-state"),
                assignee=self._value("#f-assignee"),
            )
        )

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)
