"""User and Entity objects, built whole: they are small and W&B clients ask for most fields."""

from __future__ import annotations

import sqlite3
from typing import Any

from ..store import Store, storage_id


def user_node(store: Store, username: str | None, among: frozenset[str] | None = None) -> dict[str, Any] | None:
    """A user; with `among`, only those of their teams (another viewer sees only the ones they share)."""
    row = store.user_row(username)
    return None if row is None else user_from_row(store, row, among)


def user_from_row(store: Store, row: sqlite3.Row, among: frozenset[str] | None = None) -> dict[str, Any]:
    teams = [name for name in [row["entity"], *store.teams_of(row["id"])] if among is None or name in among]
    return {
        "id": storage_id("User", row["username"]), "name": row["name"], "username": row["username"],
        "email": row["email"], "admin": bool(row["admin"]), "flags": "{}", "entity": row["entity"],
        "deletedAt": None, "photoUrl": None, "apiKeys": {"edges": []},
        "teams": {"edges": [{"cursor": name, "node": entity_node(store, name)} for name in teams]},
    }


def entity_node(store: Store, name: str) -> dict[str, Any] | None:
    if not store.entity_exists(name):
        return None
    # Entities here are visible to their members only (defaultAccess PRIVATE), with no billing,
    # photos or code saving: the constant fields say so.
    return {"id": storage_id("Entity", name), "name": name, "isTeam": store.is_team(name), "organization": None,
            "available": False, "entityType": None, "photoUrl": None, "readOnly": False, "readOnlyAdmin": False,
            "privateOnly": False, "codeSavingEnabled": False, "defaultAccess": "PRIVATE", "isPaid": None}
