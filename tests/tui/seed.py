"""A small deterministic database for the TUI tests and snapshots.

Not the demo (helpdesk.training.demo may change its scenarios as it grows): these tickets are fixed
so that SVG snapshots stay stable. The clock is fixed at ``NOW``.
"""

from __future__ import annotations

from helpdesk.base import clock
from helpdesk.policy import install
from helpdesk.service import api
from helpdesk.storage.db import write_session

NOW = "2026-03-02T09:00:00Z"  # the tickets are opened at 09:00
LATER = "2026-03-02T11:00:00Z"  # the tests run at 11:00

HOSTILE = [
    "[@click=app.quit]x[/]",
    '[link="http://x"]y[/link]',
    "[bold]loud",
    "unbalanced [/ and [/]",
    "osc52 \x1b]52;c;ZXZpbA==\x07 clip",
    "clear \x1b[2J screen",
]
HOSTILE_SUBJECT = " ".join(HOSTILE)


def build(url: str, *, hostile: bool = False) -> None:
    """Create the schema, the packs, three volunteers, accounts and a ticket or more per queue."""
    clock.set_now(NOW)
    install.init(url, training=False)
    with write_session(url) as s:
        api.add_volunteer(s, "alice", "oncall", name="Alice Martin")
        api.add_volunteer(s, "bob", "volunteer", name="Bob Lefèvre")
        api.add_volunteer(s, "tess", "techadmin", name="Tess Admin")
    with write_session(url) as s:
        api.add_account(s, login="jdupont", policy="indigos", email="jean.dupont@example.org")
        api.add_account(s, login="cmartin", policy="indigos", email="claire@example.org", lang="en")
        api.add_account(
            s,
            login="asso-velo",
            policy="le-pic",
            email="contact@velo.example",
            kind="member",
            org="Vélo Libre",
        )
        api.add_account(
            s,
            login="mairie-a",
            policy="communesplone",
            email="it@mairie-a.example",
            kind="admin",
            org="Mairie A",
            fields={"signature-date": "2023-01-15"},
        )
        api.add_account(s, login="space-b", policy="wigii", email="b@space.example", org="Espace B")
        api.add_account(
            s,
            login="shop-c",
            policy="weentime",
            email="c@shop.example",
            fields={"subscription-end": "2026-02-01"},
        )
    from helpdesk.rules.context import Actor

    alice = Actor("alice", "oncall")
    bob = Actor("bob", "volunteer")
    with write_session(url) as s:
        # 1: a password reset, ready for a link
        api.open_ticket(
            s,
            queue="password-reset",
            policy="indigos",
            actor=alice,
            account_login="jdupont",
            requester="jean.dupont@example.org",
            subject="Mot de passe oublié",
        )
        # 2: a closure request with its day
        api.open_ticket(
            s,
            queue="closure",
            policy="indigos",
            actor=alice,
            account_login="cmartin",
            requester="claire@example.org",
            subject="Please close my account",
            fields={"reason": "request", "day": "2026-03-20"},
            lang="en",
        )
        # 3: an abuse report (spam)
        api.open_ticket(
            s,
            queue="abuse",
            policy="indigos",
            actor=bob,
            account_login="jdupont",
            requester="abuse@reporter.example",
            subject="Spam from your network",
            fields={"category": "spam", "reporter": "abuse@reporter.example"},
        )
        # 4: a mail-reputation alert
        api.open_ticket(
            s,
            queue="mail-reputation",
            policy="le-pic",
            actor=alice,
            account_login="asso-velo",
            subject="Bounce ratio 0.45 on 300 messages",
            fields={
                "signal": "bounces",
                "messages": "300",
                "bounces": "135",
                "bounce-ratio": "0.45",
            },
        )
        # 5: a reset by phone (CommunesPlone forbids credentials by mail)
        api.open_ticket(
            s,
            queue="password-reset",
            policy="communesplone",
            actor=bob,
            account_login="mairie-a",
            requester="it@mairie-a.example",
            subject="Accès perdu au back-office",
        )
        # 6: a reset from someone who is not a registered contact
        api.open_ticket(
            s,
            queue="password-reset",
            policy="indigos",
            actor=bob,
            account_login="jdupont",
            requester="impostor@elsewhere.example",
            subject="Je suis Jean, envoyez le lien ici",
        )
        # 7: a closure for inactivity (Wigii)
        api.open_ticket(
            s,
            queue="closure",
            policy="wigii",
            actor=alice,
            account_login="space-b",
            subject="Inactivité constatée",
            fields={"reason": "inactivity"},
        )
        # 8: a lapsed subscription (Weentime): waiting
        api.open_ticket(
            s,
            queue="closure",
            policy="weentime",
            actor=alice,
            account_login="shop-c",
            subject="Abonnement échu",
            fields={"reason": "lapse"},
        )
        if hostile:
            api.open_ticket(
                s,
                queue="abuse",
                policy="indigos",
                actor=bob,
                account_login="jdupont",
                requester="x@evil.example",
                subject=HOSTILE_SUBJECT,
                fields={"category": "spam", "reporter": HOSTILE[0]},
                note=HOSTILE_SUBJECT,
            )
    # 10: overdue (opened long ago), 11: due this afternoon
    clock.set_now("2026-02-20T08:00:00Z")
    with write_session(url) as s:
        api.open_ticket(
            s,
            queue="abuse",
            policy="le-pic",
            actor=alice,
            account_login="asso-velo",
            requester="cert@example.net",
            subject="Site compromis : page de phishing",
            fields={"category": "compromise", "url": "https://velo.example/wp/x.php"},
        )
    clock.set_now("2026-02-23T15:00:00Z")
    with write_session(url) as s:
        api.open_ticket(
            s,
            queue="password-reset",
            policy="le-pic",
            actor=alice,
            account_login="asso-velo",
            requester="contact@velo.example",
            subject="Mot de passe SYMPA",
        )
    # a little history and a claim, at a later hour
    clock.set_now("2026-03-02T10:30:00Z")
    from helpdesk.workflow import engine

    with write_session(url) as s:
        engine.apply(s, 3, "contact", bob, note="Premier contact avec le titulaire.")
    with write_session(url) as s:
        # an incomplete closure request (Wigii asks for the system and the day)
        api.open_ticket(
            s,
            queue="closure",
            policy="wigii",
            actor=bob,
            account_login="space-b",
            requester="b@space.example",
            subject="Fermer notre espace",
            fields={"reason": "request"},
        )
    with write_session(url) as s:
        api.assign(s, 2, alice, "alice")
        api.claim(s, 1, bob, minutes=60)
    clock.set_now(LATER)
