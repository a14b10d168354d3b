"""A provider's settings route what comes in: ``intake`` tells which provider a request was
written to, ``mail_domains`` which provider a DMARC report concerns. Set through the real
command line; the packs' own values (Wigii's, Le PIC's) work without any setting."""

from __future__ import annotations

from tests.ingest.mailmaker import NOW, mail, maildir
from tests.ingest.test_reports_cli import _report


def test_intake_addresses_route_requests_to_their_provider(hd, tmp_path):
    hd.now = NOW
    request = mail(
        "stranger@example.com",
        "Support@Indigos.example",
        "Mot de passe oublié",
        "J'ai oublié mon mot de passe.",
        message_id="<lost@example.com>",
    )
    box = maildir(tmp_path / "in", [request])
    before = hd.ok("ingest", "mail", box)
    assert (
        before["items"][0]["outcome"] == "quarantined"
        and before["items"][0]["reason"] == "aucun fournisseur pour cette adresse"
    )

    hd.ok(
        "policy",
        "set",
        "indigos",
        "intake=support@indigos.example; abuse@indigos.example",
        as_="chloe",
    )
    shown = {s["name"]: s for s in hd.ok("policy", "show", "indigos")["settings"]}
    assert shown["intake"]["value"] == ["support@indigos.example", "abuse@indigos.example"]
    after = hd.ok("ingest", "mail", box)  # the quarantined mail is tried again
    item = after["items"][0]
    assert (item["outcome"], item["policy"], item["queue"]) == (
        "opened",
        "indigos",
        "password-reset",
    )

    # The pack's contact still routes (Le PIC's text gives picca@le-pic.org), no setting needed.
    pic = mail(
        "someone@example.com",
        "picca@le-pic.org",
        "Mot de passe",
        "J'ai perdu mon mot de passe.",
        message_id="<pic@example.com>",
    )
    assert (
        hd.ok("ingest", "mail", maildir(tmp_path / "pic", [pic]))["items"][0]["policy"] == "le-pic"
    )


def test_mail_domains_route_dmarc_reports(hd, tmp_path):
    hd.now = NOW
    folder = tmp_path / "reports"
    folder.mkdir()
    (folder / "indigos.xml").write_bytes(_report("indigos.example", "i1", 20, 80))
    (folder / "pic.xml").write_bytes(_report("le-pic.org", "p1", 10, 90))
    first = {i["item"]: i for i in hd.ok("ingest", "dmarc", folder)["items"]}
    assert first["pic.xml"]["outcome"] == "opened"  # Le PIC's pack names le-pic.org
    assert hd.show(first["pic.xml"]["ticket"])["policy"] == "le-pic"
    assert first["indigos.xml"]["outcome"] == "recorded"  # figures kept, but nobody's domain

    hd.ok("policy", "set", "indigos", "mail_domains=Indigos.example.", as_="chloe")
    (folder / "indigos-2.xml").write_bytes(_report("indigos.example", "i2", 20, 80))
    second = {i["item"]: i for i in hd.ok("ingest", "dmarc", folder)["items"]}
    alert = hd.show(second["indigos-2.xml"]["ticket"])
    assert (alert["policy"], alert["queue"], alert["fields"]["domain"]) == (
        "indigos",
        "mail-reputation",
        "indigos.example",
    )

    for bad in ("mail_domains=not a domain!", "mail_domains=-bad-.example", "intake=support"):
        assert bad.split("=")[0] in hd.bad("policy", "set", "indigos", bad, as_="chloe").err
    hd.refused("policy", "set", "indigos", "mail_domains=other.example", as_="alice", rule="role")
