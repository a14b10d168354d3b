"""Every screen of the demo, in French and in English, shows no internal key: no state key
or kind, deadline name, status, role, rule id, field value or step key where its label
belongs (the labels live in the workflows and in ``data/labels.toml``), and no provider's
key where its name belongs (a pack's ``short_name`` where room is short)."""

from __future__ import annotations

import re
import tomllib
from datetime import datetime, timezone

import pytest
from sqlmodel import select

from helpdesk.base import clock, labels, queues
from helpdesk.storage import db
from helpdesk.training import demo
from helpdesk.base.i18n import pick, set_lang
from helpdesk.storage.models import Policy, State, Ticket, Transition
from helpdesk.base.paths import data_dir
from screens.modals import KeysScreen
from screens.queue import QueueScreen
from screens.ticket import TicketScreen
from screens.ticket_list import TicketList
from tests.tui.conftest import press, settle

NOW = datetime(2026, 11, 23, 9, 30, tzinfo=timezone.utc)

#: Keys that are ordinary English words: a French screen must not show them.
ENGLISH = {
    "pending",
    "sent",
    "info",
    "waiting",
    "open",
    "done",
    "request",
    "acknowledge",
    "sweep",
    "volunteer",
    "oncall",
    "techadmin",
    "trainer",
    "lapse",
    "inactivity",
    "held",
    "failed",
    "cancelled",
    "until",
    "warned",
    "contacted",
    "resolved",
    "received",
    "suspended",
    "reported",
    "restricted",
    "deactivated",
    "erased",
    "warning",
    "bounces",
    "complaint",
    "blocklist",
    "harassment",
}


@pytest.fixture(scope="module")
def demo_url(tmp_path_factory):
    url = f"sqlite:///{tmp_path_factory.mktemp('demo-walk') / 'demo.db'}"
    demo.build_demo(url, now=NOW, extra=0)
    yield url
    engine = db._engines.pop(url, None)
    if engine is not None:
        engine.dispose()


def internal_keys(url: str, lang: str) -> set[str]:
    """Every internal key whose label in ``lang`` differs from the key itself."""
    with (data_dir() / "labels.toml").open("rb") as f:
        raw = tomllib.load(f)
    pairs: list[tuple[str, dict]] = []
    for kind, entries in raw.items():
        for key, value in entries.items():
            pairs += list(value.items()) if kind == "choice" else [(key, value)]
    with db.read_session(url) as s:
        pairs += [(t.key, t.label) for t in s.exec(select(Transition))] + [
            (st.key, st.label) for st in s.exec(select(State))
        ]
    # A key that is also a word of the interface's own labels ("compromise" in French,
    # "non-renewal" in English) cannot be told from that word: it is left out.
    words = " ".join(pick(table, lang).lower() for _key, table in pairs)
    return {
        key
        for key, _table in pairs
        if not re.search(rf"(?<![\w-]){re.escape(key)}(?![\w-])", words)
    }


def shown_keys(
    text: str, keys: set[str], lang: str, providers: frozenset[str] = frozenset()
) -> dict[str, str]:
    """The keys that appear as words of their own (not inside an address, a login or a
    path), each with the line it appears in. ``providers``: the packs' keys (``indigos``,
    ``le-pic``), never shown: their short names are capitalised (``Indigos``, ``Le PIC``)."""
    found = {}
    for key in keys | providers:
        distinctive = (
            "-" in key or "_" in key or (lang == "fr" and key in ENGLISH) or key in providers
        )
        if distinctive:
            m = re.search(rf"(?<![\w.@/+-]){re.escape(key)}(?![\w.@/+-])", text)
            if m:
                start = text.rfind("\n", 0, m.start()) + 1
                end = text.find("\n", m.end())
                found[key] = text[start : end if end >= 0 else None].strip()[:120]
    return found


def _texts(screen) -> list[str]:
    out = [str(w.render()) for w in screen.query("Static")]
    for ol in screen.query("OptionList"):
        out += [str(ol.get_option_at_index(i).prompt) for i in range(ol.option_count)]
    if isinstance(screen, TicketScreen):
        out += [screen.pane_text(p.id) for p in screen.PANES if p.text is not None]
        # Mail subjects are written in the mail's language, which may not be the screen's.
        for m in screen.view["mails"]:
            out = [text.replace(m["subject"], "") for text in out]
        # What people wrote (the conversation's subjects and texts) is theirs, in their words.
        written = [
            line.strip()
            for m in screen.view.get("messages") or []
            for field in ("subject", "new", "quoted", "body")
            for line in (m.get(field) or "").splitlines()
            if line.strip()
        ]
        for line in sorted(written, key=len, reverse=True):
            out = [text.replace(line, "") for text in out]
    for lst in screen.query(TicketList):
        out += [lst.render_line(y).text for y in range(lst.rows_shown())]
    return out


#: The walk in parts that pytest-xdist can give to different workers: the lists (dashboard,
#: every queue's list, the keys screen), then the tickets, one part per queue.
PARTS = ("lists", *queues.ALL)


@pytest.mark.parametrize("part", PARTS)
@pytest.mark.parametrize("lang", ["fr", "en"])
async def test_every_screen_of_the_demo_shows_labels_never_keys(demo_url, make_app, lang, part):
    clock.set_now(NOW)
    set_lang(lang)
    labels.forget_missing()
    keys = internal_keys(demo_url, lang)
    with db.read_session(demo_url) as s:
        providers = frozenset(s.exec(select(Policy.key)))
        one_per_state = {}
        for t in s.exec(select(Ticket).order_by(Ticket.id)):
            one_per_state.setdefault((t.policy_key, t.queue, t.state), t.id)
    # Every ticket of the walk is in one part: no queue the parts do not know.
    assert {queue for _policy, queue, _state in one_per_state} <= set(PARTS)
    tickets = sorted(item for item in one_per_state.items() if item[0][1] == part)
    assert part == "lists" or tickets, f"the demo has no {part} ticket"
    seen: dict[str, set[str]] = {}

    def check(where: str, texts: list[str]) -> None:
        for key, line in shown_keys("\n".join(texts), keys, lang, providers).items():
            seen.setdefault(key, set()).add(f"{where}: {line}")

    app = make_app(demo_url, "tom")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        if part == "lists":
            check("dashboard", _texts(app.screen))
            for queue in (None, "password-reset", "closure", "abuse", "mail-reputation"):
                app.open_queue(queue)
                await settle(pilot)
                assert isinstance(app.screen, QueueScreen)
                check(f"queue {queue or 'all'}", _texts(app.screen))
                await press(pilot, "escape")
        for (policy, queue, state), tid in tickets:
            app.open_ticket(tid)
            await settle(pilot)
            screen = app.screen
            assert isinstance(screen, TicketScreen) and screen.view is not None, (tid, screen)
            check(f"#{tid} {policy}/{queue}/{state}", _texts(screen))
            await press(pilot, "escape")
        if part == "lists":
            app.open_ticket(next(iter(one_per_state.values())))
            await settle(pilot)
            await press(pilot, "question_mark")
            assert isinstance(app.screen, KeysScreen)
            check("keys", _texts(app.screen))
        app.exit()
    assert not seen, "internal keys shown: " + "; ".join(
        f"{k} on {sorted(v)[:3]}" for k, v in sorted(seen.items())
    )
    assert not labels.missing(), f"keys with no label: {sorted(labels.missing())}"
