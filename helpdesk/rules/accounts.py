"""Rules a provider's text sets on accounts themselves, checked on every path that changes
an account (``account add``, ``account import``, ``account contact``, the TUI): one function
per rule, here, so that no path can miss one.

- Le PIC, "Adhérents ayant un site": a member keeps at least one technical and one
  administrative contact; "Nous vous demanderons toutefois un autre contact technique ou
  administratif pour votre association tant qu'elle restera adhérente au PIC" (pack param
  ``contact_replacement`` names the citation).
- Weentime CGU art. 3: "Chaque Client dispose d'un et un seul Compte Administrateur" (pack
  param ``one_admin_per_client`` names the citation).
"""

from __future__ import annotations

from sqlmodel import Session, select

from helpdesk.base import clock
from helpdesk.base.errors import Refused
from helpdesk.base.i18n import _
from helpdesk.storage.models import Account, Policy

CLOSED_STATUSES = ("deactivated", "erased")


def _citation(policy: Policy, key: str) -> tuple[str, str]:
    entry = (policy.citations or {}).get(key) or {}
    return entry.get("ref", ""), entry.get("text", "")


def normalise_contacts(contacts: list[str] | None) -> list[str] | None:
    """Contact addresses as stored: trimmed, lower-case, no blank entry (a blank is no
    contact: ``--contact ""`` removes, it does not replace)."""
    if contacts is None:
        return None
    return list(dict.fromkeys(c.strip().lower() for c in contacts if c and c.strip()))


def membership_lasts(policy: Policy, acc: Account) -> bool:
    end = (acc.fields or {}).get("membership-end")
    return not (end and clock.parse_day(end) < clock.local_day(clock.now(), policy.timezone))


def check_contacts_kept(
    session: Session, acc: Account, old_contacts: list[str], old_fields: dict
) -> None:
    """Le PIC: no change removes a member's contact (an address, or a named technical or
    administrative contact field ``contact-*``) without a replacement while its membership
    lasts. ``acc`` holds the new values, ``old_*`` the ones before the change."""
    policy = session.get(Policy, acc.policy_key)
    cite = (policy.params or {}).get("contact_replacement") if policy else None
    if (
        not cite
        or acc.kind != "member"
        or acc.status in CLOSED_STATUSES
        or not membership_lasts(policy, acc)
    ):
        return
    new = normalise_contacts(acc.contacts) or []
    old = normalise_contacts(old_contacts) or []
    removed = [c for c in old if c not in new]
    added = [c for c in new if c not in old]
    fields = acc.fields or {}
    blanked = [
        k
        for k, v in old_fields.items()
        if k.startswith("contact-") and str(v).strip() and not str(fields.get(k) or "").strip()
    ]
    if len(removed) > len(added) or blanked:
        ref, text = _citation(policy, cite)
        raise Refused(
            "contact-replacement",
            _(
                "{login} is a member: removing {removed} needs a replacement contact while the membership lasts"
            ).format(login=acc.login, removed=", ".join(removed + blanked)),
            ref,
            text,
        )


def check_one_admin(session: Session, acc: Account) -> None:
    """Weentime art. 3: a client (``org``) has one and only one administrator account."""
    policy = session.get(Policy, acc.policy_key)
    cite = (policy.params or {}).get("one_admin_per_client") if policy else None
    if not cite or acc.kind != "admin" or acc.status in CLOSED_STATUSES:
        return
    client = (acc.org or "").strip().lower()
    if not client:
        return
    for other in session.exec(
        select(Account).where(
            Account.policy_key == acc.policy_key,
            Account.kind == "admin",
            Account.login != acc.login,
        )
    ):
        if (other.org or "").strip().lower() == client and other.status not in CLOSED_STATUSES:
            ref, text = _citation(policy, cite)
            raise Refused(
                "one-admin-per-client",
                _(
                    "{client} already has its administrator account ({login}): a client has one and only one"
                ).format(client=acc.org, login=other.login),
                ref,
                text,
            )
