"""Retention: a closed ticket's personal data is redacted after the provider's period,
and the audit trail still verifies."""

from __future__ import annotations

from sqlalchemy import text

from helpdesk import db


def test_closed_ticket_redacted_after_a_year(hd):
    hd.now = "2026-01-10T10:00:00+01:00"
    hd.account("camille", "indigos", "camille@example.org")
    t = hd.ok("ticket", "open", "abuse", "--policy", "indigos", "--account", "camille", "--requester", "victim@example.net",
              "--subject", "Harcèlement par Camille Dupont", "--field", "category=harassment", "--field", "reporter=Jeanne Martin",
              as_="alice")
    tid = t["id"]
    hd.act(tid, "contact", "--note", "called Camille Dupont at home")
    hd.act(tid, "resolve", "--note", "apologies sent to Jeanne Martin", now="2026-01-20T10:00:00+01:00")
    open_one = hd.open("abuse", "indigos", "camille", "other@example.net", "category=spam")["id"]

    assert hd.ok("sweep", now="2027-01-19T10:00:00+01:00")["redacted"] == []
    assert hd.ok("sweep", now="2027-01-20T10:00:00+01:00")["redacted"] == [tid]
    view = hd.show(tid)
    assert view["requester"] == "" and view["subject"] == "—"
    assert "reporter" not in view["fields"] and view["fields"]["category"] == "harassment"
    assert all(e["note"] == "" for e in view["events"] if e["action"] in ("contact", "resolve"))
    mails = hd.ok("outbox", "list", "--ticket", tid)
    assert mails and all(m["to"] == "" and m["status"] == "failed" for m in mails)
    with db.get_engine(hd.url).connect() as conn:
        dump = "\n".join(str(r) for r in conn.execute(text("SELECT note, data FROM event WHERE ticket_id = :t"), {"t": tid}))
    assert "Dupont" not in dump and "Jeanne" not in dump
    assert hd.show(open_one)["requester"] == "other@example.net"  # open tickets keep theirs
    assert hd.ok("audit", "verify")["ok"] is True
    assert hd.ok("sweep", now="2027-02-20T10:00:00+01:00")["redacted"] == []  # once


def test_reading_a_closed_accounts_data_is_audited(hd):
    hd.now = "2026-01-10T10:00:00+01:00"
    hd.account("gone", "indigos", "gone@example.org", "--status", "deactivated")
    hd.account("here", "indigos", "here@example.org")
    hd.ok("account", "show", "here", as_="alice")
    hd.ok("account", "show", "gone", as_="alice")
    with db.get_engine(hd.url).connect() as conn:
        rows = list(conn.execute(text("SELECT actor, action FROM event WHERE action = 'read-personal-data'")))
    assert [tuple(r) for r in rows] == [("alice", "read-personal-data")]
