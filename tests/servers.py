"""Real servers for the connector tests: slapd, Dovecot and Postfix, each started on
127.0.0.1 with a throw-away configuration in a temporary folder and free ports, stopped
and removed afterwards. A test that needs one is skipped, with the reason, only when the
server's binary is not installed (``.ci/run`` installs them all)."""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

SLAPD = shutil.which("slapd") or next((p for p in ("/usr/sbin/slapd",) if os.path.exists(p)), None)
DOVECOT = shutil.which("dovecot") or next(
    (p for p in ("/usr/sbin/dovecot",) if os.path.exists(p)), None
)
DOVEADM = shutil.which("doveadm") or next(
    (p for p in ("/usr/bin/doveadm",) if os.path.exists(p)), None
)
POSTFIX = shutil.which("postfix") or next(
    (p for p in ("/usr/sbin/postfix",) if os.path.exists(p)), None
)
LDAPADD = shutil.which("ldapadd")
NGINX = shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if os.path.exists(p)), None)

needs_slapd = pytest.mark.skipif(
    SLAPD is None or LDAPADD is None,
    reason="slapd or ldap-utils is not installed (apt-get install -y slapd ldap-utils)",
)
needs_dovecot = pytest.mark.skipif(
    DOVECOT is None or DOVEADM is None,
    reason="Dovecot is not installed (apt-get install -y dovecot-imapd)",
)
needs_nginx = pytest.mark.skipif(
    NGINX is None, reason="nginx is not installed (apt-get install -y nginx-light)"
)
needs_postfix = pytest.mark.skipif(
    POSTFIX is None, reason="Postfix is not installed (apt-get install -y postfix)"
)

SUFFIX = "dc=example,dc=org"
ADMIN_DN = f"cn=admin,{SUFFIX}"
ADMIN_PW = "admin-secret"
USERS = f"ou=users,{SUFFIX}"
# A directory account for the helpdesk that is not the rootdn: slapd exempts its rootdn
# from the password policy, so a test of ppolicy's refusals binds as this one.
HELPDESK_DN = f"cn=helpdesk,{SUFFIX}"
HELPDESK_PW = "helpdesk-secret"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(
    port: int, proc: subprocess.Popen, what: str, log: Path | None = None, timeout: float = 20
) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                out = proc.stdout.read().decode(errors="replace") if proc.stdout else ""
                text = log.read_text(errors="replace") if log and log.exists() else ""
                proc.kill()
                pytest.fail(f"{what} did not start: {out}\n{text}")
            time.sleep(0.05)


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def _private_root(prefix: str) -> Path:
    # Not under pytest's tmp_path: its parents are 0700, and the servers' own processes run
    # as their system users, who must reach their files.
    root = Path(tempfile.mkdtemp(prefix=prefix))
    root.chmod(0o755)
    return root


# --- slapd -------------------------------------------------------------------------------------


@dataclass
class Slapd:
    url: str
    root: Path
    secret_file: Path

    def ldif(self, text: str) -> None:
        p = subprocess.run(
            [LDAPADD, "-x", "-H", self.url, "-D", ADMIN_DN, "-w", ADMIN_PW],
            input=text,
            capture_output=True,
            text=True,
        )
        assert p.returncode == 0, p.stderr

    def add_user(self, login: str, password: str, mail: str = "") -> str:
        dn = f"uid={login},{USERS}"
        self.ldif(
            f"dn: {dn}\nobjectClass: inetOrgPerson\nuid: {login}\ncn: {login}\nsn: {login}\n"
            f"mail: {mail or login + '@example.org'}\nuserPassword: {password}\n"
        )
        return dn

    def bind(self, login: str, password: str) -> bool:
        p = subprocess.run(
            ["ldapwhoami", "-x", "-H", self.url, "-D", f"uid={login},{USERS}", "-w", password],
            capture_output=True,
            text=True,
        )
        return p.returncode == 0

    def connector_toml(
        self,
        name: str = "directory",
        policies: str = '["indigos", "wigii"]',
        *,
        as_helpdesk: bool = False,
    ) -> str:
        """``as_helpdesk``: bind as HELPDESK_DN (held to the password policy), not the rootdn."""
        dn, secret = (
            (HELPDESK_DN, self.root / "helpdesk.secret")
            if as_helpdesk
            else (
                ADMIN_DN,
                self.secret_file,
            )
        )
        return (
            f'[connectors.{name}]\ntype = "ldap"\npolicies = {policies}\nurl = "{self.url}"\n'
            f'bind_dn = "{dn}"\npassword_file = "{secret}"\nbase = "{USERS}"\n'
            f'user_filter = "(objectClass=inetOrgPerson)"\n'
        )


@contextlib.contextmanager
def slapd(policy: str = ""):
    """slapd with mdb, the ppolicy overlay (lockout on) and ``lastbind on``. ``policy``:
    more attributes of the default password policy, LDIF lines (``pwdMinLength: 20``)."""
    root = _private_root("helpdesk-slapd-")
    (root / "data").mkdir()
    port = free_port()
    (root / "slapd.conf").write_text(f"""
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
include /etc/ldap/schema/nis.schema
modulepath /usr/lib/ldap
moduleload back_mdb
moduleload ppolicy
pidfile {root}/slapd.pid
database mdb
maxsize 10485760
suffix "{SUFFIX}"
rootdn "{ADMIN_DN}"
rootpw {ADMIN_PW}
directory {root}/data
access to * by dn.exact="{HELPDESK_DN}" write by * read
lastbind on
overlay ppolicy
ppolicy_default "cn=default,ou=policies,{SUFFIX}"
""")
    url = f"ldap://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [SLAPD, "-f", str(root / "slapd.conf"), "-h", url + "/", "-d", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_port(port, proc, "slapd")
        secret = root / "admin.secret"
        secret.write_text(ADMIN_PW)
        secret.chmod(0o600)
        helpdesk_secret = root / "helpdesk.secret"
        helpdesk_secret.write_text(HELPDESK_PW)
        helpdesk_secret.chmod(0o600)
        server = Slapd(url, root, secret)
        server.ldif(f"""dn: {SUFFIX}
objectClass: dcObject
objectClass: organization
o: example
dc: example

dn: {USERS}
objectClass: organizationalUnit
ou: users

dn: {HELPDESK_DN}
objectClass: person
objectClass: simpleSecurityObject
cn: helpdesk
sn: helpdesk
userPassword: {HELPDESK_PW}

dn: ou=policies,{SUFFIX}
objectClass: organizationalUnit
ou: policies

dn: cn=default,ou=policies,{SUFFIX}
objectClass: pwdPolicy
objectClass: person
cn: default
sn: default
pwdAttribute: userPassword
pwdLockout: TRUE
{policy}""")
        yield server
    finally:
        stop(proc)
        shutil.rmtree(root, ignore_errors=True)


# --- Dovecot -------------------------------------------------------------------------------------


@dataclass
class Dovecot:
    imap_port: int
    auth_port: int
    root: Path
    config: Path
    last_login_file: Path
    users: dict
    imaps_port: int | None = None
    http_port: int = 0  # the doveadm HTTP API, key in root/doveadm.key

    def api_toml(self, name: str = "mailbox-api", policies: str = '["indigos", "wigii"]') -> str:
        return (
            f'[connectors.{name}]\ntype = "dovecot"\npolicies = {policies}\n'
            f'api_url = "http://127.0.0.1:{self.http_port}/doveadm/v1"\napi_key_file = "{self.root / "doveadm.key"}"\n'
        )

    def connector_toml(self, name: str = "mailbox", policies: str = '["indigos", "wigii"]') -> str:
        return (
            f'[connectors.{name}]\ntype = "dovecot"\npolicies = {policies}\ndoveadm = "{DOVEADM}"\n'
            f'config = "{self.config}"\nlast_login_file = "{self.last_login_file}"\n'
        )


@contextlib.contextmanager
def dovecot(users: dict[str, str], tls: tuple[Path, Path] | None = None):
    """Dovecot with IMAP, a passwd-file of ``users`` (login -> password), the last_login
    plugin writing a file dict, doveadm's socket, and an auth listener for Postfix's SASL.
    With ``tls`` (certificate, key) it also speaks IMAPS and offers STARTTLS."""
    root = _private_root("helpdesk-dovecot-")
    for sub in ("run", "state", "home"):
        (root / sub).mkdir()
    if os.geteuid() == 0:
        internal, login_user = "dovecot", "dovenull"
        mail_user = pwd.getpwnam("dovecot")
    else:
        me = pwd.getpwuid(os.geteuid())
        internal = login_user = me.pw_name
        mail_user = me
    lines = []
    for login, password in users.items():
        home = root / "home" / login
        home.mkdir()
        if os.geteuid() == 0:
            shutil.chown(home, mail_user.pw_uid, mail_user.pw_gid)
        lines.append(f"{login}:{{PLAIN}}{password}:{mail_user.pw_uid}:{mail_user.pw_gid}::{home}\n")
    (root / "passwd").write_text("".join(lines))
    dict_dir = root / "dict"
    dict_dir.mkdir()
    if os.geteuid() == 0:
        shutil.chown(dict_dir, mail_user.pw_uid, mail_user.pw_gid)
    last_login = dict_dir / "last-login.dict"
    imap_port, auth_port = free_port(), free_port()
    imaps_port = free_port() if tls else 0
    http_port = free_port()
    api_key = "doveadm-api-key"
    (root / "doveadm.key").write_text(api_key)
    (root / "doveadm.key").chmod(0o600)
    ssl_conf = f"ssl = yes\nssl_cert = <{tls[0]}\nssl_key = <{tls[1]}\n" if tls else "ssl = no\n"
    conf = root / "dovecot.conf"
    conf.write_text(f"""
base_dir = {root}/run
state_dir = {root}/state
instance_name = helpdesk-test-{imap_port}
log_path = {root}/dovecot.log
protocols = imap
listen = 127.0.0.1
{ssl_conf}
disable_plaintext_auth = no
auth_mechanisms = plain login
mail_location = maildir:~/Maildir
default_internal_user = {internal}
default_login_user = {login_user}
first_valid_uid = {min(mail_user.pw_uid, 1) if mail_user.pw_uid else 0}
mail_plugins = $mail_plugins last_login
plugin {{
  last_login_dict = file:{last_login}
  last_login_key = last-login/%u
}}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/passwd
}}
userdb {{
  driver = passwd-file
  args = username_format=%u {root}/passwd
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    address = 127.0.0.1
    port = {imap_port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {imaps_port}
  }}
}}
service auth {{
  inet_listener {{
    address = 127.0.0.1
    port = {auth_port}
  }}
}}
service anvil {{
  chroot =
}}
doveadm_api_key = {api_key}
service doveadm {{
  inet_listener http {{
    address = 127.0.0.1
    port = {http_port}
  }}
}}
""")
    proc = subprocess.Popen(
        [DOVECOT, "-F", "-c", str(conf)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        wait_port(imap_port, proc, "dovecot", root / "dovecot.log")
        wait_port(auth_port, proc, "dovecot auth", root / "dovecot.log")
        if tls:
            wait_port(imaps_port, proc, "dovecot imaps", root / "dovecot.log")
        yield Dovecot(
            imap_port, auth_port, root, conf, last_login, users, imaps_port or None, http_port
        )
    finally:
        stop(proc)
        shutil.rmtree(root, ignore_errors=True)


# --- Postfix ---------------------------------------------------------------------------------------


MASTER_CF = """\
{port}    inet  n       -       n       -       -       smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""


@dataclass
class Postfix:
    port: int
    root: Path

    def log(self) -> str:
        p = self.root / "maillog"
        return p.read_text(errors="replace") if p.exists() else ""


@contextlib.contextmanager
def postfix(*, sasl_port: int, policy: str):
    """Postfix's smtpd on a free port: SASL through Dovecot (``sasl_port``), the policy
    service ``policy`` (``inet:127.0.0.1:PORT``) before ``permit_sasl_authenticated``,
    accepted mail discarded. Its configuration, queue and data directories are private."""
    if os.geteuid() != 0:
        pytest.skip("Postfix's master runs as root: this test needs root")
    root = _private_root("helpdesk-postfix-")
    conf, queue, data = root / "conf", root / "queue", root / "data"
    for d in (conf, queue, data):
        d.mkdir()
    shutil.chown(data, "postfix")
    port = free_port()
    (conf / "main.cf").write_text(f"""
compatibility_level = 3.6
queue_directory = {queue}
data_directory = {data}
command_directory = /usr/sbin
daemon_directory = /usr/lib/postfix/sbin
meta_directory = /etc/postfix
shlib_directory = /usr/lib/postfix
mail_owner = postfix
setgid_group = postdrop
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
myhostname = mx.test.example
mydomain = test.example
myorigin = test.example
mydestination =
mynetworks = 127.0.0.2/32
alias_maps =
alias_database =
maillog_file_prefixes = {root}
maillog_file = {root}/maillog
default_transport = discard
relay_transport = discard
smtpd_tls_security_level = none
smtpd_sasl_auth_enable = yes
smtpd_sasl_type = dovecot
smtpd_sasl_path = inet:127.0.0.1:{sasl_port}
smtpd_sasl_security_options = noanonymous
smtpd_sender_restrictions =
    check_policy_service {{ {policy}, timeout=10s, default_action=DUNNO }},
    permit_sasl_authenticated, reject
smtpd_relay_restrictions = permit_sasl_authenticated, reject
smtpd_recipient_restrictions = permit_sasl_authenticated, reject
""")
    (conf / "master.cf").write_text(MASTER_CF.format(port=f"127.0.0.1:{port}"))
    subprocess.run([POSTFIX, "-c", str(conf), "set-permissions"], capture_output=True, text=True)
    proc = subprocess.Popen(
        [POSTFIX, "-c", str(conf), "start-fg"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    server = Postfix(port, root)
    try:
        wait_port(port, proc, "postfix", root / "maillog")
        yield server
    finally:
        subprocess.run([POSTFIX, "-c", str(conf), "stop"], capture_output=True)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(root, ignore_errors=True)


# --- nginx -------------------------------------------------------------------------------------


@dataclass
class Nginx:
    port: int
    root: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def error_log(self) -> str:
        p = self.root / "error.log"
        return p.read_text(errors="replace") if p.exists() else ""


@contextlib.contextmanager
def nginx(upstream_port: int, location: str = "/"):
    """Debian's nginx as a reverse proxy on 127.0.0.1 (a free port), its own throw-away
    configuration, passing ``location`` to ``127.0.0.1:upstream_port`` the way the README
    tells an admin to (Host, X-Forwarded-For, X-Forwarded-Proto; no access log). It
    connects to the upstream from 127.0.0.1 (``proxy_bind``) whatever the client's address."""
    root = _private_root("helpdesk-nginx-")
    port = free_port()
    user = f"user {pwd.getpwuid(os.geteuid()).pw_name};" if os.geteuid() == 0 else ""
    temps = "\n".join(
        f"    {kind}_temp_path {root}/{kind}_temp;"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    (root / "nginx.conf").write_text(f"""
{user}
worker_processes 1;
pid {root}/nginx.pid;
error_log {root}/error.log info;
events {{ worker_connections 64; }}
http {{
    access_log off;
{temps}
    server {{
        listen 127.0.0.1:{port};
        server_name reset.example;
        location {location} {{
            proxy_pass http://127.0.0.1:{upstream_port};
            proxy_bind 127.0.0.1;
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
        }}
    }}
}}
""")
    proc = subprocess.Popen(
        [
            NGINX,
            "-p",
            str(root),
            "-e",
            str(root / "error.log"),
            "-c",
            str(root / "nginx.conf"),
            "-g",
            "daemon off;",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_port(port, proc, "nginx", root / "error.log")
        yield Nginx(port, root)
    finally:
        proc.terminate()  # nginx's fast shutdown; its workers follow their master
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        shutil.rmtree(root, ignore_errors=True)
