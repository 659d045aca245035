"""upsertModel's changes to a project that exists (store/projects.py creates and reads them)."""

from __future__ import annotations

import sqlite3

from ._common import BadInput

# What the SDK's settings refuse in a project name (wandb_settings.validate_project); a name the
# SDK could never address again is refused here too.
_FORBIDDEN = "/\\#?%:"
MAX_NAME = 128


def check_name(name: str | None) -> str:
    if not name or not name.strip():
        raise BadInput("upsertModel needs a project name (input.name)")
    found = sorted({c for c in name if c in _FORBIDDEN})
    if found:
        raise BadInput(f"invalid project name {name!r}: it cannot contain {' '.join(found)}; choose another name")
    if len(name) > MAX_NAME:
        raise BadInput(f"invalid project name: {len(name)} characters, at most {MAX_NAME}")
    return name


def set_description(conn: sqlite3.Connection, project_id: int, description: str) -> None:
    conn.execute("UPDATE projects SET description = ? WHERE id = ?", (description, project_id))
