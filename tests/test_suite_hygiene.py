"""The suite writes nothing outside its temporary folders: the user folders the helpdesk
uses (data, cache, config, state) point into the suite's own temporary folder, for this
process and the processes it starts; ``conftest.pytest_sessionfinish`` fails the run if the
real ones changed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import _MARK, _clean_env


def test_user_folders_point_into_the_suite_s_temporary_folder():
    base = Path(os.environ[_MARK])
    assert base.name.startswith("helpdesk-suite-")
    probe = (
        "from platformdirs import user_cache_dir, user_config_dir, user_data_dir\n"
        "from helpdesk.storage import db\n"
        "print(user_cache_dir('helpdesk', appauthor=False))\n"
        "print(user_config_dir('helpdesk', appauthor=False))\n"
        "print(user_data_dir('helpdesk', appauthor=False))\n"
        "print(db.default_url())\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], env=_clean_env(), capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert len(lines) == 4
    for line in lines:
        assert str(base) in line, line
    assert Path.home().as_posix() + "/.cache" not in out.stdout
