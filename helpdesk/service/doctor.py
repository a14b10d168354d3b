"""``helpdesk doctor``: what a real set-up needs, checked, with how to fix each gap.

Each check gives a :class:`Finding`: ``ok``, ``warn`` (work goes on, something is worth a
look) or ``fail`` (something blocks work: mail cannot leave, a timer stopped, the audit
chain is damaged...). The CLI exits 1 when any finding is a ``fail``. Nothing is changed
and no mail is sent: the SMTP server is only connected to, the connectors only read.
"""

from __future__ import annotations

import stat
from dataclasses import asdict, dataclass, field
from pathlib import Path

from sqlalchemy import func
from sqlmodel import col, select

from helpdesk.base import clock, config
from helpdesk.base.errors import BadInput
from helpdesk.base.i18n import _

OK, WARN, FAIL = "ok", "warn", "fail"
#: An anchor older than this is said: the anchoring timer may have stopped.
ANCHOR_AGE = 2 * 24 * 3600


@dataclass
class Finding:
    check: str  # a stable key: database, migrations, file-mode, audit, anchors, ...
    status: str  # ok | warn | fail
    message: str
    fix: str = ""
    data: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)


def run(url: str, environ=None) -> list[Finding]:
    """Every check, in the order an admin fixes things: config, database, then the rest."""
    found: list[Finding] = []
    try:
        cfg = config.load(environ, fresh=True)
    except config.ConfigError as exc:
        found.append(
            Finding("config", FAIL, str(exc), _("correct the file; 'helpdesk config check' says"))
        )
        cfg = config.Config()
    else:
        found.append(
            Finding(
                "config",
                OK,
                _("configuration: {path}").format(path=cfg.path)
                if cfg.path
                else _("no helpdesk.toml: defaults and environment variables only"),
                data={"file": str(cfg.path) if cfg.path else None},
            )
        )
    if not _database(url, found):
        return found  # nothing else can be read
    from helpdesk.storage import db

    with db.read_session(url) as s:
        _audit(s, cfg, found)
        _providers(s, found)
        _runs(s, found)
        _stuck(s, found)
        _ssh(s, cfg, found)
    _smtp(environ, found)
    _connectors(cfg, url, found)
    return found


def blocked(found: list[Finding]) -> bool:
    return any(f.status == FAIL for f in found)


# --- the database ----------------------------------------------------------------------------


def _database(url: str, found: list[Finding]) -> bool:
    from helpdesk.policy import install
    from helpdesk.storage import db

    shown = db._safe(url)
    path = db.sqlite_path(url)
    try:
        if path is None or path.is_file():  # asking must not create an SQLite file
            from sqlalchemy import text

            with db.get_engine(url).connect() as connection:
                connection.execute(text("SELECT 1"))
        rev = install.current_revision(url)
    except Exception as exc:  # noqa: BLE001 - any driver's error: said, not raised
        first = str(getattr(exc, "orig", None) or exc).strip().splitlines()
        found.append(
            Finding(
                "database",
                FAIL,
                _("the database {url} cannot be reached: {error}").format(
                    url=shown, error=(first[0] if first else type(exc).__name__)[:300]
                ),
                _(
                    "check [database] url in helpdesk.toml (or HELPDESK_DB), that the server runs and that this user may connect"
                ),
            )
        )
        return False
    found.append(Finding("database", OK, _("database {url} reachable").format(url=shown)))
    if rev is None:
        found.append(
            Finding(
                "migrations",
                FAIL,
                _("the database is not initialised"),
                _("run 'helpdesk init'"),
            )
        )
        return False
    if rev != install.HEAD:
        found.append(
            Finding(
                "migrations",
                FAIL,
                _("the database schema is at {rev}, this helpdesk needs {head}").format(
                    rev=rev, head=install.HEAD
                ),
                _("run 'helpdesk init' to upgrade it (after a backup: 'helpdesk backup FILE')"),
                {"revision": rev, "head": install.HEAD},
            )
        )
        return False
    found.append(Finding("migrations", OK, _("schema up to date ({rev})").format(rev=rev)))
    if path is not None and str(path) != ":memory:":
        _file_mode(path, found)
    return True


def _file_mode(path: Path, found: list[Finding]) -> None:
    loose = []
    for p in (path, path.parent):
        try:
            mode = stat.S_IMODE(p.stat().st_mode)
        except OSError:
            continue
        if mode & 0o077:
            loose.append((p, mode))
    if loose:
        found.append(
            Finding(
                "file-mode",
                FAIL,
                _("personal data readable by others: {files}").format(
                    files=", ".join(f"{p} ({m:o})" for p, m in loose)
                ),
                _("run chmod 600 {file} and chmod 700 {folder}").format(
                    file=path, folder=path.parent
                ),
            )
        )
    else:
        found.append(
            Finding("file-mode", OK, _("{file}: mode 600 in a 700 folder").format(file=path))
        )


# --- the audit chain ----------------------------------------------------------------------------


def _audit(s, cfg: config.Config, found: list[Finding]) -> None:
    from helpdesk.base import files
    from helpdesk.storage import audit

    anchors: list = []
    path = cfg.value("paths.audit_anchors")
    anchor_problem = None
    if path:
        try:
            anchors, bad = audit.read_anchors(files.read_text(str(path)))
            if bad:
                anchor_problem = _("{path}: line(s) {lines} are not anchors").format(
                    path=path, lines=", ".join(map(str, bad[:10]))
                )
        except (BadInput, OSError) as exc:
            anchor_problem = str(exc)
    count, problems = audit.verify(s, anchors=anchors)
    if problems:
        found.append(
            Finding(
                "audit",
                FAIL,
                _("the audit chain is damaged: {what}").format(
                    what="; ".join(f"#{p.event_id}: {p.what}" for p in problems[:3])
                ),
                _(
                    "run 'helpdesk audit verify' for the whole list, and compare with a backup; tell the techadmins"
                ),
                {"events": count, "problems": len(problems)},
            )
        )
    else:
        found.append(
            Finding(
                "audit",
                OK,
                _("audit chain intact: {n} events").format(n=count),
                data={"events": count},
            )
        )
    fix_anchor = _(
        "set [paths] audit_anchors in helpdesk.toml and run 'helpdesk audit anchor' from a daily timer"
    )
    if not path:
        found.append(Finding("anchors", WARN, _("the audit chain is anchored nowhere"), fix_anchor))
    elif anchor_problem:
        found.append(Finding("anchors", WARN, anchor_problem, fix_anchor))
    elif not anchors:
        found.append(
            Finding(
                "anchors", WARN, _("{path}: no anchor written yet").format(path=path), fix_anchor
            )
        )
    else:
        last = max(anchors, key=lambda a: a.at)
        try:
            at = clock.parse_datetime(last.at)
        except clock.BadDate:
            at = None
        age = (clock.now() - at).total_seconds() if at else None
        data = {"last": last.at, "age_seconds": int(age) if age is not None else None}
        if age is None or age > ANCHOR_AGE:
            found.append(
                Finding(
                    "anchors",
                    WARN,
                    _(
                        "the last anchor is {days} day(s) old: the anchoring timer may have stopped"
                    ).format(days=int(age // 86400) if age is not None else "?"),
                    fix_anchor,
                    data,
                )
            )
        else:
            found.append(
                Finding(
                    "anchors",
                    OK,
                    _("last anchor {hours} h old").format(hours=int(age // 3600)),
                    data=data,
                )
            )


# --- the providers ------------------------------------------------------------------------------

#: A provider setting that, missing, holds mail (fail), or only weakens triage (warn).
PROVIDER_SETTINGS = {"mail_from": FAIL, "reset_url": FAIL, "intake": WARN}


def _providers(s, found: list[Finding]) -> None:
    from helpdesk.policy import provider_settings
    from helpdesk.storage.models import Policy

    policies = list(s.exec(select(Policy).order_by(Policy.key)))
    if not policies:
        found.append(
            Finding(
                "providers",
                FAIL,
                _("no provider's policy pack is loaded"),
                _("run 'helpdesk init --policy KEY'"),
            )
        )
        return
    for policy in policies:
        for row in provider_settings.view(s, policy):
            level = PROVIDER_SETTINGS.get(row["name"])
            if level is None:
                continue
            check = f"provider:{policy.key}:{row['name']}"
            if row["value"] in (None, "", []):
                found.append(
                    Finding(
                        check,
                        level,
                        _("{provider}: {setting} {missing}").format(
                            provider=policy.name, setting=row["name"], missing=row["missing"]
                        ),
                        _("run 'helpdesk policy set {key} {setting}=...'").format(
                            key=policy.key, setting=row["name"]
                        ),
                        {"provider": policy.key, "setting": row["name"]},
                    )
                )
            else:
                found.append(
                    Finding(
                        check,
                        OK,
                        f"{policy.name}: {row['name']} = {_said(row['value'])}",
                        data={
                            "provider": policy.key,
                            "setting": row["name"],
                            "source": row["source"],
                        },
                    )
                )


def _said(value) -> str:
    return ", ".join(map(str, value)) if isinstance(value, list) else str(value)


# --- timers -------------------------------------------------------------------------------------

TIMERS = {
    "sweep": "helpdesk sweep --quiet",
    "outbox-send": "helpdesk outbox send --quiet",
}


def _runs(s, found: list[Finding]) -> None:
    from helpdesk.storage import runs

    now = clock.now()
    for job, command in TIMERS.items():
        last = runs.last(s, job)
        late_iso, late_seconds = runs.LATE[job]
        fix = _(
            "run '{command}' from a timer (see 'helpdesk systemd' or the README's cron lines)"
        ).format(command=command)
        if last is None:
            found.append(
                Finding(
                    f"timer:{job}", FAIL, _("'{command}' never ran").format(command=command), fix
                )
            )
            continue
        try:
            at = clock.parse_datetime(last.get("finished") or "")
        except clock.BadDate:
            at = None
        age = (now - at).total_seconds() if at else None
        data = {"last": last.get("finished"), "ok": bool(last.get("ok")), "late_after": late_iso}
        if age is None or age > late_seconds:
            found.append(
                Finding(
                    f"timer:{job}",
                    FAIL,
                    _("'{command}' last ran {hours} h ago: late").format(
                        command=command, hours=int(age // 3600) if age is not None else "?"
                    ),
                    fix,
                    data,
                )
            )
        elif not last.get("ok"):
            found.append(
                Finding(
                    f"timer:{job}",
                    WARN,
                    _("'{command}' ran {minutes} min ago but not everything went through").format(
                        command=command, minutes=int(age // 60)
                    ),
                    _("run '{command}' without --quiet to see what").format(
                        command=command.replace(" --quiet", "")
                    ),
                    data,
                )
            )
        else:
            found.append(
                Finding(
                    f"timer:{job}",
                    OK,
                    _("'{command}' last ran {minutes} min ago").format(
                        command=command, minutes=int(age // 60)
                    ),
                    data=data,
                )
            )


# --- what waits for a person --------------------------------------------------------------------


def _stuck(s, found: list[Finding]) -> None:
    from helpdesk.storage.models import Outbox, ServiceAction

    mails = _pairs(
        s.exec(
            select(Outbox.status, func.count())
            .where(col(Outbox.status).in_(("held", "failed", "uncertain")))
            .group_by(Outbox.status)
        )
    )
    actions = _pairs(
        s.exec(
            select(ServiceAction.status, func.count())
            .where(col(ServiceAction.status).in_(("failed", "uncertain")))
            .group_by(ServiceAction.status)
        )
    )
    fixes = {
        "held": _(
            "'helpdesk outbox list --status held' says the missing setting; once given, the next 'outbox send' delivers them"
        ),
        "failed": _(
            "'helpdesk outbox list --status failed', then 'helpdesk outbox retry ID' once the cause is fixed"
        ),
        "uncertain": _(
            "'helpdesk outbox list --status uncertain': check the SMTP server's log, then 'outbox mark-sent ID' or 'outbox retry ID'"
        ),
    }
    words = {"held": _("held"), "failed": _("failed"), "uncertain": _("uncertain")}
    for status in ("held", "failed", "uncertain"):
        n = mails.get(status, 0)
        if n:
            found.append(
                Finding(
                    f"mails:{status}",
                    FAIL if status == "held" else WARN,
                    _("{n} mail(s) {status}").format(n=n, status=words[status]),
                    fixes[status],
                    {"count": n},
                )
            )
    for status in ("failed", "uncertain"):
        n = actions.get(status, 0)
        if n:
            found.append(
                Finding(
                    f"actions:{status}",
                    WARN,
                    _("{n} service action(s) {status}").format(n=n, status=words[status]),
                    _(
                        "'helpdesk actions list --status {status}', then 'actions retry ID' or 'actions mark-done ID'"
                    ).format(status=status),
                    {"count": n},
                )
            )
    if not mails and not actions:
        found.append(Finding("stuck", OK, _("no mail or service action waits for a person")))


# --- SSH ----------------------------------------------------------------------------------------


def _ssh(s, cfg: config.Config, found: list[Finding]) -> None:
    import re

    from helpdesk.base.roles import login_problem
    from helpdesk.service import sshkeys
    from helpdesk.storage.models import Volunteer

    wanted = {
        (v.login, k)
        for v in s.exec(select(Volunteer).where(Volunteer.active))
        if login_problem(v.login) is None
        for k in v.ssh_keys
        if sshkeys.is_key_line(k)
    }
    path = Path(str(cfg.value("ssh.authorized_keys") or "~/.ssh/authorized_keys")).expanduser()
    fix = _(
        "run 'helpdesk volunteer authorized-keys > {path}' as the helpdesk's system user (after every change of volunteers or keys)"
    ).format(path=path)
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        text = None
    except OSError as exc:
        found.append(Finding("ssh", WARN, f"{path}: {exc.strerror}", fix))
        return
    if text is None:
        if wanted:
            found.append(
                Finding(
                    "ssh",
                    WARN,
                    _("{path} does not exist: no volunteer can connect over SSH").format(path=path),
                    fix,
                )
            )
        else:
            found.append(Finding("ssh", OK, _("no SSH key registered, no authorized_keys")))
        return
    present = set()
    key = re.compile(
        r"(?:^|\s)(" + "|".join(map(re.escape, sshkeys.KEY_TYPES)) + r") ([A-Za-z0-9+/]+={0,2})"
    )
    login = re.compile(r"--as[ =]'?([^\s'\"]+)")
    for line in text.splitlines():
        if line.lstrip().startswith("#"):
            continue
        k, who = key.search(line), login.search(line)
        if k and who:
            present.add((who.group(1), f"{k.group(1)} {k.group(2)}"))
    extra = present - wanted
    missing = wanted - present
    data = {
        "file": str(path),
        "extra": sorted(l for l, _k in extra),
        "missing": sorted(l for l, _k in missing),
    }
    if extra:
        found.append(
            Finding(
                "ssh",
                FAIL,
                _("{path} still lets in keys withdrawn or unknown: {logins}").format(
                    path=path, logins=", ".join(data["extra"])
                ),
                fix,
                data,
            )
        )
    elif missing:
        found.append(
            Finding(
                "ssh",
                WARN,
                _("{path} lacks the keys of: {logins}").format(
                    path=path, logins=", ".join(data["missing"])
                ),
                fix,
                data,
            )
        )
    else:
        found.append(
            Finding(
                "ssh", OK, _("{path} matches the volunteers' keys").format(path=path), data=data
            )
        )


# --- SMTP and the connectors --------------------------------------------------------------------


def _smtp(environ, found: list[Finding]) -> None:
    from helpdesk.outgoing import delivery

    try:
        cfg = delivery.DeliveryConfig.from_env(environ)
        cfg.check()
    except BadInput as exc:
        found.append(Finding("smtp", FAIL, str(exc), _("correct [smtp] in helpdesk.toml")))
        return
    if not cfg.smtp_host:
        found.append(
            Finding(
                "smtp",
                WARN,
                _("no SMTP server: mails are written to the local Maildir {path}, not sent").format(
                    path=cfg.maildir_path()
                ),
                _("set [smtp] host in helpdesk.toml"),
            )
        )
        return
    problem = delivery.probe(cfg)
    if problem:
        found.append(
            Finding(
                "smtp",
                FAIL,
                problem,
                _("check [smtp] in helpdesk.toml and that {server} accepts this host").format(
                    server=cfg.describe()
                ),
            )
        )
    else:
        found.append(
            Finding("smtp", OK, _("{server} answers (no mail sent)").format(server=cfg.describe()))
        )


def _connectors(cfg: config.Config, url: str, found: list[Finding]) -> None:
    from helpdesk import connectors

    for name, settings in cfg.connectors.items():
        try:
            conn = connectors.build(name, settings, cfg)
            if hasattr(conn, "db_url"):
                conn.db_url = url
            answer = conn.check()
        except (connectors.ConnectorError, config.ConfigError, BadInput) as exc:
            found.append(
                Finding(
                    f"connector:{name}",
                    FAIL,
                    f"{name}: {exc}",
                    _("'helpdesk connectors check' tells more; check [connectors.{name}]").format(
                        name=name
                    ),
                )
            )
        else:
            found.append(Finding(f"connector:{name}", OK, f"{name}: {answer}"))


def _pairs(rows) -> dict:
    return {k: v for k, v in rows}
