"""Delivery of the outbox against a real SMTP server (aiosmtpd on 127.0.0.1).

The mails are queued by the real command line (a Wigii closure request with every item
queues a confirmation; a password reset from the registered contact, then
``issue-reset-link``, queues a reset-link mail); delivery runs in-process or through
``helpdesk outbox send``.
"""

from __future__ import annotations

import asyncio
import email
import shutil
import socket
import subprocess
import threading
from datetime import datetime, timedelta
from email import policy as email_policy
from email.utils import parseaddr, parsedate_to_datetime
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from sqlmodel import select

from helpdesk.storage import audit, db
from helpdesk.base import clock
from helpdesk.rules import tokens
from helpdesk.outgoing.delivery import BACKOFF, DeliveryConfig, deliver
from helpdesk.base.errors import BadInput
from helpdesk.workflow.compose import RESET_LINK_MARK
from helpdesk.storage.models import Event, Outbox, ResetToken

from .conftest import PG, Helpdesk, _pg_create, _pg_drop, fresh_copy

T0 = datetime(2025, 3, 1, 10, 0, tzinfo=clock.UTC)
NOW = "2025-03-01T10:00:00Z"
RESET_URL = "https://wigii.example/reset?token="
FROM = "helpdesk@provider.example"  # HELPDESK_MAIL_FROM: the sender of providers that give none
WIGII_FROM = "contact@wigii.org"  # Wigii's pack: the address its CGU give


# --- a real SMTP server ------------------------------------------------------------------


class Collector:
    """An aiosmtpd handler keeping what it accepted; it can be told to refuse or stall."""

    def __init__(self):
        self.messages: list[dict] = []
        self.rcpt_reply: str | None = None  # e.g. "550 5.1.1 no such user"
        self.data_delay = 0.0
        self.auth: list[tuple[str, bytes, bytes]] = []
        self.lock = threading.Lock()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.rcpt_reply:
            return self.rcpt_reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.data_delay:
            await asyncio.sleep(self.data_delay)
        with self.lock:
            self.messages.append(
                {
                    "from": envelope.mail_from,
                    "to": list(envelope.rcpt_tos),
                    "raw": envelope.content,
                    "tls": server.transport.get_extra_info("ssl_object") is not None,
                }
            )
        return "250 2.0.0 queued"

    def parsed(self) -> list[email.message.EmailMessage]:
        return [
            email.message_from_bytes(m["raw"], policy=email_policy.default) for m in self.messages
        ]

    def authenticator(self, server, session, envelope, mechanism, auth_data):
        ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
            b"relay",
            b"s3cret",
        )
        if isinstance(auth_data, LoginPassword):
            self.auth.append((mechanism, auth_data.login, auth_data.password))
        return AuthResult(success=ok, handled=False)  # handled=False: the server answers 535


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class SMTPServer:
    def __init__(self, port: int, **params):
        self.port = port
        self.params = params
        self.handler = Collector()
        self.controller: Controller | None = None

    def start(self) -> SMTPServer:
        self.controller = Controller(
            self.handler,
            hostname="127.0.0.1",
            port=self.port,
            server_hostname="mx.test",
            ready_timeout=5,
            **self.params,
        )
        self.controller.start()
        return self

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    @property
    def messages(self):
        return self.handler.messages


@pytest.fixture
def smtp_factory():
    servers: list[SMTPServer] = []

    def make(
        port: int | None = None, start: bool = True, auth: bool = False, **params
    ) -> SMTPServer:
        server = SMTPServer(port or free_port(), **params)
        if auth:
            server.params["authenticator"] = server.handler.authenticator
        servers.append(server)
        return server.start() if start else server

    yield make
    for s in servers:
        s.stop()


@pytest.fixture
def smtp(smtp_factory) -> SMTPServer:
    return smtp_factory()


def smtp_config(server: SMTPServer, **kw) -> DeliveryConfig:
    base = dict(
        smtp_host="127.0.0.1",
        smtp_port=server.port,
        default_from=FROM,
        reset_url=RESET_URL,
        helo="client.test",
        timeout=5,
    )
    base.update(kw)
    return DeliveryConfig(**base)


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1, made with the openssl command."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost,IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


def server_tls(tls_files):
    import ssl

    cert, key = tls_files
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(str(cert), str(key))
    return ctx


# --- databases with queued mails ---------------------------------------------------------


@pytest.fixture(scope="module")
def queued_template(template_db, tmp_path_factory):
    """The shared template plus, through the real CLI at ``NOW``: accounts bob and carol
    (Wigii), a complete closure request from each (two confirmation mails) and a password
    reset for bob sent as a link (one reset-link mail)."""
    folder = tmp_path_factory.mktemp("queued")
    if PG:
        from sqlalchemy.engine import make_url

        url = _pg_create(make_url(template_db).database)
    else:
        path = folder / "queued.db"
        shutil.copyfile(template_db, path)
        url = f"sqlite:///{path}"
    hd = Helpdesk(url, folder)
    hd.now = NOW
    hd.account("bob", "wigii", "bob@example.org")
    hd.account("carol", "wigii", "carol@example.org")
    for login in ("bob", "carol"):
        t = hd.open(
            "closure",
            "wigii",
            login,
            f"{login}@example.org",
            "reason=request",
            "system=https://x.wigii.org",
            "day=2025-04-01",
        )
        assert t["mails_queued"], t
    t = hd.open("password-reset", "wigii", "bob", "bob@example.org")
    view = hd.act(t["id"], "issue-reset-link")
    assert view["mails_queued"], view
    yield url
    if PG:
        _pg_drop(url)


@pytest.fixture
def url(queued_template, tmp_path):
    yield from fresh_copy(queued_template, tmp_path)


def make_path(sqlite_url: str) -> str:
    return sqlite_url.removeprefix("sqlite:///")


def rows(url: str) -> list[Outbox]:
    with db.read_session(url) as s:
        return list(s.exec(select(Outbox).order_by(Outbox.id)))


def row_of(url: str, template: str) -> Outbox:
    return next(r for r in rows(url) if r.template == template)


def events(url: str, prefix: str = "mail-") -> list[Event]:
    with db.read_session(url) as s:
        return [e for e in s.exec(select(Event).order_by(Event.id)) if e.action.startswith(prefix)]


def token_of(url: str, token_id: int) -> ResetToken:
    with db.read_session(url) as s:
        return s.get(ResetToken, token_id)


def text(msg: email.message.EmailMessage) -> str:
    """The body as a mail client shows it (the wire's CRLF read as newlines)."""
    return msg.get_content().replace("\r\n", "\n")


def link_secret(msg: email.message.EmailMessage) -> str:
    body = text(msg)
    line = next(line.strip() for line in body.splitlines() if line.strip().startswith(RESET_URL))
    return line[len(RESET_URL) :]


# --- tests -------------------------------------------------------------------------------


def test_the_template_queues_three_mails(url):
    got = rows(url)
    assert [r.template for r in got] == [
        "closure-confirmation",
        "closure-confirmation",
        "reset-link",
    ]
    assert all(r.status == "pending" for r in got)
    reset = got[2]
    assert reset.token_id is not None and RESET_LINK_MARK in reset.body
    assert token_of(url, reset.token_id).token_hash == ""  # minted only at delivery


def test_each_mail_is_delivered_once_with_proper_headers(url, smtp):
    report = deliver(url, now=T0, config=smtp_config(smtp))
    assert len(report.sent) == 3 and not (
        report.retried or report.failed or report.held or report.uncertain
    )
    assert report.exit_code == 0
    assert len(smtp.messages) == 3

    again = deliver(url, now=T0 + timedelta(hours=1), config=smtp_config(smtp))
    assert again.as_dict()["counts"] == {
        "sent": 0,
        "retried": 0,
        "failed": 0,
        "held": 0,
        "uncertain": 0,
    }
    assert len(smtp.messages) == 3  # nothing twice

    stored = {r.id: r for r in rows(url)}
    by_id = {m["Message-ID"]: (raw, m) for raw, m in zip(smtp.messages, smtp.handler.parsed())}
    for r in stored.values():
        assert r.status == "sent" and r.sent_at == T0 and r.attempts == 1 and r.last_error == ""
        assert r.message_id.startswith("<") and r.message_id.endswith("@wigii.org>")
        raw, msg = by_id[r.message_id]
        assert raw["from"] == WIGII_FROM and raw["to"] == [
            r.to_addr
        ]  # the pack's, not the fallback
        assert parseaddr(msg["From"])[1] == WIGII_FROM
        assert msg["From"].addresses[0].display_name == "Association wigii.org (systèmes Wigii)"
        assert msg["Reply-To"] is None  # sent from the contact address: replies reach the intake
        assert msg["To"] == r.to_addr
        assert msg["Subject"] == r.subject  # RFC 2047-encoded on the wire, decoded here
        assert parsedate_to_datetime(msg["Date"]) == T0
        assert msg["Auto-Submitted"] == "auto-replied"
        assert msg.get_content_type() == "text/plain" and msg.get_content_charset() == "utf-8"
        assert msg["Content-Transfer-Encoding"] == "quoted-printable"
        raw["raw"].decode("ascii")  # 7-bit on the wire: any relay takes it
        if r.template == "closure-confirmation":
            assert text(msg) == r.body
    assert len({r.message_id for r in stored.values()}) == 3

    sent = events(url)
    assert [e.action for e in sent] == ["mail-sent"] * 3
    assert sorted(e.data["outbox"] for e in sent) == sorted(stored)
    assert all(e.actor == "system" and e.at == T0 for e in sent)
    with db.read_session(url) as s:
        assert audit.verify(s)[1] == []


def test_reset_link_works_once_and_the_secret_is_nowhere_else(url, smtp, tmp_path):
    hd = Helpdesk(url, tmp_path)
    hd.env.update(
        HELPDESK_SMTP_HOST="127.0.0.1",
        HELPDESK_SMTP_PORT=str(smtp.port),
        HELPDESK_MAIL_FROM=FROM,
        HELPDESK_RESET_URL=RESET_URL,
    )
    result = hd.run("outbox", "send", now=NOW)
    assert result.code == 0, result.err
    assert result.json["counts"]["sent"] == 3
    human = hd.run("outbox", "list", now=NOW, json_out=False)

    reset = row_of(url, "reset-link")
    msg = next(m for m in smtp.handler.parsed() if m["Message-ID"] == reset.message_id)
    secret = link_secret(msg)
    assert len(secret) >= 40 and RESET_LINK_MARK not in text(msg)
    token = token_of(url, reset.token_id)
    assert tokens.hash_secret(secret) == token.token_hash and token.minted_at == T0

    # Nowhere but in the mail that left: not the row, not an event, not the command's output.
    assert RESET_LINK_MARK in reset.body and secret not in reset.body
    for r in rows(url):
        assert secret not in repr(r.model_dump())
    with db.read_session(url) as s:
        for e in s.exec(select(Event)):
            assert secret not in repr(e.model_dump())
    shown = hd.run("outbox", "show", reset.id, now=NOW)
    for out in (result.out, result.err, human.out, human.err, shown.out, shown.err):
        assert secret not in out
    if not PG:  # not even in the bytes of the database file
        for f in Path(make_path(url)).parent.glob("helpdesk.db*"):
            assert secret.encode() not in f.read_bytes()

    later = T0 + timedelta(hours=2)
    with db.write_session(url) as s:
        assert tokens.redeem(s, secret, later) is not None
    with db.write_session(url) as s:
        assert tokens.redeem(s, secret, later) is None  # once only


def test_an_outage_loses_nothing_and_sends_nothing_twice(url, smtp_factory):
    server = smtp_factory(start=False)  # nothing listens on its port yet
    cfg = smtp_config(server)
    report = deliver(url, now=T0, config=cfg)
    assert len(report.retried) == 3 and not report.sent and report.exit_code == 1  # not delivered
    for r in rows(url):
        assert r.status == "pending" and r.attempts == 1
        assert r.next_attempt_at == T0 + BACKOFF[0]
        assert "unreachable" in r.last_error
    reset = row_of(url, "reset-link")
    assert token_of(url, reset.token_id).token_hash == ""  # deferred without being prepared

    # Before the backoff ends nothing is tried.
    early = deliver(url, now=T0 + timedelta(seconds=30), config=cfg)
    assert not (early.sent or early.retried) and all(r.attempts == 1 for r in rows(url))

    # Still down: the second wait is longer.
    second = deliver(url, now=T0 + BACKOFF[0], config=cfg)
    assert len(second.retried) == 3
    assert all(
        r.next_attempt_at == T0 + BACKOFF[0] + BACKOFF[1] and r.attempts == 2 for r in rows(url)
    )

    server.start()
    back = T0 + BACKOFF[0] + BACKOFF[1]
    report = deliver(url, now=back, config=cfg)
    assert len(report.sent) == 3
    assert deliver(url, now=back + timedelta(hours=1), config=cfg).sent == []
    assert len(server.messages) == 3  # exactly one copy of each
    assert sorted(m["to"][0] for m in server.messages) == [
        "bob@example.org",
        "bob@example.org",
        "carol@example.org",
    ]
    assert all(r.status == "sent" and r.attempts == 3 and r.sent_at == back for r in rows(url))

    msg = next(
        m
        for m in server.handler.parsed()
        if m["Message-ID"] == row_of(url, "reset-link").message_id
    )
    assert tokens.hash_secret(link_secret(msg)) == token_of(url, reset.token_id).token_hash
    assert [e.action for e in events(url)].count("mail-retry") == 6


def test_a_temporary_refusal_backs_off_then_gives_up(url, smtp):
    smtp.handler.rcpt_reply = "451 4.3.0 try again later"
    cfg = smtp_config(smtp, max_attempts=8)
    when = T0
    waits = []
    for attempt in range(1, 9):
        report = deliver(url, now=when, config=cfg)
        if attempt < 8:
            assert len(report.retried) == 3, report.as_dict()
            r = rows(url)[0]
            assert r.status == "pending" and r.attempts == attempt and "451" in r.last_error
            waits.append(r.next_attempt_at - when)
            when = r.next_attempt_at
        else:
            assert len(report.failed) == 3 and report.exit_code == 1
    assert waits == [timedelta(minutes=m) for m in (1, 5, 30, 120, 360, 360, 360)]
    assert all(
        r.status == "failed"
        and r.attempts == 8
        and r.last_error.startswith("gave up after 8 attempts")
        for r in rows(url)
    )
    assert smtp.messages == []
    # A failed mail is never tried again.
    assert deliver(url, now=when + timedelta(days=1), config=cfg).as_dict()["counts"]["failed"] == 0


def test_a_retry_mints_a_new_secret_and_keeps_the_message_id(url, smtp):
    smtp.handler.rcpt_reply = "451 4.7.1 greylisted"
    deliver(url, now=T0, config=smtp_config(smtp))
    first = row_of(url, "reset-link")
    first_hash = token_of(url, first.token_id).token_hash
    assert first.status == "pending" and first_hash and first.message_id  # minted, then refused

    smtp.handler.rcpt_reply = None
    report = deliver(url, now=T0 + BACKOFF[0], config=smtp_config(smtp))
    assert len(report.sent) == 3 and len(smtp.messages) == 3
    again = row_of(url, "reset-link")
    assert again.message_id == first.message_id  # the same message, tried again
    msg = next(m for m in smtp.handler.parsed() if m["Message-ID"] == first.message_id)
    token = token_of(url, first.token_id)
    # The secret of the refused attempt can never work: its hash was replaced.
    assert (
        token.token_hash != first_hash and tokens.hash_secret(link_secret(msg)) == token.token_hash
    )
    assert token.minted_at == T0 + BACKOFF[0]


def test_a_permanent_refusal_marks_the_mail_failed(url, smtp):
    smtp.handler.rcpt_reply = "550 5.1.1 <bob@example.org>: no such user"
    report = deliver(url, now=T0, config=smtp_config(smtp))
    assert len(report.failed) == 3 and report.exit_code == 1
    for r in rows(url):
        assert r.status == "failed" and r.attempts == 1 and "550" in r.last_error
    assert smtp.messages == []
    assert [e.action for e in events(url)] == ["mail-failed"] * 3
    smtp.handler.rcpt_reply = None
    assert deliver(url, now=T0 + timedelta(days=1), config=smtp_config(smtp)).sent == []
    assert smtp.messages == []


@pytest.mark.parametrize("mechanism", ["LOGIN", "PLAIN"])
def test_starttls_with_a_verified_certificate_and_auth(url, smtp_factory, tls_files, mechanism):
    other = "PLAIN" if mechanism == "LOGIN" else "LOGIN"
    server = smtp_factory(
        tls_context=server_tls(tls_files),
        require_starttls=True,
        auth=True,
        auth_require_tls=True,
        auth_exclude_mechanism=[other],
    )
    creds = dict(starttls=True, username="relay", password="s3cret")

    # The certificate is not trusted: nothing is sent, not even the password.
    report = deliver(url, now=T0, config=smtp_config(server, **creds))
    assert len(report.retried) == 3 and "certificate" in rows(url)[0].last_error.lower()
    assert server.messages == [] and server.handler.auth == []

    # A wrong password: retried, nothing sent.
    later = T0 + BACKOFF[0]
    report = deliver(
        url,
        now=later,
        config=smtp_config(
            server, starttls=True, username="relay", password="nope", cafile=str(tls_files[0])
        ),
    )
    assert len(report.retried) == 3 and "535" in rows(url)[0].last_error
    assert server.messages == []

    later += BACKOFF[1]
    report = deliver(url, now=later, config=smtp_config(server, cafile=str(tls_files[0]), **creds))
    assert len(report.sent) == 3, report.as_dict()
    assert len(server.messages) == 3 and all(m["tls"] for m in server.messages)
    assert server.handler.auth[-1] == (mechanism, b"relay", b"s3cret")
    assert {a[0] for a in server.handler.auth} == {mechanism}


def test_starttls_required_but_not_offered_sends_nothing(url, smtp):
    report = deliver(
        url, now=T0, config=smtp_config(smtp, starttls=True, username="relay", password="s3cret")
    )
    assert len(report.retried) == 3 and "STARTTLS" in rows(url)[0].last_error
    assert smtp.messages == []


def test_implicit_tls(url, smtp_factory, tls_files):
    server = smtp_factory(ssl_context=server_tls(tls_files))
    report = deliver(url, now=T0, config=smtp_config(server, ssl=True, cafile=str(tls_files[0])))
    assert len(report.sent) == 3 and all(m["tls"] for m in server.messages)


def test_maildir_fallback_writes_one_file_per_mail(url, tmp_path):
    hd = Helpdesk(url, tmp_path)
    folder = tmp_path / "sent"
    hd.env.update(
        HELPDESK_MAIL_FROM=FROM, HELPDESK_RESET_URL=RESET_URL, HELPDESK_MAILDIR=str(folder)
    )
    first = hd.run("outbox", "send", now=NOW)
    assert first.code == 0, first.err
    assert first.json["transport"] == f"maildir:{folder}" and first.json["counts"]["sent"] == 3
    assert hd.run("outbox", "send", now=NOW).json["counts"]["sent"] == 0
    files = sorted((folder / "new").iterdir())
    assert len(files) == 3 and not list((folder / "tmp").iterdir())
    mails = {}
    for f in files:
        msg = email.message_from_bytes(f.read_bytes(), policy=email_policy.default)
        assert msg["Auto-Submitted"] == "auto-replied" and parseaddr(msg["From"])[1] == WIGII_FROM
        mails[msg["Message-ID"]] = msg
    assert set(mails) == {r.message_id for r in rows(url)}
    reset = row_of(url, "reset-link")
    msg = mails[reset.message_id]
    assert tokens.hash_secret(link_secret(msg)) == token_of(url, reset.token_id).token_hash


def test_a_crash_after_sending_is_reported_never_resent(url, smtp, monkeypatch):
    from helpdesk.outgoing import delivery

    real = delivery._SMTPTransport.send

    def send_then_die(self, *args):
        real(self, *args)
        raise KeyboardInterrupt  # the process dies before it can write "sent"

    monkeypatch.setattr(delivery._SMTPTransport, "send", send_then_die)
    with pytest.raises(KeyboardInterrupt):
        deliver(url, now=T0, config=smtp_config(smtp))
    monkeypatch.setattr(delivery._SMTPTransport, "send", real)
    assert len(smtp.messages) == 1
    first = rows(url)[0]
    assert first.status == "sending" and first.message_id

    # Within the lease, another run leaves it alone (and sends the others).
    report = deliver(url, now=T0 + timedelta(minutes=5), config=smtp_config(smtp))
    assert len(report.sent) == 2 and not report.uncertain
    assert rows(url)[0].status == "sending"

    # After the lease: uncertain, reported for a person, not sent again.
    report = deliver(url, now=T0 + timedelta(minutes=11), config=smtp_config(smtp))
    assert [u["outbox"] for u in report.uncertain] == [first.id] and report.exit_code == 1
    assert rows(url)[0].status == "uncertain"
    assert deliver(url, now=T0 + timedelta(days=1), config=smtp_config(smtp)).sent == []
    assert len(smtp.messages) == 3
    assert [e.action for e in events(url)].count("mail-uncertain") == 1


def test_a_connection_lost_after_the_data_is_uncertain(url, smtp):
    smtp.handler.data_delay = 3  # the server takes the message and answers too late
    report = deliver(url, now=T0, config=smtp_config(smtp, timeout=1), limit=1)
    assert len(report.uncertain) == 1 and not report.retried
    r = rows(url)[0]
    assert r.status == "uncertain" and "handed over" in r.last_error
    smtp.handler.data_delay = 0
    report = deliver(url, now=T0 + timedelta(hours=1), config=smtp_config(smtp))
    assert len(report.sent) == 2 and rows(url)[0].status == "uncertain"


def test_an_expired_reset_link_is_not_sent(url, smtp):
    reset = row_of(url, "reset-link")
    report = deliver(url, now=T0 + timedelta(hours=25), config=smtp_config(smtp))
    assert len(report.sent) == 2
    assert [f["outbox"] for f in report.failed] == [reset.id]
    r = row_of(url, "reset-link")
    assert r.status == "failed" and "expired" in r.last_error
    assert token_of(url, reset.token_id).token_hash == ""  # never minted
    assert reset.message_id not in [m["Message-ID"] for m in smtp.handler.parsed()]


def test_a_reset_link_is_held_until_a_reset_url_is_configured(url, smtp):
    reset = row_of(url, "reset-link")
    report = deliver(url, now=T0, config=smtp_config(smtp, reset_url=""))
    assert (
        len(report.sent) == 2
        and [h["outbox"] for h in report.held] == [reset.id]
        and report.exit_code == 1
    )
    r = row_of(url, "reset-link")
    assert (
        r.status == "held" and "HELPDESK_RESET_URL" in r.last_error and "reset_url" in r.last_error
    )
    assert token_of(url, reset.token_id).token_hash == ""
    # Looked at again on the next run, quietly while nothing changed.
    deliver(url, now=T0 + timedelta(minutes=1), config=smtp_config(smtp, reset_url=""))
    assert [e.action for e in events(url)].count("mail-held") == 1
    report = deliver(url, now=T0 + timedelta(minutes=2), config=smtp_config(smtp))
    assert [s["outbox"] for s in report.sent] == [reset.id]
    assert len(smtp.messages) == 3


def test_a_provider_without_addresses_is_held_until_the_admin_sets_them(url, smtp, tmp_path):
    """Indigos' charter gives no address and no text a reset page: its mails are held, saying
    what to run; ``helpdesk policy set`` (techadmin, checked, audited) releases them."""
    hd = Helpdesk(url, tmp_path)
    hd.now = NOW
    hd.env.update(HELPDESK_SMTP_HOST="127.0.0.1", HELPDESK_SMTP_PORT=str(smtp.port))
    hd.account("camille", "indigos", "camille@example.org")
    t = hd.open("password-reset", "indigos", "camille", "camille@example.org")
    hd.act(t["id"], "issue-reset-link")
    reset = rows(url)[-1]
    assert reset.ticket_id == t["id"] and reset.template == "reset-link"

    first = hd.run("outbox", "send")
    assert first.code == 1  # a person must look
    held = {h["outbox"]: h["error"] for h in first.json["held"]}
    assert first.json["counts"]["sent"] == 2  # Wigii's confirmations: its pack gives the sender
    assert (
        "helpdesk policy set indigos mail_from=" in held[reset.id]
        and "HELPDESK_MAIL_FROM" in held[reset.id]
    )
    assert "helpdesk policy set wigii reset_url=" in held[row_of(url, "reset-link").id]

    # Only a techadmin changes settings; values are checked.
    hd.refused(
        "policy", "set", "indigos", "mail_from=entraide@indigos.example", as_="bob", rule="role"
    )
    for bad in (
        "mail_from=a@indigos.example, b@indigos.example",
        "mail_from=entraide",
        "reset_url=http://cloud.indigos.example/r?t=",
        "reset_url=https://",
        "colour=blue",
        "quarantine_retention=90 days",
    ):
        r = hd.bad("policy", "set", "indigos", bad, as_="chloe")
        assert bad.split("=")[0] in r.err
    hd.bad("policy", "set", "nosuch", "mail_from=a@b.example", as_="chloe")

    done = hd.ok("policy", "set", "indigos", "mail_from=Entraide@Indigos.example", as_="chloe")
    assert done["changed"] == {"mail_from": [None, "Entraide@indigos.example"]}
    second = hd.run("outbox", "send")
    assert (
        second.json["counts"]["held"] == 2
        and "helpdesk policy set indigos reset_url=" in second.json["held"][-1]["error"]
    )

    hd.ok("policy", "set", "indigos", "reset_url=https://cloud.indigos.example/reset#", as_="chloe")
    shown = {s["name"]: s for s in hd.ok("policy", "show", "indigos")["settings"]}
    assert (shown["mail_from"]["value"], shown["mail_from"]["source"]) == (
        "Entraide@indigos.example",
        "setting",
    )
    assert (shown["reset_url"]["value"], shown["reset_url"]["source"]) == (
        "https://cloud.indigos.example/reset#",
        "setting",
    )
    assert shown["intake"]["value"] is None and shown["intake"]["missing"]
    human = hd.run("--lang", "en", "policy", "show", "indigos", json_out=False)
    assert "https://cloud.indigos.example/reset#  (setting)" in human.out

    third = hd.run("outbox", "send")
    assert [s["outbox"] for s in third.json["sent"]] == [reset.id]
    msg = next(
        m for m in smtp.handler.parsed() if m["Message-ID"] == row_of_id(url, reset.id).message_id
    )
    assert parseaddr(msg["From"])[1] == "Entraide@indigos.example"
    assert any(
        line.strip().startswith("https://cloud.indigos.example/reset#")
        for line in text(msg).splitlines()
    )

    # An empty value removes a setting; every change is in the audit trail, by whom.
    hd.ok("policy", "set", "indigos", "reset_url=", as_="chloe")
    assert {s["name"]: s for s in hd.ok("policy", "show", "indigos")["settings"]}["reset_url"][
        "value"
    ] is None
    changes = [e for e in events(url, "policy-settings")]
    assert [e.actor for e in changes] == ["chloe"] * 3
    assert changes[-1].data == {
        "policy": "indigos",
        "changed": {"reset_url": ["https://cloud.indigos.example/reset#", None]},
    }
    assert hd.ok("audit", "verify")["ok"] is True


def test_the_environment_gives_the_sender_of_providers_that_have_none(url, smtp, tmp_path):
    hd = Helpdesk(url, tmp_path)
    hd.now = NOW
    hd.account("camille", "indigos", "camille@example.org")
    hd.act(
        hd.open("password-reset", "indigos", "camille", "camille@example.org")["id"],
        "issue-reset-link",
    )
    report = deliver(url, now=T0, config=smtp_config(smtp))
    assert len(report.sent) == 4 and not report.held
    senders = {m["Message-ID"]: parseaddr(m["From"])[1] for m in smtp.handler.parsed()}
    assert senders[rows(url)[-1].message_id] == FROM
    assert sorted(senders.values()).count(WIGII_FROM) == 3


def row_of_id(url: str, outbox_id: int) -> Outbox:
    return next(r for r in rows(url) if r.id == outbox_id)


def test_header_injection_and_bad_addresses(url, smtp):
    with db.write_session(url) as s:
        s.add(
            Outbox(
                ticket_id=1,
                to_addr="eve@example.org",
                subject="Hello\r\nBcc: mallory@evil.example\n\nbody?",
                body="text\n.\n.hidden\n",
                created_at=T0,
                next_attempt_at=T0,
            )
        )
        s.add(
            Outbox(
                ticket_id=1,
                to_addr="a@example.org, mallory@evil.example",
                subject="two",
                body="x\n",
                created_at=T0,
                next_attempt_at=T0,
            )
        )
        s.add(
            Outbox(
                ticket_id=1,
                to_addr="a@example.org\r\nBcc: mallory@evil.example",
                subject="two",
                body="x\n",
                created_at=T0,
                next_attempt_at=T0,
            )
        )
    report = deliver(url, now=T0, config=smtp_config(smtp))
    assert len(report.sent) == 4 and len(report.failed) == 2
    assert all("mallory" not in repr(m["to"]) for m in smtp.messages)
    msg = next(m for m in smtp.handler.parsed() if m["To"] == "eve@example.org")
    assert msg["Subject"] == "Hello Bcc: mallory@evil.example body?" and msg["Bcc"] is None
    assert text(msg) == "text\n.\n.hidden\n"  # dot-stuffing undone by the server


def test_configuration_from_the_environment():
    cfg = DeliveryConfig.from_env(
        {
            "HELPDESK_SMTP_HOST": "mail.example.org",
            "HELPDESK_SMTP_STARTTLS": "yes",
            "HELPDESK_SMTP_USER": "u",
            "HELPDESK_SMTP_PASSWORD": "p",
            "HELPDESK_MAIL_FROM": FROM,
            "HELPDESK_RESET_URL": RESET_URL,
        }
    )
    assert (cfg.smtp_host, cfg.port, cfg.starttls, cfg.ssl, cfg.username, cfg.default_from) == (
        "mail.example.org",
        587,
        True,
        False,
        "u",
        FROM,
    )
    assert "password=" not in repr(cfg)  # never printed by accident
    assert (
        DeliveryConfig.from_env({"HELPDESK_SMTP_HOST": "h", "HELPDESK_SMTP_SSL": "1"}).port == 465
    )
    assert DeliveryConfig.from_env({"HELPDESK_SMTP_HOST": "h"}).port == 25
    empty = DeliveryConfig.from_env({"HELPDESK_MAILDIR": "/srv/sent"})
    assert empty.describe() == "maildir:/srv/sent"
    with pytest.raises(BadInput):
        DeliveryConfig.from_env({"HELPDESK_SMTP_STARTTLS": "perhaps"})
    with pytest.raises(BadInput):
        DeliveryConfig.from_env({"HELPDESK_SMTP_PORT": "twenty-five"})
    with pytest.raises(BadInput):  # a password in clear to a remote host
        DeliveryConfig.from_env(
            {"HELPDESK_SMTP_HOST": "mail.example.org", "HELPDESK_SMTP_USER": "u"}
        ).check()
    DeliveryConfig.from_env({"HELPDESK_SMTP_HOST": "127.0.0.1", "HELPDESK_SMTP_USER": "u"}).check()


def test_cli_exit_code_says_when_a_person_must_look(url, smtp, tmp_path):
    hd = Helpdesk(url, tmp_path)
    hd.env.update(
        HELPDESK_SMTP_HOST="127.0.0.1", HELPDESK_SMTP_PORT=str(smtp.port), HELPDESK_MAIL_FROM=FROM
    )
    smtp.handler.rcpt_reply = "550 5.1.1 no such user"
    r = hd.run("--lang", "en", "outbox", "send", "--limit", "1", now=NOW, json_out=False)
    assert r.code == 1 and "1 failed" in r.out and "550" in r.out
    smtp.handler.rcpt_reply = None
    r = hd.run(
        "--lang", "en", "outbox", "send", now=NOW, json_out=False
    )  # no reset URL: the link is held
    assert r.code == 1 and "1 held" in r.out and "HELPDESK_RESET_URL" in r.out
    hd.env["HELPDESK_RESET_URL"] = RESET_URL
    r = hd.run("outbox", "send", now=NOW)
    assert r.code == 0 and r.json["counts"]["sent"] == 1
    r = hd.run("outbox", "send", now=NOW)
    assert r.code == 0 and r.json["counts"] == {
        "sent": 0,
        "retried": 0,
        "failed": 0,
        "held": 0,
        "uncertain": 0,
    }
    hd.env["HELPDESK_SMTP_SSL"] = "maybe"
    bad = hd.run("outbox", "send", now=NOW, json_out=False)
    assert bad.code == 2 and "HELPDESK_SMTP_SSL" in bad.err


def test_replies_to_delivered_mails_thread_onto_their_tickets(url, smtp, tmp_path):
    from tests.ingest.mailmaker import mail, maildir

    smtp.handler.data_delay = 3  # the first mail is taken but answered too late: uncertain
    first = deliver(url, now=T0, config=smtp_config(smtp, timeout=1), limit=1)
    assert len(first.uncertain) == 1
    smtp.handler.data_delay = 0
    report = deliver(url, now=T0, config=smtp_config(smtp))
    assert len(report.sent) == 2
    sent = {r.template + str(r.id): r for r in rows(url)}
    with db.read_session(url) as s:
        from helpdesk.storage.models import MessageRef

        refs = {m.message_id: (m.ticket_id, m.direction) for m in s.exec(select(MessageRef))}
    assert refs == {
        r.message_id: (r.ticket_id, "out") for r in sent.values()
    }  # the uncertain one too

    hd = Helpdesk(url, tmp_path)
    confirmation = rows(url)[1]  # carol's closure confirmation
    reset = row_of(url, "reset-link")
    uncertain = rows(url)[0]
    replies = [
        mail(
            "carol@example.org",
            "contact@wigii.org",
            "Re: confirmation",
            "Je confirme la désactivation.",
            message_id="<carol-ack@example.org>",
            in_reply_to=confirmation.message_id,
            date="Sat, 01 Mar 2025 12:00:00 +0100",
        ),
        mail(
            "bob@example.org",
            "contact@wigii.org",
            "Re: lien",
            "Merci, le lien a fonctionné.",
            message_id="<bob-thanks@example.org>",
            references=f"<unknown@elsewhere> {reset.message_id}",
        ),
        mail(
            "bob@example.org",
            "contact@wigii.org",
            "Re: confirmation",
            "Bien reçu, je confirme.",
            message_id="<bob-ack@example.org>",
            in_reply_to=uncertain.message_id,
            date="Sat, 01 Mar 2025 12:00:00 +0100",
        ),
    ]
    summary = hd.ok(
        "ingest", "mail", maildir(tmp_path / "replies", replies), now="2025-03-01T12:00:00Z"
    )
    assert summary["counts"]["threaded"] == 3 and summary["counts"]["opened"] == 0
    got = {i["ticket"] for i in summary["items"]}
    assert got == {confirmation.ticket_id, reset.ticket_id, uncertain.ticket_id}
    assert {i["via"] for i in summary["items"]} == {
        "references"
    }  # by Message-ID, not by subject or sender
    assert summary["counts"]["acknowledged"] == 2  # the mail whose fate was unknown did arrive
    assert (
        hd.show(confirmation.ticket_id)["state"]
        == hd.show(uncertain.ticket_id)["state"]
        == "scheduled"
    )


def test_a_person_decides_what_becomes_of_uncertain_and_failed_mails(url, smtp, tmp_path):
    hd = Helpdesk(url, tmp_path)
    hd.now = "2025-03-01T10:30:00Z"
    hd.env.update(
        HELPDESK_SMTP_HOST="127.0.0.1",
        HELPDESK_SMTP_PORT=str(smtp.port),
        HELPDESK_RESET_URL=RESET_URL,
    )
    smtp.handler.data_delay = (
        3  # taken by the server, answered too late: both confirmations uncertain
    )
    assert len(deliver(url, now=T0, config=smtp_config(smtp, timeout=1), limit=2).uncertain) == 2
    smtp.handler.data_delay = 0
    smtp.handler.rcpt_reply = "550 5.1.1 no such user"
    assert (
        hd.run("outbox", "send").json["counts"]["failed"] == 1
    )  # the reset link, refused for good
    smtp.handler.rcpt_reply = None
    first, second, reset = rows(url)
    assert (first.status, second.status, reset.status) == ("uncertain", "uncertain", "failed")
    assert (
        smtp.messages == []
    )  # the server dropped them with the broken connection: nobody can tell

    # Nothing is resent by itself, and only an on-call admin decides.
    assert hd.run("outbox", "send").json["counts"]["sent"] == 0
    hd.refused("outbox", "retry", first.id, "--note", "x", as_="alice", rule="role")
    assert "--note" in hd.bad("outbox", "retry", first.id, as_="bob").err  # uncertain: say why
    assert (
        "--note" in hd.run("outbox", "mark-sent", first.id, as_="bob").err
    )  # argparse: --note is required

    marked = hd.ok(
        "outbox", "mark-sent", first.id, "--note", "relay log: 250 queued as 4F2A1", as_="bob"
    )
    assert marked["status"] == "sent"
    hd.refused("outbox", "mark-sent", first.id, "--note", "again", as_="bob", rule="outbox-status")
    hd.refused(
        "outbox", "mark-sent", reset.id, "--note", "sent by hand", as_="bob", rule="reset-link"
    )
    hd.ok("outbox", "retry", second.id, "--note", "Carol says nothing came", as_="bob")
    hd.ok("outbox", "retry", reset.id, as_="bob")  # the address was fixed on the relay
    assert [(r.status, r.attempts) for r in rows(url)[1:]] == [("pending", 0), ("pending", 0)]

    report = hd.run("outbox", "send")
    assert report.code == 0 and sorted(s["outbox"] for s in report.json["sent"]) == [
        second.id,
        reset.id,
    ]
    assert hd.run("outbox", "send").json["counts"]["sent"] == 0
    ids = [m["Message-ID"] for m in smtp.handler.parsed()]
    assert sorted(ids) == sorted(
        [second.message_id, reset.message_id]
    )  # resent as the same messages
    assert first.message_id not in ids  # marked sent: never sent again
    assert row_of_id(url, first.id).sent_at == clock.parse_datetime("2025-03-01T10:30:00Z")

    decisions = [
        (e.action, e.actor, e.note, e.data["outbox"])
        for e in events(url, "mail-")
        if e.actor == "bob"
    ]
    assert decisions == [
        ("mail-marked-sent", "bob", "relay log: 250 queued as 4F2A1", first.id),
        ("mail-retry-ordered", "bob", "Carol says nothing came", second.id),
        ("mail-retry-ordered", "bob", "", reset.id),
    ]
    assert hd.ok("audit", "verify")["ok"] is True


def test_an_expired_reset_link_is_not_retried(url, smtp, tmp_path):
    report = deliver(url, now=T0 + timedelta(hours=25), config=smtp_config(smtp))
    reset = row_of(url, "reset-link")
    assert [f["outbox"] for f in report.failed] == [reset.id]
    hd = Helpdesk(url, tmp_path)
    refused = hd.refused(
        "outbox", "retry", reset.id, as_="bob", rule="reset-link", now="2025-03-02T12:00:00Z"
    )
    assert "2025-03-02T10:00:00Z" in refused["message"]  # when the link expired
    assert row_of(url, "reset-link").status == "failed"
