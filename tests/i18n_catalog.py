"""Keep the French catalog in step with the code.

    python -m tests.i18n_catalog            extract msgids from helpdesk/ and screens/, merge them
                                    into data/translations/fr/LC_MESSAGES/helpdesk.po, compile .mo
    python -m tests.i18n_catalog --check    fail if a msgid has no French translation or the .mo is stale

Message ids are English; translations are written in the .po file by hand.
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po, write_po

ROOT = Path(__file__).resolve().parent.parent
PO = ROOT / "data" / "translations" / "fr" / "LC_MESSAGES" / "helpdesk.po"
MO = PO.with_suffix(".mo")
KEYWORDS = {"_": None, "tr": (1,), "N_": None, "n_": (1, 2), "np_": ((1, "c"), 2, 3)}


def extracted() -> Catalog:
    template = Catalog(project="helpdesk", fuzzy=False)
    for folder in ("helpdesk", "screens"):
        if not (ROOT / folder).is_dir():
            continue
        for filename, lineno, message, comments, context in extract_from_dir(
            ROOT / folder, method_map=[("**.py", "python")], keywords=KEYWORDS
        ):
            template.add(
                message,
                None,
                [(f"{folder}/{filename}", lineno)],
                auto_comments=comments,
                context=context,
            )
    return template


def load() -> Catalog:
    if PO.exists():
        with PO.open("rb") as f:
            return read_po(f, locale="fr")
    return Catalog(locale="fr", project="helpdesk", fuzzy=False)


def compiled(catalog: Catalog) -> bytes:
    buf = io.BytesIO()
    write_mo(buf, catalog)
    return buf.getvalue()


def messages(mo: bytes) -> dict:
    """What a compiled catalog translates, without its header: the header names the Babel
    version that wrote it, so comparing bytes would call a catalog stale after any upgrade."""
    from babel.messages.mofile import read_mo

    return {
        (m.context, m.id if isinstance(m.id, str) else tuple(m.id)): m.string
        for m in read_mo(io.BytesIO(mo))
        if m.id
    }


def missing(catalog: Catalog, template: Catalog) -> list[str]:
    out = []
    for m in template:
        if not m.id:
            continue
        t = catalog.get(m.id, context=m.context)
        strings = (
            t.string
            if t is not None and isinstance(t.string, (tuple, list))
            else (t.string if t is not None else "",)
        )
        if t is None or not all(strings) or t.fuzzy:
            out.append(m.id)
    return out


def main(argv: list[str]) -> int:
    template = extracted()
    catalog = load()
    if "--check" in argv:
        gaps = missing(catalog, template)
        for g in gaps:
            print(f"untranslated: {g!r}")
        stale = not MO.exists() or messages(MO.read_bytes()) != messages(compiled(catalog))
        if stale:
            print(f"{MO.relative_to(ROOT)} is stale: run python -m tests.i18n_catalog")
        return 1 if gaps or stale else 0
    catalog.update(template, no_fuzzy_matching=True)
    catalog.obsolete.clear()
    PO.parent.mkdir(parents=True, exist_ok=True)
    with PO.open("wb") as f:
        write_po(f, catalog, width=100, omit_header=False, sort_output=False, include_lineno=False)
    MO.write_bytes(compiled(catalog))
    gaps = missing(catalog, template)
    print(f"{len(template)} messages, {len(gaps)} untranslated")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
