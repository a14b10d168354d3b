"""What the screens ask of the core, one call per user action.

Every public method opens its own database session, does its work and closes it: the
screens call these from thread workers, never from the event loop, and never share a
session across threads. The results are plain data (dataclasses, dicts, tuples) so they
can cross back to the UI thread. This module does not import Textual.

What the app shows first (who is acting, the dashboard, a queue's rows) is read with
SQLAlchemy Core on ``helpdesk.storage.tables``: the ORM, the models, the engine and the
service API load when a ticket is first opened or changed, not before the first rows are
on the screen (benchmarks/tui_bench.py, "queue rows").
"""

from __future__ import annotations

import sqlite3
import threading
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, overload

from sqlalchemy import func, or_, select
from sqlalchemy.engine import make_url

from helpdesk.base import clock
from helpdesk.base.errors import BadInput, Conflict, Refused
from helpdesk.base.i18n import _, pick
from helpdesk.base.roles import Actor
from helpdesk.outgoing import action_views
from helpdesk.service import counts, listing
from helpdesk.storage import db, search, tables
from helpdesk.tui_api.views import (  # noqa: F401 - the screens' names for them, re-exported
    HISTORY,
    QUEUES,
    Applied,
    ClockMoved,
    Dashboard,
    Info,
    Preview,
    Started,
    StateInfo,
    localise,
    parse_iso,
)

if TYPE_CHECKING:
    from sqlmodel import Session

T = tables.ticket


class Backend:
    def __init__(self, url: str | None, login: str | None):
        self.url = db.resolve_url(url)
        db.lean(self.url)  # one process per volunteer connected: few, small connections
        self.login = login or None
        self.trainer: str | None = None  # a trainer playing a volunteer (``play_as``)
        self.info: Info | None = None
        self._reads: set[int] = set()  # tickets of closed accounts whose reading is recorded
        self._watcher: Watcher | None = None
        self._watching = threading.Lock()

    # --- sessions ----------------------------------------------------------------------

    def read(self):
        """An ORM session for a read (a ticket, a draft): loads the ORM at its first use."""
        return db.read_session(self.url)

    def write(self):
        return db.write_session(self.url)

    def connect(self):
        """A Core connection for a read: no ORM (the dashboard, the queues)."""
        return db.read_connection(self.url)

    def _actor(self, session: Session | None = None) -> Actor:
        """The acting volunteer; read-only sessions act as nobody (``-``) and may not write."""
        if self.info is not None and self.info.actor is not None:
            return self.info.actor
        return Actor("-", "volunteer")

    def _scope(self) -> list:
        """The condition keeping a role scoped to providers within them (none: all)."""
        policies = self._policies()
        return [T.c.policy_key.in_(policies)] if policies else []

    def _policies(self) -> tuple[str, ...]:
        """The providers the acting role covers (empty: all of them)."""
        actor = self.info.actor if self.info is not None else None
        return tuple(actor.policies) if actor is not None else ()

    def _writer(self, session: Session) -> Actor:
        from helpdesk.service import api

        if self.info is None or self.info.actor is None:
            raise BadInput(self.info.notice if self.info else _("read-only: no volunteer given"))
        return api.actor_for(session, self.info.actor.login)

    # --- once, at start ----------------------------------------------------------------

    def load_info(self) -> Info:
        from helpdesk.policy import install

        rev = install.current_revision(self.url)
        if rev is None:
            raise BadInput(
                _("the database {url} is not initialised: run 'helpdesk init'").format(url=self.url)
            )
        with self.connect() as c:
            actor, name, notice = None, "", ""
            if not self.login:
                notice = _("Read-only: no volunteer given (--as LOGIN or HELPDESK_USER).")
            else:  # a login that names no active volunteer opens nothing, not even read-only
                actor = listing.actor_for(c, self.login)
                v = tables.volunteer
                name = c.execute(select(v.c.name).where(v.c.login == actor.login)).scalar() or ""
            providers = listing.policy_names(c)
            policies = {k: (p.name, p.timezone) for k, p in sorted(providers.items())}
            short_names = {k: p.short_name for k, p in sorted(providers.items())}
            titles: dict[str, str] = {}
            wf_queue: dict[int, str] = {}
            w = tables.workflow
            for wf in c.execute(select(w.c.id, w.c.queue, w.c.title).order_by(w.c.id)):
                titles.setdefault(wf.queue, pick(wf.title))
                wf_queue[wf.id] = wf.queue
            states: dict[tuple[int, str], StateInfo] = {}
            queue_states: dict[str, dict[str, str]] = {}
            st_ = tables.state
            for st in c.execute(
                select(
                    st_.c.workflow_id, st_.c.key, st_.c.label, st_.c.kind, st_.c.position
                ).order_by(st_.c.workflow_id, st_.c.position)
            ):
                info = StateInfo(st.key, pick(st.label), st.kind, st.position)
                states[(st.workflow_id, st.key)] = info
                queue_states.setdefault(wf_queue.get(st.workflow_id, ""), {}).setdefault(
                    st.key, info.label
                )
            v = tables.volunteer
            volunteers = list(
                c.execute(select(v.c.login).where(v.c.active).order_by(v.c.login)).scalars()
            )
            m = tables.meta
            is_training = (
                c.execute(select(m.c.value).where(m.c.key == "training")).scalar() == "yes"
            )
        scenario, scenario_tz = "", "Europe/Paris"
        if is_training:
            from helpdesk.training import sandbox

            with self.read() as s:
                found = sandbox.scenario_of(s)
            if found is not None:
                scenario = found.title_text()
                scenario_tz = policies.get(found.provider, ("", scenario_tz))[1]
        self.info = Info(
            url=self.url,
            training=is_training,
            scenario=scenario,
            scenario_tz=scenario_tz,
            actor=actor,
            actor_name=name,
            notice=notice,
            policies=policies,
            short_names=short_names,
            queue_titles={q: titles.get(q, q) for q in QUEUES if q in titles}
            or {q: q for q in QUEUES},
            states=states,
            queue_states={q: list(v.items()) for q, v in queue_states.items()},
            volunteers=volunteers,
        )
        if is_training:
            self.follow_clock()
        return self.info

    def warm_up(self) -> None:
        """Load what opening a ticket or taking a step needs: SQLModel, the models, the
        engine, the service API. The first screens read with Core and need none of it; the
        app calls this once they are up, so that the first ticket a person opens comes as
        fast as the next (it took 350 ms more on the 1M-ticket database otherwise)."""
        import sqlmodel  # noqa: F401

        from helpdesk.service import api, conversation  # noqa: F401
        from helpdesk.workflow import engine  # noqa: F401

    def follow_clock(self) -> None:
        """On a training database, live at its clock (the trainer may have moved it)."""
        from helpdesk.training import clock as training_clock

        training_clock.adopt_clock(self.url)

    # --- dashboard -----------------------------------------------------------------------

    def dashboard(self, limit: int = 8) -> Dashboard:
        now = clock.now()
        policies = self.info.policies if self.info else {}
        with self.connect() as c:
            found = counts.queue_counts(c, now, self._policies())
            counts_ = {
                q: {"open": 0, "waiting": 0, "overdue": 0, **found.get(q, {})} for q in QUEUES
            }
            counts_.update({q: n for q, n in found.items() if q not in counts_})
            mine: list[search.Row] = []
            login = self.info.actor.login if self.info and self.info.actor else None
            if login:
                mine = self._soonest(
                    c, [or_(T.c.assignee == login, T.c.claimed_by == login)], limit
                )
            due = self._soonest(
                c, [T.c.due_at <= now + timedelta(days=1)], limit * 4, undated=False
            )
            due_today = []
            for r in due:
                tz = policies.get(r.policy, ("", "Europe/Paris"))[1]
                if clock.local_day(r.due_at, tz) <= clock.local_day(now, tz):
                    due_today.append(r)
            recent = self._recent(c, limit)
            waiting, actions = action_views.needing_attention(c, limit)
            # Finished tickets whose mail came back.
            actions += listing.bounced_on_done(c, self._policies(), limit)
            # The dates the providers' texts make binding, apart from the indicative targets:
            # the soonest, in the provider's zone (``counts_[queue]["binding"]``: how many).
            binding = counts.binding_soonest(c, self._policies(), limit=3)
            for b in binding:
                b["tz"] = policies.get(b["policy"], ("", "Europe/Paris"))[1]
        return Dashboard(
            counts=counts_,
            mine=mine,
            due_today=due_today[:limit],
            recent=recent,
            now=now,
            actions_waiting=waiting,
            actions=actions,
            binding=binding,
        )

    def _recent(self, c, limit: int) -> list[dict]:
        """The latest events, each step and state by its label in the ticket's procedure and
        its time in the provider's zone (``tz``)."""
        e = tables.event
        q = select(e.c.id, e.c.at, e.c.actor, e.c.action, e.c.ticket_id, e.c.to_state, e.c.note)
        if self._scope():
            q = q.select_from(e.join(T, T.c.id == e.c.ticket_id)).where(*self._scope())
        recent = [
            {
                "id": r.id,
                "at": r.at,
                "actor": r.actor,
                "action": r.action,
                "ticket": r.ticket_id,
                "to": r.to_state,
                "note": r.note,
            }
            for r in c.execute(q.order_by(e.c.id.desc()).limit(limit))
        ]
        tickets = {r["ticket"] for r in recent if r["ticket"]}
        if not tickets:
            return recent
        workflows = {
            r.id: r.workflow_id
            for r in c.execute(select(T.c.id, T.c.workflow_id).where(T.c.id.in_(tickets)))
        }
        w, st, tr = tables.workflow, tables.state, tables.transition
        wids = set(workflows.values())
        zones = {
            r.id: r.timezone
            for r in c.execute(
                select(w.c.id, tables.policy.c.timezone)
                .select_from(w.join(tables.policy, tables.policy.c.key == w.c.policy_key))
                .where(w.c.id.in_(wids))
            )
        }
        steps = {
            (r.workflow_id, r.key): pick(r.label)
            for r in c.execute(
                select(tr.c.workflow_id, tr.c.key, tr.c.label)
                .where(tr.c.workflow_id.in_(wids))
                .order_by(tr.c.workflow_id, tr.c.position)
            )
        }
        states = {
            (r.workflow_id, r.key): pick(r.label)
            for r in c.execute(
                select(st.c.workflow_id, st.c.key, st.c.label).where(st.c.workflow_id.in_(wids))
            )
        }
        for r in recent:
            wid = workflows.get(r["ticket"])
            if wid is None:
                continue
            r["tz"] = zones.get(wid)
            r["action_label"] = steps.get((wid, r["action"]))
            r["to_label"] = states.get((wid, r["to"]), r["to"])
        return recent

    def _soonest(self, c, where: list, limit: int, *, undated: bool = True) -> list[search.Row]:
        """Open and waiting tickets matching ``where``, soonest due first (those with no date
        after, oldest first). Read per queue and kind along the (queue, state_kind, due_at)
        index, a few rows each: one query over the table would sort thousands of rows (a
        busy volunteer's tickets) or walk the finished tickets of the due_at index first."""
        parts = [(q, kind) for q in QUEUES for kind in ("open", "waiting")]

        def run(extra: list, order: list) -> list[search.Row]:
            out: list[search.Row] = []
            for q, kind in parts:
                out += self._rows(
                    c, [T.c.queue == q, T.c.state_kind == kind, *where, *extra], limit, order
                )
            return out

        rows = sorted(
            run([T.c.due_at.is_not(None)], [T.c.due_at, T.c.id]),
            key=lambda r: (r.due_at, r.id),
        )[:limit]
        if undated and len(rows) < limit:
            rows += sorted(run([T.c.due_at.is_(None)], [T.c.id]), key=lambda r: r.id)[
                : limit - len(rows)
            ]
        return rows

    def _rows(self, c, where: list, limit: int, order: list) -> list[search.Row]:
        a = tables.account
        q = (
            select(*search.ROW_COLUMNS)
            .select_from(T.outerjoin(a, a.c.id == T.c.account_id))
            .where(*where, *self._scope())
            .order_by(*order)
            .limit(limit)
        )
        return [search.Row(*r) for r in c.execute(q)]

    # --- queues --------------------------------------------------------------------------

    def count(self, flt: search.TicketFilter, share: Any = None) -> int:
        """How many rows a view holds. ``share``: a token naming one refresh of one view,
        whose count and pages may then share one full-text match."""
        with self._view_read(share) as c:
            return search.count(c, flt)

    def page(
        self, flt: search.TicketFilter, order: str, offset: int, limit: int, share: Any = None
    ) -> list[search.Row]:
        with self._view_read(share) as c:
            return search.page(c, flt, order, limit=limit, offset=offset)

    @contextmanager
    def _view_read(self, share: Any):
        """A Core read of a view, in the acting role's scope."""
        with self.connect() as c:
            db.read_info(c).update(share=share, scope=self._policies())
            yield c

    def find(self, text: str, limit: int = 10) -> list[search.Row]:
        """Tickets for the command palette: by number, then by full-text search."""
        with self.connect() as c:
            ids = search.search(c, text, limit=limit)
            if not ids:
                return []
            rows = {r.id: r for r in self._rows(c, [T.c.id.in_(ids)], limit, [T.c.id])}
        return [rows[i] for i in ids if i in rows]

    # --- one ticket ----------------------------------------------------------------------

    def _read_closed_account(self, ticket_id: int) -> None:
        """A ticket of a closed account shows that account's personal data: the first time
        this session opens it, the reading is recorded (``service.read_sensitive``); without
        a volunteer to record it against, it is refused."""
        from helpdesk.service import api
        from helpdesk.storage.models import Account

        if not self._unrecorded_closed(ticket_id):
            return
        if self.info is None or self.info.actor is None:
            raise Refused(
                "sensitive-read",
                _(
                    "the personal data of a closed account is shown only to a volunteer, and the reading is recorded"
                ),
            )
        with self.write() as s:
            t = api.get_ticket(s, ticket_id)
            api.read_sensitive(
                s,
                self._writer(s),
                "personal-data",
                account=s.get(Account, t.account_id),
                data={"ticket": ticket_id},
                reason="ticket screen",
            )
        self._reads.add(ticket_id)

    def _unrecorded_closed(self, ticket_id: int) -> bool:
        """Whether opening this ticket shows a closed account's data not yet recorded."""
        from helpdesk.service import api
        from helpdesk.storage.models import Account

        if ticket_id in self._reads:
            return False
        with self.read() as s:
            t = api.get_ticket(s, ticket_id, self._actor(s))
            return api.is_closed(s.get(Account, t.account_id) if t.account_id else None)

    def ticket_at_once(self, ticket_id: int) -> tuple[dict, dict | None] | None:
        """A ticket's view and walkthrough when they take only reads (a dozen milliseconds:
        the screen opens with its data, in one layout). None when opening it must first
        record a sensitive read, a write that may wait for a lock: a worker does that."""
        view = self._view(ticket_id, unless_closed=True)
        return None if view is None else (view, self.walkthrough(ticket_id))

    def ticket(self, ticket_id: int, history: int | None = None) -> dict:
        """A ticket's view with its latest ``history`` events (``HISTORY`` by default; the
        screen pages in more)."""
        self._read_closed_account(ticket_id)
        return self._view(ticket_id, history)

    @overload
    def _view(self, ticket_id: int, history: int | None = None) -> dict: ...

    @overload
    def _view(
        self, ticket_id: int, history: int | None = None, *, unless_closed: bool
    ) -> dict | None: ...

    def _view(
        self, ticket_id: int, history: int | None = None, *, unless_closed: bool = False
    ) -> dict | None:
        """The view; with ``unless_closed``, None instead when opening the ticket must first
        record a sensitive read (``_unrecorded_closed``, asked in the same session)."""
        from sqlmodel import col, select
        from helpdesk.service import api
        from helpdesk.storage.models import Account, Outbox, Ticket
        from helpdesk.workflow import engine

        with self.read() as s:
            actor = self._actor(s)
            t = api.get_ticket(s, ticket_id, actor)
            account = s.get(Account, t.account_id) if t.account_id else None
            if unless_closed and ticket_id not in self._reads and api.is_closed(account):
                return None
            view = api.ticket_view(
                s, t, actor, history=max(1, history or HISTORY), citation_texts=True
            )
            d = engine.definition(s, t.workflow_id)
            view.update(
                policy_name=d.policy.name,
                policy_short=d.policy.short_name,
                timezone=d.policy.timezone,
                queue_title=pick(d.workflow.title),
                account_email=account.email if account else "",
                account_org=account.org if account else "",
                field_specs=d.workflow.fields or {},
                checklist_labels={
                    k: pick((v or {}).get("label")) or k
                    for k, v in (d.workflow.checklist or {}).items()
                },
                state_labels={k: pick(st.label) for k, st in d.states.items()},
                step_labels={tr.key: pick(tr.label) for tr in d.transitions},
                account_kind=account.kind if account else "",
                account_contacts=list(account.contacts or []) if account else [],
                account_fields=dict(account.fields or {}) if account else {},
                linked=[
                    {
                        "id": other.id,
                        "queue_title": pick(engine.definition(s, other.workflow_id).workflow.title),
                        "state_label": api.state_label(s, other),
                        "subject": other.subject,
                        "relation": "parent" if other.id == t.parent_id else "child",
                    }
                    for other in s.exec(
                        select(Ticket)
                        .where(
                            # "id IS NULL" (no parent) would make SQLite scan the whole table
                            or_(col(Ticket.id) == t.parent_id, col(Ticket.parent_id) == t.id)
                            if t.parent_id is not None
                            else col(Ticket.parent_id) == t.id
                        )
                        .order_by(col(Ticket.id))
                    )
                ],
                assignee=t.assignee,
                claimed_by=t.claimed_by,
                claim_expires=t.claim_expires,
                mails=[
                    {
                        "id": m.id,
                        "to": m.to_addr,
                        "subject": m.subject,
                        "status": m.status,
                        "at": m.created_at,
                        "lang": m.lang,
                    }
                    for m in s.exec(
                        select(Outbox).where(Outbox.ticket_id == t.id).order_by(col(Outbox.id))
                    )
                ],
                now=clock.now(),
            )
        return view

    def _inputs(self, inputs: dict | None) -> dict:
        inputs = inputs or {}
        return {
            "note": inputs.get("note", ""),
            "fields": inputs.get("fields") or {},
            "checks": inputs.get("checks") or [],
        }

    def preview(
        self,
        ticket_id: int,
        action: str,
        inputs: dict | None,
        version: int | None,
        lang: str | None = None,
    ) -> Preview:
        """Apply the action in a transaction that is rolled back, and report what it did
        (with the ticket's mails in ``lang`` when given)."""
        from sqlmodel import Session, col, select
        from helpdesk.service import api
        from helpdesk.storage.models import Account, Deadline
        from helpdesk.workflow import engine

        from helpdesk.storage.models import Ticket as T

        eng = db.get_engine(self.url).execution_options(immediate=True)
        with Session(eng, expire_on_commit=False) as s:
            try:
                actor = self._writer(s)
                t = s.get(T, ticket_id)
                if t is None:
                    raise BadInput(_("no ticket #{id}").format(id=ticket_id))
                d = engine.definition(s, t.workflow_id)
                from_state = t.state
                account = s.get(Account, t.account_id) if t.account_id else None
                status_before = account.status if account else None
                before = {
                    (dl.name, dl.due_at, dl.status)
                    for dl in s.exec(
                        select(Deadline).where(
                            Deadline.ticket_id == t.id,
                            col(Deadline.status).in_(("pending", "info")),
                        )
                    )
                }
                if lang:
                    api.set_lang(s, ticket_id, actor, lang, expected_version=version)
                    version = None  # checked just now, in this transaction
                outcome = engine.apply(
                    s, ticket_id, action, actor, expected_version=version, **self._inputs(inputs)
                )
                s.flush()
                tz = d.policy.timezone
                step_labels = {tr.key: pick(tr.label) for tr in d.transitions}
                deadlines = []
                for dl in s.exec(
                    select(Deadline)
                    .where(
                        Deadline.ticket_id == t.id, col(Deadline.status).in_(("pending", "info"))
                    )
                    .order_by(col(Deadline.due_at))
                ):
                    if (dl.name, dl.due_at, dl.status) not in before:
                        deadlines.append(
                            {
                                "name": dl.name,
                                "at": localise(dl.due_at, tz),
                                "status": dl.status,
                                "action": step_labels.get(dl.action or "", dl.action),
                                "note": dl.note,
                            }
                        )
                status_after = account.status if account else None
                labels = {k: pick(st.label) for k, st in d.states.items()}
                steps, linked, warnings = [], [], []
                for e in outcome.events:
                    steps.append(
                        {
                            "action": step_labels.get(e.action, e.action),
                            "actor": e.actor,
                            "from": labels.get(e.from_state or "", e.from_state),
                            "to": labels.get(e.to_state or "", e.to_state),
                        }
                    )
                    if (e.data or {}).get("linked"):
                        linked.append(e.data["linked"])
                    warnings += (e.data or {}).get("warnings", [])
                label = next((pick(tr.label) for tr in d.transitions if tr.key == action), action)
                return Preview(
                    action=action,
                    label=label,
                    from_state=labels.get(from_state, from_state),
                    to_state=labels.get(outcome.ticket.state, outcome.ticket.state),
                    steps=steps,
                    mails=[
                        {
                            "to": m.to_addr,
                            "subject": m.subject,
                            "body": m.body,
                            "lang": m.lang,
                            "template": m.template,
                        }
                        for m in outcome.mails
                    ],
                    deadlines=deadlines,
                    account=account.login if account else None,
                    account_status=(status_before, status_after)
                    if status_before != status_after
                    else None,
                    reveal=len(outcome.reveal),
                    output=len(outcome.output),
                    linked=linked,
                    warnings=warnings,
                    actions=api.actions_described(outcome.actions),
                )
            finally:
                s.rollback()

    def apply(
        self,
        ticket_id: int,
        action: str,
        inputs: dict | None,
        version: int | None,
        lang: str | None = None,
    ) -> Applied:
        from helpdesk.service import api
        from helpdesk.workflow import engine

        with self.write() as s:
            actor = self._writer(s)
            if lang:  # the language chosen in the preview, set in the same transaction
                api.set_lang(s, ticket_id, actor, lang, expected_version=version)
                version = None
            outcome = engine.apply(
                s, ticket_id, action, actor, expected_version=version, **self._inputs(inputs)
            )
            label = api.state_label(s, outcome.ticket)
            mails = [{"to": m.to_addr, "subject": m.subject} for m in outcome.mails]
            result = Applied(ticket_id, label, mails, list(outcome.reveal), list(outcome.output))
        return result

    # --- the conversation -----------------------------------------------------------------

    def saved_replies(self, lang: str = "fr") -> list[str]:
        from helpdesk.service import conversation

        return conversation.saved_replies(lang)

    def ask_items(self, ticket_id: int) -> dict[str, str]:
        from helpdesk.service import api, conversation

        with self.read() as s:
            t = api.get_ticket(s, ticket_id)
            return conversation.ask_items(
                t.policy_key, t.queue, t.lang if t.lang in ("fr", "en") else "fr"
            )

    def draft(self, ticket_id: int, request: dict) -> dict:
        """The mail a reply or an ask would send, rendered and checked, nothing queued."""
        from helpdesk.service import api, conversation

        with self.read() as s:
            actor = self._actor(s)
            t = api.get_ticket(s, ticket_id)
            if request["kind"] == "ask":
                known = conversation.ask_items(
                    t.policy_key, t.queue, t.lang if t.lang in ("fr", "en") else "fr"
                )
                if not request["items"]:
                    raise BadInput(
                        _("say what is missing (--missing ITEM; here: {items})").format(
                            items=", ".join(known) or "-"
                        )
                    )
                extra = {"items": [known[i] for i in request["items"] if i in known]}
                return conversation.compose(s, t, actor, template="ask", extra=extra).as_dict()
            return conversation.compose(
                s, t, actor, text=request["text"], template=request["template"]
            ).as_dict()

    def converse(self, ticket_id: int, request: dict, version: int | None) -> None:
        """Send a reply or an ask, or save a note (``request`` from the composer)."""
        from helpdesk.service import conversation

        with self.write() as s:
            actor = self._writer(s)
            if request["kind"] == "note":
                conversation.comment(s, ticket_id, actor, request["text"] or "")
            elif request["kind"] == "ask":
                conversation.ask(s, ticket_id, actor, request["items"], expected_version=version)
            else:
                conversation.reply(
                    s,
                    ticket_id,
                    actor,
                    text=request["text"],
                    template=request["template"],
                    expected_version=version,
                )

    def set_account(self, ticket_id: int, login: str | None, version: int | None) -> None:
        from helpdesk.service import conversation

        with self.write() as s:
            conversation.set_account(s, ticket_id, self._writer(s), login, expected_version=version)

    def merge(self, src: int, into: int) -> None:
        from helpdesk.service import conversation

        with self.write() as s:
            conversation.merge(s, src, into, self._writer(s))

    def claim(self, ticket_id: int) -> tuple[str | None, datetime | None]:
        from helpdesk.service import api

        if self.info is None or self.info.actor is None:
            return None, None
        with self.write() as s:
            return api.claim(s, ticket_id, self._writer(s))

    def release(self, ticket_id: int) -> None:
        from helpdesk.service import api

        if self.info is None or self.info.actor is None:
            return
        with self.write() as s:
            api.release(s, ticket_id, self._writer(s))

    def assign(self, ticket_id: int, login: str | None, version: int | None) -> None:
        from helpdesk.service import api

        with self.write() as s:
            api.assign(s, ticket_id, self._writer(s), login, expected_version=version)

    # --- training databases ------------------------------------------------------------

    def walkthrough(self, ticket_id: int) -> dict | None:
        """The scenario's steps for a ticket of a training database (None elsewhere)."""
        if self.info is None or not self.info.training:
            return None
        from helpdesk.training import sandbox

        with self.read() as s:
            w = sandbox.walkthrough(s, ticket_id)
            return w.as_dict() if w else None

    def training_feedback(
        self, ticket_id: int, action: str, refused: Refused | None = None
    ) -> str | None:
        """After an attempt on a scenario ticket: what the trainee should hear (None: in
        order). A refusal is recorded on the ticket so the walkthrough can count it."""
        if self.info is None or not self.info.training or isinstance(refused, Conflict):
            return None  # a conflict is no step of the lesson: the ticket is shown afresh
        from helpdesk.training import sandbox

        if refused is not None and self.info.actor is not None:
            sandbox.record_refusal(
                self.url, ticket_id, action, refused.rule, by=self.info.actor.login
            )
        return sandbox.feedback(self.url, ticket_id, action, refused)

    def play_as(self, login: str | None) -> Info:
        """A trainer acts as one of the scenario's volunteers (None: as themselves again),
        so that a refusal is seen as the role a step names. Returns what the app knows."""
        from helpdesk.training import sandbox

        if self.info is None or not self.info.training:
            raise BadInput(_("only on a training database"))
        trainer = self.trainer or self.login or ""
        self.login = sandbox.play_as(self.url, trainer, login)
        self.trainer = trainer
        return self.load_info()

    def move_clock(self, step: str) -> ClockMoved:
        """Move a training database's clock and run sweep there."""
        from helpdesk.training import sandbox

        move = sandbox.advance(self.url, step)
        return ClockMoved(move.step, move.before, move.after, self._labelled(move.sweep.as_dict()))

    def _labelled(self, report: dict) -> dict:
        """Sweep's report with each step and state by its label in the ticket's procedure
        (``action_label``, ``state_label``), for a person to read; the keys stay."""
        from helpdesk.storage.models import Ticket
        from helpdesk.workflow import engine

        rows = [r for k in ("taken", "refused") for r in report.get(k, []) if r.get("ticket")]
        if not rows:
            return report
        with db.read_session(self.url) as s:
            for r in rows:
                ticket = s.get(Ticket, r["ticket"])
                if ticket is None:
                    continue
                d = engine.definition(s, ticket.workflow_id)
                steps = d.by_key(r.get("action") or "")
                if steps:
                    r["action_label"] = pick(steps[0].label)
                if r.get("state") in d.states:
                    r["state_label"] = pick(d.states[r["state"]].label)
        return report

    def scenarios(self) -> list[dict]:
        """The training scenarios (key, provider, queue, title), for the palette."""
        from helpdesk.training import scenarios

        return [sc.summary() for sc in scenarios.load_all()]

    def start_scenario(self, key: str | None = None) -> Started:
        """Put this training database at the start of scenario ``key`` (None: the one it
        holds again), then learn again what it holds."""
        from helpdesk.training import sandbox

        seeded = sandbox.reset(self.url, key)
        self.load_info()
        return Started(seeded.scenario, dict(seeded.tickets))

    # --- live ------------------------------------------------------------------------------

    def changes(self) -> Any:
        """A token that changes when another connection changed the database (``Watcher``);
        the app's live poll compares two."""
        with self._watching:
            if self._watcher is None:
                self._watcher = Watcher(self.url)
            return self._watcher.token()

    def stop_watching(self) -> None:
        """Close what ``changes`` holds open (the live poll stopped)."""
        with self._watching:
            if self._watcher is not None:
                self._watcher.close()
                self._watcher = None

    def close(self) -> None:
        self.stop_watching()


class Watcher:
    """Tells cheaply whether another connection changed the database since the last look.

    On SQLite, ``PRAGMA data_version`` on a connection of its own (used by one thread at a
    time: ``Backend.changes`` holds a lock); elsewhere the last event id (every action, assignment or change
    of language records one) and the unexpired claims, which record none.
    """

    def __init__(self, url: str):
        self.url = db.resolve_url(url)
        self._conn: sqlite3.Connection | None = None

    def token(self) -> Any:
        parsed = make_url(self.url)
        if (
            parsed.get_backend_name() == "sqlite"
            and parsed.database
            and parsed.database != ":memory:"
        ):
            if self._conn is None:
                self._conn = sqlite3.connect(parsed.database, timeout=1.0, check_same_thread=False)
            return self._conn.execute("PRAGMA data_version").fetchone()[0]
        e, m = tables.event, tables.meta
        with db.read_connection(self.url) as c:
            last = c.execute(select(func.max(e.c.id))).scalar()
            claims = c.execute(
                select(T.c.id, T.c.claimed_by, T.c.claim_expires)
                .where(T.c.claimed_by.is_not(None), T.c.claim_expires > clock.now())
                .order_by(T.c.id)
            ).all()
            # A training database's scenario and clock, which a reset or a move of the
            # clock elsewhere changes (a rebuilt scenario may end on the same event id).
            training = c.execute(
                select(m.c.key, m.c.value)
                .where(m.c.key.in_(("training", "scenario", "clock")))
                .order_by(m.c.key)
            ).all()
            return (last, tuple(tuple(c) for c in claims), tuple(tuple(m) for m in training))

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
