"""Delivery of the outbox: SMTP, or a Maildir "sent" folder when no SMTP server is set.

``deliver`` takes the pending rows that are due, turns each into an RFC 5322 message
(``email.message.EmailMessage``) and hands it over. Each row moves through a small status
machine, every step committed before the next one talks to the outside world::

    pending ─┬─> sending ─┬─> sent                  (the server said 250)
      ^      │            ├─> pending (retry)       (connection refused, 4xx, TLS or AUTH trouble)
      │      │            ├─> failed                (5xx for this message, or too many attempts)
      │      │            └─> uncertain             (the link broke after the message was sent)
      │      ├─> held      (no sender address, no reset URL: waits for configuration)
      │      └─> failed    (bad recipient address, reset link expired or already used)
      └──────── held rows are looked at again on each run and leave as soon as they can.

Why "uncertain" and never an automatic resend. A row is marked ``sending`` and committed
before the SMTP conversation starts, and ``sent`` after the server's 250. Between the two
the process may die, or the connection may break after the message's final dot and before
the reply: then the server may or may not have accepted the mail, and nothing we can read
tells us which. Resending could deliver a second copy (a second, different reset link, a
second "your account will be closed" notice); not resending could lose it. The helpdesk
chooses the side a human can repair: such a row becomes ``uncertain``, is reported by
``helpdesk outbox send`` and recorded as a ``mail-uncertain`` event, and is never resent
automatically. A row still ``sending`` once its lease (``DeliveryConfig.lease``, 10 minutes,
far longer than the SMTP timeout) has run out is treated the same way. While a row is
``sending``, ``next_attempt_at`` holds the end of its lease (the table has no other column
for it), so two runs never send the same row. Failures that certainly happened before the
message was handed over (no connection, STARTTLS or AUTH refused, MAIL/RCPT/DATA refused)
are safe to retry and are.

Retries back off without jitter, so that tests and trainers see the same dates: 1 min,
5 min, 30 min, 2 h, then every 6 h; after ``max_attempts`` (8) the row is ``failed``. When
the server cannot be reached at all, every row of the run is deferred the same way
without further connection attempts.

Reset links. A row with a ``token_id`` carries :data:`helpdesk.workflow.compose.RESET_LINK_MARK` in its
body. At delivery the token's secret is minted (only its hash is stored; a new mint
replaces the hash, so the link of an earlier, unfinished attempt can never work), the link
is the provider's ``reset_url`` (see :mod:`helpdesk.policy.provider_settings`; else ``HELPDESK_RESET_URL``,
an https address) followed by the secret,
and it is put into the message that leaves, never into the row, an event, an error text or
the report. A token that expired or was used before delivery is not sent: the row fails.

Configuration (:meth:`DeliveryConfig.from_env`): ``HELPDESK_SMTP_HOST`` (unset: Maildir),
``HELPDESK_SMTP_PORT`` (465 with SSL, 587 with STARTTLS, else 25), ``HELPDESK_SMTP_STARTTLS``,
``HELPDESK_SMTP_SSL`` (booleans, off by default), ``HELPDESK_SMTP_USER``,
``HELPDESK_SMTP_PASSWORD``, ``HELPDESK_SMTP_CAFILE`` (extra CA bundle to trust, e.g. a
provider's own relay certificate), ``HELPDESK_MAIL_FROM`` (the sender of the providers that have no
``mail_from``, see :mod:`helpdesk.policy.provider_settings`), ``HELPDESK_MAILDIR`` (default ``<user data dir>/sent``) and
``HELPDESK_RESET_URL``. Certificates are always verified; a password is never sent over
an unencrypted connection to anything but the local host.

A mail that left, or may have (``sent``, ``uncertain``), has its Message-ID recorded as a
``MessageRef`` of its ticket (direction ``out``): a reply naming it in In-Reply-To or
References threads onto that ticket through the same lookup as received mail.

Each outcome is one audit event (``mail-sent``, ``mail-retry``, ``mail-failed``,
``mail-held``, ``mail-uncertain``) with actor ``system`` and ``{"outbox": id, ...}``: never a
body, never a secret.
"""

from __future__ import annotations

import mailbox
import os
import re
import smtplib
import ssl
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email import policy as email_policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path

from sqlmodel import Session, col, or_, select

from helpdesk.storage import audit, db, locks, messages
from helpdesk.base import addresses, clock
from helpdesk.base.addresses import header_text
from helpdesk.policy import provider_settings
from helpdesk.rules import tokens
from helpdesk.rules.context import SYSTEM_ACTOR
from helpdesk.base.errors import BadInput
from helpdesk.base.i18n import _
from helpdesk.workflow.compose import RESET_LINK_MARK
from helpdesk.storage.models import Event, Outbox, Policy, ResetToken, Ticket

BACKOFF = (
    timedelta(minutes=1),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=6),
)
LEASE = timedelta(minutes=10)
MAX_ERROR = 500
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


# --- configuration -----------------------------------------------------------------------


@dataclass
class DeliveryConfig:
    smtp_host: str = ""  # empty: write into a Maildir
    smtp_port: int | None = None
    starttls: bool = False
    ssl: bool = False
    username: str = ""
    password: str = field(default="", repr=False)
    cafile: str = ""
    default_from: str = ""
    maildir: Path | None = None
    reset_url: str = ""
    max_attempts: int = 8
    lease: timedelta = LEASE
    timeout: float = 30.0
    helo: str | None = None  # the name given in EHLO (default: this host's FQDN)

    @classmethod
    def from_env(cls, environ=None) -> DeliveryConfig:
        """From the environment (``HELPDESK_SMTP_*``...) over ``helpdesk.toml``'s
        ``[smtp]`` and ``[mail]`` (:mod:`helpdesk.base.config`)."""
        from helpdesk.base import config

        env = os.environ if environ is None else environ
        cfg = config.load(env)

        def text(dotted: str) -> str:
            value = cfg.value(dotted)
            return "" if value is None else str(value).strip()

        def flag(dotted: str) -> bool:
            value = cfg.value(dotted)
            if isinstance(value, bool):
                return value
            value = str(value or "").strip().lower()
            if value in _TRUE:
                return True
            if value in _FALSE:
                return False
            raise BadInput(f"{cfg.origin(dotted)} must be on or off, not {value!r}")

        port = text("smtp.port")
        if port and not port.isdigit():
            raise BadInput(f"{cfg.origin('smtp.port')} must be a port number, not {port!r}")
        maildir = text("smtp.maildir")
        password = env.get("HELPDESK_SMTP_PASSWORD", "")
        if not password and (secret_file := text("smtp.password_file")):
            password = config.read_secret(
                Path(secret_file).expanduser(), where=cfg.origin("smtp.password_file")
            )
        return cls(
            smtp_host=text("smtp.host"),
            smtp_port=int(port) if port else None,
            starttls=flag("smtp.starttls"),
            ssl=flag("smtp.ssl"),
            username=text("smtp.user"),
            password=password,
            cafile=text("smtp.cafile"),
            default_from=text("mail.from"),
            maildir=Path(maildir).expanduser() if maildir else None,
            reset_url=text("mail.reset_url"),
        )

    @property
    def port(self) -> int:
        if self.smtp_port:
            return self.smtp_port
        return 465 if self.ssl else 587 if self.starttls else 25

    def maildir_path(self) -> Path:
        if self.maildir is not None:
            return self.maildir
        from platformdirs import user_data_dir

        return Path(user_data_dir("helpdesk", appauthor=False)) / "sent"

    def describe(self) -> str:
        if self.smtp_host:
            tls = " (SSL)" if self.ssl else " (STARTTLS)" if self.starttls else ""
            return f"smtp://{self.smtp_host}:{self.port}{tls}"
        return f"maildir:{self.maildir_path()}"

    def check(self) -> None:
        if self.ssl and self.starttls:
            raise BadInput("HELPDESK_SMTP_SSL and HELPDESK_SMTP_STARTTLS exclude each other")
        if (
            self.username
            and self.smtp_host
            and not (self.ssl or self.starttls)
            and not _is_local(self.smtp_host)
        ):
            raise BadInput(
                "refusing to send the SMTP password unencrypted: set HELPDESK_SMTP_STARTTLS or HELPDESK_SMTP_SSL"
            )
        if self.max_attempts < 1:
            raise BadInput("max_attempts must be at least 1")


def _is_local(host: str) -> bool:
    return host in ("localhost", "::1") or host.startswith("127.")


def backoff(attempts: int) -> timedelta:
    """The wait after the ``attempts``-th failed attempt (1-based)."""
    return BACKOFF[min(max(attempts, 1), len(BACKOFF)) - 1]


# --- the report --------------------------------------------------------------------------


@dataclass
class DeliveryReport:
    now: str
    transport: str
    sent: list[dict] = field(default_factory=list)
    retried: list[dict] = field(default_factory=list)
    failed: list[dict] = field(default_factory=list)
    held: list[dict] = field(default_factory=list)
    uncertain: list[dict] = field(default_factory=list)

    @property
    def needs_attention(self) -> bool:
        """Something a person must look at: a mail failed, is held or may not have left."""
        return bool(self.failed or self.held or self.uncertain)

    @property
    def exit_code(self) -> int:
        """0 when everything due was delivered (or nothing was due), 1 when a mail could not
        be: it failed, is held, is to be retried or is uncertain. A timer's exit status then
        says that mail is stuck (SMTP down included), and the output says which."""
        return 1 if self.needs_attention or self.retried else 0

    @property
    def nothing(self) -> bool:
        """Nothing was due: a quiet run has nothing to say."""
        return not (self.sent or self.retried or self.failed or self.held or self.uncertain)

    @property
    def local(self) -> bool:
        """Written to a local Maildir (no SMTP server set): nothing left this machine."""
        return self.transport.startswith("maildir:")

    def as_dict(self) -> dict:
        return {
            "now": self.now,
            "transport": self.transport,
            "counts": {
                k: len(getattr(self, k)) for k in ("sent", "retried", "failed", "held", "uncertain")
            },
            "sent": self.sent,
            "retried": self.retried,
            "failed": self.failed,
            "held": self.held,
            "uncertain": self.uncertain,
        }


# --- outcomes of one attempt -------------------------------------------------------------


class _Outcome(Exception):
    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class _Temporary(_Outcome):
    """Certainly not delivered; try again later. ``whole_run``: the transport is down."""

    def __init__(self, message: str, whole_run: bool = False):
        super().__init__(message)
        self.whole_run = whole_run


class _Permanent(_Outcome):
    """Certainly not delivered and never will be as it stands."""


class _Uncertain(_Outcome):
    """The message was handed over and then the link broke: it may have been accepted."""


class _Held(_Outcome):
    """Cannot be built until the configuration is completed."""


# --- the messages ------------------------------------------------------------------------


def mailbox_address(addr: str, display: str = "") -> Address:
    """A single plain addr-spec as an ``Address``; anything else fails this mail for good."""
    try:
        return addresses.mailbox_address(addr, display)
    except addresses.BadAddress as exc:
        raise _Permanent(exc.message) from None


def build_message(
    row: Outbox, *, sender: Address, reply_to: Address | None, now: datetime, body: str
) -> EmailMessage:
    msg = EmailMessage(policy=email_policy.SMTP)
    msg["From"] = sender
    msg["To"] = mailbox_address(row.to_addr)
    if reply_to is not None and reply_to.addr_spec != sender.addr_spec:
        msg["Reply-To"] = reply_to
    msg["Subject"] = header_text(row.subject)
    msg["Date"] = format_datetime(clock.as_utc(now))
    msg["Message-ID"] = row.message_id
    msg["Auto-Submitted"] = "auto-replied"
    if row.lang:
        msg["Content-Language"] = header_text(row.lang, 16)
    # quoted-printable keeps the message 7-bit: any relay takes it, no 8BITMIME needed.
    msg.set_content(body.replace("\r\n", "\n"), charset="utf-8", cte="quoted-printable")
    return msg


def wire_bytes(msg: EmailMessage) -> bytes:
    """The message for SMTP DATA: CRLF lines, dot-stuffed, ended by ``.``."""
    data = msg.as_bytes(policy=email_policy.SMTP)
    data = re.sub(rb"(?m)^\.", b"..", data)
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    return data + b".\r\n"


# --- transports --------------------------------------------------------------------------


class _SMTPTransport:
    def __init__(self, config: DeliveryConfig):
        self.config = config
        self.smtp: smtplib.SMTP | None = None

    def _tls(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.config.cafile or None)

    def _connect(self) -> smtplib.SMTP:
        cfg = self.config
        try:
            smtp: smtplib.SMTP
            if cfg.ssl:
                smtp = smtplib.SMTP_SSL(
                    cfg.smtp_host,
                    cfg.port,
                    local_hostname=cfg.helo,
                    timeout=cfg.timeout,
                    context=self._tls(),
                )
            else:
                smtp = smtplib.SMTP(
                    cfg.smtp_host, cfg.port, local_hostname=cfg.helo, timeout=cfg.timeout
                )
        except smtplib.SMTPResponseException as exc:
            raise _Temporary(
                f"SMTP server {cfg.smtp_host}:{cfg.port} refused the connection: {_reply(exc.smtp_code, exc.smtp_error)}",
                whole_run=True,
            ) from None
        except OSError as exc:
            raise _Temporary(
                f"SMTP server {cfg.smtp_host}:{cfg.port} unreachable: {_err(exc)}", whole_run=True
            ) from None
        try:
            smtp.ehlo()
            if cfg.starttls:
                if not smtp.has_extn("starttls"):
                    raise _Temporary(
                        f"SMTP server {cfg.smtp_host} does not offer STARTTLS: nothing sent in clear",
                        whole_run=True,
                    )
                smtp.starttls(context=self._tls())
                smtp.ehlo()
            if cfg.username:
                smtp.login(cfg.username, cfg.password)
        except _Temporary:
            _close(smtp)
            raise
        except smtplib.SMTPAuthenticationError as exc:
            _close(smtp)
            raise _Temporary(
                f"SMTP login as {cfg.username} refused: {_reply(exc.smtp_code, exc.smtp_error)}",
                whole_run=True,
            ) from None
        except smtplib.SMTPException as exc:
            _close(smtp)
            raise _Temporary(
                f"SMTP session with {cfg.smtp_host} failed: {_err(exc)}", whole_run=True
            ) from None
        except (OSError, ssl.SSLError) as exc:
            _close(smtp)
            raise _Temporary(
                f"SMTP session with {cfg.smtp_host} failed: {_err(exc)}", whole_run=True
            ) from None
        return smtp

    def open(self) -> None:
        if self.smtp is None:
            self.smtp = self._connect()

    def send(self, msg: EmailMessage, sender: str, recipient: str) -> None:
        assert self.smtp is not None
        smtp = self.smtp
        handed_over = False
        try:
            code, resp = smtp.mail(sender)
            if code != 250:
                self._rset()
                raise _refusal(code, resp, f"sender {sender} refused", permanent_ok=False)
            code, resp = smtp.rcpt(recipient)
            if code not in (250, 251):
                self._rset()
                raise _refusal(code, resp, f"recipient {recipient} refused")
            code, resp = smtp.docmd("DATA")
            if code != 354:
                self._rset()
                raise _refusal(code, resp, "DATA refused")
            handed_over = True
            smtp.send(wire_bytes(msg))
            code, resp = smtp.getreply()
        except _Outcome:
            raise
        except (OSError, ssl.SSLError) as exc:  # smtplib's errors are OSErrors too
            _close(smtp)
            self.smtp = None
            if handed_over:
                raise _Uncertain(
                    f"connection lost after the message was handed over: {_err(exc)}"
                ) from None
            raise _Temporary(
                f"connection lost before the message was handed over: {_err(exc)}", whole_run=True
            ) from None
        if code != 250:
            raise _refusal(code, resp, "message refused")

    def _rset(self) -> None:
        try:
            self.smtp.rset()
        except (OSError, ssl.SSLError):
            _close(self.smtp)
            self.smtp = None

    def close(self) -> None:
        if self.smtp is not None:
            try:
                self.smtp.quit()
            except (OSError, ssl.SSLError):
                _close(self.smtp)
            self.smtp = None


class _MaildirTransport:
    def __init__(self, config: DeliveryConfig):
        self.path = config.maildir_path()
        self.box: mailbox.Maildir | None = None

    def open(self) -> None:
        if self.box is None:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self.box = mailbox.Maildir(str(self.path), factory=None, create=True)
            except OSError as exc:
                raise _Temporary(
                    f"cannot open the Maildir {self.path}: {_err(exc)}", whole_run=True
                ) from None

    def send(self, msg: EmailMessage, sender: str, recipient: str) -> None:
        assert self.box is not None
        try:
            # Written under tmp/ then renamed into new/: a reader never sees half a mail.
            self.box.add(msg.as_bytes(policy=email_policy.default))
        except OSError as exc:
            raise _Temporary(
                f"cannot write into the Maildir {self.path}: {_err(exc)}", whole_run=True
            ) from None

    def close(self) -> None:
        self.box = None


def _close(smtp) -> None:
    try:
        smtp.close()
    except Exception:  # noqa: BLE001 - closing a broken socket may fail in any way
        pass


def _reply(code, text) -> str:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return header_text(f"{code} {text}", MAX_ERROR)


def _err(exc: BaseException) -> str:
    return header_text(str(exc) or type(exc).__name__, MAX_ERROR)


def _refusal(code: int, resp, what: str, permanent_ok: bool = True) -> _Outcome:
    text = f"{what}: {_reply(code, resp)}"
    if code == 421:  # the server is closing the session
        return _Temporary(text, whole_run=True)
    if 500 <= code < 600 and permanent_ok:
        return _Permanent(text)
    return _Temporary(text)


# --- one row -----------------------------------------------------------------------------


@dataclass
class _Prepared:
    outbox_id: int
    to_addr: str
    sender: str
    message: EmailMessage
    secret: str | None


def _policy_for(session: Session, row: Outbox) -> Policy | None:
    if row.ticket_id is None:
        return None
    ticket = session.get(Ticket, row.ticket_id)
    return session.get(Policy, ticket.policy_key) if ticket is not None else None


def _sender(policy: Policy | None, params: dict, config: DeliveryConfig) -> Address:
    addr = (params.get("mail_from") or config.default_from or "").strip()
    if not addr:
        how = f"'helpdesk policy set {policy.key} mail_from=ADDRESS', or " if policy else ""
        raise _Held(f"no sender address: set one with {how}HELPDESK_MAIL_FROM for every provider")
    display = policy.name if policy else ""
    try:
        return mailbox_address(addr, display)
    except _Permanent as exc:
        raise _Held(f"bad sender address in the configuration: {exc.message}") from None


def _reply_to(policy: Policy | None, params: dict) -> Address | None:
    contact = params.get("contact") or ""
    try:
        return mailbox_address(contact, policy.name) if contact else None
    except _Permanent:
        return None


def _reset_prefix(policy: Policy | None, params: dict, config: DeliveryConfig) -> str:
    from helpdesk.policy.provider_settings import check_reset_url

    prefix = (params.get("reset_url") or config.reset_url or "").strip()
    if not prefix:
        how = f"'helpdesk policy set {policy.key} reset_url=https://...', or " if policy else ""
        raise _Held(
            f"no reset link address: set one with {how}HELPDESK_RESET_URL for every provider"
        )
    try:
        return check_reset_url(prefix)
    except BadInput:
        raise _Held(
            f"the reset link address must be an https URL prefix, not {header_text(prefix, 100)!r}"
        ) from None


def _claim(session: Session, outbox_id: int, now: datetime, config: DeliveryConfig) -> _Prepared:
    """Check, build and mark ``sending`` one row (the caller commits). Raises an outcome
    when the row cannot be sent now; nothing is minted then."""
    row = session.get(Outbox, outbox_id, with_for_update=True, populate_existing=True)
    if (
        row is None
        or row.status not in ("pending", "held")
        or (row.next_attempt_at and row.next_attempt_at > now)
    ):
        raise LookupError  # taken by another run meanwhile
    policy = _policy_for(session, row)
    params = provider_settings.params(session, policy)
    to = mailbox_address(row.to_addr)
    sender = _sender(policy, params, config)
    body = row.body
    secret = None
    token = None
    if row.token_id is not None or RESET_LINK_MARK in body:
        token = session.get(ResetToken, row.token_id) if row.token_id is not None else None
        if token is None:
            raise _Permanent("the mail carries a reset link but its token is missing")
        if token.used_at is not None:
            raise _Permanent("the reset token was already used: this link is not sent")
        if now >= token.expires_at:
            raise _Permanent(
                f"the reset token expired at {clock.iso(token.expires_at)} before the mail could be sent"
            )
        prefix = _reset_prefix(policy, params, config)
    if not row.message_id:
        row.message_id = make_msgid(domain=sender.domain)
    if token is not None:
        # A fresh secret every attempt: the hash of an earlier, unfinished one is replaced.
        secret = tokens.mint(session, token, now)
        body = body.replace(RESET_LINK_MARK, prefix + secret)
    message = build_message(
        row, sender=sender, reply_to=_reply_to(policy, params), now=now, body=body
    )
    if (
        row.ticket_id is not None
    ):  # in the ticket's thread: the requester's client shows one conversation
        parent, references = messages.thread_ids(session, row.ticket_id, leaving=row.id)
        if parent:
            message["In-Reply-To"] = parent
        if references:
            message["References"] = " ".join(references)
    row.status = "sending"
    row.next_attempt_at = now + config.lease  # the lease: after it, the row is "uncertain"
    session.add(row)
    return _Prepared(row.id, to.addr_spec, sender.addr_spec, message, secret)


def remember_message_id(session: Session, row: Outbox, now: datetime) -> None:
    """The Message-ID of a mail that left (or may have) becomes a ``MessageRef`` of its
    ticket: a reply quoting it in In-Reply-To or References threads onto that ticket."""
    if row.ticket_id is not None and row.message_id:
        from helpdesk.ingest.store import add_message_ref

        add_message_ref(session, row.message_id, row.ticket_id, now, direction="out")


def _event(
    session: Session, row: Outbox, now: datetime, action: str, note: str = "", **data
) -> None:
    audit.append(
        session,
        Event(
            at=now,
            actor=SYSTEM_ACTOR.login,
            ticket_id=row.ticket_id,
            action=action,
            note=note,
            data={"outbox": row.id, **data},
        ),
    )


def _redact(text: str, secret: str | None) -> str:
    text = header_text(text, MAX_ERROR)
    if secret:
        text = text.replace(secret, "[secret]")
    return text


def _settle(
    url: str,
    outbox_id: int,
    now: datetime,
    config: DeliveryConfig,
    report: DeliveryReport,
    outcome: _Outcome | None,
    *,
    secret: str | None = None,
    expect: tuple[str, ...] = ("sending",),
) -> None:
    """Record the outcome of one row in its own transaction (``None``: sent)."""
    with db.write_session(url) as s:
        row = s.get(Outbox, outbox_id, with_for_update=True, populate_existing=True)
        if row is None or row.status not in expect:
            return
        entry = {"outbox": row.id, "ticket": row.ticket_id, "to": row.to_addr}
        if outcome is None:
            row.status, row.sent_at, row.attempts, row.last_error = (
                "sent",
                now,
                row.attempts + 1,
                "",
            )
            row.next_attempt_at = None
            remember_message_id(s, row, now)
            _event(s, row, now, "mail-sent", message_id=row.message_id)
            report.sent.append({**entry, "message_id": row.message_id})
        elif isinstance(outcome, _Held):
            error = _redact(outcome.message, secret)
            was_held = row.status == "held" and row.last_error == error
            row.status, row.last_error = "held", error
            if not was_held:  # a held row looked at again stays quiet in the audit trail
                _event(s, row, now, "mail-held", note=error)
            report.held.append({**entry, "error": error})
        elif isinstance(outcome, _Temporary):
            error = _redact(outcome.message, secret)
            row.attempts += 1
            row.last_error = error
            if row.attempts >= config.max_attempts:
                row.status, row.next_attempt_at = "failed", None
                row.last_error = f"gave up after {row.attempts} attempts: {error}"[:MAX_ERROR]
                _event(s, row, now, "mail-failed", note=row.last_error, attempts=row.attempts)
                report.failed.append({**entry, "error": row.last_error, "attempts": row.attempts})
            else:
                row.status, row.next_attempt_at = "pending", now + backoff(row.attempts)
                _event(s, row, now, "mail-retry", note=error, attempts=row.attempts)
                report.retried.append(
                    {
                        **entry,
                        "error": error,
                        "attempts": row.attempts,
                        "next_attempt_at": clock.iso(row.next_attempt_at),
                    }
                )
        elif isinstance(outcome, _Uncertain):
            row.attempts += 1
            row.status, row.next_attempt_at = "uncertain", None
            remember_message_id(s, row, now)  # if it did arrive, replies must still thread
            row.last_error = _redact(
                f"may or may not have been sent, check with the recipient: {outcome.message}",
                secret,
            )
            _event(s, row, now, "mail-uncertain", note=row.last_error)
            report.uncertain.append({**entry, "error": row.last_error})
        else:
            row.attempts += 1 if row.status == "sending" else 0
            row.status, row.next_attempt_at = "failed", None
            row.last_error = _redact(outcome.message, secret)
            _event(s, row, now, "mail-failed", note=row.last_error)
            report.failed.append({**entry, "error": row.last_error})
        s.add(row)


def _stale_leases(url: str, now: datetime, config: DeliveryConfig, report: DeliveryReport) -> None:
    with db.write_session(url) as s:
        stale = list(
            s.exec(
                select(Outbox.id)
                .where(Outbox.status == "sending", Outbox.next_attempt_at <= now)
                .order_by(col(Outbox.id))
            )
        )
    for outbox_id in stale:
        _settle(
            url,
            outbox_id,
            now,
            config,
            report,
            _Uncertain("the delivery was interrupted (its lease ran out while sending)"),
        )


# --- the run -----------------------------------------------------------------------------


def _refuse_training(url: str) -> None:
    """A training database never delivers mail: its mails are read where they are queued
    (``outbox show``, the ticket in the interface)."""
    from helpdesk.workflow.engine import is_training
    from helpdesk.base.errors import Refused

    with db.read_session(url) as s:
        if is_training(s):
            raise Refused(
                "training-separation",
                _(
                    "a training database never delivers mail: read its mails with 'helpdesk outbox show ID' or on the ticket"
                ),
            )


def deliver(
    url: str | None = None,
    *,
    now: datetime | None = None,
    config: DeliveryConfig | None = None,
    limit: int = 100,
    lock: bool = False,
) -> DeliveryReport:
    """Deliver the due outbox rows (at most ``limit``) and say what became of them.
    ``lock``: hold the outbox lock for the run (:class:`helpdesk.storage.locks.Taken` if
    another run, here or on another host, holds it)."""
    if lock:
        with locks.hold(url, locks.OUTBOX):
            return deliver(url, now=now, config=config, limit=limit)
    now = clock.as_utc(now) if now is not None else clock.now()
    config = config if config is not None else DeliveryConfig.from_env()
    config.check()
    url = db.resolve_url(url)
    _refuse_training(url)
    report = DeliveryReport(now=clock.iso(now), transport=config.describe())
    _stale_leases(url, now, config, report)

    with db.read_session(url) as s:
        due = list(
            s.exec(
                select(Outbox.id)
                .where(or_(col(Outbox.status) == "pending", col(Outbox.status) == "held"))
                .where(
                    or_(col(Outbox.next_attempt_at).is_(None), col(Outbox.next_attempt_at) <= now)
                )
                .order_by(col(Outbox.next_attempt_at), col(Outbox.id))
                .limit(limit)
            )
        )

    transport = _SMTPTransport(config) if config.smtp_host else _MaildirTransport(config)
    down: _Temporary | None = None  # set when the transport cannot be reached at all
    try:
        for outbox_id in due:
            if down is not None:
                _settle(
                    url,
                    outbox_id,
                    now,
                    config,
                    report,
                    _Temporary(f"not attempted: {down.message}"),
                    expect=("pending",),
                )
                continue
            try:
                with db.write_session(url) as s:
                    prepared = _claim(s, outbox_id, now, config)
            except LookupError:
                continue
            except (_Permanent, _Held) as outcome:
                _settle(url, outbox_id, now, config, report, outcome, expect=("pending", "held"))
                continue
            try:
                transport.open()
                transport.send(prepared.message, prepared.sender, prepared.to_addr)
            except _Outcome as outcome:
                _settle(url, outbox_id, now, config, report, outcome, secret=prepared.secret)
                if isinstance(outcome, _Temporary) and outcome.whole_run:
                    down = outcome
                continue
            finally:
                prepared.message = None  # drop the secret early
            # "uncertain" too: a send slower than the lease, whose row another run flagged.
            _settle(url, outbox_id, now, config, report, None, expect=("sending", "uncertain"))
    finally:
        transport.close()
    from helpdesk.storage import runs

    runs.record(
        url,
        "outbox-send",
        started=now,
        ok=report.exit_code == 0,
        counts={k: len(getattr(report, k)) for k in REPORT_KINDS},
    )
    return report


def probe(config: DeliveryConfig | None = None) -> str | None:
    """Connect to the SMTP server as a delivery does (TLS, login), say QUIT, send nothing.
    None when it answered; else why not (``helpdesk doctor``)."""
    config = config if config is not None else DeliveryConfig.from_env()
    if not config.smtp_host:
        return None
    transport = _SMTPTransport(config)
    try:
        transport.open()
    except _Outcome as outcome:
        return outcome.message
    finally:
        transport.close()
    return None


#: What became of the mails a run tried, in the order they are told.
REPORT_KINDS = ("sent", "retried", "failed", "held", "uncertain")
