"""Entity fields beyond the node itself (user.entity_node builds that)."""

from __future__ import annotations

from typing import Any, Callable

from ..store import storage_id, users
from ._context import ctx
from .project import projects
from .storage import storage_tree


def _members(entity: dict[str, Any], info: Any) -> list[dict[str, Any]]:
    """api.team(name).members: a team's users (a user's own entity: that user). No key is ever
    shown (only hashes are stored); a local server has no invitations, so none is pending."""
    return [{"id": storage_id("User", row["username"]), "name": row["name"], "username": row["username"],
             "email": row["email"], "admin": bool(row["admin"]), "pending": False, "photoUrl": None,
             "accountType": "USER", "role": "admin" if row["admin"] else "member", "apiKey": None}
            for row in users.members(ctx(info).store.conn, entity["name"])]


def _storage_bytes(entity: dict[str, Any], info: Any) -> int:
    store = ctx(info).store
    return sum(store.project_artifact_bytes(p) + store.project_file_bytes(p)
               for p in users.entity_project_ids(store.conn, entity["name"]))


ENTITY_FIELDS: dict[str, Callable[..., Any]] = {
    "projects": lambda e, i, after=None, first=None, **_: projects(i, e["name"], after, first),
    "user": lambda _e, _i: None,
    "storageTree": storage_tree,
    "members": _members,
    "storageBytes": _storage_bytes,
}
