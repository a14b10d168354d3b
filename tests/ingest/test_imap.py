"""``helpdesk ingest mail imap://...`` against a real Dovecot (Debian package dovecot-imapd),
started here on 127.0.0.1 with its own configuration in a temporary folder, an unprivileged
port and one passwd-file user. Skipped when Dovecot is not installed."""

from __future__ import annotations

import contextlib
import imaplib
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from tests import servers
from tests.ingest.mailmaker import NOW, db_rows, mail

DOVECOT = shutil.which("dovecot") or next(
    (p for p in ("/usr/sbin/dovecot", "/usr/local/sbin/dovecot") if os.path.exists(p)), None
)
USER, PASSWORD = "helpdesk", "s3cret-pass"

pytestmark = pytest.mark.skipif(
    DOVECOT is None,
    reason="Dovecot is not installed (apt-get install -y dovecot-imapd): IMAP ingestion not tested",
)


@contextlib.contextmanager
def _dovecot(tls: tuple[Path, Path] | None = None):
    """A Dovecot on 127.0.0.1 (tests/servers.py) with one user; with ``tls`` (certificate,
    key) it also speaks IMAPS and offers STARTTLS. Yields (imap port, imaps port or None)."""
    with servers.dovecot({USER: PASSWORD}, tls=tls) as server:
        yield server.imap_port, server.imaps_port


@pytest.fixture
def dovecot():
    with _dovecot() as (port, _none):
        yield port


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory) -> tuple[Path, Path]:
    """A throw-away self-signed certificate for 127.0.0.1 and localhost (openssl command)."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed: IMAP over TLS not tested")
    folder = Path(tempfile.mkdtemp(prefix="helpdesk-imap-tls-"))
    folder.chmod(0o755)  # Dovecot's config process reads them
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
    yield cert, key
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def dovecot_tls(tls_files):
    with _dovecot(tls_files) as (port, tls_port):
        yield port, tls_port, tls_files[0]


def _append(port: int, *messages: bytes) -> None:
    conn = imaplib.IMAP4("127.0.0.1", port)
    conn.login(USER, PASSWORD)
    for raw in messages:
        typ, _ = conn.append(
            "INBOX", None, None, raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        )
        assert typ == "OK"
    conn.logout()


def _flags(port: int) -> list[bytes]:
    conn = imaplib.IMAP4("127.0.0.1", port)
    conn.login(USER, PASSWORD)
    conn.select("INBOX", readonly=True)
    _typ, data = conn.fetch("1:*", "(FLAGS)")
    conn.logout()
    return [d for d in data if d]


def test_imap_mailbox_ingest(hd, dovecot):
    hd.now = NOW
    hd.account("camille", "indigos", "camille@example.net")
    hd.account("jdupont", "wigii", "jean.dupont@example.org")
    _append(
        dovecot,
        mail(
            "camille@example.net",
            "support@indigos.example",
            "Mot de passe oublié",
            "J'ai oublié mon mot de passe.",
            message_id="<i1@example.net>",
        ),
        mail(
            "jean.dupont@example.org",
            "contact@wigii.org",
            "Désactivation",
            "Désactivez mon compte jdupont sur https://a.wigii.org le 15/01/2027.",
            message_id="<i2@example.org>",
        ),
        mail(
            "who@unknown.example",
            "any@where.example",
            "Salut",
            "Bonjour",
            message_id="<i3@unknown.example>",
        ),
    )
    url = f"imap://{USER}@127.0.0.1:{dovecot}/INBOX"
    hd.env["HELPDESK_IMAP_PASSWORD"] = PASSWORD
    first = hd.ok("ingest", "mail", url)
    assert (first["counts"]["opened"], first["counts"]["quarantined"]) == (2, 1)
    assert first["source"] == url  # the label never shows the password
    assert not any(b"\\Seen" in f for f in _flags(dovecot))  # read-only: the mailbox is as it was

    ticket = next(t for t in hd.ok("ticket", "list", "--all") if t["policy"] == "wigii")["id"]
    _append(
        dovecot,
        mail(
            "jean.dupont@example.org",
            "contact@wigii.org",
            f"Re: [wigii #{ticket}] confirmation",
            "Je confirme.",
            message_id="<i4@example.org>",
        ),
    )
    second = hd.ok("ingest", "mail", url)
    assert len(second["items"]) == 1  # only the new message: the cursor remembers the last UID
    assert second["counts"]["threaded"] == 1 and second["counts"]["acknowledged"] == 1
    assert hd.show(ticket)["state"] == "scheduled"
    state = db_rows(hd.url, "select state from ingestcursor where source = :p0", url)[0][0]
    state = json.loads(state) if isinstance(state, str) else state
    assert state["last_uid"] == 4

    # The password may be in the URL; a wrong one is refused without a traceback.
    del hd.env["HELPDESK_IMAP_PASSWORD"]
    third = hd.ok("ingest", "mail", f"imap://{USER}:{PASSWORD}@127.0.0.1:{dovecot}/INBOX")
    assert third["items"] == []
    refused = hd.bad("ingest", "mail", f"imap://{USER}:wrong@127.0.0.1:{dovecot}/INBOX")
    assert "wrong" not in refused.err
    missing = hd.bad("ingest", "mail", f"imap://{USER}@127.0.0.1:{dovecot}/INBOX")
    assert "HELPDESK_IMAP_PASSWORD" in missing.err
    # This server has no TLS: asked for STARTTLS, the client stops before the password.
    hd.env["HELPDESK_IMAP_PASSWORD"] = PASSWORD
    clear = hd.bad("ingest", "mail", f"imap://{USER}@127.0.0.1:{dovecot}/INBOX?tls=starttls")
    assert "STARTTLS" in clear.err and "pas été envoyé en clair" in clear.err


def test_imaps_and_starttls_with_a_trusted_certificate(hd, dovecot_tls):
    """``imaps://`` (TLS from the first byte) and ``imap://...?tls=starttls`` against the real
    Dovecot serving a throw-away certificate; the client trusts it only through
    ``HELPDESK_IMAP_CAFILE``."""
    port, tls_port, cafile = dovecot_tls
    hd.now = NOW
    hd.account("camille", "indigos", "camille@example.net")
    _append(
        port,
        mail(
            "camille@example.net",
            "support@indigos.example",
            "Mot de passe oublié",
            "J'ai oublié mon mot de passe.",
            message_id="<t1@example.net>",
        ),
    )
    hd.env["HELPDESK_IMAP_PASSWORD"] = PASSWORD
    imaps = f"imaps://{USER}@127.0.0.1:{tls_port}/INBOX"
    starttls = f"imap://{USER}@127.0.0.1:{port}/INBOX?tls=starttls"

    # Not trusted yet: nothing is read, and the password was never sent.
    for url in (imaps, starttls):
        refused = hd.bad("ingest", "mail", url)
        assert "certificate" in refused.err.lower() and PASSWORD not in refused.err

    hd.env["HELPDESK_IMAP_CAFILE"] = str(cafile)
    first = hd.ok("ingest", "mail", imaps)
    assert (
        first["source"] == f"imaps://{USER}@127.0.0.1:{tls_port}/INBOX"
        and first["counts"]["opened"] == 1
    )
    _append(
        port,
        mail(
            "camille@example.net",
            "support@indigos.example",
            "Mot de passe perdu",
            "Je n'arrive plus à me connecter, mot de passe perdu.",
            message_id="<t2@example.net>",
        ),
    )
    second = hd.ok("ingest", "mail", starttls)
    # Another label (imap:// on another port), hence its own cursor: the first message is
    # read again and recognised as a duplicate; the new one opens a ticket.
    assert second["counts"]["opened"] == 1 and second["counts"]["duplicates"] == 1
    assert second["source"] == f"imap://{USER}@127.0.0.1:{port}/INBOX"
    assert len(hd.ok("ticket", "list", "--queue", "password-reset")) == 2
