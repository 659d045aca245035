"""All SQL of the local server, one module per aggregate, behind one `Store`.

users (users, entities, API keys), projects, runs, files, history (history, events and console
lines). Each module is plain functions over a connection; `Store` owns the connection, the
secret cursors and file URLs are signed with, and the API-key cache, so callers (resolvers,
HTTP handlers, the seed, the CLI) never know which module holds which statement. Store
methods never open a transaction: callers wrap whole requests in `db.transaction()`.
Every statement is parameterised; user strings never become SQL text.
"""

from __future__ import annotations

import secrets
import sqlite3
from datetime import timedelta
from pathlib import Path
from typing import Any, Iterable

from ..._time import ago
from .. import db, sqlfilter
from . import files, history, projects, runs, users
from ._common import BadInput, json_object_text, page_size, storage_id
from .runs import Position
from .users import Viewer, new_api_key

__all__ = ["Store", "BadInput", "Viewer", "Position", "new_api_key", "page_size", "storage_id",
           "json_object_text"]

DEFAULT_USER = "local"


class Store:
    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self.conn = db.connect(self.path)
        self._key_hashes: dict[str, int] | None = None
        with db.transaction(self.conn):
            self.secret = db.meta(self.conn, "cursor_secret") or db.set_meta(
                self.conn, "cursor_secret", secrets.token_hex(32))
            self.default_user = users.ensure_user(self.conn, DEFAULT_USER)

    # -- users, entities, keys -----------------------------------------------------------
    def ensure_entity(self, name: str) -> int:
        return users.ensure_entity(self.conn, name)

    def entity_exists(self, name: str) -> bool:
        return users.entity_exists(self.conn, name)

    def ensure_user(self, username: str) -> Viewer:
        return users.ensure_user(self.conn, username)

    def user_row(self, username: str | None) -> sqlite3.Row | None:
        return users.user_row(self.conn, username)

    def username(self, user_id: int | None) -> str | None:
        return users.username(self.conn, user_id)

    def has_api_keys(self) -> bool:
        return users.has_api_keys(self.conn)

    def add_api_key(self, key: str, name: str = "cli") -> None:
        users.add_api_key(self.conn, self.default_user.id, key, name)
        self._key_hashes = None

    def authenticate(self, key: str) -> Viewer | None:
        if self._key_hashes is None:
            self._key_hashes = users.key_hashes(self.conn)
        owner = users.key_owner(self._key_hashes, key)
        return None if owner is None else users.viewer(self.conn, owner)

    # -- projects ------------------------------------------------------------------------
    def project(self, entity: str, name: str) -> sqlite3.Row | None:
        return projects.get(self.conn, entity, name)

    def project_by_id(self, project_id: int) -> sqlite3.Row:
        return projects.by_id(self.conn, project_id)

    def require_project(self, entity: str | None, name: str | None) -> sqlite3.Row:
        return projects.require(self.conn, entity, name)

    def ensure_project(self, entity: str, name: str, user_id: int | None = None) -> sqlite3.Row:
        return projects.ensure(self.conn, entity, name, user_id)

    def projects(self, entity: str | None, first: int, after_id: int) -> tuple[list[sqlite3.Row], bool]:
        return projects.page(self.conn, entity, first, after_id)

    def project_last_active(self, project: sqlite3.Row) -> str:
        return projects.last_active(self.conn, project)

    # -- runs ----------------------------------------------------------------------------
    def run(self, project_id: int, name: str, *, deleted: bool = False) -> sqlite3.Row | None:
        return runs.get(self.conn, project_id, name, deleted=deleted)

    def run_by_storage_id(self, value: str) -> sqlite3.Row | None:
        return runs.by_storage_id(self.conn, value)

    def run_order(self, order: str | None) -> sqlfilter.OrderSpec:
        return runs.order(order)

    def count_runs(self, project_id: int, filters_json: Any) -> int:
        return runs.count(self.conn, project_id, filters_json)

    def list_runs(self, project_id: int, filters_json: Any, order: sqlfilter.OrderSpec, first: int,
                  after: Position | None = None) -> tuple[list[sqlite3.Row], bool]:
        return runs.page(self.conn, project_id, filters_json, order, first, after)

    def deleted_runs(self, project_id: int, filters_json: Any, first: int,
                     after: tuple[str, int] | None = None) -> tuple[list[sqlite3.Row], bool]:
        return runs.deleted_page(self.conn, project_id, filters_json, first, after)

    def count_deleted_runs(self, project_id: int, filters_json: Any) -> int:
        return runs.count_deleted(self.conn, project_id, filters_json)

    def all_runs(self, project_id: int, filters_json: Any) -> list[sqlite3.Row]:
        return runs.matching(self.conn, project_id, filters_json)

    def upsert_run(self, fields: dict[str, Any], viewer: Viewer) -> tuple[sqlite3.Row, bool]:
        return runs.upsert(self.conn, fields, viewer)

    def modify_tags(self, row: sqlite3.Row, add: list[str], remove: list[str]) -> sqlite3.Row:
        return runs.modify_tags(self.conn, row, add, remove)

    def delete_run(self, row: sqlite3.Row) -> None:
        runs.delete(self.conn, row)

    def delete_runs(self, project_id: int, filters_json: Any) -> int:
        return runs.delete_matching(self.conn, project_id, filters_json)

    def undelete_runs(self, project_id: int, filters_json: Any) -> int:
        return runs.undelete_matching(self.conn, project_id, filters_json)

    def move_runs(self, source_id: int, dest_id: int, filters_json: Any) -> tuple[list[str], list[str]]:
        return runs.move_matching(self.conn, source_id, dest_id, filters_json)

    def purge(self, retention: timedelta) -> int:
        """Hard-delete runs (with their history, logs and files) deleted longer ago than retention."""
        return runs.purge(self.conn, ago(retention))

    def insert_runs(self, project_id: int, rows: Iterable[dict[str, Any]]) -> dict[str, int]:
        return runs.insert_many(self.conn, project_id, rows)

    # -- file_stream: what a running run reports -----------------------------------------
    def append_history(self, run: sqlite3.Row, offset: int, content: list[Any]) -> None:
        history.append_history(self.conn, run, offset, content)

    def append_events(self, run: sqlite3.Row, offset: int, content: list[Any]) -> None:
        history.append_events(self.conn, run, offset, content)

    def write_log(self, run: sqlite3.Row, offset: int, content: list[Any]) -> None:
        history.write_log(self.conn, run, offset, content)

    def replace_summary(self, run_id: int, summary: Any) -> None:
        runs.replace_summary(self.conn, run_id, summary)

    def finish_run(self, run_id: int, exitcode: int | None) -> None:
        runs.finish(self.conn, run_id, exitcode)

    def heartbeat(self, run_id: int, state: str) -> None:
        runs.heartbeat(self.conn, run_id, state)

    def insert_history(self, histories: Iterable[tuple[int, list[dict[str, Any]]]]) -> None:
        history.insert(self.conn, histories)

    # -- history reads -------------------------------------------------------------------
    def history(self, run_id: int, min_step: int | None, max_step: int | None, samples: int | None) -> list[str]:
        return history.history(self.conn, run_id, min_step, max_step, samples)

    def sampled_history(self, run_id: int, spec: dict[str, Any]) -> list[dict[str, Any]]:
        return history.sampled_history(self.conn, run_id, spec)

    def events(self, run_id: int, samples: int | None) -> list[str]:
        return history.events(self.conn, run_id, samples)

    def tail(self, table: str, run_id: int) -> str:
        return history.tail(self.conn, table, run_id)

    # -- files ---------------------------------------------------------------------------
    def file_count(self, run_id: int) -> int:
        return files.count(self.conn, run_id)

    def files(self, run_id: int, names: list[str] | None, pattern: str | None, first: int,
              after_id: int) -> tuple[list[sqlite3.Row], bool]:
        return files.page(self.conn, run_id, names, pattern, first, after_id)

    def ensure_file(self, run_id: int, name: str) -> sqlite3.Row:
        return files.ensure(self.conn, run_id, name)

    def mark_files_uploaded(self, run_id: int, names: list[str]) -> None:
        files.mark_uploaded(self.conn, run_id, names)

    def record_uploaded_files(self, run_id: int, names: list[str]) -> None:
        files.record_uploaded(self.conn, run_id, names)

    def put_file_data(self, file_id: int, data: bytes) -> None:
        files.put_data(self.conn, file_id, data)

    def file_data(self, file_id: int) -> bytes | None:
        return files.data(self.conn, file_id)
