"""Who may change anything at all, and who may take a step reserved to a role."""

from __future__ import annotations

from sqlmodel import Session

from helpdesk.base.errors import Refused
from helpdesk.base.i18n import _
from helpdesk.base.roles import RANK, may
from helpdesk.storage.models import Meta
from helpdesk.rules.context import Actor


def is_training(session: Session) -> bool:
    cache = session.info.get("training")
    if cache is None:
        meta = session.get(Meta, "training")
        cache = bool(meta and meta.value == "yes")
        session.info["training"] = cache
    return cache


def check_writer(session: Session, actor: Actor) -> None:
    """Who may change anything at all: a known role; a trainer only on a training database."""
    if actor.role == "trainer" and not is_training(session):
        raise Refused("training-only", _("the trainer role works only on training databases"))
    if actor.role not in RANK and not actor.is_system and actor.role != "trainer":
        raise Refused("role", _("unknown role {role}").format(role=actor.role))


def require_role(session: Session, actor: Actor, role: str) -> None:
    """Refuse an action outside tickets (an outbox decision, a setting) to a lower role."""
    check_writer(session, actor)
    if not may(actor.role, role, is_training(session)):
        raise Refused("role", _("reserved to the {role} role (you are {mine})").format(role=role, mine=actor.role))
