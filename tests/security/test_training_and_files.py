"""Training can't reach production; files holding personal data are private (issue 13)."""

from __future__ import annotations

import os
import sqlite3

import pytest

from tests.conftest import PG

sqlite_only = pytest.mark.skipif(bool(PG), reason="files of an SQLite database")


def test_init_training_refuses_a_database_holding_production_data(attacker):
    attacker.ok(
        "account", "add", "jd", "--policy", "wigii", "--email", "jd@example.org", as_="alice"
    )
    attacker.refused("init", "--training", rule="training-separation")
    attacker.ok("ticket", "list", as_="alice")  # still production, untouched
    from helpdesk.storage import db
    from helpdesk.workflow import engine

    with db.read_session(attacker.url) as s:
        assert not engine.is_training(s)


def test_init_training_on_an_unused_database_is_fine(attacker):
    attacker.ok("init", "--training")
    attacker.ok("init", "--training")  # and again, once it is one


def test_a_training_database_never_delivers_mail(attacker, tmp_path):
    attacker.ok("init", "--training")
    attacker.ok(
        "account", "add", "jd", "--policy", "wigii", "--email", "jd@example.org", as_="alice"
    )
    attacker.ok(
        "ticket",
        "open",
        "password-reset",
        "--policy",
        "wigii",
        "--account",
        "jd",
        "--requester",
        "jd@example.org",
        as_="alice",
    )
    queued = attacker.ok("outbox", "list")
    r = attacker.run("outbox", "send", env={"HELPDESK_MAILDIR": str(tmp_path / "sent")})
    assert r.code == 1 and r.json["rule"] == "training-separation", r.out + r.err
    assert not (tmp_path / "sent").exists()
    if queued:  # what it would have sent stays readable
        assert attacker.ok("outbox", "show", queued[0]["id"])["body"]


@sqlite_only
def test_restore_checks_the_backup_before_touching_anything(attacker, tmp_path):
    # Found: a fake file wiped the database, then raised a traceback.
    attacker.ok(
        "account", "add", "jd", "--policy", "wigii", "--email", "jd@example.org", as_="alice"
    )
    fake = tmp_path / "fake.db"
    fake.write_bytes(b"SQLite format 3\x00" + b"\x00" * 200)
    attacker.bad("restore", fake, "--yes", as_="chloe")
    other = tmp_path / "other.db"
    sqlite3.connect(other).execute("CREATE TABLE event (id INTEGER)").connection.commit()
    attacker.bad("restore", other, "--yes", as_="chloe")
    assert [a["login"] for a in attacker.ok("account", "list", as_="alice")] == ["jd"]


@sqlite_only
def test_restore_refuses_a_training_backup_and_a_damaged_chain(attacker, tmp_path, template_db):
    import shutil

    good = tmp_path / "good.db"
    attacker.ok("backup", good, as_="chloe")
    training = tmp_path / "training.db"
    shutil.copyfile(good, training)
    with sqlite3.connect(training) as c:
        c.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('training', 'yes')")
    attacker.refused("restore", training, "--yes", as_="chloe", rule="training-separation")
    damaged = tmp_path / "damaged.db"
    shutil.copyfile(good, damaged)
    with sqlite3.connect(damaged) as c:
        c.execute("UPDATE event SET actor = 'mallory' WHERE id = 1")
    attacker.refused("restore", damaged, "--yes", as_="chloe", rule="audit-chain")
    unknown = tmp_path / "unknown.db"
    shutil.copyfile(good, unknown)
    with sqlite3.connect(unknown) as c:
        c.execute("UPDATE alembic_version SET version_num = '9999'")
    attacker.bad("restore", unknown, "--yes", as_="chloe")
    attacker.ok("restore", good, "--yes", as_="chloe")
    assert attacker.events("restore")[-1].actor == "chloe"


@sqlite_only
def test_the_database_its_wal_and_backups_are_private_whatever_the_umask(tmp_path):
    from tests.security.conftest import Attacker

    folder = tmp_path / "new" / "deeper"
    a = Attacker(f"sqlite:///{folder / 'helpdesk.db'}")
    old = os.umask(0o000)
    try:
        a.ok("init")
        a.ok("volunteer", "add", "root1", "--role", "techadmin")
        a.ok("backup", tmp_path / "bk" / "copy.db", as_="root1")
    finally:
        os.umask(old)
    for p in folder.iterdir():
        assert p.stat().st_mode & 0o777 == 0o600, p
    assert folder.stat().st_mode & 0o777 == 0o700
    assert (tmp_path / "bk" / "copy.db").stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "bk").stat().st_mode & 0o777 == 0o700


def test_the_sent_maildir_is_private(attacker, tmp_path):
    attacker.ok(
        "account", "add", "jd", "--policy", "wigii", "--email", "jd@example.org", as_="alice"
    )
    t = attacker.ok(
        "ticket",
        "open",
        "password-reset",
        "--policy",
        "wigii",
        "--account",
        "jd",
        "--requester",
        "jd@example.org",
        as_="alice",
    )
    attacker.ok("ticket", "act", t["id"], "issue-reset-link", as_="alice")
    old = os.umask(0o000)
    try:
        attacker.run(
            "outbox",
            "send",
            env={
                "HELPDESK_MAILDIR": str(tmp_path / "sent"),
                "HELPDESK_MAIL_FROM": "helpdesk@provider.example",
                "HELPDESK_RESET_URL": "https://wigii.example/reset?token=",
            },
        )
    finally:
        os.umask(old)
    assert attacker.ok("outbox", "list", "--status", "sent"), "a mail was delivered to the Maildir"
    for root, dirs, files in os.walk(tmp_path / "sent"):
        assert os.stat(root).st_mode & 0o777 == 0o700, root
        for f in files:
            assert os.stat(os.path.join(root, f)).st_mode & 0o777 == 0o600, f
