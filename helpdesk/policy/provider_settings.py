"""A provider's operational settings: the values its policy text does not give.

A pack (``data/policies/<key>.toml``) holds what the provider's text says: Wigii's texts
give ``contact@wigii.org``, Le PIC's ``picca@le-pic.org``, so their packs name them. Where a
text gives nothing (Indigos' charter names no address, no text names a password-reset
page), the admin sets the value, per provider, in the database::

    helpdesk policy set indigos mail_from=entraide@indigos.example reset_url=https://cloud.indigos.example/reset?t=
    helpdesk policy set indigos intake="support@indigos.example, abuse@indigos.example"
    helpdesk policy set indigos reset_url=          # an empty value removes the setting
    helpdesk policy show indigos                    # each setting, its value and where it comes from

A setting overrides the pack's value; a pack's value overrides the process-wide fallbacks
(``HELPDESK_MAIL_FROM``, ``HELPDESK_RESET_URL``); a mail that needs a value nobody gave is
held, with the command to run in its reason. Values are checked on the way in (one
address, an https URL, domains, ISO-8601 durations) and pack values are checked the same way
when a pack loads. Settings live in the ``meta`` table (``settings:<policy key>``, JSON), so
``helpdesk backup`` carries them and loading a new version of a pack keeps them. Each change
is an audited ``policy-settings`` event; changing them needs the techadmin role.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from sqlmodel import Session, col, select

from helpdesk.base.addresses import BadAddress, mailbox_address
from helpdesk.storage import audit
from helpdesk.base import clock, config
from helpdesk.base.errors import BadInput
from helpdesk.base.i18n import _
from helpdesk.storage.models import Meta, Policy
from helpdesk.base.untrusted import items

PREFIX = "settings:"
#: No provider's text gives a number (Wigii's art. 6 says "une longueur minimale"): 12, as
#: the CNIL recommends for a password that is the only factor.
PASSWORD_MIN_LENGTH = 12
PASSWORD_LENGTH_BOUNDS = (8, 64)


def N_(message: str) -> str:  # marks a message for extraction; translated where shown
    return message


@dataclass(frozen=True)
class Setting:
    name: str
    kind: str  # email | emails | https-prefix | domains | duration | count
    help: str
    missing: str = ""  # what happens while nobody gives a value
    default: str | None = None  # used when neither the admin nor the pack gives a value


SETTINGS = {
    s.name: s
    for s in (
        Setting(
            "mail_from",
            "email",
            N_("address the provider's mails are sent from (else HELPDESK_MAIL_FROM)"),
            N_("not set: the provider's mails are held"),
        ),
        Setting(
            "reset_url",
            "https-prefix",
            N_(
                "https address of the reset page; the one-time secret is appended to it (else HELPDESK_RESET_URL)"
            ),
            N_("not set: reset-link mails are held"),
        ),
        Setting(
            "password_min_length",
            "count",
            N_(
                "fewest characters the reset page accepts for a new password (the directory may ask more)"
            ),
            default=str(PASSWORD_MIN_LENGTH),
        ),
        Setting(
            "intake",
            "emails",
            N_(
                "addresses requests are written to, besides the pack's contact: they tell an incoming mail's provider"
            ),
            N_(
                "not set: only the pack's contact address, if any, and the sender's account tell a request's provider"
            ),
        ),
        Setting(
            "mail_domains",
            "domains",
            N_("mail domains of the provider: DMARC reports about them concern it"),
            N_("not set: DMARC reports find the provider by its accounts' domains only"),
        ),
        Setting(
            "quarantine_retention",
            "duration",
            N_(
                "quarantined input is deleted after this period (the shortest of all providers applies)"
            ),
            default="P90D",
        ),
        Setting(
            "evidence_retention",
            "duration",
            N_(
                "raw input kept on no ticket, and the reset page's record of a limited client's address, is deleted after this period (the shortest of all providers applies)"
            ),
            default="P90D",
        ),
    )
}

ENV_FALLBACK = {
    "mail_from": "HELPDESK_MAIL_FROM",
    "reset_url": "HELPDESK_RESET_URL",
}  # read by delivery
#: The same fallbacks in helpdesk.toml ([mail] from, reset_url), under the variables.
CONFIG_FALLBACK = {"mail_from": "mail.from", "reset_url": "mail.reset_url"}

_DOMAIN = re.compile(
    r"(?=.{1,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]{0,62}"
)


def _address(name: str, value: str) -> str:
    try:
        return mailbox_address(value).addr_spec
    except BadAddress:
        raise BadInput(
            _("{name}: one e-mail address expected, not {value!r}").format(name=name, value=value)
        ) from None


def _domain(name: str, value: str) -> str:
    domain = value.strip().lower().rstrip(".")
    try:
        ascii_ = domain.encode("idna").decode("ascii")
    except UnicodeError:
        ascii_ = ""
    if not _DOMAIN.fullmatch(ascii_):
        raise BadInput(
            _("{name}: a domain name expected, not {value!r}").format(name=name, value=value)
        )
    return domain


def check(name: str, value) -> str | list[str]:
    """The value of setting ``name`` as stored, or BadInput saying what is wrong."""
    spec = SETTINGS.get(name)
    if spec is None:
        raise BadInput(
            _("unknown setting {name!r} (settings: {known})").format(
                name=name, known=", ".join(SETTINGS)
            )
        )
    if spec.kind == "email":
        return _address(name, str(value).strip())
    if spec.kind == "emails":
        found = [_address(name, v) for v in items(value)]
        if not found:
            raise BadInput(
                _("{name}: one e-mail address expected, not {value!r}").format(
                    name=name, value=value
                )
            )
        return found
    if spec.kind == "domains":
        found = [_domain(name, v) for v in items(value)]
        if not found:
            raise BadInput(
                _("{name}: a domain name expected, not {value!r}").format(name=name, value=value)
            )
        return found
    if spec.kind == "count":
        low, high = PASSWORD_LENGTH_BOUNDS
        text = str(value).strip()
        if not text.isdigit() or not low <= int(text) <= high:
            raise BadInput(
                _("{name}: a whole number from {low} to {high} expected, not {value!r}").format(
                    name=name, low=low, high=high, value=text
                )
            )
        return str(int(text))
    if spec.kind == "https-prefix":
        return check_reset_url(str(value).strip(), name)
    text = str(value).strip()
    try:
        delta = clock.parse_duration(text)
    except clock.BadDate:
        raise BadInput(
            _("{name}: an ISO-8601 duration expected (P90D, P1Y), not {value!r}").format(
                name=name, value=text
            )
        ) from None
    if text.startswith("-") or not any(
        (delta.years, delta.months, delta.days, delta.hours, delta.minutes, delta.seconds)
    ):
        raise BadInput(
            _("{name}: a duration longer than zero expected, not {value!r}").format(
                name=name, value=text
            )
        )
    return text


def check_reset_url(value: str, name: str = "reset_url") -> str:
    bad = BadInput(
        _(
            "{name}: an https address expected, to which the one-time secret is appended (https://host/reset?token=), not {value!r}"
        ).format(name=name, value=value)
    )
    if not value or any(c.isspace() or ord(c) < 32 for c in value):
        raise bad
    try:
        parts = urlsplit(value)
    except ValueError:
        raise bad from None
    if parts.scheme.lower() != "https" or not parts.hostname or parts.username or parts.password:
        raise bad
    return value


# --- stored values --------------------------------------------------------------------------


def stored(session: Session, policy_key: str) -> dict:
    row = session.get(Meta, PREFIX + policy_key)
    return _decode(row.value) if row is not None else {}


def all_stored(session: Session) -> dict[str, dict]:
    """Every provider's settings, in one query (policy key -> settings)."""
    rows = session.exec(select(Meta).where(col(Meta.key).startswith(PREFIX)))
    return {row.key[len(PREFIX) :]: _decode(row.value) for row in rows}


def _decode(value: str) -> dict:
    try:
        data = json.loads(value or "{}")
    except ValueError:
        return {}
    return {k: v for k, v in data.items() if k in SETTINGS} if isinstance(data, dict) else {}


def params(session: Session, policy: Policy | None, settings: dict | None = None) -> dict:
    """The pack's parameters with the admin's settings over them."""
    if policy is None:
        return {}
    return {
        **(policy.params or {}),
        **(stored(session, policy.key) if settings is None else settings),
    }


def password_min_length(session: Session, policy: Policy) -> int:
    """The fewest characters a new password of this provider may have."""
    try:
        minimum = check("password_min_length", value(session, policy, "password_min_length"))
        return int(minimum) if isinstance(minimum, (int, str)) else PASSWORD_MIN_LENGTH
    except BadInput:
        return PASSWORD_MIN_LENGTH


def value(session: Session, policy: Policy, name: str):
    """A setting's value: the admin's, else the pack's, else its default (None: nobody gave one)."""
    return params(session, policy).get(name, SETTINGS[name].default)


def change(session: Session, policy_key: str, values: dict[str, str], actor: str) -> dict:
    """Set (or, with an empty value, remove) settings of one provider; audited."""
    if session.get(Policy, policy_key) is None:
        raise BadInput(_("unknown policy {key!r}").format(key=policy_key))
    if not values:
        raise BadInput(
            _("give at least one NAME=VALUE (settings: {known})").format(known=", ".join(SETTINGS))
        )
    current = stored(session, policy_key)
    before = dict(current)
    for name, raw in values.items():
        if str(raw).strip() == "":
            if name not in SETTINGS:
                check(name, raw)  # says the name is unknown
            current.pop(name, None)
        else:
            current[name] = check(name, raw)
    row = session.get(Meta, PREFIX + policy_key) or Meta(key=PREFIX + policy_key)
    row.value = json.dumps(current, ensure_ascii=False, sort_keys=True)
    session.add(row)
    changed = {
        k: [before.get(k), current.get(k)]
        for k in sorted(set(before) | set(current))
        if before.get(k) != current.get(k)
    }
    if changed:
        audit.record(
            session,
            actor=actor,
            action="policy-settings",
            data={"policy": policy_key, "changed": changed},
        )
    return changed


def view(session: Session, policy: Policy) -> list[dict]:
    """Each setting of a provider: value, where it comes from, the pack's note, what it is for."""
    mine = stored(session, policy.key)
    pack = policy.params or {}
    out = []
    for name, spec in SETTINGS.items():
        if name in mine:
            value_, source = mine[name], "setting"
        elif name in pack:
            value_, source = pack[name], "pack"
        elif spec.default is not None:
            value_, source = spec.default, "default"
        elif name in CONFIG_FALLBACK and (fallback := config.load().value(CONFIG_FALLBACK[name])):
            value_, source = str(fallback).strip(), config.load().origin(CONFIG_FALLBACK[name])
        else:
            value_, source = None, ""
        out.append(
            {
                "name": name,
                "value": value_,
                "source": source,
                "note": pack.get(f"{name}_note", ""),
                "help": _(spec.help),
                "missing": _(spec.missing) if value_ is None and spec.missing else "",
            }
        )
    return out
