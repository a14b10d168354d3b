"""Who may change anything at all, and who may take a step reserved to a role."""

from __future__ import annotations

from typing import TYPE_CHECKING

from helpdesk.base.errors import Refused
from helpdesk.base.i18n import _
from helpdesk.base.roles import RANK, Actor, may

if TYPE_CHECKING:  # a read that only checks a scope (ticket list) loads no ORM
    from sqlmodel import Session


def is_training(session: Session) -> bool:
    cache = session.info.get("training")
    if cache is None:
        from helpdesk.storage.models import Meta

        meta = session.get(Meta, "training")
        cache = bool(meta and meta.value == "yes")
        session.info["training"] = cache
    return cache


def scope_refusal(actor: Actor, policy_key: str | None) -> Refused:
    return Refused(
        "scope",
        _("{login}'s role covers {scope} only, not {policy}").format(
            login=actor.login, scope=", ".join(actor.policies), policy=policy_key
        ),
    )


def check_scope(actor: Actor, policy_key: str | None) -> None:
    """Refuse a volunteer whose role is scoped to other providers (``volunteer add --policy``)."""
    if not actor.covers(policy_key):
        raise scope_refusal(actor, policy_key)


def check_unscoped(actor: Actor, what: str) -> None:
    """Refuse a role scoped to providers what belongs to no provider it could be checked
    against (``what``: a person's words for it, e.g. the quarantine, whose input no provider
    was found for): only a role covering every provider reads it."""
    if actor.policies:
        raise Refused(
            "scope",
            _(
                "{login}'s role covers {scope} only; {what} belongs to no provider known to "
                "be among them: it needs a role that covers every provider"
            ).format(login=actor.login, scope=", ".join(actor.policies), what=what),
        )


def check_writer(session: Session, actor: Actor, policy_key: str | None = None) -> None:
    """Who may change anything at all: a known role; a trainer only on a training database;
    a role scoped to providers only within them."""
    if actor.role == "trainer" and not is_training(session):
        raise Refused("training-only", _("the trainer role works only on training databases"))
    if actor.role not in RANK and not actor.is_system and actor.role != "trainer":
        raise Refused("role", _("unknown role {role}").format(role=actor.role))
    check_scope(actor, policy_key)


def require_role(session: Session, actor: Actor, role: str, policy_key: str | None = None) -> None:
    """Refuse an action outside tickets (an outbox decision, a setting) to a lower role, or
    to a role scoped to other providers than ``policy_key``."""
    check_writer(session, actor, policy_key)
    if not may(actor.role, role, is_training(session)):
        from helpdesk.base.labels import label  # the labels' file is read for a refusal only

        raise Refused(
            "role",
            _("reserved to the {role} role (you are {mine})").format(
                role=label("role", role), mine=label("role", actor.role)
            ),
        )
