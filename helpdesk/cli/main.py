"""The command line: the scriptable twin of the TUI.

Exit codes: 0 done, 1 refused by a rule (the message names the rule and cites the
article), 2 bad input. ``--json`` on every read and act. Reading and acting never import
Textual; only ``helpdesk`` (no command) and ``helpdesk demo`` open the TUI.
"""

from __future__ import annotations


import csv
import os
import re
import sys

from helpdesk.base import bounds, clock, queues
from helpdesk.cli.common import Out, check_schema, do_tui, print_sweep, read_sensitive, reveal  # noqa: F401
from helpdesk.cli.common import connection as _connection, pairs as _pairs, session as _session
from helpdesk.cli.common import user as _user
from helpdesk.cli.parser import command, group, quiet_option
from helpdesk.base.errors import BadInput, HelpdeskError, Refused
from helpdesk.base.i18n import _
from helpdesk.base.roles import ROLES as ROLE_KEYS

QUEUES = queues.ALL


# --- the commands' grammar (helpdesk.cli.parser builds each when the command line names it) ---


def add_init(commands) -> None:
    p = command(commands, "init", do_init)
    p.add_argument("--policy", action="append", help=_("load only this pack (repeatable)"))
    p.add_argument(
        "--training", action="store_true", help=_("mark this database as a training database")
    )


def add_policy(commands) -> None:
    from helpdesk.cli import mail

    pol = group(commands, "policy")
    command(pol, "list", do_policy_list, _("list the policy packs"))
    p = command(pol, "show", do_policy_show, _("show a pack: parameters, citations, procedures"))
    p.add_argument("key")
    mail.add_policy_set(pol)


def add_account(commands) -> None:
    from helpdesk.cli import actions

    acc = group(commands, "account")
    p = command(acc, "add", do_account_add, _("add or update an account"))
    p.add_argument("login")
    p.add_argument("--policy", required=True)
    p.add_argument("--email", required=True)
    p.add_argument(
        "--kind", default="user", choices=["user", "admin", "employee", "member", "end-user"]
    )
    p.add_argument("--org", default="")
    p.add_argument(
        "--contact",
        action="append",
        help=_("another registered contact address (repeatable; none given: unchanged)"),
    )
    p.add_argument("--last-login")
    p.add_argument(
        "--status",
        help=_("load an existing directory: the account's status (techadmin only, recorded)"),
    )
    p.add_argument(
        "--account-lang",
        default="",
        choices=["", "fr", "en"],
        help=_("language of the mails to this account"),
    )
    p.add_argument("--field", action="append", default=[], metavar="K=V")
    p = command(
        acc,
        "import",
        do_account_import,
        _("import accounts from a CSV file (login,policy,email,kind,org,last_login,contacts,...)"),
    )
    p.add_argument("path")
    p = command(acc, "show", do_account_show, _("show an account and its sanctions ledger"))
    p.add_argument("login")
    p.add_argument("--policy")
    p.add_argument(
        "--reason", default="", help=_("why you read a closed account's personal data (recorded)")
    )
    p = command(
        acc, "contact", do_account_contact, _("add or remove an account's contact addresses")
    )
    p.add_argument("login")
    p.add_argument("--policy")
    p.add_argument("--add", action="append", default=[], metavar="ADDRESS")
    p.add_argument("--remove", action="append", default=[], metavar="ADDRESS")
    p = command(acc, "list", do_account_list, _("list accounts"))
    p.add_argument("--policy")
    p.add_argument("--status")
    p.add_argument(
        "--reason", default="", help=_("why you list closed accounts (recorded with the reading)")
    )
    actions.add_account_sync(acc)


def add_ticket(commands) -> None:
    from helpdesk.cli import conversation

    tk = group(commands, "ticket")
    p = command(tk, "open", do_ticket_open, _("open a ticket"))
    p.add_argument("queue", choices=QUEUES)
    p.add_argument("--policy", required=True)
    p.add_argument("--account")
    p.add_argument("--requester", default="")
    p.add_argument("--subject", default="")
    p.add_argument("--note", default="")
    p.add_argument(
        "--mail-lang", choices=["fr", "en"], help=_("language of the mails of this ticket")
    )
    p.add_argument("--field", action="append", default=[], metavar="K=V")
    p = command(tk, "list", do_ticket_list, _("list tickets, overdue and soonest first"))
    p.add_argument("--queue", choices=QUEUES)
    p.add_argument("--state")
    p.add_argument("--policy")
    p.add_argument("--account")
    p.add_argument("--assignee")
    p.add_argument("--all", action="store_true", help=_("include finished tickets"))
    p.add_argument("--overdue", action="store_true")
    p.add_argument("--sort", choices=["due", "age", "state", "new"], default="due")
    p.add_argument("--limit", type=bounds.limit, default=100)
    p.add_argument("--offset", type=bounds.offset, default=0)
    p.add_argument(
        "--search",
        metavar="TEXT",
        help=_("full-text search: subjects, requesters, accounts, notes and messages"),
    )
    p = command(
        tk, "show", do_ticket_show, _("state, deadlines, history, allowed and blocked actions")
    )
    p.add_argument("id", type=bounds.ident)
    p.add_argument(
        "--citations", action="store_true", help=_("print the French text of each citation")
    )
    p.add_argument(
        "--reason", default="", help=_("why you read a closed account's personal data (recorded)")
    )
    p = command(tk, "act", do_ticket_act, _("take an action on a ticket"))
    p.add_argument("id", type=bounds.ident)
    p.add_argument("action")
    p.add_argument("--note", default="")
    p.add_argument("--field", action="append", default=[], metavar="K=V")
    p.add_argument(
        "--check", action="append", default=[], metavar="ITEM", help=_("tick a checklist item")
    )
    p.add_argument(
        "--if-version", type=bounds.ident, help=_("refuse if the ticket changed since this version")
    )
    p.add_argument(
        "--mail-lang", choices=["fr", "en"], help=_("first set the language of the ticket's mails")
    )
    p.add_argument(
        "--dry-run",
        action="store_true",
        help=_("print what the step would do (mails, service actions) and do nothing"),
    )
    p = command(tk, "assign", do_ticket_assign, _("give a ticket to a volunteer ('-' for nobody)"))
    p.add_argument("id", type=bounds.ident)
    p.add_argument("login")
    p.add_argument(
        "--if-version", type=bounds.ident, help=_("refuse if the ticket changed since this version")
    )
    p = command(tk, "lang", do_ticket_lang, _("set the language of a ticket's mails"))
    p.add_argument("id", type=bounds.ident)
    p.add_argument("lang", choices=["fr", "en"])
    p.add_argument(
        "--if-version", type=bounds.ident, help=_("refuse if the ticket changed since this version")
    )
    conversation.add_parsers(tk)  # ticket reply|comment|ask|account|merge|convert|replies


def add_sweep(commands) -> None:
    quiet_option(command(commands, "sweep", do_sweep))


def add_backup(commands) -> None:
    p = command(commands, "backup", do_backup)
    p.add_argument("path")


def add_restore(commands) -> None:
    p = command(commands, "restore", do_restore)
    p.add_argument("path")
    p.add_argument(
        "--yes", action="store_true", help=_("confirm: what is in the database now is replaced")
    )


def add_volunteer(commands) -> None:
    vol = group(commands, "volunteer")
    p = command(vol, "add", do_volunteer_add, _("add a volunteer or change their role"))
    p.add_argument("login")
    # The role as --role ROLE, or after the login (``volunteer add zoe oncall``): both read.
    p.add_argument("role", nargs="?", choices=ROLE_KEYS, metavar="ROLE", help=_("or --role"))
    p.add_argument("--role", dest="role_option", choices=ROLE_KEYS, metavar="ROLE")
    p.add_argument(
        "--policy",
        action="append",
        default=[],
        help=_("the role covers this provider only (repeatable; default: all)"),
    )
    p.add_argument("--name", default="")
    p.add_argument("--ssh-key", help=_("an OpenSSH public key, or the path of a .pub file"))
    command(vol, "list", do_volunteer_list, _("list volunteers"))
    p = command(
        vol,
        "authorized-keys",
        do_volunteer_authorized_keys,
        _("print the authorized_keys lines of the shared system account"),
    )
    p.add_argument("--program", help=_("the helpdesk command the keys may run (default: this one)"))
    p = command(vol, "remove-key", do_volunteer_withdraw, _("withdraw an SSH key"))
    p.add_argument("login")
    p.add_argument("key")
    p = command(
        vol,
        "deactivate",
        do_volunteer_withdraw,
        _("withdraw a volunteer: their keys stop working"),
        key=None,
    )
    p.add_argument("login")


def add_audit(commands) -> None:
    au = group(commands, "audit")
    p = command(au, "verify", do_audit, _("check that no event was changed, deleted or reordered"))
    p.add_argument(
        "--anchors",
        help=_("a file of heads written by 'audit anchor' (env HELPDESK_AUDIT_ANCHORS)"),
    )
    p = command(
        au,
        "anchor",
        do_audit_anchor,
        _("append the chain's head, timestamped, to a file or to syslog (for cron)"),
    )
    p.add_argument(
        "--file", help=_("the anchor file, outside the database (env HELPDESK_AUDIT_ANCHORS)")
    )
    p.add_argument(
        "--syslog",
        action="store_true",
        help=_("write the head to syslog as well (or instead, with no file)"),
    )


def add_outbox(commands) -> None:
    from helpdesk.cli import mail

    ob = group(commands, "outbox")
    p = command(ob, "list", do_outbox_list, _("list queued mails"))
    p.add_argument(  # an unknown status is bad input (exit 2), not an empty list
        "--status", choices=["pending", "sending", "sent", "failed", "held", "uncertain", "bounced"]
    )
    p.add_argument("--ticket", type=bounds.ident)
    p.add_argument("--limit", type=bounds.limit, default=100)
    p = command(ob, "show", do_outbox_show, _("show one queued mail"))
    p.add_argument("id", type=bounds.ident)
    p = command(
        ob,
        "bounces",
        do_outbox_bounces,
        _(
            "list the bounces received, newest first: the server's reason and the mail of ours it returned"
        ),
    )
    p.add_argument(
        "--unmatched", action="store_true", help=_("only those that name no mail of ours")
    )
    p.add_argument("--limit", type=bounds.limit, default=100)
    p = command(
        ob,
        "send",
        do_outbox_send,
        _("deliver the mails that are due (SMTP, or a Maildir when no SMTP host is set)"),
    )
    p.add_argument("--limit", type=bounds.limit, default=100)
    quiet_option(p)
    mail.add_outbox_decisions(ob)  # outbox retry|mark-sent


def add_reset(commands) -> None:
    rs = group(commands, "reset")
    command(rs, "redeem", do_reset, _("check and spend a one-time secret read from standard input"))


# --- commands ----------------------------------------------------------------------------


def do_init(args, out: Out) -> int:
    from helpdesk.storage import db
    from helpdesk.policy import install

    from helpdesk.policy.packs import PackError

    url = db.resolve_url(getattr(args, "db", None))
    try:
        changed = install.init(url, args.policy, training=True if args.training else None)
    except PackError as exc:
        raise BadInput(str(exc)) from None
    if out.json:
        out.data({"database": url, "loaded": changed, "revision": install.current_revision(url)})
    else:
        out.line(_("Database ready: {url}").format(url=url))
        out.line(
            _("Policy packs loaded: {keys}").format(
                keys=", ".join(changed) if changed else _("none changed")
            )
        )
    return 0


def do_policy_list(args, out: Out) -> int:
    from sqlmodel import col, select

    from helpdesk.storage.models import Policy, Workflow

    with _session(args) as s:
        rows = []
        for p in s.exec(select(Policy).order_by(col(Policy.key))):
            queues = list(
                s.exec(
                    select(Workflow.queue)
                    .where(Workflow.policy_key == p.key)
                    .order_by(col(Workflow.id))
                )
            )
            rows.append(
                {
                    "key": p.key,
                    "name": p.name,
                    "short_name": p.short_name,
                    "timezone": p.timezone,
                    "queues": queues,
                    "source": p.source,
                }
            )
        if out.json:
            out.data(rows)
        else:
            _print_policies(out, rows)
        return 0


def _print_policies(out: Out, rows: list[dict]) -> None:
    """The providers for a person, each on two lines that hold at 80 columns: the key (what
    the commands take) and the name, then the zone and the queues by their labels."""
    from rich.text import Text

    from helpdesk.base.labels import label

    width = max((len(r["key"]) for r in rows), default=0) + 2
    for r in rows:
        out.line(Text(f"{r['key']:<{width}}", style="bold"), r["name"], wrap=True)
        out.line(
            "  "
            + _("{zone} · queues: {queues}").format(
                zone=r["timezone"],
                queues=", ".join(label("queue-short", q) for q in r["queues"]),
            ),
            wrap=True,
        )


def do_policy_show(args, out: Out) -> int:
    from helpdesk.service import api

    with _session(args) as s:
        view = api.policy_view(s, args.key)
        if out.json:
            out.data(view)
            return 0
        from helpdesk.base.labels import label

        out.line(
            f"{view['name']} ({view['key']}) — {view['timezone']} — {view['source']}", style="bold"
        )
        for wf in view["workflows"]:
            out.line("")
            out.line(wf["title"], style="bold")
            states = {st["key"]: st["label"] for st in wf["states"]}

            def said(key: str) -> str:
                return _("any state") if key == "*" else states.get(key, key)

            for a in wf["actions"]:
                if a["auto"]:
                    continue
                # The action's key is what `ticket act` takes; states and roles by their labels.
                target = _("unchanged") if a["to"] == "=" else said(a["to"])
                out.line(
                    f"  {a['key']:<20} {a['label']}  [{label('role', a['role'])}]"
                    + (f"  {a['citation']}" if a["citation"] else "")
                )
                out.line(
                    "      " + ", ".join(said(k) for k in a["from"]) + f" → {target}",
                    style="dim",
                    wrap=True,
                )
        if view.get("settings"):
            out.line("")
            out.line(
                _("Settings (helpdesk policy set {key} NAME=VALUE):").format(key=view["key"]),
                style="bold",
            )
            _mail_commands().print_settings(out, view["settings"])
    return 0


def do_account_add(args, out: Out) -> int:
    from helpdesk.service import api

    with _session(args, write=True) as s:
        acc = api.add_account(
            s,
            login=args.login,
            policy=args.policy,
            email=args.email,
            kind=args.kind,
            org=args.org,
            contacts=args.contact,
            last_login=args.last_login,
            fields=_pairs(args.field),
            lang=args.account_lang,
            status=args.status,
            actor=api.actor_for(s, _user(args)),
        )
        view = api.account_view(s, acc)
    out.data(view) if out.json else out.line(
        _("Account {login} ({policy}) saved.").format(login=acc.login, policy=acc.policy_key)
    )
    return 0


def do_account_contact(args, out: Out) -> int:
    from helpdesk.service import api

    with _session(args, write=True) as s:
        actor = api.actor_for(s, _user(args))
        acc = api.change_contacts(
            s,
            api.find_account(s, args.login, args.policy),
            add=args.add,
            remove=args.remove,
            actor=actor,
        )
        view = api.account_view(s, acc)
    out.data(view) if out.json else out.line(
        _("Contacts of {login}: {contacts}").format(
            login=acc.login, contacts=", ".join(acc.contacts) or "-"
        )
    )
    return 0


def do_account_show(args, out: Out) -> int:
    from helpdesk.workflow import engine
    from helpdesk.service import api

    with _session(args) as s:
        reader = api.actor_for(s, _user(args), required=False)
        acc = api.find_account(s, args.login, args.policy)
        engine.check_scope(reader, acc.policy_key)
        view = api.account_view(s, acc)
        if api.is_closed(acc):
            read_sensitive(args, "personal-data", account=acc, reason=args.reason or "account show")
        if out.json:
            out.data(view)
        else:
            from helpdesk.storage.models import Policy

            policy = s.get(Policy, acc.policy_key)
            _print_account(
                out, view, policy.timezone if policy else "UTC", policy.name if policy else ""
            )
        return 0


def do_account_list(args, out: Out) -> int:
    from sqlmodel import col, select

    from helpdesk.workflow import engine
    from helpdesk.service import api
    from helpdesk.storage.models import Account

    with _session(args) as s:
        reader = api.actor_for(s, _user(args), required=False)
        api.check_filters(s, policy=args.policy, status=args.status)
        engine.check_scope(reader, args.policy)
        q = select(Account).order_by(col(Account.policy_key), col(Account.login))
        if reader.policies:
            q = q.where(col(Account.policy_key).in_(reader.policies))
        if args.policy:
            q = q.where(Account.policy_key == args.policy)
        if args.status:
            q = q.where(Account.status == args.status)
        accounts = list(s.exec(q.limit(1000)))
        closed = [a.id for a in accounts if api.is_closed(a)]
        if closed:  # closed accounts' personal data is listed: the reading is recorded
            read_sensitive(
                args,
                "personal-data",
                data={"accounts": closed},
                reason=getattr(args, "reason", "") or "account list",
            )
        rows = [api.account_view(s, a) for a in accounts]
        if out.json:
            out.data(rows)
        else:
            from helpdesk.base.labels import label
            from helpdesk.storage.models import Policy

            names = {p.key: p.short_name for p in s.exec(select(Policy))}
            out.table(
                ["login", "policy", "kind", "status", "email"],
                [
                    [
                        r["login"],
                        names.get(r["policy"], r["policy"]),
                        label("account-kind", r["kind"]),
                        label("account-status", r["status"]),
                        r["email"],
                    ]
                    for r in rows
                ],
            )
    return 0


def do_account_import(args, out: Out) -> int:
    import io

    from helpdesk.storage import audit
    from helpdesk.base import files
    from helpdesk.service import api

    handle = io.StringIO(files.read_text(args.path), newline="")  # a regular UTF-8 file, capped
    base = {"login", "policy", "email", "kind", "org", "last_login", "contacts", "status", "lang"}
    done, errors = 0, []
    with handle, _session(args, write=True) as s:
        actor = api.actor_for(s, _user(args))
        reader = csv.DictReader(handle)
        missing = {"login", "policy", "email"} - set(reader.fieldnames or [])
        if missing:
            raise BadInput(
                _("the CSV file lacks the column(s): {cols}").format(
                    cols=", ".join(sorted(missing))
                )
            )
        for n, row in enumerate(reader, start=2):
            try:
                with s.begin_nested():
                    api.add_account(
                        s,
                        login=row["login"],
                        policy=row["policy"],
                        email=row["email"],
                        kind=row.get("kind") or "user",
                        org=row.get("org") or "",
                        last_login=row.get("last_login") or None,
                        contacts=[c for c in (row.get("contacts") or "").split(";") if c.strip()],
                        status=row.get("status") or None,
                        lang=row.get("lang") or "",
                        fields={k: v for k, v in row.items() if k not in base and k and v},
                        actor=actor,
                    )
                done += 1
            except HelpdeskError as exc:
                errors.append({"line": n, "error": str(exc)})
        audit.record(
            s,
            actor=actor.login,
            action="account-import",
            data={
                "file": files.shown(os.path.basename(args.path)),
                "imported": done,
                "errors": len(errors),
            },
        )
    if out.json:
        out.data({"imported": done, "errors": errors})
    else:
        out.line(_("{n} account(s) imported.").format(n=done))
        for e in errors:
            out.line(_("line {line}: {error}").format(**e), style="red")
    return 2 if errors and not done else 0


def _bounce_kinds() -> dict[str, str]:
    return {
        "failed": _("returned"),
        "blocked": _("refused as spam"),
        "delayed": _("delayed"),
        "complaint": _("complaint"),
    }


def _print_ticket(
    out: Out,
    view: dict,
    citations: bool,
    tz: str = "UTC",
    queue: str = "",
    provider: str = "",
    field_specs: dict | None = None,
    step_labels: dict[str, str] | None = None,
) -> None:
    """A ticket for a person: labels, not keys (``queue``: the queue's label, ``provider``:
    the provider's short name, ``field_specs``: the workflow's fields and their labels,
    ``step_labels``: every step of the procedure by its label, the clock's too); times in
    the provider's zone (``tz``)."""
    from rich.text import Text

    from helpdesk.cli.text import local
    from helpdesk.base.labels import event, label, read_timer_note

    steps = {st["key"]: st["label"] for st in view["steps"]}
    step_labels = {**(step_labels or {}), **{a["key"]: a["label"] for a in view["actions"]}}
    out.line(Text(f"#{view['id']}  ", style="bold"), Text(view["subject"] or "-"))
    out.line(
        f"{queue or label('queue-short', view['queue'])} · {provider or view['policy']} · {view['state_label']} ({label('state-kind', view['state_kind'])}) · v{view['version']}"
    )
    status = label("account-status", view["account_status"]) if view["account_status"] else "-"
    out.line(
        _("account: {a} ({s}) · requester: {r}").format(
            a=view["account"] or "-", s=status, r=view["requester"] or "-"
        )
    )
    shown = _field_lines(view["fields"] or {}, field_specs or {}, tz)
    if shown:
        out.line(_("Fields:"))
        for name, value in shown:
            out.line(Text("  " + _("{label}: {value}").format(label=name, value=value)))
    if view["deadline_details"]:
        now = clock.now()
        out.line("")
        out.line(_("Deadlines:") + f"  ({tz})", style="bold")
        for d in view["deadline_details"]:
            extra = f"  → {step_labels.get(d['action'], d['action'])}" if d["action"] else ""
            note = f"  ({d['note']})" if d["note"] else ""
            kind = (
                "  " + _("BINDING (the text fixes this date)")
                if d.get("binding")
                else "  " + _("indicative")
                if d.get("indicative")
                else ""
            )
            late = d["status"] == "pending" and d["at"] and clock.parse_datetime(d["at"]) <= now
            status = _("overdue") if late else label("deadline-status", d["status"])
            out.line(
                f"{'! ' if late else '  '}{label('deadline', d['name']):<28} {local(d['at'], tz, zone=False)}  [{status}]{kind}{extra}{note}",
                style="bold" if late else None,
            )
    for a in view.get("attention", []):
        out.line("")
        out.line(
            _("⚠ Mail #{id} to {to} came back: {reason}").format(
                id=a["outbox"], to=a["to"] or "-", reason=a["text"] or a["status"] or "-"
            ),
            style="bold red",
        )
        out.line(
            _(
                "  Its reader never received it: the ticket waits for a volunteer, not for them (helpdesk outbox retry {id} --note ..., or another address or channel)."
            ).format(id=a["outbox"])
        )
    if view.get("mails"):
        out.line("")
        out.line(_("Mails:"), style="bold")
        for m in view["mails"]:
            status = label("mail-status", m["status"])
            out.line(f"  #{m['id']:<5} {status:<10} {m['to'] or '-'}  {m['subject']}")
            if m["bounce"] and m["status"] != "bounced":
                out.line(
                    "        "
                    + _("{kind}: {reason}").format(
                        kind=_bounce_kinds().get(m["bounce"]["kind"], m["bounce"]["kind"]),
                        reason=m["bounce"]["reason"] or "-",
                    ),
                    style="dim",
                )
    out.line("")
    out.line(_("Procedure:"), style="bold")
    for st in view["steps"]:
        out.line(
            ("▶ " if st["current"] else "  ") + st["label"],
            style="bold" if st["current"] else None,
        )
    if view.get("sanctions"):
        out.line("")
        out.line(
            _("Sanctions ledger of the account (informs; decides nothing):") + f"  ({tz})",
            style="bold",
        )
        _print_ledger(out, view["sanctions"], current=view["id"], tz=tz)
    out.line("")
    out.line(_("Actions:"), style="bold")
    for a in view["actions"]:
        mark = "✔" if a["allowed"] else "✘"
        line = f"  {mark} {a['key']:<20} {a['label']}"
        if a["citation"]:
            line += f"  [{a['citation']}]"
        out.line(line, style=None if a["allowed"] else "dim")
        if not a["allowed"] and a["rule"] != "state":
            out.line(f"      {a['reason']} ({label('rule', a['rule'])})", style="dim")
        if citations and a.get("citation_text"):
            out.line(f"      « {a['citation_text']} »", style="italic")
    _actions_cli().print_of_ticket(out, view.get("service_actions") or [])
    out.line("")
    out.line(_("History:") + f"  ({tz})", style="bold")
    for e in view["events"]:
        arrow = (
            f"{steps.get(e['from'] or '', e['from'] or '')} → {steps.get(e['to'], e['to'])}"
            if e["to"] and e["to"] != e["from"]
            else ""
        )
        timer = read_timer_note(e["note"])
        note = (
            _("{label}: {value}").format(
                label=label("deadline", timer[0]), value=local(timer[1], tz, zone=False)
            )
            if timer
            else e["note"]
        )
        actor = label("role", "system") if e["actor"] == "system" else e["actor"]
        out.line(
            f"  {local(e['at'], tz, zone=False)}  {actor:<10} {event(e['action'], step_labels):<18} {arrow}  {note}"
        )
    from helpdesk.cli.conversation import print_conversation

    print_conversation(out, view)


def _field_lines(fields: dict, specs: dict, tz: str) -> list[tuple[str, str]]:
    """A ticket's fields as a person reads them: ``(label, value)``, the label from the
    workflow (a date an effect noted, ``contract-end``…, by the date's label), a choice by its
    label, yes or no, a moment in the provider's zone ``tz``. Empty fields are left out."""
    from helpdesk.base.i18n import pick
    from helpdesk.base.labels import choice, has, label
    from helpdesk.cli.text import local

    rows = []
    for name, value in fields.items():
        if value in (None, ""):
            continue
        spec = specs.get(name) or {}
        if spec.get("label"):
            shown_name = pick(spec["label"])
        elif has("deadline", name):
            shown_name = label("deadline", name)
        elif has("account-field", name):
            shown_name = label("account-field", name)
        else:
            shown_name = name.replace("-", " ").replace("_", " ").capitalize()
        if value is True:
            shown = _("yes")
        elif value is False:
            shown = _("no")
        elif isinstance(value, str) and _is_moment(value):
            shown = local(clock.parse_datetime(value), tz)
        else:
            shown = choice(name, value)
        rows.append((shown_name, shown))
    return rows


#: An ISO-8601 moment (``2026-11-26T16:12:00Z``) as effects store them in a field: not a date.
_MOMENT = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d(\.\d+)?)?(Z|[+-]\d\d:?\d\d)?")


def _is_moment(text: str) -> bool:
    return _MOMENT.fullmatch(text) is not None


def _print_account(out: Out, view: dict, tz: str, provider: str = "") -> None:
    """An account for a person: labels, not keys (``provider``: the provider's name); times
    in the provider's zone ``tz``."""
    from helpdesk.base.labels import choice, has, label
    from helpdesk.cli.text import local

    rows = [
        (_("Login"), view["login"]),
        (_("Provider"), provider or view["policy"]),
        (_("Kind"), label("account-kind", view["kind"])),
        (_("Status"), label("account-status", view["status"])),
        (_("E-mail"), view["email"]),
        (_("Organisation"), view["org"]),
        (_("Last login"), local(view["last_login"], tz)),
    ]
    for k, v in (view["fields"] or {}).items():
        # a date the procedures noted on the account (membership-end…) by the date's label
        name = label("account-field", k) if has("account-field", k) else label("deadline", k)
        rows.append((name, choice(k, v)))
    if view["contacts"]:
        rows.append((_("Contacts"), ", ".join(view["contacts"])))
    width = max(len(k) for k, _v in rows) + 2
    for k, v in rows:
        out.line(f"{k:<{width}}{v or '-'}")
    out.line("")
    out.line(_("Sanctions ledger:") + f"  ({tz})", style="bold")
    if not view["sanctions"]:
        out.line("  " + _("(none)"))
    _print_ledger(out, view["sanctions"], tz=tz)


def _print_ledger(out: Out, rows: list[dict], current: int | None = None, tz: str = "UTC") -> None:
    """The sanctions ledger for a person: times in the provider's zone ``tz``, queues and
    rungs by their labels (the JSON keeps UTC and the keys)."""
    from rich.text import Text

    from helpdesk.base.labels import label
    from helpdesk.cli.text import local

    for r in rows:
        here = "  " + _("(this ticket)") if current is not None and r["ticket"] == current else ""
        queue = label("queue-short", r["queue"]) if r.get("queue") else ""
        out.line(
            Text(
                f"  {local(r['at'], tz, zone=False)}  #{r['ticket']} {queue}  {label('sanction', r['step']):<16} {r['actor']}  {r['note']}{here}"
            )
        )


def do_ticket_open(args, out: Out) -> int:
    from helpdesk.service import api

    user = _user(args)
    with _session(args, write=True) as s:
        actor = api.actor_for(s, user)
        outcome = api.open_ticket(
            s,
            queue=args.queue,
            policy=args.policy,
            actor=actor,
            account_login=args.account,
            requester=args.requester,
            subject=args.subject,
            fields=_pairs(args.field),
            note=args.note,
            lang=args.mail_lang,
        )
        view = api.ticket_view(s, outcome.ticket, actor)
        view["mails_queued"] = [m.id for m in outcome.mails]
    if out.json:
        out.data(view)
    else:
        out.line(_("Ticket #{id} opened: {state}").format(id=view["id"], state=view["state_label"]))
        for m in outcome.mails:
            out.line(
                "  " + _("mail queued to {to}: {subject}").format(to=m.to_addr, subject=m.subject)
            )
    return 0


def do_ticket_assign(args, out: Out) -> int:
    from helpdesk.service import api

    with _session(args, write=True) as s:
        actor = api.actor_for(s, _user(args))
        ticket = api.assign(
            s,
            args.id,
            actor,
            None if args.login == "-" else args.login,
            expected_version=args.if_version,
        )
        view = api.ticket_view(s, ticket, actor)
    if out.json:
        out.data(view)
    else:
        out.line(_("#{id}: assigned to {who}").format(id=args.id, who=view["assignee"] or "-"))
    return 0


def do_ticket_lang(args, out: Out) -> int:
    from helpdesk.service import api

    with _session(args, write=True) as s:
        actor = api.actor_for(s, _user(args))
        ticket = api.set_lang(s, args.id, actor, args.lang, expected_version=args.if_version)
        view = api.ticket_view(s, ticket, actor)
    if out.json:
        out.data(view)
    else:
        out.line(_("#{id}: mails in {lang}").format(id=args.id, lang=view["lang"]))
    return 0


def do_ticket_act(args, out: Out) -> int:
    from helpdesk.workflow import engine
    from helpdesk.service import api

    user = _user(args)
    with _session(args, write=True) as s:
        actor = api.actor_for(s, user)
        version = args.if_version
        if args.mail_lang:
            ticket = api.set_lang(s, args.id, actor, args.mail_lang, expected_version=version)
            version = ticket.version if version is not None else None
        outcome = engine.apply(
            s,
            args.id,
            args.action,
            actor,
            note=args.note,
            fields=_pairs(args.field),
            checks=args.check,
            expected_version=version,
        )
        if args.dry_run:
            return _actions_cli().dry_run(s, args, outcome, out)  # rolled back: nothing happens
        if outcome.reveal:
            reveal(outcome.reveal)  # before commit: if it cannot be shown, nothing happens
        view = api.ticket_view(s, outcome.ticket, actor)
        view["mails_queued"] = [m.id for m in outcome.mails]
        view["actions_queued"] = [a.id for a in outcome.actions]
        if outcome.output:
            view["material"] = outcome.output
    if out.json:
        out.data(view)
    else:
        out.line(
            _("#{id}: {action} done → {state}").format(
                id=args.id, action=args.action, state=view["state_label"]
            )
        )
        for m in outcome.mails:
            out.line(
                "  " + _("mail queued to {to}: {subject}").format(to=m.to_addr, subject=m.subject)
            )
        _actions_cli().print_queued(out, outcome.actions)
        for item in outcome.output:
            from helpdesk.base.labels import evidence_heading

            out.line(evidence_heading(item), style="bold")
            out.line(item["text"])
    return 0


def do_ticket_show(args, out: Out) -> int:
    from helpdesk.workflow import engine
    from helpdesk.service import api

    with _session(args) as s:
        actor = api.actor_for(s, _user(args), required=False)
        from helpdesk.storage.models import Account

        ticket = api.get_ticket(s, args.id, actor)
        account = s.get(Account, ticket.account_id) if ticket.account_id else None
        if api.is_closed(account):
            read_sensitive(
                args,
                "personal-data",
                account=account,
                data={"ticket": ticket.id},
                reason=args.reason or "ticket show",
            )
        view = api.ticket_view(s, ticket, actor, citation_texts=args.citations)
        if out.json:
            out.data(view)
        else:
            from helpdesk.base.i18n import pick

            d = engine.definition(s, ticket.workflow_id)
            _print_ticket(
                out,
                view,
                args.citations,
                d.policy.timezone,
                queue=pick(d.workflow.title),
                provider=d.policy.short_name,
                field_specs=d.workflow.fields or {},
                step_labels={t.key: pick(t.label) for t in d.transitions},
            )
        return 0


def do_ticket_list(args, out: Out) -> int:
    if args.search:
        from helpdesk.cli import conversation

        return conversation.do_search(args, out)
    from helpdesk.service import listing  # not the whole service API: a read starts fast

    # SQLAlchemy Core on a connection: no SQLModel, no ORM, no models (tests/test_tables.py)
    with _connection(args) as conn:
        actor = listing.actor_for(conn, _user(args), required=False)
        rows = listing.list_tickets(
            conn,
            queue=args.queue,
            state=args.state,
            policy=args.policy,
            account=args.account,
            assignee=args.assignee,
            include_done=args.all,
            overdue_at=clock.now() if args.overdue else None,
            order=args.sort,
            limit=args.limit,
            offset=args.offset,
            actor=actor,
        )
        data = listing.ticket_rows(conn, rows)
        if out.json:
            out.data(data)
        else:
            from helpdesk.cli.ticket_table import print_tickets

            print_tickets(out, conn, data)
    return 0


def do_sweep(args, out: Out) -> int:
    from helpdesk.storage import db
    from helpdesk.service import sweep

    from helpdesk.cli.common import lock_taken
    from helpdesk.storage.locks import Taken

    _session(args).__enter__().close()  # checks the schema
    quiet = getattr(args, "quiet", False)
    try:
        report = sweep.run(db.resolve_url(getattr(args, "db", None)), lock=True)
    except Taken as taken:  # another run, here or on another host, does the work
        return 0 if quiet else lock_taken(out, taken)
    code = (
        1
        if report.refused or report.actions.get("failed") or report.actions.get("uncertain")
        else 0
    )
    if report.config_error or report.actions.get("config_error"):
        code = 2  # a broken helpdesk.toml held something back (it waits, nothing lost)
    if quiet and not code and report.nothing:
        return 0
    if out.json:
        out.data(report.as_dict())
    else:
        print_sweep(out, report, db.resolve_url(getattr(args, "db", None)))
        if report.actions:
            _actions_cli().print_run(out, report.actions)
    return code


def do_backup(args, out: Out) -> int:
    from helpdesk.storage import backup, db
    from helpdesk.service import api

    url = db.resolve_url(getattr(args, "db", None))
    with _session(args) as s:
        actor = api.actor_for(s, _user(args)) if _user(args) else api.installer()
    result = backup.backup(url, args.path, actor=actor.login)
    out.data(result) if out.json else out.line(
        _("Backup written: {path} ({n} bytes)").format(path=result["path"], n=result["bytes"])
    )
    return 0


def do_restore(args, out: Out) -> int:
    from helpdesk.storage import backup, db
    from helpdesk.service import api
    from helpdesk.workflow.engine import require_role

    url = db.resolve_url(getattr(args, "db", None))
    with _session(args) as s:
        actor = api.actor_for(s, _user(args))
        require_role(s, actor, "techadmin")  # replaces everything: a techadmin's act
    if not args.yes:
        raise BadInput(_("restoring replaces everything in {url}: add --yes").format(url=url))
    result = backup.restore(url, args.path, actor=actor.login)
    out.data(result) if out.json else out.line(
        _("Restored from {path}.").format(path=result["path"])
    )
    return 0


def do_volunteer_add(args, out: Out) -> int:
    from helpdesk.base.labels import label
    from helpdesk.service import api

    role = args.role_option or args.role
    if role is None or (args.role and args.role_option and args.role != args.role_option):
        raise BadInput(
            _("give the volunteer's role once: --role ROLE or after the login ({roles})").format(
                roles=", ".join(ROLE_KEYS)
            )
        )
    with _session(args, write=True) as s:
        admin = api.volunteer_admin(s, _user(args))
        v = api.add_volunteer(
            s,
            args.login,
            role,
            name=args.name,
            ssh_key=args.ssh_key,
            policies=args.policy,
            actor=admin,
        )
        data = {
            "login": v.login,
            "role": v.role,
            "policies": v.policies,
            "name": v.name,
            "ssh_keys": len(v.ssh_keys),
        }
    out.data(data) if out.json else out.line(
        _("Volunteer {login}: {role}").format(login=v.login, role=label("role", v.role))
    )
    return 0


def do_volunteer_withdraw(args, out: Out) -> int:
    """``remove-key LOGIN KEY`` withdraws a key; ``deactivate LOGIN`` (key None) the volunteer."""
    from helpdesk.service import api

    with _session(args, write=True) as s:
        admin = api.volunteer_admin(s, _user(args))
        v = api.withdraw(s, args.login, key=args.key, actor=admin)
        data = {"login": v.login, "active": v.active, "ssh_keys": len(v.ssh_keys)}
    out.data(data) if out.json else out.line(
        _("Volunteer {login}: {n} key(s), {state}").format(
            login=v.login, n=len(v.ssh_keys), state=_("active") if v.active else _("withdrawn")
        )
    )
    return 0


def do_volunteer_authorized_keys(args, out: Out) -> int:
    """Withdrawn volunteers, and any row not a sane login and key, are left out."""
    from sqlmodel import col, select

    from helpdesk.storage.models import Volunteer

    from helpdesk.service import sshkeys
    from helpdesk.base.roles import login_problem

    program = args.program or _this_program()
    db = getattr(args, "db", None) or os.environ.get("HELPDESK_DB")
    with _session(args) as s:
        rows = [
            (v.login, k)
            for v in s.exec(
                select(Volunteer).where(Volunteer.active).order_by(col(Volunteer.login))
            )
            if login_problem(v.login) is None
            for k in v.ssh_keys
            if sshkeys.is_key_line(k)
        ]
    lines = [
        sshkeys.authorized_keys_line(login, key, program=program, db=db) for login, key in rows
    ]
    if out.json:
        out.data([{"login": login, "line": line} for (login, _k), line in zip(rows, lines)])
    else:
        sys.stdout.write("".join(line + "\n" for line in lines))
    return 0


def do_volunteer_list(args, out: Out) -> int:
    from sqlmodel import col, select

    from helpdesk.base.labels import label
    from helpdesk.storage.models import Policy, Volunteer

    with _session(args) as s:
        names = {p.key: p.short_name for p in s.exec(select(Policy))}
        volunteers = [
            {
                "login": v.login,
                "role": v.role,
                "policies": v.policies or [],
                "name": v.name,
                "active": v.active,
            }
            for v in s.exec(select(Volunteer).order_by(col(Volunteer.login)))
        ]
    out.data(volunteers) if out.json else out.table(
        ["login", "role", "providers", "name", "withdrawn"],
        [
            [
                r["login"],
                label("role", r["role"]),
                ", ".join(names.get(k, k) for k in r["policies"]) or _("all"),
                r["name"],
                "" if r["active"] else _("withdrawn"),
            ]
            for r in volunteers
        ],
    )
    return 0


def _this_program() -> str:
    """The absolute path of the helpdesk command being run, for forced commands."""
    import shutil

    found = shutil.which("helpdesk")
    if found:
        return os.path.realpath(found)
    return f"{sys.executable} -m helpdesk"


def do_audit(args, out: Out) -> int:
    from helpdesk.storage import audit
    from helpdesk.base import files

    anchors: list = []
    path = args.anchors or _config_value("paths.audit_anchors")
    if path:
        anchors, bad = audit.read_anchors(files.read_text(path))
        if bad:
            raise BadInput(
                _("{path}: line(s) {lines} are not anchors").format(
                    path=files.shown(path), lines=", ".join(map(str, bad[:10]))
                )
            )
    with _session(args) as s:
        count, problems = audit.verify(s, anchors=anchors)
        head = audit.head(s)
    if out.json:
        out.data(
            {
                "events": count,
                "ok": not problems,
                "head": head,
                "anchors": len(anchors),
                "problems": [p.as_dict() for p in problems],
            }
        )
    elif problems:
        out.line(
            _("The audit trail is damaged ({n} events read):").format(n=count), style="bold red"
        )
        for p in problems:
            out.line(f"  event {p.event_id}: {p.what}")
    else:
        out.line(_("The audit trail is intact: {n} events chained.").format(n=count))
        out.line(_("Head: event {id}, {hash}").format(**head))
        if anchors:
            out.line(_("{n} anchor(s) checked.").format(n=len(anchors)))
    return 1 if problems else 0


def do_audit_anchor(args, out: Out) -> int:
    """Write the chain's head outside the database, once the chain verified: a later
    ``audit verify --anchors`` then catches a chain recomputed, cut short or started again."""
    from helpdesk.storage import audit
    from helpdesk.base import files

    path = args.file or _config_value("paths.audit_anchors")
    if not path and not args.syslog:
        raise BadInput(_("where to? give --file PATH (or HELPDESK_AUDIT_ANCHORS) or --syslog"))
    with _session(args) as s:
        count, problems = audit.verify(s)
        head = audit.head(s)
    if problems:
        raise Refused(
            "audit-chain",
            _("the audit trail is damaged: run 'helpdesk audit verify'; nothing was anchored"),
        )
    anchor = audit.Anchor(clock.iso(clock.now()), head["id"], head["hash"])
    if path:
        files.append_private(path, anchor.line() + "\n")
    if args.syslog:
        import syslog

        syslog.openlog("helpdesk", 0, syslog.LOG_AUTH)
        syslog.syslog(syslog.LOG_NOTICE, "helpdesk-audit-anchor " + anchor.line())
    data = {
        "at": anchor.at,
        "id": anchor.id,
        "hash": anchor.hash,
        "events": count,
        "file": path,
        "syslog": bool(args.syslog),
    }
    out.data(data) if out.json else out.line(
        _("Head anchored: event {id}, {hash}").format(id=anchor.id, hash=anchor.hash)
    )
    return 0


def _outbox_row(m, body: bool = False) -> dict:
    d = {
        "id": m.id,
        "ticket": m.ticket_id,
        "to": m.to_addr,
        "subject": m.subject,
        "template": m.template,
        "lang": m.lang,
        "status": m.status,
        "attempts": m.attempts,
        "created_at": clock.iso(m.created_at),
        "sent_at": clock.iso(m.sent_at),
        "last_error": m.last_error,
        "bounce": {
            "at": clock.iso(m.bounced_at),
            "kind": m.bounce_kind,
            "status": m.bounce_status or None,
            "reason": m.bounce_reason,
        }
        if m.bounce_kind
        else None,
    }
    if body:
        d["body"] = m.body
    return d


def do_outbox_send(args, out: Out) -> int:
    """Exit 1 when a mail failed, is held or may not have left."""
    from helpdesk.storage import db
    from helpdesk.outgoing import delivery
    from helpdesk.cli.common import lock_taken
    from helpdesk.storage.locks import Taken

    with _session(args):
        pass  # checks the schema
    try:
        report = delivery.deliver(
            db.resolve_url(getattr(args, "db", None)), limit=args.limit, lock=True
        )
    except Taken as taken:  # another run, here or on another host, does the work
        return 0 if getattr(args, "quiet", False) else lock_taken(out, taken)
    return _operations().print_delivery(args, out, report)


def do_outbox_bounces(args, out: Out) -> int:
    with _session(args) as s:
        from helpdesk.ingest import bounce_intake

        from helpdesk.service import api

        actor = api.actor_for(s, _user(args), required=False)
        rows = bounce_intake.rows(s, actor=actor, unmatched=args.unmatched, limit=args.limit)
        if out.json:
            out.data(rows)
        else:
            out.table(
                ["id", "ticket", "outbox", "recipient", "reason"],
                [
                    [
                        r["id"],
                        r["ticket"] or "-",
                        r["outbox"] or "-",
                        r["recipient"] or "-",
                        r["reason"] or r["status"] or "-",
                    ]
                    for r in rows
                ],
            )
        return 0


def do_outbox_show(args, out: Out) -> int:
    from helpdesk.service import api

    with _session(args) as s:
        d = _outbox_row(
            api.outbox_mail(s, api.actor_for(s, _user(args), required=False), args.id), body=True
        )
        if out.json:
            out.data(d)
        else:
            from rich.text import Text

            for name, value in ((_("To"), d["to"]), (_("Subject"), d["subject"])):
                out.line(Text(_("{label}: {value}").format(label=name, value=value)))
            out.line("")
            out.line(d["body"])
        return 0


def do_outbox_list(args, out: Out) -> int:
    with _session(args) as s:
        from helpdesk.service import api

        actor = api.actor_for(s, _user(args), required=False)
        rows = [
            _outbox_row(m)
            for m in api.outbox_mails(
                s, actor, status=args.status, ticket=args.ticket, limit=args.limit
            )
        ]
    from helpdesk.base.labels import label

    out.data(rows) if out.json else out.table(
        ["id", "ticket", "status", "to", "subject"],
        [
            [r["id"], r["ticket"], label("mail-status", r["status"]), r["to"], r["subject"]]
            for r in rows
        ],
    )
    return 0


def do_reset(args, out: Out) -> int:
    from helpdesk.storage import audit
    from helpdesk.rules import tokens
    from helpdesk.storage.models import Account

    secret = sys.stdin.readline().strip()
    if not secret:
        raise BadInput(_("give the one-time secret on standard input"))
    with _session(args, write=True) as s:
        token = tokens.redeem(s, secret, clock.now())
        result: dict[str, object]
        if token is None:
            audit.record(s, actor="system", action="reset-redeem-refused")
            result = {"valid": False}
        else:
            acc = s.get(Account, token.account_id)
            audit.record(
                s,
                actor="system",
                action="reset-redeemed",
                ticket_id=token.ticket_id,
                account_id=acc.id,
                data={"token": token.id},
            )
            result = {
                "valid": True,
                "account": acc.login,
                "policy": acc.policy_key,
                "ticket": token.ticket_id,
            }
    if out.json:
        out.data(result)
    else:
        out.line(
            _("valid for {a} ({p})").format(a=result["account"], p=result["policy"])
            if result["valid"]
            else _("invalid, expired or already used")
        )
    return 0 if result["valid"] else 1


def _config_value(dotted: str):
    """A value of helpdesk.toml, its environment variable first (helpdesk.base.config)."""
    from helpdesk.base import config

    return config.load().value(dotted)


def _operations():
    from helpdesk.cli import operations  # config, doctor, metrics, the timers' output

    return operations


def _actions_cli():
    from helpdesk.cli import actions  # actions, connectors, account sync, policyd

    return actions


def _mail_commands():
    from helpdesk.cli import mail  # policy set, outbox retry|mark-sent

    return mail


def main(argv: list[str] | None = None) -> int:
    """``helpdesk ARGV`` in this process, without the TUI's early backend process
    (``helpdesk.cli.entry.main`` is the program's)."""
    from helpdesk.cli.parser import parse

    return run(parse(sys.argv[1:] if argv is None else argv))


def build_parser():
    """The whole parser, every command's built (to walk it)."""
    from helpdesk.cli.parser import build_parser

    return build_parser(complete=True)


def run(args) -> int:
    """Run the command the parser read: its ``func`` (``helpdesk.cli.parser``)."""
    from helpdesk.base import files

    files.private_umask()  # the database, its WAL, backups, the sent Maildir: 0600 in 0700 folders
    out = Out(getattr(args, "json", False))
    try:
        if getattr(args, "now", None):
            clock.set_now(args.now)
        # A training database lives at its own clock. The TUI's backend adopts it when it
        # loads what the database holds (helpdesk.tui_api.backend.Backend.load_info).
        elif (
            not os.environ.get("HELPDESK_NOW")
            and args.command not in (None, "tui", "train", "demo")
            and not _reads_logs(args)
        ):
            from helpdesk.training import clock as training_clock

            training_clock.adopt_clock(getattr(args, "db", None))
        return args.func(args, out)
    except clock.BadDate as exc:
        return _fail(out, BadInput(str(exc)))
    except HelpdeskError as exc:
        return _fail(out, exc)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        said = database_error(exc)
        if said is None:
            raise
        return _fail(out, said)


def database_error(exc: BaseException) -> HelpdeskError | None:
    """What a person is told when the database cannot do what was asked: busy (another
    writer held it too long), unreachable, or a number it cannot hold. None: a bug."""
    if isinstance(exc, OverflowError):
        return BadInput(_("a number is too large: ids and counts go up to 2^63 - 1"))
    if isinstance(exc, UnicodeEncodeError) and "surrogates" in str(
        exc
    ):  # bytes that were not UTF-8 on the command line
        return BadInput(_("an argument is not valid UTF-8 text"))
    if not type(exc).__module__.startswith("sqlalchemy"):
        return None
    from sqlalchemy.exc import DBAPIError, OperationalError

    text = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    first = text[0] if text else type(exc).__name__
    if "locked" in first or "busy" in first:
        return BadInput(
            _(
                "the database is busy: another helpdesk command held it too long; nothing was changed, try again"
            )
        )
    if isinstance(exc, OperationalError):
        return BadInput(_("the database cannot be used: {error}").format(error=first[:300]))
    if isinstance(exc, DBAPIError):
        return BadInput(_("the database refused the request: {error}").format(error=first[:300]))
    return None


def _reads_logs(args) -> bool:
    """'ingest postfix' reads its logs while the database layer loads beside it: the clock is
    adopted there (helpdesk.cli.ingest._postfix_prologue), not before."""
    return args.command == "ingest" and getattr(args, "sub", None) == "postfix"


def _fail(out: Out, exc: HelpdeskError) -> int:
    if out.json:
        out.data(exc.as_dict())
    prefix = _("refused") if exc.exit_code == 1 else _("error")
    sys.stderr.write(f"{prefix}: {exc}\n")
    return exc.exit_code
