"""CommunesPlone, convention CPAS (seeds/002): no credentials by e-mail, no help-desk for
end users, contract dates, the sanction ladder up to the judicial authorities."""

from __future__ import annotations

import os
import pty
import sys

import pytest

from tests.conftest import ROOT

NOW = "2026-06-15T10:00:00+02:00"


@pytest.fixture
def cp(hd):
    hd.now = NOW
    hd.account(
        "cpas-namur",
        "communesplone",
        "informatique@cpas-namur.example",
        "--kind",
        "member",
        "--org",
        "CPAS de Namur",
        "--contact",
        "secretariat@cpas-namur.example",
        "--field",
        "signature-date=2025-06-10",
    )
    hd.account(
        "agent.dupuis",
        "communesplone",
        "dupuis@cpas-namur.example",
        "--kind",
        "end-user",
        "--org",
        "CPAS de Namur",
    )
    return hd


def run_on_a_terminal(hd, *args) -> tuple[int, str, str]:
    """Run the CLI with a controlling terminal (the one-time code is shown there only),
    stdout going to a file as a script would capture it."""
    out_path = hd.tmp_path / "stdout.txt"
    cmd = [sys.executable, "-m", "helpdesk", "--db", hd.url, "--now", hd.now, *map(str, args)]
    pid, fd = pty.fork()
    if pid == 0:  # child: the pty is its terminal; stdout is redirected to a file
        out = os.open(str(out_path), os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        os.dup2(out, 1)
        os.chdir(ROOT)
        os.execve(sys.executable, cmd, hd.env)
    chunks = []
    while True:
        try:
            data = os.read(fd, 4096)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    _, status = os.waitpid(pid, 0)
    return (
        os.waitstatus_to_exitcode(status),
        out_path.read_text(),
        b"".join(chunks).decode(errors="replace"),
    )


def test_reset_never_sends_access_information_by_mail(cp):
    hd = cp
    t = hd.open("password-reset", "communesplone", "cpas-namur", "secretariat@cpas-namur.example")
    tid = t["id"]
    hd.refused(
        "ticket",
        "act",
        tid,
        "issue-reset-link",
        rule="credentials_by_mail_allowed",
        cite="CommunesPlone art. 6.7",
    )
    hd.refused("ticket", "act", tid, "give-code-by-phone", rule="checklist")

    # Without a terminal, the code cannot be shown: nothing happens.
    r = hd.run(
        "ticket",
        "act",
        tid,
        "give-code-by-phone",
        "--check",
        "called-registered-number",
        as_="alice",
    )
    assert r.code == 2 and "terminal" in r.err
    assert hd.show(tid)["state"] == "received"

    code, stdout, terminal = run_on_a_terminal(
        hd,
        "--as",
        "alice",
        "ticket",
        "act",
        tid,
        "give-code-by-phone",
        "--check",
        "called-registered-number",
        "--json",
    )
    assert code == 0, terminal
    secret = next(
        line.strip()
        for line in terminal.splitlines()
        if line.strip().count("-") == 2 and len(line.strip()) == 14
    )
    assert secret not in stdout  # not in what a script or a log would capture
    view = hd.show(tid)
    assert view["state"] == "reset-issued"
    mails = hd.ok("outbox", "list", "--ticket", tid)
    assert [m["template"] for m in mails] == ["reset-done-notice"]
    notice = hd.ok("outbox", "show", mails[0]["id"])
    assert secret not in notice["body"] and "[[reset-link]]" not in notice["body"]
    assert "6.7" in notice["body"]  # the mail says only that a reset took place, and why no code
    assert secret not in str(view)

    # The code works once, until it expires.
    r = hd.run("reset", "redeem", stdin=secret + "\n")
    assert r.code == 0 and r.json["account"] == "cpas-namur"
    assert hd.run("reset", "redeem", stdin=secret + "\n").code == 1
    if hd.url.startswith("sqlite"):
        raw = open(hd.url.removeprefix("sqlite:///"), "rb").read()
        assert secret.encode() not in raw and secret.replace("-", "").encode() not in raw


def test_end_users_are_redirected_to_their_institution(cp):
    hd = cp
    t = hd.open("password-reset", "communesplone", "agent.dupuis", "dupuis@cpas-namur.example")
    tid = t["id"]
    refusal = hd.refused(
        "ticket",
        "act",
        tid,
        "give-code-by-phone",
        "--check",
        "called-registered-number",
        rule="requester_served",
        cite="CommunesPlone art. 3.4",
    )
    assert "CPAS" in refusal["message"]
    t = hd.act(tid, "redirect")
    assert t["state"] == "redirected"
    body = hd.ok("outbox", "show", hd.ok("outbox", "list", "--ticket", tid)[0]["id"])["body"]
    assert "CPAS" in body and "help-desk" in body


def test_non_renewal_dates_letter_and_late_request(cp):
    hd = cp
    # Signed on 10 June 2025: runs from 1 July 2025; renewals on 1 July 2026, 2027, 2028;
    # 48 months at most, so 1 July 2029. Asked on 15 June 2026: later than one month
    # before the 1 July 2026 renewal, so it ends at the following one, 1 July 2027.
    t = hd.open(
        "closure",
        "communesplone",
        "cpas-namur",
        "secretariat@cpas-namur.example",
        "reason=non-renewal",
    )
    tid = t["id"]
    d = t["deadlines"]
    assert d["contract-start"] == "2025-06-30T22:00:00Z"
    assert d["next-renewal"] == "2026-06-30T22:00:00Z"
    assert d["notice-limit"] == "2026-05-31T22:00:00Z"
    assert d["contract-end"] == "2027-06-30T22:00:00Z"
    assert d["contract-max-end"] == "2029-06-30T22:00:00Z"
    late = next(x for x in t["deadline_details"] if x["name"] == "contract-end")
    assert late["note"] == "late"

    refusal = hd.refused(
        "ticket", "act", tid, "confirm-non-renewal", rule="field_true", cite="CommunesPlone art. 8"
    )
    assert "courrier" in refusal["message"] or "letter" in refusal["message"]
    hd.bad(
        "ticket",
        "open",
        "closure",
        "--policy",
        "communesplone",
        "--account",
        "cpas-namur",
        "--field",
        "reason=request",
        as_="alice",
    )
    t = hd.act(tid, "confirm-non-renewal", "--field", "letter=yes")
    assert t["state"] == "ending"
    body = hd.ok("outbox", "show", hd.ok("outbox", "list", "--ticket", tid)[-1]["id"])["body"]
    assert "1 juillet 2027" in body
    hd.refused(
        "ticket", "act", tid, "deactivate", rule="deadline_reached", now="2027-06-30T12:00:00+02:00"
    )
    sweep = hd.ok("sweep", now="2027-07-01T00:00:00+02:00")
    assert sweep["taken"] == [{"ticket": tid, "action": "deactivate", "state": "deactivated"}]


def test_non_renewal_in_time_ends_at_the_next_renewal(cp):
    hd = cp
    t = hd.open(
        "closure",
        "communesplone",
        "cpas-namur",
        "secretariat@cpas-namur.example",
        "reason=non-renewal",
        "request-date=2026-05-31",
    )
    assert t["deadlines"]["contract-end"] == "2026-06-30T22:00:00Z"


def test_maximum_term_opens_the_closure_a_month_ahead(cp):
    hd = cp
    assert hd.ok("sweep", now="2029-05-31T10:00:00+02:00")["opened"] == []
    sweep = hd.ok("sweep", now="2029-06-01T10:00:00+02:00")
    assert [(o["account"], o["reason"]) for o in sweep["opened"]] == [("cpas-namur", "non-renewal")]
    tid = sweep["opened"][0]["ticket"]
    t = hd.act(
        tid, "confirm-non-renewal", now="2029-06-01T10:00:00+02:00"
    )  # no letter needed: the term is reached
    assert t["deadlines"]["contract-end"] == "2029-06-30T22:00:00Z"


def test_sanction_ladder_warning_suspension_authorities(cp):
    hd = cp
    t = hd.open("abuse", "communesplone", "cpas-namur", "cert@example.be", "category=security")
    tid = t["id"]
    hd.refused(
        "ticket",
        "act",
        tid,
        "suspend",
        "--note",
        "intrusion attempts",
        as_="bob",
        rule="prior_step_or_grave",
        cite="CommunesPlone art. 6.11",
    )
    hd.refused(
        "ticket",
        "act",
        tid,
        "report-authorities",
        "--note",
        "x",
        as_="bob",
        rule="prior_step_or_grave",
        cite="CommunesPlone art. 6.11",
    )
    t = hd.act(tid, "warn", "--note", "ZMI access shared with a third party")
    assert t["state"] == "warned"
    hd.refused("ticket", "act", tid, "suspend", "--note", "again", as_="alice", rule="role")
    t = hd.act(tid, "suspend", "--note", "access used to attack other members", as_="bob")
    assert t["state"] == "suspended"
    hd.bad("ticket", "act", tid, "report-authorities", as_="bob")
    t = hd.act(tid, "report-authorities", "--note", "complaint filed with the police", as_="bob")
    assert t["state"] == "reported"
    steps = [r["step"] for r in hd.ok("account", "show", "cpas-namur")["sanctions"]]
    assert steps == ["warning", "suspension", "authorities"]


def test_grave_facts_may_skip_the_warning_with_a_reason(cp):
    hd = cp
    t = hd.open(
        "abuse", "communesplone", "cpas-namur", "cert@example.be", "category=illegal", "grave=yes"
    )
    t = hd.act(
        t["id"], "suspend", "--note", "illegal content published on the CPAS site", as_="bob"
    )
    assert t["state"] == "suspended"
