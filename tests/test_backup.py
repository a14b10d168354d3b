"""A backup is a consistent copy; restoring it gives the database back as it was."""

from __future__ import annotations


def test_backup_restore_round_trip(hd, tmp_path):
    hd.now = "2026-11-23T10:00:00Z"
    hd.account("camille", "indigos", "camille@example.org")
    t = hd.open("abuse", "indigos", "camille", "", "category=spam")
    hd.act(t["id"], "contact", "--note", "before the backup")
    copy = tmp_path / "backup.dump"
    r = hd.ok("backup", str(copy), as_="chloe")
    assert r["bytes"] > 0
    hd.bad("backup", str(copy))  # never overwrites a file

    hd.act(t["id"], "warn", "--note", "after the backup")
    hd.open("abuse", "indigos", "camille", "", "category=harassment")
    assert len(hd.ok("ticket", "list")) == 2

    hd.bad("restore", str(copy), as_="chloe")  # needs --yes
    hd.ok("restore", str(copy), "--yes")
    rows = hd.ok("ticket", "list")
    assert [r["id"] for r in rows] == [t["id"]]
    view = hd.show(t["id"])
    assert view["state"] == "contacted"
    actions = [e["action"] for e in view["events"]]
    assert actions == ["open", "contact"]
    assert hd.ok("audit", "verify")["ok"] is True
    hd.bad("restore", str(tmp_path / "nope.dump"), "--yes", as_="chloe")
