"""What a training database adds to the screens: the guided walkthrough beside a scenario's
ticket, the banner's scenario and clock, and what the clock did when the trainer moved it.

Everything shown comes from ``helpdesk.training.sandbox`` (through the backend): the steps, the
article behind each in French, what to check, done and current flags. Nothing is decided
here.
"""

from __future__ import annotations

from rich.text import Text

from helpdesk.base.i18n import _, n_
from helpdesk.base.i18n import N_
from helpdesk.base.labels import choice, label
from screens.safe import assemble, plain

#: The trainer's clock keys: (key, step given to ``training.advance``, label).
CLOCK_STEPS = (
    ("f5", "+1d", N_("+1 day")),
    ("f6", "+1w", N_("+1 week")),
    ("f7", "+1m", N_("+1 month")),
    ("f8", "next", N_("next deadline")),
)


def walkthrough_text(
    w: dict, *, with_articles: bool = True, play: tuple[str | None, str] | None = None
) -> Text:
    """The scenario's steps for this ticket: done ✔, current ▶ (with what to check and the
    article), to come ○. Scenario text is ours, but shown as plain text all the same.
    ``play``: (the trainer at the keys or None, the login acting): the current step then
    tells a trainer how to play the volunteer it names."""
    lines = [
        assemble((_("Walkthrough") + " — ", "bold"), (w["title"], "bold")),
        assemble((_("Goal") + ": ", "dim"), plain(w["goal"])),
    ]
    for step in w["steps"]:
        who = _("the clock") if step["who"] == "system" else step["who"]
        if step["done"]:
            mark, style = "✔", ""
        elif step["current"]:
            mark, style = "▶", "bold reverse"
        else:
            mark, style = "○", "dim"
        if step["refused"]:
            what = _("show that it is refused ({rule})").format(rule=label("rule", step["refused"]))
        else:
            what = "→ " + (step["expect_label"] or step["expect"])
        before = ""
        if step["clock"]:
            before = _("clock {step}, then ").format(
                step=_("to the next deadline")
                if step["clock"] == "next-deadline"
                else step["clock"]
            )
        lines.append(
            assemble(
                f" {mark} {step['index']}. ",
                (step["label"], style),
                (f"  ({before}{who}) ", "dim"),
                (what, "dim" if not step["current"] else ""),
            )
        )
        if step["current"]:
            if step["check"]:
                lines.append(assemble("     ", (_("Check") + ": ", "bold"), plain(step["check"])))
            if step["citation"]:
                lines.append(assemble("     ", ("§ ", "bold"), (step["citation"], "italic")))
            if with_articles and step["citation_text"]:
                lines.append(assemble("     « ", (step["citation_text"], "italic"), " »"))
            trainer, acting = play or (None, "")
            if trainer and step["who"] not in ("system", trainer):
                role = label("role", step["role"])
                lines.append(
                    assemble(
                        "     ",
                        ("p ", "bold reverse"),
                        " ",
                        _("you play {who} ({role}): p to be yourself again").format(
                            who=step["who"], role=role
                        )
                        if acting == step["who"]
                        else _(
                            "play {who} ({role}) for this step: a refusal counts only when seen as that role"
                        ).format(who=step["who"], role=role),
                    )
                )
    if w.get("off_path"):
        taken = ", ".join(f"{o['action']} ({o['actor']})" for o in w["off_path"])
        lines.append(
            assemble(
                ("! ", "bold"), _("Taken outside the expected path: {steps}").format(steps=taken)
            )
        )
    if w.get("finished"):
        lines.append(Text("✔ " + _("Scenario complete: every step was taken."), style="bold"))
    return Text("\n").join(lines)


def banner_text(scenario: str, now_local: str) -> tuple[Text, Text]:
    """What the training banner adds: the scenario (after the warning, on its line) and a
    line with the clock and the trainer's clock keys. Each stays on one line."""
    keys = "  ".join(f"{key.upper()} {_(label)}" for key, _step, label in CLOCK_STEPS)
    title = assemble("  ", (scenario or "", "bold"), one_line=True)
    line = assemble((_("Clock") + ": ", ""), (now_local, "bold"), " · ", keys, one_line=True)
    for t in (title, line):
        t.no_wrap, t.overflow = True, "ellipsis"
    return title, line


def clock_move_text(move, tz_name: str) -> Text:
    """What sweep did when the clock moved (a ``ClockMoved``): steps taken, tickets opened,
    refusals."""
    from helpdesk.tui_api.views import localise

    report = move.sweep
    lines = [
        assemble(
            (_("Clock") + ": ", "bold"),
            localise(move.before, tz_name),
            " → ",
            (localise(move.after, tz_name), "bold"),
        )
    ]
    if not (report["taken"] or report["opened"] or report["refused"] or report["redacted"]):
        lines.append(Text(_("Nothing was due: the clock had nothing to do."), style="dim"))

    def where(row: dict) -> str:
        return f"#{row['ticket']} " if row.get("ticket") else f"{row.get('account', '?')} "

    for t in report["taken"]:
        lines.append(
            assemble(
                "  ✔ ",
                where(t),
                (str(t.get("action_label") or t.get("action", "")), "bold"),
                f" → {t.get('state_label') or t.get('state') or ''}",
            )
        )
    for o in report["opened"]:
        lines.append(
            assemble(
                "  + ",
                where(o),
                _("opened"),
                f" ({o.get('account', '')}: {choice('reason', o.get('reason', ''))})",
            )
        )
    for r in report["refused"]:
        lines.append(
            assemble(
                "  ✘ ",
                where(r),
                str(r.get("action_label") or r.get("action", "")),
                "  ",
                str(r.get("reason") or ""),
            )
        )
    if report["redacted"]:
        lines.append(
            Text(
                n_(
                    "Personal data redacted in {n} ticket.",
                    "Personal data redacted in {n} tickets.",
                    len(report["redacted"]),
                ).format(n=len(report["redacted"]))
            )
        )
    return Text("\n").join(lines)
