"""Labels for internal keys: what a person reads instead of ``respond-by``, ``pending``,
``waiting``, ``request`` or ``prior_exchange_or_emergency``.

The labels live in ``data/labels.toml``, in French and in English, by kind (``deadline``,
``deadline-status``, ``mail-status``, ``account-status``, ``state-kind``, ``sanction``,
``event``, ``rule``, ``choice.<field>``). ``label(kind, key)`` gives the label in the
current language, or the key itself when there is none: ``missing()`` lists those, and the
test that walks every screen of the demo fails on any.
"""

from __future__ import annotations

import tomllib
from functools import lru_cache

from helpdesk.base.i18n import _, pick
from helpdesk.base.paths import data_dir

#: Keys asked for that have no label (kind, key): the demo walk test reads it.
_missing: set[tuple[str, str]] = set()


@lru_cache(maxsize=1)
def table() -> dict[str, dict[str, dict]]:
    with (data_dir() / "labels.toml").open("rb") as f:
        raw = tomllib.load(f)
    out: dict[str, dict[str, dict]] = {}
    for kind, entries in raw.items():
        if kind == "choice":
            for field_name, values in entries.items():
                out[f"choice.{field_name}"] = values
        else:
            out[kind] = entries
    return out


def label(kind: str, key: str | None, lang: str | None = None) -> str:
    """The label of ``key`` among ``kind``; the key itself if it has none (and noted)."""
    if not key:
        return ""
    entry = table().get(kind, {}).get(key)
    if entry is None:
        _missing.add((kind, key))
        return key
    return pick(entry, lang)


def has(kind: str, key: str) -> bool:
    return key in table().get(kind, {})


def choice(field_name: str, value: object, lang: str | None = None) -> str:
    """A field's value as a person reads it: a choice's label, else the value."""
    if isinstance(value, str) and f"choice.{field_name}" in table():
        return label(f"choice.{field_name}", value, lang)
    return "" if value is None else str(value)


def event(action: str, step_labels: dict[str, str], lang: str | None = None) -> str:
    """What a history line says was done: the step's label from the workflow, else the
    event's label here (``read-logs``, ``mail-sent``, ``open``…)."""
    if action in step_labels:
        return step_labels[action]
    return label("event", action, lang)


def missing() -> set[tuple[str, str]]:
    return set(_missing)


def forget_missing() -> None:
    _missing.clear()


def timer_note(name: str, at_iso: str) -> str:
    """The note of a step the clock took for a timer: ``name: ISO`` (stored as is; a screen
    shows it with :func:`read_timer_note`, labelled and in local time)."""
    return f"{name}: {at_iso}"


def read_timer_note(note: str) -> tuple[str, str] | None:
    """``(deadline name, ISO moment)`` if ``note`` is a timer's note, else None."""
    name, sep, at = (note or "").partition(": ")
    if sep and has("deadline", name) and at[:4].isdigit() and "T" in at:
        return name, at
    return None


def evidence_heading(item: dict, lang: str | None = None) -> str:
    """The line above a piece of evidence read on a ticket (CLI and TUI alike)."""

    kind = item.get("kind")
    return (
        "--- "
        + _("evidence {id} ({kind}, sha256 {digest})").format(
            id=item.get("evidence"),
            kind=label("evidence-kind", kind, lang) if has("evidence-kind", kind or "") else kind,
            digest=str(item.get("sha256") or "")[:12],
        )
        + " ---"
    )
