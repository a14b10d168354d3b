"""The audit chain against someone with write access to the database (issue 13)."""

from __future__ import annotations

import json

import pytest
from sqlmodel import select

from helpdesk.storage import audit, db
from helpdesk.base import clock
from helpdesk.storage.models import ChainHead, Event


def _some_history(attacker, n: int = 3) -> None:
    attacker.ok(
        "account", "add", "jd", "--policy", "wigii", "--email", "jd@example.org", as_="alice"
    )
    for i in range(n):
        attacker.ok("account", "contact", "jd", "--add", f"c{i}@example.org", as_="alice")


def _rechain(url: str, edit) -> None:
    """What an attacker with the database does: edit, then recompute every hash after."""
    with db.write_session(url) as s:
        events = list(s.exec(select(Event).order_by(Event.id)))
        edit(s, events)
        prev = ""
        for ev in s.exec(select(Event).order_by(Event.id)):
            if ev.redacted_at is None:
                ev.content_digest = audit.content_digest(ev.note, ev.data)
            ev.prev_hash = prev
            ev.hash = audit.digest(prev, ev)
            prev = ev.hash
            s.add(ev)
        head = s.get(ChainHead, 1)
        last = s.exec(select(Event).order_by(Event.id.desc())).first()
        head.last_id, head.last_hash = (last.id, last.hash) if last else (0, "")
        s.add(head)


def test_marking_an_event_redacted_by_hand_hides_no_edit(attacker):
    # Found: setting redacted_at on any row hid an edit of its note from 'audit verify'.
    _some_history(attacker)
    with db.write_session(attacker.url) as s:
        ev = s.exec(select(Event).where(Event.action == "account-contacts")).first()
        ev.data = {"login": "jd", "after": {"contacts": ["nothing-to-see@example.org"]}}
        ev.redacted_at = clock.now()
        s.add(ev)
        target = ev.id
    r = attacker.run("audit", "verify")
    assert r.code == 1
    assert any(p["event"] == target and "redact" in p["problem"] for p in r.json["problems"]), (
        r.json
    )


def test_a_redaction_through_the_chain_still_verifies(attacker):
    _some_history(attacker)
    with db.write_session(attacker.url) as s:
        ev = s.exec(select(Event).where(Event.action == "account-contacts")).first()
        audit.redact(s, ev, actor="system", reason="retention")
    assert attacker.ok("audit", "verify")["ok"] is True


def test_verify_gives_the_head_and_anchor_writes_it_outside(attacker, tmp_path):
    _some_history(attacker)
    head = attacker.ok("audit", "verify")["head"]
    assert head["id"] == len(attacker.events()) and len(head["hash"]) == 64
    anchors = tmp_path / "anchors" / "helpdesk.anchors"
    attacker.bad("audit", "anchor")  # where to?
    written = attacker.ok("audit", "anchor", "--file", anchors)
    assert (written["id"], written["hash"]) == (head["id"], head["hash"])
    line = json.loads(anchors.read_text().splitlines()[-1])
    assert (
        line["id"] == head["id"]
        and line["hash"] == head["hash"]
        and line["at"].endswith("Z")
        or "+00:00" in line["at"]
    )
    assert (
        anchors.stat().st_mode & 0o777 == 0o600 and anchors.parent.stat().st_mode & 0o777 == 0o700
    )
    attacker.ok("audit", "anchor", env={"HELPDESK_AUDIT_ANCHORS": str(anchors)})
    assert len(anchors.read_text().splitlines()) == 2
    assert attacker.ok("audit", "verify", "--anchors", anchors)["anchors"] == 2


def _edit(s, events):
    events[1].data = {**events[1].data, "after": {"contacts": ["mallory@evil.example"]}}
    s.add(events[1])


def _cut(s, events):
    s.delete(events[-1])
    s.flush()


def _reset(s, events):
    for ev in events:
        s.delete(ev)
    s.flush()


@pytest.mark.parametrize(
    "tamper, said", [(_edit, "recomputed"), (_cut, "cut short"), (_reset, "cut short")]
)
def test_a_chain_recomputed_cut_short_or_started_again_is_caught_by_its_anchors(
    attacker, tmp_path, tamper, said
):
    # Found: a plain SHA-256 chain can be recomputed after an edit, or cut short, and
    # 'verify' still said intact.
    _some_history(attacker)
    anchors = tmp_path / "a"
    attacker.ok("audit", "anchor", "--file", anchors)
    _rechain(attacker.url, tamper)
    assert attacker.ok("audit", "verify")["ok"] is True  # without anchors: the hole as it was found
    r = attacker.run("audit", "verify", "--anchors", anchors)
    assert r.code == 1 and said in r.json["problems"][0]["problem"], r.json


def test_anchors_go_to_syslog_too(attacker, monkeypatch):
    import syslog

    said = []
    monkeypatch.setattr(syslog, "syslog", lambda *a: said.append(a))
    r = attacker.ok("audit", "anchor", "--syslog")
    assert said and f'"id": {r["id"]}' in said[0][-1] and "helpdesk-audit-anchor" in said[0][-1]
    anchors, bad = audit.read_anchors("Dec  7 16:00:00 host helpdesk: " + said[0][-1])
    assert not bad and anchors[0].hash == r["hash"]


def test_a_damaged_anchor_file_is_bad_input(attacker, tmp_path):
    bad = tmp_path / "a"
    bad.write_bytes(b"\xff\xfe not json\n")
    attacker.bad("audit", "verify", "--anchors", bad)
    bad.write_text('{"at": "x", "id": "1", "hash": 3}\n')
    attacker.bad("audit", "verify", "--anchors", bad)
    attacker.bad("audit", "verify", "--anchors", tmp_path)
