"""How a guard or an effect gets the name that policy packs refer to.

``@guard("requester_is_contact")`` above a function in ``guards`` makes it the guard a pack
names ``requester_is_contact``; ``@effect`` likewise for ``effects``. ``registry`` imports
both modules, so the maps below are full once it is imported.
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
