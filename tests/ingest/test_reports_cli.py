"""``helpdesk ingest arf`` and ``helpdesk ingest dmarc``: complaints and reports become
mail-reputation or abuse tickets on the right account; figures only; the samples corpus either
parses or is quarantined with a clear reason. Drives the real command line."""

from __future__ import annotations

import gzip
import io
import zipfile

import pytest

from tests.ingest.conftest import samples_dir
from tests.ingest.mailmaker import NOW, db_rows, mail, maildir, with_attachment

DECLARED = {
    "sender",
    "signal",
    "window",
    "messages",
    "recipients",
    "bounces",
    "deferrals",
    "bounce-ratio",
    "complaints",
    "dmarc-fail",
    "domain",
    "blocklist",
    "source-ip",
    "compromised",
    "until",
}


def _samples(*parts):
    root = samples_dir()
    if root is None:
        pytest.skip("shared/samples not available")
    return root.joinpath(*parts)


def _accounts(hd):
    hd.now = NOW
    hd.account("spammer", "indigos", "somespammer@example.net")
    hd.account("neko", "communesplone", "neko@example.jp")
    hd.account("exadmin", "le-pic", "admin@example.com")
    hd.account("sironeko", "wigii", "sironeko@example.jp")
    hd.account("fbl", "communesplone", "fbl@commune.example", "--field", "ips=10.17.18.0/24")
    hd.account(
        "hosting", "indigos", "hosting@indigos.example", "--field", "ips=10.0.2.0/24, 2001:db8::/64"
    )
    hd.account("lan", "le-pic", "lan@le-pic.example", "--field", "ips=192.168.2.20")


def test_every_arf_sample_becomes_a_ticket_or_is_quarantined_with_a_clear_reason(hd):
    folder = _samples("arf")
    _accounts(hd)
    summary = hd.ok("ingest", "arf", folder)
    items = {i["item"]: i for i in summary["items"]}
    files = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
    assert sorted(items) == files  # every file has an outcome
    for name, item in items.items():
        assert item["outcome"] in ("opened", "updated", "quarantined"), (name, item)
        if item["outcome"] == "quarantined":
            assert item["reason"] and not item["reason"].startswith("internal error"), (name, item)

    def outcome(name):
        return items[name]["outcome"], items[name].get("reason", "")

    # RFC 5965 B.2: the sender named by Original-Mail-From, a complaint on a metadata-only alert.
    b2 = items["rfc5965_B2_full_report_all_headers.eml"]
    assert (
        b2["outcome"] == "opened"
        and b2["queue"] == "mail-reputation"
        and b2["account"] == "spammer"
    )
    view = hd.show(b2["ticket"])
    assert view["fields"]["signal"] == "complaint" and view["fields"]["complaints"] == 1
    assert view["fields"]["source-ip"] == "192.0.2.1"
    assert set(view["fields"]) <= DECLARED
    assert "Earn money" not in view["subject"]
    kept = db_rows(hd.url, "select content from evidence where ticket_id = :p0", b2["ticket"])
    assert kept and all(b"Earn money" not in row[0] for row in kept)  # never the reported message
    # Four feedback loops about the same IP range: one alert, the others add their figures.
    fbl = [
        items[n]
        for n in (
            "abuseio__fbl_AOL_example_1.eml",
            "abuseio__fbl_Comcast_example_2.eml",
            "abuseio__fbl_Yahoo_example_2.eml",
            "abuseio__fbl_Zoho_example_1.eml",
        )
    ]
    assert {i["account"] for i in fbl} == {"fbl"}
    assert sorted(i["outcome"] for i in fbl) == ["opened", "updated", "updated", "updated"]
    assert len({i["ticket"] for i in fbl}) == 1
    events = [e["action"] for e in hd.show(fbl[0]["ticket"])["events"]]
    assert events.count("alert-figures") == 3
    aol_kept = db_rows(
        hd.url, "select content from evidence where ticket_id = :p0", fbl[0]["ticket"]
    )
    assert all(b"QXRpIHByaW1pdCB1biBjdXBvbiEgbmxt" not in row[0] for row in aol_kept)
    # SpamExperts: Original-Mail-From admin@example.com.
    assert items["abuseio__spamexperts_1.eml"]["account"] == "exadmin"
    # Wigii has no mail-reputation procedure: a spam complaint is an abuse ticket there.
    arf17 = items["sisimai__bsd_arf-17.eml"]
    assert (arf17["queue"], arf17["account"]) == ("abuse", "sironeko")
    # X-ARF: abuse tickets in the category the report type maps to.
    netcraft = items["xarf/abuseio__Netcraft_Example_1.eml"]
    assert (netcraft["queue"], netcraft["category"], netcraft["account"]) == (
        "abuse",
        "compromise",
        "hosting",
    )
    assert hd.show(netcraft["ticket"])["fields"]["url"] == "http://www.domain.tld/scripts/ufo.js"
    assert items["xarf/abuseio__Blocklistde_Example_1.eml"]["category"] == "spam"
    assert (
        items["xarf/abuseio__Cleanmx_Example_1.eml"]["category"],
        items["xarf/abuseio__Cleanmx_Example_1.eml"]["account"],
    ) == ("security", "lan")
    # What cannot be used says why.
    assert "opt-out" in outcome("sisimai__bsd_arf-12.eml")[1]
    assert "pas un signalement ARF" in outcome("sisimai__bsd_arf-22.eml")[1]  # French by default
    assert outcome("rfc5965_B1_simple_required_fields_only.eml")[1].startswith(
        "aucun compte pour l'expéditeur signalé"
    )
    assert outcome("sisimai__bsd_arf-19.eml")[1].startswith(
        "aucun compte pour l'expéditeur signalé"
    )

    again = hd.ok("ingest", "arf", folder)
    assert (
        again["counts"]["opened"]
        == again["counts"]["updated"]
        == again["counts"]["quarantined"]
        == 0
    )
    assert again["counts"]["duplicates"] == len(files)


def test_dmarc_failure_reports_are_arf_auth_failures(hd):
    folder = _samples("dmarc", "forensic")
    hd.now = NOW
    hd.account("sharepoint", "indigos", "sharepoint@domain.de")
    summary = hd.ok("ingest", "arf", folder)
    by = {i["item"]: i for i in summary["items"]}
    report = by["parsedmarc__failure_report_domain.de.eml"]
    assert report["outcome"] == "opened" and report["signal"] == "dmarc"
    fields = hd.show(report["ticket"])["fields"]
    assert fields["dmarc-fail"] == 1 and fields["domain"] == "domain.de"
    assert by["parsedmarc__exim_plain_text_only_no_arf_part.eml"]["outcome"] == "quarantined"
    assert all(not i.get("reason", "").startswith("internal error") for i in summary["items"])


def _report(
    domain: str, report_id: str, passed: int, failed: int, *, namespace: bool = False
) -> bytes:
    ns = ' xmlns="urn:ietf:params:xml:ns:dmarc-2.0"' if namespace else ""
    rows = ""
    for ip, count, verdict in (("192.0.2.10", passed, "pass"), ("198.51.100.7", failed, "fail")):
        if count:
            rows += (
                f"<record><row><source_ip>{ip}</source_ip><count>{count}</count><policy_evaluated>"
                f"<disposition>none</disposition><dkim>{verdict}</dkim><spf>{verdict}</spf></policy_evaluated></row>"
                f"<identifiers><header_from>{domain}</header_from></identifiers>"
                f"<auth_results><spf><domain>{domain}</domain><result>{verdict}</result></spf></auth_results></record>"
            )
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><feedback{ns}><report_metadata><org_name>example.net</org_name>'
        f"<email>dmarc@example.net</email><report_id>{report_id}</report_id><date_range><begin>1795392000</begin>"
        f"<end>1795478399</end></date_range></report_metadata><policy_published><domain>{domain}</domain><p>none</p>"
        f"</policy_published>{rows}</feedback>"
    ).encode()


def test_dmarc_aggregate_reports_become_figures_and_alerts(hd, tmp_path):
    hd.now = NOW
    hd.account(
        "members", "indigos", "postmaster@members.example", "--field", "domains=members.example"
    )
    hd.account("quiet", "le-pic", "quiet@calm.example")
    folder = tmp_path / "reports"
    folder.mkdir()
    (folder / "a.xml").write_bytes(_report("members.example", "r1", 70, 30))
    (folder / "b.xml.gz").write_bytes(
        gzip.compress(_report("members.example", "r2", 50, 50, namespace=True))
    )
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr(
            "example.net!calm.example!1795392000!1795478399.xml",
            _report("calm.example", "r3", 99, 1),
        )
    (folder / "c.zip").write_bytes(buf.getvalue())
    carrier = with_attachment(
        mail(
            "noreply-dmarc@example.net",
            "dmarc@indigos.example",
            "Report domain: members.example Submitter: example.net Report-ID: r4",
            "DMARC report attached",
        ),
        "example.net!members.example!1795392000!1795478399.xml.gz",
        gzip.compress(_report("members.example", "r4", 10, 90)),
    )
    (folder / "d.eml").write_bytes(carrier)
    (folder / "e.xml").write_bytes(b"<feedback><report_metadata>")  # broken

    summary = hd.ok("ingest", "dmarc", folder)
    by = {i["item"]: i for i in summary["items"]}
    assert by["a.xml"]["outcome"] == "opened"
    assert (
        by["b.xml.gz"]["outcome"] == "updated" and by["b.xml.gz"]["ticket"] == by["a.xml"]["ticket"]
    )
    assert by["c.zip"]["outcome"] == "recorded"  # 1 failure in 100: under the thresholds
    assert by["d.eml"]["outcome"] == "updated"
    assert by["e.xml"]["outcome"] == "quarantined" and "XML" in by["e.xml"]["reason"]
    alert = hd.show(by["a.xml"]["ticket"])
    assert (
        alert["queue"] == "mail-reputation"
        and alert["policy"] == "indigos"
        and alert["account"] == "members"
    )
    assert alert["fields"]["signal"] == "dmarc" and alert["fields"]["dmarc-fail"] == 30
    assert alert["fields"]["domain"] == "members.example"
    assert set(alert["fields"]) <= DECLARED
    stats = db_rows(
        hd.url,
        "select domain, report_id, passed, failed, policy_key from dmarcstat order by report_id",
    )
    assert stats == [
        ("members.example", "r1", 70, 30, "indigos"),
        ("members.example", "r2", 50, 50, "indigos"),
        ("calm.example", "r3", 99, 1, "le-pic"),
        ("members.example", "r4", 10, 90, "indigos"),
    ]
    # The same reports again (one re-sent under another file name): no new figures.
    (folder / "a-copy.xml").write_bytes(_report("members.example", "r1", 70, 30) + b"\n")
    again = hd.ok("ingest", "dmarc", folder)
    assert (
        again["counts"]["opened"] == again["counts"]["updated"] == again["counts"]["recorded"] == 0
    )
    assert len(db_rows(hd.url, "select id from dmarcstat")) == 4


def test_dmarc_samples_parse_or_are_quarantined(hd):
    folder = _samples("dmarc", "aggregate")
    hd.now = NOW
    summary = hd.ok("ingest", "dmarc", folder)
    files = sorted(p.name for p in folder.iterdir() if p.is_file())
    by = {i["item"]: i for i in summary["items"]}
    assert sorted(by) == files
    for name, item in by.items():
        assert item["outcome"] in ("recorded", "quarantined", "duplicate"), (name, item)
        if item["outcome"] == "quarantined":
            assert not item["reason"].startswith("internal error"), (name, item)
    assert by["parsedmarc__empty.xml"]["reason"] == "fichier vide"  # French by default
    assert by["parsedmarc__invalid_xml.xml"]["outcome"] == "quarantined"
    assert by["dmarc-report-viewer__gmxnet.xml"]["outcome"] == "recorded"  # dmarc-2.0 namespace
    assert (
        by["parsedmarc__google_aggregate_report_email.eml"]["outcome"] == "recorded"
    )  # attached to a mail
    assert len(db_rows(hd.url, "select id from dmarcstat")) >= 15


def test_reports_found_in_a_mailbox(hd, tmp_path):
    """An abuse@ mailbox holds user mail, ARF and DMARC reports: each goes its way."""
    folder = _samples("arf")
    hd.now = NOW
    hd.account("spammer", "indigos", "somespammer@example.net")
    hd.account(
        "members", "indigos", "postmaster@members.example", "--field", "domains=members.example"
    )
    arf = (folder / "rfc5965_B2_full_report_all_headers.eml").read_bytes()
    dmarc = with_attachment(
        mail(
            "noreply-dmarc@example.net",
            "dmarc@indigos.example",
            "Report domain: members.example",
            "report",
        ),
        "example.net!members.example!1795392000!1795478399.xml.gz",
        gzip.compress(_report("members.example", "m1", 0, 40)),
    )
    user = mail(
        "somespammer@example.net",
        "x@indigos.example",
        "mot de passe oublié",
        "J'ai oublié mon mot de passe.",
        message_id="<u@x>",
    )
    summary = hd.ok("ingest", "mail", maildir(tmp_path / "abuse", [arf, dmarc, user]))
    queues = sorted((i.get("queue") or "dmarc", i["outcome"]) for i in summary["items"])
    assert queues == [
        ("dmarc", "opened"),
        ("mail-reputation", "opened"),
        ("password-reset", "opened"),
    ]
    kinds = {row[0] for row in db_rows(hd.url, "select kind from evidence")}
    assert kinds == {"arf", "dmarc", "mail"}
