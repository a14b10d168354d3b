"""The tables of the helpdesk.

Workflows are rows (``Workflow``, ``State``, ``Transition``) loaded from policy packs;
tickets move through them; every change is an append-only, hash-chained ``Event``,
which is at once the ticket history, the account's sanctions ledger and the audit trail.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Optional

from pydantic import ConfigDict
from sqlalchemy import JSON, Column, Index, LargeBinary, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from helpdesk.storage.tables import short_name as provider_short_name

from helpdesk.storage.columns import UTCDateTime


class Table(SQLModel):
    """The base of every table: pydantic's validation schema is built when first needed,
    not when the class is defined. Table rows are not validated on construction, so most
    runs never need it, and every command and the TUI start about 20 ms sooner."""

    model_config = ConfigDict(defer_build=True)  # type: ignore[assignment]  # SQLModelConfig is this TypedDict, widened


def _json(nullable: bool = False) -> Any:
    return Field(default_factory=dict, sa_column=Column(JSON, nullable=nullable))


def _jsonlist() -> Any:
    return Field(default_factory=list, sa_column=Column(JSON, nullable=False))


def _when(nullable: bool = True, index: bool = False) -> Any:
    return Field(default=None, sa_column=Column(UTCDateTime(), nullable=nullable, index=index))


class Meta(Table, table=True):
    """Key/value facts about this database (``training`` marks a training database)."""

    key: str = Field(primary_key=True, max_length=64)
    value: str = Field(default="", sa_column=Column(Text, nullable=False))


class Policy(Table, table=True):
    key: str = Field(primary_key=True, max_length=64)
    name: str
    timezone: str = "Europe/Paris"
    lang: str = "fr"
    source: str = ""  # seed file the citations quote
    digest: str = ""  # hash of the pack file as loaded
    params: dict = _json()
    citations: dict = _json()

    @property
    def short_name(self) -> str:
        """The name a person reads where room is short (list columns, headers, the
        dashboard): the pack's ``short_name`` (kept with its parameters), else its name."""
        return provider_short_name(self.params, self.name)


class Workflow(Table, table=True):
    __table_args__ = (UniqueConstraint("policy_key", "queue"),)

    id: Optional[int] = Field(default=None, primary_key=True)
    policy_key: str = Field(foreign_key="policy.key", index=True)
    queue: str = Field(max_length=32)
    title: dict = _json()
    fields: dict = _json()  # ticket field definitions: name -> {type, choices, required...}
    initial: dict = _json()  # field value -> initial state, "*" for the default
    on_open: list = _jsonlist()  # effects run when a ticket opens
    metadata_only: bool = False  # tickets hold figures and metadata, never content
    checklist: dict = _json()  # checklist item -> {label}


class State(Table, table=True):
    __table_args__ = (UniqueConstraint("workflow_id", "key"),)

    id: Optional[int] = Field(default=None, primary_key=True)
    workflow_id: int = Field(foreign_key="workflow.id", index=True)
    key: str = Field(max_length=48)
    position: int = 0
    kind: str = "open"  # open | waiting | done
    label: dict = _json()
    timers: list = _jsonlist()  # [{action, at | after, deadline}]
    deadlines: list = _jsonlist()  # names of deadlines shown while in this state


class Transition(Table, table=True):
    id: Optional[int] = Field(default=None, primary_key=True)
    workflow_id: int = Field(foreign_key="workflow.id", index=True)
    key: str = Field(max_length=48)  # the action key scripts use
    position: int = 0
    sources: list = _jsonlist()  # state keys, or ["*"] for every state not done
    target: str = Field(max_length=48)  # a state key, or "=" to stay
    label: dict = _json()
    role: str = "volunteer"
    fields: list = _jsonlist()  # fields the action requires
    checklist: list = _jsonlist()  # checklist items that must be ticked
    note_required: bool = False
    confirm: bool = False  # irreversible: the UI asks for confirmation
    auto: bool = False  # taken by the engine as soon as its guards pass
    system_only: bool = False  # taken only by the clock (timers)
    guards: list = _jsonlist()  # [{name, args, cite}]
    effects: list = _jsonlist()  # [{name, args}]
    cite: str = ""  # citation key into Policy.citations
    sanction: Optional[str] = None  # ledger step recorded when taken


class Volunteer(Table, table=True):
    login: str = Field(primary_key=True, max_length=64)
    name: str = ""
    role: str = "volunteer"
    policies: list = _jsonlist()  # the providers the role covers; empty: all of them
    ssh_keys: list = _jsonlist()
    active: bool = True
    created_at: datetime = _when(nullable=False)


class Account(Table, table=True):
    __table_args__ = (UniqueConstraint("policy_key", "login"),)

    id: Optional[int] = Field(default=None, primary_key=True)
    policy_key: str = Field(foreign_key="policy.key", index=True)
    login: str = Field(max_length=255, index=True)
    kind: str = "user"  # user | admin | employee | member | end-user
    email: str = Field(default="", max_length=320, index=True)
    org: str = ""
    contacts: list = _jsonlist()  # declared contact addresses (organisations)
    status: str = "active"
    lang: str = ""
    last_login: Optional[datetime] = _when()
    fields: dict = _json()  # provider-specific facts: signature-date, subscription-end...
    created_at: datetime = _when(nullable=False)
    updated_at: datetime = _when(nullable=False)


class Ticket(Table, table=True):
    __table_args__ = (
        Index("ix_ticket_queue_state_due", "queue", "state_kind", "due_at"),
        Index("ix_ticket_due", "due_at"),
    )

    id: Optional[int] = Field(default=None, primary_key=True)
    queue: str = Field(max_length=32, index=True)
    policy_key: str = Field(foreign_key="policy.key", index=True)
    workflow_id: int = Field(foreign_key="workflow.id")
    state: str = Field(max_length=48)
    state_kind: str = "open"  # copy of the state's kind, for fast queue counts
    account_id: Optional[int] = Field(default=None, foreign_key="account.id", index=True)
    requester: str = Field(default="", max_length=320)
    subject: str = ""
    lang: str = "fr"
    fields: dict = _json()
    checklist: list = _jsonlist()
    parent_id: Optional[int] = Field(default=None, foreign_key="ticket.id", index=True)
    assignee: Optional[str] = Field(default=None, max_length=64, index=True)
    claimed_by: Optional[str] = Field(default=None, max_length=64, index=True)
    claim_expires: Optional[datetime] = _when()
    opened_at: datetime = _when(nullable=False, index=True)
    updated_at: datetime = _when(nullable=False)
    closed_at: Optional[datetime] = _when()
    due_at: Optional[datetime] = _when()
    redacted_at: Optional[datetime] = _when()  # personal data removed after the retention period
    merged_into: Optional[int] = Field(
        default=None, foreign_key="ticket.id", index=True
    )  # ``ticket merge``: where it went
    version: int = 1


class Deadline(Table, table=True):
    """A named date on a ticket; with an ``action`` it is a timer that ``sweep`` runs."""

    # The dashboard counts the dates the texts make binding by name on every refresh: by
    # this index it reads those few rows, not the whole table (a million tickets).
    __table_args__ = (Index("ix_deadline_name_status", "name", "status"),)

    id: Optional[int] = Field(default=None, primary_key=True)
    ticket_id: int = Field(foreign_key="ticket.id", index=True)
    name: str = Field(max_length=48)
    due_at: datetime = _when(nullable=False, index=True)
    action: Optional[str] = Field(default=None, max_length=48)
    state: Optional[str] = Field(default=None, max_length=48)  # the state whose timer it is
    status: str = "pending"  # pending | done | cancelled | failed | info
    note: str = ""


class Event(Table, table=True):
    """Append-only: never deleted, never changed but by redaction. ``hash`` chains each row
    to the one before; it covers ``content_digest`` (the note and data) rather than the
    content itself, so that retention can redact personal data (``redacted_at``) and the
    chain still verifies."""

    id: Optional[int] = Field(default=None, primary_key=True)
    at: datetime = _when(nullable=False, index=True)
    actor: str = Field(max_length=64)
    ticket_id: Optional[int] = Field(default=None, foreign_key="ticket.id", index=True)
    account_id: Optional[int] = Field(default=None, foreign_key="account.id", index=True)
    action: str = Field(max_length=64)
    from_state: Optional[str] = None
    to_state: Optional[str] = None
    note: str = ""
    sanction: Optional[str] = Field(default=None, max_length=32)
    data: dict = _json()
    content_digest: str = Field(default="", max_length=64)
    redacted_at: Optional[datetime] = _when()
    prev_hash: str = ""
    hash: str = Field(default="", max_length=64)


class ChainHead(Table, table=True):
    """One row holding the last event hash; updating it serialises writers of the chain."""

    id: int = Field(default=1, primary_key=True)
    last_id: int = 0
    last_hash: str = ""


class Outbox(Table, table=True):
    id: Optional[int] = Field(default=None, primary_key=True)
    ticket_id: Optional[int] = Field(default=None, foreign_key="ticket.id", index=True)
    template: str = ""
    lang: str = "fr"
    to_addr: str = Field(max_length=320)
    subject: str = ""
    body: str = Field(default="", sa_column=Column(Text, nullable=False))
    # pending | sending | sent | failed | held | uncertain (see helpdesk.outgoing.delivery), or
    # bounced: it left, and the receiving side returned it (helpdesk.ingest.bounce_intake)
    status: str = Field(default="pending", index=True)
    attempts: int = 0
    next_attempt_at: Optional[datetime] = _when()
    created_at: datetime = _when(nullable=False)
    sent_at: Optional[datetime] = _when()
    message_id: str = Field(default="", index=True)
    last_error: str = ""
    token_id: Optional[int] = Field(default=None, foreign_key="resettoken.id")
    # What came back about it: failed | blocked | delayed | complaint, with the server's
    # enhanced status code ("5.1.1") and its words ("550 5.1.1 user unknown").
    bounced_at: Optional[datetime] = _when()
    bounce_kind: str = Field(default="", sa_column_kwargs={"server_default": ""})
    bounce_status: str = Field(default="", sa_column_kwargs={"server_default": ""})
    bounce_reason: str = Field(
        default="", sa_column=Column(Text, nullable=False, server_default="")
    )


class ResetToken(Table, table=True):
    """A one-time credential channel. Only the hash of the secret is ever stored."""

    id: Optional[int] = Field(default=None, primary_key=True)
    ticket_id: int = Field(foreign_key="ticket.id", index=True)
    account_id: int = Field(foreign_key="account.id")
    channel: str = "email"  # email | phone
    token_hash: str = ""  # empty until the secret is minted (at delivery for mail)
    created_at: datetime = _when(nullable=False)
    expires_at: datetime = _when(nullable=False)
    minted_at: Optional[datetime] = _when()
    used_at: Optional[datetime] = _when()


class Evidence(Table, table=True):
    """Raw material kept as received (mails, reports, log excerpts) with its hash."""

    id: Optional[int] = Field(default=None, primary_key=True)
    ticket_id: Optional[int] = Field(default=None, foreign_key="ticket.id", index=True)
    kind: str = "mail"  # mail | arf | dmarc | log | note
    source: str = ""
    sha256: str = Field(max_length=64, index=True)
    received_at: datetime = _when(nullable=False)
    content: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    redacted_at: Optional[datetime] = _when()  # content removed after the retention period


class Quarantine(Table, table=True):
    """Input that could not be used, kept raw with the reason, so nothing is lost."""

    id: Optional[int] = Field(default=None, primary_key=True)
    received_at: datetime = _when(nullable=False, index=True)
    kind: str = Field(default="mail", max_length=16)  # mail | arf | dmarc | postfix
    source: str = ""  # file, folder or mailbox it came from
    reason: str = Field(default="", sa_column=Column(Text, nullable=False))
    sha256: str = Field(max_length=64, index=True)
    content: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    released: bool = False


class MessageRef(Table, table=True):
    """A Message-ID seen on a ticket (received or sent), for threading replies."""

    __table_args__ = (UniqueConstraint("message_id"),)

    id: Optional[int] = Field(default=None, primary_key=True)
    message_id: str = Field(max_length=998)
    ticket_id: int = Field(foreign_key="ticket.id", index=True)
    direction: str = "in"  # in | out
    at: datetime = _when(nullable=False)


class IngestCursor(Table, table=True):
    """Where a resumable source (a log file, an IMAP folder) was last read up to."""

    source: str = Field(primary_key=True, max_length=512)
    state: dict = _json()
    updated_at: datetime = _when(nullable=False)


class DmarcStat(Table, table=True):
    """Pass/fail figures of one DMARC aggregate report for one domain."""

    __table_args__ = (UniqueConstraint("org_name", "report_id", "domain"),)

    id: Optional[int] = Field(default=None, primary_key=True)
    domain: str = Field(max_length=255, index=True)
    org_name: str = Field(default="", max_length=255)
    report_id: str = Field(default="", max_length=255)
    begin: datetime = _when(nullable=False, index=True)
    end: datetime = _when(nullable=False)
    passed: int = 0
    failed: int = 0
    policy_key: Optional[str] = Field(default=None, foreign_key="policy.key")


class Message(Table, table=True):
    """One message of a ticket's conversation: a mail received (``in``), a mail sent
    (``out``: a procedure's template or a volunteer's reply, its delivery status read from
    its ``outbox`` row, never copied) or an internal note (``note``, never mailed).

    The text is cleaned of control characters on entry; HTML was turned into text; the
    attachments are listed (name, type, size, sha256), never opened. Retention empties the
    personal content (``redacted_at``); the audit chain holds only references to rows."""

    __table_args__ = (Index("ix_message_ticket_at", "ticket_id", "at", "id"),)

    id: Optional[int] = Field(default=None, primary_key=True)
    ticket_id: int = Field(foreign_key="ticket.id")
    at: datetime = _when(nullable=False)
    direction: str = Field(default="in", max_length=8)  # in | out | note
    author: str = Field(default="", max_length=64)  # the volunteer who wrote it (out, note)
    from_addr: str = Field(default="", max_length=320)
    from_name: str = ""
    to_addrs: list = _jsonlist()
    subject: str = ""
    body: str = Field(default="", sa_column=Column(Text, nullable=False))
    attachments: list = _jsonlist()  # [{name, type, size, sha256}]
    message_id: str = Field(default="", max_length=998)
    outbox_id: Optional[int] = Field(default=None, foreign_key="outbox.id", index=True)
    evidence_id: Optional[int] = Field(default=None, foreign_key="evidence.id")
    redacted_at: Optional[datetime] = _when()


class ServiceAction(Table, table=True):
    """An action on a real service (lock an account, kick its sessions, suspend its
    sending...) queued by a step and carried out after it commits (helpdesk.outgoing.actions).

    ``status``: pending | running | done | failed | uncertain | would-have-done (training).
    While ``running``, ``next_attempt_at`` holds the end of the runner's lease."""

    __table_args__ = (Index("ix_serviceaction_status_due", "status", "next_attempt_at"),)

    id: Optional[int] = Field(default=None, primary_key=True)
    ticket_id: Optional[int] = Field(default=None, foreign_key="ticket.id", index=True)
    account_id: Optional[int] = Field(default=None, foreign_key="account.id", index=True)
    policy_key: str = Field(max_length=64)
    connector: str = Field(max_length=64)  # the [connectors.NAME] of helpdesk.toml
    service: str = Field(default="", max_length=16)  # its type: ldap, dovecot, postfix...
    kind: str = Field(max_length=32)  # lock, unlock, force-change, revoke-sessions...
    target: str = Field(default="", max_length=255)  # the account's name on that service
    params: dict = _json()  # e.g. {"until": ISO} for suspend-sending
    status: str = Field(default="pending", max_length=16)
    attempts: int = 0
    next_attempt_at: Optional[datetime] = _when()
    created_at: datetime = _when(nullable=False)
    done_at: Optional[datetime] = _when()
    last_error: str = Field(
        default="", sa_column=Column(Text, nullable=False)
    )  # the service's answer
    result: str = Field(default="", sa_column=Column(Text, nullable=False))


class MailBlock(Table, table=True):
    """A sending block that ``helpdesk policyd`` answers Postfix from: written by the
    postfix connector, keyed by the SASL login. ``until`` empty: until lifted."""

    id: Optional[int] = Field(default=None, primary_key=True)
    login: str = Field(max_length=255, index=True)
    policy_key: str = Field(max_length=64)
    ticket_id: Optional[int] = Field(default=None, index=True)
    until: Optional[datetime] = _when()
    reason: str = Field(default="", max_length=32)  # send-suspended | suspended | deactivated
    lang: str = Field(default="fr", max_length=8)
    timezone: str = Field(default="Europe/Paris", max_length=64)
    set_at: datetime = _when(nullable=False)


class LoginSeen(Table, table=True):
    """The latest login of an account that one source reported (a directory, Dovecot...),
    kept as our own history: a source that forgets (an admin reset clears LDAP's
    pwdLastSuccess) never moves it back."""

    __table_args__ = (UniqueConstraint("account_id", "source"),)

    id: Optional[int] = Field(default=None, primary_key=True)
    account_id: int = Field(foreign_key="account.id", index=True)
    source: str = Field(max_length=64)  # connector name, or "import" for a given date
    seen_at: datetime = _when(nullable=False)
    read_at: datetime = _when(nullable=False)
