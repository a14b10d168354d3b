"""Two public corpora of real bounces through ``helpdesk ingest mail``, in one run on one
database (SQLite, or PostgreSQL with ``HELPDESK_TEST_PG``):

- sisimai's ``set-of-emails`` (``maildir/bsd``, 629 mails), committed under
  ``tests/corpus/sisimai`` with its licence and the commit it was taken from;
- the test mails of Mailman's bounce detectors (``flufl.bounce``, 115 mails), which Debian's
  ``python3-flufl.bounce`` ships (``.ci/run`` installs it).

Every mail is delivered to a provider's intake address (le-pic's ``picca@le-pic.org``), as
that provider's mail server would. What each one must become is said by the corpus itself:
its bounces (sisimai's ``lhost-``, ``rhost-`` and ``rfc3464-`` files, flufl's detector
tests) are recorded as bounces and open no ticket; its automatic answers (RFC 3834) and
its feedback reports are quarantined with the reason that is true of them, the reports by
the ARF reader; the one mail flufl keeps as "not a bounce" (a person's reply) is a person
writing. A mail that lands nowhere, elsewhere, or with another reason fails the test.

le-pic is given a member (whose mail one feedback report is about) and a second mail
domain (whose mail some refusals are about): those, and only those, are mail-reputation
signals for le-pic; refusals of others' mail are unmatched bounces."""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from email import message_from_bytes
from email import policy as email_policy
from pathlib import Path

import pytest

from tests.ingest.mailmaker import NOW

SISIMAI = Path(__file__).resolve().parents[1] / "corpus" / "sisimai" / "maildir" / "bsd"
FLUFL = Path("/usr/lib/python3/dist-packages/flufl/bounce/tests/data")
INTAKE = "picca@le-pic.org"

# What flufl's own tests say is no bounce (flufl/bounce/testing/helpers.py).
FLUFL_PERSON = {"groupwise_03.txt"}  # "Not a bounce but has confused groupwise": a reply
FLUFL_AUTOMATIC = {"qmail_08.txt"}  # an auto-reply ("Precedence: auto_reply")
# sisimai files Apple Mail's automatic unsubscribe answer with its ARF samples; it is none.
SISIMAI_AUTOMATIC = {"arf-26.eml"}

BOUNCE_OUTCOMES = {"matched", "unmatched", "delivered"}
KINDS = {"failed", "delayed", "blocked", "complaint", "delivered"}
NO_ACCOUNT = re.compile(r"aucun compte pour l'expéditeur signalé \((.*)\)$")
AUTOMATIC = re.compile(r"message automatique \((.*)\) qui ne répond à aucun ticket$")
FEEDBACK_TYPE = re.compile(r"le type de retour '([\w-]+)' ne demande aucune action")


def _expected(corpus: str, name: str, raw: bytes) -> str:
    """What the corpus says this mail is: bounce, feedback, automatic or person."""
    if corpus == "flufl":
        if name in FLUFL_PERSON:
            return "person"
        return "automatic" if name in FLUFL_AUTOMATIC else "bounce"
    if name.startswith("rfc3834-") or name in SISIMAI_AUTOMATIC:
        return "automatic"
    if name.startswith("arf-") or re.search(rb'"notificationType"\s*:\s*"Complaint"', raw):
        return "feedback"  # ARF, Microsoft's JMRP form, an Amazon SES complaint
    return "bounce"


def _automatic_is_true(why: str, raw: bytes) -> bool:
    """The reason an automatic answer was set aside names what the mail says of itself."""
    msg = message_from_bytes(raw, policy=email_policy.compat32)
    auto = str(msg.get("auto-submitted", "")).strip().lower()
    precedence = str(msg.get("precedence", "")).strip().lower()
    if why == "bulk/auto-reply":
        return precedence in ("bulk", "junk", "auto_reply") or bool(msg.get("x-autoreply"))
    if why.startswith("une réponse automatique"):
        return not auto or auto == "no"  # said by its subject only
    return why == auto


def _no_account_is_true(who: str, known: set[str], raw: bytes) -> bool:
    """Every sender a no-account reason names is one the report names, and no account's
    address or IP."""
    named = re.findall(r"[\w.+=-]+@[\w.-]+|\d{1,3}(?:\.\d{1,3}){3}", who)
    if not named:
        return who == "the report names no sender, login or IP"
    return all(n.lower().encode() in raw.lower() and n.lower() not in known for n in named)


@pytest.mark.skipif(
    not FLUFL.is_dir(), reason="Debian's python3-flufl.bounce (its test mails) is not installed"
)
def test_public_bounce_corpora_open_no_ticket_and_every_mail_lands_where_it_belongs(hd, tmp_path):
    box = tmp_path / "corpora"
    for sub in ("cur", "new", "tmp"):
        (box / sub).mkdir(parents=True)
    expected: dict[str, str] = {}
    raws: dict[str, bytes] = {}
    digest_of: dict[str, str] = {}  # file -> sha256 of its bytes
    for corpus, root, pattern in (("sisimai", SISIMAI, "*.eml"), ("flufl", FLUFL, "*.txt")):
        files = sorted(root.glob(pattern))
        assert len(files) == {"sisimai": 629, "flufl": 115}[corpus]
        for f in files:
            raw = f.read_bytes()
            name = f"{corpus}__{f.name}"
            digest_of[name] = hashlib.sha256(raw).hexdigest()
            expected[name] = _expected(corpus, f.name, raw)
            raws[name] = raw
            (box / "new" / name).write_bytes(f"Delivered-To: {INTAKE}\n".encode() + raw)

    # One of le-pic's members sent the mail a Yahoo feedback report (arf-02) is about, and
    # le-pic sends mail from example.jp: some of the corpus's refusals are of its mail.
    hd.account("shironeko", "le-pic", "shironeko@example.com")
    hd.ok("policy", "set", "le-pic", "mail_domains=le-pic.org, example.jp")
    summary = hd.ok("ingest", "mail", box, now=NOW)
    assert summary["errors"] == []
    items = {Path(i["item"]).name: i for i in summary["items"]}
    assert set(items) == set(expected)  # none lands nowhere

    quarantine = {q["id"]: q for q in hd.ok("quarantine", "list", "--limit", "10000")}
    accounts = hd.ok("account", "list")
    known = {
        a.lower()
        for acc in accounts
        for a in [acc.get("email") or "", *(acc.get("contacts") or [])]
        + re.findall(r"[\d.]{7,15}", str(acc.get("fields", {}).get("ips", "")))
        if a
    }

    outcomes: Counter[tuple[str, str]] = Counter()
    wrong: list[tuple[str, str, dict]] = []
    for name, item in sorted(items.items()):
        what = expected[name]
        outcome = item["outcome"]
        if outcome == "duplicate":  # only the very bytes of another file, read once
            outcomes[(what, "duplicate")] += 1
            copies = [n for n, d in digest_of.items() if d == digest_of[name]]
            read = [n for n in copies if items[n]["outcome"] != "duplicate"]
            if len(copies) < 2 or len(read) != 1 or "même contenu" not in item["reason"]:
                wrong.append((name, what, item))
            continue
        reason = item.get("reason") or ""
        kind = quarantine[item["quarantine"]]["kind"] if outcome == "quarantined" else ""
        if what == "bounce":
            ok = (
                outcome == "recorded"
                and item.get("bounce") in BOUNCE_OUTCOMES
                and item.get("kind") in KINDS
            )
            label = f"bounce {item.get('bounce')} {item.get('kind')}"
        elif what == "feedback" and outcome in ("opened", "updated"):
            # About our member's mail: a complaint signal on that account, no abuse ticket.
            ok = (item.get("queue"), item.get("signal"), item.get("account")) == (
                "mail-reputation",
                "complaint",
                "shironeko",
            ) and b"shironeko@example.com" in raws[name]
            label = f"{outcome}: mail-reputation complaint on the account"
        elif what == "feedback":
            # The ARF reader (or, for the non-ARF forms, the bounce reader's complaint) says
            # why it can act on no one: no account sent it, or its type asks nothing.
            no_account = NO_ACCOUNT.match(reason)
            feedback_type = FEEDBACK_TYPE.match(reason)
            ok = outcome == "quarantined" and (
                (
                    no_account is not None
                    and _no_account_is_true(no_account.group(1), known, raws[name])
                )
                or (
                    feedback_type is not None
                    and re.search(
                        rb"(?im)^Feedback-Type:\s*" + re.escape(feedback_type.group(1).encode()),
                        raws[name],
                    )
                    is not None
                )
            )
            if b"message/feedback-report" in raws[name]:
                ok = ok and kind == "arf"  # a real ARF report is read as one
            label = f"quarantined {kind}: " + ("no account" if no_account else "feedback type")
        elif what == "automatic":
            auto = AUTOMATIC.match(reason)
            ok = (
                outcome == "quarantined"
                and auto is not None
                and _automatic_is_true(auto.group(1), raws[name])
            )
            label = "quarantined: automatic answer"
        else:  # a person writing to the provider: a general ticket, read by a volunteer
            ok = outcome == "opened"
            label = "opened"
        outcomes[(what, label)] += 1
        if not ok:
            wrong.append((name, what, item))
    report = "\n".join(f"{n:4d}  {what}: {label}" for (what, label), n in sorted(outcomes.items()))
    print(f"\n{len(items)} mails, {len(accounts)} accounts\n{report}")
    assert wrong == [], report

    # No bounce, automatic answer or report opened a ticket: only the person's general ticket,
    # and the mail-reputation signals for le-pic about mail le-pic sent: a refusal or a
    # complaint about its member's mail, or a refusal that names no sender (returned to
    # le-pic's address). A refusal of someone else's mail is no signal for le-pic.
    tickets = hd.ok("ticket", "list", "--all")
    assert sorted(t["queue"] for t in tickets if t["queue"] != "mail-reputation") == ["general"]
    assert (
        summary["counts"]["opened"]
        == outcomes[("person", "opened")]
        + outcomes[("feedback", "opened: mail-reputation complaint on the account")]
    )
    assert outcomes[("feedback", "opened: mail-reputation complaint on the account")] == 1
    signals = Counter()
    for t in tickets:
        if t["queue"] == "mail-reputation":
            fields = hd.show(t["id"])["fields"]
            assert t["policy"] == "le-pic", t
            assert t["account"] == "shironeko" or fields.get("domain") == "example.jp", fields
            signals[fields["signal"]] += 1
    assert signals["blocklist"] and signals["complaint"], signals
    alerted = [i for i in items.values() if i.get("alert")]
    assert alerted and all(i.get("kind") in ("blocked", "complaint") for i in alerted)
    assert summary["counts"]["alerts_opened"] + summary["counts"]["alerts_updated"] == len(alerted)
    refused = [i for i in items.values() if i.get("kind") == "blocked"]
    assert len(refused) > len(alerted)  # most refuse others' mail: recorded, no signal
    for q in quarantine.values():
        assert "internal error" not in q["reason"] and "erreur interne" not in q["reason"], q
