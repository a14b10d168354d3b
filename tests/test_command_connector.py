"""The command connector with real programs: the JSON it is given on stdin, no shell, its
exit codes (0 done, 75 retried, anything else failed), a program that hangs (killed at
the timeout with what it started, then retried), a failing one, bounded and cleaned
output, a password that travels on stdin only; and an erasure that is not done while one
service has not erased."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import pytest

NOW = "2026-11-23T10:00:00+01:00"
HOSTILE = "\x1b[31mred\x1b[0m \x1b]8;;http://evil\x07link\x1b]8;;\x07 [@click=quit]boom"


def script(tmp_path: Path, name: str, body: str) -> Path:
    """A real program: Python, run by its absolute interpreter path (PATH is not ours)."""
    path = tmp_path / name
    path.write_text(f"#!{sys.executable}\nimport json, os, sys, time\n{body}\n")
    path.chmod(0o755)
    return path


RECORDER = """
log = os.environ["LOG"]
data = sys.stdin.read()
with open(log, "a") as f:
    f.write(json.dumps({"stdin": json.loads(data), "argv": sys.argv, "env": dict(os.environ)}) + "\\n")
print("ok for", json.loads(data)["account"])
"""


def configure(hd, monkeypatch, text: str) -> Path:
    path = hd.tmp_path / "helpdesk.toml"
    path.write_text(text)
    monkeypatch.setenv("HELPDESK_CONFIG", str(path))
    return path


def tool(
    name: str, program: Path, kinds: list[str], *, timeout: float = 10, extra: str = ""
) -> str:
    return (
        f'[connectors.{name}]\ntype = "command"\npolicies = ["indigos"]\n'
        f'program = ["{program}", "--from-helpdesk"]\nkinds = {json.dumps(kinds)}\n'
        f"timeout = {timeout}\n{extra}\n"
    )


def logged(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


@pytest.fixture
def indigos(hdi):
    hdi.now = NOW
    hdi.account("camille", "indigos", "camille@example.org")
    return hdi


def suspend(hd) -> int:
    tid = hd.open(
        "abuse", "indigos", "camille", "cert@example.net", "category=security", "urgent=yes"
    )["id"]
    hd.act(tid, "suspend", "--note", "outgoing port scan, now", as_="bob")
    return tid


def test_the_program_gets_the_action_as_json_on_stdin_and_no_shell(indigos, monkeypatch):
    hd = indigos
    log = hd.tmp_path / "calls.jsonl"
    prog = script(hd.tmp_path, "tool", RECORDER)
    configure(
        hd,
        monkeypatch,
        tool(
            "yunohost",
            prog,
            ["lock", "revoke-sessions", "suspend-sending"],
            extra=f'env = {{ LOG = "{log}" }}',
        ),
    )
    tid = suspend(hd)
    queued = hd.ok("actions", "list", "--ticket", tid)
    assert {a["kind"] for a in queued} == {"lock", "revoke-sessions", "suspend-sending"}
    assert logged(log) == []  # nothing runs before the step is committed and the queue runs
    run = hd.ok("actions", "run", now="2026-11-23T10:01:00+01:00")
    assert sorted(e["kind"] for e in run["done"]) == ["lock", "revoke-sessions", "suspend-sending"]
    calls = logged(log)
    assert [c["stdin"]["action"] for c in calls] == ["lock", "revoke-sessions", "suspend-sending"]
    first = calls[0]
    assert first["stdin"] == {
        "account": "camille",
        "action": "lock",
        "provider": "indigos",
        "ticket": tid,
        "until": None,
        "reason": "suspended",
    }
    # No shell: the argv is the configured list, word for word; a clean environment.
    assert first["argv"] == [str(prog), "--from-helpdesk"]
    assert "HELPDESK_CONFIG" not in first["env"] and first["env"]["LOG"] == str(log)
    # The program's output is the recorded answer, on the action and in the audit trail.
    done = hd.ok("actions", "list", "--ticket", tid)
    assert all(a["status"] == "done" and "ok for camille" in a["answer"] for a in done)
    assert hd.ok("audit", "verify")["ok"]


def test_until_travels_in_utc(indigos, monkeypatch):
    hd = indigos
    log = hd.tmp_path / "calls.jsonl"
    prog = script(hd.tmp_path, "tool", RECORDER)
    configure(
        hd,
        monkeypatch,
        tool(
            "mailcow", prog, ["suspend-sending", "lift-sending"], extra=f'env = {{ LOG = "{log}" }}'
        ),
    )
    tid = hd.open(
        "mail-reputation", "indigos", "camille", "", "signal=volume", "compromised=yes", as_="bob"
    )["id"]
    hd.act(
        tid,
        "secure-compromised",
        "--field",
        "until=2026-11-27T00:00",
        "--note",
        "leaked password",
        as_="bob",
    )
    hd.ok("actions", "run", now="2026-11-23T10:01:00+01:00")
    (call,) = [c["stdin"] for c in logged(log)]
    assert call["action"] == "suspend-sending" and call["until"].endswith("Z")
    assert call["until"] == "2026-11-26T23:00:00Z"  # the 27th at midnight, in Paris


def test_exit_75_is_retried_and_any_other_code_waits_for_a_person(indigos, monkeypatch):
    hd = indigos
    busy = script(hd.tmp_path, "busy", "print('database locked, later'); sys.exit(75)")
    broken = script(hd.tmp_path, "broken", f"sys.stdout.write({HOSTILE!r}); sys.exit(3)")
    configure(
        hd, monkeypatch, tool("busy", busy, ["lock"]) + tool("broken", broken, ["revoke-sessions"])
    )
    tid = suspend(hd)
    run = hd.run("actions", "run", now="2026-11-23T10:01:00+01:00")
    assert run.code == 1  # something failed: said by the exit code too
    report = run.json
    assert [(e["kind"], e["connector"]) for e in report["retried"]] == [("lock", "busy")]
    assert "database locked, later" in report["retried"][0]["answer"]
    assert "exit 75" in report["retried"][0]["answer"]
    (failed,) = report["failed"]
    assert failed["kind"] == "revoke-sessions" and "exit 3" in failed["answer"]
    # Untrusted text: no escape sequence survives, the markup is only text.
    assert "\x1b" not in failed["answer"] and "\x07" not in failed["answer"]
    assert "[@click=quit]boom" in failed["answer"]
    shown = {a["kind"]: a for a in hd.show(tid)["service_actions"]}
    assert (
        shown["revoke-sessions"]["needs_attention"]
        and shown["revoke-sessions"]["status"] == "failed"
    )
    assert shown["lock"]["status"] == "pending" and shown["lock"]["next_attempt_at"]
    human = hd.ok("ticket", "show", tid, json_out=False).out
    assert "\x1b" not in human and "[échoué]" in human


def test_a_hanging_program_is_killed_at_its_timeout_and_retried(indigos, monkeypatch):
    hd = indigos
    pids = hd.tmp_path / "pids"
    hang = script(
        hd.tmp_path,
        "hang",
        # It starts a child of its own, says so, and never ends: both must go.
        f"import subprocess\nchild = subprocess.Popen([{sys.executable!r}, '-c', 'import time; time.sleep(600)'])\n"
        f"open({str(pids)!r}, 'w').write(f'{{os.getpid()}} {{child.pid}}')\n"
        "print('started, waiting forever', flush=True)\ntime.sleep(600)",
    )
    configure(hd, monkeypatch, tool("slow", hang, ["lock"], timeout=1.5))
    tid = suspend(hd)
    started = time.monotonic()
    report = hd.run("actions", "run", now="2026-11-23T10:01:00+01:00").json
    assert time.monotonic() - started < 30
    (retried,) = report["retried"]
    assert "1.5 s" in retried["answer"] and "started, waiting forever" in retried["answer"]
    for pid in map(int, pids.read_text().split()):
        assert not _alive(pid), f"process {pid} outlived the timeout"
    lock = next(a for a in hd.show(tid)["service_actions"] if a["kind"] == "lock")
    assert lock["status"] == "pending" and lock["attempts"] == 1


def _alive(pid: int) -> bool:
    """Still running, after the kill had a moment to land (a zombie is not running)."""
    for _ in range(50):
        if not _running(pid):
            return False
        time.sleep(0.1)
    return True


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split(")")[-1].split()[0] != "Z"


def test_output_is_bounded(indigos, monkeypatch):
    hd = indigos
    loud = script(hd.tmp_path, "loud", "sys.stdout.write('x' * 5_000_000)")
    configure(hd, monkeypatch, tool("loud", loud, ["lock"]))
    suspend(hd)
    (done,) = hd.ok("actions", "run", now="2026-11-23T10:01:00+01:00")["done"]
    assert len(done["answer"]) <= 500 and done["answer"].startswith("lock camille: done: xxx")


def test_set_password_goes_on_stdin_only(hdi, monkeypatch):
    from helpdesk import connectors
    from helpdesk.base import config

    log = hdi.tmp_path / "calls.jsonl"
    echo = script(
        hdi.tmp_path,
        "setpw",
        RECORDER.replace(
            'print("ok for", json.loads(data)["account"])',
            'print("set to", json.loads(data)["password"])',
        ),
    )
    configure(
        hdi,
        monkeypatch,
        tool("yunohost", echo, ["lock", "set-password"], extra=f'env = {{ LOG = "{log}" }}'),
    )
    cfg = config.load(fresh=True)
    secret = 'Tr0ub4dor&3 "quoted" ünïcode'
    conn, answer = connectors.set_password(cfg, "indigos", "camille", secret, ticket=7)
    assert conn.name == "yunohost"
    assert secret not in answer and "set to ********" in answer
    (call,) = logged(log)
    assert call["stdin"] == {
        "account": "camille",
        "action": "set-password",
        "provider": "indigos",
        "ticket": 7,
        "until": None,
        "password": secret,
    }
    assert secret not in json.dumps(call["argv"]) + json.dumps(call["env"])
    # A provider whose tools cannot set passwords says so, with no traceback.
    configure(hdi, monkeypatch, tool("yunohost", echo, ["lock"]))
    with pytest.raises(connectors.Permanent, match="no connector can set a password"):
        connectors.set_password(config.load(fresh=True), "indigos", "camille", secret)
    # A program that refuses: failed, and the password is still not in what it said.
    refuse = script(
        hdi.tmp_path, "refuse", "print('too short:', json.load(sys.stdin)['password']); sys.exit(1)"
    )
    configure(hdi, monkeypatch, tool("yunohost", refuse, ["set-password"]))
    with pytest.raises(connectors.Permanent) as exc:
        connectors.set_password(config.load(fresh=True), "indigos", "camille", secret)
    assert "too short: ********" in str(exc.value) and secret not in str(exc.value)
    assert not isinstance(exc.value, connectors.PasswordRefused)  # exit 1: for a person
    # Exit 65 (EX_DATAERR): this password is refused, the person may choose another one.
    weak = script(
        hdi.tmp_path,
        "weak",
        "print('password_too_simple_1', json.load(sys.stdin)['password']); sys.exit(65)",
    )
    configure(hdi, monkeypatch, tool("yunohost", weak, ["set-password"]))
    with pytest.raises(connectors.PasswordRefused) as refused:
        connectors.set_password(config.load(fresh=True), "indigos", "camille", secret)
    assert "password_too_simple_1 ********" in str(refused.value)
    assert secret not in str(refused.value)


def test_bad_settings_are_refused_with_their_line(indigos, monkeypatch):
    hd = indigos
    configure(
        hd,
        monkeypatch,
        '[connectors.t]\ntype = "command"\npolicies = ["indigos"]\nprogram = "yunohost user update"\nkinds = ["lock"]\n',
    )
    err = hd.bad("connectors", "check").err
    assert "chemin absolu" in err and "helpdesk.toml:1" in err  # French by default
    configure(
        hd,
        monkeypatch,
        '[connectors.t]\ntype = "command"\npolicies = ["indigos"]\nprogram = ["/bin/true"]\nkinds = ["format-disk"]\n',
    )
    assert "kinds" in hd.bad("connectors", "check").err
    configure(
        hd,
        monkeypatch,
        '[connectors.t]\ntype = "command"\npolicies = ["indigos"]\nprogram = ["/bin/true"]\nkinds = ["lock"]\ntimeout = "soon"\n',
    )
    assert "timeout" in hd.bad("connectors", "check").err
    configure(hd, monkeypatch, tool("t", Path("/nonexistent/tool"), ["lock"]))
    check = hd.run("connectors", "check")
    assert check.code == 1 and "/nonexistent/tool" in check.out + check.err


def test_an_erasure_failing_on_one_service_is_not_done(indigos, monkeypatch):
    hd = indigos
    log = hd.tmp_path / "calls.jsonl"
    good = script(hd.tmp_path, "good", RECORDER)
    bad = script(hd.tmp_path, "bad", "print('no such mailbox domain'); sys.exit(2)")
    configure(
        hd,
        monkeypatch,
        tool("yunohost", good, ["lock", "erase"], extra=f'env = {{ LOG = "{log}" }}')
        + tool("sympa", bad, ["erase"]),
    )
    tid = hd.open("abuse", "indigos", "camille", "a@example.net", "category=illegal")["id"]
    hd.act(tid, "contact", "--note", "illegal files shared")
    hd.act(tid, "suspend", "--note", "no answer, files still shared", as_="bob")
    t = hd.act(tid, "close-account", "--note", "relapse after suspension", as_="bob")
    forget = t["deadlines"]["backups-forget"]
    hd.ok("actions", "run", now="2026-11-23T10:02:00+01:00")
    # The preview names every service the erase step will act on, and does nothing.
    dry = hd.ok(
        "ticket", "act", tid, "erase", "--dry-run", as_="chloe", now="2026-12-23T10:00:00+01:00"
    )
    assert sorted((a["kind"], a["connector"]) for a in dry["service_actions"]) == [
        ("erase", "sympa"),
        ("erase", "yunohost"),
    ]
    assert hd.show(tid)["state"] == "account-closed"
    # On its day the sweep takes the erase step: every configured service's erase is run.
    run = hd.run("sweep", now="2026-12-23T10:00:00+01:00")
    assert run.code == 1, run  # an action failed: a timer's run says so by its exit status
    sweep = run.json
    assert sweep["taken"] == [{"ticket": tid, "action": "erase", "state": "erasing"}]
    erases = {
        e["connector"]: e
        for e in sweep["actions"]["done"] + sweep["actions"]["failed"]
        if e["kind"] == "erase"
    }
    assert set(erases) == {"yunohost", "sympa"}
    assert [c["stdin"]["action"] for c in logged(log)][-1] == "erase"
    view = hd.show(tid)
    # Not reported as done: the ticket waits, the account is not "erased", each outcome shows.
    assert view["state"] == "erasing" and view["state_kind"] != "done"
    assert hd.ok("account", "show", "camille", "--reason", "check")["status"] == "deactivated"
    outcome = {a["connector"]: a["status"] for a in view["service_actions"] if a["kind"] == "erase"}
    assert outcome == {"yunohost": "done", "sympa": "failed"}
    assert view["deadlines"]["backups-forget"] == forget
    human = hd.ok("ticket", "show", tid, json_out=False).out
    assert "effacer le compte" in human and "[échoué]" in human and "sympa" in human
    # The person fixes Sympa by hand and says so: then, and only then, the erasure is done.
    sympa = next(
        a for a in view["service_actions"] if a["connector"] == "sympa" and a["kind"] == "erase"
    )
    hd.ok(
        "actions",
        "mark-done",
        sympa["id"],
        "--note",
        "removed from the lists by hand",
        as_="bob",
        now="2026-12-23T11:00:00+01:00",
    )
    view = hd.show(tid)
    assert view["state"] == "erased" and view["deadlines"]["backups-forget"] == forget
    assert hd.ok("account", "show", "camille", "--reason", "check")["status"] == "erased"
    # The person's word on the last service, then the clock's step to "erased".
    last = [(e["actor"], e["action"]) for e in view["events"]][-2:]
    assert last == [("bob", "service-action-marked-done"), ("system", "erasure-complete")]
    assert hd.ok("audit", "verify")["ok"]
