"""Service actions in the TUI: the preview of a step lists the actions it will take, on
which system; a failed action shows on the dashboard and on its ticket until someone deals
with it."""

from __future__ import annotations

from sqlmodel import select

from helpdesk.storage import db
from helpdesk.storage.models import ServiceAction
from screens.dashboard import DashboardScreen
from screens.modals import ActionForm, ConfirmScreen
from screens.ticket import TicketScreen
from tests.tui.conftest import indigos_mail_alert, press, settle, type_text
from tests.tui.test_procedures import action_digit, static_text


async def test_preview_lists_service_actions_and_failures_show_until_dealt_with(
    db_url, make_app, tmp_path, monkeypatch
):
    config = tmp_path / "helpdesk.toml"
    config.write_text('[connectors.smtp-block]\ntype = "postfix"\npolicies = "*"\n')
    monkeypatch.setenv("HELPDESK_CONFIG", str(config))  # the backend's process inherits it
    tid = indigos_mail_alert(db_url)  # Indigos art. 7 suspends sending (Le PIC's text does not)
    app = make_app(db_url)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        app.open_ticket(tid)
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, TicketScreen)
        await press(pilot, action_digit(screen, "contact"))
        app.screen.query_one("#note").focus()
        await type_text(pilot, "Bounces: advice sent")
        await press(pilot, "ctrl+s")
        await press(pilot, "y")
        await settle(pilot)
        await press(pilot, action_digit(screen, "suspend-sending"))
        form = app.screen
        assert isinstance(form, ActionForm)
        form.query_one("#field-until").focus()
        await type_text(pilot, "2026-03-05 12:00")
        form.query_one("#note").focus()
        await type_text(pilot, "Bounces go on")
        await press(pilot, "ctrl+s")
        confirm = app.screen
        assert isinstance(confirm, ConfirmScreen)
        assert len(confirm.preview.actions) == 1
        line = confirm.preview.actions[0]
        assert (
            "suspend sending" in line
            and "2026-03-05 12:00 (Europe/Paris)" in line
            and "smtp-block" in line
        )
        assert "Service actions" in static_text(confirm, "#preview Static")
        await press(pilot, "y")
        await settle(pilot)

        # The service refused: the action failed, and waits for a person.
        with db.write_session(db_url) as s:
            row = s.exec(select(ServiceAction).where(ServiceAction.ticket_id == tid)).one()
            row.status, row.last_error, row.next_attempt_at = (
                "failed",
                "policy table unreachable",
                None,
            )
            s.add(row)
        await press(pilot, "escape")
        await press(pilot, "escape")
        await settle(pilot)
        dash = app.screen
        assert isinstance(dash, DashboardScreen)
        dash.load()
        await settle(pilot)
        assert dash.data.actions_waiting == 1
        recent = dash.query_one("#recent")
        first = str(recent.get_option_at_index(0).prompt)
        assert "failed" in first and "suspend sending" in first and f"#{tid}" in first
        # Its ticket shows it too, with the service's answer.
        app.open_ticket(tid)
        await settle(pilot)
        shown = app.screen.pane_text("dates")
        assert "failed" in shown and "policy table unreachable" in shown and "smtp-block" in shown
