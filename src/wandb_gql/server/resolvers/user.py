"""User and Entity objects, built whole: they are small and W&B clients ask for most fields."""

from __future__ import annotations

from typing import Any

from ..store import Store, storage_id


def user_node(store: Store, username: str | None) -> dict[str, Any] | None:
    row = store.user_row(username)
    if row is None:
        return None
    return {
        "id": storage_id("User", row["username"]), "name": row["name"], "username": row["username"],
        "email": row["email"], "admin": bool(row["admin"]), "flags": "{}", "entity": row["entity"],
        "deletedAt": None, "apiKeys": {"edges": []},
        "teams": {"edges": [{"cursor": name, "node": entity_node(store, name)}
                            for name in [row["entity"], *store.teams_of(row["id"])]]},
    }


def entity_node(store: Store, name: str) -> dict[str, Any] | None:
    if not store.entity_exists(name):
        return None
    return {"id": storage_id("Entity", name), "name": name, "isTeam": store.is_team(name), "organization": None}
