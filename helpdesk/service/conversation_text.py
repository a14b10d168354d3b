"""How a ticket's conversation reads as text, for ``ticket show`` and the TUI alike: the
heading of each message (by words and signs, not colour alone: ▼ received, ▲ sent, ✎ note),
its attachments, and what the conversation says about the ticket as a whole. Times in the
provider's zone, the zone named."""

from __future__ import annotations

from helpdesk.base.i18n import _


def local_time(at: str | None, tz: str) -> str:
    """A UTC ISO time as the provider's local time, the zone named."""
    from zoneinfo import ZoneInfo

    from helpdesk.base import clock

    if not at:
        return ""
    return (
        clock.as_utc(clock.parse_datetime(at)).astimezone(ZoneInfo(tz)).strftime("%Y-%m-%d %H:%M")
        + f" ({tz})"
    )


def summary_lines(view: dict) -> list[tuple[str, str | None]]:
    """What the conversation says about the ticket as a whole: where it was merged, why its
    queue was chosen, the accounts a complaint names, whether it waits on the requester."""
    lines: list[tuple[str, str | None]] = []
    if view.get("merged_into"):
        lines.append((_("merged into #{id}").format(id=view["merged_into"]), "bold"))
    if view.get("classification"):
        c = view["classification"]
        words = ", ".join(f"«{w}»" for w in c["words"]) or _("no procedure's words")
        lines.append(
            (_("classified as {queue}: {words}").format(queue=c["queue"], words=words), None)
        )
    if view.get("candidates"):
        lines.append(
            (
                _("accounts the complaint names (none chosen): {logins}").format(
                    logins=", ".join(view["candidates"])
                ),
                None,
            )
        )
    if view.get("waiting_on") == "requester":
        lines.append((_("waiting for the requester's answer"), "bold"))
    return lines


def message_heading(m: dict, tz: str = "UTC") -> str:
    """One line that says what a message is by words, not by colour alone."""
    if m["direction"] == "in":
        who = m["from"] or "?"
        head = _("▼ received from {who}").format(who=who)
    elif m["direction"] == "out":
        head = _("▲ sent to {to}").format(to=", ".join(m["to"]) or "?")
        if m.get("author"):
            head += " " + _("by {who}").format(who=m["author"])
        if m.get("status"):
            head += f" [{status_word(m['status'])}]"
    else:
        head = _("✎ note by {who}").format(who=m.get("author") or "?")
    return f"#{m['id']} {local_time(m['at'], tz)}  {head}"


def status_word(status: str) -> str:
    return {
        "pending": _("waiting to leave"),
        "sending": _("leaving"),
        "sent": _("sent"),
        "failed": _("failed"),
        "held": _("held"),
        "uncertain": _("uncertain"),
        "bounced": _("bounced"),
    }.get(status, status)


def attachment_line(a: dict) -> str:
    return _("attachment: {name} ({type}, {size} bytes, sha256 {sha})").format(
        name=a.get("name") or "-",
        type=a.get("type") or "?",
        size=a.get("size", 0),
        sha=(a.get("sha256") or "")[:16],
    )
