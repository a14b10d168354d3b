"""The audit trail is append-only and hash-chained: a changed, deleted or reordered event
is found by ``helpdesk audit verify``."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from helpdesk.storage import db


@pytest.fixture
def trail(hd):
    hd.now = "2026-11-23T10:00:00Z"
    hd.account("camille", "indigos", "camille@example.org")
    t = hd.open("abuse", "indigos", "camille", "", "category=spam")
    hd.act(t["id"], "contact", "--note", "first exchange")
    hd.act(t["id"], "warn", "--note", "a warning")
    r = hd.ok("audit", "verify")
    assert r["ok"] is True and r["events"] >= 4
    return hd


def _sql(hd, statement: str) -> None:
    with db.get_engine(hd.url).begin() as conn:
        conn.execute(text(statement))
    db.get_engine(hd.url).dispose()


def _broken(hd) -> dict:
    r = hd.run("audit", "verify")
    assert r.code == 1
    return r.json


def test_a_changed_event_is_found(trail):
    _sql(trail, "UPDATE event SET note = 'nothing happened' WHERE action = 'warn'")
    report = _broken(trail)
    assert any("hash" in p["problem"] for p in report["problems"])


def test_a_deleted_event_is_found(trail):
    _sql(trail, "DELETE FROM event WHERE action = 'contact'")
    assert _broken(trail)["problems"]


def test_the_last_event_deleted_is_found(trail):
    _sql(trail, "DELETE FROM event WHERE id = (SELECT max(id) FROM event)")
    assert _broken(trail)["problems"]


def test_reordered_events_are_found(trail):
    _sql(
        trail,
        """UPDATE event SET note = CASE action WHEN 'contact' THEN 'a warning' WHEN 'warn' THEN 'first exchange' END,
                   action = CASE action WHEN 'contact' THEN 'warn' WHEN 'warn' THEN 'contact' END
                   WHERE action IN ('contact', 'warn')""",
    )
    assert _broken(trail)["problems"]


def test_human_output_of_verify(trail):
    r = trail.run("audit", "verify", json_out=False)
    assert r.code == 0 and "intact" in r.out or "intacte" in r.out


def test_a_redacted_event_still_verifies_but_a_changed_note_does_not(trail):
    from sqlmodel import select

    from helpdesk.storage import audit
    from helpdesk.storage.models import Event

    with db.write_session(trail.url) as s:
        ev = s.exec(select(Event).where(Event.action == "contact")).one()
        audit.redact(s, ev, actor="system", reason="retention period over")
    db.get_engine(trail.url).dispose()
    r = trail.ok("audit", "verify")
    assert r["ok"] is True
    view = trail.show(1)
    contact = next(e for e in view["events"] if e["action"] == "contact")
    assert contact["note"] == ""
    # A note changed without redaction is found.
    _sql(trail, "UPDATE event SET note = 'rewritten' WHERE action = 'warn'")
    assert _broken(trail)["problems"]
