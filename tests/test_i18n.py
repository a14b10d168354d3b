"""French by default, English available: every interface message has its French
translation and the compiled catalog matches its source."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import ROOT


def test_every_message_is_translated_and_compiled(cli_env):
    p = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "i18n_catalog.py"), "--check"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=cli_env,
    )
    assert p.returncode == 0, p.stdout + p.stderr


def test_templates_exist_in_both_languages():
    from helpdesk.workflow import compose

    assert compose.template_names("fr") == compose.template_names("en")
