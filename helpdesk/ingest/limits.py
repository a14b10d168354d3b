"""A provider's Postfix thresholds and the alert a sender passing them raises: figures only
(who, when, how many), never content, subjects or recipients.

Shared by the reference analyser (``postfix.SenderStats``) and the fast one
(``senders.SenderWindows``). Plain named tuples: this module imports nothing, so that
``helpdesk ingest postfix`` and the library path start without loading what they do not use.
"""

from __future__ import annotations

from collections import namedtuple
from datetime import datetime

from helpdesk.base.i18n import _


class Thresholds(
    namedtuple(
        "Thresholds",
        "burst bounce_ratio bounce_min_messages max_recipients",
        defaults=(200, 0.2, 20, None),
    )
):
    """``burst``: more messages than this in one window is an alert; ``bounce_ratio``: more
    bounces per recipient than this, once the sender sent at least ``bounce_min_messages``;
    ``max_recipients`` (optional): recipients per window."""

    __slots__ = ()
    burst: int
    bounce_ratio: float
    bounce_min_messages: int
    max_recipients: int | None

    def breaches(
        self, messages: int, recipients: int, bounces: int, window: str
    ) -> tuple[float, list[tuple[str, str]]]:
        """The bounce ratio, and each limit these figures pass, as (kind, explanation)."""
        ratio = bounces / recipients if recipients else (1.0 if bounces else 0.0)
        found: list[tuple[str, str]] = []
        if messages > self.burst:
            found.append(
                (
                    "burst",
                    _("{n} messages in {window} (limit {limit})").format(
                        n=messages, window=window, limit=self.burst
                    ),
                )
            )
        if self.max_recipients is not None and recipients > self.max_recipients:
            found.append(
                (
                    "recipients",
                    _("{n} recipients in {window} (limit {limit})").format(
                        n=recipients, window=window, limit=self.max_recipients
                    ),
                )
            )
        if messages >= self.bounce_min_messages and ratio > self.bounce_ratio:
            found.append(
                (
                    "bounce_ratio",
                    _("bounce ratio {ratio} over {n} recipients (limit {limit})").format(
                        ratio=f"{ratio:.0%}", n=recipients, limit=f"{self.bounce_ratio:.0%}"
                    ),
                )
            )
        return ratio, found


class Alert(
    namedtuple(
        "Alert",
        "sender window_start window_end messages recipients bounces deferrals bounce_ratio reason kinds",
        defaults=((),),
    )
):
    """A sender past its thresholds in one window; ``kinds``: "burst", "recipients", "bounce_ratio"."""

    __slots__ = ()
    sender: str
    window_start: datetime
    window_end: datetime
    messages: int
    recipients: int
    bounces: int
    deferrals: int
    bounce_ratio: float
    reason: str
    kinds: tuple[str, ...]

    @classmethod
    def of(
        cls,
        sender: str,
        window_start,
        window_end,
        totals: tuple[int, int, int, int],
        ratio: float,
        found: list[tuple[str, str]],
    ) -> "Alert":
        """The alert for ``totals`` (messages, recipients, bounces, deferrals) and the limits
        ``Thresholds.breaches`` found passed: both analysers word and round it alike."""
        messages, recipients, bounces, deferrals = totals
        return cls(
            sender=sender,
            window_start=window_start,
            window_end=window_end,
            messages=messages,
            recipients=recipients,
            bounces=bounces,
            deferrals=deferrals,
            bounce_ratio=round(ratio, 4),
            reason="; ".join(text for _, text in found),
            kinds=tuple(kind for kind, _ in found),
        )
