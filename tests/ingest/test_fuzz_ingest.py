"""Mangled mails, reports and log lines fed to the ingestion entry points: no crash, and
nothing lost — each input ends as a ticket, a thread, a duplicate or a Quarantine row."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpdesk.storage import db
from helpdesk.ingest import intake, store, reports
from helpdesk.ingest.postfix_log import ingest_postfix
from helpdesk.ingest.mailboxes import Item
from helpdesk.ingest.routing import Directory
from helpdesk.ingest.pipeline import Run, ingest_one
from helpdesk.storage.models import Evidence, Quarantine
from tests.ingest.conftest import mangled, sample_files
from tests.ingest.mailmaker import mail

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
HANDLERS = {"mail": intake.handle_mail, "arf": reports.handle_arf, "dmarc": reports.handle_dmarc}
FUZZ = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)


def _originals() -> list[bytes]:
    own = [
        mail(
            "camille@example.net",
            "x@indigos.example",
            "mot de passe oublié",
            "J'ai oublié mon mot de passe.",
            message_id="<f1@x>",
        ),
        mail(
            "jean.dupont@example.org",
            "contact@wigii.org",
            "Désactivation",
            "Désactivez mon compte jdupont sur https://a.wigii.org le 15/01/2027.",
            message_id="<f2@x>",
        ),
        mail(
            "jean.dupont@example.org",
            "contact@wigii.org",
            "Re: [wigii #1] ok",
            "Je confirme.",
            message_id="<f3@x>",
        ),
    ]
    files = sample_files("emails", "arf", "dmarc")
    return own * 8 + [p.read_bytes() for p in files if p.stat().st_size < 60_000][:40]


ORIGINALS = _originals()


@pytest.fixture
def fuzz_db(db_url):
    from helpdesk.service import api

    with db.write_session(db_url) as s:
        api.add_account(s, login="camille", policy="indigos", email="camille@example.net")
        api.add_account(s, login="jdupont", policy="wigii", email="jean.dupont@example.org")
        api.add_account(
            s,
            login="spammer",
            policy="indigos",
            email="somespammer@example.net",
            fields={"ips": "10.0.0.0/8"},
        )
    return db_url


_keys = itertools.count()


@FUZZ
@given(raw=mangled(ORIGINALS), kind=st.sampled_from(sorted(HANDLERS)))
def test_mangled_items_are_used_or_quarantined(fuzz_db, raw, kind):
    with db.read_session(fuzz_db) as s:
        directory = Directory.load(s)
    run = Run(url=fuzz_db, kind=kind, directory=directory, now=NOW)
    outcome = ingest_one(fuzz_db, Item(f"fuzz-{next(_keys)}", raw, "fuzz"), run, HANDLERS[kind])
    assert outcome.outcome in (
        "opened",
        "threaded",
        "updated",
        "recorded",
        "duplicate",
        "quarantined",
    )
    assert not outcome.reason.startswith("internal error"), outcome.reason
    digest = store.sha256(raw)
    with db.read_session(fuzz_db) as s:
        assert store.seen_outcome(s, digest) is not None  # dealt with, and remembered
        if outcome.outcome == "quarantined":
            row = s.get(Quarantine, outcome.quarantine)
            assert row is not None and bytes(row.content) == raw and row.reason
        elif outcome.outcome in ("opened", "threaded") and kind == "mail":
            kept = s.exec(Evidence.__table__.select().where(Evidence.sha256 == digest)).first()
            assert kept is not None or outcome.details.get("queue") == "mail-reputation"


_logs = itertools.count()
_LOG_LINES = [
    line for p in sample_files("postfix") for line in p.read_bytes().splitlines() if line.strip()
][:400]


@FUZZ
@given(
    lines=st.lists(
        mangled(_LOG_LINES or [b"Nov 22 08:00:00 mx1 postfix/qmgr[1]: ABCDEF1234: removed"]),
        min_size=1,
        max_size=30,
    )
)
def test_mangled_log_lines_are_counted_or_quarantined(fuzz_db, tmp_path_factory, lines):
    folder = tmp_path_factory.mktemp(f"log{next(_logs)}")
    log = folder / "mail.log"
    data = b"\n".join(line.replace(b"\n", b" ").replace(b"\r", b" ") for line in lines) + b"\n"
    log.write_bytes(data)
    summary = ingest_postfix(fuzz_db, [str(log)], year=2026, tz=UTC, now=NOW)
    c = summary.as_dict()["counts"]
    assert not summary.errors
    assert c["lines"] == data.count(b"\n")
    assert c["lines"] == c["events"] + c["ignored"] + c["bad_lines"]
    assert c["quarantined"] + c["duplicates"] == c["bad_lines"]  # each unreadable line kept (once)
