"""Bulk data for benchmarks: up to millions of tickets, fast.

``generate(url, n)`` fills a database already initialised with ``schema.init`` with ``n``
tickets, the accounts they are about and their history, with SQLAlchemy Core bulk inserts
(executemany, batches of 10,000, one transaction). It does not go through the engine —
that would take hours — but what it writes is what the engine would have written:

- every ticket's workflow, state and ``state_kind`` come from the workflow tables, and its
  history is a path of real transitions from the procedure's initial state to that state
  (the clock's steps by ``system``, the others by a volunteer holding the role);
- tickets not done carry their pending deadlines: the first-response target (``respond-by``,
  often past: overdue tickets) until a person acted, and the state's timers, always in the
  future, so that ``helpdesk sweep`` finds nothing it would refuse; ``due_at`` is the
  earliest of them, as ``engine.refresh_due`` computes it;
- events are hash-chained after the existing chain (same canonical form as
  ``helpdesk.storage.audit``, checked against it at start-up) and ``ChainHead`` is moved to the
  last one, so ``helpdesk audit verify`` stays green.

- every ticket has the mail that opened it as the first message of its conversation: a
  body of a few hundred words of ordinary French (``body``), so that search over message
  bodies is measured on text of realistic size.

Not generated: outgoing mails, reset tokens, evidence, and account statuses that follow the
tickets (accounts stay ``active``). Deterministic for a given ``seed`` and ``now``.

On SQLite the load turns off foreign-key checks and fsyncs and sets aside the secondary
indexes of the tables it fills, then rebuilds them; everything is put back at the end.
Elsewhere (PostgreSQL) rows go through the model tables and the id sequences are moved
past the new rows. About 1,000,000 tickets in 2 to 3½ minutes on SQLite on a small 2-core
machine (``benchmarks/make_db.py PATH N``).
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import json
import random
import time
from bisect import bisect
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

from sqlalchemy import select, text
from sqlalchemy.engine import Connection

from helpdesk.storage import audit, db
from helpdesk.base import clock
from helpdesk.storage.models import (
    Account,
    ChainHead,
    Deadline,
    Event,
    Message,
    Policy,
    State,
    Ticket,
    Transition,
    Volunteer,
    Workflow,
)

BATCH = 10_000
UTC = timezone.utc

# Share of tickets per queue (packs without a queue just skip it).
QUEUE_WEIGHT = {
    "password-reset": 40,
    "closure": 20,
    "abuse": 25,
    "mail-reputation": 15,
    "general": 10,
}
STEP_DELAYS = [600, 1800, 3600, 2 * 3600, 5 * 3600, 20 * 3600, 30 * 3600, 3 * 86400, 6 * 86400]
NOTES = (
    "Fait.",
    "Vu avec le titulaire.",
    "Motif consigné dans le dossier.",
    "Régularisé.",
    "Urgence : compte compromis.",
)
SUBJECTS = {
    "password-reset": (
        "Mot de passe oublié",
        "Impossible de me connecter",
        "Réinitialisation du mot de passe ({login})",
    ),
    "closure": (
        "Demande de désactivation de mon compte",
        "Fermeture du compte {login}",
        "Fin d'abonnement",
    ),
    "abuse": (
        "Spam envoyé depuis {login}",
        "Contenu illicite signalé",
        "Tentatives d'intrusion",
        "Consommation anormale",
    ),
    "mail-reputation": (
        "Volume d'envoi inhabituel ({login})",
        "Rebonds en hausse",
        "Plaintes FBL",
        "DMARC en échec",
    ),
    "general": (
        "Question sur les sauvegardes",
        "Quota de stockage",
        "Renseignement",
        "Facture de l'année",
    ),
}
# The mail that opened a ticket: a greeting, sentences of its queue and of everyday life
# (a few hundred words), a closing. Ordinary French, as people write to a helpdesk.
GREETINGS = (
    "Bonjour,",
    "Bonjour à toute l'équipe,",
    "Madame, Monsieur,",
    "Bonsoir,",
    "Salut à vous,",
)
CLOSINGS = (
    "Merci d'avance pour votre aide.",
    "Bien cordialement,",
    "Je reste disponible si besoin.",
    "Merci beaucoup, bonne journée.",
)
BODY_SENTENCES = {
    "password-reset": (
        "Depuis ce matin je n'arrive plus à me connecter à mon compte, le mot de passe est refusé.",
        "J'ai essayé la procédure de réinitialisation mais je ne reçois aucun message.",
        "Il est possible que j'aie changé mon mot de passe sur mon téléphone sans m'en souvenir.",
        "Mon identifiant est bien celui que vous avez créé l'an dernier pour l'association.",
        "Pourriez-vous me renvoyer un lien pour choisir un nouveau mot de passe ?",
        "La page affiche une erreur après trois tentatives et bloque l'accès pendant une heure.",
    ),
    "closure": (
        "Notre association cesse ses activités à la fin du trimestre et nous souhaitons fermer le compte.",
        "Nous avons déjà exporté les documents partagés et les agendas de l'équipe.",
        "Merci de nous indiquer la date à laquelle les données seront effacées de vos serveurs.",
        "Le bureau a voté la dissolution lors de l'assemblée générale du mois dernier.",
        "Pouvez-vous confirmer que les sauvegardes seront elles aussi supprimées ?",
        "Je vous écris au nom du trésorier qui n'a plus accès à sa messagerie.",
    ),
    "abuse": (
        "Je reçois depuis plusieurs jours des messages publicitaires envoyés depuis une adresse de chez vous.",
        "Le site hébergé chez vous affiche des propos injurieux envers notre commune.",
        "Nos journaux montrent des tentatives de connexion répétées depuis une de vos adresses IP.",
        "Vous trouverez ci-dessous les en-têtes complets du message reçu hier soir.",
        "Nous demandons que ce contenu soit retiré dans les meilleurs délais.",
        "Ces envois continuent malgré nos demandes de désinscription.",
    ),
    "mail-reputation": (
        "Nos courriels arrivent dans les indésirables chez plusieurs fournisseurs depuis lundi.",
        "Le serveur de la mairie rejette nos messages avec une erreur de réputation.",
        "Nous avons envoyé la lettre d'information à nos adhérents mardi, comme chaque mois.",
        "Les destinataires nous signalent que nos invitations ne leur parviennent plus.",
        "Est-ce que notre domaine figure sur une liste de blocage ?",
        "Le nombre de rebonds a fortement augmenté depuis la dernière campagne.",
    ),
    "general": (
        "Est-ce que les pièces jointes de nos agendas partagés sont sauvegardées chaque nuit ?",
        "Nous voudrions savoir combien d'espace de stockage il nous reste pour cette année.",
        "La facture de la cotisation n'est pas arrivée chez notre trésorière.",
        "Pouvez-vous nous dire si une formation est prévue pour les nouveaux bénévoles ?",
        "Nous aimerions ajouter deux adresses pour les membres du conseil.",
        "Le calendrier partagé ne se synchronise plus avec nos téléphones.",
    ),
}
EVERYDAY = (
    "Je vous remercie pour le travail que vous faites pour les associations de la région.",
    "Nous utilisons vos services depuis plusieurs années et nous en sommes très contents.",
    "La réunion du conseil d'administration a lieu jeudi prochain à la salle des fêtes.",
    "Notre secrétaire est en congé jusqu'à la fin du mois, je la remplace pour le moment.",
    "Nous préparons la fête du quartier et nous avons besoin que tout fonctionne.",
    "Plusieurs bénévoles travaillent depuis chez eux avec des ordinateurs assez anciens.",
    "Je ne suis pas très à l'aise avec l'informatique, excusez-moi si ma question est naïve.",
    "Le bureau se réunit le mardi soir, vous pouvez m'appeler avant dix-huit heures.",
    "Nous avons changé de fournisseur d'accès à internet au printemps.",
    "La nouvelle présidente souhaite que les comptes soient à jour avant l'été.",
    "Nos adhérents consultent surtout les documents depuis leur téléphone.",
    "Je joins une capture d'écran du message qui s'affiche à l'écran.",
    "Nous avons eu une coupure de courant dans nos locaux la semaine dernière.",
    "Le club de randonnée partage les mêmes outils que nous depuis cette année.",
    "Il faudrait que tout soit réglé avant l'assemblée générale de septembre.",
    "Merci de me répondre à cette adresse plutôt qu'à celle de l'association.",
)
FIRST = (
    "marie",
    "jean",
    "camille",
    "lucas",
    "lea",
    "hugo",
    "chloe",
    "louis",
    "manon",
    "ines",
    "sarah",
    "karim",
    "amira",
    "youssef",
    "elise",
    "paul",
)
LAST = (
    "martin",
    "dubois",
    "leroy",
    "moreau",
    "simon",
    "laurent",
    "michel",
    "garcia",
    "peeters",
    "janssens",
    "trabelsi",
    "gharbi",
    "faure",
    "roux",
)
# Account kinds a provider does not serve (its not_served table), and its ordinary kinds.
KINDS = {
    "weentime": (("admin", "employee"), ("employee",)),
    "communesplone": (("member", "end-user"), ("end-user",)),
    "le-pic": (("member", "user"), ()),
    "indigos": (("member",), ()),
    "wigii": (("user",), ()),
}


@dataclass
class Recipe:
    """One way a ticket of one workflow can go: fields at opening, then transitions."""

    workflow_id: int
    policy: str
    queue: str
    initial: str
    fields: dict
    steps: list  # [(key, from, to, sanction, role, note_required, auto_or_timer, given)]
    state: str
    kind: str
    not_served: bool  # needs an account of a kind the provider does not serve
    respond_by: timedelta | None
    timers: list  # [(action, deadline name, field to set or None, at-field kind)]


_CANON = '{"account":%s,"action":%s,"actor":%s,"at":"%s","content":"%s","from":%s,"id":%d,"sanction":%s,"ticket":%d,"to":%s}'
_CONTENT = '{"data":%s,"note":%s}'


@functools.lru_cache(maxsize=4096)
def _enc(value) -> str:
    """JSON of a scalar, as ``audit.canonical`` writes it (cached: states, actors, notes...)."""
    return json.dumps(value, ensure_ascii=False)


def _enc_data(data: dict) -> str:
    """JSON of an event's data: the canonical form, also fine as the stored form."""
    if not data:
        return "{}"
    return json.dumps(data, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)


def _content_fast(note, data_json) -> str:
    """``audit.content_digest`` from the already encoded data."""
    return hashlib.sha256((_CONTENT % (data_json, _enc(note))).encode()).hexdigest()


def _canonical_fast(
    eid, at_iso, actor, ticket, account, action, frm, to, note, sanction, data_json, content=None
) -> bytes:
    """``audit.canonical`` without building an Event: same bytes (checked by ``_check_digest``)."""
    content = content or _content_fast(note, data_json)
    return (
        _CANON
        % (
            "null" if account is None else account,
            _enc(action),
            _enc(actor),
            at_iso,
            content,
            _enc(frm),
            eid,
            _enc(sanction),
            ticket,
            _enc(to),
        )
    ).encode()


def _check_digest() -> None:
    """The fast hash must be ``audit.digest``'s: fail at once if the canonical form changed."""
    samples = [
        (
            7,
            datetime(2024, 2, 29, 13, 5, 7, tzinfo=UTC),
            "system",
            3,
            None,
            "open",
            None,
            "received",
            "",
            None,
            {"fields": {"b": 1, "a": [True, None, 0.25, "é"], "day": "2024-03-01"}},
        ),
        (
            8,
            datetime(2025, 12, 31, 23, 59, 59, tzinfo=UTC),
            "bob",
            3,
            12,
            "suspend",
            "open",
            "suspended",
            "Urgence : « compte » compromis\n",
            "suspension",
            {},
        ),
    ]
    prev = "prev"
    for eid, at, actor, tid, aid, action, frm, to, note, sanction, data in samples:
        ev = SimpleNamespace(
            id=eid,
            at=at,
            actor=actor,
            ticket_id=tid,
            account_id=aid,
            action=action,
            from_state=frm,
            to_state=to,
            note=note,
            sanction=sanction,
            data=data,
            content_digest=audit.content_digest(note, data),
        )
        at_iso = at.replace(tzinfo=None).isoformat() + "Z"
        fast = hashlib.sha256(
            prev.encode()
            + b"\n"
            + _canonical_fast(
                eid, at_iso, actor, tid, aid, action, frm, to, note, sanction, _enc_data(data)
            )
        ).hexdigest()
        if fast != audit.digest(prev, ev):
            raise RuntimeError(
                "benchmarks.bulk: audit.canonical changed; update bulk._canonical_fast"
            )
        prev = fast


def _paths(states: dict, transitions: list, start: str) -> dict[str, list]:
    """Shortest path of transitions from ``start`` to every state it can reach."""
    done = {k for k, s in states.items() if s.kind == "done"}
    best: dict[str, list] = {start: []}
    todo = deque([start])
    while todo:
        here = todo.popleft()
        for t in transitions:
            if not (here in t.sources or ("*" in t.sources and here not in done)):
                continue
            if t.target == "=" or t.target in best:
                continue
            best[t.target] = best[here] + [t]
            todo.append(t.target)
    return best


def _recipes(session) -> list[Recipe]:
    from helpdesk.policy import packs

    out: list[Recipe] = []
    features_of: dict[str, set] = {}
    for wf in session.execute(select(Workflow).order_by(Workflow.id)).scalars():
        policy = session.get(Policy, wf.policy_key)
        params = policy.params or {}
        states = {
            s.key: s
            for s in session.execute(
                select(State).where(State.workflow_id == wf.id).order_by(State.position)
            ).scalars()
        }
        transitions = list(
            session.execute(
                select(Transition)
                .where(Transition.workflow_id == wf.id)
                .order_by(Transition.position)
            ).scalars()
        )
        if policy.key not in features_of:
            try:
                features_of[policy.key] = packs.read_pack(policy.key).features
            except packs.PackError:
                features_of[policy.key] = set()
        features = features_of[policy.key]
        target = params.get("response_target")
        respond_by = clock.parse_duration(target) if target else None
        initial = wf.initial or {}
        starts: list[tuple[str, dict]] = []
        reasons = params.get("closure_reasons")
        if initial.get("field"):
            for value, state in (initial.get("map") or {}).items():
                if state in states and (reasons is None or value in reasons):
                    starts.append((state, {initial["field"]: value}))
        elif initial.get("default") in states:
            starts.append((initial["default"], {}))
        kinds, not_served_kinds = KINDS.get(policy.key, (("user",), ()))
        for state0, fields0 in starts:
            for state_key, path in _paths(states, transitions, state0).items():
                fields = dict(fields0)
                needs_other = any(
                    g["name"] == "requester_not_served" for t in path for g in t.guards
                )
                if needs_other and not not_served_kinds:
                    if "member-scope" in features and "scope" in (wf.fields or {}):
                        fields["scope"] = "member"
                        needs_other = False
                    else:
                        continue
                steps = []
                here = state0
                for t in path:
                    timer = any(tm.get("action") == t.key for tm in states[here].timers)
                    here = t.target
                    system = t.auto or t.system_only or timer
                    given = {}
                    if "until" in t.fields:
                        given["until"] = None  # filled with the step's time + 2 days
                    if t.key == "confirm-non-renewal" and "contract" in features:
                        fields["letter"] = True
                    if t.key == "complete":
                        given["system"] = "https://espace.example.org"
                    steps.append(
                        (
                            t.key,
                            None,
                            t.target,
                            t.sanction,
                            "system" if system else t.role,
                            t.note_required,
                            given,
                            sorted(t.checklist),
                        )
                    )
                # State entered last: its timers, to show as pending deadlines.
                timers = []
                for tm in states[state_key].timers:
                    at = tm.get("at", "")
                    name = tm.get("deadline") or (
                        at[len("deadline:") :] if at.startswith("deadline:") else tm["action"]
                    )
                    field = at[len("field:") :] if at.startswith("field:") else None
                    timers.append((tm["action"], name, field))
                if wf.queue == "closure" and fields.get("reason") == "request":
                    fields.setdefault("day", None)
                    if "system" in (wf.fields or {}) and policy.key == "wigii":
                        fields.setdefault("system", "https://espace.example.org")
                if wf.queue == "abuse":
                    fields["category"] = None
                if wf.queue == "mail-reputation":
                    fields["signal"] = None
                out.append(
                    Recipe(
                        wf.id,
                        policy.key,
                        wf.queue,
                        state0,
                        fields,
                        steps,
                        state_key,
                        states[state_key].kind,
                        needs_other,
                        respond_by,
                        timers,
                    )
                )
    return out


def _weights(recipes: list[Recipe]) -> list[float]:
    """Most tickets done; of those not done, most in their procedure's first states."""
    per_wf: dict[int, int] = {}
    for r in recipes:
        per_wf[r.workflow_id] = per_wf.get(r.workflow_id, 0) + 1
    out = []
    for r in recipes:
        w = QUEUE_WEIGHT.get(r.queue, 10) / per_wf[r.workflow_id]
        if r.not_served:
            w *= 0.5
        out.append(w * (1.0 if r.kind == "done" else 0.35) / (1 + 0.3 * len(r.steps)))
    return out


def generate(url: str, n_tickets: int, *, seed: int = 1, now: datetime | None = None) -> dict:
    """Add ``n_tickets`` tickets (and about one account per four tickets) to the database
    at ``url``. Returns counts and the time taken."""
    started = time.perf_counter()
    _check_digest()
    rng = random.Random(seed)
    now = (clock.as_utc(now) if now else clock.now()).replace(microsecond=0)
    engine = db.get_engine(url)
    sqlite = engine.dialect.name == "sqlite"
    with db.read_session(url) as s:
        recipes = _recipes(s)
        volunteers = [
            (v.login, v.role)
            for v in s.execute(
                select(Volunteer).where(Volunteer.active).order_by(Volunteer.login)
            ).scalars()
        ]
        policies = {p.key: p for p in s.execute(select(Policy)).scalars()}
    if not recipes:
        raise ValueError("no workflows in the database: run 'helpdesk init' first")
    roster = _roster(volunteers)
    weights = _weights(recipes)

    with engine.connect() as conn:
        conn.execution_options(immediate=True)  # SQLite: take the write lock at BEGIN
        restore = _sqlite_fast(conn) if sqlite else None
        try:
            with conn.begin():
                dropped = _drop_indexes(conn) if sqlite else []
                first_message = conn.exec_driver_sql(
                    'SELECT COALESCE(MAX(id), 0) + 1 FROM "message"'
                ).scalar()
                triggers = _drop_message_triggers(conn) if sqlite else []
                counts = _load(
                    conn, sqlite, rng, now, n_tickets, recipes, weights, roster, policies
                )
                for sql in dropped:
                    conn.exec_driver_sql(sql)
                if (
                    triggers
                ):  # the new messages into the search index at once, then its triggers back
                    conn.exec_driver_sql(_INDEX_MESSAGES, (first_message,))
                    for sql in triggers:
                        conn.exec_driver_sql(sql)
                if not sqlite:
                    _reset_sequences(conn)
        finally:
            if restore:
                restore()
        if sqlite:
            conn.connection.dbapi_connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    counts["seconds"] = round(time.perf_counter() - started, 2)
    return counts


def _roster(volunteers: list[tuple[str, str]]) -> dict[str, list[str]]:
    from helpdesk.base.roles import RANK

    rank = {login: RANK.get(role, 0) for login, role in volunteers}
    out = {}
    for role, need in RANK.items():
        out[role] = [login for login, r in rank.items() if r >= need] or [
            {"volunteer": "alice", "oncall": "bob", "techadmin": "chloe"}[role]
        ]
    return out


def _sqlite_fast(conn: Connection):
    """Load-time settings of this connection (outside any transaction), and their undoing."""
    raw = conn.connection.dbapi_connection
    before = {
        name: raw.execute(f"PRAGMA {name}").fetchone()[0]
        for name in ("foreign_keys", "synchronous", "cache_size", "temp_store")
    }
    raw.execute("PRAGMA foreign_keys=OFF")
    raw.execute("PRAGMA synchronous=OFF")
    raw.execute("PRAGMA cache_size=-262144")
    raw.execute("PRAGMA temp_store=MEMORY")

    def restore() -> None:
        for name, value in before.items():
            raw.execute(f"PRAGMA {name}={value}")

    return restore


def _drop_indexes(conn: Connection) -> list[str]:
    """Set aside the secondary indexes of the tables we fill; return their CREATE statements."""
    return _set_aside(
        conn, "index", "sql IS NOT NULL AND tbl_name IN ('ticket','event','deadline','message')"
    )


#: What the triggers of migration 0011 write: each message with its ticket's tags.
_INDEX_MESSAGES = (
    "INSERT INTO message_fts(rowid, subject, body, tags)"
    " SELECT m.id, m.subject, m.body,"
    " 'tq' || replace(t.queue, '-', '') || ' tk' || t.state_kind || ' tp' || replace(t.policy_key, '-', '')"
    " || CASE WHEN t.state_kind IN ('open', 'waiting') THEN ' ta' || replace(t.queue, '-', '') ELSE '' END"
    " FROM message m JOIN ticket t ON t.id = m.ticket_id WHERE m.id >= ?"
)


def _drop_message_triggers(conn: Connection) -> list[str]:
    """Set aside the triggers that index each message as it is inserted (migration 0007);
    return their CREATE statements. None on a database without ``message_fts``."""
    return _set_aside(conn, "trigger", "tbl_name = 'message' AND name LIKE 'message_fts_%'")


def _set_aside(conn: Connection, kind: str, where: str) -> list[str]:
    rows = conn.exec_driver_sql(
        f"SELECT name, sql FROM sqlite_master WHERE type='{kind}' AND {where}"
    ).fetchall()
    for name, _sql in rows:
        conn.exec_driver_sql(f'DROP {kind.upper()} "{name}"')
    return [sql for _name, sql in rows]


def _reset_sequences(conn: Connection) -> None:
    for name in ("account", "ticket", "event", "deadline", "message"):
        conn.execute(
            text(
                f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), (SELECT COALESCE(MAX(id), 1) FROM {name}))"
            )
        )


ACCOUNT_COLS = (
    "id",
    "policy_key",
    "login",
    "kind",
    "email",
    "org",
    "contacts",
    "status",
    "lang",
    "last_login",
    "fields",
    "created_at",
    "updated_at",
)
TICKET_COLS = (
    "id",
    "queue",
    "policy_key",
    "workflow_id",
    "state",
    "state_kind",
    "account_id",
    "requester",
    "subject",
    "lang",
    "fields",
    "checklist",
    "parent_id",
    "assignee",
    "claimed_by",
    "claim_expires",
    "opened_at",
    "updated_at",
    "closed_at",
    "due_at",
    "version",
)
EVENT_COLS = (
    "id",
    "at",
    "actor",
    "ticket_id",
    "account_id",
    "action",
    "from_state",
    "to_state",
    "note",
    "sanction",
    "data",
    "content_digest",
    "prev_hash",
    "hash",
)
DEADLINE_COLS = ("id", "ticket_id", "name", "due_at", "action", "state", "status", "note")
MESSAGE_COLS = (
    "id",
    "ticket_id",
    "at",
    "direction",
    "author",
    "from_addr",
    "from_name",
    "to_addrs",
    "subject",
    "body",
    "attachments",
    "message_id",
)


def body(rand, queue: str, first: str) -> str:
    """A mail of a few hundred words (about 20 sentences): the queue's sentences mixed with
    everyday ones, in paragraphs, signed."""
    own = BODY_SENTENCES.get(queue, BODY_SENTENCES["general"])
    paragraphs = []
    for _p in range(3 + int(rand() * 3)):
        n = 3 + int(rand() * 4)
        paragraphs.append(
            " ".join(
                own[int(rand() * len(own))]
                if rand() < 0.4
                else EVERYDAY[int(rand() * len(EVERYDAY))]
                for _s in range(n)
            )
        )
    return "\n\n".join(
        [
            GREETINGS[int(rand() * len(GREETINGS))],
            *paragraphs,
            CLOSINGS[int(rand() * len(CLOSINGS))],
            first.capitalize(),
        ]
    )


class _Writer:
    """Rows (tuples in ``cols`` order) sent by executemany in batches. On SQLite the values
    are already in storage form (text dates, JSON text) and go straight to the driver;
    elsewhere the model table converts datetimes and JSON."""

    def __init__(self, conn: Connection, model, cols: tuple, sqlite: bool):
        self.rows: list[tuple] = []
        self.count = 0
        # Columns added to the model since this module was written: their default, or NULL.
        fill = []
        for c in model.__table__.columns:
            if c.name in cols:
                continue
            if c.default is not None and getattr(c.default, "is_scalar", False):
                fill.append(c.default.arg)
            elif c.nullable or c.primary_key:
                fill.append(None)
            else:
                raise RuntimeError(
                    f"benchmarks.bulk does not know the column {model.__tablename__}.{c.name}: add it to bulk's column lists"
                )
            cols = (*cols, c.name)
        if fill:
            extra = tuple(fill)
            self.add = lambda row: self.rows.append(row + extra)  # type: ignore[method-assign]
        if sqlite:
            sql = f'INSERT INTO "{model.__tablename__}" ({", ".join(chr(34) + c + chr(34) for c in cols)}) VALUES ({", ".join("?" * len(cols))})'
            self._run = lambda rows: conn.exec_driver_sql(sql, rows)
        else:
            stmt = model.__table__.insert()
            self._run = lambda rows: conn.execute(stmt, [dict(zip(cols, r)) for r in rows])

    def add(self, row: tuple) -> None:
        self.rows.append(row)

    @property
    def full(self) -> bool:
        return len(self.rows) >= BATCH

    def flush(self) -> None:
        if self.rows:
            self._run(self.rows)
            self.count += len(self.rows)
            self.rows = []


def _load(conn, sqlite, rng, now, n_tickets, recipes, weights, roster, policies) -> dict:
    # Dates as text, from two tables: days seen so far, and the 86,400 times of a day.
    epoch = datetime(1970, 1, 1).date()
    days: dict[int, str] = {}
    hms = ["%02d:%02d:%02d" % (r // 3600, r // 60 % 60, r % 60) for r in range(86400)]

    def day_of(ts: int) -> str:
        d = ts // 86400
        ds = days.get(d)
        if ds is None:
            ds = days[d] = (epoch + timedelta(days=d)).isoformat()
        return ds

    def iso(ts: int) -> str:
        return f"{day_of(ts)}T{hms[ts % 86400]}Z"

    if sqlite:

        def when(ts: int) -> str:
            return f"{day_of(ts)} {hms[ts % 86400]}.000000"

        as_json = json.dumps
    else:

        def when(ts: int):
            return datetime.fromtimestamp(ts, UTC)

        def as_json(value):
            return value

    max_id = lambda name: conn.exec_driver_sql(
        f'SELECT COALESCE(MAX(id), 0) FROM "{name}"'
    ).scalar()  # noqa: E731
    next_account, next_ticket, next_event, next_deadline, next_message = (
        max_id(n) + 1 for n in ("account", "ticket", "event", "deadline", "message")
    )
    ch = ChainHead.__table__
    head = conn.execute(select(ch.c.last_id, ch.c.last_hash).where(ch.c.id == 1)).first()
    last = conn.execute(
        select(Event.__table__.c.id, Event.__table__.c.hash)
        .order_by(Event.__table__.c.id.desc())
        .limit(1)
    ).first()
    if head is not None and last is not None and head.last_id != last.id:
        raise RuntimeError(
            "the audit chain head does not point at the last event: run 'helpdesk audit verify'"
        )
    prev_hash = last.hash if last else ""
    now_ts = int(now.timestamp())

    w_account = _Writer(conn, Account, ACCOUNT_COLS, sqlite)
    w_ticket = _Writer(conn, Ticket, TICKET_COLS, sqlite)
    w_event = _Writer(conn, Event, EVENT_COLS, sqlite)
    w_deadline = _Writer(conn, Deadline, DEADLINE_COLS, sqlite)
    w_message = _Writer(conn, Message, MESSAGE_COLS, sqlite)
    mid = next_message

    # Accounts: about one per four tickets, in proportion to each policy's share.
    share: dict[str, float] = {}
    for r, w in zip(recipes, weights):
        share[r.policy] = share.get(r.policy, 0) + w
    total = sum(share.values())
    n_accounts = max(20, n_tickets // 4)
    pools: dict[tuple[str, bool], list[tuple[int, str, str]]] = {}
    aid = next_account
    empty_list, empty_obj = as_json([]), as_json({})
    for policy in sorted(share):
        kinds, other = KINDS.get(policy, (("user",), ()))
        for i in range(max(4, int(n_accounts * share[policy] / total))):
            kind = kinds[i % len(kinds)] if not other or i % 5 else other[0]
            first, last_name = (
                FIRST[int(rng.random() * len(FIRST))],
                LAST[int(rng.random() * len(LAST))],
            )
            login = f"{first}.{last_name}.{aid}"
            email = f"{login}@{policy}.example.org"
            created = now_ts - int(rng.uniform(400, 2000) * 86400)
            last_login = now_ts - int(rng.random() * 500 * 86400)
            w_account.add(
                (
                    aid,
                    policy,
                    login,
                    kind,
                    email,
                    "",
                    empty_list,
                    "active",
                    "",
                    when(last_login),
                    empty_obj,
                    when(created),
                    when(created),
                )
            )
            if w_account.full:
                w_account.flush()
            pools.setdefault((policy, kind in other), []).append((aid, login, email))
            aid += 1
    w_account.flush()

    # Tickets, oldest first, so that ids follow time as in a real database.
    span = 3 * 365 * 86400
    opened = sorted(now_ts - int(span * (rng.random() ** 1.6)) - 3600 for _ in range(n_tickets))
    done_idx = [i for i, r in enumerate(recipes) if r.kind == "done"]
    live_idx = [i for i, r in enumerate(recipes) if r.kind != "done"]
    done_w = list(itertools.accumulate(weights[i] for i in done_idx))
    live_w = list(itertools.accumulate(weights[i] for i in live_idx))
    done_recipes = [recipes[i] for i in done_idx]
    live_recipes = [recipes[i] for i in live_idx]
    done_total, live_total = done_w[-1], live_w[-1]
    categories = (
        "spam",
        "spam",
        "illicit-content",
        "harassment",
        "security",
        "resources",
        "illegal",
        "compromise",
    )
    signals = ("volume", "bounces", "complaint", "dmarc", "blocklist")
    people = roster["volunteer"]
    rand = rng.random
    n_delays = len(STEP_DELAYS)
    tid, eid, did = next_ticket, next_event, next_deadline
    overdue = 0
    sha = hashlib.sha256

    for t0 in opened:
        age = now_ts - t0
        if rand() < (0.45 if age < 20 * 86400 else 0.03 if age < 120 * 86400 else 0.002):
            r = live_recipes[bisect(live_w, rand() * live_total)]
            if age > 30 * 86400 and rand() < 0.75:  # most open tickets are recent
                t0 = now_ts - int(rng.expovariate(1 / (5 * 86400))) - 600
        else:
            r = done_recipes[bisect(done_w, rand() * done_total)]
        pool = pools.get((r.policy, r.not_served)) or pools[(r.policy, False)]
        acc_id, login, email = pool[int(rand() * len(pool))]
        fields = dict(r.fields)
        if "category" in fields:
            fields["category"] = categories[int(rand() * 8)]
            if rand() < 0.1:
                fields["urgent"] = True
        elif "signal" in fields:
            messages = int(200 + rand() * 3000)
            fields.update(
                signal=signals[int(rand() * 5)],
                sender=email,
                messages=messages,
                bounces=int(messages * rand() * 0.5),
            )
        times = [t0]
        for _s in r.steps:
            times.append(times[-1] + STEP_DELAYS[int(rand() * n_delays)])
        if times[-1] > now_ts - 60:  # a history that would end in the future: move it back
            shift = times[-1] - (now_ts - 60)
            times = [t - shift for t in times]
            t0 = times[0]
        last_ts = times[-1]
        if "day" in fields:
            fields["day"] = day_of(last_ts + 10 * 86400)
        # History: opened (mail ingest, or a volunteer on the phone), then the path.
        opener = "system" if rand() < 0.7 else people[int(rand() * len(people))]
        fields_json = json.dumps(fields, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        evs = [(t0, opener, "open", None, r.initial, "", None, '{"fields":' + fields_json + "}")]
        changed = False
        person_acted = False
        checklist: list = []
        state = r.initial
        for (key, _frm, to, sanction, role, note_req, given, checks), ts in zip(r.steps, times[1:]):
            if role == "system":
                who = "system"
            else:
                staff = roster.get(role) or people
                who = staff[int(rand() * len(staff))]
                person_acted = True
            data = {}
            if given:
                g = dict(given)
                if "until" in g:
                    g["until"] = iso(ts + 2 * 86400)
                fields.update(g)
                changed = True
                data["fields"] = g
            if checks:
                checklist = sorted(set(checklist) | set(checks))
                data["checklist"] = checks
            evs.append(
                (
                    ts,
                    who,
                    key,
                    state,
                    to,
                    NOTES[int(rand() * len(NOTES))] if note_req else "",
                    sanction,
                    _enc_data(data),
                )
            )
            state = to
        # Pending deadlines of a ticket not done; due_at is the earliest.
        due_at = None
        if r.kind != "done":
            if not person_acted and r.respond_by is not None:
                due_at = int((datetime.fromtimestamp(t0, UTC) + r.respond_by).timestamp())
                w_deadline.add((did, tid, "respond-by", when(due_at), None, None, "pending", ""))
                did += 1
            for action, name, field in r.timers:
                due = max(last_ts, now_ts) + int((1 + rand() * 40) * 86400)
                if field == "day":
                    day = day_of(due)
                    fields["day"] = day
                    due = int(
                        clock.start_of_day(
                            datetime.fromisoformat(day).date(), policies[r.policy].timezone
                        ).timestamp()
                    )
                elif field:
                    fields[field] = iso(due)
                changed = True
                w_deadline.add((did, tid, name, when(due), action, r.state, "pending", ""))
                did += 1
                due_at = due if due_at is None else min(due_at, due)
            if due_at is not None and due_at <= now_ts:
                overdue += 1
        subjects = SUBJECTS[r.queue]
        requester = (
            ""
            if r.queue == "mail-reputation"
            else email
            if rand() < 0.85
            else f"someone{int(rand() * 1e6)}@example.net"
        )
        subject = subjects[int(rand() * len(subjects))].format(login=login)
        w_ticket.add(
            (
                tid,
                r.queue,
                r.policy,
                r.workflow_id,
                r.state,
                r.kind,
                acc_id,
                requester,
                subject,
                "en" if rand() < 0.05 else policies[r.policy].lang,
                (json.dumps(fields, ensure_ascii=False) if changed else fields_json)
                if sqlite
                else fields,
                as_json(checklist) if checklist else empty_list,
                None,
                people[int(rand() * len(people))] if r.kind != "done" and rand() < 0.2 else None,
                None,
                None,
                when(t0),
                when(last_ts),
                when(last_ts) if r.kind == "done" else None,
                when(due_at) if due_at is not None else None,
                len(evs),
            )
        )
        for ts, who, action, frm, to, note, sanction, data_json in evs:
            content = _content_fast(note, data_json)
            h = sha(
                prev_hash.encode()
                + b"\n"
                + _canonical_fast(
                    eid,
                    iso(ts),
                    who,
                    tid,
                    acc_id,
                    action,
                    frm,
                    to,
                    note,
                    sanction,
                    data_json,
                    content,
                )
            ).hexdigest()
            w_event.add(
                (
                    eid,
                    when(ts),
                    who,
                    tid,
                    acc_id,
                    action,
                    frm,
                    to,
                    note,
                    sanction,
                    data_json if sqlite else json.loads(data_json),
                    content,
                    prev_hash,
                    h,
                )
            )
            prev_hash = h
            eid += 1
        if r.queue != "mail-reputation":  # alerts hold figures, never a mail's text
            sender = requester or email
            w_message.add(
                (
                    mid,
                    tid,
                    when(t0),
                    "in",
                    "",
                    sender,
                    "",
                    as_json([f"contact@{r.policy}.example.org"]),
                    subject,
                    body(rand, r.queue, login.split(".")[0]),
                    empty_list,
                    f"<{tid}.{mid}@bulk.example>",
                )
            )
            mid += 1
        tid += 1
        if w_event.full or w_ticket.full or w_message.full:
            for w in (w_ticket, w_event, w_deadline, w_message):  # parents first: foreign keys hold
                w.flush()
    for w in (w_ticket, w_event, w_deadline, w_message):
        w.flush()

    if eid > next_event:
        if head is None:
            conn.execute(ch.insert(), [{"id": 1, "last_id": eid - 1, "last_hash": prev_hash}])
        else:
            conn.execute(
                ch.update().where(ch.c.id == 1).values(last_id=eid - 1, last_hash=prev_hash)
            )
    return {
        "tickets": w_ticket.count,
        "events": w_event.count,
        "deadlines": w_deadline.count,
        "accounts": w_account.count,
        "messages": w_message.count,
        "overdue": overdue,
    }
