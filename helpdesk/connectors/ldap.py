"""An LDAP directory (OpenLDAP with the ppolicy overlay), through ldap3 (extra ``ldap``).

- ``lock``: ``pwdAccountLockedTime: 000001010000Z`` (a permanent lock; binds then fail).
  A *replace*, so locking twice is locking once. The password policy needs
  ``pwdLockout: TRUE``.
- ``unlock``: the attribute deleted (already absent: nothing to do).
- ``force-change``: ``pwdReset: TRUE``: the next bind must change the password.
- ``erase``: the entry deleted (already gone: nothing to do).
- ``set_password`` (the reset page, never queued): the Password Modify extended operation
  (RFC 3062); the server hashes it and applies its policy.
- last login: ``pwdLastSuccess`` (``lastbind on``), which Dovecot's bind authentication
  updates too. An admin's reset may clear it: :mod:`helpdesk.service.logins` keeps what was read.

Every write is read back; a write the server accepted but that does not show is
``uncertain``.

Settings (``[connectors.NAME]``, ``type = "ldap"``)::

    url = "ldap://127.0.0.1:389"    # ldaps://... for TLS; starttls = true to upgrade
    bind_dn = "cn=helpdesk,dc=example,dc=org"
    password_file = "/etc/helpdesk/ldap.secret"   # chmod 600
    base = "ou=users,dc=example,dc=org"           # where the accounts are
    login_attr = "uid"                            # default uid
    mail_attr = "mail"                            # default mail
    user_filter = "(objectClass=inetOrgPerson)"   # which entries are accounts
    cafile = "/etc/ssl/ldap-ca.pem"               # extra CA to trust
    timeout = 10                                  # seconds
    preset = "yunohost"                           # YunoHost's layout: base ou=users,dc=yunohost,dc=org

Least privilege: give ``bind_dn`` write access to ``pwdAccountLockedTime`` and
``pwdReset`` (and ``userPassword`` through the exop) only, read access to the login, mail
and ``pwdLastSuccess``. A password is never sent unencrypted to another host.
"""

from __future__ import annotations

from datetime import datetime, timezone

from helpdesk.connectors import Connector, PasswordRefused, Permanent, Temporary, Uncertain

LOCKED = "000001010000Z"
PRESETS = {
    "yunohost": {
        "base": "ou=users,dc=yunohost,dc=org",
        "login_attr": "uid",
        "mail_attr": "mail",
        "user_filter": "(objectClass=mailAccount)",
    },
}
# Result codes the server may give when it is (for now) unable to act: try again later.
_BUSY = {51, 52, 53, 80}  # busy, unavailable, unwillingToPerform, other
# constraintViolation: ppolicy's quality check, minimum length or history refused this password.
_PASSWORD_REFUSED = {19}


def _ldap3():
    try:
        import ldap3
    except ImportError:
        raise Permanent("the ldap connector needs ldap3: pip install 'helpdesk[ldap]'") from None
    return ldap3


def parse_generalized(value) -> datetime | None:
    if value in (None, "", []):
        return None
    if isinstance(value, list):
        value = value[0]
    if isinstance(value, datetime):
        return (
            value.astimezone(timezone.utc) if value.tzinfo else value.replace(tzinfo=timezone.utc)
        )
    text = str(value).rstrip("Z").split(".")[0]
    return datetime.strptime(text[:14], "%Y%m%d%H%M%S").replace(tzinfo=timezone.utc)


class Ldap(Connector):
    type = "ldap"
    kinds = frozenset({"lock", "unlock", "force-change", "erase", "read-last-login"})
    can_set_password = True

    def __init__(self, name, settings, config):
        preset = PRESETS.get(settings.get("preset", ""), {})
        super().__init__(name, {**preset, **settings}, config)

    # --- the connection ---------------------------------------------------------------------

    @property
    def base(self) -> str:
        return str(self.setting("base", ""))

    @property
    def login_attr(self) -> str:
        return str(self.setting("login_attr", "uid"))

    def _open(self):
        ldap3 = _ldap3()
        url = str(self.setting("url", ""))
        if not url.startswith(("ldap://", "ldaps://")):
            raise Permanent(f"{self.name}: url must be ldap://... or ldaps://...")
        tls = None
        if url.startswith("ldaps://") or self.setting("starttls"):
            import ssl

            tls = ldap3.Tls(
                validate=ssl.CERT_REQUIRED, ca_certs_file=self.setting("cafile") or None
            )
        host = url.split("://", 1)[1].split("/", 1)[0].rsplit(":", 1)[0].strip("[]")
        if (
            tls is None
            and host not in ("127.0.0.1", "::1", "localhost")
            and self.setting("password_file")
        ):
            raise Permanent(
                f"{self.name}: refusing to send the bind password unencrypted to {host}: use ldaps:// or starttls = true"
            )
        timeout = int(self.setting("timeout", 10))  # ldap3 packs it into a socket option: an int
        server = ldap3.Server(url, connect_timeout=timeout, get_info=ldap3.NONE, tls=tls)
        conn = ldap3.Connection(
            server,
            user=self.setting("bind_dn") or None,
            password=self.secret("password") or None,
            receive_timeout=timeout,
            raise_exceptions=False,
            read_only=False,
        )
        try:
            if self.setting("starttls") and not url.startswith("ldaps://"):
                conn.open()
                if not conn.start_tls():
                    raise Permanent(
                        f"{self.name}: STARTTLS refused: {conn.result.get('description')}"
                    )
            if not conn.bind():
                code = conn.result.get("result")
                raise (Temporary if code in _BUSY else Permanent)(
                    f"{self.name}: bind refused: {conn.result.get('description')}"
                )
        except ldap3.core.exceptions.LDAPException as exc:
            raise Temporary(f"{self.name}: {type(exc).__name__}: {exc}") from None
        return conn

    def _dn(self, conn, login: str) -> str:
        ldap3 = _ldap3()
        from ldap3.utils.conv import escape_filter_chars

        flt = f"(&{self.setting('user_filter', '(objectClass=*)')}({self.login_attr}={escape_filter_chars(login)}))"
        if not conn.search(self.base, flt, search_scope=ldap3.SUBTREE, attributes=[]):
            if conn.result.get("result") in _BUSY:
                raise Temporary(f"{self.name}: search: {conn.result.get('description')}")
            return ""
        if len(conn.entries) > 1:
            raise Permanent(
                f"{self.name}: {len(conn.entries)} entries for {self.login_attr}={login}"
            )
        return conn.entries[0].entry_dn if conn.entries else ""

    def _with(self, login: str, fn):
        ldap3 = _ldap3()
        conn = self._open()
        try:
            dn = self._dn(conn, login)
            return fn(conn, dn)
        except ldap3.core.exceptions.LDAPException as exc:
            raise Temporary(f"{self.name}: {type(exc).__name__}: {exc}") from None
        finally:
            conn.unbind()

    def _modify(self, conn, dn: str, changes: dict, *, absent_ok: bool = False) -> None:
        if conn.modify(dn, changes):
            return
        code, text = conn.result.get("result"), conn.result.get("description")
        if absent_ok and code == 16:  # noSuchAttribute: it was already so
            return
        raise (Temporary if code in _BUSY else Permanent)(f"{self.name}: {text} ({code}) on {dn}")

    def _read(self, conn, dn: str, attrs: list[str]) -> dict:
        ldap3 = _ldap3()
        if not conn.search(dn, "(objectClass=*)", search_scope=ldap3.BASE, attributes=attrs):
            raise Uncertain(
                f"{self.name}: could not read {dn} back: {conn.result.get('description')}"
            )
        entry = conn.entries[0].entry_attributes_as_dict
        return {k.lower(): v for k, v in entry.items()}

    # --- the actions ------------------------------------------------------------------------

    def _need(self, dn: str, login: str) -> None:
        if not dn:
            raise Permanent(f"{self.name}: no account {self.login_attr}={login} under {self.base}")

    def _set_lock(self, login: str, locked: bool) -> str:
        """Lock (a replace) or unlock (a delete; already absent is fine), then read it back."""

        def act(conn, dn):
            ldap3 = _ldap3()
            self._need(dn, login)
            change = (ldap3.MODIFY_REPLACE, [LOCKED]) if locked else (ldap3.MODIFY_DELETE, [])
            self._modify(conn, dn, {"pwdAccountLockedTime": [change]}, absent_ok=not locked)
            shows = bool(self._read(conn, dn, ["pwdAccountLockedTime"]).get("pwdaccountlockedtime"))
            if shows != locked:
                raise Uncertain(
                    f"{self.name}: the server accepted the change on {dn} but shows {'no ' if locked else 'a '}lock"
                )
            return f"{dn} locked (pwdAccountLockedTime)" if locked else f"{dn} unlocked"

        return self._with(login, act)

    def _do_lock(self, login: str, params: dict) -> str:
        return self._set_lock(login, True)

    def _do_unlock(self, login: str, params: dict) -> str:
        return self._set_lock(login, False)

    def _do_force_change(self, login: str, params: dict) -> str:
        def act(conn, dn):
            ldap3 = _ldap3()
            self._need(dn, login)
            self._modify(conn, dn, {"pwdReset": [(ldap3.MODIFY_REPLACE, ["TRUE"])]})
            return f"{dn}: password change forced at next login (pwdReset)"

        return self._with(login, act)

    def _do_erase(self, login: str, params: dict) -> str:
        def act(conn, dn):
            if not dn:
                return f"no entry {self.login_attr}={login}: already erased"
            if not conn.delete(dn):
                code = conn.result.get("result")
                if code == 32:  # noSuchObject
                    return f"{dn}: already erased"
                raise (Temporary if code in _BUSY else Permanent)(
                    f"{self.name}: {conn.result.get('description')} ({code}) on {dn}"
                )
            return f"{dn} deleted"

        return self._with(login, act)

    def set_password(self, login: str, password: str, params: dict | None = None) -> str:
        """The Password Modify extended operation; the server hashes and checks it."""

        def act(conn, dn):
            self._need(dn, login)
            ok = conn.extend.standard.modify_password(dn, new_password=password)
            if not ok:
                code, text = (
                    conn.result.get("result"),
                    conn.result.get("message") or conn.result.get("description"),
                )
                if code in _PASSWORD_REFUSED:
                    raise PasswordRefused(f"{self.name}: password refused: {text} ({code})")
                raise (Temporary if code in _BUSY else Permanent)(
                    f"{self.name}: password refused: {text} ({code})"
                )
            return f"{dn}: password set"

        return self._with(login, act)

    # --- reading ------------------------------------------------------------------------------

    def last_login(self, login: str) -> datetime | None:
        def read(conn, dn):
            if not dn:
                return None
            return parse_generalized(self._read(conn, dn, ["pwdLastSuccess"]).get("pwdlastsuccess"))

        return self._with(login, read)

    def accounts(self) -> list[dict]:
        """Every account of the directory: login, mail, last login, locked."""
        ldap3 = _ldap3()
        conn = self._open()
        mail_attr = str(self.setting("mail_attr", "mail"))
        out = []
        try:
            gen = conn.extend.standard.paged_search(
                self.base,
                self.setting("user_filter", "(objectClass=*)"),
                search_scope=ldap3.SUBTREE,
                attributes=[self.login_attr, mail_attr, "pwdLastSuccess", "pwdAccountLockedTime"],
                paged_size=500,
                generator=True,
            )
            for entry in gen:
                if entry.get("type") != "searchResEntry":
                    continue
                attrs = {k.lower(): v for k, v in entry["attributes"].items()}
                login = attrs.get(self.login_attr.lower())
                login = login[0] if isinstance(login, list) and login else login
                if not login:
                    continue
                mail = attrs.get(mail_attr.lower())
                mail = mail[0] if isinstance(mail, list) and mail else (mail or "")
                out.append(
                    {
                        "login": str(login),
                        "email": str(mail),
                        "last_login": parse_generalized(attrs.get("pwdlastsuccess")),
                        "locked": bool(attrs.get("pwdaccountlockedtime")),
                    }
                )
        except ldap3.core.exceptions.LDAPException as exc:
            raise Temporary(f"{self.name}: {type(exc).__name__}: {exc}") from None
        finally:
            conn.unbind()
        return out

    def last_logins(self) -> dict[str, datetime]:
        return {a["login"]: a["last_login"] for a in self.accounts() if a["last_login"]}

    def check(self) -> str:
        ldap3 = _ldap3()
        conn = self._open()
        try:
            if not conn.search(
                self.base,
                self.setting("user_filter", "(objectClass=*)"),
                search_scope=ldap3.SUBTREE,
                attributes=[self.login_attr],
                size_limit=1,
            ):
                if conn.result.get("result") not in (0, 4):  # 4: sizeLimitExceeded is fine
                    raise Permanent(
                        f"{self.name}: cannot search {self.base}: {conn.result.get('description')}"
                    )
            return f"bound as {self.setting('bind_dn') or 'anonymous'}, {self.base} readable"
        finally:
            conn.unbind()


CONNECTOR = Ldap
