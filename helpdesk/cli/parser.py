"""The command line's grammar, and which function runs each command.

Each command's parser ends with ``set_defaults(func=...)``: argparse itself tells which
function runs, called as ``func(args, out)``; ``opens_tui`` says whether it opens the TUI
(``helpdesk.cli.entry`` then holds the garbage collector off while the TUI loads).

This module imports only argparse and the translations, and a top-level command's parser
is built only when the command line names it: its module is imported then and declares it
(``build_parser`` lists them). So ``helpdesk`` alone, which opens the TUI, is parsed in a
millisecond, and ``helpdesk ticket list`` builds the ticket commands only.

A new command group is a module of ``helpdesk.cli`` with ``add_parser(commands)``, which
declares it with ``command`` or ``group`` below, and one line in ``build_parser``.
"""

from __future__ import annotations

import argparse
import importlib
from typing import cast

from helpdesk.base.i18n import N_, _, n_, set_lang

# argparse's own messages (a required option missing, an unknown choice...) in the
# interface language, like the rest of the command line: argparse looks up its ``_`` and
# ``ngettext`` each time it speaks, so they are the interface's. These are its words, for
# the catalog (Python 3.11's; a message a later Python words otherwise stays in English).
ARGPARSE_MESSAGES = (
    N_("%(prog)s: error: %(message)s\n"),
    N_("ambiguous option: %(option)s could match %(matches)s"),
    N_("argument %(argument_name)s: %(message)s"),
    N_("expected at least one argument"),
    N_("expected at most one argument"),
    N_("expected one argument"),
    N_("ignored explicit argument %r"),
    N_("invalid %(type)s value: %(value)r"),
    N_("invalid choice: %(value)r (choose from %(choices)s)"),
    N_("not allowed with argument %s"),
    N_("one of the arguments %s is required"),
    N_("the following arguments are required: %s"),
    N_("unrecognized arguments: %s"),
    N_("unknown parser %(parser_name)r (choices: %(choices)s)"),
    N_("unexpected option string: %s"),
)


def _argparse_plural(n: int) -> str:  # never called: argparse's one plural, for the catalog
    return n_("expected %s argument", "expected %s arguments", n)


argparse._ = _  # type: ignore[attr-defined]
argparse.ngettext = n_  # type: ignore[attr-defined]


class _Formatter(argparse.HelpFormatter):
    """argparse's help, with its own words ("usage:") in the interface language."""

    def add_usage(self, usage, actions, groups, prefix=None):
        return super().add_usage(usage, actions, groups, _("usage: ") if prefix is None else prefix)


class _Parser(argparse.ArgumentParser):
    """A parser whose headings and -h line speak the interface language; the subcommands'
    parsers are of this class too (argparse makes them with the parent's class)."""

    def __init__(self, *args, **kw):
        kw.setdefault("formatter_class", _Formatter)
        kw["add_help"] = False
        super().__init__(*args, **kw)
        self._positionals.title = _("positional arguments")
        self._optionals.title = _("options")
        self.add_argument(
            "-h",
            "--help",
            action="help",
            default=argparse.SUPPRESS,
            help=_("show this help message and exit"),
        )


def global_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group(_("global options"))
    g.add_argument(
        "--db",
        default=argparse.SUPPRESS,
        help=_("SQLAlchemy URL or SQLite path (env HELPDESK_DB)"),
    )
    g.add_argument(
        "--as",
        dest="user",
        default=argparse.SUPPRESS,
        help=_("volunteer login acting (env HELPDESK_USER)"),
    )
    g.add_argument(
        "--now",
        default=argparse.SUPPRESS,
        help=_("the clock's now, ISO-8601 (env HELPDESK_NOW)"),
    )
    g.add_argument(
        "--lang",
        choices=["fr", "en"],
        default=argparse.SUPPRESS,
        help=_("interface language (default fr)"),
    )
    g.add_argument(
        "--json", action="store_true", default=argparse.SUPPRESS, help=_("machine-readable output")
    )


def quiet_option(p: argparse.ArgumentParser) -> None:
    """``--quiet``, for the commands timers run: nothing printed when there is nothing to say."""
    p.add_argument(
        "--quiet",
        action="store_true",
        help=_("print nothing when there is nothing to say (for timers)"),
    )


class Commands(argparse._SubParsersAction):
    """The top-level commands. Each is listed (for help and for choosing) from its name and
    help alone; its parser is built by its module when the command line names it."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._later: dict[str, tuple[str, str]] = {}  # name -> (help, "module:function")

    def later(self, name: str, help: str, where: str) -> None:
        """``name`` is a command; ``where`` (``module`` or ``module:function``, default
        ``add_parser``) declares its parser, given this action, once it is named."""
        self._name_parser_map[name] = None  # a choice now, a parser once built
        self._choices_actions.append(self._ChoicesPseudoAction(name, (), help))
        self._later[name] = (help, where)

    def help_of(self, name: str) -> str | None:
        return self._later[name][0] if name in self._later else None

    def build(self, name: str) -> None:
        if name in self._later:
            module, _sep, function = self._later[name][1].partition(":")
            getattr(importlib.import_module(module), function or "add_parser")(self)

    def build_all(self) -> None:
        for name in list(self._later):
            self.build(name)

    def add_parser(self, name, **kwargs):
        if name not in self._later:
            return super().add_parser(name, **kwargs)
        help, _where = self._later.pop(name)  # built now, in the place it was listed
        if kwargs.get("help") is None:
            kwargs["help"] = help
        names = list(self._name_parser_map)
        place = next(i for i, a in enumerate(self._choices_actions) if a.dest == name)
        del self._name_parser_map[name]
        parser = super().add_parser(name, **kwargs)
        self._choices_actions[place] = self._choices_actions.pop()
        for other in names[names.index(name) + 1 :]:
            self._name_parser_map[other] = self._name_parser_map.pop(other)
        return parser

    def __call__(self, parser, namespace, values, option_string=None):
        self.build(values[0])
        super().__call__(parser, namespace, values, option_string)


def command(
    subparsers, name: str, func, help: str | None = None, **defaults
) -> argparse.ArgumentParser:
    """A command run by ``func(args, out)``, with the global options. A top-level command's
    help is the one ``build_parser`` lists it with."""
    if help is None:
        help = subparsers.help_of(name)
    p = subparsers.add_parser(name, help=help, description=help)
    global_options(p)
    p.set_defaults(func=func, opens_tui=defaults.pop("opens_tui", False), **defaults)
    return p


def group(subparsers, name: str, help: str | None = None):
    """A group of sub-commands (``helpdesk NAME SUB``): the action to add them to."""
    p = subparsers.add_parser(name, help=help)
    return p.add_subparsers(dest="sub", metavar="SUB", required=True)


def _open_tui(args, out) -> int:
    from helpdesk.cli.common import do_tui

    return do_tui(args, out, demo=args.command == "demo")


def add_tui(commands) -> None:
    command(commands, "demo", _open_tui, opens_tui=True)
    command(commands, "tui", _open_tui, opens_tui=True)


def build_parser(complete: bool = False) -> argparse.ArgumentParser:
    """The parser; ``complete``: with every command's parser built (to walk it)."""
    parser = _Parser(
        prog="helpdesk", description=_("Terminal helpdesk for small non-profit hosting providers.")
    )
    global_options(parser)
    parser.set_defaults(func=_open_tui, opens_tui=True)  # no command: the TUI
    c = cast(Commands, parser.add_subparsers(action=Commands, dest="command", metavar="COMMAND"))
    main, ingest, actions = "helpdesk.cli.main", "helpdesk.cli.ingest", "helpdesk.cli.actions"
    c.later(
        "init", _("create or upgrade the database and load the policy packs"), main + ":add_init"
    )
    c.later("demo", _("open the TUI on a fresh demo database"), __name__ + ":add_tui")
    c.later("tui", _("open the TUI on the configured database"), __name__ + ":add_tui")
    c.later("policy", _("policy packs"), main + ":add_policy")
    c.later("account", _("accounts"), main + ":add_account")
    c.later("ticket", _("tickets"), main + ":add_ticket")
    c.later("sweep", _("run what is due: timers, expiries, inactivity scans"), main + ":add_sweep")
    c.later(
        "backup", _("write a consistent copy of the database to a new file"), main + ":add_backup"
    )
    c.later("restore", _("replace the database's content by a backup"), main + ":add_restore")
    c.later(
        "ingest",
        _("read mail, abuse reports, DMARC reports or Postfix logs"),
        ingest + ":add_ingest",
    )
    c.later("quarantine", _("input ingestion could not use"), ingest + ":add_quarantine")
    c.later(
        "train",
        _("training: scenarios, a movable clock, the TUI on a training database"),
        "helpdesk.cli.train",
    )
    c.later(
        "serve",
        _("show the TUI in a web browser (demo by default), e.g. on a projector"),
        "helpdesk.cli.serve",
    )
    c.later("volunteer", _("volunteers and roles"), main + ":add_volunteer")
    c.later("audit", _("the audit trail"), main + ":add_audit")
    c.later("outbox", _("mails queued by procedures"), main + ":add_outbox")
    c.later(
        "actions",
        _("actions on the real services queued by the procedures"),
        actions + ":add_actions",
    )
    c.later(
        "connectors", _("the services configured in helpdesk.toml"), actions + ":add_connectors"
    )
    c.later(
        "policyd",
        _("answer Postfix's SMTP access policy requests from the database"),
        actions + ":add_policyd",
    )
    c.later("reset", _("one-time reset credentials"), main + ":add_reset")
    c.later(
        "dashboard",
        _("queue counts and the dates the texts make binding"),
        "helpdesk.cli.dashboard",
    )
    c.later(
        "reset-page",
        _("serve the page a reset link opens (behind a TLS reverse proxy)"),
        "helpdesk.cli.reset_page",
    )
    c.later(
        "systemd",
        _("print the systemd units and timers that run the helpdesk (or write them)"),
        "helpdesk.cli.systemd",
    )
    operations = "helpdesk.cli.operations"
    c.later("config", _("the configuration file helpdesk.toml"), operations + ":add_config")
    c.later(
        "doctor",
        _("check the set-up and say how to fix each gap (exit 1: work is blocked)"),
        operations + ":add_doctor",
    )
    c.later(
        "metrics",
        _("print OpenMetrics text for node_exporter's textfile collector"),
        operations + ":add_metrics",
    )
    if complete:
        c.build_all()
    return parser


def parse(argv: list[str]) -> argparse.Namespace:
    """The command line read, in the language it asks for (its help and its errors too);
    bad usage or ``--help`` exits here, as argparse does."""
    lang = None
    if "--lang" in argv:
        i = argv.index("--lang")
        lang = argv[i + 1] if i + 1 < len(argv) else None
    set_lang(lang if lang in ("fr", "en") else None)
    return build_parser().parse_args(argv)
