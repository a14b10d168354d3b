"""Reading the quarantine: input an ingest run could not use, kept raw with the reason.

``helpdesk quarantine list`` shows what waits for a volunteer; ``show ID`` its reason and a
cleaned preview (``--raw`` writes the exact bytes to standard output, e.g. to feed them back
with ``helpdesk ingest mail FILE --policy KEY --queue QUEUE`` once triaged). An item that a
later run could use (an account added meanwhile) is marked released by that run.
"""

from __future__ import annotations

from sqlalchemy import func
from sqlmodel import Session, col, select

from helpdesk.base import clock
from helpdesk.base.errors import NotFound
from helpdesk.base.i18n import _
from helpdesk.rules.access import check_unscoped
from helpdesk.rules.context import Actor
from helpdesk.storage.models import Quarantine
from helpdesk.base.untrusted import clean, one_line

PREVIEW_CHARS = 4000


def check_reader(actor: Actor | None) -> None:
    """Quarantined input is there because no provider could be found for it (or it could not
    be read): a role scoped to some providers does not read it (rule ``scope``)."""
    if actor is not None:
        check_unscoped(actor, _("the quarantine"))


def rows(
    session: Session,
    *,
    actor: Actor | None = None,
    kind: str | None = None,
    include_released: bool = False,
    limit: int = 100,
    offset: int = 0,
) -> list[dict]:
    check_reader(actor)
    q = select(  # type: ignore[call-overload]  # sqlmodel types select() up to 4 columns
        Quarantine.id,
        Quarantine.received_at,
        Quarantine.kind,
        Quarantine.source,
        Quarantine.reason,
        Quarantine.sha256,
        Quarantine.released,
        func.length(Quarantine.content),
    )
    if kind:
        q = q.where(Quarantine.kind == kind)
    if not include_released:
        q = q.where(Quarantine.released == False)  # noqa: E712
    out = []
    for qid, at, k, source, reason, digest, released, size in session.exec(
        q.order_by(col(Quarantine.id).desc()).offset(offset).limit(limit)
    ):
        out.append(
            {
                "id": qid,
                "received_at": clock.iso(at),
                "kind": k,
                "source": one_line(source, 200),
                "reason": one_line(reason, 500),
                "sha256": digest,
                "bytes": size,
                "released": released,
            }
        )
    return out


def counts(session: Session) -> dict[str, int]:
    return {
        kind: n
        for kind, n in session.exec(
            select(Quarantine.kind, func.count())
            .where(Quarantine.released == False)
            .group_by(col(Quarantine.kind))  # noqa: E712
        )
    }


def get(session: Session, quarantine_id: int, actor: Actor | None = None) -> Quarantine:
    check_reader(actor)
    row = session.get(Quarantine, quarantine_id)
    if row is None:
        raise NotFound(f"nothing #{quarantine_id} in quarantine")
    return row


def view(row: Quarantine) -> dict:
    text = row.content[: PREVIEW_CHARS * 4].decode("utf-8", "replace")
    return {
        "id": row.id,
        "received_at": clock.iso(row.received_at),
        "kind": row.kind,
        "source": clean(row.source),
        "reason": clean(row.reason),
        "sha256": row.sha256,
        "bytes": len(row.content),
        "released": row.released,
        "preview": clean(text)[:PREVIEW_CHARS],
    }
