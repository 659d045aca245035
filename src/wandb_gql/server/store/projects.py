"""Projects (W&B's models), each in one entity."""

from __future__ import annotations

import sqlite3
from typing import Any

from ..._time import now
from . import users
from ._common import BadInput

_SELECT = "SELECT p.*, e.name AS entity_name FROM projects p JOIN entities e ON e.id = p.entity_id"


def get(conn: sqlite3.Connection, entity: str, name: str) -> sqlite3.Row | None:
    return conn.execute(_SELECT + " WHERE e.name = ? AND p.name = ?", (entity, name)).fetchone()


def by_id(conn: sqlite3.Connection, project_id: int) -> sqlite3.Row:
    return conn.execute(_SELECT + " WHERE p.id = ?", (project_id,)).fetchone()


def require(conn: sqlite3.Connection, entity: str | None, name: str | None) -> sqlite3.Row:
    if not entity or not name:
        raise BadInput("entityName and projectName are required")
    row = get(conn, entity, name)
    if row is None:
        if not users.entity_exists(conn, entity):
            raise BadInput(f"entity {entity!r} not found")
        raise BadInput(f"project {entity}/{name} not found")
    return row


def ensure(conn: sqlite3.Connection, entity: str, name: str, user_id: int | None = None) -> sqlite3.Row:
    """A project, created on first use in an entity that exists (a user's or a team): as on W&B,
    writing to an unknown entity is an error, never a new entity."""
    row = get(conn, entity, name)
    if row is None:
        found = conn.execute("SELECT id FROM entities WHERE name = ?", (entity,)).fetchone()
        if found is None:
            raise BadInput(f"entity {entity!r} not found")
        entity_id = int(found[0])
        conn.execute("INSERT INTO projects (entity_id, name, user_id, created_at) VALUES (?, ?, ?, ?)",
                     (entity_id, name, user_id, now()))
        row = get(conn, entity, name)
        assert row is not None  # inserted just above, in this transaction
    return row


def page(conn: sqlite3.Connection, entity: str | None, first: int, after_id: int,
         among: frozenset[str] | None = None) -> tuple[list[sqlite3.Row], bool]:
    """Projects after `after_id` in id order (of one entity, if given; of the entities `among`,
    if given), and whether more follow."""
    sql = _SELECT + " WHERE p.id > ?"
    params: list[Any] = [after_id]
    if entity:
        sql += " AND e.name = ?"
        params.append(entity)
    if among is not None:
        sql += f" AND e.name IN ({', '.join('?' * len(among))})" if among else " AND 0"
        params.extend(sorted(among))
    rows = conn.execute(sql + " ORDER BY p.id LIMIT ?", (*params, first + 1)).fetchall()
    return rows[:first], len(rows) > first


def last_active(conn: sqlite3.Connection, project: sqlite3.Row) -> str:
    """The latest heartbeat or update of a live run, else the project's creation."""
    return conn.execute(
        "SELECT coalesce(max(max(coalesce(heartbeat_at, ''), updated_at)), ?) FROM runs"
        " WHERE project_id = ? AND deleted_at IS NULL", (project["created_at"], project["id"])).fetchone()[0]
