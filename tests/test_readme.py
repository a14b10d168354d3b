"""The README's command-line examples run as written, in order, on a fresh database.

Every fenced ``sh`` block preceded by ``<!-- readme: run -->`` is run, block after block,
in one shell (its ``export`` lines carry over), as a newcomer would paste them: the real
``helpdesk`` command of this checkout, a fresh home folder, no database yet. A command
whose comment says ``(exit N`` must exit N; every other must exit 0.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys


from tests.conftest import PG, ROOT, _clean_env, _pg_create, _pg_drop

MARK = "<!-- readme: run -->"


def marked_blocks(text: str) -> list[tuple[int, str]]:
    """(line number, body) of each marked sh block."""
    blocks = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        if lines[i].strip() == MARK:
            j = i + 1
            while j < len(lines) and not lines[j].strip():
                j += 1
            assert lines[j].startswith("```sh"), f"README line {j + 1}: the mark must precede ```sh"
            k = j + 1
            while not lines[k].startswith("```"):
                k += 1
            blocks.append((j + 2, "\n".join(lines[j + 1 : k])))
            i = k
        i += 1
    return blocks


def commands(block: str, first_line: int) -> list[tuple[int, str, int]]:
    """(README line, command, expected exit code) of each command of a block."""
    out = []
    pending, start = "", 0
    for n, line in enumerate(block.splitlines(), first_line):
        if not pending:
            start = n
        stripped = line.rstrip()
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        whole = pending + stripped
        pending = ""
        hash_at = _comment_start(whole)  # the comment: after a '#' outside quotes
        command = (whole if hash_at is None else whole[:hash_at]).strip()
        if not command:
            continue
        comment = "" if hash_at is None else whole[hash_at:]
        code = re.search(r"\(exit (\d+)", comment)
        out.append((start, command, int(code.group(1)) if code else 0))
    return out


def _comment_start(line: str) -> int | None:
    quote = None
    for i, ch in enumerate(line):
        if quote:
            if ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1].isspace()):
            return i
    return None


def test_the_readme_examples_run_as_written(tmp_path):
    text = (ROOT / "README.md").read_text()
    blocks = marked_blocks(text)
    assert len(blocks) >= 3, "the README marks its examples for this test"
    home = tmp_path / "home"
    home.mkdir()
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    helpdesk = bin_dir / "helpdesk"
    helpdesk.write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} -m helpdesk "$@"\n')
    helpdesk.chmod(0o755)
    env = _clean_env()
    env.update(
        HOME=str(home),
        PATH=f"{bin_dir}{os.pathsep}{env.get('PATH', '')}",
        LOGNAME="chloe",
        USER="chloe",
        COLUMNS="200",
    )
    for var in ("XDG_CACHE_HOME", "XDG_DATA_HOME", "XDG_CONFIG_HOME", "XDG_STATE_HOME"):
        env.pop(var, None)  # the README's reader has the defaults, under this home
    pg_url = _pg_create() if PG else None
    script = ["set -u", 'fail() { echo "README line $1: exit $2, expected $3: $4" >&2; exit 1; }']
    try:
        for first, block in blocks:
            for line, command, expected in commands(block, first):
                if pg_url and command.startswith("export HELPDESK_DB="):
                    command = f"export HELPDESK_DB={shlex.quote(pg_url)}"
                script.append(command)
                script.append(
                    f"rc=$?; [ $rc -eq {expected} ] || fail {line} $rc {expected} {shlex.quote(command)}"
                )
        r = subprocess.run(
            ["bash", "-c", "\n".join(script)],
            cwd=home,
            env=env,
            capture_output=True,
            text=True,
            timeout=1800,
        )
    finally:
        if pg_url:
            _pg_drop(pg_url)
    assert r.returncode == 0, r.stderr[-4000:] + "\n--- stdout:\n" + r.stdout[-3000:]
    assert "Traceback" not in r.stderr
