"""Training (issue 6): scenarios, the training database, the movable clock, the walkthrough.

Every scenario's expected path is played headless through the real CLI (``helpdesk train
check``); clock moves are shown making sweep act; reset really restores; nothing works on a
production database; the walkthrough's feedback; strict loading of scenario files.
"""

from __future__ import annotations

import re

import sqlite3
from pathlib import Path

import pytest

from helpdesk.base import clock, i18n
from helpdesk.storage import db
from helpdesk.policy import packs
from helpdesk.training import scenarios, sandbox, clock as training_clock
from helpdesk.base.errors import Refused
from tests.conftest import PG, Helpdesk

KEYS = scenarios.available()


@pytest.fixture(scope="session")
def training_cache(tmp_path_factory):
    """One cache of pristine builds for the session's tests (never the user's own)."""
    return str(tmp_path_factory.mktemp("training-cache"))


@pytest.fixture
def tr(empty_db_url, tmp_path, training_cache, monkeypatch) -> Helpdesk:
    """The real CLI on a database that does not exist yet, to become a training one."""
    monkeypatch.setenv("HELPDESK_TRAINING_CACHE", training_cache)
    hd = Helpdesk(empty_db_url, tmp_path)
    hd.env["HELPDESK_TRAINING_CACHE"] = training_cache
    yield hd
    training_clock.forget()
    clock.set_now(None)
    db._engines.pop(db.resolve_url(empty_db_url), None)


# --- the scenarios ------------------------------------------------------------------------


def test_there_is_a_scenario_for_every_procedure_of_every_provider_and_for_the_general_queue():
    assert len(KEYS) >= 20
    covered = {(sc.provider, sc.queue) for sc in scenarios.load_all()}
    for key in packs.available():
        for queue in packs.read_pack(key).queues:
            if queue == packs.GENERAL:
                continue  # the plain queue applies no provider's text: one scenario, below
            assert (key, queue) in covered, f"no training scenario for {key} {queue}"
    # The plain queue is the same for every provider: one scenario trains it.
    assert any(queue == packs.GENERAL for _key, queue in covered), "no scenario for general"


@pytest.mark.parametrize("key", KEYS)
def test_every_scenario_path_runs_headless(tr, key):
    report = tr.ok("train", "check", key)
    sc = scenarios.load(key)
    assert report["ok"] is True and report["total"] == len(sc.steps) == len(report["steps"])
    for step, result in zip(sc.steps, report["steps"]):
        assert result["ok"], result
        assert result["got"] == (step.refused or step.expect)
    # The database checked is left at the end of the path: each ticket in its last expected state.
    assert (
        tr.ok("train", "clock")["scenario"] == key
    )  # still a training database, at its moved clock
    for name, tid in sandbox.scenario_tickets(tr.url).items():
        path = [s for s in sc.steps if s.ticket == name and not s.refused]
        if path:
            assert tr.show(tid)["state"] == path[-1].expect


def test_check_reports_a_step_that_does_not_go_as_expected(tr, tmp_path, monkeypatch):
    # A copy of a shipped scenario whose path expects a wrong state is caught, and says so.
    data = tmp_path / "data"
    (data / "scenarios").mkdir(parents=True)
    root = Path(scenarios.__file__).resolve().parents[2] / "data"
    for folder in ("policies", "workflows", "templates", "translations"):
        (data / folder).symlink_to(root / folder)
    text = (root / "scenarios" / "indigos-closure-request.toml").read_text(encoding="utf-8")
    text = text.replace(
        'action = "confirm"\nby = "alice"\nexpect = "scheduled"',
        'action = "confirm"\nby = "alice"\nexpect = "cancelled"',
    )
    (data / "scenarios" / "indigos-closure-request.toml").write_text(text, encoding="utf-8")
    from helpdesk.base import paths

    monkeypatch.setattr(paths, "data_dir", lambda: data)
    monkeypatch.setattr(scenarios, "data_dir", lambda: data)
    report = sandbox.check(tr.url, "indigos-closure-request")
    assert not report.ok
    assert [r.ok for r in report.steps] == [True, False]
    assert report.steps[-1].expected == "cancelled" and report.steps[-1].got == "scheduled"


def test_train_list(tr):
    rows = tr.ok("train", "list")
    assert [r["key"] for r in rows] == KEYS
    wigii = next(r for r in rows if r["key"] == "wigii-closure-request")
    assert (
        wigii["provider"] == "wigii"
        and wigii["queue"] == "closure"
        and wigii["title"].startswith("Wigii")
    )
    english = tr.ok("train", "list", "--lang", "en")
    assert next(r for r in english if r["key"] == "wigii-closure-request")["title"].startswith(
        "Wigii: deactivate"
    )


# --- the clock -----------------------------------------------------------------------------


def test_train_clock_and_check_speak_labels_and_local_times(tr):
    """The text of ``train clock`` (its sweep) and ``train check``: steps, states and rules
    by their labels, the clock in the provider's zone; the JSON keeps the keys and UTC."""
    stamp = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d)?Z")
    tid = tr.ok("train", "start", "wigii-closure-request")["tickets"]["main"]
    tr.act(tid, "complete", "--field", "system=https://relation.wigii.org")
    tr.act(tid, "acknowledge", "--note", "acknowledged by the reply mail")
    tr.ok("train", "clock", "+1w")
    moved = tr.ok("train", "clock", "next", json_out=False).out
    assert "2026-12-15 00:00 Europe/Zurich" in moved, moved
    line = next(x for x in moved.splitlines() if x.startswith(f"  #{tid}:"))
    assert "→ " in line and "deactivate" not in line, line
    assert not stamp.search(moved), moved
    checked = tr.run("train", "check", "communesplone-abuse-ladder", json_out=False).out
    assert "refusé par étape préalable ou faits graves" in checked, checked
    assert "refusé par rôle" in checked and "→ Averti" in checked
    assert "[horloge 2026-06-17 10:00 Europe/Brussels]" in checked
    for key in ("prior_step_or_grave", " suspend ", "→ warned", "→ suspended"):
        assert key not in checked, key
    assert not stamp.search(checked), checked
    english = tr.run(
        "train", "check", "communesplone-abuse-ladder", "--lang", "en", json_out=False
    ).out
    assert "refused by prior step or serious facts" in english and "→ Warned" in english
    assert "[clock 2026-06-17 10:00 Europe/Brussels]" in english
    report = tr.ok("train", "check", "communesplone-abuse-ladder")
    assert report["steps"][0]["got"] == "prior_step_or_grave"
    assert report["steps"][3]["clock"] == "2026-06-17T08:00:00Z"


def test_wigii_deactivation_happens_on_its_requested_day(tr):
    seeded = tr.ok("train", "start", "wigii-closure-request")
    tid = seeded["tickets"]["main"]
    assert seeded["clock"] == "2026-11-23T08:00:00Z"
    t = tr.act(tid, "complete", "--field", "system=https://relation.wigii.org")
    assert t["state"] == "awaiting-ack"
    assert t["events"][-1]["at"] == "2026-11-23T08:00:00Z"  # the CLI lives at the training clock
    tr.act(
        tid, "acknowledge", "--note", "acknowledged by the reply mail of jean.dupont@example.org"
    )
    moved = tr.ok("train", "clock", "+1w")
    assert (moved["from"], moved["to"]) == ("2026-11-23T08:00:00Z", "2026-11-30T08:00:00Z")
    assert moved["sweep"]["taken"] == []
    tr.refused(
        "ticket", "act", tid, "deactivate", as_="bob", rule="day_reached", cite="Wigii CGU art. 9"
    )
    moved = tr.ok("train", "clock", "next")
    assert moved["to"] == "2026-12-14T23:00:00Z"  # midnight on 15 December in Zurich
    assert moved["sweep"]["taken"] == [
        {"ticket": tid, "action": "deactivate", "state": "deactivated"}
    ]
    assert tr.ok("account", "show", "jdupont")["status"] == "deactivated"
    assert tr.ok("train", "clock")["clock"] == "2026-12-14T23:00:00Z"


def test_a_space_notice_expires_after_two_months(tr):
    tid = tr.ok("train", "start", "wigii-space-closure")["tickets"]["main"]
    t = tr.act(
        tid, "give-notice", "--note", "espace obsolète", "--check", "notice-posted", as_="bob"
    )
    assert t["deadlines"]["notice-ends"] == "2027-01-23T08:00:00Z"
    assert tr.ok("train", "clock", "+1m")["sweep"]["taken"] == []
    assert tr.show(tid)["state"] == "notice"
    moved = tr.ok("train", "clock", "+1m")  # calendar months: 23 January, same hour
    assert moved["to"] == "2027-01-23T08:00:00Z"
    assert moved["sweep"]["taken"] == [
        {"ticket": tid, "action": "deactivate", "state": "deactivated"}
    ]
    assert tr.ok("account", "show", "espace-voixdefete")["status"] == "deactivated"


def test_a_temporary_sending_suspension_lifts(tr):
    tid = tr.ok("train", "start", "indigos-mail-ladder")["tickets"]["main"]
    tr.act(tid, "contact", "--note", "liste à nettoyer")
    t = tr.act(
        tid,
        "suspend-sending",
        "--field",
        "until=2026-11-25T10:00:00+01:00",
        "--note",
        "rebonds",
        as_="bob",
    )
    assert t["state"] == "send-suspended"
    assert tr.ok("account", "show", "amap-croix-rousse")["status"] == "send-suspended"
    assert tr.ok("train", "clock", "+1d")["sweep"]["taken"] == []
    moved = tr.ok("train", "clock", "next")
    assert moved["to"] == "2026-11-25T09:00:00Z"
    assert moved["sweep"]["taken"] == [{"ticket": tid, "action": "lift", "state": "contacted"}]
    assert tr.ok("account", "show", "amap-croix-rousse")["status"] == "active"


def test_clock_moves_that_make_no_sense_are_bad_input(tr):
    tr.ok("train", "start", "le-pic-reset-member-scope")
    tr.bad("train", "clock", "tomorrow")
    assert "avant" in tr.bad("train", "clock", "P0D").err  # the clock only moves forward
    tid = sandbox.scenario_tickets(tr.url)["main"]
    tr.act(tid, "redirect")
    r = tr.bad("train", "clock", "next")  # the ticket is done: no deadline ahead
    assert "échéance" in r.err


def test_the_trainer_acts_on_a_training_database(tr):
    tid = tr.ok("train", "start", "indigos-abuse-emergency")["tickets"]["main"]
    t = tr.act(tid, "suspend", "--note", "démonstration : scan de ports en cours", as_="tom")
    assert t["state"] == "suspended" and t["events"][-1]["actor"] == "tom"


# --- reset ----------------------------------------------------------------------------------


def _snapshot(hd: Helpdesk, tid: int) -> dict:
    t = hd.show(tid)
    return {
        "state": t["state"],
        "events": [(e["action"], e["actor"], e["at"]) for e in t["events"]],
        "deadlines": t["deadlines"],
        "outbox": [(m["template"], m["status"]) for m in hd.ok("outbox", "list")],
        "clock": hd.ok("train", "clock")["clock"],
        "account": hd.ok("account", "show", "jdupont")["status"],
    }


def test_reset_restores_state_events_outbox_and_clock(tr):
    first = tr.ok("train", "start", "wigii-closure-request")
    tid = first["tickets"]["main"]
    before = _snapshot(tr, tid)
    tr.act(tid, "complete", "--field", "system=https://relation.wigii.org")
    tr.act(
        tid, "acknowledge", "--note", "acknowledged by the reply mail of jean.dupont@example.org"
    )
    tr.ok("train", "clock", "next")
    changed = _snapshot(tr, tid)
    assert (
        changed != before
        and changed["account"] == "deactivated"
        and changed["state"] == "deactivated"
    )
    again = tr.ok("train", "reset")
    assert again["scenario"] == "wigii-closure-request" and again["tickets"] == first["tickets"]
    assert _snapshot(tr, tid) == before
    assert tr.ok("audit", "verify")["ok"] is True


def test_start_replaces_the_scenario_a_training_database_holds(tr):
    tr.ok("train", "start", "wigii-closure-request")
    seeded = tr.ok("train", "start", "le-pic-abuse-interrupt")
    assert tr.ok("train", "clock")["scenario"] == "le-pic-abuse-interrupt"
    accounts = [a["login"] for a in tr.ok("account", "list")]
    assert accounts == ["asso-jardin"]
    assert [t["id"] for t in tr.ok("ticket", "list")] == list(seeded["tickets"].values())


# --- never on a production database ---------------------------------------------------------


def test_nothing_works_on_a_production_database(hd):
    hd.account("camille", "indigos", "camille@example.org")
    for args in (
        ("train", "start", "wigii-closure-request"),
        ("train", "reset", "wigii-closure-request"),
        ("train", "clock", "+1d"),
        ("train", "clock"),
        ("train", "check", "wigii-closure-request"),
        ("train",),
    ):
        refusal = hd.refused(*args, rule="training-only")
        assert "formation" in refusal["message"]
    assert [a["login"] for a in hd.ok("account", "list")] == ["camille"]
    with db.read_session(hd.url) as s:
        assert sandbox._meta(s, "scenario") is None
        with pytest.raises(Refused) as exc:
            sandbox.walkthrough(s, 1)
        assert exc.value.rule == "training-only"
    with pytest.raises(Refused):
        sandbox.advance(hd.url, "+1d")
    assert sandbox.adopt_clock(hd.url) is None


def test_a_file_that_is_not_a_helpdesk_database_is_refused(tmp_path, cli_env, training_cache):
    other = tmp_path / "notes.db"
    con = sqlite3.connect(other)
    con.execute("create table notes(x)")
    con.commit()
    con.close()
    hd = Helpdesk(f"sqlite:///{other}", tmp_path)
    hd.env["HELPDESK_TRAINING_CACHE"] = training_cache
    hd.refused("train", "start", "wigii-closure-request", rule="training-only")
    assert sqlite3.connect(other).execute("select name from sqlite_master").fetchall() == [
        ("notes",)
    ]


def test_adopting_the_clock_never_creates_a_database(tmp_path):
    missing = tmp_path / "nothing.db"
    assert sandbox.adopt_clock(f"sqlite:///{missing}") is None
    assert not missing.exists()


# --- the walkthrough and its feedback ---------------------------------------------------------


@pytest.fixture
def lesson(tr):
    """The Wigii deactivation lesson, seeded in-process."""
    seeded = sandbox.seed(tr.url, "wigii-closure-request")
    yield tr.url, seeded.tickets["main"]
    i18n.set_lang(None)


def test_walkthrough_shows_the_steps_with_the_article_in_french(lesson):
    url, tid = lesson
    w = sandbox.walkthrough(url, tid)
    sc = scenarios.load("wigii-closure-request")
    assert w.title == sc.title["fr"] and w.goal == sc.goal["fr"]
    assert [s.index for s in w.steps] == list(range(1, len(sc.steps) + 1))
    assert [s.current for s in w.steps] == [True] + [False] * (len(sc.steps) - 1)
    assert not any(s.done for s in w.steps)
    first, ack = w.steps[0], w.steps[3]
    assert first.refused == "not_in_states" and first.citation_key == "closure-ack"
    assert (
        first.citation == "Wigii CGU art. 9" and "quittancée" in first.citation_text
    )  # the French original
    assert (
        ack.action == "acknowledge"
        and ack.label == "Enregistrer la quittance"
        and ack.who == "alice"
    )
    assert ack.check == sc.steps[3].check["fr"] and ack.clock == "P1D"
    i18n.set_lang("en")
    w = sandbox.walkthrough(url, tid)
    assert (
        w.steps[3].check == sc.steps[3].check["en"]
        and w.steps[3].label == "Record the acknowledgement"
    )
    assert "quittancée" in w.steps[0].citation_text  # the article stays in French
    assert sandbox.walkthrough(url, 999) is None  # not a scenario ticket


def test_out_of_order_and_refused_feedback(lesson):
    url, tid = lesson
    i18n.set_lang("en")
    # The first step is to show deactivate being refused; acknowledging now is out of order.
    message = sandbox.feedback(url, tid, "acknowledge")
    assert (
        message.startswith("Out of order: step 1 expected")
        and "earlier step first" in message
        and "not_in_states" not in message
    )
    # The expected refusal, seen as the role its step names (recorded, then told), named
    # by its label with its article.
    sandbox.record_refusal(url, tid, "deactivate", "not_in_states", by="alice")
    message = sandbox.feedback(url, tid, "deactivate", "not_in_states")
    assert (
        message
        == "As expected: «Deactivate the account» is refused by the rule earlier step first (Wigii CGU art. 9)."
    )
    w = sandbox.walkthrough(url, tid)
    assert w.steps[0].done and w.steps[1].current
    # An unexpected refusal: the rule, the article, and what was expected instead.
    message = sandbox.feedback(url, tid, "acknowledge", "state")
    assert message.startswith(
        "«Record the acknowledgement» was refused by the rule step of the procedure (Wigii CGU art. 9)."
    )
    assert "Step 2 expected: «Complete the request» (complete), by alice" in message
    # The expected step, taken: no remark; the walkthrough moves on.
    with db.write_session(url) as s:
        from helpdesk.workflow import engine
        from helpdesk.service import api

        engine.apply(
            s,
            tid,
            "complete",
            api.actor_for(s, "alice"),
            fields={"system": "https://relation.wigii.org"},
            now=sandbox.clock_of(url),
        )
    assert sandbox.feedback(url, tid, "complete") is None
    w = sandbox.walkthrough(url, tid)
    assert [s.done for s in w.steps[:3]] == [True, True, False] and w.steps[2].current
    assert w.steps[1].reached == "awaiting-ack"  # the automatic confirmation included
    # A step taken out of order is off the path and said so; the path stays where it was.
    with db.write_session(url) as s:
        engine.apply(
            s,
            tid,
            "cancel",
            api.actor_for(s, "alice"),
            note="changement d'avis",
            now=sandbox.clock_of(url),
        )
    i18n.set_lang(None)
    message = sandbox.feedback(url, tid, "cancel")
    assert message.startswith(
        "Hors de l'ordre prévu : étape 3 attendue : montrer que « Désactiver le compte »"
    )
    w = sandbox.walkthrough(url, tid)
    assert w.steps[2].current and [o["action"] for o in w.off_path] == ["cancel"]


def test_clock_of_advance_and_adopt_clock_in_process(lesson):
    url, tid = lesson
    assert sandbox.clock_of(url) == clock.parse_datetime("2026-11-23T08:00:00Z")
    assert sandbox.adopt_clock(url) == clock.parse_datetime("2026-11-23T08:00:00Z")
    assert clock.now() == clock.parse_datetime("2026-11-23T08:00:00Z")
    move = sandbox.advance(url, "+1d")
    assert (
        clock.now() == move.after == clock.parse_datetime("2026-11-24T08:00:00Z")
    )  # the process follows
    assert move.as_dict()["sweep"]["taken"] == []
    again = sandbox.reset(url)
    assert clock.now() == sandbox.clock_of(url) == clock.parse_datetime("2026-11-23T08:00:00Z")
    if url.startswith("sqlite"):
        assert again.cached  # copied from the pristine build kept when it was seeded


# --- strict loading -----------------------------------------------------------------------------

GOOD = """
key = "{key}"
provider = "wigii"
queue = "closure"
start = "2026-11-23T09:00:00"
title = {{ fr = "Titre", en = "Title" }}
goal = {{ fr = "But", en = "Goal" }}

[[accounts]]
login = "jdupont"
email = "jean.dupont@example.org"

[[tickets]]
account = "jdupont"
requester = "jean.dupont@example.org"
opened_by = "alice"
fields = {{ reason = "request", day = "2026-12-15", system = "https://relation.wigii.org" }}

[[steps]]
action = "acknowledge"
by = "alice"
expect = "scheduled"
check = {{ fr = "Vérifier", en = "Check" }}
"""


def _write(tmp_path: Path, key: str, text: str) -> Path:
    path = tmp_path / f"{key}.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    "change, complaint",
    [
        (('provider = "wigii"', 'provider = "wigi"'), "unknown provider 'wigi'"),
        (
            ('queue = "closure"', 'queue = "mail-reputation"'),
            "wigii has no 'mail-reputation' procedure",
        ),
        (
            ('action = "acknowledge"', 'action = "acknowlege"'),
            "steps[1]: unknown action 'acknowlege' for wigii/closure",
        ),
        (('expect = "scheduled"', 'expect = "planned"'), "steps[1]: unknown state 'planned'"),
        (
            ('expect = "scheduled"', 'refused = "day_reachd"'),
            "steps[1]: rule 'day_reachd' cannot refuse 'acknowledge'",
        ),
        (('by = "alice"\nexpect', 'by = "mallory"\nexpect'), "steps[1]: by 'mallory'"),
        (
            ('check = { fr = "Vérifier", en = "Check" }', 'check = { fr = "Vérifier" }'),
            "steps[1].check",
        ),
        (
            ('expect = "scheduled"', 'expect = "scheduled"\nclok = "P1D"'),
            "steps[1]: unknown key(s) clok",
        ),
        (('expect = "scheduled"', 'expect = "scheduled"\nclock = "tomorrow"'), "clock 'tomorrow'"),
        (
            ('reason = "request"', 'reason = "lapse"'),
            "closure reason 'lapse' is not one of wigii's",
        ),
        (('day = "2026-12-15"', 'dya = "2026-12-15"'), "tickets[1]: unknown field 'dya'"),
        (
            ('account = "jdupont"', 'account = "jdupond"'),
            "tickets[1]: account 'jdupond' is not among",
        ),
        (('start = "2026-11-23T09:00:00"', 'start = "23/11/2026"'), "start: not an ISO date"),
    ],
)
def test_a_broken_scenario_file_is_refused_naming_the_file_and_the_element(
    tmp_path, change, complaint
):
    key = "broken-lesson"
    assert (
        scenarios.load_file(_write(tmp_path, key, GOOD.format(key=key))).steps[0].action
        == "acknowledge"
    )
    old, new = change
    text = GOOD.format(key=key)
    assert old in text
    with pytest.raises(scenarios.ScenarioError) as exc:
        scenarios.load_file(_write(tmp_path, key, text.replace(old, new, 1)))
    message = str(exc.value)
    assert message.startswith(f"{key}.toml: ") and complaint in message, message


def test_a_scenario_key_must_match_its_file_and_toml_must_parse(tmp_path):
    with pytest.raises(scenarios.ScenarioError, match="does not match the file name"):
        scenarios.load_file(_write(tmp_path, "other-name", GOOD.format(key="lesson")))
    with pytest.raises(scenarios.ScenarioError, match=r"^bad\.toml: "):
        scenarios.load_file(_write(tmp_path, "bad", "key = \n"))


def test_an_unknown_scenario_is_bad_input(tr):
    r = tr.bad("train", "start", "no-such-lesson")
    assert "no-such-lesson" in r.err


def test_a_refusal_counts_only_when_seen_as_the_role_its_step_names(tr):
    """tom holds every role: his refused attempt ticks no refusal step (neither the role
    refusal he cannot see nor the next one); seen as alice and as bob, each ticks its own
    step only. A trainer plays a volunteer to see them, recorded under his name."""
    from helpdesk.base.errors import BadInput, Refused
    from sqlmodel import select

    from helpdesk.storage.models import Event

    seeded = sandbox.seed(tr.url, "indigos-abuse-emergency")
    tid = seeded.tickets["main"]
    done = lambda: [st.done for st in sandbox.walkthrough(tr.url, tid).steps]  # noqa: E731
    assert done() == [False] * 5
    sandbox.record_refusal(tr.url, tid, "suspend", "prior_exchange_or_emergency", by="tom")
    assert done() == [False] * 5  # seen as the trainer: counts for no step
    told = sandbox.feedback(tr.url, tid, "suspend", "prior_exchange_or_emergency")
    assert "l'étape 2" in told and "bob (astreinte)" in told and "p joue" in told, told
    assert "prior_exchange_or_emergency" not in told  # the rule by its label
    sandbox.record_refusal(tr.url, tid, "suspend", "prior_exchange_or_emergency", by="bob")
    assert done() == [False, True, False, False, False]  # its own step, not the one before
    assert sandbox.walkthrough(tr.url, tid).current.index == 1
    sandbox.record_refusal(tr.url, tid, "suspend", "role", by="alice")
    assert done() == [True, True, False, False, False]
    assert sandbox.walkthrough(tr.url, tid).current.index == 3
    assert "Comme prévu" in sandbox.feedback(tr.url, tid, "suspend", "role")

    assert sandbox.play_as(tr.url, "tom", "alice") == "alice"
    assert sandbox.play_as(tr.url, "tom", None) == "tom"
    with pytest.raises(Refused):
        sandbox.play_as(tr.url, "alice", "bob")  # only a trainer plays the others
    with pytest.raises(BadInput):
        sandbox.play_as(tr.url, "tom", "nobody")
    with db.read_session(tr.url) as s:
        played = list(s.exec(select(Event).where(Event.action == sandbox.PLAY_EVENT)))
    assert [(e.actor, e.data["as"]) for e in played] == [("tom", "alice"), ("tom", "tom")]
    assert tr.ok("audit", "verify")["ok"] is True


@pytest.mark.skipif(not PG, reason="PostgreSQL only: its deadlock detector (HELPDESK_TEST_PG)")
def test_a_reset_that_deadlocks_with_a_reading_session_is_tried_again():
    """A volunteer's session reads the training database while the trainer starts another
    scenario: the reader holds ``account`` and asks for the table the wipe took first, the
    wipe waits for ``account``. PostgreSQL rolls one of them back; the wipe, one
    transaction, is tried again and empties the database once the reader is done."""
    import threading
    import time

    import psycopg
    from sqlalchemy import inspect
    from sqlalchemy.engine import make_url

    from tests.conftest import _pg_create, _pg_drop

    url = _pg_create()
    try:
        sandbox.seed(url, "indigos-abuse-exchange")
        with db.get_engine(url).connect() as conn:
            names = inspect(conn).get_table_names()
        first = next(n for n in names if n != "account")  # the wipe locks it before account
        plain = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
        with psycopg.connect(plain) as reader, psycopg.connect(plain, autocommit=True) as watch:
            reader.execute("SET deadlock_timeout = '5s'")  # the wipe's detector fires first
            reader.execute("SELECT 1 FROM account LIMIT 1")  # its transaction holds account
            failure: list[BaseException] = []

            def wipe() -> None:
                try:
                    sandbox._wipe(url)
                except BaseException as exc:  # noqa: BLE001 - reported below
                    failure.append(exc)

            worker = threading.Thread(target=wipe)
            worker.start()
            deadline = time.monotonic() + 10
            while not watch.execute(
                "SELECT 1 FROM pg_locks l JOIN pg_class c ON c.oid = l.relation"
                " WHERE NOT l.granted AND c.relname = 'account'"
            ).fetchone():
                assert time.monotonic() < deadline, "the wipe never waited for account"
                time.sleep(0.05)
            reader.execute(f'SELECT 1 FROM "{first}" LIMIT 1')  # waits on the wipe: a cycle
            reader.commit()  # the wipe was the victim: the reader goes on, then lets go
            worker.join(30)
            assert not worker.is_alive() and not failure, failure
        with db.get_engine(url).connect() as conn:
            assert inspect(conn).get_table_names() == []
    finally:
        db._engines.pop(url, None)
        _pg_drop(url)
