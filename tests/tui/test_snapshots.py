"""SVG snapshots of every screen at 80×24 and 120×40, on the fixed seed database, with the
clock fixed (``seed.LATER``), the interface in English (so the French catalog can change
without touching them) and the cursor not blinking.

Review changed snapshots before accepting them: ``pytest tests/tui --snapshot-update``
writes them, ``snapshot_report.html`` shows the differences.
"""

from __future__ import annotations

import pytest

from helpdesk.storage import db
from helpdesk.storage.models import Meta
from tests.tui.conftest import press, settle

SIZES = [pytest.param((80, 24), id="80x24"), pytest.param((120, 40), id="120x40")]


def keys(*sequence: str):
    async def run_before(pilot) -> None:
        await settle(pilot)
        for key in sequence:
            if key.startswith("ticket:"):
                pilot.app.open_ticket(int(key.split(":")[1]))
                await settle(pilot)
            elif key.startswith("note:"):
                pilot.app.screen.query_one("#note").text = key[len("note:") :]
                await settle(pilot)
            else:
                await press(pilot, key)
        await settle(pilot)

    return run_before


@pytest.mark.parametrize("size", SIZES)
def test_dashboard(snap_compare, db_url, make_app, size):
    assert snap_compare(make_app(db_url), terminal_size=size, run_before=keys())


@pytest.mark.parametrize("size", SIZES)
def test_dashboard_read_only(snap_compare, db_url, make_app, size):
    assert snap_compare(make_app(db_url, user=None), terminal_size=size, run_before=keys())


@pytest.mark.parametrize("size", SIZES)
def test_dashboard_training(snap_compare, db_url, make_app, size):
    with db.write_session(db_url) as s:
        meta = s.get(Meta, "training") or Meta(key="training")
        meta.value = "yes"
        s.add(meta)
    assert snap_compare(make_app(db_url), terminal_size=size, run_before=keys())


@pytest.mark.parametrize("size", SIZES)
def test_queue(snap_compare, db_url, make_app, size):
    assert snap_compare(make_app(db_url), terminal_size=size, run_before=keys("1", "down"))


@pytest.mark.parametrize("size", SIZES)
def test_all_tickets_by_age(snap_compare, db_url, make_app, size):
    assert snap_compare(make_app(db_url), terminal_size=size, run_before=keys("t", "s"))


@pytest.mark.parametrize("size", SIZES)
def test_queue_filter_dialog(snap_compare, db_url, make_app, size):
    assert snap_compare(make_app(db_url), terminal_size=size, run_before=keys("2", "f"))


@pytest.mark.parametrize("size", SIZES)
def test_ticket_claimed_by_someone_else(snap_compare, db_url, make_app, size):
    assert snap_compare(make_app(db_url), terminal_size=size, run_before=keys("ticket:1"))


@pytest.mark.parametrize("size", SIZES)
def test_ticket_with_history_and_citation_text(snap_compare, db_url, make_app, size):
    assert snap_compare(make_app(db_url), terminal_size=size, run_before=keys("ticket:3", "c"))


@pytest.mark.parametrize("size", SIZES)
def test_action_form(snap_compare, db_url, make_app, size):
    assert snap_compare(make_app(db_url), terminal_size=size, run_before=keys("ticket:11", "1"))


@pytest.mark.parametrize("size", SIZES)
def test_action_form_errors(snap_compare, db_url, make_app, size):
    assert snap_compare(
        make_app(db_url), terminal_size=size, run_before=keys("ticket:3", "1", "ctrl+s")
    )


@pytest.mark.parametrize("size", SIZES)
def test_confirm_with_mail_preview(snap_compare, db_url, make_app, size):
    assert snap_compare(make_app(db_url), terminal_size=size, run_before=keys("ticket:1", "1"))


@pytest.mark.parametrize("size", SIZES)
def test_refusal(snap_compare, db_url, make_app, size):
    assert snap_compare(
        make_app(db_url), terminal_size=size, run_before=keys("ticket:6", "down", "enter")
    )


@pytest.mark.parametrize("size", SIZES)
def test_keys(snap_compare, db_url, make_app, size):
    assert snap_compare(make_app(db_url), terminal_size=size, run_before=keys("1", "question_mark"))


@pytest.mark.parametrize("size", SIZES)
def test_hostile_ticket(snap_compare, hostile_url, make_app, size):
    assert snap_compare(make_app(hostile_url), terminal_size=size, run_before=keys("ticket:9"))


@pytest.mark.parametrize("size", SIZES)
def test_ticket_history_pane_has_the_keys(snap_compare, db_url, make_app, size):
    assert snap_compare(
        make_app(db_url), terminal_size=size, run_before=keys("ticket:3", "tab", "]", "]", "]")
    )


@pytest.mark.parametrize("size", SIZES)
def test_ticket_details_pane(snap_compare, db_url, make_app, size):
    assert snap_compare(
        make_app(db_url), terminal_size=size, run_before=keys("ticket:5", "d", "pagedown")
    )


@pytest.mark.parametrize("size", SIZES)
def test_all_tickets_at_the_end(snap_compare, db_url, make_app, size):
    assert snap_compare(make_app(db_url), terminal_size=size, run_before=keys("t", "end"))
