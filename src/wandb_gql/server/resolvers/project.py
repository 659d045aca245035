"""Project fields, the project connection (Query.models, Entity.projects) and the run connection."""

from __future__ import annotations

import functools
import sqlite3
from typing import Any, Callable

from ..store import BadInput, page_size, storage_id
from ..store.runs import position
from . import _connection
from ._context import ctx
from .sweep import SWEEP_PROJECT_FIELDS
from .user import entity_node, user_node


def projects(info: Any, entity: str | None, after: str | None, first: int | None) -> dict[str, Any]:
    # Only the viewer's entities: another entity's projects are as absent as its name.
    context = ctx(info)
    rows, more = context.store.projects(entity, page_size(first), _connection.from_opaque("Project", after),
                                        context.entities)
    return _connection.connection(rows, more=more, after=after,
                                  cursor=lambda row: _connection.opaque("Project", row["id"]))


def _runs(project: sqlite3.Row, info: Any, filters: Any = None, order: str | None = None,
          first: int | None = None, after: str | None = None) -> dict[str, Any]:
    store = ctx(info).store
    size = page_size(first)
    spec = store.run_order(order)
    start = _connection.from_keyset(store.secret, after, spec.cursor_key) if after else None
    rows, more = store.list_runs(project["id"], filters, spec, size, start)
    cursor = functools.partial(_keyset_cursor, store.secret, spec.cursor_key)
    return _connection.connection(rows, more=more, after=after, cursor=cursor,
                                  _count=lambda: store.count_runs(project["id"], filters))


_DELETED_ORDER = "-deleted_at"  # what a deletedRuns cursor is signed for


def _deleted_runs(project: sqlite3.Row, info: Any, filters: Any = None, first: int | None = None,
                  after: str | None = None) -> dict[str, Any]:
    """Soft-deleted runs, the most recently deleted first (a local extension: W&B cannot list them)."""
    store = ctx(info).store
    size = page_size(first)
    start = None
    if after:
        _rank, deleted_at, run_id = _connection.from_keyset(store.secret, after, _DELETED_ORDER)
        start = (deleted_at, run_id)
    rows, more = store.deleted_runs(project["id"], filters, size, start)
    cursor = functools.partial(_deleted_cursor, store.secret)
    return _connection.connection(rows, more=more, after=after, cursor=cursor,
                                  _count=lambda: store.count_deleted_runs(project["id"], filters))


def _deleted_cursor(secret: str, row: sqlite3.Row) -> str:
    return _connection.keyset(secret, _DELETED_ORDER, (0, row["deleted_at"], row["id"]))


def _keyset_cursor(secret: str, order: str, row: sqlite3.Row) -> str:
    return _connection.keyset(secret, order, position(row))


def _bucket(project: sqlite3.Row, info: Any, name: str, missingOk: bool | None = None,
            desc: str | None = None) -> sqlite3.Row | None:
    # RunResumeStatus asks with missingOk: true; null then means "no such run".
    row = ctx(info).store.run(project["id"], name)
    if row is None and not missingOk:
        raise BadInput(f"run {project['entity_name']}/{project['name']}/{name} not found")
    return row


PROJECT_FIELDS: dict[str, Callable[..., Any]] = {
    "id": lambda p, _i: storage_id("Project", p["name"], p["entity_name"]),
    "internalId": lambda p, _i: str(p["id"]),
    "name": lambda p, _i: p["name"],
    "entityName": lambda p, _i: p["entity_name"],
    "entity": lambda p, i: entity_node(ctx(i).store, p["entity_name"]),
    "description": lambda p, _i: p["description"],
    "createdAt": lambda p, _i: p["created_at"],
    "isBenchmark": lambda p, _i: False,
    "readOnly": lambda p, _i: False,
    "lastActive": lambda p, i: ctx(i).store.project_last_active(p),
    "user": lambda p, i: user_node(ctx(i).store, ctx(i).store.username(p["user_id"])),
    "run": lambda p, i, name, desc=None: ctx(i).store.run(p["id"], name),
    "bucket": _bucket,
    "runs": _runs,
    "deletedRuns": _deleted_runs,
    "runCount": lambda p, i, filters=None: ctx(i).store.count_runs(p["id"], filters),
    **SWEEP_PROJECT_FIELDS,
}

RUN_CONNECTION_FIELDS: dict[str, Callable[..., Any]] = {
    "totalCount": lambda conn, _i: conn["_count"](),
}
