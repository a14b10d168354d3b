"""The role × action matrix: every step reserved to a role is refused to the roles below
it, in the core (so the CLI and the TUI alike), and the trainer works on training
databases only."""

from __future__ import annotations

import pytest
from sqlmodel import select

from helpdesk.storage import db
from helpdesk.workflow import engine
from helpdesk.base import roles
from helpdesk.service import api
from helpdesk.rules.context import Actor
from helpdesk.base.errors import Refused
from helpdesk.storage.models import Transition, Workflow


def _matrix(url):
    with db.read_session(url) as s:
        rows = s.exec(
            select(Workflow.policy_key, Workflow.queue, Transition.key, Transition.role).join(
                Transition, Transition.workflow_id == Workflow.id
            )
        )
        return sorted({r for r in rows if r[3] != "volunteer"})


def test_role_matrix(db_url):
    cases = _matrix(db_url)
    assert len(cases) > 20
    accounts = {}
    with db.write_session(db_url) as s:
        for policy in {c[0] for c in cases}:
            accounts[policy] = api.add_account(
                s, login="acc", policy=policy, email="acc@example.org", kind="member"
            ).login
    for policy, queue, action, required in cases:
        fields = {"closure": {"reason": "request"}, "abuse": {"category": "compromise"}}.get(
            queue, {}
        )
        if policy == "communesplone" and queue == "closure":
            fields = {"reason": "non-renewal"}
        for role in ("volunteer", "oncall", "techadmin"):
            with db.write_session(db_url) as s:
                t = api.open_ticket(
                    s,
                    queue=queue,
                    policy=policy,
                    actor=Actor("bob", "oncall"),
                    account_login="acc",
                    fields=fields,
                ).ticket
                views = {a.key: a for a in engine.actions(s, t, Actor("x", role))}
                view = views[action]
                allowed_by_role = roles.may(role, required, False)
                if not allowed_by_role:
                    assert view.allowed is False, (policy, queue, action, role)
                    if view.rule != "state":
                        assert view.rule == "role", (policy, queue, action, role, view.rule)
                    with pytest.raises(Refused) as exc:
                        engine.apply(
                            s,
                            t.id,
                            action,
                            Actor("x", role),
                            note="n",
                            fields={"until": "2099-01-01"},
                            checks=["notice-posted"],
                        )
                    assert exc.value.rule in ("role", "state")
                else:
                    assert view.rule != "role", (policy, queue, action, role)
                s.rollback()


def test_trainer_only_on_training_databases(db_url):
    from helpdesk.storage.models import Meta

    with db.write_session(db_url) as s:
        api.add_account(s, login="acc", policy="indigos", email="acc@example.org")
        with pytest.raises(Refused) as exc:
            api.open_ticket(
                s,
                queue="abuse",
                policy="indigos",
                actor=Actor("tom", "trainer"),
                account_login="acc",
                fields={"category": "spam"},
            )
        assert exc.value.rule == "training-only"
    with db.write_session(db_url) as s:
        s.add(Meta(key="training", value="yes"))
    with db.write_session(db_url) as s:
        t = api.open_ticket(
            s,
            queue="abuse",
            policy="indigos",
            actor=Actor("tom", "trainer"),
            account_login="acc",
            fields={"category": "spam", "urgent": "yes"},
        ).ticket
        out = engine.apply(
            s, t.id, "suspend", Actor("tom", "trainer"), note="demonstrating the emergency path"
        )
        assert out.ticket.state == "suspended"


def test_cli_refuses_a_volunteer_an_oncall_step(hd):
    hd.now = "2026-11-23T10:00:00Z"
    hd.account("camille", "indigos", "camille@example.org")
    t = hd.open("abuse", "indigos", "camille", "", "category=spam", "urgent=yes")
    refusal = hd.refused(
        "ticket", "act", t["id"], "suspend", "--note", "spam run", as_="alice", rule="role"
    )
    assert (
        "astreinte" in refusal["message"]
    )  # the role by its label (rule "role" is the stable key)
    r = hd.run(
        "ticket", "act", t["id"], "suspend", "--note", "spam run", as_="alice", json_out=False
    )
    assert r.code == 1 and "astreinte" in r.err
