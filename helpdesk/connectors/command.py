"""Any other tool: a configured program, run with a JSON description of the action.

For the services that have no connector of their own (YunoHost, mailcow, Sympa,
ISPConfig, Nextcloud's ``occ``), a program of the provider's choosing does the work. The
helpdesk runs it **without a shell** (the ``program`` list is the argv, nothing is
expanded), with a clean environment, in a new process group, and writes one JSON object
on its standard input::

    {"account": "camille", "action": "lock", "provider": "indigos",
     "ticket": 42, "until": null, "reason": "deactivated"}

- ``account``: the account's name on that service (``login_field`` if set, else the login);
- ``action``: the action kind (``lock``, ``unlock``, ``force-change``, ``revoke-sessions``,
  ``suspend-sending``, ``lift-sending``, ``erase``, ``read-last-login``, ``set-password``);
- ``provider``: the policy pack's key; ``ticket``: the ticket's number (null if none);
- ``until``: the end of a sending suspension, UTC ISO-8601 (``2026-11-27T23:00:00Z``), or null;
- ``reason``: the account's status that the action follows, when there is one;
- ``password``: for ``set-password`` only. It travels on standard input and nowhere
  else: never in the argv, the environment, the database or the recorded output (a
  program that echoes it has it masked).

**Exit codes** (``sysexits.h``):

- ``0``: done;
- ``75`` (``EX_TEMPFAIL``): nothing was done, try again later: the action is retried with
  backoff (1 min ... 6 h, then failed after 8 attempts);
- ``65`` (``EX_DATAERR``), for ``set-password`` only: the service refused this password
  (too short, too simple, used before) and nothing was changed: the reset page asks the
  person for another one, and the link stays valid;
- anything else (a signal too): failed, a person must look.

A program still running after ``timeout`` seconds (default 60) is killed with its whole
process group and the action retried: every action is idempotent, so running it again is
safe. What the program prints (standard output and error together) is recorded with the
outcome: the first 4 KiB only, cleaned of control characters, as untrusted text.

For ``read-last-login`` the program prints the last login on its standard output: an
ISO-8601 date-time, epoch seconds, or a JSON object ``{"last_login": ...}``; nothing (or
``null``) when the service never saw one.

Settings (``[connectors.NAME]``, ``type = "command"``)::

    program = ["/usr/bin/sudo", "-n", "/usr/local/sbin/helpdesk-yunohost"]
    kinds = ["lock", "unlock", "erase", "set-password"]   # what the program does
    timeout = 60                     # seconds
    login_field = "mail-login"       # the account field holding its name there, if any
    env = { LC_ALL = "C.UTF-8" }     # extra environment (never a secret: use a file)

The README's "Acting on other tools" gives worked programs for ``yunohost user update``,
``occ user:disable``, mailcow's API and Sympa.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import tempfile
from datetime import datetime, timezone
from pathlib import Path

from helpdesk.base.untrusted import clean
from helpdesk.base.config import COMMAND_KINDS
from helpdesk.connectors import KINDS, Connector, PasswordRefused, Permanent, Temporary

#: Exit codes: done, and "try again later" (sysexits.h EX_TEMPFAIL); anything else fails.
DONE = 0
TEMPFAIL = 75
#: For ``set-password`` only (sysexits.h EX_DATAERR): this password is refused, choose another.
PASSWORD_REFUSED = 65
#: What the helpdesk can ask a program to do (``COMMAND_KINDS``): the queued kinds, and the
#: reset page's ``set-password`` (never queued: the password would wait in the table).
__all__ = ["COMMAND_KINDS", "Command", "parse_last_login"]
#: The most of a program's output that is read and recorded.
MAX_OUTPUT = 4096
DEFAULT_TIMEOUT = 60.0
BASE_ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
MASK = "********"


class Command(Connector):
    type = "command"

    def __init__(self, name, settings, config):
        super().__init__(name, settings, config)
        kinds = settings.get("kinds") or []
        self.kinds = frozenset(k for k in kinds if k in KINDS)
        self.can_set_password = "set-password" in kinds

    def target(self, login: str, fields: dict | None = None) -> str:
        field = self.setting("login_field")
        return str((fields or {}).get(field) or login) if field else login

    @property
    def timeout(self) -> float:
        return float(self.setting("timeout", DEFAULT_TIMEOUT))

    @property
    def argv(self) -> list[str]:
        program = self.setting("program")
        return [program] if isinstance(program, str) else [str(p) for p in program or []]

    # --- running the program ---------------------------------------------------------------

    def call(self, payload: dict, *, secret: str = "") -> tuple[int, str]:
        """Run the program with ``payload`` as JSON on stdin; return its exit code and
        (bounded, cleaned) output. ``secret``: a value masked wherever the output shows it.
        Raises :class:`Temporary` on a timeout or a program that cannot start for now."""
        argv = self.argv
        if not argv or not os.path.isabs(argv[0]):
            raise Permanent(f"{self.name}: program must be an absolute path")
        env = dict(BASE_ENV)
        env.update({str(k): str(v) for k, v in (self.setting("env") or {}).items()})
        data = (json.dumps(payload, ensure_ascii=False) + "\n").encode("utf-8")
        with tempfile.TemporaryFile() as out:
            try:
                proc = subprocess.Popen(
                    argv,
                    stdin=subprocess.PIPE,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    env=env,
                    cwd="/",
                    close_fds=True,
                    start_new_session=True,  # its own process group: a timeout kills it all
                )
            except FileNotFoundError:
                raise Permanent(f"{self.name}: {argv[0]} not found") from None
            except PermissionError:
                raise Permanent(f"{self.name}: {argv[0]} is not executable") from None
            except OSError as exc:
                raise Temporary(f"{self.name}: cannot start {argv[0]}: {exc}") from None
            try:
                try:
                    proc.stdin.write(data)
                except BrokenPipeError:
                    pass  # it did not read its input: its exit code says what it did
                finally:
                    try:
                        proc.stdin.close()
                    except BrokenPipeError:
                        pass
                code = proc.wait(timeout=self.timeout)
            except subprocess.TimeoutExpired:
                self._kill(proc)
                raise Temporary(
                    f"{self.name}: {Path(argv[-1]).name} gave no answer within "
                    f"{self.timeout:g} s: stopped; {_shown(out, secret)}"
                ) from None
            finally:
                if proc.poll() is None:  # an interruption of our own: leave nothing behind
                    self._kill(proc)
            return code, _shown(out, secret)

    @staticmethod
    def _kill(proc: subprocess.Popen) -> None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        proc.wait()

    def _payload(self, kind: str, target: str, params: dict) -> dict:
        payload = {
            "account": target,
            "action": kind,
            "provider": params.get("policy"),
            "ticket": params.get("ticket"),
            "until": params.get("until"),
        }
        if params.get("reason"):
            payload["reason"] = params["reason"]
        if params.get("all"):
            payload["all"] = True
        return payload

    def _outcome(self, kind: str, target: str, code: int, output: str) -> str:
        said = f"{kind} {target}: exit {code}" + (f": {output}" if output else "")
        if code == DONE:
            return f"{kind} {target}: done" + (f": {output}" if output else "")
        if code == TEMPFAIL:
            raise Temporary(f"{self.name}: {said}")
        raise Permanent(f"{self.name}: {said}")

    def run(self, kind: str, target: str, params: dict) -> str:
        if kind not in self.kinds:
            raise Permanent(f"{self.name} ({self.type}) is not configured to {kind}")
        if kind == "read-last-login":
            return super().run(kind, target, params)
        code, output = self.call(self._payload(kind, target, params))
        return self._outcome(kind, target, code, output)

    # --- the reset page, and last logins ---------------------------------------------------

    def set_password(self, target: str, password: str, params: dict | None = None) -> str:
        """Set ``target``'s password through the program (``action = "set-password"``).
        The password goes on its standard input only; its output is recorded with the
        password masked. Raises like :meth:`run`."""
        if not self.can_set_password:
            raise Permanent(f"{self.name} ({self.type}) is not configured to set-password")
        payload = self._payload("set-password", target, params or {})
        payload["password"] = password
        code, output = self.call(payload, secret=password)
        if code == PASSWORD_REFUSED:
            raise PasswordRefused(f"{self.name}: set-password {target}: refused: {output}")
        return self._outcome("set-password", target, code, output)

    def last_login(self, target: str) -> datetime | None:
        if "read-last-login" not in self.kinds:
            return None
        code, output = self.call(self._payload("read-last-login", target, {}))
        self._outcome("read-last-login", target, code, output)
        return parse_last_login(output)

    def check(self) -> str:
        argv = self.argv
        if not argv or not os.path.isabs(argv[0]):
            raise Permanent(f"{self.name}: program must be an absolute path")
        path = Path(argv[0])
        if not path.is_file():
            raise Permanent(f"{self.name}: {path} not found")
        if not os.access(path, os.X_OK):
            raise Permanent(f"{self.name}: {path} is not executable")
        if path.stat().st_mode & 0o002:
            raise Permanent(f"{self.name}: {path} is writable by anyone: chmod o-w {path}")
        kinds = sorted(self.kinds) + (["set-password"] if self.can_set_password else [])
        return f"{' '.join(argv)} ready for {', '.join(kinds) or 'nothing'}"


def _shown(out, secret: str) -> str:
    """The first :data:`MAX_OUTPUT` bytes of what the program printed, as safe text."""
    out.flush()
    size = out.seek(0, os.SEEK_END)
    out.seek(0)
    raw = out.read(MAX_OUTPUT)
    text = raw.decode("utf-8", errors="replace")
    if secret:
        text = text.replace(secret, MASK)
    text = clean(text).strip()
    if size > MAX_OUTPUT:
        text += f" … ({size} bytes in all)"
    return text


def parse_last_login(output: str) -> datetime | None:
    """``2026-03-01T10:00:00Z``, epoch seconds, ``{"last_login": ...}``, or nothing."""
    text = (output or "").strip()
    if not text or text == "null":
        return None
    if text.startswith("{"):
        try:
            value = json.loads(text).get("last_login")
        except (ValueError, AttributeError):
            raise Permanent(f"unreadable last login: {text[:100]}") from None
        if value in (None, ""):
            return None
        text = str(value)
    first = text.split()[0]
    try:
        if first.isdigit():
            return datetime.fromtimestamp(int(first), timezone.utc)
        when = datetime.fromisoformat(first.replace("Z", "+00:00"))
    except (ValueError, OverflowError, OSError):
        raise Permanent(f"unreadable last login: {text[:100]}") from None
    return when.astimezone(timezone.utc) if when.tzinfo else when.replace(tzinfo=timezone.utc)


CONNECTOR = Command
