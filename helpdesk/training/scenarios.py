"""Training scenarios: ``data/scenarios/<key>.toml``, read strictly against the policy packs.

A scenario is one lesson: a provider (a policy pack), a queue, a start moment on the
provider's calendar, its starting data (accounts, the tickets to open, steps already taken)
and the expected path — ordered steps, each with who takes it, what the volunteer checks
first, an optional move of the training clock before it, and the state it leads to; or a
step the trainer shows being refused, with the rule expected to refuse it. The article
behind a step is not written here: it is the citation of the pack's transition.

Loading is strict: an unknown provider, queue, action, state, field, rule, volunteer or key
is an error naming the file and the element, so a scenario cannot half-load.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from pathlib import Path

from helpdesk.base import clock
from helpdesk.policy import packs
from helpdesk.base.errors import BadInput
from helpdesk.base.i18n import pick
from helpdesk.base.paths import data_dir
from helpdesk.base.roles import SYSTEM

#: The volunteers of every training database: (login, role). Names come from the demo.
VOLUNTEERS = (("alice", "volunteer"), ("bob", "oncall"), ("chloe", "techadmin"), ("tom", "trainer"))
#: Who opens a ticket besides a volunteer: the mail intake (``system``) or the scans of ``sweep``.
OPENERS = ("system", "sweep")
#: Rules the engine itself applies, besides a transition's named guards.
ENGINE_RULES = ("role", "state", "checklist", "clock-only", "training-only")
#: A move of the training clock: an ISO-8601 duration, ``+1d``/``+1w``/``+1m``/``+1y``, or the next deadline.
CLOCK_MOVE = re.compile(r"^(next|next-deadline|\+\d+[dwmy]|-?P[\dYMWDTHS]+)$")
ACCOUNT_KINDS = ("user", "admin", "employee", "member", "end-user")

_TOP = {
    "key",
    "title",
    "goal",
    "provider",
    "queue",
    "start",
    "accounts",
    "tickets",
    "before",
    "steps",
}
_ACCOUNT = {"login", "email", "kind", "org", "contacts", "last_login", "fields", "status", "lang"}
_TICKET = {
    "name",
    "queue",
    "account",
    "requester",
    "subject",
    "fields",
    "opened_by",
    "note",
    "lang",
}
_STEP = {
    "action",
    "by",
    "ticket",
    "fields",
    "note",
    "checks",
    "check",
    "clock",
    "expect",
    "refused",
}


class ScenarioError(BadInput):
    """A scenario file that does not hold together (exit code 2)."""


@dataclass(frozen=True)
class AccountSpec:
    login: str
    email: str
    kind: str = "user"
    org: str = ""
    contacts: tuple = ()
    last_login: str | None = None
    fields: dict = field(default_factory=dict)
    status: str = "active"
    lang: str = ""


@dataclass(frozen=True)
class TicketSpec:
    name: str
    queue: str
    account: str | None
    requester: str = ""
    subject: str = ""
    fields: dict = field(default_factory=dict)
    opened_by: str = "system"
    note: str = ""
    lang: str | None = None


@dataclass(frozen=True)
class StepSpec:
    index: int  # 1-based, in its list (``steps`` or ``before``)
    action: str
    by: str
    ticket: str
    fields: dict = field(default_factory=dict)
    note: str = ""
    checks: tuple = ()
    check: dict = field(default_factory=dict)  # {fr, en}: what to check before acting
    clock: str = ""  # move of the training clock before the step
    expect: str = ""  # the ticket's state after the step ("" for a refusal: unchanged)
    refused: str = ""  # the rule expected to refuse this step

    @property
    def by_clock(self) -> bool:
        return self.by == SYSTEM


@dataclass(frozen=True)
class Scenario:
    key: str
    path: Path
    provider: str
    queue: str
    start: datetime  # UTC
    title: dict
    goal: dict
    accounts: tuple[AccountSpec, ...]
    tickets: tuple[TicketSpec, ...]
    before: tuple[StepSpec, ...]
    steps: tuple[StepSpec, ...]

    def title_text(self, lang: str | None = None) -> str:
        return pick(self.title, lang)

    def goal_text(self, lang: str | None = None) -> str:
        return pick(self.goal, lang)

    def ticket(self, name: str) -> TicketSpec:
        return next(t for t in self.tickets if t.name == name)

    def summary(self, lang: str | None = None) -> dict:
        return {
            "key": self.key,
            "provider": self.provider,
            "queue": self.queue,
            "title": self.title_text(lang),
            "goal": self.goal_text(lang),
            "start": clock.iso(self.start),
            "steps": len(self.steps),
        }


def scenarios_dir() -> Path:
    return data_dir() / "scenarios"


def available() -> list[str]:
    return sorted(p.stem for p in scenarios_dir().glob("*.toml"))


def load(key: str) -> Scenario:
    path = scenarios_dir() / f"{key}.toml"
    if not path.is_file():
        raise ScenarioError(f"no training scenario {key!r} (helpdesk train list)")
    return load_file(path)


def load_all() -> list[Scenario]:
    return [load(key) for key in available()]


def load_file(path: str | Path) -> Scenario:
    path = Path(path)
    stat = path.stat()
    return _load(path, stat.st_mtime_ns, stat.st_size)


@lru_cache(maxsize=256)
def _load(path: Path, _mtime: int, _size: int) -> Scenario:
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ScenarioError(f"{path.name}: {exc}") from None
    return _Reader(path, doc).scenario()


@lru_cache(maxsize=16)
def _pack(key: str) -> packs.Pack:
    return packs.read_pack(key)


class _Reader:
    """Reads one scenario file; every problem found is reported at once."""

    def __init__(self, path: Path, doc: dict):
        self.path = path
        self.doc = doc
        self.problems: list[str] = []

    def fail(self, where: str, what: str) -> None:
        self.problems.append(f"{where}: {what}" if where else what)

    def unknown_keys(self, where: str, table: dict, allowed: set) -> None:
        extra = sorted(set(table) - allowed)
        if extra:
            self.fail(
                where, f"unknown key(s) {', '.join(extra)} (allowed: {', '.join(sorted(allowed))})"
            )

    def text(self, where: str, value) -> dict:
        if not isinstance(value, dict) or not all(
            isinstance(value.get(lang), str) and value[lang].strip() for lang in ("fr", "en")
        ):
            self.fail(where, 'a table { fr = "...", en = "..." } is needed')
            return {}
        return {"fr": value["fr"], "en": value["en"]}

    def scenario(self) -> Scenario:
        doc, key = self.doc, self.path.stem
        self.unknown_keys("", doc, _TOP)
        if doc.get("key") != key:
            self.fail("key", f"{doc.get('key')!r} does not match the file name ({key!r})")
        title = self.text("title", doc.get("title"))
        goal = self.text("goal", doc.get("goal"))
        provider = doc.get("provider", "")
        pack = None
        try:
            pack = _pack(provider)
        except (packs.PackError, TypeError) as exc:
            self.fail("provider", f"unknown provider {provider!r}: {exc}")
        queue = doc.get("queue", "")
        if pack is not None and queue not in pack.workflows:
            self.fail(
                "queue",
                f"{provider} has no {queue!r} procedure (queues: {', '.join(pack.workflows)})",
            )
        start = None
        try:
            start = clock.parse_datetime(str(doc.get("start", "")), pack.timezone if pack else None)
        except clock.BadDate as exc:
            self.fail("start", str(exc))
        accounts = tuple(self.account(i, a) for i, a in enumerate(doc.get("accounts", []), 1))
        logins = {a.login for a in accounts}
        if len(logins) != len(accounts):
            self.fail("accounts", "two accounts have the same login")
        raw_tickets = doc.get("tickets", [])
        if not raw_tickets:
            self.fail("tickets", "at least one ticket to open is needed")
        tickets = tuple(
            self.ticket(i, t, pack, queue, logins) for i, t in enumerate(raw_tickets, 1)
        )
        names = [t.name for t in tickets]
        if len(set(names)) != len(names):
            self.fail("tickets", "two tickets have the same name")
        before = tuple(
            self.step("before", i, s, pack, tickets, lesson=False)
            for i, s in enumerate(doc.get("before", []), 1)
        )
        if not doc.get("steps"):
            self.fail("steps", "the expected path needs at least one step")
        steps = tuple(
            self.step("steps", i, s, pack, tickets, lesson=True)
            for i, s in enumerate(doc.get("steps", []), 1)
        )
        if self.problems:
            raise ScenarioError(f"{self.path.name}: " + "; ".join(self.problems))
        return Scenario(
            key, self.path, provider, queue, start, title, goal, accounts, tickets, before, steps
        )

    def account(self, i: int, a: dict) -> AccountSpec:
        where = f"accounts[{i}]"
        if not isinstance(a, dict):
            self.fail(where, "a table is needed")
            return AccountSpec("?", "?")
        self.unknown_keys(where, a, _ACCOUNT)
        for name in ("login", "email"):
            if not isinstance(a.get(name), str) or not a[name].strip():
                self.fail(where, f"{name} is needed")
        if a.get("kind", "user") not in ACCOUNT_KINDS:
            self.fail(where, f"unknown kind {a.get('kind')!r} ({', '.join(ACCOUNT_KINDS)})")
        if a.get("last_login"):
            try:
                clock.parse_datetime(str(a["last_login"]))
            except clock.BadDate as exc:
                self.fail(f"{where}.last_login", str(exc))
        return AccountSpec(
            login=str(a.get("login", "?")),
            email=str(a.get("email", "?")),
            kind=a.get("kind", "user"),
            org=a.get("org", ""),
            contacts=tuple(a.get("contacts", [])),
            last_login=str(a["last_login"]) if a.get("last_login") else None,
            fields={k: str(v) for k, v in (a.get("fields") or {}).items()},
            status=a.get("status", "active"),
            lang=a.get("lang", ""),
        )

    def ticket(self, i: int, t: dict, pack, queue: str, logins: set) -> TicketSpec:
        where = f"tickets[{i}]"
        if not isinstance(t, dict):
            self.fail(where, "a table is needed")
            return TicketSpec(f"#{i}", queue, None)
        self.unknown_keys(where, t, _TICKET)
        name = t.get("name", "main" if i == 1 else f"ticket{i}")
        q = t.get("queue", queue)
        opener = t.get("opened_by", "system")
        if opener not in OPENERS and opener not in dict(VOLUNTEERS):
            self.fail(
                where,
                f"opened_by {opener!r}: a volunteer ({', '.join(dict(VOLUNTEERS))}), system or sweep",
            )
        account = t.get("account")
        if account is not None and account not in logins:
            self.fail(where, f"account {account!r} is not among the scenario's accounts")
        if opener == "sweep" and (account is None or q != "closure"):
            self.fail(
                where, "a ticket opened by sweep is a closure of one of the scenario's accounts"
            )
        fields = dict(t.get("fields") or {})
        if pack is not None:
            wf = pack.workflows.get(q)
            if wf is None:
                self.fail(where, f"{pack.key} has no {q!r} procedure")
            else:
                self.fields(where, fields, wf)
                reasons = pack.params.get("closure_reasons")
                if (
                    q == "closure"
                    and reasons
                    and opener != "sweep"
                    and fields.get("reason") not in reasons
                ):
                    self.fail(
                        where,
                        f"closure reason {fields.get('reason')!r} is not one of {pack.key}'s ({', '.join(reasons)})",
                    )
        return TicketSpec(
            name=name,
            queue=q,
            account=account,
            requester=t.get("requester", ""),
            subject=t.get("subject", ""),
            fields=fields,
            opened_by=opener,
            note=t.get("note", ""),
            lang=t.get("lang"),
        )

    def fields(self, where: str, fields: dict, wf: dict) -> None:
        declared = wf.get("fields", {})
        for name in fields:
            if name not in declared:
                self.fail(
                    where, f"unknown field {name!r} (known: {', '.join(sorted(declared)) or '-'})"
                )

    def step(self, part: str, i: int, s: dict, pack, tickets: tuple, *, lesson: bool) -> StepSpec:
        where = f"{part}[{i}]"
        if not isinstance(s, dict):
            self.fail(where, "a table is needed")
            return StepSpec(i, "?", "?", "?")
        self.unknown_keys(where, s, _STEP)
        by = s.get("by", "")
        if by != SYSTEM and by not in dict(VOLUNTEERS):
            self.fail(
                where,
                f"by {by!r}: a volunteer ({', '.join(dict(VOLUNTEERS))}) or system (the clock)",
            )
        names = [t.name for t in tickets]
        ticket = s.get("ticket", names[0] if names else "?")
        if ticket not in names:
            self.fail(where, f"unknown ticket {ticket!r} (tickets: {', '.join(names)})")
        move = str(s.get("clock", ""))
        if move and not CLOCK_MOVE.match(move):
            self.fail(
                where,
                f"clock {move!r}: an ISO-8601 duration (P1D, P2M), +1d/+1w/+1m, or next-deadline",
            )
        elif move.startswith(("P", "-P")):
            try:
                clock.parse_duration(move)
            except clock.BadDate as exc:
                self.fail(where, str(exc))
        action, expect, refused = s.get("action", ""), s.get("expect", ""), s.get("refused", "")
        check = self.text(f"{where}.check", s.get("check")) if lesson else {}
        if refused and by == SYSTEM:
            self.fail(where, "a refusal is shown by a person, not by the clock")
        if not refused and not expect:
            self.fail(where, "expect (the state after the step) is needed")
        queue = next((t.queue for t in tickets if t.name == ticket), "")
        wf = pack.workflows.get(queue) if pack is not None else None
        if wf is not None:
            transitions = [t for t in wf["transitions"] if t["key"] == action]
            manual = sorted({t["key"] for t in wf["transitions"] if not t.get("auto")})
            if not transitions or all(t.get("auto") for t in transitions):
                self.fail(
                    where,
                    f"unknown action {action!r} for {pack.key}/{queue} (actions: {', '.join(manual)})",
                )
            states = {st["key"] for st in wf["states"]}
            if expect and expect not in states:
                self.fail(
                    where,
                    f"unknown state {expect!r} for {pack.key}/{queue} (states: {', '.join(sorted(states))})",
                )
            if refused:
                rules = set(ENGINE_RULES) | {g["name"] for t in transitions for g in t["guards"]}
                if refused not in rules:
                    self.fail(
                        where,
                        f"rule {refused!r} cannot refuse {action!r} (rules: {', '.join(sorted(rules))})",
                    )
            self.fields(where, dict(s.get("fields") or {}), wf)
        return StepSpec(
            index=i,
            action=action,
            by=by,
            ticket=ticket,
            fields=dict(s.get("fields") or {}),
            note=s.get("note", ""),
            checks=tuple(s.get("checks", [])),
            check=check,
            clock=move,
            expect=expect,
            refused=refused,
        )
