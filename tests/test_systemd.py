"""``helpdesk systemd``: the units it prints or installs pass ``systemd-analyze verify`` with
no warning, keep to systemd's hardening options (``systemd-analyze security`` rates each
service's exposure "OK"), write only where the helpdesk writes, and run commands the CLI
knows."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import stat
import subprocess

import pytest

from helpdesk.cli import main

ANALYZE = shutil.which("systemd-analyze")
needs_analyze = pytest.mark.skipif(
    ANALYZE is None, reason="systemd-analyze is not installed (apt-get install -y systemd)"
)
SERVICES = (
    "helpdesk-sweep.service",
    "helpdesk-ingest.service",
    "helpdesk-policyd.service",
    "helpdesk-reset-page.service",
    "helpdesk-serve.service",
)
TIMERS = ("helpdesk-sweep.timer", "helpdesk-ingest.timer")


@pytest.fixture
def env(monkeypatch, tmp_path):
    for name in ("HELPDESK_DB", "HELPDESK_MAILDIR", "HELPDESK_AUDIT_ANCHORS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("HELPDESK_POLICYD_LISTEN", raising=False)
    monkeypatch.setenv("HELPDESK_CONFIG", str(tmp_path / "helpdesk.toml"))
    (tmp_path / "helpdesk.toml").write_text("")
    monkeypatch.setenv("NO_COLOR", "1")
    return tmp_path


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main.main(list(argv))
    got = capsys.readouterr()
    return code, got.out, got.err


def units_of(capsys, *extra) -> dict[str, str]:
    code, out, err = run(capsys, "systemd", "--user", "helpdesk", "--json", *extra)
    assert code == 0, err
    return json.loads(out)["units"]


def settings(text: str, key: str) -> list[str]:
    return re.findall(rf"^{key}=(.*)$", text, re.M)


def test_every_unit_there_each_service_hardened(env, capsys):
    units = units_of(capsys)
    assert set(units) == set(SERVICES) | set(TIMERS)
    for name in SERVICES:
        text = units[name]
        for setting in (
            "NoNewPrivileges=yes",
            "ProtectSystem=strict",
            "ProtectHome=yes",
            "PrivateTmp=yes",
            "PrivateDevices=yes",
            "CapabilityBoundingSet=",
            "RestrictSUIDSGID=yes",
            "UMask=0077",
            "User=helpdesk",
        ):
            assert re.search(rf"^{re.escape(setting)}$", text, re.M), (name, setting)
        assert settings(text, "ReadWritePaths") == ["-/srv/helpdesk"], name
        assert settings(text, "Environment") == [f"HELPDESK_CONFIG={env / 'helpdesk.toml'}"]
    # The timers start their service; the one-shot services run their commands in order.
    assert settings(units["helpdesk-sweep.service"], "ExecStart")[0].endswith(" sweep")
    assert settings(units["helpdesk-sweep.service"], "ExecStart")[1].endswith(" outbox send")
    assert settings(units["helpdesk-ingest.service"], "ExecStart")[0].endswith(" ingest sources")
    assert settings(units["helpdesk-sweep.timer"], "OnCalendar") == ["*:0/5"]
    assert settings(units["helpdesk-serve.service"], "ExecStart")[0].endswith(" serve --training")


def test_the_places_the_settings_name_are_writable(env, capsys, tmp_path, monkeypatch):
    (env / "helpdesk.toml").write_text(
        f'[policyd]\nlisten = "unix:{tmp_path}/run/policyd.sock"\n'
        f'[ingest]\npostfix_logs = ["/var/log/mail.log"]\n'
    )
    monkeypatch.setenv("HELPDESK_DB", str(tmp_path / "data" / "helpdesk.db"))
    monkeypatch.setenv("HELPDESK_MAILDIR", str(tmp_path / "sent"))
    monkeypatch.setenv("HELPDESK_AUDIT_ANCHORS", str(tmp_path / "anchors" / "helpdesk.anchors"))
    units = units_of(capsys)
    paths = settings(units["helpdesk-sweep.service"], "ReadWritePaths")
    assert paths == [
        "-/srv/helpdesk",
        f"-{tmp_path}/data",
        f"-{tmp_path}/sent",
        f"-{tmp_path}/anchors",
        f"-{tmp_path}/run",
    ]
    anchor = settings(units["helpdesk-sweep.service"], "ExecStart")[2]
    assert anchor.endswith(f" audit anchor --file {tmp_path}/anchors/helpdesk.anchors")
    # Debian's mail.log is readable by the adm group: only the ingest joins it.
    assert settings(units["helpdesk-ingest.service"], "SupplementaryGroups") == ["adm"]
    assert not settings(units["helpdesk-sweep.service"], "SupplementaryGroups")


@needs_analyze
def test_the_units_pass_systemd_analyze(env, capsys, tmp_path):
    folder = tmp_path / "units"
    folder.mkdir()
    code, out, err = run(capsys, "systemd", "--install", "--dir", str(folder), "--lang", "en")
    assert code == 0, err
    assert "systemctl daemon-reload" in out
    files = sorted(p.name for p in folder.iterdir())
    assert files == sorted(SERVICES + TIMERS)
    for p in folder.iterdir():
        assert stat.S_IMODE(p.stat().st_mode) == 0o644
    verify = subprocess.run(
        [ANALYZE, "verify", *(str(folder / n) for n in files)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert verify.returncode == 0, verify.stderr
    assert verify.stderr.strip() == "", verify.stderr  # not even a warning (unknown keys...)
    for name in SERVICES:
        security = subprocess.run(
            [ANALYZE, "security", "--offline=true", "--no-pager", str(folder / name)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        last = security.stdout.strip().splitlines()[-1]
        level = float(re.search(r"exposure level for \S+: ([0-9.]+) (\w+)", last).group(1))
        assert level <= 2.0 and " OK" in last, (name, last)


def test_install_replaces_its_own_units_never_an_admins(env, capsys, tmp_path):
    folder = tmp_path / "units"
    folder.mkdir()
    assert run(capsys, "systemd", "--install", "--dir", str(folder))[0] == 0
    assert run(capsys, "systemd", "--install", "--dir", str(folder))[0] == 0  # an upgrade
    mine = folder / "helpdesk-policyd.service"
    mine.write_text("[Service]\nExecStart=/usr/local/bin/my-own-policyd\n")
    before = {p.name: p.read_text() for p in folder.iterdir()}
    code, _out, err = run(capsys, "systemd", "--install", "--dir", str(folder), "--lang", "en")
    assert code == 2 and "was not written by 'helpdesk systemd'" in err, err
    assert {p.name: p.read_text() for p in folder.iterdir()} == before  # nothing half-written


def test_bad_input_is_said_without_a_traceback(env, capsys, tmp_path):
    code, _out, err = run(capsys, "systemd", "--user=x;rm", "--lang", "en")
    assert code == 2 and "not a system user name" in err
    code, _out, err = run(capsys, "systemd", "--install", "--dir", str(tmp_path / "nowhere"))
    assert code == 2 and "Traceback" not in err
    code, _out, err = run(capsys, "systemd", "--program", "/opt/my helpdesk/bin/helpdesk")
    assert code == 2 and "Traceback" not in err


def test_every_command_the_units_run_is_one_the_cli_knows(env, capsys):
    units = units_of(capsys)
    parser = main.build_parser()
    known = set(parser._subparsers._group_actions[0].choices)
    for name in SERVICES:
        for line in settings(units[name], "ExecStart"):
            words = shlex.split(line)[1:]
            if words[0] == "reset-page" and "reset-page" not in known:
                continue  # 'reset-page' (issue 17) is another branch's: not merged here yet
            if words[:2] == ["ingest", "sources"]:
                ingest = parser._subparsers._group_actions[0].choices["ingest"]
                if "sources" not in ingest._subparsers._group_actions[0].choices:
                    continue  # 'ingest sources' comes with the configuration file (issue 19)
            with pytest.raises(SystemExit) as done:
                parser.parse_args([*words, "--help"])
            assert done.value.code == 0, (name, words)
            capsys.readouterr()
