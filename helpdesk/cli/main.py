"""The command line: the scriptable twin of the TUI.

Exit codes: 0 done, 1 refused by a rule (the message names the rule and cites the
article), 2 bad input. ``--json`` on every read and act. Reading and acting never import
Textual; only ``helpdesk`` (no command) and ``helpdesk demo`` open the TUI.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
from typing import Any

from helpdesk.base import clock
from helpdesk.cli import serve
from helpdesk.base.errors import BadInput, HelpdeskError
from helpdesk.base.i18n import _, set_lang

QUEUES = ("password-reset", "closure", "abuse", "mail-reputation")


# --- output ------------------------------------------------------------------------------


class Out:
    """Prints for people (Rich, untrusted text never read as markup) or for scripts (JSON)."""

    def __init__(self, as_json: bool):
        self.json = as_json
        self._console = None

    @property
    def console(self):
        if self._console is None:
            from rich.console import Console

            self._console = Console(highlight=False, soft_wrap=True)
        return self._console

    def data(self, payload: Any) -> None:
        sys.stdout.write(json.dumps(payload, ensure_ascii=False, indent=2, default=str) + "\n")

    def line(self, *parts: Any, style: str | None = None) -> None:
        from rich.text import Text

        text = Text(style=style or "")
        for p in parts:
            text.append_text(p) if isinstance(p, Text) else text.append(str(p))
        self.console.print(text)

    def table(self, columns: list[str], rows: list[list[Any]]) -> None:
        from rich.table import Table
        from rich.text import Text

        from helpdesk.cli.text import header

        t = Table(box=None, pad_edge=False, show_edge=False, header_style="bold")
        for c in columns:
            t.add_column(header(c), overflow="fold")
        for r in rows:
            t.add_row(*[Text("" if v is None else str(v)) for v in r])
        self.console.print(t)


def reveal(secrets_: list[dict]) -> None:
    """Show a one-time secret to the person at the terminal only: never on stdout, so it
    cannot end up in a script's output, a log or a pipe."""
    try:
        tty = open("/dev/tty", "w")
    except OSError:
        raise BadInput(_("a one-time code can only be shown on a terminal; run this from an interactive session")) from None
    with tty:
        for s in secrets_:
            tty.write(
                "\n  " + _("One-time code, to read out on the phone to the registered contact:") + "\n\n"
                f"      {s['secret']}\n\n  " + _("Valid once, until {expires}. It will not be shown again.").format(expires=s["expires"]) + "\n\n"
            )


# --- argument parsing --------------------------------------------------------------------


def _common(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("global options")
    g.add_argument("--db", default=argparse.SUPPRESS, help="SQLAlchemy URL or SQLite path (env HELPDESK_DB)")
    g.add_argument("--as", dest="user", default=argparse.SUPPRESS, help="volunteer login acting (env HELPDESK_USER)")
    g.add_argument("--now", default=argparse.SUPPRESS, help="the clock's now, ISO-8601 (env HELPDESK_NOW)")
    g.add_argument("--lang", choices=["fr", "en"], default=argparse.SUPPRESS, help="interface language (default fr)")
    g.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="machine-readable output")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="helpdesk", description=_("Terminal helpdesk for small non-profit hosting providers."))
    _common(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def cmd(parent, name: str, help: str) -> argparse.ArgumentParser:
        p = parent.add_parser(name, help=help, description=help)
        _common(p)
        return p

    p = cmd(sub, "init", _("create or upgrade the database and load the policy packs"))
    p.add_argument("--policy", action="append", help=_("load only this pack (repeatable)"))
    p.add_argument("--training", action="store_true", help=_("mark this database as a training database"))

    cmd(sub, "demo", _("open the TUI on a fresh demo database"))
    p = cmd(sub, "tui", _("open the TUI on the configured database"))

    pol = sub.add_parser("policy", help=_("policy packs")).add_subparsers(dest="sub", metavar="SUB", required=True)
    cmd(pol, "list", _("list the policy packs"))
    p = cmd(pol, "show", _("show a pack: parameters, citations, procedures"))
    p.add_argument("key")

    acc = sub.add_parser("account", help=_("accounts")).add_subparsers(dest="sub", metavar="SUB", required=True)
    p = cmd(acc, "add", _("add or update an account"))
    p.add_argument("login")
    p.add_argument("--policy", required=True)
    p.add_argument("--email", required=True)
    p.add_argument("--kind", default="user", choices=["user", "admin", "employee", "member", "end-user"])
    p.add_argument("--org", default="")
    p.add_argument("--contact", action="append", help=_("another registered contact address (repeatable; none given: unchanged)"))
    p.add_argument("--last-login")
    p.add_argument("--status", default="active")
    p.add_argument("--account-lang", default="", choices=["", "fr", "en"], help=_("language of the mails to this account"))
    p.add_argument("--field", action="append", default=[], metavar="K=V")
    p = cmd(acc, "import", _("import accounts from a CSV file (login,policy,email,kind,org,last_login,contacts,...)"))
    p.add_argument("path")
    p = cmd(acc, "show", _("show an account and its sanctions ledger"))
    p.add_argument("login")
    p.add_argument("--policy")
    p.add_argument("--reason", default="", help=_("why you read a closed account's personal data (recorded)"))
    p = cmd(acc, "contact", _("add or remove an account's contact addresses"))
    p.add_argument("login")
    p.add_argument("--policy")
    p.add_argument("--add", action="append", default=[], metavar="ADDRESS")
    p.add_argument("--remove", action="append", default=[], metavar="ADDRESS")
    p = cmd(acc, "list", _("list accounts"))
    p.add_argument("--policy")
    p.add_argument("--status")
    p.add_argument("--reason", default="", help=_("why you list closed accounts (recorded with the reading)"))

    tk = sub.add_parser("ticket", help=_("tickets")).add_subparsers(dest="sub", metavar="SUB", required=True)
    p = cmd(tk, "open", _("open a ticket"))
    p.add_argument("queue", choices=QUEUES)
    p.add_argument("--policy", required=True)
    p.add_argument("--account")
    p.add_argument("--requester", default="")
    p.add_argument("--subject", default="")
    p.add_argument("--note", default="")
    p.add_argument("--mail-lang", choices=["fr", "en"], help=_("language of the mails of this ticket"))
    p.add_argument("--field", action="append", default=[], metavar="K=V")
    p = cmd(tk, "list", _("list tickets, overdue and soonest first"))
    p.add_argument("--queue", choices=QUEUES)
    p.add_argument("--state")
    p.add_argument("--policy")
    p.add_argument("--account")
    p.add_argument("--assignee")
    p.add_argument("--all", action="store_true", help=_("include finished tickets"))
    p.add_argument("--overdue", action="store_true")
    p.add_argument("--sort", choices=["due", "age", "state", "new"], default="due")
    p.add_argument("--limit", type=int, default=100)
    p.add_argument("--offset", type=int, default=0)
    p = cmd(tk, "show", _("state, deadlines, history, allowed and blocked actions"))
    p.add_argument("id", type=int)
    p.add_argument("--citations", action="store_true", help=_("print the French text of each citation"))
    p.add_argument("--reason", default="", help=_("why you read a closed account's personal data (recorded)"))
    p = cmd(tk, "act", _("take an action on a ticket"))
    p.add_argument("id", type=int)
    p.add_argument("action")
    p.add_argument("--note", default="")
    p.add_argument("--field", action="append", default=[], metavar="K=V")
    p.add_argument("--check", action="append", default=[], metavar="ITEM", help=_("tick a checklist item"))
    p.add_argument("--if-version", type=int, help=_("refuse if the ticket changed since this version"))
    p.add_argument("--mail-lang", choices=["fr", "en"], help=_("first set the language of the ticket's mails"))
    p = cmd(tk, "assign", _("give a ticket to a volunteer ('-' for nobody)"))
    p.add_argument("id", type=int)
    p.add_argument("login")
    p.add_argument("--if-version", type=int, help=_("refuse if the ticket changed since this version"))
    p = cmd(tk, "lang", _("set the language of a ticket's mails"))
    p.add_argument("id", type=int)
    p.add_argument("lang", choices=["fr", "en"])
    p.add_argument("--if-version", type=int, help=_("refuse if the ticket changed since this version"))

    cmd(sub, "sweep", _("run what is due: timers, expiries, inactivity scans"))
    p = cmd(sub, "backup", _("write a consistent copy of the database to a new file"))
    p.add_argument("path")
    p = cmd(sub, "restore", _("replace the database's content by a backup"))
    p.add_argument("path")
    p.add_argument("--yes", action="store_true", help=_("confirm: what is in the database now is replaced"))

    from helpdesk.cli.ingest import add_parsers as ingest_parsers

    ingest_parsers(sub, cmd)  # ingest mail|arf|dmarc|postfix, quarantine list|show
    from helpdesk.cli.train import add_parser as training_parser

    training_parser(sub, cmd)  # train [list|start|reset|clock|check]
    serve.add_parser(sub, cmd)  # serve [--host H] [--port P]: the TUI in a web browser

    vol = sub.add_parser("volunteer", help=_("volunteers and roles")).add_subparsers(dest="sub", metavar="SUB", required=True)
    p = cmd(vol, "add", _("add a volunteer or change their role"))
    p.add_argument("login")
    p.add_argument("--role", required=True, choices=["volunteer", "oncall", "techadmin", "trainer"])
    p.add_argument("--name", default="")
    p.add_argument("--ssh-key", help=_("an OpenSSH public key, or the path of a .pub file"))
    cmd(vol, "list", _("list volunteers"))
    p = cmd(vol, "authorized-keys", _("print the authorized_keys lines of the shared system account"))
    p.add_argument("--program", help=_("the helpdesk command the keys may run (default: this one)"))
    p = cmd(vol, "remove-key", _("withdraw an SSH key"))
    p.add_argument("login")
    p.add_argument("key")
    p = cmd(vol, "deactivate", _("withdraw a volunteer: their keys stop working"))
    p.add_argument("login")

    au = sub.add_parser("audit", help=_("the audit trail")).add_subparsers(dest="sub", metavar="SUB", required=True)
    cmd(au, "verify", _("check that no event was changed, deleted or reordered"))

    ob = sub.add_parser("outbox", help=_("mails queued by procedures")).add_subparsers(dest="sub", metavar="SUB", required=True)
    p = cmd(ob, "list", _("list queued mails"))
    p.add_argument("--status")
    p.add_argument("--ticket", type=int)
    p.add_argument("--limit", type=int, default=100)
    p = cmd(ob, "show", _("show one queued mail"))
    p.add_argument("id", type=int)
    p = cmd(ob, "send", _("deliver the mails that are due (SMTP, or a Maildir when no SMTP host is set)"))
    p.add_argument("--limit", type=int, default=100)
    from helpdesk.cli.mail import add_parsers as mail_parsers

    mail_parsers(pol, ob, cmd)  # policy set, outbox retry|mark-sent

    rs = sub.add_parser("reset", help=_("one-time reset credentials")).add_subparsers(dest="sub", metavar="SUB", required=True)
    cmd(rs, "redeem", _("check and spend a one-time secret read from standard input"))
    return parser


# --- commands ----------------------------------------------------------------------------


def _session(args, write: bool = False):
    from helpdesk.storage import db

    url = db.resolve_url(getattr(args, "db", None))
    check_schema(url)
    return db.write_session(url) if write else db.read_session(url)


def check_schema(url: str) -> None:
    from helpdesk.policy import install

    rev = install.current_revision(url)
    if rev is None:
        raise BadInput(_("the database {url} is not initialised: run 'helpdesk init'").format(url=url))
    if rev != install.HEAD:
        raise BadInput(_("the database schema is out of date: run 'helpdesk init' to upgrade it"))


def _pairs(values):
    from helpdesk.base.fields import parse_pairs

    return parse_pairs(values)


def do_init(args, out: Out) -> int:
    from helpdesk.storage import db
    from helpdesk.policy import install

    url = db.resolve_url(getattr(args, "db", None))
    changed = install.init(url, args.policy, training=True if args.training else None)
    if out.json:
        out.data({"database": url, "loaded": changed, "revision": install.current_revision(url)})
    else:
        out.line(_("Database ready: {url}").format(url=url))
        out.line(_("Policy packs loaded: {keys}").format(keys=", ".join(changed) if changed else _("none changed")))
    return 0


def do_policy(args, out: Out) -> int:
    from sqlmodel import select

    from helpdesk.service import api
    from helpdesk.storage.models import Policy, Workflow

    if args.sub == "set":
        return _mail_commands().do_policy_set(args, out)
    with _session(args) as s:
        if args.sub == "list":
            rows = []
            for p in s.exec(select(Policy).order_by(Policy.key)):
                queues = list(s.exec(select(Workflow.queue).where(Workflow.policy_key == p.key).order_by(Workflow.id)))
                rows.append({"key": p.key, "name": p.name, "timezone": p.timezone, "queues": queues, "source": p.source})
            if out.json:
                out.data(rows)
            else:
                out.table(["key", "name", "timezone", "queues"], [[r["key"], r["name"], r["timezone"], ", ".join(r["queues"])] for r in rows])
            return 0
        view = api.policy_view(s, args.key)
        if out.json:
            out.data(view)
            return 0
        out.line(f"{view['name']} ({view['key']}) — {view['timezone']} — {view['source']}", style="bold")
        for wf in view["workflows"]:
            out.line("")
            out.line(f"{wf['queue']}: {wf['title']}", style="bold")
            for a in wf["actions"]:
                if a["auto"]:
                    continue
                out.line(f"  {a['key']:<20} {', '.join(a['from'])} → {a['to']}  [{a['role']}]  {a['citation']}")
        if view.get("settings"):
            out.line("")
            out.line(_("Settings (helpdesk policy set {key} NAME=VALUE):").format(key=view["key"]), style="bold")
            _mail_commands().print_settings(out, view["settings"])
    return 0


def do_account(args, out: Out) -> int:
    from sqlmodel import select

    from helpdesk.service import api
    from helpdesk.storage.models import Account

    if args.sub == "add":
        with _session(args, write=True) as s:
            acc = api.add_account(
                s, login=args.login, policy=args.policy, email=args.email, kind=args.kind, org=args.org,
                contacts=args.contact, last_login=args.last_login, fields=_pairs(args.field),
                lang=args.account_lang, status=args.status,
            )
            view = api.account_view(s, acc)
        out.data(view) if out.json else out.line(_("Account {login} ({policy}) saved.").format(login=acc.login, policy=acc.policy_key))
        return 0
    if args.sub == "import":
        return _import_accounts(args, out)
    if args.sub == "contact":
        with _session(args, write=True) as s:
            acc = api.change_contacts(s, api.find_account(s, args.login, args.policy), add=args.add, remove=args.remove)
            view = api.account_view(s, acc)
        out.data(view) if out.json else out.line(_("Contacts of {login}: {contacts}").format(login=acc.login, contacts=", ".join(acc.contacts) or "-"))
        return 0
    with _session(args) as s:
        if args.sub == "show":
            acc = api.find_account(s, args.login, args.policy)
            view = api.account_view(s, acc)
            if api.is_closed(acc):
                read_sensitive(args, "personal-data", account=acc, reason=args.reason or "account show")
            if out.json:
                out.data(view)
            else:
                for key in ("login", "policy", "kind", "status", "email", "org", "last_login"):
                    out.line(f"{key:<12} {view[key] or ''}")
                for k, v in (view["fields"] or {}).items():
                    out.line(f"{k:<12} {v}")
                if view["contacts"]:
                    out.line(f"{'contacts':<12} {', '.join(view['contacts'])}")
                out.line("")
                out.line(_("Sanctions ledger:"), style="bold")
                if not view["sanctions"]:
                    out.line("  " + _("(none)"))
                for r in view["sanctions"]:
                    out.line(f"  {r['at']}  #{r['ticket']}  {r['step']:<16} {r['actor']}  {r['note']}")
            return 0
        q = select(Account).order_by(Account.policy_key, Account.login)
        if args.policy:
            q = q.where(Account.policy_key == args.policy)
        if args.status:
            q = q.where(Account.status == args.status)
        accounts = list(s.exec(q.limit(1000)))
        closed = [a.id for a in accounts if api.is_closed(a)]
        if closed:  # closed accounts' personal data is listed: the reading is recorded
            read_sensitive(args, "personal-data", data={"accounts": closed}, reason=getattr(args, "reason", "") or "account list")
        rows = [api.account_view(s, a) for a in accounts]
        if out.json:
            out.data(rows)
        else:
            out.table(["login", "policy", "kind", "status", "email"], [[r["login"], r["policy"], r["kind"], r["status"], r["email"]] for r in rows])
    return 0


def read_sensitive(args, what: str, **kw) -> None:
    """Record a sensitive read (``service.read_sensitive``: role, reason, audit event) in a
    transaction of its own, before anything is shown. Without --as, the personal data of a
    closed account is read as the Unix user; material needs a volunteer of the right role."""
    import getpass

    from helpdesk.service import api
    from helpdesk.rules.context import Actor

    user = getattr(args, "user", None) or os.environ.get("HELPDESK_USER")
    with _session(args, write=True) as w:
        if user or api.SENSITIVE[what]:
            actor = api.actor_for(w, user)
        else:
            actor = Actor(f"unix:{getpass.getuser()}", "-")
        api.read_sensitive(w, actor, what, **kw)


def _import_accounts(args, out: Out) -> int:
    from helpdesk.storage import audit
    from helpdesk.service import api

    try:
        handle = open(args.path, newline="", encoding="utf-8-sig")
    except OSError as exc:
        raise BadInput(_("cannot read {path}: {error}").format(path=args.path, error=exc.strerror)) from None
    base = {"login", "policy", "email", "kind", "org", "last_login", "contacts", "status", "lang"}
    done, errors = 0, []
    with handle, _session(args, write=True) as s:
        reader = csv.DictReader(handle)
        missing = {"login", "policy", "email"} - set(reader.fieldnames or [])
        if missing:
            raise BadInput(_("the CSV file lacks the column(s): {cols}").format(cols=", ".join(sorted(missing))))
        for n, row in enumerate(reader, start=2):
            try:
                with s.begin_nested():
                    api.add_account(
                        s, login=row["login"], policy=row["policy"], email=row["email"], kind=row.get("kind") or "user",
                        org=row.get("org") or "", last_login=row.get("last_login") or None,
                        contacts=[c for c in (row.get("contacts") or "").split(";") if c.strip()],
                        status=row.get("status") or "active", lang=row.get("lang") or "",
                        fields={k: v for k, v in row.items() if k not in base and k and v},
                    )
                done += 1
            except HelpdeskError as exc:
                errors.append({"line": n, "error": str(exc)})
        audit.record(s, actor="system", action="account-import", data={"file": os.path.basename(args.path), "imported": done, "errors": len(errors)})
    if out.json:
        out.data({"imported": done, "errors": errors})
    else:
        out.line(_("{n} account(s) imported.").format(n=done))
        for e in errors:
            out.line(_("line {line}: {error}").format(**e), style="red")
    return 2 if errors and not done else 0


def _print_ticket(out: Out, view: dict, citations: bool, tz: str = "UTC") -> None:
    """A ticket for a person: labels, not keys; times in the provider's zone (``tz``)."""
    from rich.text import Text

    from helpdesk.cli.text import local
    from helpdesk.base.labels import choice, event, label, read_timer_note

    steps = {st["key"]: st["label"] for st in view["steps"]}
    step_labels = {a["key"]: a["label"] for a in view["actions"]}
    out.line(Text(f"#{view['id']}  ", style="bold"), Text(view["subject"] or "-"))
    out.line(f"{view['queue']} · {view['policy']} · {view['state_label']} ({label('state-kind', view['state_kind'])}) · v{view['version']}")
    status = label("account-status", view["account_status"]) if view["account_status"] else "-"
    out.line(_("account: {a} ({s}) · requester: {r}").format(a=view["account"] or "-", s=status, r=view["requester"] or "-"))
    if view["fields"]:
        out.line(_("fields: ") + ", ".join(f"{k}={choice(k, v)}" for k, v in view["fields"].items()))
    if view["deadline_details"]:
        out.line("")
        out.line(_("Deadlines:") + f"  ({tz})", style="bold")
        for d in view["deadline_details"]:
            extra = f"  → {step_labels.get(d['action'], d['action'])}" if d["action"] else ""
            note = f"  ({d['note']})" if d["note"] else ""
            out.line(f"  {label('deadline', d['name']):<28} {local(d['at'], tz, zone=False)}  [{label('deadline-status', d['status'])}]{extra}{note}")
    out.line("")
    out.line(_("Procedure:"), style="bold")
    for st in view["steps"]:
        out.line(("▶ " if st["current"] else "  ") + f"{st['label']} ({st['key']})", style="bold" if st["current"] else None)
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
    out.line("")
    out.line(_("History:") + f"  ({tz})", style="bold")
    for e in view["events"]:
        arrow = f"{steps.get(e['from'] or '', e['from'] or '')} → {steps.get(e['to'], e['to'])}" if e["to"] and e["to"] != e["from"] else ""
        timer = read_timer_note(e["note"])
        note = f"{label('deadline', timer[0])}: {local(timer[1], tz, zone=False)}" if timer else e["note"]
        out.line(f"  {local(e['at'], tz, zone=False)}  {e['actor']:<10} {event(e['action'], step_labels):<18} {arrow}  {note}")


def do_ticket(args, out: Out) -> int:
    from helpdesk.workflow import engine
    from helpdesk.service import api

    user = getattr(args, "user", None) or os.environ.get("HELPDESK_USER")
    if args.sub == "open":
        with _session(args, write=True) as s:
            actor = api.actor_for(s, user)
            outcome = api.open_ticket(
                s, queue=args.queue, policy=args.policy, actor=actor, account_login=args.account,
                requester=args.requester, subject=args.subject, fields=_pairs(args.field), note=args.note,
                lang=args.mail_lang,
            )
            view = api.ticket_view(s, outcome.ticket, actor)
            view["mails_queued"] = [m.id for m in outcome.mails]
        if out.json:
            out.data(view)
        else:
            out.line(_("Ticket #{id} opened: {state}").format(id=view["id"], state=view["state_label"]))
            for m in outcome.mails:
                out.line("  " + _("mail queued to {to}: {subject}").format(to=m.to_addr, subject=m.subject))
        return 0
    if args.sub in ("assign", "lang"):
        with _session(args, write=True) as s:
            actor = api.actor_for(s, user)
            if args.sub == "assign":
                ticket = api.assign(s, args.id, actor, None if args.login == "-" else args.login, expected_version=args.if_version)
            else:
                ticket = api.set_lang(s, args.id, actor, args.lang, expected_version=args.if_version)
            view = api.ticket_view(s, ticket, actor)
        if out.json:
            out.data(view)
        elif args.sub == "assign":
            out.line(_("#{id}: assigned to {who}").format(id=args.id, who=view["assignee"] or "-"))
        else:
            out.line(_("#{id}: mails in {lang}").format(id=args.id, lang=view["lang"]))
        return 0
    if args.sub == "act":
        with _session(args, write=True) as s:
            actor = api.actor_for(s, user)
            version = args.if_version
            if args.mail_lang:
                ticket = api.set_lang(s, args.id, actor, args.mail_lang, expected_version=version)
                version = ticket.version if version is not None else None
            outcome = engine.apply(
                s, args.id, args.action, actor, note=args.note, fields=_pairs(args.field), checks=args.check,
                expected_version=version,
            )
            if outcome.reveal:
                reveal(outcome.reveal)  # before commit: if it cannot be shown, nothing happens
            view = api.ticket_view(s, outcome.ticket, actor)
            view["mails_queued"] = [m.id for m in outcome.mails]
            if outcome.output:
                view["material"] = outcome.output
        if out.json:
            out.data(view)
        else:
            out.line(_("#{id}: {action} done → {state}").format(id=args.id, action=args.action, state=view["state_label"]))
            for m in outcome.mails:
                out.line("  " + _("mail queued to {to}: {subject}").format(to=m.to_addr, subject=m.subject))
            for item in outcome.output:
                out.line(f"--- evidence {item['evidence']} ({item['kind']}, sha256 {item['sha256'][:12]}) ---", style="bold")
                out.line(item["text"])
        return 0
    with _session(args) as s:
        actor = api.actor_for(s, user, required=False)
        if args.sub == "show":
            from helpdesk.storage.models import Account

            ticket = api.get_ticket(s, args.id)
            account = s.get(Account, ticket.account_id) if ticket.account_id else None
            if api.is_closed(account):
                read_sensitive(args, "personal-data", account=account, data={"ticket": ticket.id}, reason=args.reason or "ticket show")
            view = api.ticket_view(s, ticket, actor, citation_texts=args.citations)
            if out.json:
                out.data(view)
            else:
                _print_ticket(out, view, args.citations, engine.definition(s, ticket.workflow_id).policy.timezone)
            return 0
        rows = api.list_tickets(
            s, queue=args.queue, state=args.state, policy=args.policy, account=args.account, assignee=args.assignee,
            include_done=args.all, overdue_at=clock.now() if args.overdue else None, order=args.sort,
            limit=args.limit, offset=args.offset,
        )
        data = [api.ticket_row(s, t) for t in rows]
        if out.json:
            out.data(data)
        else:
            from sqlmodel import select

            from helpdesk.cli.text import local
            from helpdesk.storage.models import Policy

            now = clock.iso(clock.now())
            zones = {p.key: p.timezone for p in s.exec(select(Policy))}
            labels = {t.id: api.state_label(s, t) for t in rows}
            out.table(
                ["id", "queue", "policy", "state", "account", "due", "subject"],
                [[r["id"], r["queue"], r["policy"], labels.get(r["id"], r["state"]), r["account"] or "-",
                  ("! " if r["due_at"] and r["due_at"] <= now else "") + local(r["due_at"], zones.get(r["policy"], "UTC"), zone=False), r["subject"]]
                 for r in data],
            )
            shown = sorted({(r["policy"], zones.get(r["policy"], "UTC")) for r in data})
            if shown:
                out.line(_("Times in each provider's zone: {zones}").format(zones=", ".join(f"{k} {z}" for k, z in shown)), style="dim")
    return 0


def do_sweep(args, out: Out) -> int:
    from helpdesk.storage import db
    from helpdesk.workflow import sweep

    _session(args).__enter__().close()  # checks the schema
    report = sweep.run(db.resolve_url(getattr(args, "db", None)))
    if out.json:
        out.data(report.as_dict())
    else:
        print_sweep(out, report)
    return 0


def print_sweep(out: Out, report) -> None:
    """What a sweep did, for people (``sweep``, ``train clock``)."""
    out.line(_("Sweep at {now}: {t} step(s) taken, {o} ticket(s) opened, {r} refused.").format(
        now=report.now, t=len(report.taken), o=len(report.opened), r=len(report.refused)))
    for t in report.taken:
        out.line(f"  #{t['ticket']}: {t['action']} → {t['state']}")
    for o in report.opened:
        out.line(f"  #{o['ticket']}: {o['policy']} {o['account']} ({o['reason']})")
    for r in report.refused:
        out.line(f"  {r}", style="red")


def do_backup(args, out: Out) -> int:
    from helpdesk.storage import backup, db

    _session(args).__enter__().close()  # checks the schema
    url = db.resolve_url(getattr(args, "db", None))
    user = getattr(args, "user", None) or os.environ.get("HELPDESK_USER") or "system"
    if args.command == "backup":
        result = backup.backup(url, args.path, actor=user)
        out.data(result) if out.json else out.line(_("Backup written: {path} ({n} bytes)").format(path=result["path"], n=result["bytes"]))
        return 0
    if not args.yes:
        raise BadInput(_("restoring replaces everything in {url}: add --yes").format(url=url))
    result = backup.restore(url, args.path)
    out.data(result) if out.json else out.line(_("Restored from {path}.").format(path=result["path"]))
    return 0


def do_volunteer(args, out: Out) -> int:
    from sqlmodel import select

    from helpdesk.service import api
    from helpdesk.storage.models import Volunteer

    if args.sub == "add":
        with _session(args, write=True) as s:
            v = api.add_volunteer(s, args.login, args.role, name=args.name, ssh_key=args.ssh_key)
            data = {"login": v.login, "role": v.role, "name": v.name, "ssh_keys": len(v.ssh_keys)}
        out.data(data) if out.json else out.line(_("Volunteer {login}: {role}").format(login=v.login, role=v.role))
        return 0
    if args.sub in ("remove-key", "deactivate"):
        with _session(args, write=True) as s:
            v = api.withdraw(s, args.login, key=args.key if args.sub == "remove-key" else None)
            data = {"login": v.login, "active": v.active, "ssh_keys": len(v.ssh_keys)}
        out.data(data) if out.json else out.line(_("Volunteer {login}: {n} key(s), {state}").format(
            login=v.login, n=len(v.ssh_keys), state=_("active") if v.active else _("withdrawn")))
        return 0
    if args.sub == "authorized-keys":
        from helpdesk.service import sshkeys

        program = args.program or _this_program()
        db = getattr(args, "db", None) or os.environ.get("HELPDESK_DB")
        with _session(args) as s:
            rows = [(v.login, k) for v in s.exec(select(Volunteer).where(Volunteer.active).order_by(Volunteer.login)) for k in v.ssh_keys]
        lines = [sshkeys.authorized_keys_line(login, key, program=program, db=db) for login, key in rows]
        if out.json:
            out.data([{"login": login, "line": line} for (login, _k), line in zip(rows, lines)])
        else:
            sys.stdout.write("".join(line + "\n" for line in lines))
        return 0
    with _session(args) as s:
        rows = [{"login": v.login, "role": v.role, "name": v.name, "active": v.active} for v in s.exec(select(Volunteer).order_by(Volunteer.login))]
    out.data(rows) if out.json else out.table(["login", "role", "name"], [[r["login"], r["role"], r["name"]] for r in rows])
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

    with _session(args) as s:
        count, problems = audit.verify(s)
    if out.json:
        out.data({"events": count, "ok": not problems, "problems": [p.as_dict() for p in problems]})
    elif problems:
        out.line(_("The audit trail is damaged ({n} events read):").format(n=count), style="bold red")
        for p in problems:
            out.line(f"  event {p.event_id}: {p.what}")
    else:
        out.line(_("The audit trail is intact: {n} events chained.").format(n=count))
    return 1 if problems else 0


def do_outbox(args, out: Out) -> int:
    if args.sub in ("retry", "mark-sent"):
        return _mail_commands().do_outbox_decision(args, out)
    from sqlmodel import select

    from helpdesk.storage.models import Outbox

    def row(m: Outbox, body: bool = False) -> dict:
        d = {"id": m.id, "ticket": m.ticket_id, "to": m.to_addr, "subject": m.subject, "template": m.template,
             "lang": m.lang, "status": m.status, "attempts": m.attempts, "created_at": clock.iso(m.created_at),
             "sent_at": clock.iso(m.sent_at), "last_error": m.last_error}
        if body:
            d["body"] = m.body
        return d

    if args.sub == "send":  # exit 1 when a mail failed, is held or may not have left
        from helpdesk.storage import db
        from helpdesk.outgoing import delivery

        with _session(args):
            pass  # checks the schema
        report = delivery.deliver(db.resolve_url(getattr(args, "db", None)), limit=args.limit)
        if out.json:
            out.data(report.as_dict())
        else:
            out.line(_("Outbox via {transport}: {s} sent, {r} to retry, {f} failed, {h} held, {u} uncertain.").format(
                transport=report.transport, s=len(report.sent), r=len(report.retried), f=len(report.failed),
                h=len(report.held), u=len(report.uncertain)))
            for kind in ("retried", "failed", "held", "uncertain"):
                for e in getattr(report, kind):
                    out.line(f"  #{e['outbox']} ({kind}) {e['to']}: {e['error']}", style=None if kind == "retried" else "red")
        return report.exit_code

    with _session(args) as s:
        if args.sub == "show":
            m = s.get(Outbox, args.id)
            if m is None:
                raise BadInput(_("no mail #{id} in the outbox").format(id=args.id))
            d = row(m, body=True)
            if out.json:
                out.data(d)
            else:
                out.line(f"To: {d['to']}")
                out.line(f"Subject: {d['subject']}")
                out.line("")
                out.line(d["body"])
            return 0
        q = select(Outbox).order_by(Outbox.id)
        if args.status:
            q = q.where(Outbox.status == args.status)
        if args.ticket:
            q = q.where(Outbox.ticket_id == args.ticket)
        rows = [row(m) for m in s.exec(q.limit(args.limit))]
    out.data(rows) if out.json else out.table(["id", "ticket", "status", "to", "subject"], [[r["id"], r["ticket"], r["status"], r["to"], r["subject"]] for r in rows])
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
        if token is None:
            audit.record(s, actor="system", action="reset-redeem-refused")
            result = {"valid": False}
        else:
            acc = s.get(Account, token.account_id)
            audit.record(s, actor="system", action="reset-redeemed", ticket_id=token.ticket_id, account_id=acc.id, data={"token": token.id})
            result = {"valid": True, "account": acc.login, "policy": acc.policy_key, "ticket": token.ticket_id}
    if out.json:
        out.data(result)
    else:
        out.line(_("valid for {a} ({p})").format(a=result["account"], p=result["policy"]) if result["valid"] else _("invalid, expired or already used"))
    return 0 if result["valid"] else 1


def do_tui(args, out: Out, demo: bool = False, training: bool = False) -> int:
    if not (sys.stdin.isatty() and sys.stdout.isatty()) and not serve.in_browser():  # 'helpdesk serve' runs it under a web driver
        if "SSH_ORIGINAL_COMMAND" in os.environ:
            raise BadInput(_("this SSH key only opens the helpdesk, on a terminal; nothing else was run (connect with ssh -t)"))
        raise BadInput(_("the helpdesk needs a terminal; in scripts use the commands (helpdesk ticket list ...)"))
    import importlib

    try:  # the only place the core reaches the TUI, and only when it is asked to open it
        run_tui = importlib.import_module("screens.start").run
    except ImportError as exc:
        raise BadInput(_("the TUI is not available: {error}").format(error=exc)) from None
    return run_tui(db=getattr(args, "db", None), user=getattr(args, "user", None) or os.environ.get("HELPDESK_USER"), demo=demo, **({"training": True} if training else {}))


def _training_commands():
    from helpdesk.cli import train  # train [list|start|reset|clock|check]

    return train


def _ingest_commands():
    from helpdesk.cli import ingest  # ingest mail|arf|dmarc|postfix, quarantine list|show

    return ingest


def _mail_commands():
    from helpdesk.cli import mail  # policy set, outbox retry|mark-sent

    return mail


COMMANDS = {
    "init": do_init,
    "policy": do_policy,
    "account": do_account,
    "ticket": do_ticket,
    "sweep": do_sweep,
    "volunteer": do_volunteer,
    "audit": do_audit,
    "backup": do_backup,
    "restore": do_backup,
    "outbox": do_outbox,
    "reset": do_reset,
    "ingest": lambda args, out: _ingest_commands().do_ingest(args, out),
    "quarantine": lambda args, out: _ingest_commands().do_quarantine(args, out),
    "train": lambda args, out: _training_commands().do_train(args, out),
    "serve": serve.do_serve,
}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    lang = None
    if "--lang" in argv:
        i = argv.index("--lang")
        lang = argv[i + 1] if i + 1 < len(argv) else None
    set_lang(lang if lang in ("fr", "en") else None)
    parser = build_parser()
    args = parser.parse_args(argv)
    out = Out(getattr(args, "json", False))
    try:
        if getattr(args, "now", None):
            clock.set_now(args.now)
        # A training database lives at its own clock. The TUI's backend process adopts it
        # (screens.remote: the database layer loads there, beside Textual).
        elif not os.environ.get("HELPDESK_NOW") and args.command not in (None, "tui", "train", "demo") and not _reads_logs(args):
            from helpdesk.training import clock as training_clock

            training_clock.adopt_clock(getattr(args, "db", None))
        if args.command in (None, "tui"):
            return do_tui(args, out)
        if args.command == "demo":
            return do_tui(args, out, demo=True)
        return COMMANDS[args.command](args, out)
    except clock.BadDate as exc:
        return _fail(out, BadInput(str(exc)))
    except HelpdeskError as exc:
        return _fail(out, exc)
    except KeyboardInterrupt:
        return 130


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
