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
