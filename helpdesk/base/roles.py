"""Roles and what each may do.

``volunteer`` is first line; ``oncall`` may also take emergency and suspension steps;
``techadmin`` may also read logs and evidence; ``trainer`` works only on training
databases, where it may demonstrate every step. ``system`` is the clock (sweep, timers).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

ROLES = ("volunteer", "oncall", "techadmin", "trainer")
RANK = {"volunteer": 1, "oncall": 2, "techadmin": 3}
SYSTEM = "system"

#: The names the core writes in the audit trail for its own steps (the clock, the mail
#: intake, retention, a restore...) and the placeholders of unidentified readers. None of
#: them can be a volunteer, be given to ``--as`` or ``HELPDESK_USER``: no login is above
#: the rules.
RESERVED_LOGINS = frozenset({SYSTEM, "intake"})

#: A login: a letter or digit, then letters, digits, '.', '_' or '-'; at most 64 characters
#: (the column's width). No spaces, no control characters, nothing a shell or an
#: ``authorized_keys`` line would read.
LOGIN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def login_problem(login) -> str | None:
    """Why ``login`` cannot name a volunteer, or None. (Messages are translated by callers.)"""
    if not isinstance(login, str) or not LOGIN.fullmatch(login):
        return "pattern"
    if login.lower() in RESERVED_LOGINS:
        return "reserved"
    return None


@dataclass(frozen=True)
class Actor:
    """Who acts: a volunteer's login and role, or the system (the clock). ``policies`` is
    the scope of a volunteer's role: the providers it covers (empty: all of them)."""

    login: str
    role: str
    policies: tuple = ()

    @property
    def is_system(self) -> bool:
        return self.role == SYSTEM

    def covers(self, policy_key: str | None) -> bool:
        """Whether this actor's role reaches the provider ``policy_key`` (None: no provider)."""
        return not self.policies or policy_key is None or policy_key in self.policies


SYSTEM_ACTOR = Actor(SYSTEM, SYSTEM)


def rank(role: str, training: bool) -> int:
    if role == SYSTEM:
        return 99
    if role == "trainer":
        return RANK["techadmin"] if training else 0
    return RANK.get(role, 0)


def may(role: str, required: str, training: bool) -> bool:
    return rank(role, training) >= RANK.get(required, 99)
