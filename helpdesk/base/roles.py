"""Roles and what each may do.

``volunteer`` is first line; ``oncall`` may also take emergency and suspension steps;
``techadmin`` may also read logs and evidence; ``trainer`` works only on training
databases, where it may demonstrate every step. ``system`` is the clock (sweep, timers).
"""

from __future__ import annotations

from dataclasses import dataclass

ROLES = ("volunteer", "oncall", "techadmin", "trainer")
RANK = {"volunteer": 1, "oncall": 2, "techadmin": 3}
SYSTEM = "system"


@dataclass(frozen=True)
class Actor:
    """Who acts: a volunteer's login and role, or the system (the clock)."""

    login: str
    role: str

    @property
    def is_system(self) -> bool:
        return self.role == SYSTEM


SYSTEM_ACTOR = Actor(SYSTEM, SYSTEM)


def rank(role: str, training: bool) -> int:
    if role == SYSTEM:
        return 99
    if role == "trainer":
        return RANK["techadmin"] if training else 0
    return RANK.get(role, 0)


def may(role: str, required: str, training: bool) -> bool:
    return rank(role, training) >= RANK.get(required, 99)
