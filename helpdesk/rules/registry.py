"""The named guards and effects that policy packs refer to.

A pack says ``guards = [{ name = "requester_is_contact" }]``; this module maps that name
to a Python function. Guards return ``None`` when they pass, or the reason they refuse.
Effects change the ticket, the account, deadlines and the outbox.
"""

from __future__ import annotations

from typing import Callable

GUARDS: dict[str, Callable] = {}
EFFECTS: dict[str, Callable] = {}


def guard(name: str):
    def register(fn: Callable) -> Callable:
        GUARDS[name] = fn
        return fn

    return register


def effect(name: str):
    def register(fn: Callable) -> Callable:
        EFFECTS[name] = fn
        return fn

    return register


def load() -> None:
    """Import the modules that register guards and effects."""
    from helpdesk.rules import effects, guards  # noqa: F401
