"""Nextcloud, through its OCS provisioning API (the standard library's urllib: no extra).

- ``lock``: ``PUT /ocs/v2.php/cloud/users/{id}/disable``: the user can no longer log in,
  and its sessions and app passwords stop working while it is disabled;
- ``unlock``: ``PUT .../enable`` (reinstatement);
- ``erase``: ``DELETE /ocs/v2.php/cloud/users/{id}`` (a user already gone: nothing to do);
- ``read-last-login``, and ``account sync``: ``lastLogin`` (milliseconds; 0 = never) of
  ``GET /ocs/v2.php/cloud/users/{id}`` and ``GET /ocs/v2.php/cloud/users/details``.

Every call sends ``OCS-APIRequest: true``, asks for JSON and authenticates with basic auth:
the ``user`` and an **app password** read from ``password_file`` (chmod 600; Settings →
Security → "Create new app password"). Every write is read back with ``GET``: a write the
server accepted that does not show is ``uncertain``; disabling twice is disabling once.

App passwords themselves are removed only by ``occ user:auth-tokens:delete``, on the
Nextcloud host: give that to a ``command`` connector (the README's "Acting on other
tools" has the program).

Outcomes: a refusal of the credentials or of the right (401, 403), or no such user for
a disable: **failed**, a person looks. Down, in maintenance (503), busy (429), a timeout:
**retried**. An answer that is not the API's JSON after a write: **uncertain**.

Settings (``[connectors.NAME]``, ``type = "nextcloud"``)::

    url = "https://cloud.example.org"      # where Nextcloud answers (its webroot)
    user = "helpdesk"                       # an admin (or a group admin of the users)
    password_file = "/etc/helpdesk/nextcloud.secret"   # an app password, chmod 600
    login_field = "nextcloud-id"            # the account field holding its Nextcloud id,
                                            # if not the login (LDAP users: the UUID)
    cafile = "/etc/ssl/cloud-ca.pem"        # an extra CA to trust
    timeout = 20
"""

from __future__ import annotations

import base64
import json
import ssl
import urllib.error
import urllib.parse
import urllib.request
from datetime import datetime, timezone

from helpdesk.connectors import Connector, Permanent, Temporary, Uncertain

API = "/ocs/v2.php/cloud"
PAGE = 200
_LOOPBACK = ("127.0.0.1", "::1", "localhost")
_BUSY = {429, 502, 503, 504}


class Answer:
    """One answer of the API: its HTTP status, and the OCS ``meta`` and ``data``."""

    def __init__(self, status: int, body: dict | None):
        self.status = status
        ocs = (body or {}).get("ocs") if isinstance(body, dict) else None
        self.ok_json = isinstance(ocs, dict)
        self.meta = (ocs or {}).get("meta") or {}
        self.data = (ocs or {}).get("data")

    @property
    def code(self) -> int | None:
        return self.meta.get("statuscode")

    @property
    def message(self) -> str:
        return str(self.meta.get("message") or "")[:200]


def from_millis(value) -> datetime | None:
    """``lastLogin`` in milliseconds since the epoch; 0 (never) and junk are None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        return None
    try:
        return datetime.fromtimestamp(value / 1000, timezone.utc)
    except (OverflowError, OSError, ValueError):
        return None


class Nextcloud(Connector):
    type = "nextcloud"
    kinds = frozenset({"lock", "unlock", "erase", "read-last-login"})

    def target(self, login: str, fields: dict | None = None) -> str:
        field = self.setting("login_field")
        return str((fields or {}).get(field) or login) if field else login

    @property
    def base(self) -> str:
        return str(self.setting("url", "")).rstrip("/")

    # --- one call ------------------------------------------------------------------------

    def _context(self) -> ssl.SSLContext | None:
        if not self.base.startswith("https://"):
            return None
        return ssl.create_default_context(cafile=self.setting("cafile") or None)

    def call(self, method: str, path: str, query: dict | None = None) -> Answer:
        url = self.base + API + path
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https"):
            raise Permanent(f"{self.name}: url must be http(s)://...")
        if parts.scheme == "http" and parts.hostname not in _LOOPBACK:
            raise Permanent(
                f"{self.name}: refusing to send the app password unencrypted to {parts.hostname}: use https://"
            )
        if query:
            url += "?" + urllib.parse.urlencode(query)
        user = str(self.setting("user", ""))
        token = base64.b64encode(f"{user}:{self.secret('password')}".encode()).decode()
        req = urllib.request.Request(
            url,
            method=method,
            headers={
                "OCS-APIRequest": "true",
                "Accept": "application/json",
                "Authorization": "Basic " + token,
            },
        )
        timeout = float(self.setting("timeout", 20))
        try:
            with urllib.request.urlopen(req, timeout=timeout, context=self._context()) as resp:
                status, raw = resp.status, resp.read(8 * 1024 * 1024)
        except urllib.error.HTTPError as exc:
            status, raw = exc.code, exc.read(64 * 1024)
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            raise Temporary(
                f"{self.name}: {method} {path}: {getattr(exc, 'reason', exc)}"
            ) from None
        try:
            body = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            body = None
        return Answer(status, body)

    def _refused(self, what: str, a: Answer) -> Exception:
        said = f"{self.name}: {what}: HTTP {a.status}"
        if a.code is not None:
            said += f", OCS {a.code}"
        if a.message:
            said += f": {a.message}"
        if a.status in _BUSY or a.status >= 500:
            return Temporary(said + " (Nextcloud down or in maintenance: retried)")
        if a.status in (401, 403) or a.code == 997:
            return Permanent(said + " (the credentials or their rights were refused)")
        return Permanent(said)

    # --- reading -----------------------------------------------------------------------------

    def user(self, uid: str) -> dict | None:
        """The user's details, or None if Nextcloud has no such user."""
        a = self.call("GET", "/users/" + urllib.parse.quote(uid, safe=""))
        if a.status == 404 or a.code in (404, 998):
            return None
        if a.status != 200 or not a.ok_json or not isinstance(a.data, dict):
            if a.status == 200:
                raise Temporary(f"{self.name}: GET user {uid}: not the API's JSON")
            raise self._refused(f"GET user {uid}", a)
        return a.data

    def last_login(self, target: str) -> datetime | None:
        details = self.user(target)
        return from_millis(details.get("lastLogin")) if details else None

    def last_logins(self) -> dict[str, datetime]:
        """Every user's last login, a page of :data:`PAGE` users at a time."""
        out: dict[str, datetime] = {}
        offset = 0
        while True:
            a = self.call("GET", "/users/details", {"limit": PAGE, "offset": offset})
            if a.status != 200 or not a.ok_json or not isinstance(a.data, dict):
                raise self._refused("GET users/details", a)
            users = a.data.get("users") or {}
            if isinstance(users, list):  # PHP writes an empty object as []
                users = {}
            for uid, details in users.items():
                seen = from_millis((details or {}).get("lastLogin"))
                if seen:
                    out[str((details or {}).get("id") or uid)] = seen
            if len(users) < PAGE:
                return out
            offset += PAGE

    def check(self) -> str:
        a = self.call("GET", "/users/details", {"limit": 1, "offset": 0})
        if a.status != 200 or not a.ok_json:
            raise self._refused("GET users/details", a)
        return f"OCS provisioning API answers at {self.base} as {self.setting('user', '')}"

    # --- the actions ------------------------------------------------------------------------------

    def _set_enabled(self, uid: str, enabled: bool) -> str:
        verb = "enable" if enabled else "disable"
        a = self.call("PUT", f"/users/{urllib.parse.quote(uid, safe='')}/{verb}")
        if a.status != 200 or not a.ok_json:
            if a.status == 400 and a.code == 101 and self.user(uid) is None:
                raise Permanent(f"{self.name}: no Nextcloud user {uid}")
            if a.status == 200:
                raise Uncertain(f"{self.name}: {verb} {uid}: not the API's JSON")
            raise self._refused(f"{verb} {uid}", a)
        details = self.user(uid)
        if details is None or details.get("enabled") is not enabled:
            raise Uncertain(
                f"{self.name}: Nextcloud accepted to {verb} {uid} but shows enabled={details and details.get('enabled')}"
            )
        return f"Nextcloud user {uid} {verb}d"

    def _do_lock(self, uid: str, params: dict) -> str:
        return self._set_enabled(uid, False)

    def _do_unlock(self, uid: str, params: dict) -> str:
        return self._set_enabled(uid, True)

    def _do_erase(self, uid: str, params: dict) -> str:
        if self.user(uid) is None:
            return f"no Nextcloud user {uid}: already erased"
        a = self.call("DELETE", "/users/" + urllib.parse.quote(uid, safe=""))
        if a.status != 200 or not a.ok_json:
            if a.status == 200:
                raise Uncertain(f"{self.name}: delete {uid}: not the API's JSON")
            if a.status in _BUSY or a.status >= 500:
                raise self._refused(f"delete {uid}", a)
            if self.user(uid) is None:  # gone meanwhile: what we wanted
                return f"Nextcloud user {uid}: already erased"
            raise self._refused(f"delete {uid}", a)
        if self.user(uid) is not None:
            raise Uncertain(f"{self.name}: Nextcloud accepted to delete {uid} but still shows it")
        return f"Nextcloud user {uid} deleted"


CONNECTOR = Nextcloud
