"""What the command line prints for a person (not ``--json``): column headers in the
interface language, times in the provider's zone with the zone named, internal keys by
their labels. JSON output keeps its stable keys and UTC ISO-8601 times."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from helpdesk.base import clock
from helpdesk.base.i18n import _

#: Table column keys and their headers (msgids, translated when printed).
COLUMNS = {
    "id": "ID",
    "key": "Key",
    "name": "Name",
    "timezone": "Time zone",
    "queues": "Queues",
    "queue": "Queue",
    "login": "Login",
    "policy": "Provider",
    "provider": "Provider",
    "kind": "Kind",
    "status": "Status",
    "email": "E-mail",
    "role": "Role",
    "ticket": "Ticket",
    "to": "To",
    "subject": "Subject",
    "title": "Title",
    "state": "State",
    "account": "Account",
    "due": "Due",
    "received": "Received",
    "bytes": "Bytes",
    "reason": "Reason",
    "source": "Source",
    "setting": "Setting",
    "value": "Value",
    "origin": "Origin",
    "target": "Target",
    "connector": "Service",
    "answer": "Answer",
    "outbox": "Mail",
    "recipient": "Recipient",
    "providers": "Providers",
    "withdrawn": "Withdrawn",
}


def N_(message: str) -> str:  # marks the headers for extraction
    return message


_HEADERS = [
    N_("ID"),
    N_("Key"),
    N_("Name"),
    N_("Time zone"),
    N_("Queues"),
    N_("Queue"),
    N_("Login"),
    N_("Provider"),
    N_("Kind"),
    N_("Status"),
    N_("E-mail"),
    N_("Role"),
    N_("Ticket"),
    N_("To"),
    N_("Subject"),
    N_("Title"),
    N_("State"),
    N_("Account"),
    N_("Due"),
    N_("Received"),
    N_("Bytes"),
    N_("Reason"),
    N_("Source"),
    N_("Setting"),
    N_("Value"),
    N_("Origin"),
    N_("Target"),
    N_("Service"),
    N_("Answer"),
    N_("Mail"),
    N_("Recipient"),
    N_("Providers"),
    N_("Withdrawn"),
]


def header(column: str) -> str:
    return _(COLUMNS[column]) if column in COLUMNS else column


def local(moment: datetime | str | None, tz: str, *, zone: bool = True) -> str:
    """A moment as a person reads it: ``2027-01-15 00:00 Europe/Paris``."""
    if not moment:
        return ""
    if isinstance(moment, str):
        moment = clock.parse_datetime(moment)
    text = clock.as_utc(moment).astimezone(ZoneInfo(tz)).strftime("%Y-%m-%d %H:%M")
    return f"{text} {tz}" if zone else text
