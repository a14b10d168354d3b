"""Who a mail is for: the tickets our ``[policy #id]`` tag names, the addresses it was
written or delivered to, and the provider of a new request."""

from __future__ import annotations

import re

from sqlmodel import Session

from helpdesk.base.i18n import N_, _
from helpdesk.ingest.message import ParsedMail, addresses
from helpdesk.ingest.pipeline import Reject, Run
from helpdesk.ingest.routing import AccountRef
from helpdesk.storage.models import Ticket

NO_PROVIDER = N_("no provider for this address")
_TAG = re.compile(r"\[([a-z0-9][a-z0-9-]{0,63}) #(\d{1,12})\]", re.IGNORECASE)


def tagged_tickets(session: Session, subject: str | None):
    """The tickets a subject names by our ``[policy #id]`` tag, in order."""
    for match in _TAG.finditer(subject or ""):
        found = session.get(Ticket, int(match.group(2)))
        if found is not None and found.policy_key == match.group(1).lower():
            yield found


def recipients(mail: ParsedMail, headers: dict[str, str]) -> list[str]:
    """The addresses a mail was written or delivered to, lower-case."""
    found = list(mail.to_addrs) + list(mail.cc_addrs)
    for name in ("delivered-to", "x-original-to", "envelope-to"):
        if headers.get(name):
            found += [a for _n, a in addresses([headers[name]])]
    return [a.strip().lower() for a in found]


def choose_policy(
    mail: ParsedMail, headers: dict[str, str], run: Run
) -> tuple[str, list[AccountRef]]:
    """The provider of a new request and the sender's accounts with that provider."""
    d = run.directory
    senders = d.accounts_for_address(mail.from_addr)
    if run.policy:
        return run.policy, [r for r in senders if r.policy == run.policy]
    written_to = d.intake_policies(recipients(mail, headers))
    if len(written_to) == 1:
        policy = next(iter(written_to))
        return policy, [r for r in senders if r.policy == policy]
    candidates = (
        {r.policy for r in senders} & written_to if written_to else {r.policy for r in senders}
    )
    if len(candidates) == 1:
        policy = next(iter(candidates))
        return policy, [r for r in senders if r.policy == policy]
    if len(candidates) > 1:
        raise Reject(
            _(
                "the sender has accounts with several providers ({providers}) and wrote to none of their intake addresses"
            ).format(providers=", ".join(sorted(candidates)))
        )
    if written_to:
        raise Reject(
            _(
                "written to several providers ({providers}) by a sender known to none of them"
            ).format(providers=", ".join(sorted(written_to)))
        )
    raise Reject(_(NO_PROVIDER))
