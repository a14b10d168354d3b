"""Retention: a closed ticket's personal data is redacted after the provider's period,
and the audit trail still verifies."""

from __future__ import annotations

import json

from sqlalchemy import text

from helpdesk.storage import db


def test_closed_ticket_redacted_after_a_year(hd):
    hd.now = "2026-01-10T10:00:00+01:00"
    hd.account("camille", "indigos", "camille@example.org")
    t = hd.ok(
        "ticket",
        "open",
        "abuse",
        "--policy",
        "indigos",
        "--account",
        "camille",
        "--requester",
        "victim@example.net",
        "--subject",
        "Harcèlement par Camille Dupont",
        "--field",
        "category=harassment",
        "--field",
        "reporter=Jeanne Martin",
        as_="alice",
    )
    tid = t["id"]
    hd.act(tid, "contact", "--note", "called Camille Dupont at home")
    hd.act(
        tid, "resolve", "--note", "apologies sent to Jeanne Martin", now="2026-01-20T10:00:00+01:00"
    )
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
        dump = "\n".join(
            str(r)
            for r in conn.execute(
                text("SELECT note, data FROM event WHERE ticket_id = :t"), {"t": tid}
            )
        )
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
        rows = list(
            conn.execute(
                text("SELECT actor, action FROM event WHERE action = 'read-personal-data'")
            )
        )
    assert [tuple(r) for r in rows] == [("alice", "read-personal-data")]


def test_quarantine_and_evidence_on_no_ticket_are_purged_after_the_shortest_period(hd, tmp_path):
    from tests.ingest.mailmaker import mail, maildir
    from tests.ingest.test_reports_cli import _report

    def count(sql: str) -> int:
        with db.get_engine(hd.url).connect() as conn:
            return conn.execute(text(sql)).scalar()

    hd.now = "2026-03-01T10:00:00Z"
    hd.account("camille", "indigos", "camille@example.org")
    stray = mail(
        "nobody@nowhere.example",
        "info@unknown.example",
        "Bonjour",
        "Une question.",
        message_id="<q1@nowhere.example>",
    )
    request = mail(
        "camille@example.org",
        "x@indigos.example",
        "Mot de passe oublié",
        "J'ai oublié mon mot de passe.",
        message_id="<r1@example.org>",
    )
    summary = hd.ok("ingest", "mail", maildir(tmp_path / "in", [stray, request]))
    assert sorted(i["outcome"] for i in summary["items"]) == ["opened", "quarantined"]
    reports = tmp_path / "dmarc"
    reports.mkdir()
    (reports / "quiet.xml").write_bytes(
        _report("nobody-s.example", "d1", 100, 0)
    )  # figures, no ticket
    assert hd.ok("ingest", "dmarc", reports)["items"][0]["outcome"] == "recorded"
    assert (
        count("select count(*) from quarantine"),
        count("select count(*) from evidence where ticket_id is null"),
    ) == (1, 1)

    # Le PIC's pack: 52 days, the life of its per-site logs; the others' default is 90 days.
    shown = {s["name"]: s for s in hd.ok("policy", "show", "indigos")["settings"]}
    assert (shown["quarantine_retention"]["value"], shown["quarantine_retention"]["source"]) == (
        "P90D",
        "default",
    )
    assert hd.ok("sweep", now="2026-04-21T10:00:00Z")["purged"] == {}  # 51 days
    swept = hd.ok("sweep", now="2026-04-23T10:00:00Z")  # 53 days
    assert swept["purged"] == {"quarantine": 1, "evidence": 1}
    assert (
        count("select count(*) from quarantine") == 0
        and count("select count(*) from evidence where ticket_id is null") == 0
    )
    assert (
        count("select count(*) from evidence where ticket_id is not null") == 1
    )  # a ticket's evidence follows its ticket
    assert hd.ok("quarantine", "list") == []
    with db.get_engine(hd.url).connect() as conn:
        purges = [
            r[0]
            for r in conn.execute(
                text("select data from event where action = 'retention-purge' order by id")
            )
        ]
    purges = [json.loads(p) if isinstance(p, str) else p for p in purges]
    assert [(p["table"], p["rows"], p["period"], p["policy"]) for p in purges] == [
        ("quarantine", 1, "P52D", "le-pic"),
        ("evidence", 1, "P52D", "le-pic"),
    ]
    assert purges[0]["kinds"] == {"mail": 1} and purges[1]["kinds"] == {"dmarc": 1}
    assert "nowhere" not in json.dumps(purges)  # what and how many, never the content
    assert hd.ok("sweep", now="2026-05-23T10:00:00Z")["purged"] == {}

    # A shorter period set by an admin for one provider applies to everything no provider owns.
    hd.ok(
        "policy",
        "set",
        "indigos",
        "quarantine_retention=P30D",
        as_="chloe",
        now="2026-06-01T10:00:00Z",
    )
    again = mail(
        "nobody@nowhere.example",
        "info@unknown.example",
        "Re: Bonjour",
        "Encore une question.",
        message_id="<q2@nowhere.example>",
    )
    hd.ok("ingest", "mail", maildir(tmp_path / "in2", [again]), now="2026-06-01T10:00:00Z")
    assert hd.ok("sweep", now="2026-06-30T10:00:00Z")["purged"] == {}
    assert hd.ok("sweep", now="2026-07-02T10:00:00Z")["purged"] == {"quarantine": 1}
    assert hd.ok("audit", "verify")["ok"] is True


def test_reset_page_limits_forget_the_client_address_after_the_shortest_period(hd, monkeypatch):
    """The reset page keeps the address of a client it limited in a ``reset-page-limited``
    event on no ticket: retention redacts it after the untied-evidence period (the shortest
    of all providers: Le PIC's 52 days), and the audit chain still verifies."""
    from helpdesk.service import password_reset

    def limited_events() -> list[tuple]:
        with db.get_engine(hd.url).connect() as conn:
            return [
                tuple(r)
                for r in conn.execute(
                    text(
                        "select id, ticket_id, data, redacted_at from event "
                        "where action = 'reset-page-limited' order by id"
                    )
                )
            ]

    hd.now = "2026-03-01T10:00:00Z"
    hd.account("camille", "indigos", "camille@example.org")  # the database and its providers
    monkeypatch.setenv("HELPDESK_NOW", "2026-03-01T10:00:00Z")
    password_reset.note_limited(hd.url, "address", "203.0.113.77")
    monkeypatch.setenv("HELPDESK_NOW", "2026-04-10T10:00:00Z")
    password_reset.note_limited(hd.url, "secret", "2001:db8:7:1::/64")
    first, second = limited_events()
    assert first[1] is None and "203.0.113.77" in json.dumps(first[2])  # on no ticket

    swept = hd.ok("sweep", now="2026-04-21T10:00:00Z")  # 51 days after the first
    assert swept["redacted_events"] == {}
    assert "203.0.113.77" in json.dumps(limited_events()[0][2])
    swept = hd.ok("sweep", now="2026-04-23T10:00:00Z")  # 53 days: the first one goes
    assert swept["redacted_events"] == {"reset-page-limited": 1}
    first, second = limited_events()
    assert first[3] is not None and "203.0.113.77" not in json.dumps(first[2])
    assert second[3] is None and "2001:db8:7:1::/64" in json.dumps(second[2])
    swept = hd.ok("sweep", now="2026-06-02T10:00:00Z")  # 53 days after the second
    assert swept["redacted_events"] == {"reset-page-limited": 1}
    assert hd.ok("sweep", now="2026-06-03T10:00:00Z")["redacted_events"] == {}  # once
    with db.get_engine(hd.url).connect() as conn:
        dump = "\n".join(str(tuple(r)) for r in conn.execute(text("select note, data from event")))
        redactions = [
            tuple(r)
            for r in conn.execute(
                text("select actor, note, ticket_id from event where action = 'redact'")
            )
        ]
    assert "203.0.113.77" not in dump and "2001:db8:7:1" not in dump
    assert redactions == [("system", "retention", None)] * 2
    assert hd.ok("audit", "verify")["ok"] is True
