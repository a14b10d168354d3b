"""A mail that comes back after its ticket was finished: no queue lists a done ticket, so
the ticket is listed by ``ticket list`` and the mail shown on the dashboard, beside the
service actions that wait for a person, until someone decides (retry or mark-sent)."""

from __future__ import annotations

from helpdesk.base import clock
from helpdesk.tui_api.backend import Backend
from tests.ingest.mailmaker import NOW, maildir
from tests.ingest.test_bounces_cli import _postfix_dsn, _sent

LATER = "2026-11-23T12:00:00+01:00"


def test_a_bounce_on_a_finished_ticket_is_shown_where_a_person_looks(hd, tmp_path):
    hd.now = NOW
    hd.env["HELPDESK_MAILDIR"] = str(tmp_path / "sent")
    hd.account("jdupont", "wigii", "jean.dupont@example.org")
    t = hd.ok(
        "ticket",
        "open",
        "general",
        "--policy",
        "wigii",
        "--account",
        "jdupont",
        "--requester",
        "jean.dupont@example.org",
        as_="alice",
    )["id"]
    hd.ok("ticket", "reply", t, "--text", "Oui, chaque nuit.", as_="alice")
    hd.ok("ticket", "act", t, "close", as_="alice")
    assert hd.ok("outbox", "send")["counts"]["sent"] == 1
    assert [x["id"] for x in hd.ok("ticket", "list")] == []  # finished: in no queue
    [sent] = _sent(tmp_path / "sent")
    dsn = _postfix_dsn(
        sent.as_bytes(),
        "jean.dupont@example.org",
        status="5.1.1",
        diagnostic="550 5.1.1 <jean.dupont@example.org>: User unknown",
    )
    summary = hd.ok("ingest", "mail", maildir(tmp_path / "in", [dsn]), now=LATER)
    assert summary["counts"]["bounces"] == 1

    listed = hd.ok("ticket", "list", now=LATER)
    assert [(x["id"], x["state_kind"]) for x in listed] == [(t, "done")]
    [mail] = hd.show(t)["mails"]
    assert mail["status"] == "bounced"

    clock.set_now(LATER)
    backend = Backend(hd.url, "bob")
    try:
        backend.load_info()
        board = backend.dashboard()
    finally:
        backend.close()
        clock.set_now(None)
    [line] = [a for a in board.actions if a.get("key") == f"t{t}-m{mail['id']}"]
    assert line["ticket"] == t and "jean.dupont@example.org" in line["line"]

    # Decided: listed no more.
    hd.ok("outbox", "retry", mail["id"], "--note", "address corrected", as_="bob", now=LATER)
    assert hd.ok("ticket", "list", now=LATER) == []
