"""Running it for real: helpdesk.toml (precedence, errors), doctor, outbox send's exit codes
with SMTP down, --quiet, and metrics read by prometheus_client's parser.

All through the real CLI, in-process, on real SQLite or PostgreSQL (HELPDESK_TEST_PG), with a
real SMTP server (aiosmtpd) and a real LDAP connector pointed at a port nobody listens on.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
from datetime import datetime, timezone
from pathlib import Path

import pytest

from helpdesk.storage import db

from .conftest import PG, InProcessHelpdesk
from .servers import free_port
from .test_delivery import (  # noqa: F401 - fixtures: a real SMTP server, a queued database
    FROM,
    NOW,
    RESET_URL,
    queued_template,
    smtp,
    smtp_factory,
    url,
)

LATER = "2025-03-01T10:20:00Z"


@pytest.fixture
def env(monkeypatch, tmp_path):
    """No HELPDESK_* variable from outside; a config file of the test's own."""
    for name in [k for k in os.environ if k.startswith("HELPDESK_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "200")
    path = tmp_path / "helpdesk.toml"
    path.write_text("")
    monkeypatch.setenv("HELPDESK_CONFIG", str(path))
    return path


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def secret(tmp_path: Path, name: str, value: str = "s3cret-pw", mode: int = 0o600) -> Path:
    p = tmp_path / name
    p.write_text(value + "\n")
    p.chmod(mode)
    return p


class Hd(InProcessHelpdesk):
    """The in-process CLI; ``db=False`` leaves --db out, so the configuration gives it."""

    def __init__(self, url, tmp_path, db=True):  # noqa: F811
        super().__init__(url, tmp_path)
        self.with_db = db

    def argv(self, args, as_, now, json_out):
        argv = super().argv(args, as_, now, json_out)
        return argv if self.with_db else argv[2:]


def has(d: dict, expected: dict) -> bool:
    return all(d.get(k) == v for k, v in expected.items())


def setting(shown: dict, key: str) -> dict:
    return next(r for r in shown["settings"] if r["key"] == key)


# --- helpdesk.toml ---------------------------------------------------------------------------


def test_flags_override_variables_override_the_file_override_defaults(
    env, db_url, tmp_path, monkeypatch
):
    pw = secret(tmp_path, "smtp.secret")
    write(
        env,
        f"""# the helpdesk of an association
[database]
url = "{db_url}"

[smtp]
host = "smtp.example.org"
port = 587
starttls = true
user = "helpdesk"
password_file = "{pw}"

[policyd]
listen = "127.0.0.1:10040"

[[ingest.sources]]
kind = "mail"
url = "imaps://helpdesk:inline-pw@imap.example.org/INBOX"
""",
    )
    hd = Hd(db_url, tmp_path, db=False)
    shown = hd.ok("config", "show")
    assert shown["file"] == str(env) and shown["found_by"] == "HELPDESK_CONFIG"
    assert has(
        setting(shown, "database.url"),
        {
            "value": db_url,
            "origin": f"{env}:3",
            "source": "file",
        },
    )
    assert setting(shown, "smtp.port")["origin"] == f"{env}:7"
    assert setting(shown, "smtp.starttls")["value"] is True
    assert has(setting(shown, "smtp.ssl"), {"value": False, "source": "default"})
    assert setting(shown, "policyd.listen")["origin"] == f"{env}:13"
    # secrets: the file's path is shown, its content never; a password in a URL is masked
    text = json.dumps(shown)
    assert "s3cret-pw" not in text and "inline-pw" not in text
    assert setting(shown, "ingest.sources")["value"][0]["url"].startswith(
        "imaps://helpdesk:****@imap"
    )
    # The file's database is the one commands use when neither --db nor HELPDESK_DB is given.
    assert hd.ok("ticket", "list") == []

    monkeypatch.setenv("HELPDESK_SMTP_PORT", "2525")
    monkeypatch.setenv("HELPDESK_DB", str(tmp_path / "other.db"))
    shown = hd.ok("config", "show")
    assert has(
        setting(shown, "smtp.port"),
        {
            "value": "2525",
            "origin": "HELPDESK_SMTP_PORT",
            "source": "env",
        },
    )
    assert setting(shown, "database.url")["origin"] == "HELPDESK_DB"
    shown = Hd(db_url, tmp_path).ok("config", "show")  # --db on the command line
    assert has(setting(shown, "database.url"), {"origin": "--db", "source": "flag"})

    from helpdesk.outgoing.delivery import DeliveryConfig

    cfg = DeliveryConfig.from_env()
    assert (cfg.smtp_host, cfg.port, cfg.starttls, cfg.username, cfg.password) == (
        "smtp.example.org",
        2525,
        True,
        "helpdesk",
        "s3cret-pw",
    )
    # For people: French by default, the same facts.
    r = hd.run("config", "show", json_out=False)
    assert r.code == 0 and "HELPDESK_SMTP_PORT" in r.out and "s3cret-pw" not in r.out
    assert "par défaut" in r.out


@pytest.mark.parametrize(
    "text, line, words",
    [
        ('[smtp]\nhost = "x"\npassword = "hunter2"\n', 3, "smtp.password_file"),
        ("[smtp]\nhost = 'x'\n\nport = \"twenty-five\"\n", 4, "smtp.port"),
        ('[smtp]\nstarttls = "yes"\n', 2, "smtp.starttls"),
        ('[serve]\nlisten = "0.0.0.0"\n', 2, "serve.listen"),
        ('[database]\nurl = "x"\n[smtp\nhost = "x"\n', 3, ""),
        ('[[ingest.sources]]\nkind = "pop3"\nurl = "x"\n', 2, "ingest.sources[1]"),
        ('[[ingest.sources]]\nurl = "imaps://h/INBOX"\npassword = "x"\n', 3, "password_file"),
        ('[connectors.dir]\ntype = "ldap"\npolicies = ["indigos"]\nbind_password = "x"\n', 4, ""),
    ],
)
def test_a_wrong_file_is_refused_naming_its_line(env, db_url, tmp_path, text, line, words):
    write(env, text)
    # Every command that reads the file says so: 'ticket list' looks for its database there.
    hd, without_db = Hd(db_url, tmp_path), Hd(db_url, tmp_path, db=False)
    for cli, args in (
        (hd, ("config", "check")),
        (without_db, ("ticket", "list")),
        (hd, ("outbox", "send")),
    ):
        r = cli.run(*args, json_out=False)
        assert r.code == 2, (args, r)
        assert f"{env}:{line}" in r.err and words in r.err, r.err
        assert "hunter2" not in r.err + r.out
    assert "Traceback" not in r.err


def test_check_names_unknown_keys_and_secret_files_others_can_read(env, db_url, tmp_path):
    loose = secret(tmp_path, "smtp.secret", mode=0o644)
    write(
        env,
        f'[smtp]\nhost = "mx"\npassword_file = "{loose}"\n\n[smpt]\nport = 25\n[policyd]\nlisen = "x"\n',
    )
    hd = Hd(db_url, tmp_path)
    r = hd.run("--lang", "en", "config", "check", json_out=False)
    assert r.code == 2
    assert f"{env}:5: unknown setting smpt" in r.out
    assert f"{env}:8: unknown setting policyd.lisen" in r.out
    assert f"{env}:3:" in r.out and "chmod 600" in r.out
    loose.chmod(0o600)
    write(env, f'[smtp]\nhost = "mx"\npassword_file = "{loose}"\n')
    assert hd.ok("config", "check")["ok"] is True
    r = hd.run("config", "check", json_out=False)
    assert r.code == 0 and "valide" in r.out


def test_no_file_is_a_valid_set_up_and_said_so(env, db_url, tmp_path, monkeypatch):
    monkeypatch.delenv("HELPDESK_CONFIG")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "nothing"))
    from helpdesk.base import config

    if config.SYSTEM_PATH.exists():
        pytest.skip("this machine has an /etc/helpdesk/helpdesk.toml")
    shown = Hd(db_url, tmp_path).ok("config", "show")
    assert shown["file"] is None and shown["found_by"] == "none"
    assert {r["source"] for r in shown["settings"]} == {"default", "flag"}


# --- doctor ----------------------------------------------------------------------------------


def ssh_key(tmp_path: Path, name: str) -> str:
    if shutil.which("ssh-keygen") is None:
        pytest.skip("ssh-keygen is not installed")
    path = tmp_path / name
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)],
        check=True,
        capture_output=True,
    )
    return path.with_suffix(".pub").read_text().strip()


def complete_setup(env, url, tmp_path, smtp_port) -> Hd:  # noqa: F811
    """What a real set-up has: SMTP, senders and reset pages, intake addresses, anchors,
    timers that ran, SSH keys in place, private files."""
    anchors = tmp_path / "anchors"
    keys = tmp_path / "authorized_keys"
    write(
        env,
        f"""[database]
url = "{url}"

[smtp]
host = "127.0.0.1"
port = {smtp_port}

[mail]
from = "{FROM}"
reset_url = "{RESET_URL}"

[paths]
audit_anchors = "{anchors}"

[ssh]
authorized_keys = "{keys}"
""",
    )
    hd = Hd(url, tmp_path, db=False)
    hd.now = NOW
    for p in hd.ok("policy", "list"):
        hd.ok("policy", "set", p["key"], f"intake=support@{p['key']}.example", as_="chloe")
    hd.ok("volunteer", "add", "alice", "--role", "volunteer", "--ssh-key", ssh_key(tmp_path, "a"))
    r = hd.run("volunteer", "authorized-keys", json_out=False)
    keys.write_text(r.out)
    hd.ok("outbox", "send")
    hd.ok("sweep")
    hd.ok("audit", "anchor")
    if not PG:
        path = db.sqlite_path(url)
        path.chmod(0o600)
        path.parent.chmod(0o700)
    return hd


def findings(hd: Hd, *, code: int, now: str = NOW) -> dict[str, dict]:
    r = hd.run("doctor", now=now)
    assert r.code == code, r.out + r.err
    data = r.json
    assert data["ok"] is (code == 0)
    return {f["check"]: f for f in data["findings"]}


def test_doctor_passes_a_complete_set_up_and_names_each_gap(env, url, tmp_path, smtp):  # noqa: F811
    hd = complete_setup(env, url, tmp_path, smtp.port)
    found = findings(hd, code=0, now=LATER)
    assert {f["status"] for f in found.values()} == {"ok"}, [
        f for f in found.values() if f["status"] != "ok"
    ]
    assert found["smtp"]["message"].startswith("smtp://127.0.0.1")
    assert len(smtp.messages) == 3  # what 'outbox send' delivered; doctor sent nothing
    r = hd.run("doctor", now=LATER, json_out=False)
    assert r.code == 0 and "✔" in r.out and "✘" not in r.out

    # A timer stopped: three hours without a sweep or an outbox run.
    found = findings(hd, code=1, now="2025-03-01T13:30:00Z")
    assert found["timer:sweep"]["status"] == "fail" and "sweep" in found["timer:sweep"]["fix"]
    assert found["timer:outbox-send"]["status"] == "fail"
    assert found["anchors"]["status"] == "ok"
    # Three days on, the anchor is old too.
    found = findings(hd, code=1, now="2025-03-04T12:00:00Z")
    assert found["anchors"]["status"] == "warn" and "audit anchor" in found["anchors"]["fix"]

    # A provider with no sender: its mails are held.
    hd.ok("policy", "set", "wigii", "intake=", as_="chloe")
    found = findings(hd, code=0, now=LATER)
    assert found["provider:wigii:intake"]["status"] == "warn"
    assert "policy set wigii intake=" in found["provider:wigii:intake"]["fix"]

    # SMTP down.
    smtp.stop()
    found = findings(hd, code=1, now=LATER)
    assert found["smtp"]["status"] == "fail" and "unreachable" in found["smtp"]["message"]

    # A key withdrawn but still in authorized_keys.
    hd.ok("volunteer", "deactivate", "alice", as_="chloe")
    found = findings(hd, code=1, now=LATER)
    assert found["ssh"]["status"] == "fail" and found["ssh"]["data"]["extra"] == ["alice"]
    assert "authorized-keys" in found["ssh"]["fix"]


def test_doctor_names_missing_settings_stuck_mail_and_actions(env, url, tmp_path, smtp):  # noqa: F811
    hd = complete_setup(env, url, tmp_path, smtp.port)
    text = (
        env.read_text().replace(f'from = "{FROM}"\n', "").replace(f'reset_url = "{RESET_URL}"', "")
    )
    write(env, text)
    hd.ok("account", "add", "dan", "--policy", "wigii", "--email", "dan@example.org", as_="chloe")
    t = hd.open("password-reset", "wigii", "dan", "dan@example.org")
    hd.act(t["id"], "issue-reset-link")
    r = hd.run("outbox", "send", now=LATER)
    assert r.code == 1 and r.json["counts"]["held"] == 1
    found = findings(hd, code=1, now=LATER)
    assert found["provider:indigos:mail_from"]["status"] == "fail"
    assert found["provider:indigos:reset_url"]["status"] == "fail"
    assert has(found["mails:held"], {"status": "fail", "data": {"count": 1}})
    assert found["provider:wigii:mail_from"]["status"] == "ok"  # its pack gives it

    from helpdesk.storage.models import ServiceAction

    with db.write_session(url) as s:
        s.add(
            ServiceAction(
                policy_key="wigii",
                connector="dir",
                kind="lock",
                target="dan",
                status="uncertain",
                created_at=datetime(2025, 3, 1, 10, tzinfo=timezone.utc),
            )
        )
    found = findings(hd, code=1, now=LATER)
    assert has(found["actions:uncertain"], {"status": "warn", "data": {"count": 1}})


def test_doctor_on_a_broken_database_connector_and_chain(env, url, tmp_path, smtp):  # noqa: F811
    hd = complete_setup(env, url, tmp_path, smtp.port)
    port = free_port()  # nobody listens there
    write(
        env,
        env.read_text()
        + f"""
[connectors.directory]
type = "ldap"
policies = ["indigos"]
url = "ldap://127.0.0.1:{port}"
base = "dc=example,dc=org"
timeout = 2
""",
    )
    found = findings(hd, code=1, now=LATER)
    assert found["connector:directory"]["status"] == "fail"
    assert "connectors check" in found["connector:directory"]["fix"]

    from sqlalchemy import text

    with db.get_engine(url).begin() as conn:  # an event edited behind the helpdesk's back
        conn.execute(
            text("UPDATE event SET actor = 'mallory' WHERE id = (SELECT MIN(id) FROM event)")
        )
    found = findings(hd, code=1, now=LATER)
    assert found["audit"]["status"] == "fail" and "audit verify" in found["audit"]["fix"]

    if not PG:
        db.sqlite_path(url).chmod(0o644)
        found = findings(hd, code=1, now=LATER)
        assert found["file-mode"]["status"] == "fail" and "chmod 600" in found["file-mode"]["fix"]


def test_doctor_on_a_database_not_initialised_or_unreachable(env, empty_db_url, tmp_path):
    write(env, f'[database]\nurl = "{empty_db_url}"\n')
    hd = Hd(empty_db_url, tmp_path, db=False)
    found = findings(hd, code=1)
    assert found["migrations"]["status"] == "fail" and "helpdesk init" in found["migrations"]["fix"]
    write(env, f'[database]\nurl = "postgresql://nobody@127.0.0.1:{free_port()}/none"\n')
    found = findings(hd, code=1)
    assert found["database"]["status"] == "fail" and "injoignable" in found["database"]["message"]
    assert "timer:sweep" not in found  # nothing else could be read
    r = hd.run("doctor", json_out=False)
    assert r.code == 1 and "✘" in r.out and "Traceback" not in r.err
    write(env, '[database]\nurl = "x"\n\n[smtp]\nport = "25"\n')
    found = findings(hd, code=1)
    assert found["config"]["status"] == "fail" and f"{env}:5" in found["config"]["message"]


# --- outbox send and the timers' --quiet -----------------------------------------------------


def test_outbox_send_exits_non_zero_while_smtp_is_down(url, smtp_factory, tmp_path, env):  # noqa: F811
    server = smtp_factory(start=False)  # nothing listens on its port yet
    write(env, f'[smtp]\nhost = "127.0.0.1"\nport = {server.port}\n[mail]\nfrom = "{FROM}"\n')
    hd = Hd(url, tmp_path)
    hd.now = NOW
    r = hd.run("--lang", "en", "outbox", "send", json_out=False)
    assert r.code == 1
    assert "Not delivered: 3 to retry" in r.out and "unreachable" in r.out
    r = hd.run("outbox", "send", "--quiet", now="2025-03-01T10:02:00Z", json_out=False)
    assert r.code == 1 and "3 à réessayer" in r.out  # quiet, but not about a failure
    r = hd.run("outbox", "send", "--quiet", now="2025-03-01T10:03:00Z", json_out=False)
    assert (r.code, r.out) == (0, "")  # nothing due before the next attempt: nothing to say
    server.start()
    with open(env, "a") as f:
        f.write(f'reset_url = "{RESET_URL}"\n')
    r = hd.run("outbox", "send", now="2025-03-01T10:10:00Z")
    assert r.code == 0 and r.json["counts"]["sent"] == 3 and r.json["local"] is False
    r = hd.run("outbox", "send", "--quiet", now="2025-03-01T10:20:00Z", json_out=False)
    assert r.code == 0 and r.out == "" and r.err == ""


def test_a_maildir_is_not_called_sending(url, tmp_path, env):  # noqa: F811
    box = tmp_path / "sent"
    write(env, f'[smtp]\nmaildir = "{box}"\n[mail]\nfrom = "{FROM}"\nreset_url = "{RESET_URL}"\n')
    hd = Hd(url, tmp_path)
    hd.now = NOW
    r = hd.run("outbox", "send", json_out=False)
    assert r.code == 0
    assert "3 courriel(s) écrit(s) dans le Maildir local" in r.out and str(box) in r.out
    assert "envoyé" not in r.out
    assert len(list((box / "new").iterdir())) == 3


def test_quiet_timers_say_nothing_when_nothing_is_due(hdi, env):
    hdi.now = NOW
    for args in (
        ("sweep", "--quiet"),
        ("outbox", "send", "--quiet"),
        ("actions", "run", "--quiet"),
    ):
        r = hdi.run(*args, json_out=False)
        assert (r.code, r.out, r.err) == (0, "", ""), args
    r = hdi.run("sweep", json_out=False)
    assert r.code == 0 and r.out.strip()  # without --quiet, it says what it did
    folder = hdi.tmp_path / "empty"
    for sub in ("cur", "new", "tmp"):
        (folder / sub).mkdir(parents=True)
    r = hdi.run("ingest", "mail", str(folder), "--quiet", json_out=False)
    assert (r.code, r.out) == (0, "")
    r = hdi.run("ingest", "mail", str(hdi.tmp_path / "missing"), "--quiet", json_out=False)
    assert r.code == 2 and r.err.strip()  # a failure is never quiet


# --- metrics ---------------------------------------------------------------------------------


def test_metrics_parse_as_openmetrics(url, tmp_path, env, smtp):  # noqa: F811
    from prometheus_client.openmetrics.parser import text_string_to_metric_families

    hd = Hd(url, tmp_path)
    hd.now = NOW
    r = hd.run("metrics", json_out=False)
    assert r.code == 0 and r.out.endswith("# EOF\n")
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for fam in text_string_to_metric_families(r.out)
        for s in fam.samples
    }
    assert samples[("helpdesk_mails", (("status", "pending"),))] == 3
    assert samples[("helpdesk_mails", (("status", "sent"),))] == 0
    assert samples[("helpdesk_mail_oldest_pending_age_seconds", ())] == 0  # queued at NOW
    assert samples[("helpdesk_last_sweep_timestamp_seconds", ())] == 0  # never
    tickets = hd.ok("ticket", "list")
    by = {}
    for t in tickets:
        by[(t["queue"], t["policy"])] = by.get((t["queue"], t["policy"]), 0) + 1
    for (queue, policy), n in by.items():
        labels = (("provider", policy), ("queue", queue))
        open_, waiting = (
            samples[("helpdesk_tickets_open", labels)],
            samples[("helpdesk_tickets_waiting", labels)],
        )
        assert open_ + waiting <= n and ("helpdesk_tickets_overdue", labels) in samples

    write(env, f'[smtp]\nhost = "127.0.0.1"\nport = {smtp.port}\n[mail]\nfrom = "{FROM}"\n')
    hd.ok("sweep", now="2025-03-01T11:00:00Z")
    hd.run("outbox", "send", now="2025-03-01T11:00:00Z")  # the link is held: no reset_url
    r = hd.run("metrics", now="2025-03-01T11:00:00Z", json_out=False)
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for fam in text_string_to_metric_families(r.out)
        for s in fam.samples
    }
    assert samples[("helpdesk_mails", (("status", "sent"),))] == 2
    assert samples[("helpdesk_mails", (("status", "held"),))] == 1
    assert samples[("helpdesk_mail_oldest_pending_age_seconds", ())] == 3600
    from datetime import datetime

    at = datetime.fromisoformat("2025-03-01T11:00:00+00:00").timestamp()
    assert samples[("helpdesk_last_sweep_timestamp_seconds", ())] == at
    assert samples[("helpdesk_last_outbox_send_ok", ())] == 0


# --- ingest sources: what the file names, read by the ingest timer ---------------------------


def test_ingest_sources_reads_the_configured_mailbox_and_logs(hd, tmp_path, cli_env):
    from tests.ingest import test_imap
    from tests.ingest.mailmaker import mail

    if test_imap.DOVECOT is None:
        pytest.skip("Dovecot is not installed")
    hd.env = {**cli_env, "HELPDESK_CONFIG": str(write(tmp_path / "helpdesk.toml", ""))}
    hd.now = test_imap.NOW
    r = hd.run("ingest", "sources")
    assert r.code == 2 and "[[ingest.sources]]" in r.err  # nothing configured: said
    hd.account("camille", "indigos", "camille@example.net")
    pw = secret(tmp_path, "imap.secret", test_imap.PASSWORD)
    log = tmp_path / "mail.log"
    log.write_text("")
    # An in-process CLI run earlier in this worker left the umask at 077 (files.private_umask):
    # Dovecot's own processes could then not read their sockets and configuration.
    saved = os.umask(0o022)
    try:
        server = test_imap._dovecot()
        port, _tls = server.__enter__()
    finally:
        os.umask(saved)
    with contextlib.ExitStack() as stack:
        stack.push(server.__exit__)
        test_imap._append(
            port,
            mail(
                "camille@example.net",
                "support@indigos.example",
                "Mot de passe oublié",
                "J'ai oublié mon mot de passe.",
                message_id="<s1@example.net>",
            ),
        )
        write(
            tmp_path / "helpdesk.toml",
            f"""[ingest]
postfix_logs = ["{log}"]

[[ingest.sources]]
kind = "mail"
url = "imap://{test_imap.USER}@127.0.0.1:{port}/INBOX"
password_file = "{pw}"
""",
        )
        first = hd.ok("ingest", "sources")
        assert [s["kind"] for s in first] == ["mail", "postfix"]
        assert first[0]["counts"]["opened"] == 1 and test_imap.PASSWORD not in json.dumps(first)
        again = hd.run("ingest", "sources", "--quiet", json_out=False)
        assert (again.code, again.out, again.err) == (0, "", "")  # nothing new: nothing said
    down = hd.run("ingest", "sources", "--quiet", json_out=False)  # the IMAP server is gone
    assert down.code == 2 and "127.0.0.1" in down.err


def test_the_readme_table_names_every_setting_its_variable_and_flag():
    from helpdesk.base import config

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    section = readme.split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]
    rows = {
        line.split("|")[1].strip(): line for line in section.splitlines() if line.startswith("| `")
    }
    for key in config.KEYS.values():
        row = rows.get(f"`{key.dotted}`")
        assert row is not None, key.dotted
        for name in (key.env, key.flag):
            assert not name or f"`{name}`" in row, (key.dotted, name)


def test_serve_keymap_and_anchors_read_the_file_under_their_flags_and_variables(
    hdi, env, tmp_path, monkeypatch
):
    import argparse

    from helpdesk.cli import serve
    from screens import keymap

    anchors = tmp_path / "anchors"
    write(
        env,
        f'[serve]\nlisten = "127.0.0.2:8123"\n[paths]\nkeymap = "{tmp_path / "keys.toml"}"\n'
        f'audit_anchors = "{anchors}"\n',
    )
    args = argparse.Namespace(host=None, port=None)
    serve.listen_address(args)
    assert (args.host, args.port) == ("127.0.0.2", 8123)
    args = argparse.Namespace(host=None, port=9000)  # --port 9000
    serve.listen_address(args)
    assert (args.host, args.port) == ("127.0.0.2", 9000)
    assert keymap.default_path() == tmp_path / "keys.toml"
    monkeypatch.setenv("HELPDESK_KEYMAP", str(tmp_path / "mine.toml"))
    assert keymap.default_path() == tmp_path / "mine.toml"
    # 'audit anchor' with no --file writes where the file says; 'audit verify' reads it there.
    assert hdi.ok("audit", "anchor")["id"] >= 0 and anchors.read_text().strip()
    assert hdi.ok("audit", "verify")["anchors"] == 1
