"""A mail of ours that came back shows on its ticket's screen: the ticket waits for a volunteer."""

from __future__ import annotations

import email
import json
from email import policy as email_policy

from helpdesk.cli.main import main
from screens.ticket import TicketScreen
from tests.ingest.mailmaker import maildir
from tests.tui.conftest import press, settle, type_text


def _cli(url: str, *args: str, capsys) -> dict:
    capsys.readouterr()
    assert main(["--db", url, "--as", "alice", *args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


async def test_a_bounced_reset_link_shows_on_the_ticket_screen(
    db_url, make_app, tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv("HELPDESK_RESET_URL", "https://wigii.example/reset?token=")
    monkeypatch.setenv("HELPDESK_MAILDIR", str(tmp_path / "sent"))
    monkeypatch.setenv(
        "HELPDESK_MAIL_FROM", "helpdesk@provider.example"
    )  # for the seed's other mails
    _cli(
        db_url,
        "account",
        "add",
        "bounced",
        "--policy",
        "wigii",
        "--email",
        "gone@example.org",
        capsys=capsys,
    )
    ticket = _cli(
        db_url,
        "ticket",
        "open",
        "password-reset",
        "--policy",
        "wigii",
        "--account",
        "bounced",
        "--requester",
        "gone@example.org",
        capsys=capsys,
    )["id"]
    _cli(db_url, "ticket", "act", str(ticket), "issue-reset-link", capsys=capsys)
    assert _cli(db_url, "outbox", "send", capsys=capsys)["counts"]["sent"] >= 1
    mails = [
        email.message_from_bytes(f.read_bytes(), policy=email_policy.default)
        for f in (tmp_path / "sent" / "new").iterdir()
    ]
    [sent] = [m for m in mails if m["To"] == "gone@example.org"]
    bounce = (
        "From: MAILER-DAEMON@mx.example.org (Mail Delivery System)\nTo: contact@wigii.org\n"
        "Subject: Undelivered Mail Returned to Sender\nMIME-Version: 1.0\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\n\n'
        "--B\nContent-Type: text/plain\n\nYour message could not be delivered.\n"
        "--B\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx.example.org\n\n"
        "Final-Recipient: rfc822; gone@example.org\nAction: failed\nStatus: 5.1.1\n"
        "Diagnostic-Code: smtp; 550 5.1.1 <gone@example.org>: User unknown\n"
        f"--B\nContent-Type: text/rfc822-headers\n\nMessage-ID: {sent['Message-ID']}\nSubject: {sent['Subject']}\n--B--\n"
    ).encode()
    assert (
        _cli(db_url, "ingest", "mail", str(maildir(tmp_path / "in", [bounce])), capsys=capsys)[
            "counts"
        ]["bounces"]
        == 1
    )

    app = make_app(db_url)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await press(pilot, "g")
        await type_text(pilot, str(ticket))
        await press(pilot, "enter")
        await settle(pilot)
        assert isinstance(app.screen, TicketScreen) and app.screen.ticket_id == ticket
        text = "\n".join(s.text for s in app.screen._compositor.render_strips())
        assert (
            "à gone@example.org est revenu : 550 5.1.1 <gone@example.org>: User unknown" in text
        )  # French, the default
