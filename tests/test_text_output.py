"""What the command line prints for a person (not --json): legible without colour, at 80
columns, in the interface's language, times in the provider's zone. The JSON keeps UTC."""

from __future__ import annotations

import re

import pytest

NOW = "2026-11-23T10:00:00Z"  # 11:00 in Paris
LATER = "2026-12-23T10:00:00Z"
UTC_STAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d)?Z")


@pytest.fixture
def indigos(hdi):
    hdi.now = NOW
    hdi.account("camille", "indigos", "camille@example.org", "--last-login", "2026-01-10")
    alert = hdi.open(
        "mail-reputation", "indigos", "camille", "", "signal=volume", "messages=900", as_="bob"
    )["id"]
    hdi.act(alert, "contact", "--note", "was it you?", as_="bob")
    abuse = hdi.open(
        "abuse", "indigos", "camille", "victim@example.net", "category=harassment", as_="bob"
    )["id"]
    hdi.act(abuse, "warn", "--note", "first warning", as_="bob")
    late = hdi.open(
        "abuse", "indigos", "camille", "victim@example.net", "category=harassment", as_="bob"
    )["id"]
    hdi.now = LATER
    return hdi, alert, abuse, late


def text(hd, *args, **kw) -> str:
    r = hd.ok(*args, json_out=False, **kw)
    return r.out


def test_an_overdue_date_reads_as_overdue_without_colour(indigos, monkeypatch):
    hd, _alert, abuse, late = indigos
    monkeypatch.setenv("NO_COLOR", "1")
    out = text(hd, "ticket", "show", late, as_="bob")
    line = next(x for x in out.splitlines() if "Objectif de réponse" in x)
    assert line.startswith("! ") and "[en retard]" in line, line
    assert "2026-11-30 11:00" in line  # the target in Paris time, a week after the opening
    # a target that was met is not overdue
    met = next(
        x for x in text(hd, "ticket", "show", abuse, as_="bob").splitlines() if "Objectif" in x
    )
    assert not met.startswith("!") and "en retard" not in met and "[fait]" in met
    english = text(hd, "ticket", "show", late, "--lang", "en", as_="bob")
    assert "[overdue]" in next(x for x in english.splitlines() if x.startswith("! "))
    # JSON keeps the status key and UTC
    dl = hd.show(late, as_="bob")["deadline_details"][0]
    assert dl["status"] == "pending" and dl["at"].endswith("Z")


def test_ledger_and_account_times_are_in_the_providers_zone(indigos):
    hd, alert, abuse, _late = indigos
    shown = text(hd, "ticket", "show", abuse, as_="bob")
    ledger = shown.split("Registre des sanctions du compte")[1].split("\n\n")[0]
    assert "(Europe/Paris)" in ledger.splitlines()[0]
    rows = ledger.splitlines()[1:]
    assert rows[0].split()[:4] == ["2026-11-23", "11:00", f"#{alert}", "Réput."]
    assert "échange" in rows[0] and "avertissement" in rows[1] and "(ce ticket)" in rows[1]
    assert not UTC_STAMP.search(shown), UTC_STAMP.search(shown)

    account = text(hd, "account", "show", "camille", as_="bob")
    assert not UTC_STAMP.search(account), account
    assert "Dernière connexion" in account and "2026-01-10 01:00 Europe/Paris" in account
    assert "Statut" in account and "actif" in account and "last_login" not in account
    assert "2026-11-23 11:00" in account and "(Europe/Paris)" in account
    # the JSON is unchanged: stable keys, UTC
    view = hd.ok("account", "show", "camille", as_="bob")
    assert view["last_login"] == "2026-01-10T00:00:00Z"
    assert [r["at"] for r in view["sanctions"]] == [NOW, NOW]
    assert [r["step"] for r in view["sanctions"]] == ["contact", "warning"]


def test_train_list_at_80_columns_keeps_keys_and_words_whole(hdi, monkeypatch):
    from helpdesk.training import scenarios

    monkeypatch.setenv("COLUMNS", "80")
    out = text(hdi, "train", "list")
    lines = out.splitlines()
    assert all(len(x) <= 80 for x in lines)
    keys = [sc.key for sc in scenarios.load_all()]
    assert [x.split()[0] for x in lines if not x.startswith(" ")] == keys
    words = set(out.split())
    for sc in scenarios.load_all():
        for word in sc.summary()["title"].split():
            assert word in words, word  # no title word split across lines
    assert "mail-reputation" not in out and "Réput. mail" in out


def test_ingest_reasons_options_and_source_errors_speak_french(hdi, tmp_path):
    from tests.ingest.mailmaker import mail, maildir

    hdi.now = NOW
    lost = mail(
        "stranger@example.com",
        "nobody@elsewhere.example",
        "[bold]Mot de passe[/] oublié",
        "J'ai oublié mon mot de passe.",
        message_id="<lost@example.com>",
    )
    box = maildir(tmp_path / "in", [lost])
    out = text(hdi, "ingest", "mail", box, as_="alice")
    item = next(x for x in out.splitlines() if x.startswith("  "))
    assert "en quarantaine" in item and "quarantaine n° " in item, item
    assert "aucun fournisseur pour cette adresse" in item
    assert "quarantined" not in out and "no provider" not in out
    other = mail(
        "stranger@example.com", "nobody@elsewhere.example", "Lost", "Hello", message_id="<en@x>"
    )
    english = text(hdi, "ingest", "mail", maildir(tmp_path / "en", [other]), "--lang", "en")
    assert "quarantined quarantine #" in english and "no provider for this address" in english

    missing = hdi.run("ingest", "mail", tmp_path / "nowhere", json_out=False, as_="alice")
    assert missing.code != 0 or "introuvable" in missing.out
    assert "fichier ou dossier introuvable" in missing.out + missing.err
    assert "no such file" not in missing.out + missing.err

    helped = text(hdi, "ticket", "show", "--help")
    for french in ("options générales", "URL SQLAlchemy", "afficher cette aide", "usage : "):
        assert french in helped, helped
    for english in ("global options", "show this help", "machine-readable", "usage: "):
        assert english not in helped, english
    assert "global options" in text(hdi, "ticket", "show", "--help", "--lang", "en")


def _table_rows(out: str) -> list[str]:
    """The rows of a ticket table: the lines that start with a ticket number."""
    return [x for x in out.splitlines() if re.match(r"\d+ ", x)]


@pytest.fixture
def two_providers(indigos):
    hd, alert, abuse, late = indigos
    hd.account("dominique-du-long-nom", "communesplone", "d@example.org")
    other = hd.open(
        "password-reset",
        "communesplone",
        "dominique-du-long-nom",
        "d@example.org",
        as_="bob",
    )["id"]
    return hd, alert, abuse, late, other


def test_ticket_list_at_80_columns_shows_labels_and_cuts_rather_than_folds(two_providers):
    hd, alert, abuse, late, other = two_providers
    hd.env["COLUMNS"] = "80"
    ids = {alert, abuse, late, other}
    for args in ((), ("--search", "camille")):
        out = text(hd, "ticket", "list", *args, as_="bob")
        lines = out.splitlines()
        assert all(len(x) <= 80 for x in lines), out
        rows = _table_rows(out)
        expected = ids if not args else {alert, abuse, late}
        # one line a ticket: nothing folded onto a line of its own
        assert sorted(int(r.split()[0]) for r in rows) == sorted(expected), out
        assert "Réput. mail" in out and "Abus" in out, out
        for key in ("mail-reputation", "abuse", "password-reset", "harassment", "warned"):
            assert key not in out, key
        assert not UTC_STAMP.search(out), out
        assert "Indigos Cloud Europe/Paris" in out  # the zones, named by the providers' names
    wide = text(hd, "ticket", "list", as_="bob")
    assert "…" in wide  # a long state or login is cut, whole words left whole elsewhere
    row = next(r for r in _table_rows(wide) if r.startswith(f"{other} "))
    assert "Réinit. mdp" in row and "communesplone" not in row
    # English on request
    english = text(hd, "ticket", "list", "--lang", "en", as_="bob")
    assert all(len(x) <= 80 for x in english.splitlines())
    assert "Mail rep." in english and "Abuse" in english and "Réput. mail" not in english
    assert "Times in each provider's zone" in english
    # wide enough, the provider's name has a column of its own, nothing cut
    hd.env["COLUMNS"] = "200"
    roomy = text(hd, "ticket", "list", as_="bob")
    assert "Indigos Cloud  " in roomy and "…" not in roomy
    # the JSON keeps the keys and UTC
    data = hd.ok("ticket", "list", as_="bob")
    assert {r["queue"] for r in data} == {"mail-reputation", "abuse", "password-reset"}
    assert all(r["due_at"] is None or r["due_at"].endswith("Z") for r in data)
    found = hd.ok("ticket", "list", "--search", "camille", as_="bob")
    assert {r["state"] for r in found} >= {"warned"}


def test_ticket_and_account_show_name_queue_provider_statuses_and_kind(indigos):
    hd, _alert, abuse, _late = indigos
    shown = text(hd, "ticket", "show", abuse, as_="bob")
    head = shown.splitlines()[1]
    assert head.startswith("Signalement d'abus · Indigos Cloud · Averti"), head
    assert "abuse ·" not in shown and "· indigos ·" not in shown
    mails = shown.split("Mails :")[1].split("\n\n")[0]
    assert "en file" in mails and "pending" not in mails, mails
    procedure = shown.split("Procédure :")[1].split("\n\n")[0]
    assert "▶ Averti" in procedure
    for key in ("(open)", "(warned)", "(contacted)", "(resolved)"):
        assert key not in procedure, procedure
    english = text(hd, "ticket", "show", abuse, "--lang", "en", as_="bob")
    assert english.splitlines()[1].startswith("Abuse report · Indigos Cloud · Warned"), english
    assert "queued" in english.split("Mails:")[1].split("\n\n")[0]
    assert "(warned)" not in english

    hd.account("dom", "indigos", "dom@example.org", "--kind", "admin")
    account = text(hd, "account", "show", "dom", as_="bob")
    kind = next(x for x in account.splitlines() if x.startswith("Type"))
    assert kind.split()[-1] == "administrateur", kind
    provider = next(x for x in account.splitlines() if x.startswith("Fournisseur"))
    assert provider.endswith("Indigos Cloud"), provider
    english = text(hd, "account", "show", "dom", "--lang", "en", as_="bob")
    assert next(x for x in english.splitlines() if x.startswith("Kind")).endswith("administrator")
    assert hd.ok("account", "show", "dom", as_="bob")["kind"] == "admin"  # JSON: the key


def test_sweep_says_its_moment_in_the_providers_zones(indigos):
    hd, *_ = indigos
    out = text(hd, "sweep", now="2026-12-23T10:00:00Z")
    assert "2026-12-23 11:00 (" in out and "Europe/Paris" in out, out
    assert "Africa/Tunis" in out and "2026-12-23 11:00 (Africa/Tunis" in out  # UTC+1 too
    assert not UTC_STAMP.search(out), out
    english = text(hd, "sweep", "--lang", "en", now="2026-12-23T10:00:00Z")
    assert english.startswith("Sweep at 2026-12-23 11:00 (")
    assert hd.ok("sweep", now="2026-12-23T10:00:00Z")["now"] == "2026-12-23T10:00:00Z"


def test_parser_reasons_read_in_the_runs_language(hdi, tmp_path):
    """Reasons made inside the parsers (not ARF, an empty report, a broken Postfix line)
    are shown in French by default, in English on request: never half and half."""
    from tests.ingest.mailmaker import mail

    hdi.now = NOW
    prose = mail(
        "fbl@reporter.example",
        "abuse@indigos.example",
        "Plainte",
        "Ceci n'est pas un rapport lisible.",
        message_id="<notarf@reporter.example>",
    )
    (tmp_path / "arf").mkdir()
    (tmp_path / "arf" / "one.eml").write_bytes(prose)
    out = text(hdi, "ingest", "arf", tmp_path / "arf", as_="alice")
    assert "signalement d'abus inutilisable : pas un signalement d'abus : text/plain" in out, out
    assert "not an abuse report" not in out and "without a message" not in out
    (tmp_path / "dmarc").mkdir()
    (tmp_path / "dmarc" / "empty.xml").write_bytes(b"   \n")
    out = text(hdi, "ingest", "dmarc", tmp_path / "dmarc", as_="alice")
    assert "fichier vide" in out and "empty file" not in out, out
    log = tmp_path / "mail.log"
    log.write_text(
        "Nov 23 10:00:00 mx postfix/qmgr[1]: 4BCD123: from=<broken@example.org, size=1, nrcpt=1 (queue active)\n"
    )
    out = text(hdi, "ingest", "postfix", log, "--year", "2026", "--tz", "UTC", as_="alice")
    reasons = [q["reason"] for q in hdi.ok("quarantine", "list", "--kind", "postfix")]
    assert reasons == ["from=< sans son > fermant"], (reasons, out)

    (tmp_path / "arf-en").mkdir()
    (tmp_path / "arf-en" / "two.eml").write_bytes(prose.replace(b"notarf", b"notarf2"))
    english = text(hdi, "ingest", "arf", tmp_path / "arf-en", "--lang", "en", as_="alice")
    assert "not a usable abuse report: not an abuse report: text/plain" in english, english
    assert "pas un signalement" not in english
