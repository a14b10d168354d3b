"""Over SSH, end to end: a real OpenSSH server, one shared system account, one forced
command per volunteer key (``helpdesk volunteer authorized-keys``).

The test starts its own ``sshd`` (Debian's openssh-server) on 127.0.0.1 and a free port,
with its own ``sshd_config`` and a fresh host key, and connects with the real ``ssh``
client inside tmux (a real terminal, read back with ``tmux capture-pane``). It checks that
a key is an identity and nothing else:

- alice's key opens the TUI as alice (volunteer), bob's as bob (oncall), at the same time;
- asking for a shell or another command runs the helpdesk instead, never the command;
- port forwarding (local and remote) is refused (``restrict``), where a key without
  ``restrict`` would be allowed it (a control, so the check means something);
- an unknown key, a removed key and a withdrawn volunteer's key are refused once
  ``authorized_keys`` is written again.

It needs root: the volunteers log into a shared account ``helpdesk-test`` (created with
``useradd`` if missing, and left in place for the next run).
"""

from __future__ import annotations

import os
import pwd
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import PG, ROOT, _clean_env, _pg_create, _pg_drop

SSHD = Path("/usr/sbin/sshd")
SHARED = "helpdesk-test"
TIMEOUT = 90.0  # generous: CI machines are small and may be busy
STEP = 0.1

pytestmark = [
    pytest.mark.slow,  # about a minute: a real sshd, real logins, the TUI started over and over
    pytest.mark.skipif(
        not SSHD.exists(),
        reason="needs a real OpenSSH server: /usr/sbin/sshd is missing (apt-get install openssh-server)",
    ),
    pytest.mark.skipif(
        not shutil.which("ssh") or not shutil.which("ssh-keygen"),
        reason="needs the OpenSSH client (apt-get install openssh-client)",
    ),
    pytest.mark.skipif(not shutil.which("tmux"), reason="needs tmux (apt-get install tmux)"),
    # An unprivileged sshd can log in only as itself, and cannot give that login a terminal.
    pytest.mark.skipif(
        os.geteuid() != 0,
        reason="needs root: to run sshd, and to create the shared account helpdesk-test",
    ),
]


# --- small helpers ------------------------------------------------------------------------


def wait_for(what: str, probe, timeout: float = TIMEOUT, detail=lambda: ""):
    """Poll ``probe`` until it returns something true; fail with ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        found = probe()
        if found:
            return found
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}\n{detail()}")
        time.sleep(STEP)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def banner(port: int, timeout: float = 2.0) -> bytes:
    """What a TCP server on this port says first ('' if it closes or says nothing)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.settimeout(timeout)
            return s.recv(64)
    except OSError:
        return b""


def descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def kill_tree(proc: subprocess.Popen) -> None:
    """End a process we started and everything it started (sshd's sessions), by pid."""
    pids = descendants(proc.pid)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in [*pids, proc.pid]:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        try:
            proc.wait(timeout=5)
            if not any(Path(f"/proc/{p}").exists() for p in pids):
                return
        except subprocess.TimeoutExpired:
            pass


class Reader:
    """Collects a process's output in the background, so we can poll it."""

    def __init__(self, stream):
        self.data = b""
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, args=(stream,), daemon=True)
        self._thread.start()

    def _run(self, stream) -> None:
        for chunk in iter(lambda: stream.read1(4096), b""):
            with self._lock:
                self.data += chunk

    def text(self) -> str:
        with self._lock:
            return self.data.decode("utf-8", "replace")


# --- the shared account, the server ---------------------------------------------------------


@dataclass
class Server:
    account: str
    port: int
    home: Path  # the shared directory: wrapper, database (SQLite), authorized_keys
    keys: Path  # the client side: private keys, tmux socket
    wrapper: Path
    db: str
    authorized_keys: Path
    log: Path
    env: dict
    as_account: list[str]
    tmux_sessions: list[str] = field(default_factory=list)

    # the admin's side: the helpdesk CLI as the shared account

    def helpdesk(self, *args: str) -> subprocess.CompletedProcess:
        p = subprocess.run(
            [*self.as_account, str(self.wrapper), "--db", self.db, *args],
            capture_output=True,
            text=True,
            env=self.env,
            timeout=120,
        )
        assert p.returncode == 0 and "Traceback" not in p.stderr, (
            f"helpdesk {args}: exit {p.returncode}\n{p.stdout}\n{p.stderr}"
        )
        return p

    def write_authorized_keys(self, *extra_lines: str) -> str:
        """What the admin runs after every change of volunteers or keys."""
        lines = self.helpdesk("volunteer", "authorized-keys", "--program", str(self.wrapper)).stdout
        text = lines + "".join(line + "\n" for line in extra_lines)
        tmp = self.authorized_keys.with_suffix(".new")
        tmp.write_text(text)
        tmp.chmod(0o644)
        tmp.replace(self.authorized_keys)
        return text

    def new_key(self, name: str) -> Path:
        key = self.keys / name
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"{name}@test", "-f", str(key)],
            check=True,
        )
        return key

    def public(self, name: str) -> str:
        """A public key as the volunteer sends it (the text: the shared account cannot read
        the test's files)."""
        return (self.keys / f"{name}.pub").read_text().strip()

    # the volunteer's side: ssh

    def ssh(self, key: Path, *options: str, command: tuple[str, ...] = ()) -> list[str]:
        return [
            "ssh",
            "-F",
            "/dev/null",
            "-i",
            str(key),
            "-p",
            str(self.port),
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "IdentityAgent=none",
            "-o",
            "BatchMode=yes",
            "-o",
            "ConnectTimeout=10",
            *options,
            f"{self.account}@127.0.0.1",
            *command,
        ]

    def authenticates(self, key: Path) -> tuple[bool, str]:
        """Does sshd accept this key? Asks for no session (-N), so no command runs."""
        p = subprocess.Popen(
            self.ssh(key, "-N", "-o", "LogLevel=VERBOSE"),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        err = Reader(p.stderr)
        try:
            wait_for(
                "ssh to authenticate or give up",
                lambda: "Authenticated to" in err.text() or p.poll() is not None,
                detail=err.text,
            )
            return "Authenticated to" in err.text(), err.text()
        finally:
            p.terminate()
            p.wait(timeout=10)

    # tmux: a real terminal of 100x30

    def tmux(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run(
            [
                "tmux",
                "-u",
                "-S",
                str(self.keys / "tmux.sock"),
                "-f",
                str(self.keys / "tmux.conf"),
                *args,
            ],
            capture_output=True,
            text=True,
            check=check,
            env={**self.env, "TERM": "xterm-256color"},
        )

    def open_terminal(self, name: str, argv: list[str]) -> str:
        """Run ``argv`` in a new tmux session, through a shell that writes its exit status to
        a file when it ends (tmux does not always know the status of a pane's process)."""
        status = self.keys / f"{name}.status"
        status.unlink(missing_ok=True)
        record = '"$@"; echo $? > "$0.tmp"; mv "$0.tmp" "$0"'
        self.tmux(
            "new-session",
            "-d",
            "-s",
            name,
            "-x",
            "100",
            "-y",
            "30",
            shlex.join(["sh", "-c", record, str(status), *argv]),
        )
        self.tmux_sessions.append(name)
        return name

    def screen(self, name: str, history: bool = False) -> str:
        args = ["capture-pane", "-p", "-t", name] + (["-S", "-"] if history else [])
        return self.tmux(*args, check=False).stdout

    def wait_screen(self, name: str, text: str) -> str:
        return wait_for(
            f"{text!r} on the screen of {name}",
            lambda: self.screen(name) if text in self.screen(name) else "",
            detail=lambda: (
                f"--- screen ---\n{self.screen(name)}\n--- sshd log ---\n{self.tail_log()}"
            ),
        )

    def exit_status(self, name: str) -> int | None:
        """The exit status of the session's ssh (128+signal if a signal ended it), None while
        it runs: written by the shell that ran it (``open_terminal``)."""
        status = self.keys / f"{name}.status"
        return int(status.read_text()) if status.exists() else None

    def wait_closed(self, name: str) -> int:
        wait_for(
            f"the session {name} to end",
            lambda: self.exit_status(name) is not None,
            detail=lambda: self.screen(name),
        )
        return self.exit_status(name)

    def stop_remote_helpdesks(self) -> None:
        """End the helpdesk processes our sshd started on this database (by pid), while
        their session is still there to reap them."""
        uid = pwd.getpwnam(self.account).pw_uid
        pids = []
        for entry in Path("/proc").iterdir():
            try:
                if entry.name.isdigit() and entry.stat().st_uid == uid:
                    cmd = (entry / "cmdline").read_bytes().split(b"\0")
                    if b"helpdesk" in cmd and self.db.encode() in cmd and b"--as" in cmd:
                        pids.append(int(entry.name))
            except OSError:
                continue
        for sig in (signal.SIGTERM, signal.SIGKILL):
            for pid in pids:
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
            deadline = time.monotonic() + 10
            while any(_alive(p) for p in pids) and time.monotonic() < deadline:
                time.sleep(STEP)
            if not any(_alive(p) for p in pids):
                return

    def tail_log(self) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-30:])
        except OSError:
            return ""


def _shared_account() -> tuple[str, list[str]]:
    """The system account every volunteer logs into, and how to run a command as it."""
    try:
        pwd.getpwnam(SHARED)
    except KeyError:
        r = subprocess.run(
            [
                "useradd",
                "--system",
                "--create-home",
                "--shell",
                "/bin/sh",
                "--comment",
                "helpdesk SSH test account",
                SHARED,
            ],
            capture_output=True,
            text=True,
        )
        if r.returncode not in (0, 9):  # 9: created meanwhile by another test worker
            pytest.skip(f"cannot create the shared account {SHARED}: {r.stderr.strip()}")
    # A '!' password (useradd's default) is a locked account, which sshd refuses when
    # UsePAM is off; '*' means "no password" without locking the account.
    subprocess.run(["usermod", "-p", "*", SHARED], check=True, capture_output=True)
    runuser = shutil.which("runuser") or "/usr/sbin/runuser"
    return SHARED, [runuser, "-u", SHARED, "--"]


def _python_for(as_account: list[str], env: dict) -> tuple[str, list[str]]:
    """A Python the shared account can run, with this checkout and this venv's packages.

    This venv's own interpreter first; when the account cannot run it (e.g. it lives under
    /root, mode 0700), the system interpreter of the same version with the venv's packages."""
    ours = [str(ROOT), *[p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]]
    venv_libs = list(dict.fromkeys([sysconfig.get_path("purelib"), sysconfig.get_path("platlib")]))
    candidates = [(sys.executable, ours)]
    same = shutil.which(
        f"python{sys.version_info.major}.{sys.version_info.minor}", path="/usr/local/bin:/usr/bin"
    )
    if same and same != sys.executable:
        candidates.append((same, [*ours, *venv_libs]))
    modules = ["helpdesk.cli.main", "screens.app", "textual", "sqlmodel"] + (
        ["psycopg"] if PG else []
    )
    needed = (
        f"import importlib.util as u, sys; missing = [m for m in {modules!r} if u.find_spec(m) is None]; "
        "sys.exit('missing: ' + ', '.join(missing) if missing else 0)"
    )
    tried = []
    for python, path in candidates:
        r = subprocess.run(
            [*as_account, python, "-c", needed],
            capture_output=True,
            text=True,
            env={**env, "PYTHONPATH": os.pathsep.join(path), "PYTHONDONTWRITEBYTECODE": "1"},
        )
        if r.returncode == 0:
            return python, path
        tried.append(f"{python}: {(r.stderr.strip().splitlines() or ['?'])[-1]}")
    pytest.skip(
        "the shared account cannot run helpdesk with this venv's packages: " + "; ".join(tried)
    )


def _start_sshd(
    keys: Path, account: str, authorized_keys: Path
) -> tuple[subprocess.Popen, int, Path]:
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation directory
    host_key = keys / "ssh_host_ed25519_key"
    if not host_key.exists():
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(host_key)], check=True
        )
    log = keys / "sshd.log"
    last = ""
    for _attempt in range(5):
        port = free_port()
        config = keys / "sshd_config"
        config.write_text(
            f"""\
Port {port}
ListenAddress 127.0.0.1
HostKey {host_key}
PidFile {keys / "sshd.pid"}
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
AuthenticationMethods publickey
AuthorizedKeysFile {authorized_keys}
AuthorizedKeysCommand none
StrictModes no
AllowUsers {account}
PermitRootLogin no
PermitUserEnvironment no
# Forwarding is allowed here on purpose: the test proves that `restrict` in
# authorized_keys refuses it by itself.
AllowTcpForwarding yes
X11Forwarding no
PrintMotd no
PrintLastLog no
LogLevel VERBOSE
MaxStartups 100
"""
        )
        check = subprocess.run([str(SSHD), "-t", "-f", str(config)], capture_output=True, text=True)
        if check.returncode != 0:
            pytest.fail(f"sshd refuses the test configuration: {check.stderr}")
        proc = subprocess.Popen(
            [str(SSHD), "-D", "-f", str(config), "-E", str(log)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline and proc.poll() is None:
            if banner(port, timeout=0.5).startswith(b"SSH-2.0-"):
                return proc, port, log
            time.sleep(STEP)
        last = log.read_text(errors="replace") if log.exists() else ""
        kill_tree(proc)
    pytest.fail(f"sshd did not start:\n{last}")


@pytest.fixture(scope="module")
def server(template_db, tmp_path_factory):
    env = _clean_env()
    account, as_account = _shared_account()
    python, path = _python_for(as_account, env)
    keys = tmp_path_factory.mktemp("ssh")  # root's side: client keys, sshd config and host key
    (keys / "tmux.conf").write_text(
        "set -g remain-on-exit on\nset -g history-limit 10000\nset -g status off\n"
    )
    # The shared account's side must be reachable by it (pytest's own tmp is mode 0700).
    home = Path(tempfile.mkdtemp(prefix="helpdesk-ssh-"))
    pg_url = None
    try:
        wrapper = home / "helpdesk"
        wrapper.write_text(
            "#!/bin/sh\n"
            "# helpdesk from this checkout, with the test venv's packages\n"
            f"PYTHONPATH={shlex.quote(os.pathsep.join(path))}\n"
            "PYTHONDONTWRITEBYTECODE=1\n"
            # The account's own folders stay untouched: its data, cache and config live here.
            f"XDG_DATA_HOME={shlex.quote(str(home / 'data'))}\n"
            f"XDG_CACHE_HOME={shlex.quote(str(home / 'cache'))}\n"
            f"XDG_CONFIG_HOME={shlex.quote(str(home / 'config'))}\n"
            f"XDG_STATE_HOME={shlex.quote(str(home / 'state'))}\n"
            "export PYTHONPATH PYTHONDONTWRITEBYTECODE XDG_DATA_HOME XDG_CACHE_HOME\n"
            "export XDG_CONFIG_HOME XDG_STATE_HOME\n"
            f'exec {shlex.quote(python)} -m helpdesk "$@"\n'
        )
        wrapper.chmod(0o755)
        if PG:
            from sqlalchemy.engine import make_url

            pg_url = _pg_create(make_url(template_db).database)
            db = pg_url
        else:
            shutil.copyfile(template_db, home / "helpdesk.db")
            db = f"sqlite:///{home / 'helpdesk.db'}"
        authorized_keys = home / "authorized_keys"
        authorized_keys.write_text("")
        authorized_keys.chmod(0o644)
        info = pwd.getpwnam(account)  # the shared account owns its directory and its database
        for p in [home, *home.iterdir()]:
            os.chown(p, info.pw_uid, info.pw_gid)
        home.chmod(0o755)

        proc, port, log = _start_sshd(keys, account, authorized_keys)
        srv = Server(account, port, home, keys, wrapper, db, authorized_keys, log, env, as_account)
        try:
            for login in ("alice", "bob", "stranger", "control"):
                srv.new_key(login)
            srv.helpdesk(
                "--as",
                "chloe",
                "volunteer",
                "add",
                "alice",
                "--role",
                "volunteer",
                "--ssh-key",
                srv.public("alice"),
            )
            srv.helpdesk(
                "--as",
                "chloe",
                "volunteer",
                "add",
                "bob",
                "--role",
                "oncall",
                "--ssh-key",
                srv.public("bob"),
            )
            srv.write_authorized_keys()
            yield srv
        finally:
            srv.tmux("kill-server", check=False)
            srv.stop_remote_helpdesks()
            kill_tree(proc)
    finally:
        shutil.rmtree(home, ignore_errors=True)
        if pg_url:
            _pg_drop(pg_url)


@pytest.fixture
def terminals(server):
    """tmux sessions opened by a test; whatever is left is killed at the end."""
    yield server
    for name in server.tmux_sessions:
        server.tmux("kill-session", "-t", name, check=False)
    server.tmux_sessions.clear()


# --- the tests ---------------------------------------------------------------------------------


def test_authorized_keys_force_the_helpdesk_on_every_key(server):
    lines = server.authorized_keys.read_text().splitlines()
    assert len(lines) == 2
    for login, line in zip(("alice", "bob"), lines):
        m = re.fullmatch(r'restrict,pty,command="([^"]*)" (ssh-ed25519 \S+) helpdesk:(\S+)', line)
        assert m, line
        assert shlex.split(m[1]) == [str(server.wrapper), "--db", server.db, "--as", login]
        assert m[2] == " ".join(server.public(login).split()[:2]) and m[3] == login


def test_each_key_opens_the_tui_as_its_volunteer(terminals):
    srv = terminals
    alice = srv.open_terminal("alice", srv.ssh(srv.keys / "alice", "-t"))
    bob = srv.open_terminal("bob", srv.ssh(srv.keys / "bob", "-t"))
    # The top bar names the acting volunteer and role: two keys, two identities, at once.
    top_a = srv.wait_screen(alice, "alice (bénévole)").splitlines()[0]
    top_b = srv.wait_screen(bob, "bob (astreinte)").splitlines()[0]
    assert "helpdesk" in top_a and "alice (bénévole)" in top_a and "bob" not in top_a, top_a
    assert "helpdesk" in top_b and "bob (astreinte)" in top_b and "alice" not in top_b, top_b

    srv.tmux("send-keys", "-t", alice, "q")  # the dashboard's quit key
    srv.tmux("send-keys", "-t", bob, "C-q")  # the app's quit key, anywhere
    # Both sessions end, the helpdesk's status (0) passed on by ssh.
    assert srv.wait_closed(alice) == 0, srv.screen(alice)
    assert srv.wait_closed(bob) == 0, srv.screen(bob)


def test_a_key_runs_the_helpdesk_whatever_command_is_asked(terminals):
    srv = terminals
    key = srv.keys / "alice"
    # The markers are split in the command and whole only in its output: seeing one means
    # the command ran.
    asked = {
        "id": srv.ssh(key, "-t", command=("id",)),
        "sh": srv.ssh(key, "-t", command=("/bin/sh", "-c", shlex.quote("echo pw''ned; id"))),
        "shell": srv.ssh(key, "-t", command=("exec", "/bin/sh", "-i")),
    }
    names = [srv.open_terminal(f"cmd-{k}", argv) for k, argv in asked.items()]
    for name in names:
        screen = srv.wait_screen(name, "alice (bénévole)")
        assert "pwned" not in screen and "uid=" not in screen
    for name in names:
        srv.tmux("send-keys", "-t", name, "C-q")
        # The session ends: the forced command (the helpdesk) ran instead, and quit cleanly.
        assert srv.wait_closed(name) == 0, srv.screen(name)
        seen = srv.screen(name, history=True)
        assert "pwned" not in seen and "uid=" not in seen, seen

    # Without a terminal (-T) the command is not run either: the forced command is.
    p = subprocess.Popen(
        srv.ssh(key, "-T", command=("echo pw''ned; id",)),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    out = Reader(p.stdout)
    try:
        wait_for(
            "the forced command to answer",
            lambda: p.poll() is not None or "alice" in out.text(),
            detail=out.text,
        )
        ended = p.poll()
    finally:
        srv.stop_remote_helpdesks()  # today a TUI without a terminal does not end by itself
        p.terminate()
        p.wait(timeout=10)
    assert "pwned" not in out.text() and "uid=" not in out.text(), out.text()
    # Either the TUI was drawn (for alice), or the helpdesk refused to start without a terminal.
    assert "alice" in out.text() or (ended is not None and ended != 0), out.text()


def test_port_forwarding_is_refused(server):
    srv = server
    target = srv.port  # any TCP service would do; sshd says "SSH-2.0-..." first

    def forwards(key: Path) -> tuple[bytes, str]:
        local = free_port()
        p = subprocess.Popen(
            srv.ssh(
                key, "-N", "-o", "ExitOnForwardFailure=yes", "-L", f"{local}:127.0.0.1:{target}"
            ),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        err = Reader(p.stderr)
        try:
            wait_for(
                "the local end of the tunnel",
                lambda: p.poll() is not None or _listening(local),
                detail=err.text,
            )
            got = banner(local, timeout=5) if p.poll() is None else b""
            time.sleep(STEP)  # let ssh log why it closed the channel
            return got, err.text()
        finally:
            p.terminate()
            p.wait(timeout=10)

    # The control: a key without `restrict` may forward, so the check below is meaningful.
    control = (srv.keys / "control.pub").read_text().split()
    srv.write_authorized_keys(f'command="/bin/false" {control[0]} {control[1]} control')
    try:
        got, err = forwards(srv.keys / "control")
        assert got.startswith(b"SSH-2.0-"), (got, err)

        got, err = forwards(srv.keys / "alice")
        assert not got.startswith(b"SSH-"), "alice's key forwarded a port"
        assert "prohibited" in err, err

        # Remote forwarding (-R) is refused too.
        r = subprocess.run(
            srv.ssh(
                srv.keys / "alice",
                "-N",
                "-o",
                "ExitOnForwardFailure=yes",
                "-R",
                f"0:127.0.0.1:{target}",
            ),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
        )
        assert r.returncode != 0 and "forwarding failed" in r.stderr, r.stderr
    finally:
        srv.write_authorized_keys()


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return True
    except OSError:
        return False


def test_an_unknown_key_is_refused(server):
    ok, err = server.authenticates(server.keys / "stranger")
    assert not ok and "Permission denied (publickey)" in err, err
    assert server.authenticates(server.keys / "alice")[0]


def test_a_removed_key_or_withdrawn_volunteer_is_refused_once_the_keys_are_written_again(server):
    srv = server
    dora, eve = srv.new_key("dora"), srv.new_key("eve")
    srv.helpdesk(
        "--as",
        "chloe",
        "volunteer",
        "add",
        "dora",
        "--role",
        "volunteer",
        "--ssh-key",
        srv.public("dora"),
    )
    srv.helpdesk(
        "--as",
        "chloe",
        "volunteer",
        "add",
        "eve",
        "--role",
        "oncall",
        "--ssh-key",
        srv.public("eve"),
    )
    assert not srv.authenticates(dora)[0], "a key works only once authorized_keys is written again"
    srv.write_authorized_keys()
    assert srv.authenticates(dora)[0] and srv.authenticates(eve)[0]

    srv.helpdesk("--as", "chloe", "volunteer", "remove-key", "dora", srv.public("dora"))
    srv.helpdesk("--as", "chloe", "volunteer", "deactivate", "eve")
    assert srv.authenticates(dora)[0], (
        "authorized_keys still holds the key until it is written again"
    )
    text = srv.write_authorized_keys()
    assert "helpdesk:dora" not in text and "helpdesk:eve" not in text
    assert not srv.authenticates(dora)[0]
    assert not srv.authenticates(eve)[0]
    assert srv.authenticates(srv.keys / "alice")[0]
