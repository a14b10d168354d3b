"""The demo database: volunteers, accounts of the five providers, and a few hundred
tickets walked through the engine, so that every step of every procedure can be seen.

Nothing here writes a row the engine would not write itself: tickets are opened with
``engine.open_ticket`` and moved with ``engine.apply`` (the clock's steps as
``SYSTEM_ACTOR``, the inactivity / lapse / membership / term scans by ``sweep.run``), each
at its own moment of a simulated past. The simulation runs in time order, so event ids,
the audit chain and every ticket's history read like a year of real work.

Deterministic: a fixed seed, and with a fixed ``now`` the same database (down to the
audit chain's hashes) every time. The engine takes some 15 ms a step, so a build takes
several seconds: ``demo_database()`` (for ``helpdesk demo``) reuses a recent build.

Untrusted-looking text is part of the data on purpose: subjects, requesters, names, report
fields and a log line carrying Rich markup and terminal escape sequences. The core cleans
control characters from what enters it; markup must stay literal in the TUI.

Public: ``build_demo``, ``demo_url``, ``demo_database``, ``summarize``, ``all_states``,
``UNREACHABLE``, ``HOSTILE``.
"""

from __future__ import annotations

import hashlib
import heapq
import itertools
import json
import os
import random
import sqlite3
import time
import unicodedata
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, Callable, Iterator

from dateutil.relativedelta import relativedelta
from sqlalchemy import func
from sqlmodel import Session, col, select

from helpdesk.storage import audit, db
from helpdesk.storage.sqlite_copy import copy_sqlite
from helpdesk.base import clock, dates
from helpdesk.service import sweep
from helpdesk.workflow import engine
from helpdesk.policy import install
from helpdesk.rules.context import SYSTEM_ACTOR, Actor
from helpdesk.base.errors import HelpdeskError
from helpdesk.base.fields import EMAIL
from helpdesk.storage.models import (
    Account,
    Deadline,
    Event,
    Evidence,
    Policy,
    State,
    Ticket,
    Volunteer,
    Workflow,
)
from helpdesk.base.untrusted import clean

SEED = 1789
CRON = timedelta(minutes=5)  # how late after its due time the clock takes a timer
SWEEP_LEAD = timedelta(days=3)  # the scans ran this long before "now"

#: Text that must stay literal in the TUI: Rich/Textual markup, an action link, a
#: clipboard-writing OSC 52 sequence, screen-clearing CSI sequences, NUL and BEL.
HOSTILE = (
    "[@click=app.quit]x[/]",
    "[bold]gras",
    "\x1b]52;c;Zm9v\x07 copie",
    "\x1b[2J\x1b[31mécran effacé\x1b[0m",
    "[link=https://phish.example.net]Cliquez ici[/link]",
    "nul\x00 et cloche\x07 !",
)

#: (policy, queue, state) rows of the workflow tables that no ticket can reach through the
#: engine as the packs stand, and why. ``build_demo`` covers every other state.
# Packs are pruned to the states their tickets can reach (helpdesk.policy.packs.prune), so every
# state in the tables can be shown; this stays as the place to explain an exception.
UNREACHABLE: dict[tuple[str, str, str], str] = {}

#: States a ticket reaches only where real services answer, never on a training database
#: (the demo is one), and why. Shown to trainers by their reason, not built.
TRAINING_UNREACHABLE_STATES: dict[str, str] = {
    "erasing": "a training database acts on no service: its erasures are done at once",
}


def unreachable(policy: str, queue: str, state: str) -> str | None:
    """Why no demo ticket is in this state, or None if one must be."""
    return UNREACHABLE.get((policy, queue, state)) or TRAINING_UNREACHABLE_STATES.get(state)


VOLUNTEERS = (
    ("alice", "Alice Martin", "volunteer"),
    ("david", "David Lefèvre", "volunteer"),
    ("fatou", "Fatou Diallo", "volunteer"),
    ("bob", "Bob Girard", "oncall"),
    ("emma", "Emma Rousseau", "oncall"),
    ("chloe", "Chloé Bernard", "techadmin"),
    ("tom", "Tom Mercier", "trainer"),
)
ROLES = {login: role for login, _name, role in VOLUNTEERS}
# Who takes a step that needs at least this role (first line does most of the work).
ROSTER = {
    "volunteer": ("alice", "alice", "david", "david", "fatou", "bob", "emma"),
    "oncall": ("bob", "emma"),
    "techadmin": ("chloe",),
}

FIRST = (
    "Marie",
    "Jean",
    "Camille",
    "Lucas",
    "Léa",
    "Hugo",
    "Chloé",
    "Louis",
    "Manon",
    "Gabriel",
    "Inès",
    "Arthur",
    "Sarah",
    "Jules",
    "Emma",
    "Nathan",
    "Zoé",
    "Théo",
    "Alice",
    "Paul",
    "Juliette",
    "Antoine",
    "Clara",
    "Mathieu",
    "Élise",
    "Nicolas",
    "Margaux",
    "Julien",
    "Anaïs",
    "Thomas",
    "Sophie",
    "Olivier",
    "Françoise",
    "Bernard",
    "Monique",
    "Gérard",
    "Nathalie",
    "Hélène",
    "Pierre",
    "Agnès",
    "Yves",
    "Cécile",
    "Rémi",
    "Noémie",
)
LAST = (
    "Martin",
    "Bernard",
    "Dubois",
    "Thomas",
    "Robert",
    "Richard",
    "Petit",
    "Durand",
    "Leroy",
    "Moreau",
    "Simon",
    "Laurent",
    "Lefebvre",
    "Michel",
    "Garcia",
    "David",
    "Bertrand",
    "Roux",
    "Vincent",
    "Fournier",
    "Morel",
    "Girard",
    "André",
    "Mercier",
    "Dupont",
    "Lambert",
    "Bonnet",
    "François",
    "Legrand",
    "Garnier",
    "Faure",
    "Rousseau",
    "Blanc",
    "Guérin",
    "Muller",
    "Henry",
    "Roussel",
    "Perrin",
    "Morin",
    "Clément",
    "Gauthier",
    "Fontaine",
    "Chevalier",
    "Robin",
    "Masson",
    "Le Gall",
    "N'Diaye",
    "Da Silva",
    "Nguyen",
)
LAST_BE = (
    "Peeters",
    "Janssens",
    "Maes",
    "Jacobs",
    "Mertens",
    "Willems",
    "Claes",
    "Goossens",
    "Wouters",
    "Dubois",
    "Lambert",
    "Dupont",
    "Leclercq",
    "Renard",
    "Collard",
    "Hermans",
    "Lejeune",
    "Delvaux",
    "Piron",
    "Gilson",
)
FIRST_TN = (
    "Mohamed",
    "Ahmed",
    "Amira",
    "Youssef",
    "Salma",
    "Nour",
    "Karim",
    "Mehdi",
    "Sofia",
    "Yasmine",
    "Hela",
    "Rania",
    "Walid",
    "Sami",
    "Ines",
    "Aziz",
)
LAST_TN = (
    "Ben Salah",
    "Trabelsi",
    "Gharbi",
    "Hammami",
    "Ben Ali",
    "Jlassi",
    "Mejri",
    "Chaouch",
    "Karray",
    "Sassi",
    "Baccouche",
    "Ayari",
    "Dridi",
    "Zouari",
)

WIGII_SPACES = (
    ("Chorale La Villanelle", "villanelle"),
    ("Fondation Terre d'Accueil", "terre-accueil"),
    ("Association des parents d'élèves de Carouge", "ape-carouge"),
    ("Ludothèque du Lignon", "ludo-lignon"),
    ("Centre social Les Acacias", "cs-acacias"),
    ("Club alpin, section Salève", "cas-saleve"),
    ("Festival Voix de Fête", "voixdefete"),
    ("Réseau Femmes & Numérique", "femmes-numerique"),
)
CPAS = (
    "Namur",
    "Liège",
    "Charleroi",
    "Mons",
    "Tournai",
    "Wavre",
    "Arlon",
    "Dinant",
    "Huy",
    "Verviers",
    "Nivelles",
    "Gembloux",
    "Marche-en-Famenne",
    "Bastogne",
    "Ath",
    "Binche",
    "Spa",
    "Waterloo",
    "Jodoigne",
    "Ciney",
    "Andenne",
    "Seraing",
    "Herstal",
    "Mouscron",
    "La Louvière",
    "Fleurus",
    "Soignies",
    "Braine-l'Alleud",
    "Rochefort",
    "Malmedy",
)
PIC_MEMBERS = (
    "Les Amis du Jardin partagé",
    "Compagnie du Théâtre du Préau",
    "AMAP Les Paniers de la Croix-Rousse",
    "Repair Café Villeurbanne",
    "Ciné-club Lumière Nord",
    "Club photo Objectif Saône",
    "Lire et faire lire 69",
    "Solidarité Migrants Lyon 8",
    "Maison des jeunes de Vaulx",
    "Chorale Arc-en-Ciel",
    "Vélo en Ville",
    "Les Petits Débrouillards Rhône",
    "Radio Quartiers Libres",
    "Épicerie solidaire La Passerelle",
    "Collectif [red]Rouge[/red] & Noir",
    "Ateliers de la Soie",
    "Compagnons bâtisseurs Rhône",
    "Jardins de Cocagne Monts d'Or",
    "Ludothèque Croque-Dés",
    "Association Cyclo-Tourisme Vienne",
    "Écoute Femmes Lyon",
    "Foyer rural de Chasselay",
    "Terre de Liens antenne Rhône",
    "Les Ami·es de la Bibliothèque",
    "Coop'Cirque",
    "Harmonie municipale de Tassin",
    "Amicale laïque de Gerland",
    "Tiers-lieu La Fabrique",
    "Atelier vélo Le Recycleur",
    "Union des locataires Mermoz",
    "Association Mémoire ouvrière",
    "Scouts et Guides, groupe Saint-Just",
    "Festival Les Nuits du Conte",
    "Espace Santé Solidaire",
    "Collectif Climat Croix-Rousse",
    "Club d'échecs de la Guillotière",
    "Bibliothèque de rue Les Pages",
    "Association des usagers du bus C3",
    "Atelier couture La Bobine",
    "Amis de l'orgue de Saint-Bruno",
    "Collectif des sans-logis Lyon",
    "Compagnie Les Arts Mêlés",
)
WEENTIME_CLIENTS = (
    ("Boulangerie Ben Salah", "TN"),
    ("Clinique Les Oliviers", "TN"),
    ("Transports Gharbi & Fils", "TN"),
    ("Cabinet Trabelsi Expertise", "TN"),
    ("Atelier Menuiserie Dupuis", "FR"),
    ("Librairie Le Marque-Page", "FR"),
    ("Agence Médina Digitale", "TN"),
    ("Hôtel Dar Jerba", "TN"),
    ("Coopérative oléicole de Sfax", "TN"),
    ("Crèche Les Petits Loups", "FR"),
    ("Froid Service Sousse", "TN"),
    ("Pharmacie centrale de Nabeul", "TN"),
    ("Imprimerie du Cap Bon", "TN"),
    ("Garage Auto Plus Bizerte", "TN"),
    ("Association Enfance & Avenir", "FR"),
    ("Centre d'appels Carthage Contact", "TN"),
    ("Bureau d'études Hydro-Sahel", "TN"),
)

RESET_SUBJECTS = (
    "Mot de passe oublié",
    "Impossible de me connecter à mon compte",
    "Réinitialisation du mot de passe ({login})",
    "Compte bloqué après plusieurs essais",
    "Demande de nouveau mot de passe",
    "Je n'arrive plus à accéder à {login}",
    "Password reset, please",
)
SUSPICIOUS_SUBJECTS = (
    "Connexion suspecte sur mon compte",
    "Quelqu'un a changé mon mot de passe ?",
    "Des messages partent de ma boîte sans moi",
)
CLOSURE_SUBJECTS = (
    "Demande de désactivation de mon compte",
    "Suppression de compte",
    "Fermeture du compte {login}",
    "Je quitte l'association : merci de fermer mon accès",
)
ABUSE = {
    "spam": ("Spam envoyé depuis {host}", "Signal Spam"),
    "illicit-content": (
        "Contenu manifestement illicite hébergé sur {host}",
        "Plateforme de signalement",
    ),
    "harassment": (
        "Messages de harcèlement envoyés depuis un compte hébergé",
        "Une personne visée",
    ),
    "security": ("Tentatives d'intrusion depuis {host}", "Équipe sécurité d'un hébergeur voisin"),
    "resources": ("Consommation CPU anormale : {host}", "Supervision"),
    "illegal": ("Vente de contrefaçons sur {host}", "Service juridique d'une marque"),
    "compromise": ("Site compromis : page d'hameçonnage sur {host}", "Phishing Initiative"),
}
REPORTERS = (
    "abuse@fai-voisin.example.net",
    "signalement@example.com",
    "noc@hebergeur.example.net",
    "securite@example.org",
)

NOTES = {
    "reject": (
        "L'adresse du demandeur n'est pas le contact enregistré ; réponse : écrire depuis l'adresse connue.",
        "Identité non vérifiable, aucune des adresses déclarées.",
        "Demande envoyée depuis une adresse inconnue, sans élément vérifiable.",
    ),
    "contact": (
        "Message envoyé au titulaire pour comprendre l'usage et proposer une régularisation.",
        "Premier échange : rappel de la charte, demande d'explication.",
        "Appel au responsable, qui va corriger de son côté.",
    ),
    "warn": (
        "Avertissement formel : usage contraire aux conditions, récidive signalée.",
        "Avertissement envoyé, avec le rappel de l'article concerné.",
    ),
    "suspend": (
        "Le problème continue malgré l'échange : suspension de l'accès.",
        "Pas de réponse après relance ; suspension en attendant la régularisation.",
    ),
    "interrupt": (
        "Application compromise : page d'hameçonnage active, interruption immédiate.",
        "Processus de minage détecté, la machine sature : interruption.",
    ),
    "close-account": ("Récidive après suspension : fermeture du compte.",),
    "report-authorities": ("Faits pénalement répréhensibles : dossier transmis au parquet.",),
    "reinstate": (
        "Mot de passe changé et site nettoyé : accès rétabli.",
        "Régularisation constatée : rétablissement.",
    ),
    "resolve": (
        "Régularisé par le titulaire, rien d'autre à faire.",
        "Faux positif après vérification.",
        "Le contenu a été retiré par le titulaire.",
    ),
    "read-logs": (
        "Vérifier les adresses IP des connexions signalées.",
        "Corréler l'heure des envois avec les connexions.",
    ),
    "give-notice": (
        "Espace sans activité depuis longtemps, coût de stockage élevé : préavis affiché.",
    ),
    "cancel": (
        "L'utilisateur a changé d'avis.",
        "Demande retirée par le titulaire.",
    ),
    "suspend-sending": (
        "Envoi massif en cours, rebonds en hausse : suspension temporaire de l'envoi.",
        "Plaintes répétées : envoi suspendu le temps de corriger la liste.",
    ),
    "acknowledge": (
        "Quittance reçue par courriel en réponse à notre confirmation.",
        "Quittance donnée par téléphone par le titulaire, rappelé au numéro connu.",
    ),
    "emergency": (
        "Urgence : compte compromis qui envoie du spam en ce moment.",
        "Urgence : intrusion en cours signalée par le titulaire lui-même.",
    ),
}


CACHE_HOURS = 6  # a built demo is reused this long by ``demo_database``


def _demo_folder() -> Path:
    from platformdirs import user_cache_dir

    folder = Path(user_cache_dir("helpdesk", appauthor=False)) / "demo"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def demo_url() -> str:
    """A fresh SQLite file under the user cache directory, for ``helpdesk demo``.

    Demo files older than two days (and stale cached builds) are removed from that folder.
    """
    folder = _demo_folder()
    now = time.time()
    for pattern, age in (("demo-*.db*", 2 * 86400), ("cache-*", CACHE_HOURS * 3600)):
        for old in folder.glob(pattern):
            try:
                if old.stat().st_mtime < now - age:
                    old.unlink()
            except OSError:
                pass
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    for n in itertools.count():
        path = folder / f"demo-{stamp}-{os.getpid()}{'-' + str(n) if n else ''}.db"
        if not path.exists():
            return f"sqlite:///{path}"
    raise AssertionError("unreachable")


def demo_database(
    *, training: bool = True, progress: Callable[[int, int], None] | None = None
) -> tuple[str, dict]:
    """A fresh demo database for ``helpdesk demo``: ``(url, summary)``.

    Building one walks every ticket through the engine (several seconds), so a build is
    kept in the cache folder and copied for the next runs during ``CACHE_HOURS``, as long
    as the code, the packs and the templates are unchanged and the clock is the wall clock.
    The copy's histories then end when the cached build was made, not now.
    """
    url = demo_url()
    target = Path(url[len("sqlite:///") :])
    moved = abs((clock.now() - datetime.now(clock.UTC)).total_seconds()) > 60
    cached = _demo_folder() / f"cache-{_cache_key(training)}.db"
    meta = cached.with_suffix(".json")
    if (
        not moved
        and cached.exists()
        and meta.exists()
        and time.time() - cached.stat().st_mtime < CACHE_HOURS * 3600
    ):
        try:
            summary = json.loads(meta.read_text(encoding="utf-8"))
            copy_sqlite(cached, target)
            summary.update(url=url, cached=True)
            return url, summary
        except (OSError, ValueError, sqlite3.Error):
            for leftover in target.parent.glob(target.name + "*"):
                leftover.unlink(missing_ok=True)
    summary = build_demo(url, training=training, progress=progress)
    if not moved:
        try:
            partial = cached.with_name(f"{cached.stem}-{os.getpid()}.part")
            copy_sqlite(target, partial)
            os.replace(partial, cached)
            meta.write_text(json.dumps(summary, ensure_ascii=False), encoding="utf-8")
        except (OSError, sqlite3.Error):
            pass
    return url, summary


def _cache_key(training: bool) -> str:
    """What a cached build depends on: the core's code, the shipped data, the schema."""
    from helpdesk import __version__
    from helpdesk.base.paths import data_dir

    h = hashlib.sha256(f"{__version__}|{install.HEAD}|{training}|".encode())
    # The whole core, not this module only: the engine, the guards and the effects walk
    # every ticket of the demo, so any change to them means a new build.
    package = Path(__file__).resolve().parent.parent
    for path in sorted(package.rglob("*.py")):
        h.update(str(path.relative_to(package)).encode() + b"\0" + path.read_bytes())
    root = data_dir()
    for path in sorted(
        p for p in root.rglob("*") if p.is_file() and p.suffix in (".toml", ".txt", ".mo")
    ):
        h.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    return h.hexdigest()[:16]


def build_demo(
    url: str,
    *,
    now: datetime | None = None,
    training: bool = True,
    extra: int = 100,
    progress: Callable[[int, int], None] | None = None,
) -> dict:
    """Create a demo database at ``url`` and return a summary of what is in it.

    The database must be new or empty. ``now`` is the demo's present (the clock's now by
    default): every ticket's history lies before it. About 165 tickets make the scenarios
    (every state, the trainers' stories, hostile text); ``extra`` more are the ordinary run
    of a year. Every ticket goes through the engine, which takes some 15 ms a step:
    ``progress(done, total)`` is called as tickets are walked, for a progress bar.
    """
    started = time.perf_counter()
    end = clock.as_utc(now) if now is not None else clock.now()
    end = end.replace(microsecond=0)
    install.init(url, training=training)
    with db.read_session(url) as s:
        if (
            s.exec(select(func.count()).select_from(Ticket)).one()
            or s.exec(select(func.count()).select_from(Account)).one()
        ):
            raise ValueError(
                f"{url} already holds accounts or tickets: the demo needs a new database"
            )
    engine_ = db.get_engine(url).execution_options(immediate=True)
    session = Session(engine_, expire_on_commit=False)
    try:
        demo = _Demo(url, session, end, training, extra=extra, progress=progress)
        demo.build()
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
    summary = summarize(url, end)
    summary["failures"] = demo.failures
    summary["repeat_offenders"] = demo.repeat_offenders
    missing = [k for k in summary["missing"] if unreachable(*k.split("/")) is None]
    if missing and not demo.failures:
        raise AssertionError(f"demo: no ticket in {', '.join(missing)}")
    summary["seconds"] = round(time.perf_counter() - started, 2)
    return summary


def all_states(session: Session) -> list[tuple[str, str, str]]:
    """Every (policy, queue, state) of the workflow tables."""
    rows = session.exec(
        select(Workflow.policy_key, Workflow.queue, State.key)
        .join(State, col(State.workflow_id) == Workflow.id)
        .order_by(col(Workflow.policy_key), col(Workflow.queue), col(State.position))
    )
    return [(policy, queue, state) for policy, queue, state in rows]


def summarize(url: str, now: datetime | None = None) -> dict:
    """Counts per policy, queue and state; which states no ticket is in."""
    now = now or clock.now()
    with db.read_session(url) as s:
        states: dict[str, dict[str, dict[str, int]]] = {}
        for p, q, st in all_states(s):
            states.setdefault(p, {}).setdefault(q, {})[st] = 0
        for p, q, st, n in s.exec(
            select(Ticket.policy_key, Ticket.queue, Ticket.state, func.count()).group_by(
                Ticket.policy_key, Ticket.queue, Ticket.state
            )
        ):
            states.setdefault(p, {}).setdefault(q, {})[st] = n
        count = lambda model: s.exec(select(func.count()).select_from(model)).one()  # noqa: E731
        overdue = s.exec(
            select(func.count())
            .select_from(Ticket)
            .where(
                Ticket.state_kind != "done", col(Ticket.due_at).is_not(None), Ticket.due_at <= now
            )
        ).one()
        return {
            "url": url,
            "now": clock.iso(now),
            "tickets": count(Ticket),
            "accounts": count(Account),
            "volunteers": count(Volunteer),
            "events": count(Event),
            "overdue": overdue,
            "states": states,
            "missing": [
                f"{p}/{q}/{st}"
                for p, qs in states.items()
                for q, sts in qs.items()
                for st, n in sts.items()
                if n == 0
            ],
            "unreachable": {
                f"{p}/{q}/{st}": why
                for p, qs in states.items()
                for q, sts in qs.items()
                for st in sts
                if (why := unreachable(p, q, st))
            },
        }


# --- the simulation ----------------------------------------------------------------------


@dataclass
class Step:
    """One step of a plan: a person's action, or (``action=None``) the clock taking the
    ticket's pending timer once it is due."""

    action: str | None = None
    after: timedelta | None = None  # wait before it (None: a human delay)
    note: str | None = None  # None: a stock note when the step needs one
    fields: dict | None = None  # values may be callables of the step's now
    checks: tuple = ()
    by: str | None = None  # a volunteer login (default: someone with the role)


@dataclass
class Plan:
    policy: str
    queue: str
    account: Account | None
    start: datetime
    subject: str = ""
    requester: str = ""
    fields: dict = field(default_factory=dict)
    steps: list[Step] = field(default_factory=list)
    opener: str = "system"  # "system" (mail, scans) or a volunteer role
    note: str = ""
    stop: str | None = None  # leave the ticket once it is in this state
    then: Callable[[Any, "Plan", Any], None] | None = None  # after opening: (demo, plan, outcome)
    evidence: list[tuple[str, str, bytes]] = field(default_factory=list)  # (kind, source, content)
    ticket_id: int | None = None  # preset: the plan walks a ticket opened elsewhere
    label: str = ""


def _of(what: str, place: str) -> str:
    """« CPAS de Namur », « CPAS d'Arlon »."""
    return f"{what} d'{place}" if place[:1] in "AEIOUÉ" else f"{what} de {place}"


class _StepFailed(Exception):
    pass


def _slug(text: str) -> str:
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    out = "".join(c.lower() if c.isalnum() else "-" for c in text)
    while "--" in out:
        out = out.replace("--", "-")
    return out.strip("-")


class _Demo:
    def __init__(
        self,
        url: str,
        session: Session,
        end: datetime,
        training: bool,
        *,
        extra: int = 100,
        progress: Callable[[int, int], None] | None = None,
    ):
        self.url = url
        self.extra = max(0, extra)
        self.progress = progress
        self.walked = 0
        self.planned = 0
        self.s = session
        self.end = end
        self.training = training
        self.rng = random.Random(SEED)
        self.sweep_at = end - SWEEP_LEAD
        self.now = end - relativedelta(years=3)
        self.heap: list = []
        self.seq = itertools.count()
        self.policies = {p.key: p for p in session.exec(select(Policy))}
        self.pools: dict[tuple[str, str], list[Account]] = {}
        self.logins: set[tuple[str, str]] = set()
        self.repeat_offenders: list[dict] = []
        self.failures: list[dict] = []

    # -- small helpers

    def tz(self, policy: str) -> str:
        return self.policies[policy].timezone

    def day(self, policy: str, moment: datetime) -> date:
        return clock.local_day(moment, self.tz(policy))

    def ago(self, days: float, hours: float = 0) -> datetime:
        return self.end - timedelta(days=days, hours=hours)

    def between(self, old_days: float, new_days: float) -> datetime:
        """A moment between ``old_days`` and ``new_days`` ago (to the minute)."""
        moment = self.end - timedelta(
            seconds=int(self.rng.uniform(new_days * 86400, old_days * 86400))
        )
        return moment.replace(second=0)

    def human_delay(self, quick: bool = False) -> timedelta:
        """How long a person takes to get to the next step (``quick``: within hours, for
        tickets that must reach a given state before the demo's now)."""
        if quick:
            return timedelta(minutes=self.rng.randint(10, 180))
        r = self.rng.random()
        if r < 0.65:
            return timedelta(minutes=self.rng.randint(12, 8 * 60))
        if r < 0.92:
            return timedelta(minutes=self.rng.randint(8 * 60, 36 * 60))
        return timedelta(minutes=self.rng.randint(36 * 60, 4 * 24 * 60))

    def daytime(self, moment: datetime) -> datetime:
        """Volunteers sleep too: a step that would fall at night waits for the morning."""
        if moment.hour < 6:
            moment = moment.replace(hour=self.rng.randint(6, 8), minute=self.rng.randint(0, 59))
        return moment

    def note(self, key: str) -> str:
        return self.rng.choice(NOTES.get(key) or ("Fait.",))

    def person(self, firsts=FIRST, lasts=LAST) -> tuple[str, str]:
        return self.rng.choice(firsts), self.rng.choice(lasts)

    def stranger(self) -> str:
        first, last = self.person()
        return f"{_slug(first)}.{_slug(last)}{self.rng.randint(60, 99)}@courriel.example.net"

    def actor(self, role: str, by: str | None = None) -> Actor:
        login = by or self.rng.choice(ROSTER.get(role, ROSTER["volunteer"]))
        return Actor(login, ROLES[login])

    # -- accounts

    def add_account(
        self, policy: str, pools: str | tuple, *, login: str, email: str, created: datetime, **kw
    ) -> Account:
        base, n = login, 2
        while (policy, login) in self.logins:
            login, n = f"{base}{n}", n + 1
        if n > 2 and "@" in email:
            local, _sep, domain = email.partition("@")
            email = f"{local}{n - 1}@{domain}"
        self.logins.add((policy, login))
        # The rows ``service.add_account`` would write (its checks hold for this data by
        # construction), added in one flush: a few hundred accounts in a blink.
        acc = Account(
            policy_key=policy,
            login=clean(login),
            email=email.lower(),
            kind=kw.get("kind", "user"),
            org=clean(kw.get("org", "")),
            contacts=[c.lower() for c in kw.get("contacts", [])],
            status="active",
            lang=kw.get("lang", ""),
            last_login=kw.get("last_login"),
            fields={k: clean(str(v)) for k, v in (kw.get("fields") or {}).items()},
            created_at=created,
            updated_at=created,
        )
        self.s.add(acc)
        for pool in (pools,) if isinstance(pools, str) else pools:
            self.pools.setdefault((policy, pool), []).append(acc)
        return acc

    def take(self, policy: str, pool: str) -> Account:
        """An account used once (a closure, a sanction): never picked again."""
        items = self.pools.get((policy, pool))
        if not items:
            raise RuntimeError(f"demo: the {policy} pool {pool!r} is exhausted")
        return items.pop(self.rng.randrange(len(items)))

    def pick(self, policy: str, pool: str) -> Account:
        return self.rng.choice(self.pools[(policy, pool)])

    # -- the clock of the simulation

    def schedule(self, plan: Plan) -> None:
        if plan.start <= self.end:
            self.planned += 1
            self._push(plan.start, self._walk(plan))

    def _push(self, when: datetime, gen: Iterator) -> None:
        heapq.heappush(self.heap, (when, next(self.seq), gen))

    def run(self) -> None:
        while self.heap:
            when, _n, gen = heapq.heappop(self.heap)
            self.now = max(self.now, when)
            try:
                nxt = next(gen)
            except StopIteration:
                self.walked += 1
                if self.progress is not None and self.walked % 10 == 0:
                    self.progress(self.walked, self.planned)
                continue
            if nxt is not None and nxt <= self.end:
                self._push(nxt, gen)
            else:
                gen.close()

    def _walk(self, plan: Plan) -> Iterator[datetime]:
        try:
            if plan.ticket_id is None:
                out = self.guarded(plan, "open", lambda: self.open(plan))
                plan.ticket_id = out.ticket.id
                if plan.then:
                    plan.then(self, plan, out)
            for step in plan.steps:
                ticket = self.s.get(Ticket, plan.ticket_id)
                if plan.stop is not None and ticket.state == plan.stop:
                    return
                if step.action is None:
                    dl = self.pending_timer(plan.ticket_id)
                    if dl is None:
                        continue
                    yield max(dl.due_at + CRON, self.now)
                    self.guarded(plan, dl.action or "timer", lambda: self.fire(plan.ticket_id, dl))
                else:
                    delay = (
                        step.after
                        if step.after is not None
                        else self.human_delay(quick=plan.stop is not None)
                    )
                    yield (
                        self.daytime(self.now + delay)
                        if step.after is None and plan.stop is None
                        else self.now + delay
                    )
                    self.guarded(plan, step.action, lambda: self.act(plan, step))
        except _StepFailed:
            return

    def guarded(self, plan: Plan, what: str, fn: Callable):
        """Run one engine call in a savepoint. A crash inside the core (not a refusal: the
        plans only take allowed steps) is recorded, undone, and ends this plan only."""
        savepoint = self.s.begin_nested()
        try:
            result = fn()
        except (HelpdeskError, RuntimeError):
            savepoint.rollback()
            raise
        except Exception as exc:  # noqa: BLE001 - a bug in the core, reported in the summary
            savepoint.rollback()
            self.failures.append(
                {
                    "plan": plan.label,
                    "policy": plan.policy,
                    "queue": plan.queue,
                    "ticket": plan.ticket_id,
                    "step": what,
                    "error": f"{type(exc).__name__}: {exc}",
                }
            )
            raise _StepFailed() from exc
        savepoint.commit()
        return result

    def _sweep(self) -> Iterator[datetime]:
        """The cron job: commit what the simulation did so far, then let ``sweep.run``
        take what is due and open what the scans find."""
        self.s.commit()
        sweep.run(self.url, now=self.now)
        self.s.expire_all()
        return
        yield  # a generator

    # -- engine calls

    def open(self, plan: Plan):
        actor = SYSTEM_ACTOR if plan.opener == "system" else self.actor(plan.opener)
        fields = {k: (v(self.now) if callable(v) else v) for k, v in plan.fields.items()}
        if plan.requester and not EMAIL.match(plan.requester.strip()):
            raise RuntimeError(f"demo plan {plan.label}: bad requester {plan.requester!r}")
        try:
            out = engine.open_ticket(
                self.s,
                queue=plan.queue,
                policy_key=plan.policy,
                actor=actor,
                account=plan.account,
                requester=plan.requester,
                subject=plan.subject,
                fields=fields,
                note=plan.note,
                now=self.now,
            )
        except HelpdeskError as exc:
            raise RuntimeError(f"demo plan {plan.label or plan.queue}: cannot open: {exc}") from exc
        for kind, source, content in plan.evidence:
            self.s.add(
                Evidence(
                    ticket_id=out.ticket.id,
                    kind=kind,
                    source=source,
                    sha256=hashlib.sha256(content).hexdigest(),
                    received_at=self.now,
                    content=content,
                )
            )
        return out

    def act(self, plan: Plan, step: Step):
        ticket = self.s.get(Ticket, plan.ticket_id)
        d = engine.definition(self.s, ticket.workflow_id)
        t = next((t for t in d.from_state(ticket.state) if t.key == step.action), None)
        if t is None:
            raise RuntimeError(
                f"demo plan {plan.label}: {step.action} not possible from {ticket.policy_key}/{ticket.queue}/{ticket.state} (#{ticket.id})"
            )
        note = step.note
        if note is None:
            note = self.note(step.action) if t.note_required or self.rng.random() < 0.25 else ""
        fields = {k: (v(self.now) if callable(v) else v) for k, v in (step.fields or {}).items()}
        wf_fields = d.workflow.fields or {}
        if (
            step.action == "read-logs" and "purpose" in wf_fields
        ):  # Wigii art. 5: a purpose the text gives
            fields.setdefault("purpose", self.rng.choice(["technical", "misuse", "misuse"]))
        if (
            ticket.queue == "mail-reputation"
            and step.action == "suspend"
            and "ground" in wf_fields
            and not (ticket.fields or {}).get("compromised")
        ):
            fields.setdefault(
                "ground", "manifest-abuse"
            )  # Indigos art. 7: one of its three grounds
        try:
            out = engine.apply(
                self.s,
                plan.ticket_id,
                step.action,
                self.actor(t.role, step.by),
                note=note,
                fields=fields,
                checks=list(step.checks),
                now=self.now,
            )
        except HelpdeskError as exc:
            raise RuntimeError(
                f"demo plan {plan.label}: {step.action} on #{plan.ticket_id} ({ticket.state}) refused: {exc}"
            ) from exc
        out.reveal.clear()  # a one-time phone code: read out to nobody in a demo
        return out

    def pending_timer(self, ticket_id: int) -> Deadline | None:
        return self.s.exec(
            select(Deadline)
            .where(
                Deadline.ticket_id == ticket_id,
                Deadline.status == "pending",
                col(Deadline.action).is_not(None),
            )
            .order_by(col(Deadline.due_at), col(Deadline.id))
        ).first()

    def fire(self, ticket_id: int, dl: Deadline) -> None:
        """What ``sweep`` does for one due timer: the clock takes the step (unless a sweep
        took it meanwhile)."""
        if dl.status != "pending" or dl.due_at > self.now:
            return
        try:
            engine.apply(
                self.s,
                ticket_id,
                dl.action,
                SYSTEM_ACTOR,
                now=self.now,
                note=f"{dl.name}: {clock.iso(dl.due_at)}",
            )
        except HelpdeskError as exc:
            raise RuntimeError(f"demo: timer {dl.action} on #{ticket_id} refused: {exc}") from exc

    # -- building

    def build(self) -> None:
        self.volunteers()
        self.accounts()
        self.s.flush()
        self._push(self.sweep_at, self._sweep())
        self.coverage()
        self.repeat()
        self.special()
        self.fillers()
        self.run()
        if self.progress is not None:
            self.progress(self.planned, self.planned)

    def volunteers(self) -> None:
        at = self.end - relativedelta(years=3)
        for i, (login, name, role) in enumerate(VOLUNTEERS):
            when = at + timedelta(days=30 * i)
            if login == "tom" and not self.training:
                continue
            self.s.add(Volunteer(login=login, name=name, role=role, created_at=when))
            audit.append(
                self.s,
                Event(
                    at=when,
                    actor="system",
                    action="volunteer-add",
                    data={"login": login, "role": role},
                ),
            )
        self.s.flush()

    def created(self) -> datetime:
        return self.end - timedelta(days=self.rng.randint(430, 1500))

    def recent_login(self, max_days: int = 300) -> datetime:
        days = (
            self.rng.uniform(0.2, max_days)
            if self.rng.random() < 0.3
            else self.rng.uniform(0.1, 45)
        )
        return (self.end - timedelta(days=days)).replace(microsecond=0)

    def accounts(self) -> None:
        rng = self.rng
        # Wigii: users of association systems; a few not logged in for more than a year.
        spaces = list(WIGII_SPACES)
        plan = [
            ("reset", 26),
            ("closure", 16),
            ("space", 4),
            ("sanction", 14),
            ("inactive", 5),
            ("sweep-inactive", 3),
        ]
        for pool, n in plan:
            for _i in range(n):
                org, sys_slug = rng.choice(spaces)
                first, last = self.person()
                login = f"{_slug(first)}.{_slug(last)}"
                if pool == "inactive":
                    last_login = self.end - relativedelta(
                        months=rng.randint(17, 30), days=rng.randint(0, 25)
                    )
                elif pool == "sweep-inactive":
                    last_login = self.end - relativedelta(
                        months=rng.randint(13, 26), days=rng.randint(5, 25)
                    )
                else:
                    last_login = self.recent_login()
                self.add_account(
                    "wigii",
                    pool,
                    login=login,
                    email=f"{login}@{sys_slug}.example.org",
                    org=org,
                    last_login=last_login,
                    created=min(self.created(), last_login - timedelta(days=30)),
                    fields={"system": f"https://{sys_slug}.wigii.example.org"},
                    lang="en" if rng.random() < 0.08 else "",
                )
        self.add_account(
            "wigii",
            "reset",
            login="eve.markup",
            email="eve.markup@voixdefete.example.org",
            org="Festival [@click=app.quit]x[/] & Cie",
            last_login=self.recent_login(),
            created=self.created(),
            fields={"system": "https://voixdefete.wigii.example.org"},
        )

        # Indigos: members with a mailbox on the shared domain; registered contact elsewhere.
        for pool, n in (("reset", 24), ("closure", 12), ("sanction", 22), ("repeat", 2)):
            for _i in range(n):
                first, last = self.person()
                login = f"{_slug(first)}.{_slug(last)}"
                self.add_account(
                    "indigos",
                    pool,
                    login=login,
                    email=f"{login}@perso.example.net",
                    kind="member",
                    last_login=self.recent_login(),
                    created=self.created(),
                    fields={"mailbox": f"{login}@indigos.example.org"},
                    lang="en" if rng.random() < 0.1 else "",
                )

        # CommunesPlone: member CPAS (signature dates) and their end users.
        cities = list(CPAS)
        rng.shuffle(cities)
        members: list[Account] = []
        for i, city in enumerate(cities):
            slug = _slug(city)
            domain = f"cpas-{slug}.example.org"
            phone = f"+32 {60 + i % 30} {(i * 37) % 90 + 10} {(i * 53) % 90 + 10} {(i * 71) % 90 + 10}"  # the number a code is read out to
            pool = (
                ("sanction", "sanction", "reset", "sanction", "closure", "sanction")[i % 6]
                if i >= 6
                else "special"
            )
            sig = self.end - relativedelta(months=rng.randint(14, 44), days=rng.randint(0, 27))
            acc = self.add_account(
                "communesplone",
                pool,
                login=f"cpas-{slug}",
                email=f"informatique@{domain}",
                kind="member",
                org=_of("CPAS", city),
                contacts=[f"direction@{domain}", f"secretariat@{domain}"],
                last_login=self.recent_login(90),
                created=self.created(),
                fields={
                    "signature-date": sig.date().isoformat(),
                    "commune-signed": rng.choice(["oui", "non"]),
                    "phone": phone,
                },
            )
            members.append(acc)
            for _j in range(rng.randint(1, 3)):
                first, last = self.person(FIRST, LAST_BE)
                login = f"{_slug(first)}.{_slug(last)}.{slug}"
                self.add_account(
                    "communesplone",
                    "end-user",
                    login=login,
                    email=f"{_slug(first)}.{_slug(last)}@{domain}",
                    kind="end-user",
                    org=_of("CPAS", city),
                    last_login=self.recent_login(),
                    created=self.created(),
                    fields={"phone": phone},
                )
        self.cpas_special = [m for m in members if m in self.pools[("communesplone", "special")]]

        # Le PIC: member associations (contacts, membership end) and users of its own services.
        names = list(PIC_MEMBERS)
        for i, name in enumerate(names):
            slug = _slug(name)[:28].strip("-")
            domain = f"{slug}.example.org"
            tech, admin = self.person(), self.person()
            pool = (
                "sanction",
                "closure",
                "sanction",
                "reset",
                "sanction",
                "nonrenewal",
                "sanction",
            )[i % 7]
            if name.startswith("Collectif"):
                pool = "reset"
            end_ = self.end + relativedelta(months=rng.randint(1, 11), days=rng.randint(0, 27))
            self.add_account(
                "le-pic",
                pool,
                login=slug,
                email=f"bureau@{domain}",
                kind="member",
                org=name,
                contacts=[
                    f"{_slug(tech[0])}.{_slug(tech[1])}@{domain}",
                    f"{_slug(admin[0])}.{_slug(admin[1])}@{domain}",
                ],
                last_login=self.recent_login(),
                created=self.created(),
                fields={
                    "membership-end": end_.date().isoformat(),
                    "contact-technique": f"{tech[0]} {tech[1]}",
                    "contact-administratif": f"{admin[0]} {admin[1]}",
                    "site": f"https://{slug}.le-pic.example.org",
                },
            )
        for pool, n in (("reset", 12), ("closure", 4)):
            for _i in range(n):
                first, last = self.person()
                login = f"{_slug(first)}.{_slug(last)}"
                self.add_account(
                    "le-pic",
                    pool,
                    login=login,
                    email=f"{login}@courriel.example.net",
                    kind="user",
                    last_login=self.recent_login(),
                    created=self.created(),
                    fields={"services": "listes du PIC"},
                )

        # Weentime: one administrator account per client, employees with their org.
        clients = list(WEENTIME_CLIENTS)
        for i, (client, country) in enumerate(clients):
            slug = _slug(client)[:24].strip("-")
            domain = f"{slug}.example.com"
            pool = ("reset", "closure", "closure", "lapse", "sanction", "reset")[i % 6]
            if i == len(clients) - 1:
                pool = "sweep-lapse"
            sub_end = self.end + relativedelta(months=rng.randint(1, 11), days=rng.randint(0, 27))
            if pool == "sweep-lapse":
                sub_end = self.end - timedelta(days=rng.randint(6, 12))
            self.add_account(
                "weentime",
                pool,
                login=f"admin.{slug}",
                email=f"rh@{domain}",
                kind="admin",
                org=client,
                last_login=self.recent_login(20),
                created=self.created(),
                fields={
                    "country": country,
                    "subscription-end": sub_end.date().isoformat(),
                    "plan": rng.choice(["Essentiel", "Pro", "Entreprise"]),
                },
            )
            tn = country == "TN"
            for j in range(rng.randint(2, 4)):
                first, last = self.person(FIRST_TN if tn else FIRST, LAST_TN if tn else LAST)
                login = f"{_slug(first)}.{_slug(last)}.{slug[:10].strip('-')}"
                self.add_account(
                    "weentime",
                    ("employee", "sanction") if j == 1 else "employee",
                    login=login,
                    email=f"{_slug(first)}.{_slug(last)}@{domain}",
                    kind="employee",
                    org=client,
                    last_login=self.recent_login(),
                    created=self.created(),
                    fields={
                        "level": rng.choice(
                            ["employé", "employé", "employé", "assistant", "responsable RH"]
                        )
                    },
                )

    # -- plans ------------------------------------------------------------------------

    def contact_of(self, acc: Account) -> str:
        """An address registered on the account, as a real requester would use."""
        options = [acc.email, *(acc.contacts or [])]
        return self.rng.choice(options)

    def reset(
        self,
        policy: str,
        start: datetime,
        outcome: str,
        *,
        acc: Account | None = None,
        subject: str | None = None,
        requester: str | None = None,
        label: str = "",
    ) -> Plan:
        """outcome: issued | pending | stranger | rejected | redirected | suspicious."""
        if acc is None:
            pool = (
                {"communesplone": "end-user", "weentime": "employee"}.get(policy, "reset")
                if outcome == "redirected"
                else "reset"
            )
            acc = self.pick(policy, pool)
        if requester is None:
            requester = (
                self.stranger() if outcome in ("stranger", "rejected") else self.contact_of(acc)
            )
        if subject is None:
            subject = self.rng.choice(
                SUSPICIOUS_SUBJECTS if outcome == "suspicious" else RESET_SUBJECTS
            ).format(login=acc.login)
        steps: list[Step] = []
        if outcome in ("issued", "suspicious"):
            steps = [self.issue_step(policy)]
        elif outcome == "rejected":
            steps = [Step("reject")]
        elif outcome == "redirected":
            steps = [Step("redirect")]
        fields = {"suspicious": "yes"} if outcome == "suspicious" else {}
        if outcome == "redirected" and policy == "le-pic":
            # Le PIC: access to a member association's own site or list is that association's.
            fields["scope"] = "member"
            requester = self.stranger()
            subject = f"Mot de passe du site de « {acc.org} » perdu"
        plan = Plan(
            policy,
            "password-reset",
            acc,
            start,
            subject=subject,
            requester=requester,
            fields=fields,
            steps=steps,
            then=self.compromise_follow_up if outcome == "suspicious" else None,
            label=label or f"reset {outcome}",
        )
        self.schedule(plan)
        return plan

    def issue_step(self, policy: str) -> Step:
        if not self.policies[policy].params.get("credentials_by_mail", True):
            return Step(
                "give-code-by-phone",
                checks=("called-registered-number",),
                note="Code lu au numéro enregistré du CPAS.",
            )
        return Step("issue-reset-link")

    def compromise_follow_up(self, demo: "_Demo", plan: Plan, out) -> None:
        """A reset reporting suspicious access opened a linked compromise ticket: walk it."""
        linked = next((e.data.get("linked") for e in out.events if e.data.get("linked")), None)
        if linked is None:
            return
        first = "interrupt" if plan.policy == "le-pic" else "suspend"
        steps = [
            Step("read-logs", after=timedelta(minutes=self.rng.randint(5, 25)))
            if self.rng.random() < 0.5
            else None,
            # CommunesPlone art. 6.11 grades by gravity: a warning first on this matter.
            Step("warn", after=timedelta(minutes=self.rng.randint(5, 20)))
            if plan.policy == "communesplone"
            else None,
            Step(
                first,
                after=timedelta(minutes=self.rng.randint(10, 50)),
                note=self.note("emergency"),
            ),
            Step(
                "restore-application" if first == "interrupt" else "reinstate",
                after=timedelta(hours=self.rng.randint(3, 40)),
            ),
        ]
        self.schedule(
            Plan(
                plan.policy,
                "abuse",
                plan.account,
                self.now,
                steps=[s for s in steps if s],
                ticket_id=linked,
                stop=None if self.now < self.end - timedelta(days=3) else "suspended",
                label="compromise follow-up",
            )
        )

    # closures

    def closure(
        self,
        policy: str,
        start: datetime,
        kind: str,
        *,
        stop: str | None = None,
        acc: Account | None = None,
        subject: str | None = None,
        day_in: int | None = None,
        label: str = "",
    ) -> Plan:
        """kind: request | incomplete | stranger | rejected | cancel | inactivity | space |
        non-renewal | nonrenewal-pending | redirected | lapse."""
        rng = self.rng
        p = Plan(
            policy, "closure", acc, start, label=label or f"{policy} closure {kind}", stop=stop
        )
        day = lambda days: (self.day(policy, start) + timedelta(days=days)).isoformat()  # noqa: E731
        d_in = (
            day_in
            if day_in is not None
            else rng.randint(20, 30)
            if kind == "cancel"
            else rng.randint(7, 25)
        )
        timers = [Step(None), Step(None)]
        if kind in ("request", "incomplete", "stranger", "rejected", "cancel"):
            if acc is None:
                acc = (
                    self.take(policy, "closure")
                    if kind in ("request", "incomplete")
                    else self.pick(policy, "reset")
                )
            p.account = acc
            p.requester = (
                self.stranger() if kind in ("stranger", "rejected") else self.contact_of(acc)
            )
            p.subject = subject or rng.choice(CLOSURE_SUBJECTS).format(login=acc.login)
            reasons = self.policies[policy].params.get("closure_reasons") or []
            p.fields = {"reason": "request"} if "request" in reasons else {"reason": reasons[0]}
            if policy == "wigii" and kind != "incomplete":
                p.fields["system"] = acc.fields.get("system", "")
            if policy == "le-pic":
                p.fields["scope"] = "provider"
            if kind != "incomplete" and p.fields["reason"] == "request":
                p.fields["day"] = day(d_in)
            first = "acknowledge" if policy == "wigii" else "confirm"
            if kind == "request":
                p.steps = [Step(first), *timers]
            elif kind == "incomplete":
                p.subject = subject or "Fermer mon compte"
                p.steps = [
                    Step(
                        "complete",
                        fields={
                            "system": acc.fields.get("system", ""),
                            "day": lambda now: (
                                self.day(policy, now) + timedelta(days=d_in)
                            ).isoformat(),
                        },
                    ),
                    Step("acknowledge"),
                    *timers,
                ]
            elif kind == "rejected":
                p.steps = [Step("reject")]
            elif kind == "cancel":
                p.steps = [Step(first), Step("cancel")]
        elif kind == "inactivity":
            p.account = acc or self.take(policy, "inactive")
            p.fields = {"reason": "inactivity"}
            p.note = "inactive for more than the policy allows"
            p.steps = [Step("deactivate", after=timedelta(days=rng.randint(2, 9))), *timers[:1]]
        elif kind == "space":
            p.account = acc = acc or self.take(policy, "space")
            p.opener = "oncall"
            p.fields = {"reason": "space", "system": acc.fields.get("system", "")}
            p.subject = (
                subject or f"Espace « {acc.org} » : clôture proposée (inutilisé, coût de stockage)"
            )
            p.steps = [Step("give-notice", checks=("notice-posted",)), *timers, Step(None)]
        elif kind in ("non-renewal", "nonrenewal-pending"):
            p.account = acc or self.take(policy, "nonrenewal")
            if policy == "communesplone":
                p.opener = "volunteer"
                p.requester = p.account.contacts[0] if p.account.contacts else p.account.email
                p.subject = (
                    subject or f"Courrier : non-reconduction de la convention ({p.account.org})"
                )
                p.fields = {
                    "reason": "non-renewal",
                    "request-date": self.day(policy, start).isoformat(),
                }
                if kind == "non-renewal":
                    p.fields["letter"] = "yes"
                    p.note = "Courrier recommandé reçu et scanné."
                p.steps = [Step("confirm-non-renewal", fields={"letter": "yes"}), *timers]
            else:  # le-pic: the membership scan opened it
                p.fields = {"reason": "non-renewal"}
                p.note = "membership not renewed"
                p.steps = [Step("confirm-non-renewal"), *timers]
        elif kind == "redirected":
            p.account = acc = acc or self.pick(
                policy, {"weentime": "employee", "communesplone": "end-user"}.get(policy, "reset")
            )
            p.requester = acc.email
            p.subject = subject or rng.choice(CLOSURE_SUBJECTS).format(login=acc.login)
            if policy == "communesplone":
                p.fields = {"reason": "non-renewal"}
            elif policy == "le-pic":
                p.requester = self.stranger()
                p.subject = (
                    subject or f"Supprimez mes données de la liste de diffusion de « {acc.org} »"
                )
                p.fields = {"reason": "request", "scope": "member"}
            else:
                p.fields = {"reason": "request"}
            p.steps = [Step("redirect")]
        elif kind == "lapse":
            p.account = acc or self.take(policy, "lapse")
            p.fields = {"reason": "lapse"}
            p.note = "subscription not renewed in time"
            p.steps = [
                Step(
                    "record-renewal",
                    after=timedelta(days=rng.randint(2, 12)),
                    note="Virement identifié.",
                )
            ]
        else:
            raise ValueError(kind)
        self.schedule(p)
        return p

    # abuse and mail reputation

    def host_of(self, acc: Account) -> str:
        site = (acc.fields or {}).get("site") or (acc.fields or {}).get("system") or ""
        return site.split("//")[-1] or f"{_slug(acc.login)}.example.org"

    def abuse(
        self,
        policy: str,
        start: datetime,
        path: list,
        *,
        acc: Account | None = None,
        category: str | None = None,
        urgent: bool = False,
        stop: str | None = None,
        subject: str | None = None,
        reporter: str | None = None,
        logs: bool | None = None,
        agent: str = "Mozilla/5.0 (X11; Linux x86_64)",
        label: str = "",
        extra: dict | None = None,
    ) -> Plan:
        rng = self.rng
        acc = acc or self.take(policy, "sanction")
        category = category or rng.choice(
            [
                "spam",
                "spam",
                "illicit-content",
                "harassment",
                "security",
                "resources",
                "illegal",
                "compromise",
            ]
        )
        title, who = ABUSE[category]
        host = self.host_of(acc)
        fields: dict[str, Any] = {"category": category, "reporter": reporter or who}
        if urgent:
            fields["urgent"] = "yes"
        fields.update(extra or {})
        if category in ("security", "compromise", "spam", "resources"):
            fields["source-ip"] = rng.choice(["192.0.2.", "198.51.100.", "203.0.113."]) + str(
                rng.randint(2, 250)
            )
        if category in ("illicit-content", "compromise", "illegal"):
            fields["url"] = (
                f"https://{host}/{rng.choice(['wp-content/uploads/x', 'boutique', 'connexion', 'docs/partage'])}"
            )
        steps = []
        for item in path:
            steps.append(item if isinstance(item, Step) else Step(item))
        if logs is None:
            logs = rng.random() < 0.25
        evidence = []
        if logs:
            ip = fields.get("source-ip", "198.51.100.7")
            line = f'{ip} - - [{self.day(policy, start).isoformat()}] "POST /wp-login.php HTTP/1.1" 200 512 "-" "{agent}"\n'
            evidence.append(("log", "access.log", (line * 3).encode()))
            steps.insert(rng.randint(0, max(0, len(steps) - 1)), Step("read-logs"))
        p = Plan(
            policy,
            "abuse",
            acc,
            start,
            subject=subject or title.format(host=host),
            requester=rng.choice(REPORTERS) if rng.random() < 0.7 else "",
            fields=fields,
            steps=steps,
            stop=stop,
            evidence=evidence,
            label=label or f"{policy} abuse",
        )
        self.schedule(p)
        return p

    def suspend_path(self, policy: str) -> list[str]:
        features = {"indigos": ["contact", "suspend"], "communesplone": ["warn", "suspend"]}
        return features.get(policy, [self.rng.choice(["warn", "contact"]), "suspend"])

    def mail(
        self,
        policy: str,
        start: datetime,
        path: list,
        *,
        acc: Account | None = None,
        signal: str | None = None,
        compromised: bool = False,
        stop: str | None = None,
        label: str = "",
    ) -> Plan:
        rng = self.rng
        acc = acc or self.take(policy, "sanction")
        sender = (acc.fields or {}).get("mailbox") or acc.email
        signal = signal or rng.choice(
            ["volume", "volume", "bounces", "complaint", "dmarc", "blocklist"]
        )
        f: dict[str, Any] = {"sender": sender, "signal": signal}
        if signal in ("volume", "bounces"):
            messages = rng.randint(250, 4800)
            bounces = int(messages * rng.uniform(0.05, 0.6))
            f.update(
                window=rng.choice(["1h", "1h", "24h"]),
                messages=messages,
                recipients=int(messages * rng.uniform(0.8, 1.0)),
                bounces=bounces,
                deferrals=rng.randint(0, messages // 5),
                **{"bounce-ratio": round(bounces / messages, 3)},
            )
            f["source-ip"] = "203.0.113." + str(rng.randint(2, 250))
            subject = (
                f"Postfix : {messages} messages en {f['window']}, {bounces} rebonds ({sender})"
            )
        elif signal == "complaint":
            f.update(window="24h", complaints=rng.randint(2, 40), domain=sender.split("@")[-1])
            subject = f"Boucle de rétroaction : {f['complaints']} plaintes pour {sender}"
        elif signal == "dmarc":
            f.update(
                window="24h", **{"dmarc-fail": rng.randint(20, 900)}, domain=sender.split("@")[-1]
            )
            subject = f"DMARC : {f['dmarc-fail']} échecs pour {f['domain']}"
        else:
            f.update(
                blocklist=rng.choice(
                    ["zen.spamhaus.org", "bl.spamcop.net", "b.barracudacentral.org"]
                ),
                **{"source-ip": "203.0.113." + str(rng.randint(2, 250))},
            )
            subject = f"Relais listé sur {f['blocklist']}"
        if compromised:
            f["compromised"] = "yes"
            if policy == "communesplone":  # art. 6.11 "selon la gravité": a compromise is grave
                f["grave"] = "yes"
        p = Plan(
            policy,
            "mail-reputation",
            acc,
            start,
            subject=subject,
            fields=f,
            stop=stop,
            label=label or f"{policy} mail",
            steps=[s if isinstance(s, Step) else Step(s) for s in path],
        )
        self.schedule(p)
        return p

    def suspend_sending(self, hours: tuple[int, int] = (24, 72)) -> Step:
        lo, hi = hours
        return Step(
            "suspend-sending",
            fields={
                "until": lambda now: clock.iso(now + timedelta(hours=self.rng.randint(lo, hi)))
            },
        )

    # -- what the demo holds ------------------------------------------------------------

    def coverage(self) -> None:
        """At least one ticket in every state the engine can reach, at safe moments."""
        rng, b = self.rng, self.between
        for policy in self.policies:
            self.reset(policy, b(200, 30), "issued")
            self.reset(policy, b(1.5, 0.1), "pending")
            self.reset(
                policy, b(3, 0.2), "stranger", label="reset blocked: requester not a contact"
            )
            self.reset(policy, b(150, 20), "rejected")
        for policy in ("weentime", "communesplone", "le-pic"):
            self.reset(policy, b(120, 5), "redirected")

        # General questions (none of the procedures): one waiting, one answered, one closed.
        questions = (
            "Sauvegarde des pièces jointes",
            "Espace de stockage restant",
            "Facture de la cotisation",
        )
        for policy in self.policies:
            for n, steps in enumerate(([], ["answer"], ["answer", "close"])):
                acc = self.pick(policy, "reset")
                self.schedule(
                    Plan(
                        policy,
                        "general",
                        acc,
                        b(20 - 6 * n, 0.2 + n),
                        subject=questions[n],
                        requester=acc.email,
                        # within hours: two human delays (up to four days each) could
                        # leave the closed one open at the demo's now
                        steps=[Step(a, after=timedelta(hours=3)) for a in steps],
                        label=f"{policy} general question",
                    )
                )

        # Wigii closures: every state of the request, inactivity and space procedures.
        self.closure("wigii", b(2, 0.5), "stranger", label="wigii closure left received")
        self.closure("wigii", b(2, 0.3), "incomplete", stop="incomplete")
        self.closure("wigii", b(3, 1), "request", stop="awaiting-ack")
        self.closure("wigii", b(6, 3), "request", stop="scheduled", day_in=14)
        self.closure("wigii", self.ago(30), "request", day_in=12, stop="deactivated")
        self.closure("wigii", b(200, 90), "request")
        self.closure("wigii", b(180, 60), "incomplete")
        self.closure("wigii", b(100, 20), "cancel")
        self.closure("wigii", b(100, 20), "rejected")
        self.closure("wigii", b(6, 3.5), "inactivity", stop="proposed")
        self.closure("wigii", b(120, 100), "inactivity")
        self.closure("wigii", b(4, 3.2), "space", stop="space-proposed")
        self.closure("wigii", b(40, 10), "space", stop="notice")
        self.closure("wigii", b(160, 100), "space")

        # Indigos, Weentime, Le PIC: user requests.
        for policy in ("indigos", "weentime", "le-pic"):
            self.closure(policy, b(2, 0.2), "stranger", label=f"{policy} closure left received")
            self.closure(policy, b(6, 3), "request", stop="scheduled", day_in=15)
            self.closure(policy, b(200, 60), "request")
            self.closure(policy, b(90, 10), "cancel")
            self.closure(policy, b(90, 10), "rejected")
        self.closure("indigos", self.ago(28), "request", day_in=10, stop="deactivated")
        self.closure("weentime", self.ago(28), "request", day_in=10, stop="deactivated")
        # Le PIC erases at once: the step after deactivation is the clock's next pass.
        self.closure("le-pic", self.ago(16), "request", day_in=15, stop="deactivated")
        self.closure("weentime", b(100, 10), "redirected")
        self.closure("le-pic", b(100, 10), "redirected")

        # Weentime: lapsed subscriptions, restricted then renewed.
        for days, stop in ((160, None), (9, "restricted")):
            acc = self.take("weentime", "lapse")
            lapse_end = self.end - timedelta(days=days)
            acc.fields = {**acc.fields, "subscription-end": lapse_end.date().isoformat()}
            self.closure(
                "weentime", lapse_end + timedelta(days=1, hours=2), "lapse", acc=acc, stop=stop
            )

        # Le PIC: memberships not renewed; data removed within the year.
        for months, stop in ((15, None), (2, "ending"), (0, "non-renewal")):
            acc = self.take("le-pic", "nonrenewal")
            m_end = self.end - relativedelta(months=months, days=6)
            acc.fields = {**acc.fields, "membership-end": m_end.date().isoformat()}
            self.closure(
                "le-pic",
                clock.start_of_day(m_end.date(), "Europe/Paris")
                + timedelta(days=1, hours=2, minutes=30),
                "non-renewal",
                acc=acc,
                stop=stop,
            )

        self.cpas_closures()

        # Abuse: the ladders of each pack.
        for policy in self.policies:
            self.abuse(policy, b(4, 0.2), [], stop="open")
            self.abuse(policy, b(10, 2), ["contact"], stop="contacted")
            self.abuse(policy, b(200, 20), ["contact", "resolve"])
            if (
                policy == "le-pic"
            ):  # its text gives one measure: interrupting a compromised application
                continue
            self.abuse(policy, b(12, 2), ["warn"], stop="warned")
            self.abuse(policy, b(30, 5), self.suspend_path(policy), stop="suspended")
            if policy in ("indigos", "wigii"):  # the texts that give closing an account
                # Closed recently (erasure still ahead), and long ago (erased on its date).
                self.abuse(
                    policy,
                    b(20, 2),
                    [*self.suspend_path(policy), "close-account"],
                    stop="account-closed",
                )
                self.abuse(policy, b(200, 60), [*self.suspend_path(policy), "close-account"])
            self.abuse(policy, b(250, 40), [*self.suspend_path(policy), "reinstate"])
        self.abuse(
            "communesplone",
            b(300, 60),
            ["warn", "suspend", "report-authorities"],
            category="illegal",
        )
        self.abuse(
            "indigos",
            b(60, 10),
            [Step("suspend", note=self.note("emergency"))],
            category="compromise",
            urgent=True,
            label="indigos emergency suspension",
        )
        self.abuse(
            "le-pic",
            b(20, 3),
            [Step("interrupt")],
            category="compromise",
            urgent=True,
            stop="interrupted",
        )
        self.abuse(
            "le-pic", b(200, 30), [Step("interrupt"), "restore-application"], category="resources"
        )
        # Abuse on a member's own site: redirected to that association.
        p = self.abuse(
            "le-pic",
            b(60, 2),
            ["redirect"],
            category="harassment",
            extra={"scope": "member"},
            label="le-pic member site",
        )
        p.requester = p.requester or self.stranger()

        # Mail reputation: the ladder of Indigos 7 (figures only).
        for policy in ("indigos", "communesplone", "le-pic"):
            self.mail(policy, b(2, 0.1), [], stop="alert")
            self.mail(policy, b(9, 2), ["contact"], stop="contacted")
            if policy == "le-pic":  # advice, and the interruption of a compromised application
                self.mail(
                    policy,
                    b(15, 4),
                    [Step("interrupt", note=self.note("emergency"))],
                    compromised=True,
                    stop="interrupted",
                )
                self.mail(
                    policy,
                    b(150, 20),
                    [
                        "contact",
                        Step("interrupt", note=self.note("emergency")),
                        "restore-application",
                    ],
                    compromised=True,
                )
                continue
            self.mail(
                policy,
                self.ago(1, rng.randint(1, 12)),
                ["contact", self.suspend_sending((80, 120))],
                stop="send-suspended",
            )
            self.mail(
                policy, b(200, 20), ["contact", self.suspend_sending(), Step(None), "resolve"]
            )
            self.mail(
                policy,
                b(15, 4),
                [Step("suspend", note=self.note("emergency"))],
                compromised=True,
                stop="suspended",
            )
            self.mail(
                policy,
                b(150, 20),
                [Step("suspend", note=self.note("emergency")), "reinstate"],
                compromised=True,
            )

    def cpas_closures(self) -> None:
        """CommunesPlone: non-renewal of conventions, with contract dates that make each
        step fall at a moment the demo can show."""
        tz = self.tz("communesplone")
        today = self.day("communesplone", self.end)
        first_this = today.replace(day=1)
        # The renewal that passed within the last month (or the one before, very early on the 1st).
        r_recent = (
            first_this
            if self.end - clock.start_of_day(first_this, tz) >= timedelta(hours=1)
            else first_this - relativedelta(months=1)
        )
        targets = [
            ("erased", first_this - relativedelta(months=self.rng.randint(4, 8)), 1, None),
            ("deactivated", r_recent, 2, "deactivated"),
            ("ending", first_this + relativedelta(months=3), 1, "ending"),
        ]
        special = list(self.cpas_special)
        for name, renewal, k, stop in targets:
            acc = special.pop()
            start = renewal - relativedelta(years=k)
            sig = start - relativedelta(months=1) + timedelta(days=self.rng.randint(3, 26))
            acc.fields = {**acc.fields, "signature-date": sig.isoformat()}
            open_day = renewal - relativedelta(
                months=3 if name != "deactivated" else 2, days=self.rng.randint(0, 20)
            )
            if name == "ending":
                open_day = today - timedelta(days=self.rng.randint(5, 12))
            c = dates.contract_dates(sig, open_day, maximum=relativedelta(months=48))
            assert c.effective_end == renewal, (name, sig, open_day, c)
            self.closure(
                "communesplone",
                clock.start_of_day(open_day, tz) + timedelta(hours=10),
                "non-renewal",
                acc=acc,
                stop=stop,
            )
        # The maximum term (48 months) reached: the sweep opens it a month before the end.
        acc = special.pop()
        start = (self.sweep_at - relativedelta(months=47)).date().replace(day=1)
        acc.fields = {
            **acc.fields,
            "signature-date": (start - relativedelta(months=1) + timedelta(days=9)).isoformat(),
        }
        # A letter announced by mail, not arrived yet: blocked on the letter rule.
        self.closure(
            "communesplone",
            self.between(4, 0.5),
            "nonrenewal-pending",
            acc=special.pop(),
            stop="non-renewal",
            subject="Nous ne souhaitons pas reconduire la convention (courrier suit)",
        )
        self.closure(
            "communesplone",
            self.between(60, 5),
            "non-renewal",
            acc=self.take("communesplone", "closure"),
            label="cpas non-renewal, cancelled later",
        ).steps.insert(1, Step("cancel"))
        self.closure("communesplone", self.between(90, 5), "redirected")
        acc = self.pick("communesplone", "reset")
        p = self.closure(
            "communesplone",
            self.between(90, 5),
            "nonrenewal-pending",
            acc=acc,
            label="cpas non-renewal rejected",
        )
        p.requester = self.stranger()
        p.steps = [Step("reject")]

    def repeat(self) -> None:
        """Accounts with a sanctions ledger across abuse and mail-reputation tickets: the
        ledger is shown with each new matter, which has its own procedure."""
        b = self.between
        # Indigos: two mail-reputation episodes, then spam: an exchange again, suspension, closure.
        acc = self.take("indigos", "repeat")
        self.mail(
            "indigos",
            b(230, 200),
            ["contact", self.suspend_sending(), Step(None), "resolve"],
            acc=acc,
            signal="volume",
        )
        self.mail(
            "indigos",
            b(130, 100),
            ["contact", self.suspend_sending(), Step(None), "resolve"],
            acc=acc,
            signal="complaint",
        )
        self.abuse(
            "indigos",
            b(40, 25),
            ["contact", "suspend", "close-account"],
            acc=acc,
            category="spam",
            logs=True,
        )
        self.repeat_offenders.append({"policy": "indigos", "login": acc.login})
        # CommunesPlone: a warning, a mail episode, then illegal use: suspension, authorities.
        acc = self.take("communesplone", "sanction")
        self.abuse("communesplone", b(320, 280), ["warn", "resolve"], acc=acc, category="resources")
        self.mail(
            "communesplone",
            b(170, 140),
            ["contact", self.suspend_sending(), Step(None), "resolve"],
            acc=acc,
            signal="bounces",
        )
        self.abuse(
            "communesplone",
            b(35, 20),
            ["warn", "suspend", "report-authorities"],
            acc=acc,
            category="illegal",
        )
        self.repeat_offenders.append({"policy": "communesplone", "login": acc.login})
        # Le PIC: an interrupted application, then resources again: interrupted again.
        acc = self.take("le-pic", "sanction")
        self.abuse(
            "le-pic",
            b(260, 220),
            [Step("interrupt"), "restore-application"],
            acc=acc,
            category="compromise",
        )
        self.abuse(
            "le-pic",
            b(20, 8),
            [Step("interrupt")],
            acc=acc,
            category="resources",
            stop="interrupted",
        )
        self.repeat_offenders.append({"policy": "le-pic", "login": acc.login})
        # Wigii: warned once; the second time the ladder goes on at suspension.
        acc = self.take("wigii", "sanction")
        self.abuse("wigii", b(300, 250), ["warn", "resolve"], acc=acc, category="harassment")
        self.abuse(
            "wigii", b(90, 50), ["warn", "suspend", "reinstate"], acc=acc, category="harassment"
        )
        self.repeat_offenders.append({"policy": "wigii", "login": acc.login})

    def special(self) -> None:
        """Scenarios the trainers show, and text that must stay literal."""
        b = self.between
        # Suspicious access reported with a reset: a linked compromise ticket.
        for policy in ("indigos", "le-pic", "communesplone", "wigii"):
            self.reset(policy, b(120, 10), "suspicious")
        self.reset("indigos", b(1, 0.1), "suspicious", label="recent suspicious reset")
        # Weentime employees and CPAS end users: redirected to who serves them.
        for _i in range(5):
            self.reset("weentime", b(200, 1), "redirected")
        for _i in range(3):
            self.reset("communesplone", b(200, 1), "redirected")
        # Out-of-band code by phone (CommunesPlone art. 6.7).
        for _i in range(3):
            self.reset("communesplone", b(250, 2), "issued")
        # Hostile text: markup and escape sequences in subjects, requesters, fields.
        self.reset("indigos", b(1, 0.2), "pending", subject=HOSTILE[0], label="hostile subject")
        self.reset(
            "wigii",
            b(2, 0.2),
            "stranger",
            subject=HOSTILE[1],
            requester="[bold]eve[/bold]@example.net",
        )
        self.reset(
            "le-pic",
            b(3, 0.5),
            "stranger",
            subject=f"{HOSTILE[2]} — mot de passe",
            requester="\x1b[31mmallory@example.net",
        )
        self.reset("weentime", b(80, 5), "rejected", subject=HOSTILE[5])
        self.closure("wigii", b(2, 0.5), "stranger", subject=f"{HOSTILE[2]} — désactivation")
        self.abuse(
            "indigos",
            b(3, 0.3),
            [],
            stop="open",
            subject=HOSTILE[3],
            reporter=HOSTILE[2],
            category="harassment",
        )
        # Evidence is kept as received: this log line carries escape sequences and markup.
        self.abuse(
            "le-pic",
            b(5, 1),
            ["contact"],
            stop="contacted",
            subject=HOSTILE[4],
            reporter=f"{HOSTILE[0]} <abuse@example.net>",
            logs=True,
            category="security",
            agent=f"{HOSTILE[3]} {HOSTILE[0]}",
        )
        self.reset(
            "wigii",
            b(100, 2),
            "issued",
            acc=next(a for a in self.pools[("wigii", "reset")] if a.login == "eve.markup"),
        )
        # Overdue: requests nobody answered in time.
        for policy, days in (
            ("indigos", 9),
            ("wigii", 8),
            ("le-pic", 10),
            ("weentime", 4),
            ("communesplone", 5),
        ):
            self.reset(policy, b(days + 3, days), "stranger", label="overdue reset")
        self.abuse("indigos", b(14, 9), [], stop="open", label="overdue abuse")
        self.mail("le-pic", b(12, 8), [], stop="alert", label="overdue alert")

    def fillers(self) -> None:
        """The ordinary run of a year: most tickets done, some still moving."""
        rng, b = self.rng, self.between
        part = lambda share: round(self.extra * share)  # noqa: E731
        for _i in range(part(0.48)):
            policy = rng.choice(list(self.policies))
            r = rng.random()
            if r < 0.75:
                self.reset(policy, b(380, 2), "issued")
            elif r < 0.85:
                self.reset(policy, b(380, 2), "rejected")
            else:
                self.reset(policy, b(6, 0.1), "pending")
        closers = ("wigii", "indigos", "weentime", "le-pic")
        for _i in range(part(0.18)):
            policy = rng.choice(closers)
            if not self.pools.get((policy, "closure")):
                continue
            self.closure(
                policy,
                b(360, 40),
                rng.choice(
                    ["request", "request", "incomplete"] if policy == "wigii" else ["request"]
                ),
            )
        for _i in range(part(0.04)):
            self.closure(rng.choice(closers), b(300, 5), rng.choice(["cancel", "rejected"]))
        for policy in self.policies:
            for _i in range(part(0.04)):
                if not self.pools.get((policy, "sanction")):
                    break
                path = rng.choice(
                    [
                        ["contact", "resolve"],
                        ["warn", "resolve"],
                        ["resolve"],
                        ["contact", "resolve"],
                    ]
                )
                self.abuse(policy, b(360, 15), path)
        for policy in ("indigos", "communesplone", "le-pic"):
            for _i in range(part(0.03)):
                if not self.pools.get((policy, "sanction")):
                    break
                self.mail(
                    policy,
                    b(360, 15),
                    rng.choice([["resolve"], ["contact", "resolve"], ["contact", "resolve"]]),
                )
