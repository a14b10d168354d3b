"""Ticket fields: declared per workflow (name, type, choices), validated on the way in."""

from __future__ import annotations

import re
from typing import Any

from helpdesk.base import clock
from helpdesk.base.errors import BadInput
from helpdesk.base.i18n import _
from helpdesk.base.untrusted import clean

TRUE = {"yes", "y", "true", "1", "oui", "o", "on"}
FALSE = {"no", "n", "false", "0", "non", "off", ""}
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def parse_pairs(pairs: list[str] | None) -> dict[str, str]:
    """``["k=v", ...]`` from the command line into a dict."""
    out: dict[str, str] = {}
    for pair in pairs or []:
        if "=" not in pair:
            raise BadInput(_("field must be written name=value: {pair!r}").format(pair=pair))
        key, value = pair.split("=", 1)
        key = key.strip()
        if not key:
            raise BadInput(_("field must be written name=value: {pair!r}").format(pair=pair))
        out[key] = value
    return out


def coerce(name: str, spec: dict, value: Any, tz: str) -> Any:
    kind = spec.get("type", "string")
    if value is None:
        return None
    if kind == "bool":
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in TRUE:
            return True
        if text in FALSE:
            return False
        raise BadInput(
            _("field {name}: yes or no expected, not {value!r}").format(name=name, value=value)
        )
    if kind == "int":
        try:
            return int(str(value).strip())
        except ValueError:
            raise BadInput(
                _("field {name}: a whole number expected, not {value!r}").format(
                    name=name, value=value
                )
            ) from None
    if kind == "float":
        try:
            return float(str(value).strip())
        except ValueError:
            raise BadInput(
                _("field {name}: a number expected, not {value!r}").format(name=name, value=value)
            ) from None
    if kind == "date":
        try:
            return clock.parse_day(str(value)).isoformat()
        except clock.BadDate:
            raise BadInput(
                _("field {name}: a date YYYY-MM-DD expected, not {value!r}").format(
                    name=name, value=value
                )
            ) from None
    if kind == "datetime":
        try:
            return clock.iso(clock.parse_datetime(str(value), tz))
        except clock.BadDate:
            raise BadInput(
                _("field {name}: an ISO date-time expected, not {value!r}").format(
                    name=name, value=value
                )
            ) from None
    text = clean(str(value)).strip()
    if kind == "choice":
        choices = spec.get("choices", [])
        if text not in choices:
            raise BadInput(
                _("field {name}: one of {choices} expected, not {value!r}").format(
                    name=name, choices=", ".join(choices), value=text
                )
            )
    if kind == "email" and text and not EMAIL.match(text):
        raise BadInput(
            _("field {name}: an e-mail address expected, not {value!r}").format(
                name=name, value=text
            )
        )
    return text


def validate(
    declared: dict, given: dict[str, Any], tz: str, *, metadata_only: bool = False
) -> dict:
    """Check names against the workflow's declared fields and convert the values."""
    out: dict[str, Any] = {}
    for name, value in given.items():
        spec = declared.get(name)
        if spec is None:
            known = ", ".join(sorted(declared)) or "-"
            message = _("unknown field {name!r} (known: {known})").format(name=name, known=known)
            if metadata_only:
                message += " — " + _(
                    "alerts of this queue hold figures and metadata only, never message content"
                )
            raise BadInput(message)
        out[name] = coerce(name, spec, value, tz)
    return out


def missing_required(declared: dict, values: dict) -> list[str]:
    return [
        n for n, spec in declared.items() if spec.get("required") and values.get(n) in (None, "")
    ]
