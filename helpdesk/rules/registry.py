"""The named guards and effects that policy packs refer to.

A pack says ``guards = [{ name = "requester_is_contact" }]``; this module maps that name
to a Python function. Guards return ``None`` when they pass, or the reason they refuse.
Effects change the ticket, the account, deadlines and the outbox. Importing this module
imports both, so the maps are complete.
"""

from __future__ import annotations

from helpdesk.rules import effects, guards, service_actions  # noqa: F401 - they register their names
from helpdesk.rules.naming import EFFECTS, GUARDS  # noqa: F401 - the maps
