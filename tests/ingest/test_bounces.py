"""``bounces.recognise`` on the forms real servers send, written here in their shapes (the
public corpora run in ``test_bounce_corpus``), and on mails that are not bounces though
they look alike."""

from __future__ import annotations

import json
import time

import pytest
from hypothesis import HealthCheck, given, settings

from helpdesk.ingest.bounces import Bounce, recognise
from helpdesk.ingest.errors import ParseError
from tests.ingest.conftest import mangled
from tests.ingest.mailmaker import mail

OURS = "<20261123.1.helpdesk@wigii.org>"
COPY = f"From: contact@wigii.org\nTo: jean@example.org\nSubject: [wigii #7] Réinitialisation\nMessage-ID: {OURS}\n"


def _multipart(
    frm: str,
    subject: str,
    parts: list[tuple[str, str]],
    ctype: str = "multipart/mixed",
    headers: str = "",
) -> bytes:
    body = "".join(f"--XX\nContent-Type: {t}\n\n{content}\n" for t, content in parts)
    return (
        f"From: {frm}\nTo: contact@wigii.org\nSubject: {subject}\nDate: Mon, 23 Nov 2026 11:30:00 +0100\n{headers}"
        f'MIME-Version: 1.0\nContent-Type: {ctype}; boundary="XX"\n\n{body}--XX--\n'
    ).encode()


def test_rfc3464_report_gives_recipient_status_code_and_the_returned_message_id():
    raw = _multipart(
        "Mail Delivery Subsystem <MAILER-DAEMON@mx.example.org>",
        "Returned mail: see transcript for details",
        [
            (
                "text/plain",
                "The original message was received at Mon, 23 Nov 2026\n----- The following addresses had permanent fatal errors -----\n<jean@example.org>",
            ),
            (
                "message/delivery-status",
                "Reporting-MTA: dns; mx.example.org\n\nFinal-Recipient: RFC822; jean@example.org\nAction: failed\nStatus: 5.1.1\nDiagnostic-Code: SMTP; 550 5.1.1 <jean@example.org>... User unknown",
            ),
            ("text/rfc822-headers", COPY),
        ],
        ctype="multipart/report; report-type=delivery-status",
    )
    b = recognise(raw)
    assert (b.form, b.kind, b.recipients, b.reporter) == (
        "rfc3464",
        "failed",
        ["jean@example.org"],
        "mx.example.org",
    )
    assert b.failures[0].status == "5.1.1" and b.failures[0].code == "550"
    assert b.reason == "550 5.1.1 <jean@example.org>... User unknown"
    assert b.original_message_ids == [OURS] and b.original_subject == "[wigii #7] Réinitialisation"


def test_exim_text_bounce():
    raw = mail(
        "Mail Delivery System <Mailer-Daemon@mail.example.net>",
        "contact@wigii.org",
        "Mail delivery failed: returning message to sender",
        "This message was created automatically by mail delivery software.\n\nA message that you sent could not be delivered to one or more of its\n"
        "recipients. This is a permanent error. The following address(es) failed:\n\n  jean@example.org\n"
        "    SMTP error from remote mail server after RCPT TO:<jean@example.org>:\n    550 5.2.2 Mailbox full\n\n"
        "------ This is a copy of the message, including all the headers. ------\n\n" + COPY,
        headers={"X-Failed-Recipients": "jean@example.org", "Auto-Submitted": "auto-replied"},
    )
    b = recognise(raw)
    assert (b.kind, b.recipients, b.failures[0].status) == ("failed", ["jean@example.org"], "5.2.2")
    assert "Mailbox full" in b.reason and b.original_message_ids == [OURS]


def test_a_gateway_with_its_own_from_or_a_signed_ndr_sender_is_a_daemon():
    # A filtering gateway writes its own From; the envelope (Return-Path) is the daemon's.
    gateway = mail(
        "imss@gateway.example.be",
        "contact@wigii.org",
        "Mail could not be delivered",
        "The following recipient could not be reached: jean@example.org\n550 5.1.1 unknown user\n",
        headers={"Return-Path": "<MAILER-DAEMON@relay.example.be>"},
    )
    b = recognise(gateway)
    assert b is not None and b.kind == "failed" and "jean@example.org" in b.recipients
    # A non-delivery report from "ndr@", its envelope signed with BATV.
    signed = mail(
        "ndr@mail.example.de",
        "contact@wigii.org",
        "Mail delivery failed: returning message to sender",
        "Your message could not be delivered to jean@example.org: 550 5.1.1 no such user\n",
        headers={"Return-Path": "<prvs=126700a846=ndr@mail.example.de>"},
    )
    b = recognise(signed)
    assert b is not None and b.kind == "failed" and "jean@example.org" in b.recipients
    # A person's mail whose Return-Path is their own is not one, whatever its subject says.
    person = mail(
        "Jean <jean@example.org>",
        "contact@wigii.org",
        "Mail could not be delivered",
        "Bonjour, mon mail n'a pas pu être remis, que faire ?",
        headers={"Return-Path": "<jean@example.org>"},
    )
    assert recognise(person) is None


def test_gmail_and_office365_text_forms():
    gmail = mail(
        "Mail Delivery Subsystem <mailer-daemon@googlemail.com>",
        "contact@wigii.org",
        "Delivery Status Notification (Failure)",
        "** Address not found **\n\nYour message wasn't delivered to jean@example.org because the address couldn't be found.\n\n"
        "The response from the remote server was:\n550 5.1.1 The email account that you tried to reach does not exist.\n\n"
        "----- Original message -----\n\n" + COPY,
    )
    b = recognise(gmail)
    assert (b.kind, b.recipients, b.failures[0].status) == ("failed", ["jean@example.org"], "5.1.1")
    o365 = mail(
        "Microsoft Outlook <postmaster@outlook.example>",
        "contact@wigii.org",
        "Undeliverable: [wigii #7] Réinitialisation",
        "Delivery has failed to these recipients or groups:\n\njean@example.org\nThe email address you entered couldn't be found.\n\n"
        "Diagnostic information for administrators:\nRemote Server returned '550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup'\n",
    )
    b = recognise(o365)
    assert (b.kind, b.recipients, b.failures[0].status) == (
        "failed",
        ["jean@example.org"],
        "5.1.10",
    )


def test_a_refusal_for_spam_is_blocked_and_a_4xx_is_delayed():
    barracuda = mail(
        "Barracuda <postmaster@spamfirewall.example>",
        "contact@wigii.org",
        "Message you sent blocked by our bulk email filter",
        "Your message to: jean@example.org\nwas blocked by our Spam Firewall. The email you sent with the following subject has NOT BEEN DELIVERED:\n\n"
        "Reason: 550 5.7.1 Message content rejected, UBE, id=1234 - listed in zen.spamhaus.org\n",
    )
    assert recognise(barracuda).kind == "blocked"
    delayed = _multipart(
        "MAILER-DAEMON@mx.example.org (Mail Delivery System)",
        "Delayed Mail (still being retried)",
        [
            (
                "text/plain",
                "This is the mail system. Your message could not be delivered for 4 hours. It will be retried until it is 5 days old.",
            ),
            (
                "message/delivery-status",
                "Reporting-MTA: dns; mx.example.org\n\nFinal-Recipient: rfc822; jean@example.org\nAction: delayed\nStatus: 4.4.1\nDiagnostic-Code: X-Postfix; connect to mx.example.org[192.0.2.1]:25: Connection timed out",
            ),
        ],
        ctype="multipart/report; report-type=delivery-status",
    )
    assert recognise(delayed).kind == "delayed"


def test_amazon_ses_notifications_bounce_complaint_and_delivery():
    def ses(kind: str, extra: dict) -> bytes:
        payload = {
            "notificationType": kind,
            "mail": {
                "messageId": "0101abc",
                "source": "contact@wigii.org",
                "commonHeaders": {"subject": "[wigii #7] x"},
            },
            **extra,
        }
        return mail(
            "AWS Notifications <no-reply@sns.amazonaws.com>",
            "contact@wigii.org",
            "AWS Notification Message",
            json.dumps(payload),
        )

    b = recognise(
        ses(
            "Bounce",
            {
                "bounce": {
                    "bounceType": "Permanent",
                    "bouncedRecipients": [
                        {
                            "emailAddress": "jean@example.org",
                            "status": "5.1.1",
                            "diagnosticCode": "smtp; 550 5.1.1 user unknown",
                        }
                    ],
                }
            },
        )
    )
    assert (b.form, b.kind, b.recipients, b.original_message_ids, b.original_from) == (
        "ses",
        "failed",
        ["jean@example.org"],
        ["<0101abc>"],
        "contact@wigii.org",
    )
    c = recognise(
        ses(
            "Complaint",
            {
                "complaint": {
                    "complainedRecipients": [{"emailAddress": "jean@example.org"}],
                    "complaintFeedbackType": "abuse",
                }
            },
        )
    )
    assert (c.kind, c.recipients) == ("complaint", ["jean@example.org"])
    assert (
        recognise(
            ses(
                "Delivery",
                {"delivery": {"recipients": ["jean@example.org"], "smtpResponse": "250 ok"}},
            )
        ).kind
        == "delivered"
    )


def test_forms_no_header_rule_names_are_found_by_mailmans_detectors():
    # qmail at Yahoo: a mailer daemon, no subject, an HTML body.
    yahoo = mail(
        "MAILER-DAEMON@yahoo.com",
        "contact@wigii.org",
        "",
        "I'm afraid I wasn't able to deliver the following message.\n"
        "This is a permanent error; I've given up. Sorry it didn't work out.\n\n"
        "Subject: [wigii #7] Réinitialisation\nTo: jean@yahoo.com\n\n"
        "---Below this line is a copy of the message.\n",
    )
    b = recognise(yahoo)
    assert b is not None and b.why == "failed recipients found by flufl.bounce"
    assert (b.kind, b.recipients) == ("failed", ["jean@yahoo.com"])
    # A gateway answering as an ordinary address, its subject saying it: French and English.
    gateway = mail(
        "Dsi.internet@example.com",
        "contact@wigii.org",
        "RE: [wigii #7] Réinitialisation : non remis (delivery failed)",
        "*****************\nVotre message n'a pas pu etre delivre a\njean@example.org\n\n"
        "*****************\nYour message could not be delivered to\njean@example.org\n",
    )
    b = recognise(gateway)
    assert b is not None and b.recipients == ["jean@example.org"]
    # A virus wall: its own From, a subject saying it, the returned message attached.
    wall = _multipart(
        "inetgw1@example.com",
        "Mail could not be delivered",
        [
            (
                "text/plain",
                "****** Message from InterScan E-Mail VirusWall NT ******\n\n"
                "The following mail could not be delivered.\n"
                "Reason:  Exceeded Maximum Delivery Attempts.",
            ),
            ("message/rfc822", COPY + "\nLe lien.\n"),
        ],
        headers="Precedence: bulk\n",
    )
    b = recognise(wall)
    assert b is not None and b.why == "delivery failure notice returning the message"
    assert b.original_message_ids == [OURS]


def test_the_reason_under_a_servers_label_a_delay_warning_and_an_address_check():
    gmail = mail(
        "Mail Delivery Subsystem <mailer-daemon@googlemail.com>",
        "contact@wigii.org",
        "Delivery Status Notification (Failure)",
        "Delivery to the following recipient failed permanently:\n\n     jean@example.org\n\n"
        "Technical details of permanent failure:\n"
        "The recipient server did not accept our requests to connect.\n\n"
        "----- Original message -----\n\n" + COPY,
    )
    b = recognise(gmail)
    assert (b.kind, b.recipients) == ("failed", ["jean@example.org"])
    assert b.reason == "The recipient server did not accept our requests to connect."
    exim = mail(
        "Mail Delivery System <Mailer-Daemon@mail.example.net>",
        "contact@wigii.org",
        "Warning: message 1aBcD-000222-22 delayed 24 hours",
        "This message was created automatically by mail delivery software.\n"
        "A message that you sent has not yet been delivered to one or more of its\n"
        "recipients after more than 24 hours on the queue on mail.example.net.\n\n"
        "The message identifier is:     wigii222-abc-22\n\n"
        "The address to which the message has not yet been delivered is:\n\n  jean@example.org\n"
        "    Delay reason: SMTP error from remote mail server after RCPT TO:<jean@example.org>:\n"
        "    450 mailbox temporarily unavailable\n\n"
        "No action is required on your part. Delivery attempts will continue for some time.\n",
        headers={"Auto-Submitted": "auto-replied"},
    )
    b = recognise(exim)
    assert (b.kind, b.recipients) == ("delayed", ["jean@example.org"])
    assert b.reason.startswith("Delay reason: SMTP error") and "222" not in (
        b.failures[0].code or ""
    )
    verified = _multipart(
        "MAILER-DAEMON@mx.example.org",
        "Mail Delivery Status Report",
        [
            ("text/plain", "This is the mail system. Your address check:"),
            (
                "message/delivery-status",
                "Reporting-MTA: dns; mx.example.org\n\nFinal-Recipient: rfc822; jean@example.org\n"
                "Action: deliverable\nStatus: 2.1.5\nDiagnostic-Code: smtp; 250 2.1.5 Ok\n",
            ),
        ],
        ctype="multipart/report; report-type=delivery-status",
    )
    assert recognise(verified).kind == "delivered"


def test_a_report_naming_no_recipient_readably_gets_those_the_detectors_find():
    raw = _multipart(
        "MAILER-DAEMON@mx.example.org",
        "Returned mail: User unknown",
        [
            (
                "text/plain",
                "----- The following addresses had permanent fatal errors -----\n<jean@example.org>\n",
            ),
            (
                "message/delivery-status",
                "Reporting-MTA: dns; mx.example.org\n\nFinal-Recipient: X-Unknown; jean\n"
                "Action: failed\nStatus: 5.1.1\n",
            ),
            ("message/rfc822", COPY + "\nLe lien.\n"),
        ],
        ctype="multipart/report; report-type=delivery-status",
    )
    b = recognise(raw)
    assert (b.form, b.recipients, b.failures[0].status) == (
        "rfc3464",
        ["jean@example.org"],
        "5.1.1",
    )


def test_a_huge_mail_from_a_daemon_is_read_in_time():
    raw = mail(
        "MAILER-DAEMON@example.net", "contact@wigii.org", "bonjour", ("x" * 5000 + "\n") * 4000
    )
    started = time.monotonic()
    assert recognise(raw) is None
    assert time.monotonic() - started < 10  # the detectors read its first 256 KiB only


@pytest.mark.parametrize(
    "raw",
    [
        mail(
            "Jean <jean@example.org>",
            "contact@wigii.org",
            "Mon mail m'est revenu",
            "Bonjour, mon mail a été rejeté avec 550 5.1.1, que faire ?",
        ),
        mail(
            "Jean <jean@example.org>",
            "contact@wigii.org",
            "Absent",
            "Je suis absent jusqu'au 5 mai.",
            headers={"Auto-Submitted": "auto-replied"},
        ),
        mail(
            "Jean <jean@example.org>",
            "contact@wigii.org",
            "Undelivered Mail Returned to Sender",
            "Pourquoi ce message ? Je ne comprends pas.",
        ),
        mail(
            "Jean <jean@example.org>",
            "contact@wigii.org",
            "Returned mail",
            "Bonjour, my mail to paul@example.net could not be delivered, why?",
        ),
        mail(
            "Jean <jean@example.org>",
            "contact@wigii.org",
            "RE: non remis",
            "I get 'Delivery to the following recipients failed.\n\n   paul@example.net'\nwhat to do?",
        ),
    ],
    ids=[
        "a person quoting a code",
        "a vacation answer",
        "a person using the words",
        "a person telling of a returned mail",
        "a person quoting a server",
    ],
)
def test_what_is_not_a_bounce(raw):
    assert recognise(raw) is None


def test_hostile_text_comes_out_clean():
    raw = _multipart(
        "MAILER-DAEMON@mx.example.org",
        "Undelivered Mail Returned to Sender",
        [
            (
                "message/delivery-status",
                "Reporting-MTA: dns; mx\x1b]52;c;ZXZpbA==\x07.example.org\n\nFinal-Recipient: rfc822; jean@example.org\nAction: failed\nStatus: 5.1.1\nDiagnostic-Code: smtp; 550 5.1.1 [bold red]gone\x1b[2J\x07",
            )
        ],
        ctype="multipart/report; report-type=delivery-status",
    )
    b = recognise(raw)
    assert "\x1b" not in b.reason and "\x07" not in b.reason and "\x1b" not in b.reporter
    assert "[bold red]gone" in b.reason


def _forms() -> list[bytes]:
    return [
        _multipart(
            "MAILER-DAEMON@mx.example.org",
            "Undelivered Mail Returned to Sender",
            [
                ("text/plain", "Your message could not be delivered."),
                (
                    "message/delivery-status",
                    "Reporting-MTA: dns; mx\n\nFinal-Recipient: rfc822; jean@example.org\nAction: failed\nStatus: 5.1.1\nDiagnostic-Code: smtp; 550 5.1.1 unknown",
                ),
                ("text/rfc822-headers", COPY),
            ],
            ctype="multipart/report; report-type=delivery-status",
        ),
        mail(
            "Mail Delivery System <Mailer-Daemon@x.example>",
            "contact@wigii.org",
            "Mail delivery failed",
            "  jean@example.org\n    550 5.1.1 gone\n\n------ This is a copy of the message ------\n"
            + COPY,
        ),
        mail(
            "no-reply@sns.amazonaws.com",
            "contact@wigii.org",
            "AWS Notification Message",
            json.dumps(
                {
                    "notificationType": "Bounce",
                    "bounce": {"bouncedRecipients": [{"emailAddress": "jean@example.org"}]},
                    "mail": {},
                }
            ),
        ),
    ]


@settings(
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(raw=mangled(_forms()))
def test_mangled_bounces_give_a_bounce_none_or_a_clear_parse_error(raw):
    try:
        found = recognise(raw)
    except ParseError as exc:
        assert exc.reason.strip()
        return
    assert (
        found is None
        or isinstance(found, Bounce)
        and found.kind in ("failed", "delayed", "blocked", "complaint", "delivered")
    )
