"""What the backend answers the screens: plain data (dataclasses, dicts, tuples).

The screens hold these, so this module and everything it names import no database layer
and no Textual.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from helpdesk.base import clock, queues
from helpdesk.base.i18n import _
from helpdesk.storage.filters import Row
from helpdesk.base.roles import Actor

QUEUES = queues.ALL  # the dashboard's keys 1 to 5
#: How many of a ticket's latest events the ticket screen reads (its history is newest first).
HISTORY = 100


@dataclass(frozen=True)
class StateInfo:
    key: str
    label: str
    kind: str
    position: int


@dataclass
class Info:
    """What the app learns once, at start."""

    url: str
    training: bool
    actor: Actor | None  # None: read-only
    actor_name: str
    notice: str  # why the app is read-only, when it is
    policies: dict[str, tuple[str, str]]  # key -> (name, timezone)
    queue_titles: dict[str, str]
    states: dict[tuple[int, str], StateInfo]  # (workflow id, key) -> state
    queue_states: dict[str, list[tuple[str, str]]]  # queue -> [(key, label)] across packs
    volunteers: list[str]
    scenario: str = ""  # on a training database: the scenario's title
    scenario_tz: str = "Europe/Paris"  # and its provider's time zone (the clock is shown in it)
    short_names: dict[str, str] = field(default_factory=dict)  # key -> the pack's short name

    @property
    def read_only(self) -> bool:
        return self.actor is None

    def state_label(self, workflow_id: int, key: str) -> str:
        s = self.states.get((workflow_id, key))
        if (
            s is None and key == "merged"
        ):  # a ticket merged into another (helpdesk.service.conversation.merge)
            return _("merged")
        return s.label if s else key

    def provider(self, key: str) -> str:
        """A provider as a person reads it where room is short (a list's column, a header,
        the dashboard): its pack's short name, never its key while the pack is known."""
        return self.short_names.get(key) or self.policies.get(key, (key, ""))[0] or key


@dataclass
class Dashboard:
    counts: dict[str, dict[str, int]]
    mine: list[Row]
    due_today: list[Row]
    recent: list[dict]
    now: datetime
    actions_waiting: int = 0  # failed or uncertain service actions (helpdesk.outgoing.actions)
    actions: list[dict] = field(
        default_factory=list
    )  # the oldest of them, each with a line to show
    # The soonest dates the texts make binding (service.binding_soonest), with ``tz``;
    # ``counts[queue]["binding"]`` says how many open tickets carry one.
    binding: list[dict] = field(default_factory=list)


@dataclass
class Preview:
    """What an action would do, computed by applying it in a transaction rolled back."""

    action: str
    label: str
    from_state: str
    to_state: str
    steps: list[dict]  # the events: this action then any automatic step
    mails: list[dict]  # to, subject, body, lang, template
    deadlines: list[dict]  # name, at, status, action: the dates set or changed
    account: str | None
    account_status: tuple[str, str] | None  # (before, after) when it changes
    reveal: int  # how many one-time secrets would be shown
    output: int  # how many pieces of material (logs) would be shown
    linked: list[int] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    actions: list[str] = field(default_factory=list)  # service actions it queues, one line each


@dataclass
class Applied:
    ticket_id: int
    state_label: str
    mails: list[dict]
    reveal: list[dict]
    output: list[dict]


def localise(moment: datetime | None, tz: str, with_time: bool = True) -> str:
    if moment is None:
        return ""
    from zoneinfo import ZoneInfo

    local = clock.as_utc(moment).astimezone(ZoneInfo(tz))
    return local.strftime("%Y-%m-%d %H:%M" if with_time else "%Y-%m-%d")


def parse_iso(value: str | None) -> datetime | None:
    return clock.parse_datetime(value) if value else None


@dataclass
class ClockMoved:
    """A move of a training database's clock, and what sweep did at the new moment."""

    step: str
    before: datetime
    after: datetime
    sweep: dict  # helpdesk.service.sweep.SweepReport.as_dict(): taken, opened, refused, redacted…


@dataclass
class Started:
    """A training database put back at a scenario's start: its tickets by role."""

    scenario: str
    tickets: dict[str, int]
