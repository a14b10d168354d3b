"""Translations: gettext catalogs for the interface, {fr, en} tables for pack data.

Message ids are English; French is the default language, as the providers are
French-speaking. Catalogs live in ``data/translations/<lang>/LC_MESSAGES/helpdesk.mo``.
"""

from __future__ import annotations

import gettext
import os
from functools import lru_cache

from helpdesk.base.paths import data_dir

LANGS = ("fr", "en")
DEFAULT_LANG = "fr"

_lang: str | None = None


def set_lang(lang: str | None) -> None:
    global _lang
    if lang is not None and lang not in LANGS:
        raise ValueError(f"unknown language {lang!r} (fr or en)")
    _lang = lang


def current_lang() -> str:
    if _lang:
        return _lang
    env = os.environ.get("HELPDESK_LANG", "")
    return env if env in LANGS else DEFAULT_LANG


@lru_cache(maxsize=None)
def _catalog(lang: str) -> gettext.NullTranslations:
    return gettext.translation(
        "helpdesk", localedir=str(data_dir() / "translations"), languages=[lang], fallback=True
    )


def gettext_for(lang: str | None = None):
    return _catalog(lang or current_lang()).gettext


def _(message: str) -> str:
    """Translate an interface message into the current language."""
    return _catalog(current_lang()).gettext(message)


def N_(message: str) -> str:
    """Marks a message for the catalog where it is defined; it is translated where shown."""
    return message


def n_(singular: str, plural: str, n: int) -> str:
    """The form for ``n`` of an interface message ("1 ticket", "2 tickets"; in French the
    singular for 0 and 1)."""
    return _catalog(current_lang()).ngettext(singular, plural, n)


def np_(context: str, singular: str, plural: str, n: int) -> str:
    """:func:`n_` for a word that also stands alone elsewhere (``context`` tells them apart:
    "open" counted on the dashboard, "open" as a filter)."""
    return _catalog(current_lang()).npgettext(context, singular, plural, n)


def tr(message: str, lang: str | None) -> str:
    return _catalog(lang or current_lang()).gettext(message)


def pick(table: dict | str | None, lang: str | None = None) -> str:
    """The text of a {fr, en} table in a language, falling back to French then anything."""
    if table is None:
        return ""
    if isinstance(table, str):
        return table
    lang = lang or current_lang()
    return table.get(lang) or table.get(DEFAULT_LANG) or next(iter(table.values()), "")
