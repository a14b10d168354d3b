"""The conversation in the TUI: shown whole in the ticket screen, incoming, outgoing and
notes told apart by words and signs; a reply, a note and an ask written in the composer,
previewed as they will leave, then sent; a credential refused in the preview. With Pilot on
the real app (its backend in a process of its own), and SVG snapshots at 80×24 and 120×40."""

from __future__ import annotations

from textual.widgets import Select, Static

import pytest
from sqlmodel import select

from helpdesk.base import clock
from helpdesk.storage import db, messages
from helpdesk.ingest.message import parse_mail
from helpdesk.storage.models import Message, Outbox
from screens.composer import Composer
from screens.ticket import TicketScreen
from tests.tui.conftest import press, settle, type_text
from tests.tui.seed import HOSTILE_SUBJECT

INCOMING = (
    "From: Jean Dupont <jean.dupont@example.org>\n"
    "To: support@indigos.example\n"
    "Subject: Re: mon mot de passe\n"
    "Message-ID: <tui-1@example.org>\n"
    "MIME-Version: 1.0\n"
    'Content-Type: multipart/mixed; boundary="B"\n\n'
    "--B\nContent-Type: text/html; charset=utf-8\n\n"
    "<p>Bonjour,</p><p>Je n'arrive toujours pas &agrave; me connecter depuis lundi.</p>"
    "<p>{hostile}</p><blockquote>Le 1 mars, Indigos a &eacute;crit : ancien message</blockquote>\n"
    '--B\nContent-Type: image/png\nContent-Disposition: attachment; filename="capture.png"\n'
    "Content-Transfer-Encoding: base64\n\niVBORw0KGgo=\n--B--\n"
)


def _with_conversation(url: str, tid: int = 1, *, hostile: bool = False) -> None:
    text = INCOMING.format(
        hostile=HOSTILE_SUBJECT.replace("<", "&lt;") if hostile else "Merci d'avance."
    )
    mail = parse_mail(text.encode())
    with db.write_session(url) as s:
        messages.record_incoming(s, tid, mail, evidence_id=None, now=clock.now())
        messages.record_note(
            s, tid, author="bob", text="Appelé Jean, il attend le lien.", now=clock.now()
        )


def _conversation(url: str, tid: int) -> list[Message]:
    with db.read_session(url) as s:
        return list(s.exec(select(Message).where(Message.ticket_id == tid).order_by(Message.id)))


async def test_reply_note_and_ask_through_the_composer(db_url, make_app):
    _with_conversation(db_url)
    app = make_app(db_url)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        app.open_ticket(1)
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, TicketScreen)
        shown = str(screen.pane_widget("conversation").query_one(Static).render())
        assert (
            "▼" in shown
            and "received from jean.dupont@example.org" in shown
            and "✎ note by bob" in shown
        )
        assert "capture.png (image/png" in shown and "toujours pas à me connecter" in shown
        assert "quoted lines folded" in shown and "ancien message" not in shown

        # A reply carrying a password: the preview says what refuses it; nothing is queued.
        await press(pilot, "m")
        assert isinstance(app.screen, Composer)
        # the saved replies by the subject they leave with (the ticket's mails are French),
        # never by their keys
        offered = [str(p) for p, _v in app.screen.query_one("#template", Select)._options]
        assert "Votre demande est traitée" in offered, offered
        assert not {"resolved", "received", "write-from-registered"} & set(offered), offered
        await type_text(pilot, "Votre mot de passe : Xk7pQ2m9z")
        await press(pilot, "f3")
        assert "cannot carry a password" in str(app.screen.query_one("#preview-text").render())
        await press(pilot, "ctrl+s")  # no preview accepted: it is shown again, not sent
        assert isinstance(app.screen, Composer)
        await press(pilot, "escape")

        # A plain reply: preview, then send.
        await press(pilot, "m")
        await type_text(pilot, "Nous vous envoyons un lien de reinitialisation.")
        await press(pilot, "f3")
        preview = str(app.screen.query_one("#preview-text").render())
        assert "To: jean.dupont@example.org" in preview and "[indigos #1]" in preview
        await press(pilot, "ctrl+s")
        assert isinstance(app.screen, TicketScreen)

        # A note, never mailed.
        await press(pilot, "n")
        await type_text(pilot, "Lien a envoyer apres appel.")
        await press(pilot, "ctrl+s")

        # An ask: the items of this queue, ticked.
        await press(pilot, "k")
        assert isinstance(app.screen, Composer)
        await press(pilot, "space")  # the first item, highlighted
        await press(pilot, "f3")
        assert "we still need" in str(
            app.screen.query_one("#preview-text").render()
        ).lower() or "manque" in str(app.screen.query_one("#preview-text").render())
        await press(pilot, "ctrl+s")
        assert isinstance(app.screen, TicketScreen)
        shown = str(app.screen.pane_widget("conversation").query_one(Static).render())
        assert "▲ sent to jean.dupont@example.org by alice" in shown
    rows = _conversation(db_url, 1)
    assert [r.direction for r in rows] == ["in", "note", "out", "note", "out"]
    with db.read_session(db_url) as s:
        mails = list(s.exec(select(Outbox).where(Outbox.ticket_id == 1).order_by(Outbox.id)))
    assert [m.template for m in mails] == ["reply:reply", "reply:ask"]
    assert "reinitialisation" in mails[0].body and "Xk7" not in mails[0].body
    assert all("Lien a envoyer" not in m.body for m in mails)


SIZES = [pytest.param((80, 24), id="80x24"), pytest.param((120, 40), id="120x40")]


async def test_a_ticket_with_no_message_says_so_in_french_by_default_and_in_english(
    db_url, make_app, monkeypatch
):
    from helpdesk.base.i18n import set_lang

    monkeypatch.delenv("HELPDESK_LANG", raising=False)
    assert _conversation(db_url, 1) == []  # opened by hand: nobody wrote yet
    for lang, said, not_said in (
        (None, "Aucun message pour l'instant.", "No message yet."),
        ("en", "No message yet.", "Aucun message"),
    ):
        set_lang(lang)  # None: the default language
        app = make_app(db_url)
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(pilot)
            app.open_ticket(1)
            await settle(pilot)
            app.screen.show_pane("conversation")
            await settle(pilot)
            pane = app.screen.pane_widget("conversation")
            assert pane.display
            shown = str(pane.query_one(Static).render())
            assert said in shown and not_said not in shown
            app.exit()


def _scrolled_to_conversation():
    async def run_before(pilot) -> None:
        await settle(pilot)
        pilot.app.open_ticket(1)
        await settle(pilot)
        pilot.app.screen.show_pane("conversation")
        await settle(pilot)

    return run_before


@pytest.mark.parametrize("size", SIZES)
def test_conversation_snapshot(snap_compare, hostile_url, make_app, size):
    _with_conversation(hostile_url, hostile=True)
    assert snap_compare(
        make_app(hostile_url), terminal_size=size, run_before=_scrolled_to_conversation()
    )


@pytest.mark.parametrize("size", SIZES)
def test_composer_preview_snapshot(snap_compare, db_url, make_app, size):
    _with_conversation(db_url)

    async def run_before(pilot) -> None:
        await settle(pilot)
        pilot.app.open_ticket(1)
        await settle(pilot)
        await press(pilot, "m")
        await type_text(pilot, "Bonjour Jean, voici la marche a suivre.")
        await press(pilot, "f3")

    assert snap_compare(make_app(db_url), terminal_size=size, run_before=run_before)


async def test_set_account_and_merge_from_the_ticket_screen(db_url, make_app):
    from helpdesk.storage.models import Account, Ticket

    app = make_app(db_url)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        app.open_ticket(6)
        await settle(pilot)
        await press(pilot, "a")
        await type_text(pilot, "cmartin")
        await press(pilot, "enter")
        await press(pilot, "j")
        await type_text(pilot, "1")
        await press(pilot, "enter")
        assert isinstance(app.screen, TicketScreen) and app.screen.ticket_id == 1
        assert "Merged into" not in str(
            app.screen.pane_widget("conversation").query_one(Static).render()
        )
    with db.read_session(db_url) as s:
        six = s.get(Ticket, 6)
        assert six.merged_into == 1 and six.state_kind == "done"
        assert s.get(Account, six.account_id).login == "cmartin"
