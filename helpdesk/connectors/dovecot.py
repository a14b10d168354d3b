"""Dovecot: close an account's open sessions, and read its last login.

A lock in the directory does not close an IMAP session that is already open: it lives
until ``doveadm kick USER``. ``revoke-sessions`` runs it, on this host (``doveadm``, no
shell, a timeout) or through the doveadm HTTP API (``api_url``, with the API key from
``api_key_file``). Kicking an account with no session changes nothing: idempotent.

Last login: the ``last_login`` plugin writes ``last-login/USER`` = epoch seconds into a
dict; with a file dict (``last_login_dict = file:/var/lib/dovecot/last-login.dict``), give
its path as ``last_login_file`` and it is read here.

Settings (``[connectors.NAME]``, ``type = "dovecot"``)::

    doveadm = "/usr/bin/doveadm"           # default; or
    api_url = "http://127.0.0.1:8080/doveadm/v1"
    api_key_file = "/etc/helpdesk/doveadm.key"   # chmod 600
    config = "/etc/dovecot/dovecot.conf"   # doveadm -c, for a non-default instance
    last_login_file = "/var/lib/dovecot/last-login.dict"
    login_field = "mail-login"             # the account field holding the mail login, if any
    timeout = 20
"""

from __future__ import annotations

import base64
import json
import subprocess
from datetime import datetime, timezone
from pathlib import Path

from helpdesk.connectors import Connector, Permanent, Temporary, Uncertain


class Dovecot(Connector):
    type = "dovecot"
    kinds = frozenset({"revoke-sessions"})

    def __init__(self, name, settings, config):
        super().__init__(name, settings, config)
        if self.setting("last_login_file"):  # the last_login plugin's dict: a source to read
            self.kinds = self.kinds | {"read-last-login"}

    def target(self, login: str, fields: dict | None = None) -> str:
        return str((fields or {}).get(self.setting("login_field", "mail-login")) or login)

    @property
    def timeout(self) -> float:
        return float(self.setting("timeout", 20))

    # --- doveadm, here or over HTTP -------------------------------------------------------------

    def _doveadm(self, *args: str) -> str:
        if self.setting("api_url"):
            return self._http(args)
        cmd = [str(self.setting("doveadm", "/usr/bin/doveadm"))]
        if self.setting("config"):
            cmd += ["-c", str(self.setting("config"))]
        cmd += list(args)
        try:
            p = subprocess.run(
                cmd, capture_output=True, text=True, timeout=self.timeout, stdin=subprocess.DEVNULL
            )
        except FileNotFoundError:
            raise Permanent(f"{self.name}: {cmd[0]} not found") from None
        except subprocess.TimeoutExpired:
            raise Temporary(
                f"{self.name}: doveadm {args[0]} did not answer within {self.timeout:g} s"
            ) from None
        out = (p.stdout + p.stderr).strip()
        if p.returncode in (0, 68):  # 68 (EX_NOUSER): nobody to kick, which is what we want
            return out
        if p.returncode == 75:  # EX_TEMPFAIL: e.g. the server is not running
            raise Temporary(f"{self.name}: doveadm {args[0]}: {out or 'temporary failure'}")
        raise Permanent(f"{self.name}: doveadm {args[0]} exit {p.returncode}: {out[:300]}")

    def _http(self, args: tuple[str, ...]) -> str:
        import urllib.error
        import urllib.request

        command, *rest = args
        params: dict = {}
        if command == "kick":
            params = {"mask": rest}
        elif command == "who":
            params = {"mask": rest} if rest else {}
        body = json.dumps([[command, params, "helpdesk"]]).encode()
        key = self.secret("api_key")
        req = urllib.request.Request(
            str(self.setting("api_url")),
            data=body,
            method="POST",
            headers={"Content-Type": "application/json", "Accept": "application/json"},
        )
        if key:
            req.add_header(
                "Authorization", "X-Dovecot-API " + base64.b64encode(key.encode()).decode()
            )
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                answer = json.loads(resp.read().decode("utf-8"))
        except urllib.error.HTTPError as exc:
            raise (Temporary if exc.code >= 500 else Permanent)(
                f"{self.name}: doveadm API: HTTP {exc.code}"
            ) from None
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            raise Temporary(f"{self.name}: doveadm API: {exc}") from None
        except ValueError:
            raise Uncertain(
                f"{self.name}: doveadm API answered something that is not JSON"
            ) from None
        kind, data, _tag = answer[0]
        if kind == "error":
            code = (data or {}).get("exitCode")
            if code == 68:
                return "nobody to kick"
            raise (Temporary if code == 75 else Permanent)(
                f"{self.name}: doveadm API {command}: exit {code}"
            )
        return json.dumps(data)[:300]

    # --- actions ---------------------------------------------------------------------------------

    def _do_revoke_sessions(self, login: str, params: dict) -> str:
        out = self._doveadm("kick", login)
        return f"doveadm kick {login}: {out or 'done'}"

    def sessions(self, login: str) -> str:
        return self._doveadm("who", login)

    def check(self) -> str:
        self._doveadm("who")
        where = self.setting("api_url") or self.setting("doveadm", "/usr/bin/doveadm")
        extra = ""
        path = self.setting("last_login_file")
        if path:
            if not Path(str(path)).exists():
                raise Permanent(f"{self.name}: last_login_file {path} does not exist")
            extra = f", {len(self.last_logins())} last login(s) in {path}"
        return f"doveadm answers ({where}){extra}"

    # --- last login ---------------------------------------------------------------------------------

    def last_logins(self) -> dict[str, datetime]:
        """``key`` / ``value`` line pairs of Dovecot's file dict; keys end in
        ``last-login/USER`` (with a ``shared/`` or ``priv/`` prefix)."""
        path = self.setting("last_login_file")
        if not path:
            return {}
        try:
            lines = Path(str(path)).read_text(encoding="utf-8", errors="replace").splitlines()
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise Temporary(f"{self.name}: cannot read {path}: {exc}") from None
        out: dict[str, datetime] = {}
        for key, value in zip(lines[0::2], lines[1::2]):
            marker = key.rfind("last-login/")
            if marker < 0 or not value.strip().isdigit():
                continue
            out[key[marker + len("last-login/") :]] = datetime.fromtimestamp(
                int(value.strip()), timezone.utc
            )
        return out

    def last_login(self, login: str) -> datetime | None:
        return self.last_logins().get(login)


CONNECTOR = Dovecot
