"""`pip install .` (not only an editable install) gives a `helpdesk` command with data/
shipped inside the package."""

from __future__ import annotations

import subprocess
import sys
import zipfile

from tests.conftest import ROOT


def test_wheel_ships_the_data_and_the_command_works_outside_the_checkout(tmp_path, cli_env):
    dist = tmp_path / "dist"
    p = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist), str(ROOT)],
        capture_output=True,
        text=True,
        env=cli_env,
    )
    assert p.returncode == 0, p.stderr
    wheel = next(dist.glob("helpdesk-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    for needed in (
        "helpdesk/data/policies/wigii.toml",
        "helpdesk/data/workflows/closure.toml",
        "helpdesk/data/templates/fr/reset-link.txt",
        "helpdesk/data/translations/fr/LC_MESSAGES/helpdesk.mo",
        "helpdesk/storage/migrations/versions/0001_initial_schema.py",
        "screens/app.py",
    ):
        assert needed in names, needed

    # A fresh virtual environment that gets helpdesk from the wheel and borrows the
    # dependencies already installed for the tests (a .pth file, after its own site-packages).
    # Its pip is the tests' own, run by the new environment's interpreter (pip --python):
    # installing a copy of pip into it (ensurepip) took a third of the test.
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    site = next((venv / "lib").glob("python3*/site-packages"))
    deps = [p for p in sys.path if p.endswith("site-packages")]
    (site / "zz_test_deps.pth").write_text("\n".join(deps) + "\n")
    env = {k: v for k, v in cli_env.items() if k != "PYTHONPATH"}
    p = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python")]
        + ["install", "-q", "--no-deps", str(wheel)],
        capture_output=True,
        text=True,
        env=env,
    )
    assert p.returncode == 0, p.stderr
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    db = elsewhere / "hd.db"
    p = subprocess.run(
        [str(venv / "bin" / "helpdesk"), "--db", str(db), "init", "--json"],
        capture_output=True,
        text=True,
        env=env,
        cwd=elsewhere,
    )
    assert p.returncode == 0, p.stderr
    p = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import helpdesk; print(helpdesk.__file__)"],
        capture_output=True,
        text=True,
        env=env,
        cwd=elsewhere,
    )
    assert str(venv) in p.stdout, p.stdout
    p = subprocess.run(
        [str(venv / "bin" / "helpdesk"), "--db", str(db), "policy", "show", "le-pic", "--json"],
        capture_output=True,
        text=True,
        env=env,
        cwd=elsewhere,
    )
    assert p.returncode == 0 and '"Le PIC' in p.stdout
