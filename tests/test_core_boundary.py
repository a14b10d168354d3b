"""The core never imports Textual: the CLI and cron jobs start fast without a terminal."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import helpdesk
from tests.conftest import ROOT


def _modules():
    for info in pkgutil.walk_packages(helpdesk.__path__, "helpdesk."):
        if ".migrations" in info.name or info.name.endswith("__main__"):
            continue
        yield info.name


def test_no_core_module_imports_textual(cli_env):
    names = list(_modules())
    assert "helpdesk.workflow.engine" in names and "helpdesk.cli.main" in names
    code = (
        "import importlib, sys\n"
        f"for name in {names!r}:\n"
        "    importlib.import_module(name)\n"
        "bad = sorted(m for m in sys.modules if m == 'textual' or m.startswith('textual.') or m == 'screens' or m.startswith('screens.'))\n"
        "print(','.join(bad))\n"
    )
    p = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=cli_env
    )
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == ""


def test_read_and_act_commands_do_not_import_textual(hd):
    hd.now = "2026-11-23T10:00:00Z"
    hd.account("camille", "indigos", "camille@example.org")
    t = hd.open("abuse", "indigos", "camille", "", "category=spam")
    for args in (
        ("ticket", "show", t["id"]),
        ("ticket", "list"),
        ("ticket", "act", t["id"], "contact", "--note", "hello", "--as", "alice"),
    ):
        p = subprocess.run(
            [sys.executable, "-X", "importtime", "-m", "helpdesk", "--db", hd.url, *map(str, args)],
            capture_output=True,
            text=True,
            env=hd.env,
            cwd=ROOT,
        )
        assert p.returncode == 0, p.stderr[-2000:]
        imported = [
            line.split("|")[-1].strip()
            for line in p.stderr.splitlines()
            if line.startswith("import time:")
        ]
        assert not [m for m in imported if m.split(".")[0] in ("textual", "screens")], args
