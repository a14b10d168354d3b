"""French and English requests: days, queues, Wigii closure items, acknowledgements."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helpdesk.ingest.requests import (
    QUEUES,
    FrenchParserInfo,
    classify,
    closure_items,
    is_acknowledgement,
    new_text,
    parse_day,
    reports_suspicious_access,
)

TODAY = date(2026, 11, 20)  # a Friday


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Merci de désactiver mon compte le 15 janvier 2027.", date(2027, 1, 15)),
        ("le 15/01/2027", date(2027, 1, 15)),
        ("le 15.01.2027", date(2027, 1, 15)),
        ("le 15-01-2027", date(2027, 1, 15)),
        ("au 15/01/27", date(2027, 1, 15)),
        ("à partir du 1er mars", date(2027, 3, 1)),
        ("le 1er décembre", date(2026, 12, 1)),
        ("le 3 aout", date(2027, 8, 3)),
        ("le 3 août", date(2027, 8, 3)),
        ("le 14 fevrier 2027", date(2027, 2, 14)),
        ("lundi 7 décembre", date(2026, 12, 7)),
        ("January 15, 2027", date(2027, 1, 15)),
        ("on Dec 5th please", date(2026, 12, 5)),
        ("the 5th of December", date(2026, 12, 5)),
        ("2027-01-15", date(2027, 1, 15)),
        ("le 20 novembre", TODAY),  # today counts as "on or after today"
        ("le 19 novembre", date(2027, 11, 19)),  # already past this year: next year
        ("le 29 février", date(2028, 2, 29)),
        ("le 15/01", date(2027, 1, 15)),
        ("demain", date(2026, 11, 21)),
        ("aujourd’hui", TODAY),
        ("lundi prochain", date(2026, 11, 23)),
        ("mardi prochain", date(2026, 11, 24)),
        ("le 3 mar.", date(2027, 3, 3)),
        ("next Friday", date(2026, 11, 27)),
        ("à 10:30 le 2 mai", date(2027, 5, 2)),
        ("le 2 mai 2025", date(2025, 5, 2)),  # explicit past dates are returned as written
    ],
)
def test_parse_day(text: str, expected: date) -> None:
    assert parse_day(text, TODAY) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "Bonjour, merci.",
        "appelez le 06.12.34.56.78",
        "version 1.2.3",
        "le prix est de 15.01 euros",
        "le 31/02/2027",
        "voir https://relation.wigii.org/2027-01-15/x ou a@2027-01-15.example",
        "Le 3 mars 2026 à 10:00, Jean Dupont a écrit :\n> désactivez le 4 mars",
        "> le 15 janvier 2027",
    ],
)
def test_parse_day_finds_nothing(text: str) -> None:
    assert parse_day(text, TODAY) is None


def test_parse_day_at_the_end_of_the_calendar() -> None:
    assert parse_day("demain", date.max) is None
    assert parse_day("le 3 mars", date.max) is None


def test_parserinfo_knows_french_names() -> None:
    info = FrenchParserInfo()
    assert [
        info.month(m) for m in ("janvier", "février", "fevrier", "août", "aout", "décembre")
    ] == [1, 2, 2, 8, 8, 12]
    assert info.weekday("mercredi") == 2 and info.weekday("dimanche") == 6


@pytest.mark.parametrize(
    ("subject", "body", "queue"),
    [
        ("Mot de passe oublié", "Bonjour", "password-reset"),
        ("", "Pouvez-vous réinitialiser mon mot de passe ?", "password-reset"),
        ("Help", "I forgot my password, please reset it", "password-reset"),
        ("Re: accès", "je n'arrive plus à me connecter", "password-reset"),
        ("Résiliation", "Merci de supprimer mon compte.", "closure"),
        ("", "Je souhaite la désactivation de mon compte Wigii le 15 janvier.", "closure"),
        ("Account", "Please close my account", "closure"),
        ("Signalement d'abus", "un de vos membres m'envoie du spam", "abuse"),
        ("", "Ce site héberge du phishing", "abuse"),
        ("Plainte", "harcèlement répété sur votre forum", "abuse"),
        ("", "Mes mails arrivent en spam chez Gmail", "mail-reputation"),
        ("Blacklist", "notre IP est listée sur Spamhaus", "mail-reputation"),
        ("", "Our emails go to the junk folder at Outlook", "mail-reputation"),
        ("Bonjour", "Comment allez-vous ?", None),
        ("", "", None),
    ],
)
def test_classify(subject: str, body: str, queue: str | None) -> None:
    assert classify(subject, body) == queue


def test_classify_ignores_quoted_text() -> None:
    body = "Merci pour votre réponse.\n\n> Pour réinitialiser votre mot de passe, cliquez ici"
    assert classify("Re: ticket", body) is None


def test_closure_items_complete() -> None:
    text = (
        "Bonjour,\nJe souhaite la désactivation de mon compte jdupont sur https://relation.wigii.org/#Jean "
        "le 15 janvier 2027.\nÉcrit à contact@wigii.org."
    )
    assert closure_items(text, TODAY) == {
        "account": "jdupont",
        "system": "https://relation.wigii.org",
        "day": date(2027, 1, 15),
    }


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "Identifiant : marie.curie\nSystème : rise.wigii.org",
            {"account": "marie.curie", "system": "https://rise.wigii.org"},
        ),
        (
            "compte : « Jean Dupont » sur https://x.wigii-system.net/",
            {"account": "Jean Dupont", "system": "https://x.wigii-system.net"},
        ),
        (
            "Please close my account, username: jd42, on 2027-02-01",
            {"account": "jd42", "day": date(2027, 2, 1)},
        ),
        ("mon compte est jean.dupont@example.org", {"account": "jean.dupont@example.org"}),
        (
            "désactivez mon compte sur relation.wigii.org demain",
            {"system": "https://relation.wigii.org", "day": date(2026, 11, 21)},
        ),
        (
            "Voir www.wigii.org et https://resource.wigii.org",
            {"system": "https://resource.wigii.org"},
        ),
        ("Écrivez à contact@wigii.org", {}),
        ("supprimez le compte de Marie", {}),
        ("", {}),
    ],
)
def test_closure_items_partial(text: str, expected: dict[str, object]) -> None:
    assert closure_items(text, TODAY) == expected


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("Je confirme.", True),
        ("Bonjour, je vous confirme la désactivation. Cordialement", True),
        ("Bien reçu, merci !", True),
        ("Lu et approuvé", True),
        ("OK pour la désactivation", True),
        ("Oui", True),
        ("I confirm.", True),
        ("Confirmed, thanks", True),
        ("Je ne confirme pas.", False),
        ("Non, je ne confirme pas", False),
        ("Merci d'annuler ma demande", False),
        ("Please cancel, I changed my mind", False),
        ("Je confirme... en fait non, annulez", False),
        ("Pouvez-vous m'envoyer la confirmation ?", False),
        ("Merci.\n\n> Merci de confirmer en répondant « je confirme »", False),
        ("", False),
    ],
)
def test_is_acknowledgement(body: str, expected: bool) -> None:
    assert (
        is_acknowledgement("Re: Confirmation de la désactivation de votre compte", body) is expected
    )


def test_acknowledgement_in_subject_only() -> None:
    assert is_acknowledgement("Re: Confirmation - je confirme", "")
    assert not is_acknowledgement("RE: TR: Confirmation de désactivation", "")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Je crois que quelqu'un s'est connecté à mon compte", True),
        ("J'ai reçu une alerte d'accès non autorisé", True),
        ("Mon compte a été piraté !", True),
        ("mon mot de passe est compromis", True),
        ("Des connexions suspectes depuis l'étranger", True),
        ("My account was hacked", True),
        ("There was a suspicious login yesterday", True),
        ("Someone logged into my mailbox", True),
        ("I did not send these emails", True),
        ("Nous avons trouvé un compromis pour la réunion", False),
        ("J'ai oublié mon mot de passe", False),
        ("> quelqu'un s'est connecté", False),
    ],
)
def test_reports_suspicious_access(text: str, expected: bool) -> None:
    assert reports_suspicious_access(text) is expected


def test_new_text_stops_at_reply_headers() -> None:
    assert (
        new_text("Oui\n\nOn Mon, 1 Jan 2027 at 10:00, X <x@example.org> wrote:\n> question")
        == "Oui\n"
    )
    assert new_text("Oui\n-----Original Message-----\nFrom: x") == "Oui"


_WORDS = st.sampled_from(
    [
        "le",
        "15",
        "1er",
        "mars",
        "2027",
        "/",
        ".",
        "-",
        "29",
        "février",
        "Dec",
        "5th",
        "of",
        "demain",
        "lundi",
        "prochain",
        " ",
        "\n",
        "> ",
        "a écrit :",
        "compte",
        "mon",
        "jdupont",
        "https://relation.wigii.org",
        "je confirme",
        "annuler",
        "piraté",
        "31",
        "12",
    ]
)


@given(
    st.text(max_size=500) | st.lists(_WORDS, max_size=30).map("".join),
    st.text(max_size=100),
    st.dates(),
)
@settings(max_examples=300, deadline=None)
def test_request_helpers_never_fail(body: str, subject: str, today: date) -> None:
    assert classify(subject, body) in (*QUEUES, None)
    assert parse_day(body, today) is None or isinstance(parse_day(body, today), date)
    day = parse_day(body, TODAY)
    assert day is None or isinstance(day, date)
    assert set(closure_items(body, TODAY)) <= {"account", "system", "day"}
    assert isinstance(is_acknowledgement(subject, body), bool)
    assert isinstance(reports_suspicious_access(body), bool)
