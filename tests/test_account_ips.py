"""An account's ``ips`` field (addresses and CIDR networks) is checked when accounts are added
or imported, stored in canonical form, and lets reports naming a source address inside a
network find the account. Drives the real command line."""

from __future__ import annotations

from tests.ingest.mailmaker import NOW, mail, maildir


def arf(source_ip: str, reported_from: str = "someone@elsewhere.example") -> bytes:
    """A minimal RFC 5965 feedback report naming ``source_ip``."""
    boundary = "arf-boundary-1"
    return (
        "From: <fbl@isp.example>\r\nTo: <abuse@provider.example>\r\nSubject: FW: spam\r\n"
        "Date: Mon, 23 Nov 2026 09:00:00 +0100\r\nMessage-ID: <arf-"
        + source_ip.replace(":", "-")
        + "@isp.example>\r\n"
        "MIME-Version: 1.0\r\n"
        f'Content-Type: multipart/report; report-type=feedback-report; boundary="{boundary}"\r\n\r\n'
        f"--{boundary}\r\nContent-Type: text/plain\r\n\r\nA complaint.\r\n"
        f"--{boundary}\r\nContent-Type: message/feedback-report\r\n\r\n"
        f"Feedback-Type: abuse\r\nUser-Agent: FBL/1.0\r\nVersion: 1\r\nSource-IP: {source_ip}\r\n\r\n"
        f"--{boundary}\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        f"From: <{reported_from}>\r\nSubject: buy now\r\n\r\n"
        f"--{boundary}--\r\n"
    ).encode()


def test_ips_are_checked_and_stored_in_canonical_form(hd, tmp_path):
    hd.now = NOW
    acc = hd.account(
        "web",
        "indigos",
        "web@example.org",
        "--field",
        "ips=192.0.2.7; 198.51.100.9/24  2001:DB8:0:0::/64",
    )
    assert acc["fields"]["ips"] == "192.0.2.7, 198.51.100.0/24, 2001:db8::/64"

    for bad in ("192.0.2.300", "2001:db8::/129", "example.org", "0.0.0.0/0"):
        r = hd.bad(
            "account",
            "add",
            "web2",
            "--policy",
            "indigos",
            "--email",
            "web2@example.org",
            "--field",
            f"ips={bad}",
        )
        assert bad in r.err and "ips" in r.err
    assert [a["login"] for a in hd.ok("account", "list", "--policy", "indigos")] == [
        "web"
    ]  # nothing half-saved

    csv = tmp_path / "accounts.csv"
    csv.write_text(
        "login,policy,email,ips\n"
        "good,le-pic,good@example.org,203.0.113.0/28\n"
        "typo,le-pic,typo@example.org,203.0.113.0/33\n",
        encoding="utf-8",
    )
    result = hd.ok("account", "import", csv)
    assert result["imported"] == 1
    assert [e["line"] for e in result["errors"]] == [3] and "203.0.113.0/33" in result["errors"][0][
        "error"
    ]
    assert hd.ok("account", "show", "good")["fields"]["ips"] == "203.0.113.0/28"


def test_a_report_naming_an_address_inside_a_network_finds_the_account(hd, tmp_path):
    hd.now = NOW
    hd.account(
        "hosted",
        "indigos",
        "hosted@example.org",
        "--field",
        "ips=203.0.113.64/26, 2001:db8:42::/48",
    )
    hd.account("single", "indigos", "single@example.org", "--field", "ips=203.0.113.5")

    summary = hd.ok(
        "ingest",
        "arf",
        maildir(
            tmp_path / "arf", [arf("203.0.113.77"), arf("2001:db8:42:7::25"), arf("203.0.113.5")]
        ),
        "--policy",
        "indigos",
    )
    found = sorted((i["account"], i["outcome"]) for i in summary["items"])
    assert found == [("hosted", "opened"), ("hosted", "updated"), ("single", "opened")], summary[
        "items"
    ]

    # Outside every network: nobody is blamed.
    outside = hd.ok(
        "ingest", "arf", maildir(tmp_path / "arf2", [arf("203.0.113.200")]), "--policy", "indigos"
    )
    assert outside["items"][0]["outcome"] == "quarantined" and not outside["items"][0].get(
        "account"
    )

    # An abuse complaint by mail naming an address of the network.
    complaint = mail(
        "victim@example.com",
        "abuse@provider.example",
        "Spam et attaque",
        "Bonjour, des tentatives de connexion (brute force) viennent de 2001:db8:42::beef depuis ce matin.",
        message_id="<complaint@example.com>",
    )
    opened = hd.ok("ingest", "mail", maildir(tmp_path / "mail", [complaint]), "--policy", "indigos")
    item = opened["items"][0]
    assert (item["outcome"], item["queue"], item["account"]) == ("opened", "abuse", "hosted")
    assert hd.show(item["ticket"])["fields"]["source-ip"] == "2001:db8:42::beef"
