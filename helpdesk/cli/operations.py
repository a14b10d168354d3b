"""Running the helpdesk for real: the commands an admin and the timers use around the work.

    helpdesk config show [--json] [FILE]   each effective value and where it came from
    helpdesk config check [FILE]           the file is valid, or the line that is not
    helpdesk doctor [--json]               what the set-up lacks, and how to fix it
    helpdesk metrics                       OpenMetrics text for node_exporter's textfile collector

and ``--quiet`` on the commands timers run (``sweep``, ``outbox send``, ``actions run``,
``ingest ...``): nothing printed when there is nothing to say; the exit status still says
whether the run went through. ``helpdesk.cli.parser`` lists its commands.
"""

from __future__ import annotations

from pathlib import Path

from helpdesk.base.errors import BadInput
from helpdesk.base.i18n import _
from helpdesk.cli.parser import command, group


#: The commands a timer runs: (command, sub-command) that take --quiet.
def add_config(commands) -> None:
    """``config show|check``."""
    cf = group(commands, "config")
    for name, func, text in (
        ("show", do_config, _("each effective setting and where it comes from (secrets masked)")),
        ("check", do_config, _("check helpdesk.toml; an error names its line")),
    ):
        p = command(cf, name, func, text)
        p.add_argument(
            "file",
            nargs="?",
            help=_("the file to read (default: the one the helpdesk would use)"),
        )


def add_doctor(commands) -> None:
    command(commands, "doctor", lambda args, out: _doctor_cli().do_doctor(args, out))


def add_metrics(commands) -> None:
    command(commands, "metrics", lambda args, out: _doctor_cli().do_metrics(args, out))


def _doctor_cli():
    from helpdesk.cli import doctor  # doctor, metrics

    return doctor


def quiet(args) -> bool:
    return bool(getattr(args, "quiet", False))


# --- helpdesk config -------------------------------------------------------------------------


def _load(args):
    from helpdesk.base import config

    if getattr(args, "file", None):
        path = Path(args.file).expanduser()
        from helpdesk.base import files
        from helpdesk.base.errors import BadInput

        try:
            text = files.read_text(path)  # a FIFO or a device is refused, not waited on
        except (BadInput, UnicodeDecodeError) as exc:
            raise config.ConfigError(
                _("cannot read {path}: {error}").format(path=files.shown(path), error=exc)
            ) from None
        return config.parse(text, path), "argument"
    path, why = config.find()
    return config.load(fresh=True), why


def do_config(args, out) -> int:
    from helpdesk.base import config

    cfg, why = _load(args)
    if getattr(args, "db", None):
        cfg.override("database.url", args.db, "--db")
    if args.sub == "check":
        return _check(cfg, why, out)
    rows = [_row(cfg, key) for key in config.KEYS.values()]
    connectors = {
        name: {
            k: {"value": _mask(k, v), "origin": cfg.origin(f"connectors.{name}.{k}")}
            for k, v in settings.items()
        }
        for name, settings in cfg.connectors.items()
    }
    if out.json:
        out.data(
            {
                "file": str(cfg.path) if cfg.path else None,
                "found_by": why,
                "settings": rows,
                "connectors": connectors,
            }
        )
        return 0
    out.line(_("Configuration file: {path}").format(path=_file_said(cfg, why)))
    out.table(
        ["setting", "value", "origin"],
        [
            [
                r["key"],
                _shown(r["value"] if r["value"] is not None else r["default"]),
                _origin_said(r["origin"]),
            ]
            for r in rows
        ],
    )
    for name, settings in connectors.items():
        out.line("")
        out.line(f"[connectors.{name}]", style="bold")
        out.table(
            ["setting", "value", "origin"],
            [[k, _shown(v["value"]), v["origin"]] for k, v in settings.items()],
        )
    return 0


def _row(cfg, key) -> dict:
    value = cfg.value(key.dotted)
    origin = cfg.origin(key.dotted)
    return {
        "key": key.dotted,
        "value": _mask(key.dotted, value),
        "origin": origin,
        "source": _source(cfg, key, origin),
        "env": key.env or None,
        "flag": key.flag or None,
        "default": _(key.default) if isinstance(key.default, str) else key.default,
        "help": _(key.help),
    }


def _source(cfg, key, origin: str) -> str:
    if origin == "default":
        return "default"
    if key.env and origin == key.env:
        return "env"
    if cfg.path is not None and origin.startswith(str(cfg.path)):
        return "file"
    return "flag"


def _mask(key: str, value):
    """Secrets never shown: a password in a URL becomes ``****``."""
    if isinstance(value, list):
        return [_mask(key, v) for v in value]
    if isinstance(value, dict):
        return {k: _mask(k, v) for k, v in value.items()}
    if isinstance(value, str) and "://" in value and "@" in value:
        from urllib.parse import urlsplit

        try:
            parts = urlsplit(value)
        except ValueError:
            return "****"
        if parts.password is not None:
            netloc = parts.netloc.replace(f":{parts.password}@", ":****@", 1)
            return parts._replace(netloc=netloc).geturl()
    return value


def _shown(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ", ".join(v.get("url", "?") if isinstance(v, dict) else str(v) for v in value) or "-"
    return str(value)


def _origin_said(origin: str) -> str:
    return _("default") if origin == "default" else origin


def _file_said(cfg, why: str) -> str:
    from helpdesk.base import config

    if cfg.path is None:
        return _("none (looked for {env}, {system}, {user})").format(
            env=config.ENV, system=config.SYSTEM_PATH, user=config.user_path()
        )
    return f"{cfg.path} ({why})"


def _check(cfg, why: str, out) -> int:
    """Errors of syntax and value were raised while reading (with the line); here: keys no
    module knows (a typo), and secret files that cannot be read or are readable by others."""
    from helpdesk.base import config

    problems = [
        _("{where}: unknown setting {key}").format(
            where=f"{cfg.path}:{line}" if line else cfg.path, key=key
        )
        for key, line in config.unknown_keys(cfg)
    ]
    for dotted, path in _secret_files(cfg):
        try:
            config.read_secret(Path(str(path)).expanduser(), where=dotted)
        except config.ConfigError as exc:
            line = cfg.key_line(dotted.split("[")[0])
            problems.append(f"{cfg.path}:{line}: {exc}" if line else f"{cfg.path}: {exc}")
    if cfg.path is not None:
        from helpdesk import connectors

        for name, settings in cfg.connectors.items():
            try:
                connectors.build(name, settings, cfg)
            except (connectors.ConnectorError, config.ConfigError, BadInput) as exc:
                line = cfg.key_line(f"connectors.{name}")
                problems.append(f"{cfg.path}:{line}: {exc}")
    if out.json:
        out.data(
            {
                "file": str(cfg.path) if cfg.path else None,
                "found_by": why,
                "ok": not problems,
                "problems": problems,
            }
        )
    elif problems:
        for p in problems:
            out.line(p, style="red")
    else:
        out.line(_("{path}: valid.").format(path=_file_said(cfg, why)))
    if problems:
        raise BadInput(_("{n} problem(s) in the configuration").format(n=len(problems)))
    return 0


def _secret_files(cfg):
    """Every ``*_file`` key of the file that names a secret, with its dotted name."""

    def walk(node, prefix):
        if isinstance(node, dict):
            for k, v in node.items():
                if k.endswith("_file") and k != "config_file" and isinstance(v, str):
                    if any(s in k for s in ("password", "secret", "key", "token")):
                        yield f"{prefix}{k}", v
                else:
                    yield from walk(v, f"{prefix}{k}.")
        elif isinstance(node, list):
            for n, item in enumerate(node, 1):
                yield from walk(item, f"{prefix[:-1]}[{n}].")

    yield from walk(cfg.data, "")


# --- the timers' output -------------------------------------------------------------------------


def print_delivery(args, out, report) -> int:
    """What ``outbox send`` did, for people: what was delivered and, when some mail could not
    be, what and how many; a Maildir is said as such. Exit 1 when a mail could not be delivered."""
    if quiet(args) and report.nothing:
        return report.exit_code
    if out.json:
        out.data({**report.as_dict(), "local": report.local, "exit": report.exit_code})
        return report.exit_code
    counts = {
        "sent": len(report.sent),
        "retried": len(report.retried),
        "failed": len(report.failed),
        "held": len(report.held),
        "uncertain": len(report.uncertain),
    }
    if report.nothing:
        out.line(_("Outbox: nothing to deliver."))
        return report.exit_code
    if report.local:
        path = report.transport[len("maildir:") :]
        out.line(
            _(
                "Outbox: {n} mail(s) written to the local Maildir {path}, not sent: no SMTP server is configured ([smtp] host in helpdesk.toml)."
            ).format(n=counts["sent"], path=path),
            style="yellow",
        )
    elif counts["sent"]:
        out.line(
            _("Outbox via {transport}: {n} mail(s) sent.").format(
                transport=report.transport, n=counts["sent"]
            )
        )
    stuck = {k: v for k, v in counts.items() if k != "sent" and v}
    if stuck:
        words = {
            "retried": _("{n} to retry (not delivered, tried again later)"),
            "failed": _("{n} failed"),
            "held": _("{n} held (a setting is missing)"),
            "uncertain": _("{n} uncertain (may or may not have left)"),
        }
        out.line(
            _("Not delivered: {what}.").format(
                what=", ".join(words[k].format(n=v) for k, v in stuck.items())
            ),
            style="red",
        )
        said = {
            "retried": _("to retry"),
            "failed": _("failed"),
            "held": _("held"),
            "uncertain": _("uncertain"),
        }
        for kind in ("retried", "failed", "held", "uncertain"):
            for e in getattr(report, kind):
                out.line(f"  #{e['outbox']} ({said[kind]}) {e['to']}: {e['error']}", style="red")
        out.line(
            "  "
            + _(
                "See 'helpdesk outbox list --status STATUS'; 'helpdesk doctor' checks the SMTP server and the settings."
            )
        )
    return report.exit_code
