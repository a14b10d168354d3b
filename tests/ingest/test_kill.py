"""A kill -9 in the middle of an ingest, then a re-run: no duplicate, no loss. Each message
is committed in its own transaction with its dedupe marker."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

from tests.ingest.mailmaker import NOW, db_rows, mail, maildir, sha

KNOWN, UNKNOWN = 220, 80


def _count(url: str) -> int:
    try:
        return db_rows(url, "select count(*) from ingestcursor where source like 'sha256:%'")[0][0]
    except Exception:  # the database is being written: ask again
        return 0


def test_kill_9_in_the_middle_then_rerun(hd, tmp_path):
    hd.now = NOW
    hd.account("camille", "indigos", "camille@example.net")
    mails = []
    for n in range(KNOWN + UNKNOWN):
        if n % 4 == 3 and n // 4 < UNKNOWN:
            mails.append(
                mail(
                    f"stranger{n}@nowhere.example",
                    "x@unknown.example",
                    f"Bonjour {n}",
                    "Bonjour",
                    message_id=f"<k{n}@nowhere.example>",
                )
            )
        else:
            mails.append(
                mail(
                    "camille@example.net",
                    "x@indigos.example",
                    f"Mot de passe oublié ({n})",
                    f"J'ai oublié mon mot de passe, demande {n}.",
                    message_id=f"<k{n}@example.net>",
                )
            )
    known = sum(1 for m in mails if b"camille@" in m)
    box = maildir(tmp_path / "Maildir", mails)
    cmd = [
        sys.executable,
        "-m",
        "helpdesk",
        "--db",
        hd.url,
        "--now",
        NOW,
        "ingest",
        "mail",
        str(box),
        "--json",
    ]
    proc = subprocess.Popen(cmd, env=hd.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while _count(hd.url) < 40 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_before = _count(hd.url)
    assert 0 < done_before < len(mails), (
        f"the run was not stopped in the middle ({done_before} of {len(mails)})"
    )

    summary = hd.ok("ingest", "mail", box)
    c = summary["counts"]
    assert c["duplicates"] == done_before  # what the killed run committed is recognised
    assert c["opened"] + c["quarantined"] + c["duplicates"] == len(mails)

    tickets = db_rows(hd.url, "select count(*) from ticket where queue = 'password-reset'")[0][0]
    assert tickets == known
    assert db_rows(hd.url, "select sha256 from evidence group by sha256 having count(*) > 1") == []
    assert (
        db_rows(hd.url, "select sha256 from quarantine group by sha256 having count(*) > 1") == []
    )
    evidence = {row[0] for row in db_rows(hd.url, "select sha256 from evidence")}
    quarantined = {row[0] for row in db_rows(hd.url, "select sha256 from quarantine")}
    assert evidence | quarantined == {sha(m) for m in mails}  # nothing lost
    assert not evidence & quarantined
    refs = db_rows(hd.url, "select count(*) from messageref")[0][0]
    assert refs == known
    assert hd.ok("audit", "verify")["ok"]
