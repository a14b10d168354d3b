"""The citations of a pack: each rule's article, quoted word for word from the provider's text."""

from __future__ import annotations

from helpdesk.storage.models import Policy


def citation(policy: Policy, key: str) -> tuple[str, str]:
    """The reference ("art. 9") and the French text of citation ``key`` of ``policy``."""
    entry = (policy.citations or {}).get(key) or {}
    return entry.get("ref", ""), entry.get("text", "")
