"""The attacker's harness: the real CLI in-process, through its entry function
(``helpdesk.cli.entry.main``, by ``tests.conftest.in_process``), on a real database copied
from the template (alice volunteer, bob oncall, chloe techadmin, tom trainer). In-process
keeps a few hundred generated command lines fast; what a run changes in the process (clock,
language, umask, cached engines) is put back after it."""

from __future__ import annotations

import sys

import pytest

from tests.conftest import Result, _clean_env, in_process

Run = Result  # exit code, stdout, stderr (and .json), as the subprocess harness has it


def run_cli(argv: list[str], env: dict | None = None, stdin: str = "") -> Run:
    """``helpdesk ARGV`` in this process, through the suite's one in-process runner
    (``tests.conftest.in_process``), with the suite's clean environment plus ``env``.
    A traceback fails the test: it is never an answer."""
    return in_process([str(a) for a in argv], {**_clean_env(), **(env or {})}, stdin)


class Attacker:
    """Command lines on one database; ``as_`` is the login given to --as (None: no --as)."""

    def __init__(self, url: str):
        self.url = url

    def run(
        self, *args, as_: str | None = None, env: dict | None = None, json_out: bool = True
    ) -> Run:
        argv = ["--db", self.url]
        if as_ is not None:
            argv += ["--as", as_]
        argv += [str(a) for a in args]
        if json_out:
            argv.append("--json")
        return run_cli(argv, env)

    def ok(self, *args, **kw):
        r = self.run(*args, **kw)
        assert r.code == 0, f"{args}: exit {r.code}\n{r.out}\n{r.err}"
        return r.json if kw.get("json_out", True) else r

    def refused(self, *args, rule: str | None = None, **kw) -> dict:
        r = self.run(*args, **kw)
        assert r.code == 1, f"{args}: expected a refusal (1), got {r.code}\n{r.out}\n{r.err}"
        if rule:
            assert r.json["rule"] == rule, r.json
        return r.json

    def bad(self, *args, **kw) -> Run:
        r = self.run(*args, **kw)
        assert r.code == 2, f"{args}: expected bad input (2), got {r.code}\n{r.out}\n{r.err}"
        assert r.err.strip() and "Traceback" not in r.err, r.err
        return r

    def events(self, action: str | None = None) -> list:
        from sqlmodel import select

        from helpdesk.storage import db
        from helpdesk.storage.models import Event

        with db.read_session(self.url) as s:
            q = select(Event).order_by(Event.id)
            if action:
                q = q.where(Event.action == action)
            return list(s.exec(q))


@pytest.fixture
def attacker(db_url):
    yield Attacker(db_url)
    from helpdesk.storage import db

    engine = db._engines.pop(db_url, None)
    if engine is not None:
        engine.dispose()


def pytest_configure(config):
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 3000))
