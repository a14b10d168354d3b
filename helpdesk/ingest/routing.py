"""Who is who for an ingest run: which provider an address writes to, which account a sender,
a SASL login, an IP or a domain belongs to.

Read once per run (small providers have hundreds or thousands of accounts), then looked up in
memory. Sources, per policy pack and per account:

- the provider's ``intake`` (list of addresses the provider receives requests at) and
  ``contact`` (the address the policy text names, e.g. contact@wigii.org), ``mail_domains``
  (the domains whose DMARC reports concern the provider): pack parameters, or settings the
  admin gave with ``helpdesk policy set`` (``helpdesk.policy.provider_settings``);
- account ``email``, ``contacts`` and ``login``; account fields ``ips`` (addresses and networks
  the account sends from or is hosted on, "192.0.2.7, 2001:db8::/64") and ``domains``
  (its sites and mail domains), set with ``helpdesk account add LOGIN --field ips=...``.
"""

from __future__ import annotations

import hashlib
import ipaddress
from dataclasses import dataclass, field

from sqlmodel import Session, select

from helpdesk.base import networks
from helpdesk.policy import provider_settings
from helpdesk.storage.models import Account, Policy, Workflow
from helpdesk.base.untrusted import items


@dataclass(frozen=True, slots=True)
class AccountRef:
    id: int
    policy: str
    login: str
    email: str


@dataclass
class PolicyInfo:
    key: str
    name: str
    timezone: str
    lang: str
    params: dict
    queues: set[str]


def words(value: object) -> list[str]:
    """A list param or field given as a list or as a "a, b c" string, lower-cased."""
    return [i.lower() for i in items(value)]


@dataclass
class Directory:
    policies: dict[str, PolicyInfo] = field(default_factory=dict)
    intake: dict[str, set[str]] = field(default_factory=dict)  # address -> policy keys
    mail_domains: dict[str, set[str]] = field(default_factory=dict)  # domain -> policy keys
    by_address: dict[str, list[AccountRef]] = field(default_factory=dict)  # email and contacts
    by_login: dict[str, list[AccountRef]] = field(default_factory=dict)
    by_ip: dict[str, list[AccountRef]] = field(default_factory=dict)
    by_network: list[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, AccountRef]] = field(
        default_factory=list
    )
    by_domain: dict[str, list[AccountRef]] = field(default_factory=dict)
    _fingerprint: str | None = field(default=None, repr=False, compare=False)

    def fingerprint(self) -> str:
        """What routing rests on (providers' intake addresses and mail domains, the accounts'
        addresses, logins, domains and networks), as one digest: a quarantined item is tried
        again once it changed, since a setting or an account may now give it a home."""
        if self._fingerprint is None:
            h = hashlib.sha256()
            for part in (
                sorted((k, sorted(v)) for k, v in self.intake.items()),
                sorted((k, sorted(v)) for k, v in self.mail_domains.items()),
                sorted(self.by_address),
                sorted(self.by_login),
                sorted(self.by_domain),
                sorted(self.by_ip),
                sorted(str(net) for net, _ref in self.by_network),
            ):
                h.update(repr(part).encode("utf-8", "surrogatepass") + b"\0")
            self._fingerprint = h.hexdigest()[:16]
        return self._fingerprint

    # building

    @classmethod
    def load(cls, session: Session) -> "Directory":
        d = cls()
        queues: dict[str, set[str]] = {}
        for policy_key, queue in session.exec(select(Workflow.policy_key, Workflow.queue)):
            queues.setdefault(policy_key, set()).add(queue)
        configured = provider_settings.all_stored(session)
        for p in session.exec(select(Policy)):
            params = provider_settings.params(session, p, configured.get(p.key, {}))
            d.policies[p.key] = PolicyInfo(
                p.key, p.name, p.timezone, p.lang, params, queues.get(p.key, set())
            )
            for address in words(params.get("intake")) + words(params.get("contact")):
                d.intake.setdefault(address, set()).add(p.key)
            for domain in words(params.get("mail_domains")):
                d.mail_domains.setdefault(domain, set()).add(p.key)
        rows = session.exec(
            select(  # type: ignore[call-overload]  # sqlmodel types select() up to 4 columns
                Account.id,
                Account.policy_key,
                Account.login,
                Account.email,
                Account.contacts,
                Account.fields,
            )
        )
        for acc_id, policy, login, email, contacts, fields in rows:
            ref = AccountRef(acc_id, policy, login, (email or "").lower())
            for address in {a for a in [email or "", *(contacts or [])] if a}:
                d.by_address.setdefault(address.strip().lower(), []).append(ref)
            d.by_login.setdefault(login.strip().lower(), []).append(ref)
            fields = fields or {}
            for net in networks.lenient(fields.get("ips")):
                if net.num_addresses == 1:
                    d.by_ip.setdefault(str(net.network_address), []).append(ref)
                else:
                    d.by_network.append((net, ref))
            for domain in words(fields.get("domains")):
                d.by_domain.setdefault(domain.removeprefix("www."), []).append(ref)
        return d

    # looking up

    def intake_policies(self, addresses: list[str]) -> set[str]:
        found: set[str] = set()
        for address in addresses:
            found |= self.intake.get(address.strip().lower(), set())
        return found

    def accounts_for_address(self, address: str | None) -> list[AccountRef]:
        return list(self.by_address.get((address or "").strip().lower(), []))

    def accounts_for_login(self, login: str | None) -> list[AccountRef]:
        return list(self.by_login.get((login or "").strip().lower(), []))

    def accounts_for_sender(self, sender: str | None) -> list[AccountRef]:
        """A Postfix sender key (SASL login or envelope sender): login first, then address."""
        return self.accounts_for_login(sender) or self.accounts_for_address(sender)

    def accounts_for_ip(self, ip: str | None) -> list[AccountRef]:
        if not ip:
            return []
        try:
            address = ipaddress.ip_address(ip)
        except ValueError:
            return []
        found = list(self.by_ip.get(str(address), []))
        found += [
            ref for net, ref in self.by_network if address.version == net.version and address in net
        ]
        return found

    def accounts_for_domain(self, domain: str | None) -> list[AccountRef]:
        domain = (domain or "").strip().lower().rstrip(".").removeprefix("www.")
        return list(self.by_domain.get(domain, [])) if domain else []

    def policies_for_mail_domain(self, domain: str | None) -> set[str]:
        """Providers a DMARC report about ``domain`` concerns: the pack param
        ``mail_domains``, else the accounts that list it in ``domains``, else the
        providers of accounts whose address is at that domain (when only one)."""
        domain = (domain or "").strip().lower().rstrip(".")
        if not domain:
            return set()
        found = set(self.mail_domains.get(domain, set()))
        if found:
            return found
        found = {ref.policy for ref in self.accounts_for_domain(domain)}
        if found:
            return found
        at = "@" + domain
        found = {
            ref.policy
            for refs in self.by_address.values()
            for ref in refs
            if ref.email.endswith(at)
        }
        return found if len(found) == 1 else set()

    def policy(self, key: str) -> PolicyInfo | None:
        return self.policies.get(key)

    def has_queue(self, key: str, queue: str) -> bool:
        info = self.policies.get(key)
        return info is not None and queue in info.queues


def unique(refs: list[AccountRef]) -> AccountRef | None:
    """The one account of a lookup (the same account found twice counts once)."""
    distinct = {r.id: r for r in refs}
    return next(iter(distinct.values())) if len(distinct) == 1 else None
