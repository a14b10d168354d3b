"""``helpdesk doctor`` and ``helpdesk metrics`` (``helpdesk.cli.operations`` registers them)."""

from __future__ import annotations

import sys

from helpdesk.base.i18n import _


def _url(args) -> str:
    from helpdesk.storage import db

    return db.resolve_url(getattr(args, "db", None))


def do_doctor(args, out) -> int:
    from helpdesk.base import config
    from helpdesk.service import doctor

    try:
        url = _url(args)  # the database may be named in helpdesk.toml
    except config.ConfigError as exc:
        found = [
            doctor.Finding(
                "config",
                doctor.FAIL,
                str(exc),
                _("correct the file; 'helpdesk config check' says"),
            )
        ]
    else:
        found = doctor.run(url)
    blocked = doctor.blocked(found)
    if out.json:
        out.data(
            {
                "now": _now(),
                "ok": not blocked,
                "findings": [f.as_dict() for f in found],
            }
        )
        return 1 if blocked else 0
    marks = {"ok": ("✔", None), "warn": ("!", "yellow"), "fail": ("✘", "red")}
    for f in found:
        mark, style = marks[f.status]
        out.line(f"{mark} {f.message}", style=style)
        if f.fix and f.status != "ok":
            out.line("    → " + f.fix)
    fails = sum(f.status == "fail" for f in found)
    warns = sum(f.status == "warn" for f in found)
    if blocked:
        out.line(
            _("{n} problem(s) block work, {w} warning(s).").format(n=fails, w=warns),
            style="bold red",
        )
    elif warns:
        out.line(_("Nothing blocks work; {w} warning(s).").format(w=warns), style="bold")
    else:
        out.line(_("All is in order."), style="bold")
    return 1 if blocked else 0


def _now() -> str:
    from helpdesk.base import clock

    return clock.iso(clock.now())


def do_metrics(args, out) -> int:
    from helpdesk.cli import common
    from helpdesk.service import metrics

    with common.session(args) as s:
        text = metrics.render(metrics.families(s))
    sys.stdout.write(text)
    return 0
