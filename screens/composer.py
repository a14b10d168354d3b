"""The composer: a reply (free text or a saved reply), a note or an ask, in a text area,
with a preview of the mail exactly as it will leave, then a confirmation.

The dialog answers ``None`` (cancelled) or a dict ``{"kind", "text", "template", "items"}``
that the ticket screen hands to the backend; the rules (recipients, credentials) are the
core's, checked by the preview and again when the mail is queued.
"""

from __future__ import annotations

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Button, Input, Select, SelectionList, Static

from helpdesk.base.i18n import _
from screens.base import N_
from screens.keybar import KeyBar
from screens.base import SafeInput
from screens.modals import Dialog, SafeTextArea, heading
from screens.safe import plain


class Composer(Dialog):
    BINDINGS = [
        Binding("escape", "cancel", N_("Cancel"), id="composer.cancel"),
        Binding("f3", "preview", N_("Preview"), id="composer.preview"),
        Binding("ctrl+s,f2", "send", N_("Send"), id="composer.send"),
    ]

    def __init__(
        self,
        kind: str,
        ticket_id: int,
        *,
        replies: list[str] = (),
        reply_subjects: dict[str, str] | None = None,
        items: dict | None = None,
        preview=None,
    ) -> None:
        super().__init__()
        self.kind = kind  # reply | note | ask
        self.ticket_id = ticket_id
        self.replies = list(replies)
        self.reply_subjects = reply_subjects or {}  # key -> the subject it leaves with
        self.items = items or {}
        self.preview_fn = preview  # callable(request) -> dict (to, subject, body) or raises
        self.previewed: dict | None = None

    def compose(self) -> ComposeResult:
        title = {
            "reply": _("#{id}: reply"),
            "note": _("#{id}: internal note"),
            "ask": _("#{id}: ask for what is missing"),
        }[self.kind]
        with Vertical(classes="dialog-box wide"):
            yield heading(title.format(id=self.ticket_id))
            if self.kind == "reply" and self.replies:
                yield Select(
                    [(Text(self.reply_subjects.get(k) or k), k) for k in self.replies],
                    prompt=_("Saved reply (or write below)"),
                    id="template",
                )
            if self.kind == "ask":
                yield SelectionList[str](
                    *[(text, key) for key, text in self.items.items()], id="items"
                )
            else:
                yield SafeTextArea(id="text")
            with VerticalScroll(classes="dialog-body", id="preview"):
                yield Static(id="preview-text")
            with Horizontal(classes="dialog-buttons"):
                if self.kind != "note":
                    yield Button(compact=True, label=_("Preview (F3)"), id="do-preview")
                yield Button(
                    compact=True,
                    label=_("Send (ctrl+s)") if self.kind != "note" else _("Save (ctrl+s)"),
                    id="do-send",
                )
                yield Button(compact=True, label=_("Cancel (esc)"), id="do-cancel")
        yield KeyBar()

    def on_mount(self) -> None:
        if self.kind == "ask":
            items = self.query_one("#items", SelectionList)
            items.highlighted = 0 if self.items else None
            items.focus()
        else:
            self.query_one("#text", SafeTextArea).focus()

    def request(self) -> dict:
        req: dict = {"kind": self.kind, "text": None, "template": None, "items": []}
        if self.kind == "ask":
            req["items"] = list(self.query_one("#items", SelectionList).selected)
            return req
        text = self.query_one("#text", SafeTextArea).text
        if self.kind == "reply" and self.replies:
            chosen = self.query_one("#template", Select).value
            if isinstance(chosen, str) and not text.strip():
                req["template"] = chosen
        req["text"] = text if req["template"] is None else None
        return req

    @on(Button.Pressed, "#do-preview")
    def _preview_pressed(self) -> None:
        self.action_preview()

    @on(Button.Pressed, "#do-send")
    def _send_pressed(self) -> None:
        self.action_send()

    @on(Button.Pressed, "#do-cancel")
    def _cancel_pressed(self) -> None:
        self.action_cancel()

    def action_preview(self) -> None:
        if self.kind == "note" or self.preview_fn is None:
            return
        self.preview_fn(self.request(), self.show_preview)

    def show_preview(self, draft: dict | None, error: str | None = None) -> None:
        """Called by the ticket screen with the mail as it will leave, or what refuses it."""
        box = self.query_one("#preview-text", Static)
        if error:
            self.previewed = None
            box.update(plain(error, "bold red"))
            return
        self.previewed = draft
        lines = [
            plain(_("To: {to}").format(to=draft["to"]), "bold", one_line=True),
            plain(_("Subject: {s}").format(s=draft["subject"]), "bold", one_line=True),
            Text(""),
            plain(draft["body"]),
            Text(_("Press ctrl+s to send this mail."), style="italic"),
        ]
        box.update(Text("\n").join(lines))

    def action_send(self) -> None:
        req = self.request()
        if self.kind == "note":
            if (req["text"] or "").strip():
                self.dismiss(req)
            return
        if self.previewed is None:  # the confirmation is the preview: shown first, then sent
            self.action_preview()
            return
        self.dismiss(req)

    def action_cancel(self) -> None:
        self.dismiss(None)


class AskValue(Dialog):
    """One value asked for (the account to set, the ticket to merge into); answers the
    text typed, or ``None``."""

    BINDINGS = [Binding("escape", "cancel", N_("Cancel"), id="askvalue.cancel")]

    def __init__(self, title: str, hint: str = "", placeholder: str = "") -> None:
        super().__init__()
        self.title_text = title
        self.hint = hint
        self.placeholder = placeholder

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog-box"):
            yield heading(self.title_text)
            if self.hint:
                yield Static(plain(self.hint, "dim"))
            yield SafeInput(placeholder=self.placeholder, id="value", compact=True)
        yield KeyBar()

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        if event.value.strip():
            self.dismiss(event.value.strip())

    def action_cancel(self) -> None:
        self.dismiss(None)
