"""Pure parsers for mail ingestion; nothing here touches the database or the terminal.

- ``text``: ``clean`` (terminal control sequences out), header and body decoding
- ``message``: ``parse_mail`` -> ``ParsedMail``
- ``requests``: ``parse_day``, ``classify``, ``closure_items``, ``is_acknowledgement``,
  ``reports_suspicious_access`` (French and English user requests)
- ``arf``: ``parse_arf`` -> ``ArfReport`` (ARF, auth-failure reports, X-ARF)
- ``dmarc``: ``parse_dmarc``, ``extract_reports_from_mail``, ``summarise``
- ``postfix``: ``parse_line``, ``SenderStats``, ``LogCursor`` / ``read_from``
- ``mime``: the tolerant MIME plumbing the parsers share

Every entry point raises only ``ParseError`` (with a human reason) on bad input.
"""

__all__ = ["ParseError"]


def __getattr__(name: str):
    # Lazy (PEP 562): importing one parser (the Postfix log reader, say) does not load the
    # others' dependencies.
    if name == "ParseError":
        from helpdesk.ingest.errors import ParseError

        return ParseError
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
