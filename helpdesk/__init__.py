"""helpdesk: the core of a terminal helpdesk for small non-profit hosting providers.

The core never imports Textual: the CLI and cron jobs start fast, and everything is
testable without a terminal. The Textual app lives in the top-level ``screens`` package.
"""

__version__ = "0.1.0"
