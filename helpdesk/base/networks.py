"""The ``ips`` field of an account: the IPv4/IPv6 addresses and CIDR networks it sends from
or is hosted on ("192.0.2.7, 2001:db8::/64"). Reports naming a source address (ARF
Source-IP, an IP in an abuse mail) find the account whose address or network holds it.

Checked when an account is added or imported (:func:`normalise`: a bad word is refused,
naming it); read leniently by ingestion (:func:`lenient`), so that a value stored before
the check existed never stops a run.
"""

from __future__ import annotations

import ipaddress

from helpdesk.base.errors import BadInput
from helpdesk.base.i18n import _
from helpdesk.base.untrusted import items

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse(value: object) -> list[Network]:
    """Every word an address or a network; host bits of a network are dropped
    (192.0.2.7/24 is 192.0.2.0/24). Raises BadInput naming the first bad word."""
    nets: list[Network] = []
    for word in items(value):
        try:
            net = ipaddress.ip_network(word, strict=False)
        except ValueError:
            raise BadInput(
                _(
                    "field ips: {word!r} is not an IP address or a CIDR network (192.0.2.7, 2001:db8::/64)"
                ).format(word=word)
            ) from None
        if net.prefixlen == 0:
            raise BadInput(_("field ips: {word!r} would hold every address").format(word=word))
        if net not in nets:
            nets.append(net)
    return nets


def normalise(value: object) -> str:
    """The stored form: canonical addresses and networks, comma-separated."""
    return ", ".join(
        str(n.network_address) if n.num_addresses == 1 else str(n) for n in parse(value)
    )


def lenient(value: object) -> list[Network]:
    """The words that are addresses or networks; the others are skipped."""
    nets = []
    for word in items(value):
        try:
            nets.append(ipaddress.ip_network(word, strict=False))
        except ValueError:
            continue
    return nets
