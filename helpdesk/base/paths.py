"""Where the shipped data lives: inside the wheel as ``helpdesk/data``, beside the package
in a source checkout."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path


@lru_cache(maxsize=1)
def data_dir() -> Path:
    here = Path(__file__).resolve().parent
    for candidate in (here.parent / "data", here.parent.parent / "data"):
        if (candidate / "policies").is_dir():
            return candidate
    raise RuntimeError(f"helpdesk data folder not found near {here}")


def template_names(lang: str = "fr", folder: str = "templates") -> list[str]:
    """The mail templates (or, with ``folder="replies"``, the saved replies) shipped in
    ``lang``, by key."""
    return sorted(p.stem for p in (data_dir() / folder / lang).glob("*.txt"))


def template_subject(key: str, lang: str = "fr", folder: str = "replies") -> str:
    """The subject a template's mail leaves with, as written in ``lang`` (its ``Subject:``
    line), for a person choosing it; "" when the subject is made from the ticket."""
    path = data_dir() / folder / lang / f"{key}.txt"
    if not path.is_file():
        return ""
    first = path.read_text("utf-8").partition("\n")[0]
    subject = first.removeprefix("Subject:").strip() if first.startswith("Subject:") else ""
    return "" if "{" in subject else subject
