"""Shared fixtures.

Tests run against a real SQLite file by default. With ``HELPDESK_TEST_PG`` set to a
PostgreSQL server URL (e.g. ``postgresql://postgres@127.0.0.1:5432/postgres``), every
database a test asks for is a fresh PostgreSQL database on that server instead.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PG = os.environ.get("HELPDESK_TEST_PG", "")

# --- nothing outside the temporary folders ---------------------------------------------------
# The helpdesk keeps files in the user's folders (platformdirs: the database and the sent
# Maildir in the data folder, demo and training builds in the cache, the keymap and
# helpdesk.toml in the config folder). The suite points all of them into a temporary folder
# of its own, for itself and every process it starts, and checks at the end that the real
# ones were not touched.
_XDG = ("XDG_CACHE_HOME", "XDG_DATA_HOME", "XDG_CONFIG_HOME", "XDG_STATE_HOME")
_XDG_DEFAULTS = (".cache", ".local/share", ".config", ".local/state")
_MARK = "HELPDESK_SUITE_HOME"  # set by the first process (xdist's controller); workers inherit it


def _real_helpdesk_folders() -> list[Path]:
    home = Path.home()
    return [
        Path(os.environ.get(var) or home / default) / "helpdesk"
        for var, default in zip(_XDG, _XDG_DEFAULTS)
    ]


def _snapshot(folders: list[Path]) -> dict[str, tuple[int, int]]:
    seen: dict[str, tuple[int, int]] = {}
    for folder in folders:
        for dirpath, dirnames, filenames in os.walk(folder):
            for name in dirnames + filenames:
                path = os.path.join(dirpath, name)
                try:
                    st = os.lstat(path)
                except OSError:
                    continue
                seen[path] = (st.st_size, st.st_mtime_ns)
    return seen


def pytest_configure(config):
    if os.environ.get(_MARK):  # a worker: the controller chose the folder
        return
    import tempfile

    config._helpdesk_real = _real_helpdesk_folders()
    config._helpdesk_before = _snapshot(config._helpdesk_real)
    base = Path(tempfile.mkdtemp(prefix="helpdesk-suite-"))
    os.environ[_MARK] = str(base)
    for var, default in zip(_XDG, _XDG_DEFAULTS):
        os.environ[var] = str(base / default)
    config._helpdesk_base = base


def pytest_sessionfinish(session, exitstatus):
    config = session.config
    if not hasattr(config, "_helpdesk_base"):
        return
    shutil.rmtree(config._helpdesk_base, ignore_errors=True)
    after = _snapshot(config._helpdesk_real)
    changed = sorted(p for p in after if config._helpdesk_before.get(p) != after[p])
    if changed:
        reporter = config.pluginmanager.get_plugin("terminalreporter")
        lines = "\n".join(f"  {p}" for p in changed[:20])
        message = f"\nthe suite wrote outside its temporary folders:\n{lines}\n"
        # On a machine shared with other work (another checkout's tests, a demo), those
        # folders may change under the run: said, and a failure where the run is alone
        # (.ci/run sets HELPDESK_TEST_STRICT_HOME=1).
        strict = os.environ.get("HELPDESK_TEST_STRICT_HOME") == "1"
        if reporter is not None:
            reporter.write_line(message, red=strict, yellow=not strict)
        else:
            sys.stderr.write(message)
        if strict:
            session.exitstatus = 1


#: The HELPDESK_* variables the suite was started with (the developer's, CI's, the suite's
#: own markers): a command run in-process sees only those the test itself sets.
_OUTSIDE = frozenset(k for k in os.environ if k.startswith("HELPDESK_"))


def _clean_env() -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HELPDESK_")}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env["NO_COLOR"] = "1"
    env["COLUMNS"] = "200"
    return env


def _pg_create(template: str | None = None) -> str:
    import psycopg
    from sqlalchemy.engine import make_url

    name = "hd_" + uuid.uuid4().hex[:12]
    base = make_url(PG)
    with psycopg.connect(
        base.set(drivername="postgresql").render_as_string(hide_password=False), autocommit=True
    ) as conn:
        conn.execute(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
    return base.set(database=name).render_as_string(hide_password=False)


def _pg_drop(url: str) -> None:
    import psycopg
    from sqlalchemy.engine import make_url

    from helpdesk.storage import db

    db._engines.pop(url, None)
    name = make_url(url).database
    base = make_url(PG)
    with psycopg.connect(
        base.set(drivername="postgresql").render_as_string(hide_password=False), autocommit=True
    ) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def template_db(tmp_path_factory):
    """A database initialised once (schema, all packs, four volunteers: alice volunteer,
    bob oncall, chloe techadmin, tom trainer); tests get copies of it."""
    from helpdesk.policy import install

    if PG:
        url = _pg_create()
        install.init(url)
        _volunteers(url)
        from helpdesk.storage import db

        db.get_engine(url).dispose()
        db._engines.pop(url, None)
        yield url
        _pg_drop(url)
        return
    path = tmp_path_factory.mktemp("template") / "template.db"
    url = f"sqlite:///{path}"
    install.init(url)
    _volunteers(url)
    from helpdesk.storage import db

    db.get_engine(url).dispose()
    db._engines.pop(url, None)
    yield str(path)


def _volunteers(url: str) -> None:
    from helpdesk.storage import db
    from helpdesk.service import api

    with db.write_session(url) as s:
        for login, role in (
            ("alice", "volunteer"),
            ("bob", "oncall"),
            ("chloe", "techadmin"),
            ("tom", "trainer"),
        ):
            api.add_volunteer(s, login, role)


def fresh_copy(template: str, tmp_path: Path):
    """Yield a new database copied from ``template`` (an SQLite path or URL, or a PostgreSQL
    URL), dropped afterwards."""
    if PG:
        from sqlalchemy.engine import make_url

        url = _pg_create(make_url(template).database)
        yield url
        _pg_drop(url)
        return
    path = tmp_path / "helpdesk.db"
    shutil.copyfile(template.removeprefix("sqlite:///"), path)
    yield f"sqlite:///{path}"


@pytest.fixture
def db_url(template_db, tmp_path):
    """A fresh, initialised database for this test."""
    yield from fresh_copy(template_db, tmp_path)


@pytest.fixture
def empty_db_url(tmp_path):
    """A database that does not exist yet (for init and migration tests)."""
    if PG:
        url = _pg_create()
        yield url
        _pg_drop(url)
        return
    yield f"sqlite:///{tmp_path / 'new.db'}"


@dataclass
class Result:
    code: int
    out: str
    err: str

    @property
    def json(self):
        return json.loads(self.out)


def in_process(argv: list[str], env: dict, stdin: str | None = None) -> Result:
    """``helpdesk ARGV`` run in this process through the program's entry function
    (``helpdesk.cli.entry.main``), as a process of its own would run it: ``env`` is the
    whole environment, standard input holds ``stdin`` (or nothing), standard output and
    error are captured (bytes, as a pipe has them), and what a run leaves in the process is
    put back after it: environment, umask, clock, language, the database engines."""
    from helpdesk.base import clock, i18n
    from helpdesk.cli import entry
    from helpdesk.storage import db

    saved_env = dict(os.environ)
    saved_streams = sys.stdin, sys.stdout, sys.stderr
    umask = os.umask(0o022)
    os.umask(umask)
    out, err = io.BytesIO(), io.BytesIO()
    streams = (
        io.TextIOWrapper(io.BytesIO((stdin or "").encode()), encoding="utf-8"),
        io.TextIOWrapper(out, encoding="utf-8", write_through=True),
        # as a real process's stderr: bytes that are not UTF-8 are escaped, never an error
        io.TextIOWrapper(err, encoding="utf-8", errors="backslashreplace", write_through=True),
    )
    sys.stdin, sys.stdout, sys.stderr = streams
    os.environ.clear()
    os.environ.update(env)
    try:
        try:
            code = entry.main([str(a) for a in argv])
        except SystemExit as exc:  # argparse: bad usage (2) or --help (0)
            code = exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 1
            if isinstance(exc.code, str):
                sys.stderr.write(exc.code + "\n")
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        sys.stdin, sys.stdout, sys.stderr = saved_streams
        os.environ.clear()
        os.environ.update(saved_env)
        os.umask(umask)
        clock.set_now(None)
        i18n.set_lang(None)
        for engine in list(db._engines.values()):  # a process of its own keeps none
            engine.dispose()
        db._engines.clear()
    result = Result(
        code,
        out.getvalue().decode("utf-8", "replace"),
        err.getvalue().decode("utf-8", "replace"),
    )
    for stream in streams:  # closing them would close the buffers
        stream.detach()
    return result


class Helpdesk:
    """The real command line on one database and one moved clock: in this process through
    its entry function (``in_process``), or, with ``process=True`` (the ``hd_process``
    fixture), in a real subprocess, for the tests about the process itself. Commands run
    from other threads, to race each other, are real processes too."""

    def __init__(self, url: str, tmp_path: Path, process: bool = False):
        self.url = url
        self.tmp_path = tmp_path
        self.now: str | None = None
        self.env = _clean_env()
        self.process = process

    #: Commands that change accounts, volunteers or settings need an identity: without
    #: ``as_`` the tests give them the template's techadmin (``as_=""``: no --as at all).
    ADMIN = {
        ("account", "add"),
        ("account", "import"),
        ("account", "contact"),
        ("volunteer", "add"),
        ("volunteer", "deactivate"),
        ("volunteer", "remove-key"),
        ("policy", "set"),
        ("restore",),
    }

    def argv(self, args, as_: str | None, now: str | None, json_out: bool) -> list[str]:
        """The command line after the program's name: database, volunteer, clock, JSON."""
        argv = ["--db", self.url]
        if (
            as_ is None
            and (tuple(args[:2]) in self.ADMIN or tuple(args[:1]) in self.ADMIN)
            and "HELPDESK_USER" not in self.env
        ):
            as_ = "chloe"
        if as_:
            argv += ["--as", as_]
        when = now or self.now
        if when:
            argv += ["--now", when]
        argv += [str(a) for a in args]
        if json_out:
            argv.append("--json")
        return argv

    def run(
        self,
        *args,
        as_: str | None = None,
        now: str | None = None,
        json_out: bool = True,
        stdin: str | None = None,
    ) -> Result:
        argv = self.argv(args, as_, now, json_out)
        if not self.process and threading.current_thread() is threading.main_thread():
            # The test's own HELPDESK_* settings (monkeypatch.setenv) reach the command, as
            # they reach anything else the test runs in its process; the outside's do not.
            own = {
                k: v
                for k, v in os.environ.items()
                if k.startswith("HELPDESK_")
                and k not in _OUTSIDE
                and k != _MARK
                and k not in self.env
            }
            return in_process(argv, {**self.env, **own}, stdin)  # raced from threads: processes
        cmd = [sys.executable, "-m", "helpdesk", *argv]
        p = subprocess.run(
            cmd, capture_output=True, text=True, env=self.env, input=stdin, timeout=120
        )
        assert "Traceback" not in p.stderr, p.stderr
        return Result(p.returncode, p.stdout, p.stderr)

    def ok(self, *args, **kw):
        r = self.run(*args, **kw)
        assert r.code == 0, f"{args}: exit {r.code}\n{r.out}\n{r.err}"
        return r.json if kw.get("json_out", True) else r

    def refused(self, *args, rule: str | None = None, cite: str | None = None, **kw) -> dict:
        kw.setdefault("as_", "alice")
        r = self.run(*args, **kw)
        assert r.code == 1, f"{args}: expected a refusal, got exit {r.code}\n{r.out}\n{r.err}"
        data = r.json
        if rule:
            assert data["rule"] == rule, data
        if cite:
            assert cite in data["citation"], data
        return data

    def bad(self, *args, **kw) -> Result:
        kw.setdefault("as_", "alice")
        r = self.run(*args, **kw)
        assert r.code == 2, f"{args}: expected bad input (2), got {r.code}\n{r.out}\n{r.err}"
        assert r.err.strip(), "a bad input must say what is wrong"
        return r

    # shortcuts for the scenarios
    def account(self, login: str, policy: str, email: str, *extra) -> dict:
        return self.ok("account", "add", login, "--policy", policy, "--email", email, *extra)

    def open(
        self,
        queue: str,
        policy: str,
        account: str | None,
        requester: str = "",
        *fields,
        as_="alice",
        **kw,
    ) -> dict:
        args = ["ticket", "open", queue, "--policy", policy]
        if account:
            args += ["--account", account]
        if requester:
            args += ["--requester", requester]
        for f in fields:
            args += ["--field", f]
        return self.ok(*args, as_=as_, **kw)

    def act(self, ticket: int, action: str, *extra, as_="alice", **kw) -> dict:
        return self.ok("ticket", "act", ticket, action, *extra, as_=as_, **kw)

    def show(self, ticket: int, **kw) -> dict:
        return self.ok("ticket", "show", ticket, **kw)

    def action(self, ticket: int, key: str, as_: str = "alice") -> dict:
        view = self.show(ticket, as_=as_)
        return next(a for a in view["actions"] if a["key"] == key)


@pytest.fixture
def hd(db_url, tmp_path) -> Helpdesk:
    return Helpdesk(db_url, tmp_path)


@pytest.fixture
def hd_process(db_url, tmp_path) -> Helpdesk:
    """``hd`` in real subprocesses: for the tests about the process itself."""
    return Helpdesk(db_url, tmp_path, process=True)


InProcessHelpdesk = Helpdesk  # the name some tests knew it by


@pytest.fixture
def hdi(hd) -> Helpdesk:
    """``hd`` (in-process too, as every scenario test now is)."""
    return hd


def pytest_sessionstart(session):
    """The tests start the real CLI in hundreds of subprocesses. Where the environment says
    not to write byte code (PYTHONDONTWRITEBYTECODE), each of them would compile the
    project's sources again: compile them once here, as an installed package has them."""
    if hasattr(session.config, "workerinput"):  # an xdist worker: the controller did it
        return
    import compileall

    for folder in ("helpdesk", "screens"):
        compileall.compile_dir(ROOT / folder, quiet=1)


@pytest.fixture
def cli_env():
    return _clean_env()
