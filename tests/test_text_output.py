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
    # the provider by its short name (the key is the scenario's own, typed in train start)
    first = next(x for x in lines if x.startswith("le-pic-"))
    assert first.split(None, 1)[1].startswith("Le PIC · "), first
    assert not any(x.split(None, 1)[1].startswith(("le-pic", "communesplone")) for x in lines)


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
        # the zones, named by the providers' short names, never by their keys
        assert "Indigos Europe/Paris" in out and "Indigos Cloud" not in out
        assert "indigos" not in out.split("Heures dans le fuseau")[1]
    wide = text(hd, "ticket", "list", as_="bob")
    assert "…" in wide  # a long state or login is cut, whole words left whole elsewhere
    row = next(r for r in _table_rows(wide) if r.startswith(f"{other} "))
    assert "Réinit. mdp" in row and "communesplone" not in row
    # English on request
    english = text(hd, "ticket", "list", "--lang", "en", as_="bob")
    assert all(len(x) <= 80 for x in english.splitlines())
    assert "Mail rep." in english and "Abuse" in english and "Réput. mail" not in english
    assert "Times in each provider's zone" in english
    # wide enough, the provider's short name has a column of its own, nothing cut
    hd.env["COLUMNS"] = "200"
    roomy = text(hd, "ticket", "list", as_="bob")
    assert "…" not in roomy
    assert roomy.splitlines()[0].split()[:3] == ["N°", "File", "Fournisseur"], roomy
    for tid, provider in ((alert, "Indigos"), (other, "CommunesPlone")):
        row = next(r for r in _table_rows(roomy) if r.startswith(f"{tid} "))
        assert f"  {provider}  " in row, row
    assert "communesplone" not in roomy and " indigos " not in roomy
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
    assert head.startswith("Signalement d'abus · Indigos · Averti"), head  # the short name
    assert "abuse ·" not in shown and "· indigos ·" not in shown
    mails = shown.split("Mails :")[1].split("\n\n")[0]
    assert "en file" in mails and "pending" not in mails, mails
    procedure = shown.split("Procédure :")[1].split("\n\n")[0]
    assert "▶ Averti" in procedure
    for key in ("(open)", "(warned)", "(contacted)", "(resolved)"):
        assert key not in procedure, procedure
    english = text(hd, "ticket", "show", abuse, "--lang", "en", as_="bob")
    assert english.splitlines()[1].startswith("Abuse report · Indigos · Warned"), english
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


def test_ticket_show_labels_its_fields_and_their_values(indigos):
    """``ticket show`` names each field by its label and a choice by its label, a yes or no
    in words, a moment in the provider's zone; in French by default, in English on request.
    The JSON keeps the keys and the values as stored."""
    hd, alert, abuse, _late = indigos
    hd.act(
        alert,
        "suspend-sending",
        "--field",
        "until=2027-01-20T10:00",
        "--note",
        "900 mails/hour",
        as_="bob",
    )
    shown = text(hd, "ticket", "show", abuse, as_="bob")
    fields = shown.split("Champs :\n")[1].split("\n\n")[0].splitlines()
    assert "  Catégorie : harcèlement" in fields, fields
    assert "category" not in shown and "harassment" not in shown and "=" not in "".join(fields)
    english = text(hd, "ticket", "show", abuse, "--lang", "en", as_="bob")
    assert "  Category: harassment" in english.split("Fields:\n")[1].split("\n\n")[0]
    assert "Catégorie" not in english and "Champs" not in english

    alert_shown = text(hd, "ticket", "show", alert, as_="bob")
    fields = alert_shown.split("Champs :\n")[1].split("\n\n")[0]
    assert "  Signal : volume" in fields and "  Messages : 900" in fields, fields
    # the end of the sending suspension, stored in UTC, read in Paris time
    assert "  Fin de la suspension d'envoi : 2027-01-20 10:00 Europe/Paris" in fields, fields
    assert not UTC_STAMP.search(alert_shown), UTC_STAMP.search(alert_shown)
    assert "until" not in alert_shown and "signal=" not in alert_shown
    data = hd.show(alert, as_="bob")["fields"]
    assert data["signal"] == "volume" and data["until"].endswith("Z")  # JSON: as stored


def test_ticket_show_names_the_clocks_steps_and_its_actor(hd):
    """A step the procedure took by itself (``route-complete``) and the ``system`` actor read
    as their labels in the history."""
    hd.now = NOW
    hd.account("jdupont", "wigii", "jean@example.org")
    tid = hd.open(
        "closure",
        "wigii",
        "jdupont",
        "jean@example.org",
        "reason=request",
        "system=https://relation.wigii.org",
        "day=2027-01-15",
        as_="alice",
    )["id"]
    shown = text(hd, "ticket", "show", tid, as_="alice")
    history = shown.split("Historique :")[1].split("\n\n")[0]
    assert "route-complete" not in history and " system " not in history, history
    assert "système" in history, history
    fields = shown.split("Champs :\n")[1].split("\n\n")[0]
    assert "  Motif : demande du titulaire" in fields, fields
    assert "  Jour de la désactivation : 2027-01-15" in fields, fields
    assert "reason" not in shown and "day=" not in shown


def test_policy_list_reads_at_80_columns_with_labels(hdi, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    out = text(hdi, "policy", "list")
    lines = out.splitlines()
    assert all(len(x) <= 80 for x in lines), out
    data = hdi.ok("policy", "list")
    keys = [p["key"] for p in data]
    # each provider on two lines: its key (what commands take) and name, then its zone and
    # queues by their labels, none folded onto a third
    assert [x.split()[0] for x in lines if not x.startswith(" ")] == keys, out
    assert len(lines) == 2 * len(keys), out
    indigos = lines[keys.index("indigos") * 2 : keys.index("indigos") * 2 + 2]
    assert indigos[0].split(None, 1)[1] == "Indigos Cloud"
    assert indigos[1].strip() == (
        "Europe/Paris · files : Réinit. mdp, Clôture, Abus, Réput. mail, Général"
    ), indigos
    for key in ("password-reset", "mail-reputation", "closure", "abuse", "general"):
        assert key not in out, key
    english = text(hdi, "policy", "list", "--lang", "en")
    assert "queues: Password, Closure, Abuse, Mail rep., General" in english
    assert "Réinit." not in english
    # JSON: the keys, and the short name beside the name
    row = next(p for p in data if p["key"] == "le-pic")
    assert row["queues"][:2] == ["password-reset", "closure"] and row["short_name"] == "Le PIC"


def test_dashboard_names_providers_by_their_short_names(hdi):
    """Le PIC's removal of a non-renewing member's data is a date its text makes binding:
    the dashboard names the provider by its short name (the JSON by its key)."""
    hdi.now = NOW
    hdi.account(
        "asso-velo",
        "le-pic",
        "tech@velo.example",
        "--kind",
        "member",
        "--field",
        "membership-end=2026-09-30",
    )
    tid = hdi.ok("sweep")["opened"][0]["ticket"]
    out = text(hdi, "dashboard", as_="bob")
    line = next(x for x in out.splitlines() if f"#{tid}" in x)
    assert "  Le PIC · " in line and "le-pic" not in line, line
    assert "Projet Internet" not in out
    binding = hdi.ok("dashboard", as_="bob")["binding"]
    assert [b["policy"] for b in binding] == ["le-pic"]  # JSON: the key


def test_listings_name_providers_roles_statuses_and_states_by_their_labels(indigos):
    """``account list``, ``volunteer list``, ``outbox list``/``show``, ``actions list`` and
    ``policy show`` print labels where they printed keys (provider, kind, status, role,
    state, service action), in French by default and in English on request; ``policy show``
    keeps each action's key, the word ``ticket act`` takes. The JSON keeps the keys."""
    hd, alert, abuse, _late = indigos
    hd.ok("volunteer", "add", "wanda", "--role", "techadmin", "--policy", "le-pic", as_="chloe")
    hd.act(alert, "suspend-sending", "--field", "until=2027-01-20T10:00", "--note", "x", as_="bob")

    accounts = text(hd, "account", "list", as_="bob")
    row = next(x for x in accounts.splitlines() if x.startswith("camille "))
    assert row.split()[1:4] == ["Indigos", "utilisateur", "envoi"], row
    assert "indigos" not in row and "active" not in row and " user " not in row
    assert hd.ok("account", "list", as_="bob")[0]["policy"] == "indigos"

    people = text(hd, "volunteer", "list")
    assert people.splitlines()[0].split() == [
        "Identifiant",
        "Rôle",
        "Fournisseurs",
        "Nom",
        "Retiré",
    ], people
    wanda = next(x for x in people.splitlines() if x.startswith("wanda "))
    assert "admin technique" in wanda and "Le PIC" in wanda and "le-pic" not in wanda, wanda
    bob = next(x for x in people.splitlines() if x.startswith("bob "))
    assert "astreinte" in bob and "oncall" not in bob and "tous" in bob, bob
    assert "technical admin" in text(hd, "volunteer", "list", "--lang", "en")
    assert {v["role"] for v in hd.ok("volunteer", "list")} >= {"oncall", "techadmin"}

    mails = text(hd, "outbox", "list", as_="bob")
    assert "en file" in mails and "pending" not in mails, mails
    first = hd.ok("outbox", "list", as_="bob")[0]
    assert first["status"] == "pending"
    shown = text(hd, "outbox", "show", first["id"], as_="bob")
    assert shown.startswith("À : ") and "\nObjet : " in shown and "Subject:" not in shown

    # (actions list: tests/test_service_actions.py, where a service is configured)
    policy = text(hd, "policy", "show", "indigos")
    lines = policy.splitlines()
    warn = lines.index(next(x for x in lines if x.split()[:1] == ["warn"]))
    assert "[bénévole]" in lines[warn] and "Charte Indigos" in lines[warn], lines[warn]
    assert "→ Averti" in lines[warn + 1], lines[warn + 1]
    for key in ("password-reset:", "[volunteer]", "[oncall]", "contacted", "→ warned"):
        assert key not in policy, key
    english = text(hd, "policy", "show", "indigos", "--lang", "en")
    assert "[volunteer]" in english and "→ Warned" in english


def test_saved_replies_are_listed_with_the_subject_they_leave_with(hdi):
    """``ticket replies``: each key (what ``--template`` takes) beside the subject its mail
    leaves with, in the asked language; the JSON stays the list of keys."""
    out = text(hdi, "ticket", "replies")
    line = next(x for x in out.splitlines() if x.startswith("resolved "))
    assert line.split(None, 1)[1] == "Votre demande est traitée", line
    english = text(hdi, "ticket", "replies", "--lang", "en")
    assert "Your request has been handled" in english and "traitée" not in english
    assert "Subject" not in out + english and "{" not in out + english
    assert hdi.ok("ticket", "replies") == ["received", "resolved", "write-from-registered"]


def test_account_show_labels_every_field_it_holds(hdi):
    """The fields the README names (``ips``, ``mail-login``) and a date a procedure noted
    (``membership-end``) read as labels, never as keys; the JSON keeps the keys."""
    hdi.account(
        "asso-velo",
        "le-pic",
        "tech@velo.example",
        "--kind",
        "member",
        "--field",
        "membership-end=2027-09-30",
        "--field",
        "ips=192.0.2.10",
        "--field",
        "mail-login=velo@le-pic.example",
    )
    shown = text(hdi, "account", "show", "asso-velo", as_="bob")
    for key in ("membership-end", "ips", "mail-login"):
        assert not any(x.startswith(key) for x in shown.splitlines()), shown
    lines = {x.split("  ")[0]: x for x in shown.splitlines() if "  " in x}
    assert lines["Fin de l'adhésion"].endswith("2027-09-30"), lines
    assert lines["Adresses IP"].endswith("192.0.2.10"), lines
    assert lines["Identifiant mail"].endswith("velo@le-pic.example"), lines
    english = text(hdi, "account", "show", "asso-velo", "--lang", "en", as_="bob")
    assert "IP addresses" in english and "Membership ends" in english
    fields = hdi.ok("account", "show", "asso-velo", as_="bob")["fields"]
    assert {"membership-end", "ips", "mail-login"} <= set(fields)
