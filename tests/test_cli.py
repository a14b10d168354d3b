"""The command line as scripts and people see it: JSON shapes, exit codes, languages,
untrusted text printed literally."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import ROOT

HOSTILE = (
    '[@click=app.quit]x[/] [link="http://x"]y[/link] [bold]gras [/ \x1b]52;c;Zm9v\x07 \x1b[2J fin'
)


def test_ticket_show_json_keys(hd):
    hd.now = "2026-11-23T10:00:00Z"
    hd.account("camille", "indigos", "camille@example.org")
    t = hd.open(
        "closure", "indigos", "camille", "camille@example.org", "reason=request", "day=2026-12-01"
    )
    view = hd.show(t["id"])
    for key in (
        "id",
        "queue",
        "policy",
        "state",
        "account",
        "requester",
        "fields",
        "deadlines",
        "actions",
        "events",
    ):
        assert key in view
    for a in view["actions"]:
        assert {"key", "label", "allowed", "reason", "citation"} <= set(a)
    for e in view["events"]:
        assert {"at", "actor", "action", "from", "to", "note"} <= set(e)
    acc = hd.ok("account", "show", "camille")
    assert {"login", "policy", "status", "sanctions"} <= set(acc)
    rows = hd.ok("ticket", "list")
    assert rows[0]["id"] == t["id"]


def test_untrusted_text_is_printed_literally(hd):
    hd.now = "2026-11-23T10:00:00Z"
    hd.account("camille", "indigos", "camille@example.org")
    t = hd.ok(
        "ticket",
        "open",
        "abuse",
        "--policy",
        "indigos",
        "--account",
        "camille",
        "--subject",
        HOSTILE,
        "--field",
        "category=spam",
        "--note",
        HOSTILE,
        as_="alice",
    )
    assert "\x1b" not in t["subject"] and "\x07" not in t["subject"]
    assert "[@click=app.quit]x[/]" in t["subject"]
    for args in (("ticket", "show", t["id"]), ("ticket", "list")):
        r = hd.run(*args, json_out=False)
        assert r.code == 0
        assert "\x1b" not in r.out and "\x07" not in r.out
        assert "[@click=app.quit]x[/]" in r.out
        assert '[link="http://x"]y[/link]' in r.out and "[bold]gras" in r.out


def test_english_interface(hd):
    hd.now = "2026-11-23T10:00:00Z"
    hd.account("camille", "indigos", "camille@example.org")
    t = hd.open("abuse", "indigos", "camille", "", "category=spam")
    fr = hd.run("ticket", "act", t["id"], "suspend", "--note", "x", as_="bob", json_out=False)
    en = hd.run(
        "--lang",
        "en",
        "ticket",
        "act",
        t["id"],
        "suspend",
        "--note",
        "x",
        as_="bob",
        json_out=False,
    )
    assert fr.code == en.code == 1
    assert "refusé" in fr.err and "refused" in en.err
    assert fr.err != en.err
    view = hd.ok("--lang", "en", "ticket", "show", t["id"])
    assert view["state_label"] == "New report"
    assert hd.show(t["id"])["state_label"] == "Nouveau signalement"


def test_mail_language_follows_the_requester(hd):
    hd.now = "2026-11-23T10:00:00Z"
    hd.account("sam", "indigos", "sam@example.org", "--account-lang", "en")
    t = hd.open("closure", "indigos", "sam", "sam@example.org", "reason=request")
    hd.act(t["id"], "confirm")
    mail = hd.ok("outbox", "list", "--ticket", t["id"])[0]
    assert mail["lang"] == "en" and "Confirming" in mail["subject"]


def test_mail_language_and_assignee_can_be_changed(hd):
    hd.now = "2026-11-23T10:00:00Z"
    hd.account("sam", "indigos", "sam@example.org")
    t = hd.open("closure", "indigos", "sam", "sam@example.org", "reason=request")
    view = hd.ok("ticket", "lang", t["id"], "en", as_="alice")
    assert view["lang"] == "en" and view["version"] == t["version"] + 1
    # a stale version is a conflict, not a silent overwrite
    r = hd.run("ticket", "lang", t["id"], "fr", "--if-version", t["version"], as_="alice")
    assert r.code == 1 and r.json["rule"] == "conflict" and r.json["changed_by"] == "alice", r.json
    hd.ok("ticket", "act", t["id"], "confirm", "--mail-lang", "fr", as_="alice")
    mail = hd.ok("outbox", "list", "--ticket", t["id"])[0]
    assert mail["lang"] == "fr"
    view = hd.ok("ticket", "assign", t["id"], "bob", as_="alice")
    assert view["assignee"] == "bob"
    hd.bad("ticket", "assign", t["id"], "nobody-here", as_="alice")
    assert hd.ok("ticket", "assign", t["id"], "-", as_="alice")["assignee"] is None
    actions = [e["action"] for e in hd.show(t["id"])["events"]]
    assert actions.count("set-lang") == 2 and actions.count("assign") == 2
    # a trainer changes nothing on a database that is not for training
    hd.refused("ticket", "lang", t["id"], "en", as_="tom", rule="training-only")


def test_volunteer_add_takes_the_role_after_the_login_too(hd):
    """A newcomer types ``volunteer add LOGIN ROLE``: it is read as ``--role ROLE``; two
    different roles, or none, are refused with what to type."""
    assert hd.ok("volunteer", "add", "zoe", "oncall", as_="chloe")["role"] == "oncall"
    assert hd.ok("volunteer", "add", "zoe", "--role", "trainer", as_="chloe")["role"] == "trainer"
    for args in (("zoe",), ("zoe", "oncall", "--role", "volunteer")):
        r = hd.bad("volunteer", "add", *args, as_="chloe")
        assert "--role" in r.err and "volunteer, oncall, techadmin, trainer" in r.err
    assert hd.ok("volunteer", "add", "zoe", "oncall", "--role", "oncall", as_="chloe")


def test_usage_errors_speak_the_interface_language(hd):
    """argparse's own messages follow --lang like the rest: French by default."""
    r = hd.bad("volunteer", "add", "eve", "--role", "king", as_="chloe")
    assert (
        "choix invalide : 'king'" in r.err and "erreur" in r.err and "invalid choice" not in r.err
    )
    r = hd.bad("ticket", "show", as_="chloe")
    assert "arguments requis manquants : id" in r.err, r.err
    r = hd.bad("--lang", "en", "ticket", "show", as_="chloe")
    assert "the following arguments are required: id" in r.err, r.err
    r = hd.bad("ticket", "list", "--bogus", as_="chloe")
    assert "arguments non reconnus : --bogus" in r.err, r.err


def test_volunteer_and_account_errors(hd):
    hd.bad("volunteer", "add", "eve", "--role", "king")
    hd.bad("account", "add", "x", "--policy", "indigos", "--email", "not-an-address")
    hd.bad("account", "add", "x", "--policy", "nope", "--email", "x@example.org")
    hd.bad("account", "show", "nobody")
    r = hd.bad("ticket", "act", "1", "contact", as_="nobody")
    assert "nobody" in r.err


def test_account_import_keeps_going_past_bad_rows(hd, tmp_path):
    f = tmp_path / "accounts.csv"
    f.write_text(
        "login,policy,email,kind,org,last_login,contacts,signature-date\n"
        "cpas-liege,communesplone,it@cpas-liege.example,member,CPAS de Liège,,sec@cpas-liege.example,2024-02-20\n"
        "broken,communesplone,not-an-email,member,,,,\n"
        "jdoe,wigii,jdoe@example.org,user,,2025-01-01T10:00:00Z,,\n"
    )
    r = hd.ok("account", "import", str(f))
    assert r["imported"] == 2 and r["errors"][0]["line"] == 3
    acc = hd.ok("account", "show", "cpas-liege")
    assert acc["fields"]["signature-date"] == "2024-02-20" and acc["contacts"] == [
        "sec@cpas-liege.example"
    ]


def test_ticket_show_prints_the_french_articles_on_demand(hd):
    hd.now = "2026-11-23T10:00:00Z"
    hd.account("camille", "indigos", "camille@example.org")
    t = hd.open("abuse", "indigos", "camille", "", "category=spam")
    plain = hd.run("ticket", "show", t["id"], as_="bob", json_out=False).out
    cited = hd.run("ticket", "show", t["id"], "--citations", as_="bob", json_out=False).out
    assert "manifestement illicites" not in plain
    assert (
        "Charte Indigos" in cited
        and "« Il est interdit" in cited
        and "manifestement illicites" in cited
    )
    view = hd.ok("ticket", "show", t["id"], "--citations", as_="bob")
    assert any("illicites" in a["citation_text"] for a in view["actions"])
    assert all("citation_text" not in a for a in hd.show(t["id"])["actions"])


def test_the_parser_tells_the_tui_from_the_other_commands_importing_nothing_else():
    """``helpdesk.cli.entry`` prepares the TUI's start once the command line is parsed: the
    parser says whether the command opens the TUI, and reading a command line that does
    imports nothing but argparse and the translations."""
    from helpdesk.cli.parser import parse

    for argv in (
        [],
        ["--db", "x.db", "--as", "alice"],
        ["demo"],
        ["tui", "--lang", "en"],
        ["train"],
    ):
        assert parse(argv).opens_tui, argv
    for argv in (["ticket", "list"], ["--db", "x.db", "sweep"], ["train", "start", "k"]):
        assert not parse(argv).opens_tui, argv
    code = (
        "import json, sys\n"
        "from helpdesk.cli.parser import parse\n"
        "for argv in ([], ['demo'], ['tui', '--db', 'x.db'], ['--as', 'alice']): parse(argv)\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('helpdesk'))))"
    )
    p = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True
    )
    assert json.loads(p.stdout) == [
        "helpdesk",
        "helpdesk.base",
        "helpdesk.base.i18n",
        "helpdesk.base.paths",
        "helpdesk.cli",
        "helpdesk.cli.parser",
    ], p.stdout


def test_a_command_built_when_named_is_the_one_the_whole_parser_holds(capsys):
    """Top-level commands are listed by name and built by their module when named: the help
    of each, built so, is the help the complete parser gives, and the list is in its order."""
    import argparse

    import pytest

    from helpdesk.cli.parser import build_parser

    whole = build_parser(complete=True)
    commands = next(a for a in whole._actions if isinstance(a, argparse._SubParsersAction))
    assert list(commands.choices) == [a.dest for a in commands._choices_actions]
    assert build_parser().format_help() == whole.format_help()
    for name, parser in commands.choices.items():
        with pytest.raises(SystemExit):
            build_parser().parse_args([name, "--help"])
        assert capsys.readouterr().out == parser.format_help(), name
