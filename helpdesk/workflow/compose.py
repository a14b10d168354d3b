"""Outgoing mail: templates in ``data/templates/<lang>/`` rendered into the outbox table.

A template's first line is ``Subject: ...``, then a blank line, then the body. A pack may
override one with ``data/templates/<lang>/<pack>/<name>.txt``. Rendering never sends:
delivery reads the outbox (SMTP or a Maildir).
"""

from __future__ import annotations


from collections import defaultdict
from datetime import datetime
from functools import lru_cache
from zoneinfo import ZoneInfo

from helpdesk.storage import messages
from helpdesk.base.i18n import pick
from helpdesk.storage.models import Outbox
from helpdesk.base.paths import data_dir, template_names  # noqa: F401 - compose.template_names
from helpdesk.base.untrusted import one_line

RESET_LINK_MARK = "[[reset-link]]"  # replaced by the one-time link at delivery, never stored
LOCALES = {"fr": "fr_FR", "en": "en_GB"}


@lru_cache(maxsize=2)
def _env(folder: str = "templates"):
    """Procedure templates (``templates``) or saved replies (``replies``) under ``data/``."""
    from jinja2 import Environment, FileSystemLoader, StrictUndefined

    return Environment(
        loader=FileSystemLoader(str(data_dir() / folder)),
        autoescape=False,
        undefined=StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def fmt_day(value: datetime | None, lang: str, tz: str) -> str:
    if value is None:
        return ""
    from babel.dates import format_date

    return format_date(
        value.astimezone(ZoneInfo(tz)).date(), format="long", locale=LOCALES.get(lang, "fr_FR")
    )


def fmt_moment(value: datetime | None, lang: str, tz: str) -> str:
    if value is None:
        return ""
    from babel.dates import format_datetime

    return format_datetime(
        value, format="long", tzinfo=ZoneInfo(tz), locale=LOCALES.get(lang, "fr_FR")
    )


def render(
    name: str, lang: str, policy_key: str, context: dict, folder: str = "templates"
) -> tuple[str, str]:
    from jinja2 import TemplateNotFound

    env = _env(folder)
    try:
        template = env.get_template(f"{lang}/{policy_key}/{name}.txt")
    except TemplateNotFound:
        template = env.get_template(f"{lang}/{name}.txt")
    text = template.render(**context)
    head, _sep, body = text.partition("\n\n")
    if not head.startswith("Subject:"):
        raise ValueError(f"template {lang}/{name}.txt must start with 'Subject:'")
    return one_line(head[len("Subject:") :]), body.strip() + "\n"


def subject_tag(policy_key: str, ticket_id: int) -> str:
    return f"[{policy_key} #{ticket_id}]"


def build_context(ctx, **extra) -> dict:
    """What every template may use; values are untrusted text inserted as text."""
    from helpdesk.policy.citations import citation
    from helpdesk.storage.models import Deadline
    from sqlmodel import col, select

    lang, tz = ctx.ticket.lang, ctx.tz
    deadlines: defaultdict[str, str] = defaultdict(
        str
    )  # a date the ticket does not have renders as nothing
    deadlines |= {
        d.name: fmt_day(d.due_at, lang, tz)
        for d in ctx.session.exec(
            select(Deadline)
            .where(Deadline.ticket_id == ctx.ticket.id, Deadline.status != "cancelled")
            .order_by(col(Deadline.id))
        )
    }
    ref, _text = citation(ctx.policy, ctx.transition.cite) if ctx.transition else ("", "")
    base = {
        "provider": ctx.policy.name,
        "contact": ctx.param("contact") or "",
        "ticket": {
            "id": ctx.ticket.id,
            "subject": ctx.ticket.subject,
            "tag": subject_tag(ctx.policy.key, ctx.ticket.id),
        },
        "account": {
            "login": ctx.account.login if ctx.account else "",
            "org": ctx.account.org if ctx.account else "",
            "email": ctx.account.email if ctx.account else "",
        },
        "fields": defaultdict(str, ctx.fields),
        "deadlines": deadlines,
        "citation": ref,
        "export_routes": [pick(r, lang) for r in ctx.param("export_routes") or []],
        "day": fmt_day_field(ctx.fields.get("day"), lang),
        "until": fmt_moment(_parse(ctx.fields.get("until")), lang, tz),
        "reset_link": RESET_LINK_MARK,
        "now": fmt_day(ctx.now, lang, tz),
    }
    base.update(extra)
    return base


def fmt_day_field(value, lang: str) -> str:
    if not value:
        return ""
    from babel.dates import format_date

    from helpdesk.base import clock

    return format_date(clock.parse_day(value), format="long", locale=LOCALES.get(lang, "fr_FR"))


def _parse(value):
    if not value:
        return None
    from helpdesk.base import clock

    return clock.parse_datetime(value)


def queue_mail(ctx, template: str, to_addr: str, **extra) -> Outbox:
    lang = ctx.ticket.lang if ctx.ticket.lang in LOCALES else "fr"
    subject, body = render(template, lang, ctx.policy.key, build_context(ctx, **extra))
    return enqueue(ctx, template, to_addr, subject, body, lang)


def enqueue(ctx, template: str, to_addr: str, subject: str, body: str, lang: str) -> Outbox:
    """Queue a rendered mail of the ticket, its subject tagged ``[policy #id]``, and record it
    as a message of the ticket's conversation."""
    mail = Outbox(
        ticket_id=ctx.ticket.id,
        template=template,
        lang=lang,
        to_addr=to_addr,
        subject=f"{subject_tag(ctx.policy.key, ctx.ticket.id)} {subject}",
        body=body,
        created_at=ctx.now,
        next_attempt_at=ctx.now,
        token_id=ctx.token.id if (ctx.token is not None and RESET_LINK_MARK in body) else None,
    )
    ctx.session.add(mail)
    ctx.session.flush()
    ctx.mails.append(mail)
    messages.record_outgoing(ctx.session, mail, author=ctx.actor.login)
    return mail


def flush_pending(ctx) -> None:
    """Render and queue the mails the step's effects asked for."""
    while ctx.pending_mails:
        template, address, extra = ctx.pending_mails.pop(0)
        queue_mail(ctx, template, address, **extra)
