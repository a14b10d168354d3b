"""The conversation of a ticket, shown whole in the ticket screen's scrolling details pane.

Incoming mails, outgoing mails and notes are told apart by a word and a sign (▼ received,
▲ sent, ✎ note), not by colour alone; the quoted history of a mail is folded to a line.
Untrusted text is shown as plain ``Text``, never as markup.
"""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from helpdesk.service.conversation_text import attachment_line, message_heading, summary_lines
from helpdesk.base.i18n import _
from screens.safe import plain

STYLES = {"in": "bold", "out": "bold cyan", "note": "bold yellow"}


def conversation_text(view: dict) -> Text:
    messages = view.get("messages") or []
    about = [plain(line, style or "") for line, style in summary_lines(view)]
    tz = view.get("timezone") or "UTC"
    lines = [Text("\n" + _("Conversation:"), style="bold"), *about]
    if not messages:  # a ticket opened by hand, or not yet answered: said, not left blank
        lines.append(Text("  " + _("No message yet."), style="dim"))
    for m in messages:
        lines.append(plain(message_heading(m, tz), STYLES.get(m["direction"], "bold")))
        if m.get("subject"):
            lines.append(
                plain("  " + _("Subject: {s}").format(s=m["subject"]), one_line=True, limit=300)
            )
        for a in m.get("attachments") or []:
            lines.append(plain("  " + attachment_line(a), "dim"))
        for line in (m.get("new") or "").splitlines() or [""]:
            lines.append(plain("  " + line))
        if m.get("quoted"):
            lines.append(
                Text(
                    "  " + _("[{n} quoted lines folded]").format(n=len(m["quoted"].splitlines())),
                    style="dim",
                )
            )
    return Text("\n").join(lines)


class Conversation(Static):
    """The messages of the ticket shown (``update_view`` with the ticket's view)."""

    def update_view(self, view: dict) -> None:
        self.update(conversation_text(view))
