"""A complaint is a signal against the account that sent the mail, whichever way it comes:
as an ARF report (the ARF reader) or as a bounce (an Amazon SES complaint notification, read
by the bounce reader). One that names no account is quarantined with its reason by both,
never an alert against nobody."""

from __future__ import annotations

import json

from tests.ingest.mailmaker import NOW, mail, maildir

HOSTILE = "evil[@click=app.quit]\x1b[31m@elsewhere.example"


def ses_complaint(source: str, n: int) -> bytes:
    payload = {
        "notificationType": "Complaint",
        "mail": {"messageId": f"0101complaint{n}", "source": source},
        "complaint": {
            "complainedRecipients": [{"emailAddress": "ami@gmail.example"}],
            "complaintFeedbackType": "abuse",
        },
    }
    return mail(
        "AWS Notifications <no-reply@sns.amazonaws.com>",
        "picca@le-pic.org",
        "AWS Notification Message",
        json.dumps(payload),
        message_id=f"<ses-{n}@sns.amazonaws.com>",
    )


def arf_complaint(sender: str, n: int) -> bytes:
    boundary = "arf-boundary"
    return (
        f"From: Feedback Loop <fbl@isp.example>\r\n"
        f"To: picca@le-pic.org\r\n"
        f"Subject: Abuse report\r\n"
        f"Message-ID: <arf-{n}@isp.example>\r\n"
        f"Date: Mon, 23 Nov 2026 10:00:00 +0100\r\n"
        f"MIME-Version: 1.0\r\n"
        f'Content-Type: multipart/report; report-type=feedback-report; boundary="{boundary}"\r\n'
        f"\r\n--{boundary}\r\n"
        f"Content-Type: text/plain\r\n\r\nA complaint about a message.\r\n"
        f"--{boundary}\r\n"
        f"Content-Type: message/feedback-report\r\n\r\n"
        f"Feedback-Type: abuse\r\nUser-Agent: isp-fbl/1.0\r\nVersion: 1\r\n"
        f"Original-Mail-From: <{sender}>\r\n"
        f"Arrival-Date: Mon, 23 Nov 2026 09:00:00 +0100\r\n"
        f"\r\n--{boundary}\r\n"
        f"Content-Type: message/rfc822\r\n\r\n"
        f"From: {sender}\r\nTo: ami@gmail.example\r\nSubject: news {n}\r\n"
        f"Message-ID: <orig-{n}@le-pic.org>\r\n\r\nHello\r\n"
        f"--{boundary}--\r\n"
    ).encode()


def test_a_complaint_with_no_account_is_quarantined_by_both_readers(hd, tmp_path):
    hd.now = NOW
    hd.account("asso-x", "le-pic", "newsletter@asso-x.example", "--kind", "member")
    box = maildir(
        tmp_path / "in",
        [
            ses_complaint("newsletter@asso-x.example", 1),  # an account: an alert on it
            ses_complaint(HOSTILE, 2),  # nobody's: quarantined
        ],
    )
    summary = hd.ok("ingest", "mail", box)
    outcomes = sorted(i["outcome"] for i in summary["items"])
    assert outcomes == ["quarantined", "recorded"], summary["items"]
    assert next(i for i in summary["items"] if i["outcome"] == "recorded")["alert"]
    quarantined = next(i for i in summary["items"] if i["outcome"] == "quarantined")
    assert quarantined["reason"].startswith("aucun compte pour l'expéditeur signalé")
    alerts = hd.ok("ticket", "list", "--all")
    assert [(t["queue"], t["account"]) for t in alerts] == [("mail-reputation", "asso-x")]
    assert hd.show(alerts[0]["id"])["fields"]["signal"] == "complaint"

    reports = maildir(
        tmp_path / "arf",
        [
            arf_complaint("newsletter@asso-x.example", 3),
            arf_complaint("nobody@elsewhere.example", 4),
        ],
    )
    summary = hd.ok("ingest", "arf", reports)
    by = {i["outcome"] for i in summary["items"]}
    assert by == {"updated", "quarantined"}, summary["items"]
    quarantined = next(i for i in summary["items"] if i["outcome"] == "quarantined")
    assert quarantined["reason"].startswith("aucun compte pour l'expéditeur signalé")
    # Still one alert, on the account: no alert against nobody from either reader.
    assert [(t["queue"], t["account"]) for t in hd.ok("ticket", "list", "--all")] == [
        ("mail-reputation", "asso-x")
    ]
    listed = hd.run("quarantine", "list", json_out=False)
    assert "\x1b" not in listed.out
