"""The dashboard shows the dates the providers' texts make binding (issue 12), apart from the
indicative targets: how many open tickets carry one and the soonest, labelled, in French by
default, in the provider's zone; Enter opens its ticket; a role scoped elsewhere sees none."""

from __future__ import annotations

from helpdesk.base.i18n import set_lang
from helpdesk.cli.main import main
from screens.ticket import TicketScreen
from tests.tui import seed
from tests.tui.conftest import press, settle


def a_member_leaves_le_pic(url: str) -> None:
    """Through the real CLI: a Le PIC member whose membership ended on 2026-02-28; the sweep
    opens its non-renewal ticket, whose data removal "au plus tard après une année" binds."""
    common = ["--db", url, "--now", seed.LATER]
    assert (
        main(
            [
                *common,
                "--as",
                "tess",
                "account",
                "add",
                "asso-ruche",
                "--policy",
                "le-pic",
                "--email",
                "tech@ruche.example",
                "--kind",
                "member",
                "--org",
                "La Ruche",
                "--contact",
                "bureau@ruche.example",
                "--field",
                "membership-end=2026-02-28",
            ]
        )
        == 0
    )
    assert main([*common, "sweep"]) == 0


def screen_text(app) -> str:
    return "\n".join(s.text for s in app.screen._compositor.render_strips())


async def test_the_dashboard_shows_the_binding_dates_in_french_and_the_providers_zone(
    db_url, make_app
):
    app = make_app(db_url)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert "No date fixed by the texts ahead." in screen_text(app)
        app.exit()
    a_member_leaves_le_pic(db_url)
    set_lang(None)  # French, the default
    app = make_app(db_url)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        text = screen_text(app)
        line = next((ln for ln in text.splitlines() if "fixées" in ln), text)
        # 2027-02-28 00:00 in Paris is 2027-02-27 23:00 UTC: the provider's day is shown.
        assert "Dates fixées par les textes : 1 · 2027-02-28 #" in line, line
        assert "Suppression des données" in line and "data-removal" not in text
        counts = app.screen.data.counts
        assert counts["closure"]["binding"] == 1
        ticket = app.screen.data.binding[0]["ticket"]
        app.screen.query_one("#binding").focus()
        await press(pilot, "enter")
        assert isinstance(app.screen, TicketScreen) and app.screen.ticket_id == ticket
        app.exit()


async def test_a_role_scoped_to_another_provider_sees_no_binding_date(db_url, make_app):
    a_member_leaves_le_pic(db_url)
    assert (
        main(
            [
                "--db",
                db_url,
                "--as",
                "tess",
                "volunteer",
                "add",
                "wanda",
                "--role",
                "volunteer",
                "--policy",
                "wigii",
            ]
        )
        == 0
    )
    set_lang(None)  # French, the default
    app = make_app(db_url, user="wanda")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert app.screen.data.binding == []
        assert app.screen.data.counts["closure"].get("binding", 0) == 0
        assert "Aucune date fixée par les textes à venir." in screen_text(app)
        app.exit()
