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

from helpdesk.ingest.errors import ParseError

__all__ = ["ParseError"]
