"""The conversation of a ticket, through the real command line: mails in (HTML, attachments),
replies out through the outbox and back in the thread, notes never mailed, asks, credentials
refused, merges (two at once), third-party complaints, general questions converted, search
in bodies, retention."""

from __future__ import annotations

import hashlib
import mailbox
import threading
from email import message_from_bytes

from tests.ingest.mailmaker import NOW, db_rows, mail, maildir

HTML_MAIL = b"""From: Jean Dupont <jean.dupont@example.org>
To: contact@wigii.org
Subject: Sauvegardes
Message-ID: <html-1@example.org>
Date: Mon, 23 Nov 2026 09:00:00 +0100
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="XX"

--XX
Content-Type: text/html; charset=utf-8

<html><body><p>Bonjour,</p><p>Est-ce que mes <b>pi&egrave;ces jointes</b> sont sauvegard&eacute;es chaque nuit&nbsp;?</p><script>alert('[@click=app.quit]')</script><blockquote>Le 20 nov. vous avez &eacute;crit</blockquote></body></html>
--XX
Content-Type: application/pdf; name="facture.pdf"
Content-Disposition: attachment; filename="facture.pdf"
Content-Transfer-Encoding: base64

JVBERi0xLjQK
--XX--
"""


def _setup(hd, tmp_path):
    hd.now = NOW
    hd.env.update(
        HELPDESK_MAILDIR=str(tmp_path / "sent"), HELPDESK_MAIL_FROM="helpdesk@example.org"
    )
    hd.account("jdupont", "wigii", "jean.dupont@example.org")
    hd.account("cpas", "communesplone", "it@cpas.example", "--kind", "member")


def _sent(tmp_path) -> list:
    return [message_from_bytes(bytes(m)) for m in mailbox.Maildir(tmp_path / "sent", create=False)]


def test_a_general_question_in_html_is_answered_the_answer_threads_back_then_it_is_converted(
    hd, tmp_path
):
    _setup(hd, tmp_path)
    summary = hd.ok("ingest", "mail", maildir(tmp_path / "in", [HTML_MAIL]))
    assert summary["counts"]["opened"] == 1 and summary["counts"]["quarantined"] == 0
    tid = summary["items"][0]["ticket"]
    view = hd.show(tid)
    assert (view["queue"], view["state"], view["account"]) == ("general", "received", "jdupont")
    assert "respond-by" in view["deadlines"]
    [first] = view["messages"]
    assert first["direction"] == "in" and first["from"] == "jean.dupont@example.org"
    assert "pièces jointes sont sauvegardées chaque nuit" in first["body"]
    assert (
        "<b>" not in first["body"] and "alert" not in first["body"]
    )  # turned into text, scripts gone
    assert "Le 20 nov." in first["quoted"] and "Le 20 nov." not in first["new"]  # folded, not lost
    assert first["attachments"] == [
        {
            "name": "facture.pdf",
            "type": "application/pdf",
            "size": 9,
            "sha256": hashlib.sha256(b"%PDF-1.4\n").hexdigest(),
        }
    ]

    # A reply, an internal note, then delivery: only the reply leaves, in the thread.
    sent = hd.ok(
        "ticket", "reply", tid, "--text", "Oui, chaque nuit, gardées 30 jours.", as_="alice"
    )
    assert sent["to"] == "jean.dupont@example.org" and sent["subject"].startswith(f"[wigii #{tid}]")
    hd.ok("ticket", "comment", tid, "--text", "vérifié avec Infomaniak", as_="alice")
    hd.ok("outbox", "send")
    [out] = _sent(tmp_path)
    assert (
        out["In-Reply-To"] == "<html-1@example.org>" and "<html-1@example.org>" in out["References"]
    )
    body = out.get_payload(decode=True).decode()
    assert (
        "chaque nuit, gardées 30 jours" in body and "Infomaniak" not in body
    )  # the note is never mailed
    view = hd.show(tid)
    assert view["state"] == "answered"
    assert [m["direction"] for m in view["messages"]] == ["in", "out", "note"]
    assert (
        view["messages"][1]["status"] == "sent"
        and view["messages"][1]["message_id"] == out["Message-ID"]
    )

    # The requester answers in the thread: the answer lands on the ticket, which needs reading again.
    answer = mail(
        "jean.dupont@example.org",
        "contact@wigii.org",
        "Re: " + " ".join(out["Subject"].split()),
        "Merci ! Et les agendas ?",
        message_id="<html-2@example.org>",
        in_reply_to=out["Message-ID"],
    )
    assert hd.ok("ingest", "mail", maildir(tmp_path / "in2", [answer]))["counts"]["threaded"] == 1
    view = hd.show(tid)
    assert (
        view["state"] == "received" and view["messages"][-1]["body"] == "Merci ! Et les agendas ?"
    )

    # Search finds a word of a body only.
    assert [r["id"] for r in hd.ok("ticket", "list", "--search", "agendas")] == [tid]
    assert hd.ok("ticket", "list", "--search", "zzzunfound") == []

    # Misfiled after all: converted into a closure, the conversation kept.
    conv = hd.ok("ticket", "convert", tid, "closure", "--field", "reason=request", as_="alice")
    assert conv["queue"] == "closure" and conv["converted_from"] == tid
    assert [m["direction"] for m in conv["messages"]][:4] == [
        "in",
        "out",
        "note",
        "in",
    ]  # then the procedure's own mail
    old = hd.show(tid)
    assert old["merged_into"] == conv["id"] and old["state_kind"] == "done"
    text = hd.run("ticket", "show", tid, json_out=False)
    assert f"#{conv['id']}" in text.out


def test_a_credential_in_a_reply_on_a_password_reset_is_refused_citing_the_provider(hd, tmp_path):
    _setup(hd, tmp_path)
    t = hd.open("password-reset", "communesplone", "cpas", "it@cpas.example")
    refused = hd.refused(
        "ticket",
        "reply",
        t["id"],
        "--text",
        "Votre nouveau mot de passe : Xk7#pQ2m9",
        rule="no-mail-credentials",
        cite="6.7",
    )
    assert refused["citation"] == "Convention CommunesPlone art. 6.7"
    hd.refused(
        "ticket",
        "reply",
        t["id"],
        "--text",
        "Utilisez ce code : 4F7G-99QZ-ab12",
        rule="no-mail-credentials",
    )
    assert not db_rows(hd.url, "select id from outbox where body like '%Xk7%'")
    assert not [m for m in hd.show(t["id"])["messages"] if "Xk7" in m["body"]]
    hd.ok(
        "ticket",
        "reply",
        t["id"],
        "--text",
        "Nous vous appelons demain matin au numéro enregistré.",
        as_="alice",
    )
    # A reply goes to the requester or a registered contact only.
    r = hd.bad("ticket", "reply", t["id"], "--text", "bonjour", "--to", "someone@else.example")
    assert "registered contact" in r.err or "contact enregistré" in r.err


def test_saved_replies_and_an_ask_that_brings_the_missing_day_back(hd, tmp_path):
    _setup(hd, tmp_path)
    assert "resolved" in hd.ok("ticket", "replies")
    request = mail(
        "jean.dupont@example.org",
        "contact@wigii.org",
        "Désactivation de mon compte",
        "Bonjour, je souhaite la désactivation de mon compte jdupont sur https://club.wigii.org.",
        message_id="<c1@example.org>",
    )
    tid = hd.ok("ingest", "mail", maildir(tmp_path / "in", [request]))["items"][0]["ticket"]
    assert hd.show(tid)["state"] == "incomplete"
    hd.bad("ticket", "ask", tid, "--missing", "shoe-size")
    hd.ok("ticket", "ask", tid, "--missing", "day", as_="alice")
    view = hd.show(tid)
    assert view["waiting_on"] == "requester"
    assert "art. 9" in view["messages"][-1]["body"]  # Wigii's wording of its three items
    hd.ok("outbox", "send")
    [asked] = [m for m in _sent(tmp_path) if "nous manque" in m["Subject"]]
    answer = mail(
        "jean.dupont@example.org",
        "contact@wigii.org",
        "Re: " + " ".join(asked["Subject"].split()),
        "Le 1er mars 2027, merci.",
        message_id="<c2@example.org>",
        in_reply_to=asked["Message-ID"],
    )
    hd.ok("ingest", "mail", maildir(tmp_path / "in2", [answer]))
    view = hd.show(tid)
    assert (
        view["fields"]["day"] == "2027-03-01"
        and view["state"] == "awaiting-ack"
        and view["waiting_on"] is None
    )
    saved = hd.ok("ticket", "reply", tid, "--template", "received", as_="alice")
    assert saved["subject"].startswith(f"[wigii #{tid}]")


def test_merge_moves_the_conversation_and_later_mails_and_two_merges_at_once_end_with_one(
    hd, tmp_path
):
    _setup(hd, tmp_path)
    a = mail(
        "jean.dupont@example.org",
        "contact@wigii.org",
        "Mot de passe oublié",
        "J'ai oublié mon mot de passe.",
        message_id="<m1@example.org>",
    )
    b = mail(
        "jean.dupont@example.org",
        "contact@wigii.org",
        "Mot de passe oublié (bis)",
        "Toujours pas de mot de passe.",
        message_id="<m2@example.org>",
    )
    items = hd.ok("ingest", "mail", maildir(tmp_path / "in", [a, b]))["items"]
    src, into = sorted(i["ticket"] for i in items)
    other = hd.open("closure", "wigii", "jdupont", "", "reason=request")
    refused = hd.refused("ticket", "merge", src, other["id"], rule="merge-same-procedure")
    assert "queue" in refused["message"] or "file" in refused["message"]

    # Two volunteers merge at once, one each way: one merge happens, the other is refused.
    results = {}

    def merge(who, s, i):
        results[who] = hd.run("ticket", "merge", s, i, as_=who)

    threads = [
        threading.Thread(target=merge, args=("alice", src, into)),
        threading.Thread(target=merge, args=("bob", into, src)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    codes = sorted(r.code for r in results.values())
    assert codes == [0, 1], {k: (r.code, r.err) for k, r in results.items()}
    winner = next(r.json for r in results.values() if r.code == 0)
    gone, kept = winner["ticket"], winner["merged_into"]
    view = hd.show(kept)
    assert len(view["messages"]) == 2 and gone in view["merged_from"]
    assert any(e["action"] == "open" and "classified" in e["note"] for e in view["events"])
    assert hd.show(gone)["merged_into"] == kept

    # A later mail threaded to the merged ticket lands on the one it was merged into.
    late = mail(
        "jean.dupont@example.org",
        "contact@wigii.org",
        f"Re: [wigii #{gone}] Mot de passe",
        "Des nouvelles ?",
        message_id="<m3@example.org>",
    )
    out = hd.ok("ingest", "mail", maildir(tmp_path / "in2", [late]))
    assert out["items"][0]["ticket"] == kept
    assert hd.show(kept)["messages"][-1]["body"] == "Des nouvelles ?"
    assert hd.run("audit", "verify").code == 0


def test_a_third_party_complaint_finds_the_account_or_lists_candidates(hd, tmp_path):
    _setup(hd, tmp_path)
    hd.account("mallory", "wigii", "mallory@club.example")
    hd.account("trudy", "wigii", "trudy@club.example")
    one = mail(
        "victim@elsewhere.example",
        "contact@wigii.org",
        "Menaces",
        "Bonjour, l'adresse jean.dupont@example.org m'envoie des menaces depuis une semaine.",
        message_id="<a1@x.example>",
    )
    two = mail(
        "victim2@elsewhere.example",
        "contact@wigii.org",
        "Harcèlement",
        "mallory@club.example et trudy@club.example me harcèlent, ce sont des menaces.",
        message_id="<a2@x.example>",
    )
    items = hd.ok("ingest", "mail", maildir(tmp_path / "in", [one, two]))["items"]
    by_msg = {i["item"]: i["ticket"] for i in items}
    first, second = (hd.show(t) for t in sorted(by_msg.values()))
    assert (
        first["queue"] == "abuse"
        and first["account"] == "jdupont"
        and first["requester"] == "victim@elsewhere.example"
    )
    assert second["account"] is None and second["candidates"] == ["mallory", "trudy"]
    view = hd.ok("ticket", "account", second["id"], "trudy", as_="alice")
    assert view["account"] == "trudy" and view["candidates"] == []
    assert any(e["action"] == "set-account" for e in view["events"])
    hd.bad("ticket", "account", second["id"], "nobody-here")


def test_retention_redacts_the_messages_and_the_chain_still_verifies(hd, tmp_path):
    _setup(hd, tmp_path)
    tid = hd.ok("ingest", "mail", maildir(tmp_path / "in", [HTML_MAIL]))["items"][0]["ticket"]
    hd.ok(
        "ticket",
        "comment",
        tid,
        "--text",
        "numéro de téléphone de Jean : 06 12 34 56 78",
        as_="alice",
    )
    hd.act(tid, "close")
    hd.ok("sweep", now="2028-06-01T10:00:00Z")
    view = hd.show(tid, now="2028-06-01T10:00:00Z")
    assert all(m["redacted"] and m["body"] == "" and m["from"] is None for m in view["messages"])
    assert (
        view["messages"][0]["attachments"][0]["sha256"]
        and view["messages"][0]["attachments"][0]["name"] == ""
    )
    assert (
        hd.ok("ticket", "list", "--search", "sauvegardées", "--all", now="2028-06-01T10:00:00Z")
        == []
    )
    verify = hd.run("audit", "verify", now="2028-06-01T10:00:00Z")
    assert verify.code == 0
