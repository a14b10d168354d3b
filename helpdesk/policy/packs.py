"""Policy packs: ``data/policies/<key>.toml`` (parameters, citations, features) applied to
the base workflows ``data/workflows/<queue>.toml``, and loaded into the workflow tables.

A workflow element (state, transition, guard, timer, on-open effect) tagged
``feature = "x"`` exists only in packs that enable ``x``; one tagged ``unless = "x"`` only
in packs that do not. Loading is strict: an unknown guard, effect, template, state or
citation is an error naming the pack and the element, so a pack cannot half-load.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from sqlmodel import Session, col, delete, select

from helpdesk.base import clock
from helpdesk.rules import registry
from helpdesk.storage.models import Policy, State, Transition, Workflow
from helpdesk.base.paths import data_dir, template_names
from helpdesk.base.queues import GENERAL
from helpdesk.base.queues import PROCEDURES as QUEUES

# The plain queue of every provider (GENERAL): a person writing about something that is
# none of the procedures. Its workflow (``plain = true``) holds no rule of a provider's
# text, so its steps cite none.
STATE_KINDS = ("open", "waiting", "done")
#: The widest a pack's ``short_name`` may be: the provider columns of the lists (the TUI's
#: widest, the CLI's least) hold it whole.
SHORT_NAME_MAX = 13


class PackError(ValueError):
    pass


@dataclass
class Pack:
    key: str
    name: str
    short_name: str
    source: str
    timezone: str
    lang: str
    queues: list[str]
    features: set[str]
    params: dict
    citations: dict
    workflows: dict[str, dict] = field(default_factory=dict)
    digest: str = ""


def policies_dir() -> Path:
    return data_dir() / "policies"


def available() -> list[str]:
    return sorted(p.stem for p in policies_dir().glob("*.toml"))


def short_names() -> dict[str, str]:
    """Each shipped pack's short name by key, read from its file alone (no database, no
    workflow: ``train list`` names a scenario's provider by it)."""
    out = {}
    for key in available():
        with (policies_dir() / f"{key}.toml").open("rb") as f:
            doc = tomllib.load(f)
        out[key] = str(doc.get("short_name") or doc.get("name") or key)
    return out


def _keep(element: dict, features: set[str]) -> bool:
    f = element.get("feature")
    u = element.get("unless")
    return (f is None or f in features) and (u is None or u not in features)


def _strip(element: dict) -> dict:
    return {k: v for k, v in element.items() if k not in ("feature", "unless")}


def specialise(base: dict, features: set[str]) -> dict:
    """The base workflow as one pack sees it."""
    wf = {k: v for k, v in base.items() if k not in ("states", "transitions", "on_open", "fields")}
    wf["fields"] = {k: _strip(v) for k, v in base.get("fields", {}).items() if _keep(v, features)}
    wf["on_open"] = [_strip(e) for e in base.get("on_open", []) if _keep(e, features)]
    states = []
    for s in base.get("states", []):
        if _keep(s, features):
            s = _strip(s)
            s["timers"] = [_strip(t) for t in s.get("timers", []) if _keep(t, features)]
            states.append(s)
    keys = {s["key"] for s in states}
    transitions = []
    for t in base.get("transitions", []):
        if not _keep(t, features):
            continue
        t = _strip(t)
        t["guards"] = [_strip(g) for g in t.get("guards", []) if _keep(g, features)]
        t["effects"] = [_strip(e) for e in t.get("effects", []) if _keep(e, features)]
        t["sources"] = [s for s in t.get("sources", []) if s == "*" or s in keys]
        if not t["sources"]:
            continue
        transitions.append(t)
    wf["states"] = states
    wf["transitions"] = transitions
    return wf


def prune(wf: dict, starts: set[str]) -> dict:
    """Drop the states no ticket of this pack can reach from its initial states, and the
    transitions that leave only from them."""
    reach, todo = set(starts), list(starts)
    while todo:
        here = todo.pop()
        for t in wf["transitions"]:
            if here in t["sources"] or "*" in t["sources"]:
                nxt = here if t["target"] == "=" else t["target"]
                if nxt not in reach:
                    reach.add(nxt)
                    todo.append(nxt)
    wf["states"] = [s for s in wf["states"] if s["key"] in reach]
    kept = []
    for t in wf["transitions"]:
        t["sources"] = [s for s in t["sources"] if s == "*" or s in reach]
        if t["sources"]:
            kept.append(t)
    wf["transitions"] = kept
    return wf


def initial_states(wf: dict, params: dict) -> set[str]:
    initial = wf.get("initial", {})
    mapping = initial.get("map") or {}
    reasons = params.get("closure_reasons")
    if initial.get("field") == "reason" and reasons is not None:
        return {mapping.get(r, initial.get("default")) for r in reasons}
    return {initial.get("default"), *mapping.values()} - {None}


def read_pack(key: str) -> Pack:
    path = policies_dir() / f"{key}.toml"
    if not path.is_file():
        raise PackError(f"no policy pack {key!r} (available: {', '.join(available())})")
    raw = path.read_bytes()
    try:
        doc = tomllib.loads(raw.decode("utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise PackError(f"{path.name}: {exc}") from exc
    h = hashlib.sha256(raw)
    pack = Pack(
        key=doc["key"],
        name=doc["name"],
        short_name=doc.get("short_name") or doc["name"],
        source=doc.get("source", ""),
        timezone=doc.get("timezone", "Europe/Paris"),
        lang=doc.get("lang", "fr"),
        queues=list(doc.get("queues", [])),
        features=set(doc.get("features", [])),
        params=dict(doc.get("params", {})),
        citations=dict(doc.get("citations", {})),
    )
    if pack.key != key:
        raise PackError(f"{path.name}: key {pack.key!r} does not match the file name")
    if "contact" in doc:
        pack.params.setdefault("contact", doc["contact"])
    # Stored with the parameters (JSON): ``Policy.short_name`` reads it.
    pack.params["short_name"] = pack.short_name
    if GENERAL not in pack.queues:
        pack.queues.append(GENERAL)
    for queue in pack.queues:
        if queue not in (*QUEUES, GENERAL):
            raise PackError(f"{key}: unknown queue {queue!r}")
        wpath = data_dir() / "workflows" / f"{queue}.toml"
        wraw = wpath.read_bytes()
        h.update(wraw)
        wf = specialise(tomllib.loads(wraw.decode("utf-8")), pack.features)
        pack.workflows[queue] = prune(wf, initial_states(wf, pack.params))
    pack.digest = h.hexdigest()
    validate(pack)
    return pack


def validate(pack: Pack) -> None:
    """Everything the data names must exist."""
    templates = {lang: set(template_names(lang)) for lang in ("fr", "en")}
    problems: list[str] = []
    if not isinstance(pack.short_name, str) or not 0 < len(pack.short_name) <= SHORT_NAME_MAX:
        problems.append(
            f"short_name {pack.short_name!r}: a name of 1 to {SHORT_NAME_MAX} characters"
        )

    def cite(where: str, key: str) -> None:
        if key and key not in pack.citations:
            problems.append(f"{where}: citation {key!r} missing from [citations]")

    from helpdesk.base.errors import BadInput
    from helpdesk.policy.provider_settings import SETTINGS, check

    for name in SETTINGS.keys() & pack.params.keys():
        try:
            check(name, pack.params[name])
        except BadInput as exc:
            problems.append(f"params.{exc}")
    for name, value in pack.params.items():
        if isinstance(value, str) and re.fullmatch(r"-?P(\d|T\d).*", value):
            try:
                clock.parse_duration(value)
            except clock.BadDate as exc:
                problems.append(f"params.{name}: {exc}")
    for queue, wf in pack.workflows.items():
        states = {s["key"]: s for s in wf["states"]}
        for s in wf["states"]:
            if s.get("kind", "open") not in STATE_KINDS:
                problems.append(f"{queue}/{s['key']}: unknown kind {s.get('kind')!r}")
        initial = wf.get("initial", {})
        for target in [initial.get("default"), *(initial.get("map") or {}).values()]:
            if target is not None and target not in states:
                reasons = pack.params.get("closure_reasons")
                mapped = [k for k, v in (initial.get("map") or {}).items() if v == target]
                if queue == "closure" and reasons is not None and not set(mapped) & set(reasons):
                    continue  # a reason this pack does not use
                problems.append(f"{queue}: initial state {target!r} does not exist in this pack")
        action_keys = {t["key"] for t in wf["transitions"]}
        for s in wf["states"]:
            for timer in s.get("timers", []):
                if timer["action"] not in action_keys:
                    problems.append(
                        f"{queue}/{s['key']}: timer action {timer['action']!r} is not a transition"
                    )
        for spec in wf.get("on_open", []):
            if spec["name"] not in registry.EFFECTS:
                problems.append(f"{queue}: unknown on_open effect {spec['name']!r}")
        for t in wf["transitions"]:
            where = f"{queue}/{t['key']}"
            if t["target"] != "=" and t["target"] not in states:
                problems.append(f"{where}: target state {t['target']!r} does not exist")
            cite(where, t.get("cite", ""))
            if not t.get("cite") and not wf.get("plain"):
                problems.append(f"{where}: no citation")
            for g in t["guards"]:
                if g["name"] not in registry.GUARDS:
                    problems.append(f"{where}: unknown guard {g['name']!r}")
                cite(f"{where}/{g['name']}", g.get("cite", ""))
            for e in t["effects"]:
                if e["name"] not in registry.EFFECTS:
                    problems.append(f"{where}: unknown effect {e['name']!r}")
                if e["name"] == "send_template":
                    name = e["args"]["template"]
                    for lang, names in templates.items():
                        if name not in names:
                            problems.append(f"{where}: template {lang}/{name}.txt missing")
            for f in t.get("fields", []):
                if f not in wf.get("fields", {}):
                    problems.append(f"{where}: field {f!r} is not declared")
    if problems:
        raise PackError(f"policy pack {pack.key}: " + "; ".join(problems))


def install(session: Session, pack: Pack) -> bool:
    """Write a pack into the tables. Returns False if that exact version is already there."""
    policy = session.get(Policy, pack.key)
    if policy is not None and policy.digest == pack.digest:
        return False
    if policy is None:
        policy = Policy(key=pack.key, name=pack.name)
    policy.name = pack.name
    policy.timezone = pack.timezone
    policy.lang = pack.lang
    policy.source = pack.source
    policy.digest = pack.digest
    policy.params = pack.params
    policy.citations = pack.citations
    session.add(policy)
    session.flush()
    for queue, wf in pack.workflows.items():
        row = session.exec(
            select(Workflow).where(Workflow.policy_key == pack.key, Workflow.queue == queue)
        ).first()
        if row is None:
            row = Workflow(policy_key=pack.key, queue=queue)
        row.title = wf.get("title", {})
        row.fields = wf.get("fields", {})
        row.initial = wf.get("initial", {})
        row.on_open = wf.get("on_open", [])
        row.metadata_only = bool(wf.get("metadata_only", False))
        row.checklist = wf.get("checklist", {})
        session.add(row)
        session.flush()
        session.exec(delete(State).where(col(State.workflow_id) == row.id))
        session.exec(delete(Transition).where(col(Transition.workflow_id) == row.id))
        for i, s in enumerate(wf["states"]):
            session.add(
                State(
                    workflow_id=row.id,
                    key=s["key"],
                    position=i,
                    kind=s.get("kind", "open"),
                    label=s.get("label", {}),
                    timers=s.get("timers", []),
                    deadlines=s.get("deadlines", []),
                )
            )
        for i, t in enumerate(wf["transitions"]):
            session.add(
                Transition(
                    workflow_id=row.id,
                    key=t["key"],
                    position=i,
                    sources=t["sources"],
                    target=t["target"],
                    label=t.get("label", {}),
                    role=t.get("role", "volunteer"),
                    fields=t.get("fields", []),
                    checklist=t.get("checklist", []),
                    note_required=t.get("note_required", False),
                    confirm=t.get("confirm", False),
                    auto=t.get("auto", False),
                    system_only=t.get("system_only", False),
                    guards=t["guards"],
                    effects=t["effects"],
                    cite=t.get("cite", ""),
                    sanction=t.get("sanction"),
                )
            )
    session.flush()
    session.info.pop("definitions", None)
    session.info.pop("workflow_ids", None)
    return True


def install_all(session: Session, keys: list[str] | None = None) -> list[str]:
    changed = []
    for key in keys or available():
        if install(session, read_pack(key)):
            changed.append(key)
    return changed
