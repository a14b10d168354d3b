"""When the scheduled jobs last ran: ``sweep``, ``outbox send``, ``actions run``, ``ingest``.

Each run leaves one row in the ``meta`` table (``run:<job>``, JSON: when it started and
finished, whether it went through, and its counts), overwritten by the next run, so that
``helpdesk doctor`` can say a timer stopped and ``helpdesk metrics`` can give the time of
the last sweep. No table of its own: a run is a fact about the database, like its settings.
"""

from __future__ import annotations

import json
from datetime import datetime

from sqlmodel import Session, col, select

from helpdesk.base import clock
from helpdesk.storage.models import Meta

PREFIX = "run:"
#: The jobs a timer runs, and how long after its last run each is late (a timer every 5 or
#: 15 minutes that has not run for this long has stopped).
LATE = {"sweep": ("PT2H", 2 * 3600), "outbox-send": ("PT1H", 3600)}


def record(url: str, job: str, *, started: datetime, ok: bool, counts: dict | None = None) -> None:
    """Write the outcome of one run (its own short transaction; never fails the job)."""
    from helpdesk.storage import db

    value = json.dumps(
        {
            "started": clock.iso(started),
            "finished": clock.iso(clock.now()),
            "ok": bool(ok),
            "counts": counts or {},
        },
        sort_keys=True,
    )
    with db.write_session(url) as s:
        row = s.get(Meta, PREFIX + job) or Meta(key=PREFIX + job)
        row.value = value
        s.add(row)


def last(session: Session, job: str) -> dict | None:
    row = session.get(Meta, PREFIX + job)
    return _decode(row.value) if row is not None else None


def every(session: Session) -> dict[str, dict]:
    rows = session.exec(select(Meta).where(col(Meta.key).startswith(PREFIX)))
    return {r.key[len(PREFIX) :]: d for r in rows if (d := _decode(r.value)) is not None}


def _decode(value: str) -> dict | None:
    try:
        data = json.loads(value)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None
