"""``helpdesk ingest mail``: requests become tickets in the right queue, provider and account;
replies are threaded; acknowledgements are recorded; nothing is lost or counted twice.

Drives the real command line in a subprocess on Maildirs and mboxes built here."""

from __future__ import annotations

import json

from tests.ingest.mailmaker import NOW, db_rows, mail, maildir, mbox, sha


def _setup(hd):
    hd.now = NOW
    hd.account("jdupont", "wigii", "jean.dupont@example.org")
    hd.account("camille", "indigos", "camille@example.net")
    hd.account(
        "asso-velo",
        "le-pic",
        "bureau@velo.example",
        "--kind",
        "member",
        "--org",
        "Vélo Asso",
        "--contact",
        "tresorier@velo.example",
    )


def _tickets(hd) -> dict[int, dict]:
    rows = hd.ok("ticket", "list", "--all")
    return {r["id"]: hd.show(r["id"]) for r in rows}


def test_a_maildir_of_requests_becomes_tickets_in_the_right_queue_provider_and_account(
    hd, tmp_path
):
    _setup(hd)
    closure = mail(
        "Jean Dupont <jean.dupont@example.org>",
        "contact@wigii.org",
        "Désactivation de mon compte",
        "Bonjour,\n\nJe souhaite la désactivation de mon compte : jdupont sur https://monasso.wigii.org "
        "le 15 janvier 2027.\n\nCordialement,\nJean",
        message_id="<closure-1@example.org>",
    )
    suspicious = mail(
        "Camille <camille@example.net>",
        "support@indigos.example",
        "Mot de passe oublié",
        "Bonjour, je n'arrive plus à me connecter et je crois que quelqu'un s'est connecté à mon compte "
        "cette nuit. Pouvez-vous réinitialiser mon mot de passe ?",
        message_id="<reset-1@example.net>",
    )
    contact = mail(
        "Trésorier <tresorier@velo.example>",
        "picca@le-pic.org",
        "Réinitialisation du mot de passe",
        "Bonjour, pouvez-vous réinitialiser le mot de passe de notre compte ? Merci.",
        message_id="<reset-2@velo.example>",
    )
    stranger_to_wigii = mail(
        "someone@elsewhere.example",
        "contact@wigii.org",
        "mot de passe oublié",
        "J'ai oublié mon mot de passe.",
        message_id="<stranger@elsewhere.example>",
    )
    unknown = mail(
        "nobody@nowhere.example",
        "info@unknown.example",
        "Question",
        "Bonjour",
        message_id="<u1@nowhere.example>",
    )
    not_understood = mail(
        "jean.dupont@example.org",
        "contact@wigii.org",
        "Facture",
        "Bonjour, pouvez-vous m'envoyer la facture de 2026 ?",
        message_id="<invoice@example.org>",
    )
    box = maildir(
        tmp_path / "Maildir",
        [closure, suspicious, contact, stranger_to_wigii, unknown, not_understood],
    )

    summary = hd.ok("ingest", "mail", box)
    assert summary["counts"]["opened"] == 5  # the invoice question is a general ticket
    assert summary["counts"]["quarantined"] == 1
    assert summary["counts"]["duplicates"] == 0
    by_item = {i["item"]: i for i in summary["items"]}
    assert len(by_item) == 6

    tickets = _tickets(hd)
    closures = [t for t in tickets.values() if t["queue"] == "closure"]
    assert len(closures) == 1
    c = closures[0]
    assert (c["policy"], c["account"], c["requester"]) == (
        "wigii",
        "jdupont",
        "jean.dupont@example.org",
    )
    assert c["fields"]["system"] == "https://monasso.wigii.org"
    assert c["fields"]["day"] == "2027-01-15"
    assert c["state"] == "awaiting-ack"  # the three items of Wigii art. 9: confirmation sent

    resets = {t["policy"]: t for t in tickets.values() if t["queue"] == "password-reset"}
    assert set(resets) == {"indigos", "le-pic", "wigii"}
    assert resets["indigos"]["account"] == "camille"
    assert resets["indigos"]["fields"].get("suspicious") is True
    linked = [
        t
        for t in tickets.values()
        if t["queue"] == "abuse" and t["parent"] == resets["indigos"]["id"]
    ]
    assert (
        len(linked) == 1 and linked[0]["fields"]["category"] == "compromise"
    )  # the compromise procedure
    assert resets["le-pic"]["account"] == "asso-velo"  # found through a declared contact
    assert resets["wigii"]["account"] is None  # provider known from the address written to: triage

    quarantined = {q["reason"] for q in hd.ok("quarantine", "list")}
    assert quarantined == {"aucun fournisseur pour cette adresse"}
    general = [t for t in tickets.values() if t["queue"] == "general"]
    assert (
        len(general) == 1
        and general[0]["account"] == "jdupont"
        and general[0]["state"] == "received"
    )
    assert general[0]["classification"] == {"queue": "general", "words": [], "by": "text"}
    assert resets["indigos"]["classification"]["queue"] == "password-reset"
    assert "mot de passe oublie" in resets["indigos"]["classification"]["words"]

    # The raw mails are kept as evidence, with their sha256, on their tickets.
    kept = {row[0] for row in db_rows(hd.url, "select sha256 from evidence where kind = 'mail'")}
    assert {sha(m) for m in (closure, suspicious, contact, stranger_to_wigii)} <= kept
    quarantine_sha = {row[0] for row in db_rows(hd.url, "select sha256 from quarantine")}
    assert quarantine_sha == {sha(unknown)}


def test_ingesting_again_gives_duplicates_not_new_tickets(hd, tmp_path):
    _setup(hd)
    request = mail(
        "camille@example.net",
        "x@indigos.example",
        "mot de passe oublié",
        "J'ai oublié mon mot de passe.",
        message_id="<dup@example.net>",
    )
    box = maildir(tmp_path / "Maildir", [request])
    first = hd.ok("ingest", "mail", box)
    assert first["counts"]["opened"] == 1
    again = hd.ok("ingest", "mail", box)
    assert again["counts"]["duplicates"] == 1 and again["counts"]["opened"] == 0
    # The same message delivered a second time with another Received header: same Message-ID.
    copy = b"Received: from mx2.example by mx1.example; Mon, 23 Nov 2026 09:00:01 +0100\n" + request
    other = maildir(tmp_path / "Other", [copy])
    third = hd.ok("ingest", "mail", other)
    assert third["counts"]["duplicates"] == 1
    assert len(hd.ok("ticket", "list", "--all")) == 1


def test_an_mbox_and_french_dates(hd, tmp_path):
    _setup(hd)
    slashes = mail(
        "jean.dupont@example.org",
        "contact@wigii.org",
        "Suppression de mon compte",
        "Bonjour, merci de procéder à la suppression de mon compte jdupont le 15/01/2027. Je n'ai pas noté l'adresse du système.",
        message_id="<m1@example.org>",
    )
    other = mail(
        "camille@example.net",
        "x@indigos.example",
        "Mot de passe perdu",
        "J'ai perdu mon mot de passe",
        message_id="<m2@example.net>",
    )
    path = mbox(tmp_path / "requests.mbox", [slashes, other])
    summary = hd.ok("ingest", "mail", path)
    assert summary["counts"]["opened"] == 2
    tickets = _tickets(hd)
    closure = next(t for t in tickets.values() if t["queue"] == "closure")
    assert closure["fields"]["day"] == "2027-01-15"
    assert "system" not in closure["fields"]
    assert closure["state"] == "incomplete"  # an item missing: waits on the requester


def _deliver(hd, tmp_path) -> None:
    """Send the outbox into a Maildir: outgoing mails get their Message-ID."""
    env = dict(hd.env)
    env["HELPDESK_MAILDIR"] = str(tmp_path / "sent")
    env["HELPDESK_MAIL_FROM"] = "helpdesk@provider.example"
    saved, hd.env = hd.env, env
    try:
        hd.ok("outbox", "send")
    finally:
        hd.env = saved


def test_replies_are_threaded_and_acknowledgements_recorded(hd, tmp_path):
    _setup(hd)
    request = mail(
        "jean.dupont@example.org",
        "contact@wigii.org",
        "Désactivation de mon compte",
        "Merci de désactiver mon compte jdupont sur https://monasso.wigii.org le 15 janvier 2027.",
        message_id="<req@example.org>",
    )
    hd.ok("ingest", "mail", maildir(tmp_path / "in1", [request]))
    ticket = hd.ok("ticket", "list", "--queue", "closure")[0]["id"]
    _deliver(hd, tmp_path)
    sent_id = db_rows(hd.url, "select message_id from outbox where ticket_id = :p0", ticket)[0][0]
    assert sent_id.startswith("<")

    # A stranger answering the confirmation: kept on the ticket, not an acknowledgement.
    stranger = mail(
        "other@example.com",
        "contact@wigii.org",
        "Re: confirmation",
        "Je confirme.",
        message_id="<s1@example.com>",
        in_reply_to=sent_id,
    )
    # The requester's answer, threaded by In-Reply-To on our own outgoing mail.
    ack = mail(
        "jean.dupont@example.org",
        "contact@wigii.org",
        "Re: confirmation",
        "Je confirme, merci.\n\nLe 23 nov. 2026, contact@wigii.org a écrit :\n> Veuillez confirmer",
        message_id="<ack@example.org>",
        in_reply_to=sent_id,
        date="Tue, 24 Nov 2026 09:00:00 +0100",
    )
    # A late extra thank-you, threaded through References to the first request.
    late = mail(
        "jean.dupont@example.org",
        "contact@wigii.org",
        "Merci",
        "Merci pour votre aide, bonne journée.",
        message_id="<late@example.org>",
        references="<req@example.org>",
    )
    summary = hd.ok(
        "ingest",
        "mail",
        maildir(tmp_path / "in2", [stranger, ack, late]),
        now="2026-11-24T10:00:00Z",
    )
    assert summary["counts"]["threaded"] == 3
    assert summary["counts"]["acknowledged"] == 1
    assert summary["counts"]["opened"] == 0
    view = hd.show(ticket)
    assert view["state"] == "scheduled"
    actions = [(e["actor"], e["action"]) for e in view["events"]]
    assert ("intake", "acknowledgement-refused") in actions
    assert ("intake", "acknowledge") in actions
    assert actions.count(("intake", "mail-received")) == 3
    refused = next(e for e in view["events"] if e["action"] == "acknowledgement-refused")
    assert "other@example.com" in refused["note"]

    # Acknowledging again once scheduled: refused by the engine, the mail kept, the reason recorded.
    again = mail(
        "jean.dupont@example.org",
        "contact@wigii.org",
        f"Re: [wigii #{ticket}] confirmation",
        "Oui, je confirme.",
        message_id="<ack2@example.org>",
    )
    summary = hd.ok(
        "ingest", "mail", maildir(tmp_path / "in3", [again]), now="2026-11-24T11:00:00Z"
    )
    assert summary["counts"]["threaded"] == 1 and summary["counts"]["acknowledged"] == 0
    view = hd.show(ticket)
    notes = [e["note"] for e in view["events"] if e["action"] == "acknowledgement-refused"]
    assert len(notes) == 2 and "acknowledge" in notes[-1]
    assert len(db_rows(hd.url, "select id from evidence where ticket_id = :p0", ticket)) == 5


def test_a_reply_with_the_missing_items_completes_the_request(hd, tmp_path):
    _setup(hd)
    first = mail(
        "jean.dupont@example.org",
        "contact@wigii.org",
        "Fermeture de mon compte",
        "Bonjour, je souhaite la fermeture de mon compte jdupont.",
        message_id="<c1@example.org>",
    )
    hd.ok("ingest", "mail", maildir(tmp_path / "a", [first]))
    t = hd.ok("ticket", "list", "--queue", "closure")[0]
    assert t["state"] == "incomplete"
    reply = mail(
        "jean.dupont@example.org",
        "contact@wigii.org",
        f"Re: [wigii #{t['id']}] éléments manquants",
        "Le système est https://club.wigii.org et le jour souhaité le 1er mars 2027.",
        message_id="<c2@example.org>",
    )
    hd.ok("ingest", "mail", maildir(tmp_path / "b", [reply]))
    view = hd.show(t["id"])
    assert view["fields"]["system"] == "https://club.wigii.org"
    assert view["fields"]["day"] == "2027-03-01"
    assert view["state"] == "awaiting-ack"


def test_automatic_replies_and_forced_triage(hd, tmp_path):
    _setup(hd)
    auto = mail(
        "camille@example.net",
        "x@indigos.example",
        "Absence",
        "Je suis absente jusqu'au 30 novembre.",
        message_id="<auto@example.net>",
        headers={"Auto-Submitted": "auto-replied"},
    )
    vague = mail(
        "camille@example.net",
        "x@indigos.example",
        "Question",
        "Bonjour, une question sur mon espace.",
        message_id="<q@example.net>",
    )
    summary = hd.ok("ingest", "mail", maildir(tmp_path / "m", [auto, vague]))
    # The automatic reply is quarantined; the vague question is a person writing: general.
    assert summary["counts"]["quarantined"] == 1 and summary["counts"]["opened"] == 1
    reasons = [i["reason"] for i in summary["items"] if i.get("reason")]
    assert len(reasons) == 1 and reasons[0].startswith("message automatique")
    qid = next(i["quarantine"] for i in summary["items"] if i.get("quarantine"))
    raw = hd.run("quarantine", "show", qid, "--raw", json_out=False)
    assert raw.code == 0 and "absente" in raw.out
    opened = next(i for i in summary["items"] if i.get("outcome") == "opened")
    assert hd.show(opened["ticket"])["queue"] == "general"

    # Forced triage: a run that names the queue puts every new request there.
    path = tmp_path / "triaged.eml"
    path.write_bytes(vague.replace(b"<q@example.net>", b"<q2@example.net>"))
    again = hd.ok("ingest", "mail", path, "--policy", "indigos", "--queue", "password-reset")
    assert again["counts"]["opened"] == 1


def test_human_output_and_bad_source(hd, tmp_path):
    _setup(hd)
    box = maildir(
        tmp_path / "Maildir",
        [
            mail(
                "camille@example.net",
                "x@y.example",
                "mot de passe oublié",
                "oublié",
                message_id="<h@x>",
            )
        ],
    )
    r = hd.run("ingest", "mail", box, json_out=False)
    assert r.code == 0
    assert "1 opened" in r.out or "1 ouvert" in r.out or "opened" in r.out
    bad = hd.run("ingest", "mail", tmp_path / "does-not-exist")
    assert bad.code == 2 and "fichier ou dossier introuvable" in bad.err
    shown = hd.ok("quarantine", "list")
    assert shown == []
    assert json.loads(hd.run("quarantine", "show", 999).out)["error"] in ("notfound", "badinput")
