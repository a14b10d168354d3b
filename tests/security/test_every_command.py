"""Generated arguments fed to every command, in-process through the CLI's entry function:
the only answers are exit 0, 1 or 2, never a traceback (issue 13). Plus the inputs that
gave a traceback when the holes were found, one by one."""

from __future__ import annotations

import argparse
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import PG
from tests.security.conftest import run_cli

# Commands that open the TUI, a web server or the network, or wait on a terminal: driven
# by their own tests, not fed random arguments here.
SKIP = {
    ("serve",),
    ("reset-page",),  # a web server: tests/test_reset_page.py
    ("train",),
    ("train", "start"),
    ("train", "reset"),
    ("tui",),
    ("demo",),
}
HUGE = [str(2**63), str(2**63 - 1), str(-(2**63) - 1), "9" * 40, "-1", "0", "1e3", "0x10"]
HOSTILE = [
    "",
    " ",
    "-",
    "system",
    "intake",
    "alice",
    "chloe",
    "wigii",
    "le-pic",
    "a\udcffb",
    "x\ny",
    "\x1b[31mred",
    "\x00",
    "P99999Y",
    "P1Y",
    "9999-12-31T23:59:59",
    "0001-01-01",
    "2026-13-45",
    "é" * 300,
    "a=b",
    "reset_url=https://x.example/?t=",
    "quarantine_retention=P99999Y",
    "category=spam",
    "sqlite:///",
    "postgresql+nodriver://x/y",
    "::::",
    "%",
    "'\"; DROP TABLE event;--",
]


def commands() -> list[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    """Every (sub)command of the CLI and its parser, found by walking the parser itself."""
    from helpdesk.cli.main import build_parser

    found = []

    def walk(parser, path):
        subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not subs:
            found.append((path, parser))
            return
        for name, child in subs[0].choices.items():
            walk(child, (*path, name))

    walk(build_parser(), ())
    return [
        (p, parser)
        for p, parser in found
        if p not in SKIP and p[:1] not in {("serve",), ("tui",), ("demo",)}
    ]


COMMANDS = commands()


@pytest.fixture(scope="module")
def paths(tmp_path_factory):
    """Files an attacker names: missing, a folder, /dev/zero, a FIFO, not UTF-8, binary."""
    d = tmp_path_factory.mktemp("paths")
    (d / "latin1.csv").write_bytes(
        "login,policy,email\nd\xe9j\xe0,wigii,a@b.example\n".encode("latin-1")
    )
    (d / "binary").write_bytes(os.urandom(256))
    (d / "x\x1b[2Jname").write_text("login,policy,email\n")
    fifo = d / "fifo"
    os.mkfifo(fifo)
    return [
        str(d / "missing"),
        str(d),
        "/dev/zero",
        str(fifo),
        str(d / "latin1.csv"),
        str(d / "binary"),
        str(d / "x\x1b[2Jname"),
        str(d / "new" / "out.db"),
        os.fsdecode(bytes(d / "n") + b"\xff"),
    ]


def value_for(action, path_values):
    """Values for one argument: hostile text, huge numbers, or a file an attacker names."""
    if action.choices:
        return st.one_of(st.sampled_from(list(action.choices)), st.sampled_from(HOSTILE))
    name = (action.dest or "").lower()
    if name in ("path", "file", "anchors", "source", "target") or "path" in name:
        return st.sampled_from(path_values)
    if action.type is not None and getattr(action.type, "__module__", "") == "helpdesk.base.bounds":
        return st.one_of(st.sampled_from(HUGE), st.integers(-5, 5).map(str))
    return st.one_of(st.sampled_from(HOSTILE + HUGE), st.text(max_size=30))


@st.composite
def command_lines(draw, path_values):
    path, parser = draw(st.sampled_from(COMMANDS))
    argv = list(path)
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction) or action.dest in (
            "db",
            "json",
            "lang",
            "program",
        ):
            continue
        if not action.option_strings:  # positional
            n = 1 if action.nargs in (None, 1) else draw(st.integers(1, 2))
            argv += [draw(value_for(action, path_values)) for _ in range(n)]
        elif draw(st.booleans()) if not action.required else True:
            opt = action.option_strings[-1]
            if action.nargs == 0:
                argv.append(opt)
            else:
                argv += [opt, draw(value_for(action, path_values))]
    if draw(st.booleans()):
        argv += [
            "--as",
            draw(
                st.sampled_from(["alice", "bob", "chloe", "tom", "system", "a\udcff", "x\ny", ""])
            ),
        ]
    if draw(st.booleans()):
        argv += [
            "--now",
            draw(
                st.sampled_from(
                    [
                        "9999-12-31T23:59:59",
                        "0001-01-01T00:00:00",
                        "2026-01-10T10:00:00+01:00",
                        "nope",
                    ]
                )
            ),
        ]
    return argv


@pytest.mark.skipif(
    bool(PG), reason="the generated arguments run against SQLite; PostgreSQL runs the replays below"
)
@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_every_command_answers_0_1_or_2_without_a_traceback(
    db_url, paths, tmp_path, data, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    argv = data.draw(command_lines(paths))
    r = run_cli(["--db", db_url, *argv, "--json"])
    assert r.code in (0, 1, 2), (argv, r.code, r.err)
    assert "Traceback" not in r.err, (argv, r.err)


# --- the inputs that gave a traceback, as they were found ------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        ["ticket", "show", str(2**63)],
        ["ticket", "list", "--limit", str(2**63)],
        ["outbox", "list", "--limit", str(2**64)],
        ["ticket", "act", str(2**63), "contact"],
        ["quarantine", "show", str(2**63)],
        ["ticket", "list", "--limit", "0"],
        ["ticket", "list", "--policy", "nope"],
        ["ticket", "list", "--assignee", "nobody-here"],
        ["account", "list", "--status", "gone-fishing"],
        ["account", "list", "--policy", "nope"],
        ["policy", "set", "indigos", "quarantine_retention=P99999Y"],
        ["ticket", "list", "--as", "a\udcff"],
        ["--as", "x\ny", "ticket", "list"],
        ["init", "--policy", ""],  # found by the generated arguments below
        ["policy", "show", "a\udcffb"],
        ["account", "show", "a\udcffb"],
    ],
)
def test_known_tracebacks_are_now_bad_input(attacker, argv):
    attacker.bad(*argv, as_="chloe" if "--as" not in argv else None)


@pytest.mark.parametrize(
    "url",
    ["postgresql+nodriver://u@127.0.0.1/x", "mysql://u@127.0.0.1/x", "sqlite+pysqlite:///%%%/\x00"],
)
def test_malformed_database_urls_are_bad_input(url):
    r = run_cli(["--db", url, "ticket", "list", "--json"])
    assert r.code == 2 and "Traceback" not in r.err, r.err


def test_a_non_utf8_csv_is_bad_input(attacker, paths):
    attacker.bad("account", "import", paths[4], as_="chloe")
    attacker.bad("account", "import", "/dev/zero", as_="chloe")


def test_train_clock_without_a_training_database_leaves_no_file(tmp_path):
    where = tmp_path / "training.db"
    r = run_cli(["--db", str(where), "train", "clock", "+1d"])
    assert r.code == 2 and "Traceback" not in r.err and not where.exists(), r.err


@pytest.mark.skipif(bool(PG), reason="a missing SQLite file")
def test_a_read_command_on_a_missing_sqlite_file_does_not_create_it(tmp_path):
    where = tmp_path / "nothing-here.db"
    for argv in (
        ["ticket", "list"],
        ["audit", "verify"],
        ["account", "list"],
        ["volunteer", "list"],
    ):
        r = run_cli(["--db", str(where), *argv])
        assert r.code == 2 and not where.exists(), (argv, r.err)


def test_a_long_duration_is_refused_when_set_and_a_stored_one_breaks_no_sweep(attacker):
    # Found: one quarantine_retention=P99999Y broke every later sweep.
    attacker.bad("policy", "set", "indigos", "quarantine_retention=P99999Y", as_="chloe")
    from helpdesk.storage import db
    from helpdesk.storage.models import Meta

    with db.write_session(attacker.url) as s:  # stored before settings were bounded
        s.add(
            Meta(
                key="settings:indigos",
                value='{"quarantine_retention": "P99999Y", "evidence_retention": "P99999Y"}',
            )
        )
    r = attacker.run("sweep")
    assert r.code == 0, r.err
    assert attacker.run("sweep").code == 0


def test_the_end_of_the_calendar_breaks_no_sweep(attacker):
    # Found: '--now 9999-12-31T23:59:59 sweep' after an erase was committed.
    attacker.ok(
        "account",
        "add",
        "jd",
        "--policy",
        "wigii",
        "--email",
        "jd@example.org",
        "--last-login",
        "2020-01-01",
        as_="alice",
    )
    attacker.ok("sweep", env={"HELPDESK_NOW": "2026-01-10T10:00:00+01:00"})
    r = attacker.run("--now", "9999-12-31T23:59:59", "sweep")
    # What cannot be done is refused and said (exit 1, for the timer), never a crash.
    assert r.code == (1 if r.json["refused"] else 0) and "Traceback" not in r.err, r.err
    r = attacker.run("--now", "9999-12-31T23:59:59", "sweep")
    assert r.code == (1 if r.json["refused"] else 0), r.err
