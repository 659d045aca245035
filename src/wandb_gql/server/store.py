"""Domain operations of the local server over SQLite: users and keys, projects, runs.

Everything here speaks W&B's names and shapes; resolvers only translate GraphQL arguments.
Every SQL statement is parameterised; user strings never become SQL text.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import orjson

from . import db, filters
from .jsonutil import loads_lenient

MAX_PAGE = 1000
DEFAULT_PAGE = 50
DEFAULT_USER = "local"


class BadInput(Exception):
    """A client mistake; its message is shown to the client as a GraphQL error."""


def storage_id(kind: str, *parts: str) -> str:
    return base64.b64encode(":".join((kind, "v1", *parts)).encode()).decode()


def decode_storage_id(value: str, kind: str) -> list[str]:
    try:
        text = base64.b64decode(value.encode(), validate=True).decode()
    except Exception:
        raise BadInput(f"invalid {kind} id {value!r}: expected a base64 {kind} id") from None
    head, _, rest = text.partition(":v1:")
    if head != kind or not rest:
        raise BadInput(f"invalid {kind} id {value!r}: expected a base64 {kind} id")
    return rest.split(":")


def page_size(first: int | None) -> int:
    """A connection's `first`, defaulted and capped; the cap is stated when exceeded."""
    first = DEFAULT_PAGE if first is None else first
    if first < 0 or first > MAX_PAGE:
        raise BadInput(f"first must be between 0 and {MAX_PAGE} (got {first}); page with after")
    return first


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_api_key() -> str:
    # W&B's SDK accepts "prefix-secret" with a secret of at least 40 [\w-] characters.
    return "local-" + secrets.token_hex(24)


@dataclass(frozen=True)
class Viewer:
    id: int
    username: str
    entity: str


class Store:
    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self.conn = db.connect(self.path)
        self._key_hashes: dict[str, int] | None = None
        self.secret = self._meta("cursor_secret") or self._set_meta("cursor_secret", secrets.token_hex(32))
        self.default_user = self.ensure_user(DEFAULT_USER)

    # -- meta, users, keys ---------------------------------------------------------------
    def _meta(self, key: str) -> str | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def _set_meta(self, key: str, value: str) -> str:
        self.conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))
        return value

    def ensure_entity(self, name: str) -> int:
        row = self.conn.execute("SELECT id FROM entities WHERE name = ?", (name,)).fetchone()
        if row:
            return row[0]
        return self.conn.execute(
            "INSERT INTO entities (name, created_at) VALUES (?, ?)", (name, db.now())
        ).lastrowid

    def ensure_user(self, username: str) -> Viewer:
        row = self.conn.execute(
            "SELECT u.id, u.username, e.name FROM users u JOIN entities e ON e.id = u.entity_id"
            " WHERE u.username = ?", (username,)).fetchone()
        if row:
            return Viewer(row[0], row[1], row[2])
        entity_id = self.ensure_entity(username)
        uid = self.conn.execute(
            "INSERT INTO users (username, name, email, entity_id) VALUES (?, ?, ?, ?)",
            (username, username, f"{username}@localhost", entity_id)).lastrowid
        return Viewer(uid, username, username)

    def user_row(self, username: str | None) -> sqlite3.Row | None:
        if not username:
            return None
        return self.conn.execute(
            "SELECT u.*, e.name AS entity FROM users u JOIN entities e ON e.id = u.entity_id"
            " WHERE u.username = ?", (username,)).fetchone()

    def has_api_keys(self) -> bool:
        return self.conn.execute("SELECT 1 FROM api_keys LIMIT 1").fetchone() is not None

    def add_api_key(self, key: str, name: str = "cli") -> None:
        self.conn.execute(
            "INSERT OR IGNORE INTO api_keys (user_id, key_hash, name, created_at) VALUES (?, ?, ?, ?)",
            (self.default_user.id, hash_key(key), name, db.now()))
        self._key_hashes = None

    def authenticate(self, key: str) -> Viewer | None:
        if self._key_hashes is None:
            self._key_hashes = dict(self.conn.execute("SELECT key_hash, user_id FROM api_keys"))
        presented = hash_key(key)
        user_id = None
        for known, uid in self._key_hashes.items():
            # Compare every stored hash in constant time so timing tells nothing about a key.
            if hmac.compare_digest(known, presented):
                user_id = uid
        if user_id is None:
            return None
        row = self.conn.execute(
            "SELECT u.id, u.username, e.name FROM users u JOIN entities e ON e.id = u.entity_id"
            " WHERE u.id = ?", (user_id,)).fetchone()
        return Viewer(row[0], row[1], row[2])

    # -- projects ------------------------------------------------------------------------
    _PROJECT = ("SELECT p.*, e.name AS entity_name FROM projects p"
                " JOIN entities e ON e.id = p.entity_id")

    def entity_exists(self, name: str) -> bool:
        return self.conn.execute("SELECT 1 FROM entities WHERE name = ?", (name,)).fetchone() is not None

    def project(self, entity: str, name: str) -> sqlite3.Row | None:
        return self.conn.execute(self._PROJECT + " WHERE e.name = ? AND p.name = ?",
                                 (entity, name)).fetchone()

    def project_by_id(self, project_id: int) -> sqlite3.Row:
        return self.conn.execute(self._PROJECT + " WHERE p.id = ?", (project_id,)).fetchone()

    def require_project(self, entity: str | None, name: str | None) -> sqlite3.Row:
        if not entity or not name:
            raise BadInput("entityName and projectName are required")
        row = self.project(entity, name)
        if row is None:
            if not self.entity_exists(entity):
                raise BadInput(f"entity {entity!r} not found")
            raise BadInput(f"project {entity}/{name} not found")
        return row

    def ensure_project(self, entity: str, name: str, user_id: int | None = None) -> sqlite3.Row:
        row = self.project(entity, name)
        if row is None:
            entity_id = self.ensure_entity(entity)
            self.conn.execute(
                "INSERT INTO projects (entity_id, name, user_id, created_at) VALUES (?, ?, ?, ?)",
                (entity_id, name, user_id, db.now()))
            row = self.project(entity, name)
        return row

    def projects(self, entity: str | None, first: int, after: int) -> tuple[list[sqlite3.Row], bool]:
        sql, params = self._PROJECT + " WHERE p.id > ?", [after]
        if entity:
            sql += " AND e.name = ?"
            params.append(entity)
        rows = self.conn.execute(sql + " ORDER BY p.id LIMIT ?", (*params, first + 1)).fetchall()
        return rows[:first], len(rows) > first

    # -- runs: reading -------------------------------------------------------------------
    def run(self, project_id: int, name: str, *, deleted: bool = False) -> sqlite3.Row | None:
        row = self.conn.execute("SELECT * FROM runs WHERE project_id = ? AND name = ?",
                                (project_id, name)).fetchone()
        if row is not None and row["deleted_at"] is not None and not deleted:
            return None
        return row

    def run_by_storage_id(self, value: str) -> sqlite3.Row | None:
        parts = decode_storage_id(value, "Run")
        if len(parts) < 3:
            raise BadInput(f"invalid Run id {value!r}: expected a base64 Run id")
        name, project, entity = parts[0], parts[1], ":".join(parts[2:])
        proj = self.project(entity, project)
        return self.run(proj["id"], name, deleted=True) if proj else None

    def _filtered(self, filters_json: Any) -> tuple[str, list[Any]]:
        try:
            return filters.where_sql(filters.parse_filters(filters_json))
        except filters.FilterSyntaxError as e:
            raise BadInput(f"invalid filters: {e}") from None

    def count_runs(self, project_id: int, filters_json: Any) -> int:
        where, params = self._filtered(filters_json)
        return self.conn.execute(
            f"SELECT count(*) FROM runs r WHERE r.project_id = ? AND r.deleted_at IS NULL AND ({where})",
            (project_id, *params)).fetchone()[0]

    def list_runs(self, project_id: int, filters_json: Any, order: str | None, first: int | None,
                  after: str | None) -> tuple[list[sqlite3.Row], bool, str]:
        """One page of live runs, whether more follow, and the order key their cursors carry."""
        first = page_size(first)
        where, params = self._filtered(filters_json)
        try:
            spec = filters.order_sql(order)
        except filters.FilterSyntaxError as e:
            raise BadInput(f"invalid order: {e}") from None
        key = f"{'-' if spec.descending else '+'}{spec.field}"
        select, select_params = spec.select()
        order_by, order_params = spec.order_by()
        sql = (f"SELECT r.*, {select} FROM runs r"
               f" WHERE r.project_id = ? AND r.deleted_at IS NULL AND ({where})")
        args: list[Any] = [*select_params, project_id, *params]
        if after:
            cond, cond_params = spec.after(*self._decode_cursor(after, key))
            sql += f" AND {cond}"
            args += cond_params
        rows = self.conn.execute(f"{sql} ORDER BY {order_by} LIMIT ?", (*args, *order_params, first + 1)).fetchall()
        page = rows[:first]
        return page, len(rows) > first, key

    def all_runs(self, project_id: int, filters_json: Any) -> list[sqlite3.Row]:
        """Every live run matching a filter, paged internally (bulk mutations cover all matches)."""
        rows: list[sqlite3.Row] = []
        after = None
        while True:
            page, more, key = self.list_runs(project_id, filters_json, None, MAX_PAGE, after)
            rows += page
            if not more:
                return rows
            after = self.cursor(key, page[-1])

    def cursor(self, order: str, row: sqlite3.Row) -> str:
        """The signed, opaque position of a listed row (made only when a client asks for it)."""
        body = orjson.dumps([order, row[filters.ORDER_RANK_ALIAS], row[filters.ORDER_VALUE_ALIAS], row["id"]])
        sig = hmac.new(self.secret.encode(), body, hashlib.sha256).digest()[:12]
        return base64.urlsafe_b64encode(sig + body).decode()

    def _decode_cursor(self, cursor: str, order: str) -> tuple[Any, Any, int]:
        """(rank, value, id) of the row a cursor points after; forged or foreign cursors are refused."""
        try:
            raw = base64.urlsafe_b64decode(cursor.encode())
            sig, body = raw[:12], raw[12:]
            ok = hmac.compare_digest(sig, hmac.new(self.secret.encode(), body, hashlib.sha256).digest()[:12])
            cur_order, rank, value, run_id = orjson.loads(body) if ok else (None, None, None, None)
        except Exception:
            ok = False
        if not ok:
            raise BadInput("invalid cursor: pass back an endCursor or edge cursor exactly as returned")
        if cur_order != order:
            raise BadInput("cursor was issued for a different order; restart paging without after")
        return rank, value, run_id

    # -- runs: writing -------------------------------------------------------------------
    def upsert_run(self, fields: dict[str, Any], viewer: Viewer) -> tuple[sqlite3.Row, bool]:
        """W&B's upsertBucket: update by storage id, else create-or-update by (entity, project, name)."""
        if fields.get("id"):
            row = self.run_by_storage_id(fields["id"])
            if row is None:
                raise BadInput(f"run {fields['id']!r} not found")
            if row["deleted_at"] is not None:
                raise BadInput(f"run {row['name']!r} was deleted; restore it with undeleteRuns first")
            return self._update_run(row, fields), False
        entity = fields.get("entityName") or viewer.entity
        project = self.ensure_project(entity, fields.get("modelName") or "uncategorized", viewer.id)
        name = fields.get("name") or secrets.token_hex(4)
        existing = self.run(project["id"], name, deleted=True)
        if existing is not None:
            if existing["deleted_at"] is not None:
                raise BadInput(f"run id {name!r} belongs to a deleted run in {entity}/{project['name']} and "
                               "cannot be reused; choose another id or restore it with undeleteRuns")
            return self._update_run(existing, fields), False
        stamp = db.now()
        self.conn.execute(
            "INSERT INTO runs (project_id, name, state, username, created_at, updated_at, heartbeat_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (project["id"], name, fields.get("state") or "running", viewer.username, stamp, stamp, stamp))
        return self._update_run(self.run(project["id"], name), fields), True

    _COLUMNS = {  # UpsertBucketInput field -> runs column
        "displayName": "display_name", "groupName": "group_name", "jobType": "job_type",
        "sweep": "sweep_name", "notes": "notes", "description": "description", "commit": "commit_hash",
        "host": "host", "state": "state",
    }

    def _update_run(self, row: sqlite3.Row, fields: dict[str, Any]) -> sqlite3.Row:
        sets: dict[str, Any] = {}
        for key, column in self._COLUMNS.items():
            if fields.get(key) is not None:
                sets[column] = fields[key]
        if fields.get("tags") is not None:
            sets["tags"] = orjson.dumps([t for t in dict.fromkeys(fields["tags"]) if t is not None]).decode()
        for key, column in (("config", "config"), ("summaryMetrics", "summary")):
            if fields.get(key) is not None:
                sets[column] = json_object_text(fields[key], key)
        if sets:
            sets["updated_at"] = db.now()
            assignments = ", ".join(f"{c} = ?" for c in sets)  # column names come from _COLUMNS only
            self.conn.execute(f"UPDATE runs SET {assignments} WHERE id = ?", (*sets.values(), row["id"]))
        return self.conn.execute("SELECT * FROM runs WHERE id = ?", (row["id"],)).fetchone()

    def delete_run(self, row: sqlite3.Row) -> None:
        if row["deleted_at"] is None:  # deleting twice is success, as on W&B
            self.conn.execute("UPDATE runs SET deleted_at = ? WHERE id = ?", (db.now(), row["id"]))

    def delete_runs(self, project_id: int, filters_json: Any) -> int:
        where, params = self._filtered(filters_json)
        return self.conn.execute(
            f"UPDATE runs SET deleted_at = ? WHERE id IN (SELECT r.id FROM runs r WHERE r.project_id = ?"
            f" AND r.deleted_at IS NULL AND ({where}))", (db.now(), project_id, *params)).rowcount

    def undelete_runs(self, project_id: int, filters_json: Any) -> int:
        where, params = self._filtered(filters_json)
        return self.conn.execute(
            f"UPDATE runs SET deleted_at = NULL WHERE id IN (SELECT r.id FROM runs r WHERE r.project_id = ?"
            f" AND r.deleted_at IS NOT NULL AND ({where}))", (project_id, *params)).rowcount

    def modify_tags(self, row: sqlite3.Row, add: list[str], remove: list[str]) -> sqlite3.Row:
        tags = [t for t in orjson.loads(row["tags"]) if t not in remove]
        tags += [t for t in add if t not in tags]
        return self._update_run(row, {"tags": tags})

    def purge(self, retention: timedelta) -> int:
        """Hard-delete runs (with their history, logs and files) deleted longer ago than retention."""
        cutoff = (datetime.now(timezone.utc) - retention).strftime("%Y-%m-%dT%H:%M:%S")
        return self.conn.execute("DELETE FROM runs WHERE deleted_at IS NOT NULL AND deleted_at < ?",
                                 (cutoff,)).rowcount


def json_object_text(value: Any, what: str) -> str:
    """A JSONString argument as canonical JSON object text; bad JSON is the client's error."""
    if isinstance(value, str):
        try:
            value = loads_lenient(value)
        except ValueError:
            raise BadInput(f"{what} is not valid JSON; send a JSON object encoded as a string") from None
    if not isinstance(value, dict):
        raise BadInput(f"{what} must be a JSON object")
    return orjson.dumps(value).decode()
