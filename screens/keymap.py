"""The user's keymap: ``~/.config/helpdesk/keymap.toml`` (platformdirs), binding id -> keys.

    # ~/.config/helpdesk/keymap.toml
    [keymap]
    "queue.search" = "slash,ctrl+f"
    "ticket.back" = "escape,backspace"

A top-level table without the ``[keymap]`` header works too. Every binding id is listed
by the keys screen (``?``). A file that cannot be read is reported, never fatal.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path


def default_path() -> Path:
    """``HELPDESK_KEYMAP``, else ``[paths] keymap`` in helpdesk.toml, else the user's file."""
    env = os.environ.get("HELPDESK_KEYMAP")
    if env:
        return Path(env).expanduser()
    from helpdesk.base import config

    try:
        configured = config.load().value("paths.keymap")
    except config.ConfigError:  # the CLI says what is wrong with the file; the TUI still opens
        configured = None
    if configured:
        return Path(str(configured)).expanduser()
    from platformdirs import user_config_dir

    return Path(user_config_dir("helpdesk", appauthor=False)) / "keymap.toml"


def load(path: Path | None = None) -> tuple[dict[str, str], str]:
    """The keymap and an error message ("" when all is well, or when there is no file)."""
    path = path or default_path()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}, ""
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        return {}, f"{path}: {exc}"
    table = data.get("keymap", data)
    if not isinstance(table, dict):
        return {}, f"{path}: [keymap] must be a table"
    keymap: dict[str, str] = {}
    bad = []
    for binding_id, keys in table.items():
        if isinstance(keys, list):
            keys = ",".join(str(k) for k in keys)
        if not isinstance(keys, str) or not keys.strip():
            bad.append(str(binding_id))
            continue
        keymap[str(binding_id)] = ",".join(k.strip() for k in keys.split(",") if k.strip())
    return keymap, (f"{path}: ignored {', '.join(bad)}" if bad else "")
