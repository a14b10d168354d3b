"""Working a ticket's conversation: reply, comment, ask, set its account, merge, convert.

The scriptable twin of the TUI's composer. Every function takes the session from the
caller, checks the actor (``engine.check_writer``), records an audit event and leaves the
rest to the caller's transaction: a refusal rolls everything back.

- A **reply** is a mail to the requester or to a registered contact of the account, free
  text or a saved reply (``data/replies/<lang>/<key>.txt``, a provider may override one in
  ``data/replies/<lang>/<pack>/``), in the ticket's language, through the outbox, in the
  ticket's thread (``[policy #id]`` tag; In-Reply-To and References at delivery). On a
  password-reset ticket, text that looks like a password or access information is refused,
  citing the provider's rule (``no-mail-credentials``: CommunesPlone art. 6.7, Wigii art. 6).
- A **comment** is an internal note, never mailed.
- An **ask** mails the requester for what the procedure lacks, worded per provider and
  queue (``data/replies/ask-items.toml``); the ticket then waits on the requester, whose
  answer threads back and is read as the first request was (``helpdesk.ingest.intake``).
- **set_account** sets or changes the account a ticket is about; the guards are
  re-evaluated (automatic steps run).
- **merge** moves SRC's conversation onto INTO, ends SRC as merged, and later mails
  threaded to SRC land on INTO. Both tickets are locked in id order: two people merging at
  once end with one result, the second is refused.
- **convert** turns a ``general`` ticket into a procedure of the same provider, keeping
  its conversation (a new ticket of that queue, into which the general one is merged).
"""

from __future__ import annotations

import re
import tomllib
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

from sqlalchemy import update
from sqlmodel import Session, col, select

from helpdesk.storage import audit, messages
from helpdesk.base import clock
from helpdesk.workflow import engine, compose as mail
from helpdesk.rules.context import Actor
from helpdesk.base.errors import BadInput, Refused
from helpdesk.base.fields import EMAIL
from helpdesk.base.i18n import _
from helpdesk.storage.models import Account, Deadline, Event, Message, MessageRef, Outbox, Ticket
from helpdesk.base.queues import GENERAL
from helpdesk.base.paths import data_dir, template_subject
from helpdesk.base.untrusted import clean, one_line

REPLIES = "replies"
#: Saved replies that are not offered as such: the frame of a free reply, and of an ask.
FRAMES = ("reply", "ask")
MAX_TEXT = 100_000


# --- saved replies ------------------------------------------------------------------------


def saved_replies(lang: str = "fr") -> list[str]:
    """The keys of the saved replies a volunteer may pick (``--template KEY``)."""
    return [n for n in mail.template_names(lang, REPLIES) if n not in FRAMES]


def saved_reply_subjects(lang: str = "fr") -> dict[str, str]:
    """Each saved reply's key and the subject its mail leaves with, as written in ``lang``
    (what a person reads beside the key; a subject made from the ticket reads as "")."""
    return {key: template_subject(key, lang, REPLIES) for key in saved_replies(lang)}


@lru_cache(maxsize=1)
def _ask_items() -> dict:
    return tomllib.loads((data_dir() / REPLIES / "ask-items.toml").read_text("utf-8"))


def ask_items(policy_key: str, queue: str, lang: str) -> dict[str, str]:
    """What may be asked for on a ticket of this provider and queue, worded in ``lang``."""
    table = _ask_items()
    base = dict(table.get(queue, {}))
    base.update(table.get(policy_key, {}).get(queue, {}))
    return {item: words.get(lang) or words.get("fr", item) for item, words in base.items()}


# --- credentials --------------------------------------------------------------------------

_LABEL = (
    r"(?:mot de passe|mots de passe|mdp|password|passwd|pwd|passphrase|phrase de passe|code d'acces|code secret|code"
    r"|access code|passcode|pin|identifiants?|login|nom d'utilisateur|username|user name|credentials?)"
)
_LABELLED = re.compile(
    rf"\b{_LABEL}(?:\s+(?:provisoire|temporaire|temporary|initial|nouveau|new|actuel|current))?"
    r"\s*(?:(?P<sep>[:=])|\b(?:est|is|sera|will be|reste)\b)\s*(?P<value>[\"'«“]?\S+)"
)
_SECRETISH = re.compile(
    r"(?=\S*\d)(?=\S*[^\W\d_])\S{8,64}|(?=\S*[^\w\s])(?=\S*\d)(?=\S*[^\W\d_])\S{6,64}"
)
_NOT_SECRET = re.compile(r"^(?:https?://|www\.)|@|^\[|^#\d+|^\d{4}-\d{2}-\d{2}")


def _fold(text: str) -> str:
    text = text.replace("’", "'").lower()
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


def looks_like_credential(text: str) -> str | None:
    """The piece of ``text`` that looks like a password or access information, or None: a
    labelled value ("mot de passe : Xk7…", "your login is jdupont") or a lone token mixing
    letters, digits and signs the way generated passwords do."""
    folded = _fold(text or "")
    for match in _LABELLED.finditer(folded):
        value = match.group("value").strip("\"'«“”».,;!?)")
        if len(value) < 3 or _NOT_SECRET.search(value):
            continue
        if (
            match.group("sep")
            or any(c.isdigit() for c in value)
            or match.group("value")[0] in "\"'«“"
        ):
            return one_line(match.group(0), 60)
    for token in folded.split():
        token = token.strip("\"'«“”».,;!?()")
        if _SECRETISH.fullmatch(token) and not _NOT_SECRET.search(token) and not token.isdigit():
            if (
                sum(c.isalpha() for c in token)
                and sum(c.isdigit() for c in token)
                and len(set(token)) >= 6
            ):
                return one_line(token, 60)
    return None


# --- replies ------------------------------------------------------------------------------


@dataclass
class Draft:
    """A mail as it will leave (the composer's preview)."""

    ticket_id: int
    to: str
    subject: str
    body: str
    lang: str
    template: str

    def as_dict(self) -> dict:
        return {
            "ticket": self.ticket_id,
            "to": self.to,
            "subject": self.subject,
            "body": self.body,
            "lang": self.lang,
            "template": self.template,
        }


def recipients(session: Session, ticket: Ticket) -> list[str]:
    """Who a reply may go to: the requester, then the account's registered addresses."""
    found = [ticket.requester] if ticket.requester else []
    account = session.get(Account, ticket.account_id) if ticket.account_id else None
    if account is not None and account.status != "erased":
        found += [account.email, *(account.contacts or [])]
    return list(dict.fromkeys(a.strip().lower() for a in found if a and a.strip()))


def _writable(
    session: Session, ticket_id: int, actor: Actor, expected_version: int | None = None
) -> Ticket:
    ticket = engine.load_ticket(session, ticket_id, for_update=True)
    engine.check_writer(session, actor)
    engine.check_version(session, ticket, expected_version)
    if ticket.merged_into is not None:
        raise BadInput(
            _("ticket #{id} was merged into #{into}: work on #{into}").format(
                id=ticket.id, into=ticket.merged_into
            )
        )
    return ticket


def _recipient(session: Session, ticket: Ticket, to: str | None) -> str:
    allowed = recipients(session, ticket)
    if to:
        wanted = to.strip().lower()
        if not EMAIL.match(wanted) or wanted not in allowed:
            raise BadInput(
                _(
                    "{address} is neither the requester nor a registered contact of the account (allowed: {allowed})"
                ).format(address=one_line(to, 80), allowed=", ".join(allowed) or "-")
            )
        return wanted
    if not allowed:
        raise BadInput(
            _("ticket #{id} has no requester and no account address to write to").format(
                id=ticket.id
            )
        )
    return allowed[0]


def compose(
    session: Session,
    ticket: Ticket,
    actor: Actor,
    *,
    text: str | None = None,
    template: str | None = None,
    to: str | None = None,
    extra: dict | None = None,
    now: datetime | None = None,
) -> Draft:
    """Render a reply without queueing it; refuses what ``reply`` would refuse."""
    if bool(text and text.strip()) == bool(template):
        raise BadInput(_("give the reply's text or a saved reply, one of the two"))
    ctx = engine.make_ctx(session, ticket, actor, now)
    lang = ticket.lang if ticket.lang in mail.LOCALES else "fr"
    address = _recipient(session, ticket, to)
    if template:
        if template not in saved_replies(lang) and template != "ask":
            raise BadInput(
                _("no saved reply {key!r} (saved replies: {keys})").format(
                    key=template, keys=", ".join(saved_replies(lang))
                )
            )
        key = template
        context = mail.build_context(ctx, **(extra or {}))
    else:
        body = clean(text or "").strip()
        if len(body) > MAX_TEXT:
            raise BadInput(
                _("the reply is too long ({n} characters, at most {max})").format(
                    n=len(body), max=MAX_TEXT
                )
            )
        key = "reply"
        subject = re.sub(r"^(?:re\s*:\s*)+", "", ticket.subject or "", flags=re.IGNORECASE)
        context = mail.build_context(
            ctx, text=body, subject=("Re: " + subject) if subject else _("Your request")
        )
    subject, body = mail.render(key, lang, ticket.policy_key, context, folder=REPLIES)
    if ticket.queue == "password-reset":
        found = looks_like_credential(f"{subject}\n{body}")
        if found:
            ref, quote = engine.citation(ctx.policy, "no-mail-credentials")
            raise Refused(
                "no-mail-credentials",
                _(
                    "a reply on a password reset cannot carry a password or access information («{found}»)"
                ).format(found=found),
                ref,
                quote,
            )
    return Draft(
        ticket.id,
        address,
        f"{mail.subject_tag(ticket.policy_key, ticket.id)} {subject}",
        body,
        lang,
        key,
    )


def reply(
    session: Session,
    ticket_id: int,
    actor: Actor,
    *,
    text: str | None = None,
    template: str | None = None,
    to: str | None = None,
    expected_version: int | None = None,
    now: datetime | None = None,
    action: str = "reply",
    extra: dict | None = None,
) -> Outbox:
    """Queue a reply (see ``compose``); a volunteer's answer settles the response target and
    marks a general ticket answered."""
    ticket = _writable(session, ticket_id, actor, expected_version)
    now = now or clock.now()
    draft = compose(
        session, ticket, actor, text=text, template=template, to=to, extra=extra, now=now
    )
    ctx = engine.make_ctx(session, ticket, actor, now)
    subject = (
        draft.subject.split("] ", 1)[1]
        if draft.subject.startswith("[") and "] " in draft.subject
        else draft.subject
    )
    row = mail.enqueue(ctx, f"reply:{draft.template}", draft.to, subject, draft.body, draft.lang)
    for dl in session.exec(
        select(Deadline).where(
            Deadline.ticket_id == ticket.id,
            Deadline.name == "respond-by",
            Deadline.status == "pending",
        )
    ):
        dl.status = "done"
        session.add(dl)
    ticket.updated_at = now
    ticket.version = (ticket.version or 0) + 1
    session.add(ticket)
    engine.refresh_due(session, ticket)
    audit.record(
        session,
        actor=actor.login,
        action=action,
        ticket_id=ticket.id,
        account_id=ticket.account_id,
        at=now,
        data={
            "outbox": row.id,
            "to": draft.to,
            "template": draft.template,
            **(extra or {}).get("_event", {}),
        },
    )
    if ticket.queue == GENERAL and ticket.state == "received":
        engine.apply(session, ticket.id, "answer", actor, note=_("answered by mail"), now=now)
    return row


def ask(
    session: Session,
    ticket_id: int,
    actor: Actor,
    missing: list[str],
    *,
    to: str | None = None,
    expected_version: int | None = None,
    now: datetime | None = None,
) -> Outbox:
    """Ask the requester for what the procedure lacks; the ticket waits on the requester."""
    ticket = engine.load_ticket(session, ticket_id)
    lang = ticket.lang if ticket.lang in mail.LOCALES else "fr"
    known = ask_items(ticket.policy_key, ticket.queue, lang)
    if not missing:
        raise BadInput(
            _("say what is missing (--missing ITEM; here: {items})").format(
                items=", ".join(known) or "-"
            )
        )
    unknown = [m for m in missing if m not in known]
    if unknown:
        raise BadInput(
            _("nothing called {items} can be asked on a {queue} ticket (known: {known})").format(
                items=", ".join(unknown), queue=ticket.queue, known=", ".join(known) or "-"
            )
        )
    items = list(dict.fromkeys(missing))
    extra = {"items": [known[m] for m in items], "_event": {"missing": items}}
    return reply(
        session,
        ticket_id,
        actor,
        template="ask",
        to=to,
        expected_version=expected_version,
        now=now,
        action="ask",
        extra=extra,
    )


def comment(
    session: Session, ticket_id: int, actor: Actor, text: str, *, now: datetime | None = None
) -> Message:
    """An internal note for colleagues: part of the conversation, never mailed."""
    ticket = _writable(session, ticket_id, actor)
    body = clean(text or "").strip()
    if not body:
        raise BadInput(_("a note needs a text (--text)"))
    if len(body) > MAX_TEXT:
        raise BadInput(
            _("the note is too long ({n} characters, at most {max})").format(
                n=len(body), max=MAX_TEXT
            )
        )
    now = now or clock.now()
    row = messages.record_note(session, ticket.id, author=actor.login, text=body, now=now)
    ticket.updated_at = now
    session.add(ticket)
    audit.record(
        session,
        actor=actor.login,
        action="comment",
        ticket_id=ticket.id,
        account_id=ticket.account_id,
        at=now,
        data={"message": row.id},
    )
    return row


def waiting_on(session: Session, ticket: Ticket) -> str | None:
    """ "requester" while the last word of the conversation is an ask nobody answered."""
    last = session.exec(
        select(Message)
        .where(Message.ticket_id == ticket.id, Message.direction != "note")
        .order_by(col(Message.at).desc(), col(Message.id).desc())
    ).first()
    if last is None or last.direction != "out" or last.outbox_id is None:
        return None
    row = session.get(Outbox, last.outbox_id)
    return "requester" if row is not None and row.template == "reply:ask" else None


# --- the account a ticket is about ----------------------------------------------------------


def set_account(
    session: Session,
    ticket_id: int,
    actor: Actor,
    login: str | None,
    *,
    expected_version: int | None = None,
    now: datetime | None = None,
) -> engine.Outcome:
    """Set or change (``None``: remove) the account; audited; the guards are evaluated anew
    and the automatic steps they now allow are taken."""
    ticket = _writable(session, ticket_id, actor, expected_version)
    now = now or clock.now()
    account = None
    if login:
        rows = list(
            session.exec(
                select(Account).where(
                    Account.login == login, Account.policy_key == ticket.policy_key
                )
            )
        )
        if not rows:
            raise BadInput(
                _("no account {login!r} ({policy})").format(login=login, policy=ticket.policy_key)
            )
        account = rows[0]
    before = session.get(Account, ticket.account_id).login if ticket.account_id else None
    if (account.id if account else None) == ticket.account_id:
        return engine.Outcome(ticket, [], [], [], [])
    ticket.account_id = account.id if account else None
    ticket.version = (ticket.version or 0) + 1
    ticket.updated_at = now
    session.add(ticket)
    event = audit.record(
        session,
        actor=actor.login,
        action="set-account",
        ticket_id=ticket.id,
        account_id=ticket.account_id,
        at=now,
        data={"account": [before, account.login if account else None]},
    )
    mails: list = []
    events = [event] + engine.run_automatic(session, ticket, now=now, mails=mails)
    return engine.Outcome(ticket, events, mails, [], [])


def _classified(session: Session, ticket: Ticket) -> dict:
    data = session.exec(
        select(Event.data)
        .where(Event.ticket_id == ticket.id, Event.action == "classified")
        .order_by(col(Event.id))
        .limit(1)
    ).first()
    return dict(data or {})


def candidates(session: Session, ticket: Ticket) -> list[str]:
    """The accounts a third-party complaint named when none could be chosen (until one is)."""
    return [] if ticket.account_id else list(_classified(session, ticket).get("candidates") or [])


def classification(session: Session, ticket: Ticket) -> dict | None:
    """Why intake chose the ticket's queue: ``{"queue", "words", "by"}``, None when opened by hand."""
    data = _classified(session, ticket)
    if not data or data.get("redacted"):
        return None
    return {
        "queue": data.get("queue"),
        "words": list(data.get("words") or []),
        "by": data.get("by", "text"),
    }


# --- merging and converting -----------------------------------------------------------------


def merge(
    session: Session,
    src_id: int,
    into_id: int,
    actor: Actor,
    *,
    now: datetime | None = None,
    action: str = "merge",
) -> Ticket:
    """Merge ticket SRC into INTO (same provider and queue, unless ``action`` is "convert")."""
    if src_id == into_id:
        raise BadInput(_("a ticket cannot be merged into itself"))
    engine.check_writer(session, actor)
    first, second = sorted((src_id, into_id))
    locked = {
        first: engine.load_ticket(session, first, for_update=True),
        second: engine.load_ticket(session, second, for_update=True),
    }
    src, into = locked[src_id], locked[into_id]
    session.refresh(src)
    session.refresh(into)
    for t in (src, into):
        if t.merged_into is not None:
            raise Refused(
                "merged",
                _("ticket #{id} was already merged into #{into}").format(
                    id=t.id, into=t.merged_into
                ),
            )
    if action == "merge" and (src.policy_key, src.queue) != (into.policy_key, into.queue):
        raise Refused(
            "merge-same-procedure",
            _(
                "only tickets of the same provider and queue merge: #{a} is {qa} ({pa}), #{b} is {qb} ({pb})"
            ).format(
                a=src.id,
                qa=src.queue,
                pa=src.policy_key,
                b=into.id,
                qb=into.queue,
                pb=into.policy_key,
            ),
        )
    if action == "convert" and src.policy_key != into.policy_key:
        raise Refused("merge-same-procedure", _("a ticket converts only within its provider"))
    if into.state_kind == "done" and action == "merge":
        raise Refused(
            "merged", _("ticket #{id} is finished: merge into an open ticket").format(id=into.id)
        )
    now = now or clock.now()
    moved = session.exec(
        update(Message).where(col(Message.ticket_id) == src.id).values(ticket_id=into.id)
    ).rowcount
    session.exec(
        update(MessageRef).where(col(MessageRef.ticket_id) == src.id).values(ticket_id=into.id)
    )
    for dl in session.exec(
        select(Deadline).where(Deadline.ticket_id == src.id, Deadline.status == "pending")
    ):
        dl.status = "cancelled"
        dl.note = f"merged into #{into.id}"
        session.add(dl)
    from_state = src.state
    src.merged_into = into.id
    src.state = "merged"
    src.state_kind = "done"
    src.closed_at = now
    src.due_at = None
    src.updated_at = now
    src.version = (src.version or 0) + 1
    into.updated_at = now
    into.version = (into.version or 0) + 1
    if not into.account_id and src.account_id:
        into.account_id = src.account_id
    session.add(src)
    session.add(into)
    audit.append(
        session,
        Event(
            at=now,
            actor=actor.login,
            ticket_id=src.id,
            account_id=src.account_id,
            action=action,
            from_state=from_state,
            to_state="merged",
            data={"into": into.id, "messages": moved},
        ),
    )
    audit.record(
        session,
        actor=actor.login,
        action=f"{action}d-from",
        ticket_id=into.id,
        account_id=into.account_id,
        at=now,
        data={"from": src.id, "messages": moved},
    )
    return into


def merged_sources(session: Session, ticket: Ticket) -> list[int]:
    """The tickets merged into this one, directly or through others."""
    found: list[int] = []
    todo = [ticket.id]
    while todo:
        here = todo.pop()
        for tid in session.exec(select(Ticket.id).where(Ticket.merged_into == here)):
            if tid not in found:
                found.append(tid)
                todo.append(tid)
    return sorted(found)


def convert(
    session: Session,
    ticket_id: int,
    actor: Actor,
    queue: str,
    fields: dict | None = None,
    *,
    now: datetime | None = None,
) -> engine.Outcome:
    """Turn a general ticket into the procedure it really is (``queue``), of the same
    provider, keeping its conversation, requester, account and language."""
    ticket = _writable(session, ticket_id, actor)
    if ticket.queue != GENERAL:
        raise BadInput(
            _("only a general ticket is converted; #{id} is already a {queue} ticket").format(
                id=ticket.id, queue=ticket.queue
            )
        )
    if queue == GENERAL:
        raise BadInput(_("convert into one of the procedures, not into general"))
    now = now or clock.now()
    account = session.get(Account, ticket.account_id) if ticket.account_id else None
    outcome = engine.open_ticket(
        session,
        queue=queue,
        policy_key=ticket.policy_key,
        actor=actor,
        account=account,
        requester=ticket.requester,
        subject=ticket.subject,
        fields=fields or {},
        lang=ticket.lang,
        note=_("converted from general ticket #{id}").format(id=ticket.id),
        now=now,
    )
    merge(session, ticket.id, outcome.ticket.id, actor, now=now, action="convert")
    return outcome
