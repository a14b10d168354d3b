"""A role scoped to providers (issue 13, migration 0006) reads only its providers' mails and
no quarantined input: the outbox and the quarantine were read without the scope."""

from __future__ import annotations

from tests.ingest.mailmaker import NOW, mail, maildir


def _two_providers(attacker) -> tuple[int, int]:
    """wanda: a techadmin for Indigos only; one Indigos and one Wigii ticket with a mail each."""
    attacker.ok(
        "volunteer", "add", "wanda", "--role", "techadmin", "--policy", "indigos", as_="chloe"
    )
    for login, policy in (("sam", "indigos"), ("jdupont", "wigii")):
        attacker.ok(
            "account",
            "add",
            login,
            "--policy",
            policy,
            "--email",
            f"{login}@example.org",
            as_="chloe",
        )
    ti = attacker.ok(
        "ticket",
        "open",
        "closure",
        "--policy",
        "indigos",
        "--account",
        "sam",
        "--requester",
        "sam@example.org",
        "--field",
        "reason=request",
        as_="bob",
    )["id"]
    tw = attacker.ok(
        "ticket",
        "open",
        "password-reset",
        "--policy",
        "wigii",
        "--account",
        "jdupont",
        "--requester",
        "jdupont@example.org",
        as_="bob",
    )["id"]
    for tid in (ti, tw):
        attacker.ok(
            "ticket", "reply", tid, "--text", "Bonjour\u202e, nous avons bien reçu.", as_="bob"
        )
    return ti, tw


def test_the_outbox_is_read_within_the_scope(attacker):
    ti, tw = _two_providers(attacker)
    every = attacker.ok("outbox", "list", as_="chloe")
    assert {m["ticket"] for m in every} >= {ti, tw}
    mine = attacker.ok("outbox", "list", as_="wanda")
    assert mine and {m["ticket"] for m in mine} == {ti}
    other = next(m["id"] for m in every if m["ticket"] == tw)
    refusal = attacker.refused("outbox", "show", other, as_="wanda", rule="scope")
    assert "indigos" in refusal["message"] and "wigii" in refusal["message"]
    attacker.refused("outbox", "list", "--ticket", tw, as_="wanda", rule="scope")
    own = next(m["id"] for m in mine)
    assert attacker.ok("outbox", "show", own, as_="wanda")["ticket"] == ti
    assert attacker.ok("outbox", "bounces", as_="wanda") == []
    attacker.refused("outbox", "bounces", "--unmatched", as_="wanda", rule="scope")
    attacker.bad("outbox", "list", "--status", "bogus", as_="chloe")  # not an empty list


def test_the_quarantine_is_not_read_by_a_scoped_role(attacker, tmp_path):
    _two_providers(attacker)
    stray = mail("x <x@example.net>", "nobody@elsewhere.example", "Salut", "texte", message_id=None)
    attacker.ok("ingest", "mail", maildir(tmp_path / "box", [stray]), "--now", NOW, as_="chloe")
    rows = attacker.ok("quarantine", "list", as_="chloe")
    assert len(rows) == 1
    refusal = attacker.refused("quarantine", "list", as_="wanda", rule="scope")
    assert "la quarantaine" in refusal["message"] or "quarantine" in refusal["message"]
    attacker.refused(
        "quarantine", "show", rows[0]["id"], "--reason", "triage", as_="wanda", rule="scope"
    )
    # The refused read is not recorded as a read; the allowed one is.
    before = len(attacker.events("read-quarantine"))
    attacker.ok("quarantine", "show", rows[0]["id"], "--reason", "triage", as_="chloe")
    assert len(attacker.events("read-quarantine")) == before + 1
