"""What can go wrong, as the CLI's exit codes see it: 1 refused by a rule, 2 bad input."""

from __future__ import annotations


class HelpdeskError(Exception):
    exit_code = 2

    def as_dict(self) -> dict:
        return {"error": type(self).__name__.lower(), "message": str(self)}


class BadInput(HelpdeskError):
    """Unknown ticket, malformed date, missing field...: exit code 2."""


class NotFound(BadInput):
    pass


class Refused(HelpdeskError):
    """A rule refused the action. Names the rule and cites the article: exit code 1."""

    exit_code = 1

    def __init__(self, rule: str, reason: str, citation: str = "", text: str = ""):
        self.rule = rule
        self.reason = reason
        self.citation = citation
        self.citation_text = text
        super().__init__(f"{reason} [{citation}]" if citation else reason)

    def __reduce__(self):  # pickled whole: it crosses from the TUI's backend process
        return (
            type(self),
            (self.rule, self.reason, self.citation, self.citation_text),
            self.__dict__,
        )

    def as_dict(self) -> dict:
        return {
            "error": "refused",
            "rule": self.rule,
            "message": self.reason,
            "citation": self.citation,
        }


class Conflict(Refused):
    """Someone else changed the ticket since it was read: nothing was applied."""

    def __init__(self, reason: str, changed_by: str, state: str):
        super().__init__("conflict", reason)
        self.changed_by = changed_by
        self.state = state

    def __reduce__(self):
        return type(self), (self.reason, self.changed_by, self.state), self.__dict__

    def as_dict(self) -> dict:
        d = super().as_dict()
        d.update(changed_by=self.changed_by, state=self.state)
        return d
