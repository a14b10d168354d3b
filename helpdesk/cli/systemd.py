"""``helpdesk systemd [--install]``: the systemd units that run the helpdesk on a server.

    helpdesk systemd [--user helpdesk] [--program PATH]      print them
    helpdesk systemd --install [--dir /etc/systemd/system]   write them (root)

Six units, each confined with systemd's hardening options (a read-only system, no new
privileges, a private /tmp and devices, no kernel or clock access, a system-call filter, no
capabilities, files created 0600), writing only where the helpdesk writes:

- ``helpdesk-sweep.timer`` → ``helpdesk-sweep.service``: ``sweep``, then ``outbox send``
  (and ``audit anchor`` when the anchors' file is configured), every five minutes;
- ``helpdesk-ingest.timer`` → ``helpdesk-ingest.service``: ``ingest sources``, the mailboxes
  and Postfix logs ``helpdesk.toml`` lists, every five minutes;
- ``helpdesk-policyd.service``: Postfix's policy service;
- ``helpdesk-reset-page.service``: the password-reset page;
- ``helpdesk-serve.service``: ``serve --training``, the training database in a browser
  (on 127.0.0.1; it serves whoever reaches it, so never the production database).

The places written to are the service user's home (its data, cache and the sent Maildir by
default), and the folders of an SQLite database, a Maildir, the audit anchors and a policyd
socket that the configuration or the environment names. Every run takes its lock (see
``helpdesk.storage.locks``), so the timers may fire on several hosts sharing a PostgreSQL
database.
"""

from __future__ import annotations

import os
import pwd
import sys
from pathlib import Path

from helpdesk.base.errors import BadInput
from helpdesk.base.i18n import _
from helpdesk.cli.parser import command

DEFAULT_USER = "helpdesk"
DEFAULT_DIR = Path("/etc/systemd/system")
MARK = "# Written by 'helpdesk systemd'"
#: Where a home folder is hidden by ProtectHome=yes.
_HOMES = ("/home", "/root", "/run/user")


def add_parser(commands) -> None:
    """The ``systemd`` command (``helpdesk.cli.parser`` lists it)."""
    p = command(commands, "systemd", do_systemd)
    p.add_argument(
        "--install",
        action="store_true",
        help=_("write the units into the folder (--dir) instead of printing them"),
    )
    p.add_argument(
        "--dir",
        default=str(DEFAULT_DIR),
        help=_("where --install writes them (default {path})").format(path=DEFAULT_DIR),
    )
    p.add_argument(
        "--user",
        default=DEFAULT_USER,
        help=_("the system user the units run as (default {user})").format(user=DEFAULT_USER),
    )
    p.add_argument(
        "--program",
        help=_("the helpdesk command the units run (default: this one)"),
    )


def program() -> str:
    """The helpdesk command of the running installation: the script beside this Python
    (``/opt/helpdesk/bin/helpdesk``), else ``python -m helpdesk``."""
    beside = Path(sys.executable).parent / "helpdesk"
    if beside.is_file() and os.access(beside, os.X_OK):
        return _quote(str(beside.absolute()))
    return f"{_quote(str(Path(sys.executable).absolute()))} -m helpdesk"


def _setting(cfg, dotted: str, env: str = "") -> str:
    """A setting as the commands will see it: the environment, else the file."""
    if env and os.environ.get(env, "").strip():
        return os.environ[env].strip()
    value = cfg.get(dotted) if cfg is not None else None
    return "" if value is None else str(value)


def _home(user: str) -> Path:
    try:
        return Path(pwd.getpwnam(user).pw_dir)
    except KeyError:
        return Path("/srv") / user  # the README's set-up creates it there


def _group(user: str) -> str:
    """The user's primary group (``useradd --system helpdesk`` makes one of the same name)."""
    import grp

    try:
        return grp.getgrgid(pwd.getpwnam(user).pw_gid).gr_name
    except KeyError:
        return user


def write_paths(user: str, cfg=None) -> list[str]:
    """The folders the units may write to: the user's home, and those the settings name."""
    from helpdesk.storage import db

    paths = [_home(user)]
    url = _setting(cfg, "database.url", "HELPDESK_DB")
    if url:
        try:
            sqlite = db.sqlite_path(db.resolve_url(url))
        except Exception:  # noqa: BLE001 - an unreadable URL: 'config check' says why
            sqlite = None
        if sqlite is not None and str(sqlite) != ":memory:":
            paths.append(sqlite.parent)
    for dotted, env in (("smtp.maildir", "HELPDESK_MAILDIR"),):
        value = _setting(cfg, dotted, env)
        if value:
            paths.append(Path(value).expanduser())
    anchors = _setting(cfg, "paths.audit_anchors", "HELPDESK_AUDIT_ANCHORS")
    if anchors:
        paths.append(Path(anchors).expanduser().parent)
    listen = _setting(cfg, "policyd.listen", "HELPDESK_POLICYD_LISTEN")
    if listen.startswith("unix:"):
        paths.append(Path(listen[5:]).parent)
    out: list[str] = []
    for p in paths:
        text = str(p.absolute())
        if text not in out:
            out.append(text)
    return out


def _quote(path: str) -> str:
    """A path as a systemd setting holds it (spaces quoted, specifiers escaped)."""
    path = path.replace("%", "%%")
    if any(c.isspace() or c in "\"'\\" for c in path):
        raise BadInput(
            _("a path with spaces or quotes cannot go in a unit: {path}").format(path=path)
        )
    return path


def _hardening(user: str, home: Path, writable: list[str], *, network: bool = True) -> str:
    hidden = any(str(home) == h or str(home).startswith(h + "/") for h in _HOMES)
    families = "AF_UNIX AF_INET AF_INET6" if network else "AF_UNIX"
    lines = [
        f"User={user}",
        f"Group={_group(user)}",
        "UMask=0077",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        # A home under /home stays visible (read-only but for the paths below).
        f"ProtectHome={'read-only' if hidden else 'yes'}",
        *(f"ReadWritePaths=-{_quote(p)}" for p in writable),
        "PrivateTmp=yes",
        "PrivateDevices=yes",
        "ProtectKernelTunables=yes",
        "ProtectKernelModules=yes",
        "ProtectKernelLogs=yes",
        "ProtectControlGroups=yes",
        "ProtectClock=yes",
        "ProtectHostname=yes",
        "ProtectProc=invisible",
        "ProcSubset=pid",
        "RestrictNamespaces=yes",
        "RestrictRealtime=yes",
        "RestrictSUIDSGID=yes",
        "LockPersonality=yes",
        "RemoveIPC=yes",
        "CapabilityBoundingSet=",
        "AmbientCapabilities=",
        "SystemCallArchitectures=native",
        "SystemCallFilter=@system-service",
        "SystemCallFilter=~@privileged @resources",
        "SystemCallErrorNumber=EPERM",
        f"RestrictAddressFamilies={families}",
    ]
    return "\n".join(lines)


def units(user: str, prog: str, cfg=None) -> dict[str, str]:
    """The units, by file name."""
    home = _home(user)
    writable = write_paths(user, cfg)
    config_path = getattr(cfg, "path", None)
    env = f"Environment=HELPDESK_CONFIG={_quote(str(config_path))}\n" if config_path else ""
    hardening = _hardening(user, home, writable)
    after = "After=network-online.target postgresql.service\nWants=network-online.target\n"
    head = f"{MARK}; run it again after an upgrade. Local changes: systemctl edit UNIT.\n"

    def oneshot(description: str, commands: list[str], extra: str = "") -> str:
        runs = "".join(f"ExecStart={prog} {c}\n" for c in commands)
        return (
            f"{head}[Unit]\nDescription={description}\n{after}\n"
            f"[Service]\nType=oneshot\n{runs}TimeoutStartSec=30min\n{env}{extra}{hardening}\n"
        )

    def daemon(description: str, command: str, extra: str = "") -> str:
        return (
            f"{head}[Unit]\nDescription={description}\n{after}\n"
            f"[Service]\nExecStart={prog} {command}\nRestart=on-failure\nRestartSec=5s\n"
            f"{env}{extra}{hardening}\n\n[Install]\nWantedBy=multi-user.target\n"
        )

    def timer(description: str, calendar: str) -> str:
        return (
            f"{head}[Unit]\nDescription={description}\n\n"
            f"[Timer]\nOnCalendar={calendar}\nPersistent=true\nAccuracySec=10s\n\n"
            f"[Install]\nWantedBy=timers.target\n"
        )

    sweep = ["sweep", "outbox send"]
    anchors = _setting(cfg, "paths.audit_anchors", "HELPDESK_AUDIT_ANCHORS")
    if anchors:  # the chain's head, kept outside the database, after each sweep
        sweep.append(f"audit anchor --file {_quote(str(Path(anchors).expanduser().absolute()))}")
    logs = cfg.get("ingest.postfix_logs") if cfg is not None else None
    # Debian's /var/log/mail.log is root:adm 0640: the ingest reads it as a member of adm.
    ingest_extra = "SupplementaryGroups=adm\n" if logs else ""
    return {
        "helpdesk-sweep.service": oneshot(
            "helpdesk: what is due (timers, expiries, service actions), then the outbox",
            sweep,
        ),
        "helpdesk-sweep.timer": timer("helpdesk: sweep and outbox send, every 5 minutes", "*:0/5"),
        "helpdesk-ingest.service": oneshot(
            "helpdesk: read the mailboxes and logs of helpdesk.toml",
            ["ingest sources"],
            ingest_extra,
        ),
        "helpdesk-ingest.timer": timer("helpdesk: ingest, every 5 minutes", "*:2/5"),
        "helpdesk-policyd.service": daemon("helpdesk: policy service for Postfix", "policyd"),
        "helpdesk-reset-page.service": daemon("helpdesk: the password-reset page", "reset-page"),
        "helpdesk-serve.service": daemon(
            "helpdesk: the training database in a web browser (127.0.0.1)", "serve --training"
        ),
    }


def do_systemd(args, out) -> int:
    from helpdesk.base import config

    cfg = config.load()
    user = args.user
    if not user or not all(c.isalnum() or c in "._-" for c in user) or user[0] == "-":
        raise BadInput(_("--user: not a system user name: {user!r}").format(user=user))
    prog = _quote(args.program) if args.program else program()
    made = units(user, prog, cfg)
    if not args.install:
        if out.json:
            out.data({"units": made, "write_paths": write_paths(user, cfg)})
            return 0
        for name, text in made.items():
            sys.stdout.write(f"# {Path(args.dir) / name}\n{text}\n")
        return 0
    folder = Path(args.dir)
    if not folder.is_dir():
        raise BadInput(_("no such folder: {path}").format(path=folder))
    for name in made:  # check them all first: nothing is half-written
        target = folder / name
        if target.exists() and MARK not in target.read_text(errors="replace")[:200]:
            raise BadInput(
                _(
                    "{path} exists and was not written by 'helpdesk systemd': move it aside, or keep your changes in a drop-in (systemctl edit)"
                ).format(path=target)
            )
    for name, text in made.items():
        target = folder / name
        tmp = target.with_name(f".{name}.new")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o644)
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.chmod(tmp, 0o644)  # units are read by systemd and by admins; they hold no secret
        os.replace(tmp, target)
    if out.json:
        out.data({"written": [str(folder / n) for n in made]})
        return 0
    for name in made:
        out.line(_("written: {path}").format(path=folder / name))
    out.line(
        _("Then: systemctl daemon-reload && systemctl enable --now {units}").format(
            units="helpdesk-sweep.timer helpdesk-ingest.timer helpdesk-policyd.service"
        )
    )
    return 0
