"""Query's root fields."""

from __future__ import annotations

import sqlite3
from typing import Any, Callable

from ..store import BadInput, page_size, users as user_store
from ..store._common import decode_storage_id
from . import _connection
from ._context import ctx
from .artifact import artifact_row_id
from .project import projects
from .sdk_mutations import run_alerts
from .user import entity_node, user_from_row, user_node


def viewer(_root: Any, info: Any, entityName: str | None = None) -> dict[str, Any] | None:
    context = ctx(info)
    return user_node(context.store, context.viewer.username)


# The wandb releases this server is tested with (pyproject's test extra pins it): `wandb verify`
# fails an older SDK and warns about a newer one, which is what a rehearsal needs to know.
SDK_TESTED = "0.31.0"
CLI_VERSION_INFO = {"min_cli_version": SDK_TESTED, "max_cli_version": SDK_TESTED}


def server_info(_root: Any, _info: Any) -> dict[str, Any]:
    # An empty feature list keeps the SDK's optional paths (gzip, structured logs) off.
    return {"cliVersionInfo": dict(CLI_VERSION_INFO), "features": [], "latestLocalVersionInfo": None}


def entity(_root: Any, info: Any, name: str | None = None, login: bool | None = None) -> dict[str, Any] | None:
    context = ctx(info)
    name = name or context.viewer.entity
    return entity_node(context.store, name) if name in context.entities else None


def users(_root: Any, info: Any, query: str | None = None, usernames: list[str] | None = None,
          after: str | None = None, first: int | None = None) -> dict[str, Any]:
    """api.users / api.user: the admin finds every user; anyone else finds the users they share
    an entity with (themselves and their teammates), as others' names are not theirs to list."""
    context = ctx(info)
    among = None if context.viewer.admin else context.entities
    rows, more = user_store.search(context.store.conn, query, usernames, among, page_size(first),
                                   _connection.from_opaque("User", after))
    return _connection.connection(rows, more=more, after=after,
                                  cursor=lambda row: _connection.opaque("User", row["id"]),
                                  node=lambda row: user_from_row(context.store, row, among))


def user(_root: Any, info: Any, id: str | None = None, userName: str | None = None) -> dict[str, Any] | None:
    if id is not None:
        userName = ":".join(decode_storage_id(id, "User"))
    if not userName:
        raise BadInput("user needs id or userName")
    found = users(_root, info, usernames=[userName], first=1)["edges"]
    return found[0]["node"] if found else None


def project(_root: Any, info: Any, name: str | None = None, entityName: str | None = None) -> sqlite3.Row | None:
    context = ctx(info)
    if not name:
        raise BadInput("project name is required")
    return context.find_project(entityName, name)


def models(_root: Any, info: Any, entityName: str | None = None, after: str | None = None,
           first: int | None = None) -> dict[str, Any]:
    # W&B's legacy root name for listing projects; the SDK's GetProjects needs it non-null.
    return projects(info, entityName, after, first)


QUERY_FIELDS: dict[str, Callable[..., Any]] = {
    "viewer": viewer,
    "serverInfo": server_info,
    "project": project,
    "model": project,  # legacy alias used by RunResumeStatus
    "models": models,
    "entity": entity,
    "artifact": lambda _r, i, id: ctx(i).artifact(artifact_row_id(id)),
    "runAlerts": run_alerts,
    "users": users,
    "user": user,
}
