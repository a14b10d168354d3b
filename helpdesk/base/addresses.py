"""Mail addresses and header text we write: one plain address, header-safe text.

Whatever the data holds (an account's contact, a provider's setting), what reaches a mail
header is one addr-spec, or header text without newline or control character.
"""

from __future__ import annotations

import re
from email.headerregistry import Address


class BadAddress(ValueError):
    """Not one plain mail address; the message says what is wrong with it."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


_HEADER_UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")
_ADDR_UNSAFE = set(' \t\r\n<>,;:"()[]\\')


def header_text(value: str, limit: int = 900) -> str:
    """Header-safe text: no newline, no control character, whatever the data held."""
    value = " ".join(_HEADER_UNSAFE.sub(" ", value or "").split())
    return value[:limit]


def mailbox_address(addr: str, display: str = "") -> Address:
    """A single plain addr-spec (no list, no comment, no group), as an ``Address``."""
    addr = (addr or "").strip()
    if not addr or any(c in _ADDR_UNSAFE or ord(c) < 32 for c in addr) or addr.count("@") != 1:
        raise BadAddress(f"not a single mail address: {header_text(addr, 100)!r}")
    local, domain = addr.split("@")
    if not local or not domain or domain.startswith(".") or domain.endswith(".") or ".." in domain:
        raise BadAddress(f"not a single mail address: {header_text(addr, 100)!r}")
    if not local.isascii():
        raise BadAddress(f"internationalised address not supported: {header_text(addr, 100)!r}")
    if not domain.isascii():
        try:
            domain = domain.encode("idna").decode("ascii")
        except UnicodeError:
            raise BadAddress(f"bad domain in address: {header_text(addr, 100)!r}") from None
    try:
        return Address(
            display_name=header_text(display, 200), username=local, domain=domain.lower()
        )
    except (ValueError, TypeError) as exc:
        raise BadAddress(f"not a mail address: {header_text(addr, 100)!r} ({exc})") from None
