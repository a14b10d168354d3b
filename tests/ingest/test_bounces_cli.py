"""Bounces through ``helpdesk ingest mail``: a returned mail of ours is marked on its outbox
row and its ticket; an unmatched bounce is kept as such; a refusal for spam is a
mail-reputation signal; none of them opens a ticket of its own.

The real command line in a subprocess; mails really delivered into a Maildir by
``helpdesk outbox send``, and the bounces built from what left.

The public corpora of real bounces run in ``test_bounce_corpus.py``."""

from __future__ import annotations

import email
from email import policy as email_policy
from pathlib import Path


from tests.ingest.mailmaker import NOW, db_rows, mail, maildir

RESET_URL = "https://wigii.example/reset?token="
LATER = "2026-11-23T11:00:00Z"


def _sent(folder: Path) -> list[email.message.EmailMessage]:
    return [
        email.message_from_bytes(f.read_bytes(), policy=email_policy.default)
        for f in sorted((folder / "new").iterdir())
    ]


def _postfix_dsn(
    original: bytes, recipient: str, *, status: str, diagnostic: str, to: str = "contact@wigii.org"
) -> bytes:
    """What Postfix sends back: multipart/report with the whole returned message."""
    return (
        (
            "Return-Path: <>\n"
            "From: MAILER-DAEMON@mx.example.org (Mail Delivery System)\n"
            f"To: {to}\n"
            "Subject: Undelivered Mail Returned to Sender\n"
            "Date: Mon, 23 Nov 2026 11:30:00 +0100\n"
            "Message-Id: <20261123103000.4F2A1@mx.example.org>\n"
            "Auto-Submitted: auto-replied\n"
            "MIME-Version: 1.0\n"
            'Content-Type: multipart/report; report-type=delivery-status; boundary="B1"\n'
            "\n--B1\nContent-Type: text/plain; charset=us-ascii\n\n"
            "This is the mail system at host mx.example.org.\n\n"
            "I'm sorry to have to inform you that your message could not\nbe delivered to one or more recipients.\n\n"
            f"<{recipient}>: host mx.example.org[192.0.2.10] said: {diagnostic}\n"
            "\n--B1\nContent-Type: message/delivery-status\n\n"
            "Reporting-MTA: dns; mx.example.org\nArrival-Date: Mon, 23 Nov 2026 11:29:59 +0100\n\n"
            f"Final-Recipient: rfc822; {recipient}\nOriginal-Recipient: rfc822;{recipient}\nAction: failed\n"
            f"Status: {status}\nRemote-MTA: dns; mx.example.org\nDiagnostic-Code: smtp; {diagnostic}\n"
            "\n--B1\nContent-Type: message/rfc822\n\n"
        ).encode()
        + original
        + b"\n--B1--\n"
    )


def _exim_bounce(
    recipient: str, subject: str, diagnostic: str, to: str = "contact@wigii.org"
) -> bytes:
    """Exim's non-standard form: no report part, the returned headers quoted in the text."""
    return mail(
        "Mail Delivery System <Mailer-Daemon@mail.example.net>",
        to,
        "Mail delivery failed: returning message to sender",
        "This message was created automatically by mail delivery software.\n\n"
        "A message that you sent could not be delivered to one or more of its\n"
        "recipients. This is a permanent error. The following address(es) failed:\n\n"
        f"  {recipient}\n    host mail.example.net [192.0.2.20]\n"
        f"    SMTP error from remote mail server after RCPT TO:<{recipient}>:\n    {diagnostic}\n\n"
        "------ This is a copy of the message's headers. ------\n\n"
        f"From: contact@wigii.org\nTo: {recipient}\nSubject: {subject}\n",
        message_id="<E1kX-0001@mail.example.net>",
        headers={"Auto-Submitted": "auto-replied", "X-Failed-Recipients": recipient},
    )


def _reset_ticket(hd, tmp_path):
    hd.now = NOW
    hd.env.update(HELPDESK_RESET_URL=RESET_URL, HELPDESK_MAILDIR=str(tmp_path / "sent"))
    hd.account("jdupont", "wigii", "jean.dupont@example.org")
    t = hd.open("password-reset", "wigii", "jdupont", "jean.dupont@example.org")
    hd.act(t["id"], "issue-reset-link")
    assert hd.ok("outbox", "send")["counts"]["sent"] == 1
    return t["id"]


def test_a_bounced_reset_link_is_marked_on_its_mail_and_its_ticket_waits_for_a_person(hd, tmp_path):
    ticket = _reset_ticket(hd, tmp_path)
    [sent] = _sent(tmp_path / "sent")
    assert (
        RESET_URL in sent.get_body(("plain",)).get_content()
    )  # the returned copy carries the link
    dsn = _postfix_dsn(
        sent.as_bytes(),
        "jean.dupont@example.org",
        status="5.1.1",
        diagnostic="550 5.1.1 <jean.dupont@example.org>: Recipient address rejected: User unknown in virtual mailbox table",
    )
    summary = hd.ok("ingest", "mail", maildir(tmp_path / "in", [dsn]), now=LATER)
    assert summary["counts"]["opened"] == 0 and summary["counts"]["quarantined"] == 0
    assert summary["counts"]["recorded"] == 1 and summary["counts"]["bounces"] == 1
    [item] = summary["items"]
    assert (item["bounce"], item["kind"], item["status"], item["ticket"]) == (
        "matched",
        "failed",
        "5.1.1",
        ticket,
    )

    view = hd.show(ticket)
    [m] = view["mails"]
    assert (
        m["status"] == "bounced"
        and m["template"] == "reset-link"
        and m["to"] == "jean.dupont@example.org"
    )
    assert (
        m["bounce"]["kind"] == "failed"
        and m["bounce"]["status"] == "5.1.1"
        and m["bounce"]["at"] == LATER
    )
    assert (
        m["bounce"]["reason"].startswith("550 5.1.1")
        and "User unknown in virtual mailbox table" in m["bounce"]["reason"]
    )
    assert view["waiting_on"] == "volunteer"
    assert view["attention"] == [
        {
            "reason": "mail-bounced",
            "outbox": m["id"],
            "to": "jean.dupont@example.org",
            "template": "reset-link",
            "status": "5.1.1",
            "text": m["bounce"]["reason"],
        }
    ]
    assert (
        view["state"] == "reset-issued"
    )  # no text says what a returned mail changes: the procedure is not moved
    event = next(e for e in view["events"] if e["action"] == "mail-bounced")
    assert event["actor"] == "intake" and "5.1.1" in event["note"]
    assert hd.ok("ticket", "list", "--all") and all(
        t["queue"] == "password-reset" for t in hd.ok("ticket", "list", "--all")
    )

    text = hd.run("ticket", "show", ticket, "--lang", "en", json_out=False)
    assert text.code == 0
    assert f"Mail #{m['id']} to jean.dupont@example.org came back: 550 5.1.1" in text.out
    assert "waits for a volunteer" in text.out
    french = hd.run("ticket", "show", ticket, json_out=False).out
    assert f"Le mail n° {m['id']} à jean.dupont@example.org est revenu" in french

    listed = hd.ok("outbox", "list", "--status", "bounced")
    assert [r["id"] for r in listed] == [m["id"]] and listed[0]["bounce"]["status"] == "5.1.1"
    # The returned copy held the reset link: it is not kept anywhere, only the report's fields.
    for (content,) in db_rows(hd.url, "SELECT content FROM evidence"):
        assert b"token=" not in bytes(content) and b"reset?" not in bytes(content)
    assert hd.ok("audit", "verify")["ok"] is True


def test_a_bounce_without_the_message_id_is_matched_by_the_tag_and_the_recipient(hd, tmp_path):
    ticket = _reset_ticket(hd, tmp_path)
    [sent] = _sent(tmp_path / "sent")
    assert f"[wigii #{ticket}]" in sent["Subject"]
    # Another recipient with the same tag is not ours: unmatched.
    stranger = _exim_bounce("someone@else.example", str(sent["Subject"]), "550 5.1.1 No such user")
    ours = _exim_bounce("jean.dupont@example.org", str(sent["Subject"]), "552 5.2.2 Mailbox full")
    summary = hd.ok("ingest", "mail", maildir(tmp_path / "in", [stranger, ours]), now=LATER)
    assert summary["counts"]["bounces"] == 1 and summary["counts"]["bounces_unmatched"] == 1
    assert summary["counts"]["opened"] == summary["counts"]["quarantined"] == 0
    [m] = hd.show(ticket)["mails"]
    assert (
        m["status"] == "bounced"
        and m["bounce"]["status"] == "5.2.2"
        and "Mailbox full" in m["bounce"]["reason"]
    )

    # A person decides: a bounced mail did not arrive (no mark-sent); a retry says why, and
    # the same mail leaves again, its link with a new secret.
    hd.refused("outbox", "mark-sent", m["id"], "--note", "checked", as_="bob", rule="outbox-status")
    assert "--note" in hd.bad("outbox", "retry", m["id"], as_="bob").err
    hd.ok("outbox", "retry", m["id"], "--note", "Jean emptied his mailbox", as_="bob")
    assert hd.ok("outbox", "send", now=LATER)["counts"]["sent"] == 1
    view = hd.show(ticket)
    assert (
        view["mails"][0]["status"] == "sent"
        and view["attention"] == []
        and view["waiting_on"] is None
    )
    assert view["mails"][0]["bounce"]["status"] == "5.2.2"  # what came back stays known


def test_an_unmatched_bounce_is_recorded_never_as_a_request_not_understood(hd, tmp_path):
    hd.now = NOW
    bounce = _exim_bounce(
        "nobody@gone.example", "Une question", "550 5.1.1 <nobody@gone.example>: user unknown"
    )
    summary = hd.ok("ingest", "mail", maildir(tmp_path / "in", [bounce]))
    assert summary["counts"]["recorded"] == 1 and summary["counts"]["bounces_unmatched"] == 1
    [item] = summary["items"]
    assert (
        item["bounce"] == "unmatched"
        and item["recipients"] == ["nobody@gone.example"]
        and item["status"] == "5.1.1"
    )
    assert hd.ok("ticket", "list", "--all") == [] and hd.ok("quarantine", "list") == []
    [(kind, ticket, content)] = db_rows(hd.url, "SELECT kind, ticket_id, content FROM evidence")
    assert kind == "bounce" and ticket is None and b"nobody@gone.example" in bytes(content)
    [row] = hd.ok("outbox", "bounces", "--unmatched")
    assert (row["recipient"], row["status"], row["ticket"], row["outbox"], row["kind"]) == (
        "nobody@gone.example",
        "5.1.1",
        None,
        None,
        "failed",
    )
    assert "user unknown" in row["reason"]
    human = hd.run("outbox", "bounces", json_out=False)
    assert human.code == 0 and "nobody@gone.example" in human.out
    again = hd.run(
        "ingest", "mail", maildir(tmp_path / "in2", [bounce]), "--lang", "en", json_out=False
    )
    assert again.code == 0 and "0 opened" in again.out


def test_hostile_words_in_a_bounce_are_shown_as_text(hd, tmp_path):
    ticket = _reset_ticket(hd, tmp_path)
    [sent] = _sent(tmp_path / "sent")
    dsn = _postfix_dsn(
        sent.as_bytes(),
        "jean.dupont@example.org",
        status="5.1.1",
        diagnostic="550 5.1.1 [bold red]gone[/] \x1b]52;c;ZXZpbA==\x07 \x1b[2J",
    )
    summary = hd.run(
        "ingest", "mail", maildir(tmp_path / "in", [dsn]), "--lang", "en", json_out=False
    )
    assert summary.code == 0 and "1 returned mail(s) of ours marked on their tickets" in summary.out
    out = hd.run("ticket", "show", ticket, "--lang", "en", json_out=False).out
    assert "[bold red]gone[/]" in out and "\x1b" not in out and "\x07" not in out
    reason = hd.show(ticket)["mails"][0]["bounce"]["reason"]
    assert "[bold red]gone[/]" in reason and not any(c in reason for c in "\x1b\x07")


def test_a_refusal_as_spam_is_a_mail_reputation_signal_for_the_provider(hd, tmp_path):
    hd.now = NOW
    block = "550-5.7.1 [192.0.2.5] Our system has detected that this message is likely unsolicited mail. To reduce the amount of spam sent to Gmail, this message has been blocked."
    original = mail(
        "Le PIC <picca@le-pic.org>",
        "ami@gmail.example",
        "Lettre d'information",
        "Bonjour",
        message_id="<news-1@le-pic.org>",
    )
    first = _postfix_dsn(
        original, "ami@gmail.example", status="5.7.1", diagnostic=block, to="picca@le-pic.org"
    )
    second = _postfix_dsn(
        original.replace(b"news-1", b"news-2").replace(b"ami@", b"autre@"),
        "autre@gmail.example",
        status="5.7.1",
        diagnostic=block,
        to="picca@le-pic.org",
    )
    summary = hd.ok("ingest", "mail", maildir(tmp_path / "in", [first, second]))
    assert summary["counts"]["alerts_opened"] == 1 and summary["counts"]["alerts_updated"] == 1
    tickets = hd.ok("ticket", "list", "--all")
    assert [(t["queue"], t["policy"]) for t in tickets] == [
        ("mail-reputation", "le-pic")
    ]  # no abuse ticket against nobody
    alert = hd.show(tickets[0]["id"])
    assert alert["fields"]["signal"] == "blocklist" and alert["fields"]["domain"] == "le-pic.org"
    assert (
        alert["fields"]["sender"] == "picca@le-pic.org" and "5.7.1" in alert["fields"]["blocklist"]
    )
    assert [e["action"] for e in alert["events"]].count("alert-figures") == 1
