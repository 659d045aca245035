"""All SQL of the local server, one module per aggregate, behind one `Store`.

users (users, entities, API keys), projects, runs, files, history (history, events and console
lines), artifacts (types, collections, versions, aliases, usage) and blobs (artifact bytes by md5). Each module is plain functions over a connection; `Store` owns the connection, the
secret cursors and file URLs are signed with, and the API-key cache, so callers (resolvers,
HTTP handlers, the seed, the CLI) never know which module holds which statement. Store
methods never open a transaction: callers wrap whole requests in `Store.writing()` or `reading()`.
Every statement is parameterised; user strings never become SQL text.
"""

from __future__ import annotations

import contextlib
import secrets
import shutil
import sqlite3
import tempfile
import threading
import weakref
from datetime import timedelta
from pathlib import Path
from typing import Any, Iterable, Iterator

from ..._time import ago, now
from .. import db, sqlfilter
from . import artifacts, blobs, files, history, links, multipart, projects, runs, users
from ._common import BadInput, json_object_text, page_size, storage_id
from .runs import Position
from .users import Viewer, new_api_key

__all__ = ["Store", "BadInput", "Viewer", "Position", "new_api_key", "page_size", "storage_id",
           "json_object_text"]

DEFAULT_USER = "local"


class Store:
    """`conn` is this thread's own connection to the database (made on first use): the server
    runs requests on a pool of threads, reading in parallel; `writing()` is the one way to write."""

    def __init__(self, path: str | Path, *, busy_timeout: float = db.DEFAULT_BUSY_TIMEOUT) -> None:
        self._scratch: str | None = None
        if str(path) == ":memory:":
            # Connections of several threads must see one database, which ":memory:" cannot give
            # (each connection would have its own): a private file, removed with the store.
            self._scratch = tempfile.mkdtemp(prefix="wbgql-memory-")
            weakref.finalize(self, shutil.rmtree, self._scratch, True)
            path = Path(self._scratch) / "server.db"
        self.path = str(path)
        self.busy_timeout = busy_timeout
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._guard = threading.Lock()
        # Writers of this process queue here rather than in SQLite's busy handler (which polls,
        # sleeping up to 100 ms); writers of other processes are kept out by BEGIN IMMEDIATE.
        self._writer = threading.Lock()
        self._adopt(db.connect(self.path, busy_timeout))
        with self.writing():
            self.secret = db.meta(self.conn, "cursor_secret") or db.set_meta(
                self.conn, "cursor_secret", secrets.token_hex(32))
            users.ensure_schema(self.conn, DEFAULT_USER)
            self.default_user = users.ensure_user(self.conn, DEFAULT_USER)

    def _adopt(self, conn: sqlite3.Connection) -> sqlite3.Connection:
        self._local.conn = conn
        with self._guard:
            self._connections.append(conn)
        return conn

    @property
    def conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        return conn if conn is not None else self._adopt(db.open_connection(self.path, self.busy_timeout))

    @contextlib.contextmanager
    def writing(self) -> Iterator[sqlite3.Connection]:
        """A write transaction on this thread's connection, holding the database's write lock
        from its start; db.Busy if another writer keeps it past the busy timeout."""
        if not self._writer.acquire(timeout=self.busy_timeout):
            raise db.Busy(f"another request of this server held the database for over {self.busy_timeout:g} s")
        try:
            with db.transaction(self.conn, write=True):
                yield self.conn
        finally:
            self._writer.release()

    @contextlib.contextmanager
    def reading(self) -> Iterator[sqlite3.Connection]:
        """One consistent snapshot for a whole request; never waits for writers."""
        with db.transaction(self.conn, write=False):
            yield self.conn

    def close(self) -> None:
        """Close every thread's connection (and remove the private file behind ":memory:")."""
        with self._guard:
            connections, self._connections = self._connections, []
        for conn in connections:
            conn.close()
        if self._scratch is not None:
            shutil.rmtree(self._scratch, ignore_errors=True)

    # -- users, entities, teams, keys (store/users.py) -------------------------------------
    def entity_exists(self, name: str) -> bool:
        return users.entity_exists(self.conn, name)

    def is_team(self, name: str) -> bool:
        return users.is_team(self.conn, name)

    def ensure_user(self, username: str) -> Viewer:
        return users.ensure_user(self.conn, username)

    def add_user(self, username: str) -> Viewer:
        return users.add_user(self.conn, username)

    def ensure_team(self, name: str) -> int:
        return users.ensure_team(self.conn, name)

    def add_member(self, team: str, user_id: int) -> None:
        users.add_member(self.conn, team, user_id)

    def member_entities(self, user_id: int) -> frozenset[str]:
        return users.member_entities(self.conn, user_id)

    def teams_of(self, user_id: int) -> list[str]:
        return users.teams_of(self.conn, user_id)

    def users_list(self) -> list[dict[str, Any]]:
        return users.users_list(self.conn)

    def user_row(self, username: str | None) -> sqlite3.Row | None:
        return users.user_row(self.conn, username)

    def username(self, user_id: int | None) -> str | None:
        return users.username(self.conn, user_id)

    def has_api_keys(self) -> bool:
        return users.has_api_keys(self.conn)

    def add_api_key(self, key: str, name: str = "cli", user_id: int | None = None) -> None:
        """Store a key (hashed) for a user, the default (admin) user unless told."""
        users.add_api_key(self.conn, self.default_user.id if user_id is None else user_id, key, name)

    def keys_list(self) -> list[dict[str, Any]]:
        return users.keys_list(self.conn)

    def revoke_key(self, name_or_id: str) -> list[dict[str, Any]]:
        return users.revoke_key(self.conn, name_or_id)

    def authenticate(self, key: str) -> Viewer | None:
        # No cache: a key revoked by another process (the CLI) must be refused on the next request.
        owner = users.key_owner(self.conn, key)
        return None if owner is None else users.viewer(self.conn, owner)

    # -- projects ------------------------------------------------------------------------
    def project(self, entity: str, name: str) -> sqlite3.Row | None:
        return projects.get(self.conn, entity, name)

    def project_by_id(self, project_id: int) -> sqlite3.Row:
        return projects.by_id(self.conn, project_id)

    def require_project(self, entity: str | None, name: str | None) -> sqlite3.Row:
        return projects.require(self.conn, entity, name)

    def ensure_project(self, entity: str, name: str, user_id: int | None = None) -> sqlite3.Row:
        """A project, created on first use. Code writing straight into the database (the seed,
        benchmarks, tests) may name a new entity: it becomes a team of the admin user. Requests
        never get here with an entity their user is not a member of (resolvers/_context.py)."""
        if not users.entity_exists(self.conn, entity):
            users.add_member(self.conn, entity, self.default_user.id)
        return projects.ensure(self.conn, entity, name, user_id)

    def projects(self, entity: str | None, first: int, after_id: int,
                 among: frozenset[str] | None = None) -> tuple[list[sqlite3.Row], bool]:
        return projects.page(self.conn, entity, first, after_id, among)

    def project_last_active(self, project: sqlite3.Row) -> str:
        return projects.last_active(self.conn, project)

    # -- runs ----------------------------------------------------------------------------
    def run(self, project_id: int, name: str, *, deleted: bool = False) -> sqlite3.Row | None:
        return runs.get(self.conn, project_id, name, deleted=deleted)

    def run_by_id(self, run_id: int) -> sqlite3.Row | None:
        return runs.by_id(self.conn, run_id)

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

    def purge_expired_artifacts(self) -> tuple[int, int]:
        """Deletes versions whose TTL has passed; returns (versions, bytes freed)."""
        ids = artifacts.expired(self.conn, now())
        return len(ids), artifacts.delete_many(self.conn, ids)

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

    def sampled_history(self, run_id: int, spec: dict[str, Any]) -> str:
        """The JSON text of the spec's rows (the resolver passes it through unparsed)."""
        return history.sampled_history(self.conn, run_id, spec)

    def events(self, run_id: int, samples: int | None) -> list[str]:
        return history.events(self.conn, run_id, samples)

    def tail(self, table: str, run_id: int) -> str:
        return history.tail(self.conn, table, run_id)

    # -- files ---------------------------------------------------------------------------
    def file_count(self, run_id: int) -> int:
        return files.count_matching(self.conn, run_id, None, None)

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

    def run_file_bytes(self, run_id: int) -> int:
        return files.run_bytes(self.conn, run_id)

    def project_file_bytes(self, project_id: int) -> int:
        return files.project_bytes(self.conn, project_id)

    def file_owner(self, file_id: int) -> int | None:
        return files.live_owner(self.conn, file_id)

    def file_identity(self, file_id: int) -> tuple[int, str, str, str] | None:
        return files.live_identity(self.conn, file_id)

    # -- artifacts (store/artifacts.py, blobs.py) -------------------------------------------
    def ensure_artifact_type(self, project_id: int, name: str) -> sqlite3.Row:
        return artifacts.ensure_type(self.conn, project_id, name)

    def artifact_type(self, project_id: int, name: str) -> sqlite3.Row | None:
        return artifacts.type_by_name(self.conn, project_id, name)

    def artifact_type_by_id(self, type_id: int) -> sqlite3.Row:
        return artifacts.type_by_id(self.conn, type_id)

    def artifact_types(self, project_id: int, first: int, after_id: int) -> tuple[list[sqlite3.Row], bool]:
        return artifacts.types_page(self.conn, project_id, first, after_id)

    def ensure_artifact_collection(self, project_id: int, type_row: sqlite3.Row, name: str) -> sqlite3.Row:
        return artifacts.ensure_collection(self.conn, project_id, type_row, name)

    def artifact_collection(self, project_id: int, name: str) -> sqlite3.Row | None:
        return artifacts.collection_by_name(self.conn, project_id, name)

    def artifact_collection_by_id(self, collection_id: int) -> sqlite3.Row | None:
        return artifacts.collection_by_id(self.conn, collection_id)

    def artifact_collections(self, project_id: int, type_id: int | None, first: int, after_id: int) -> tuple[list[sqlite3.Row], bool]:
        return artifacts.collections_page(self.conn, project_id, type_id, first, after_id)

    def count_artifact_collections(self, project_id: int, type_id: int | None) -> int:
        return artifacts.count_collections(self.conn, project_id, type_id)

    def artifact(self, artifact_id: int) -> sqlite3.Row | None:
        return artifacts.by_id(self.conn, artifact_id)

    def resolve_artifact(self, collection_id: int, alias: str) -> sqlite3.Row | None:
        collection = artifacts.collection_by_id(self.conn, collection_id)
        if collection is not None and collection["kind"] == "PORTFOLIO":
            return links.resolve(self.conn, collection_id, alias)
        return artifacts.resolve(self.conn, collection_id, alias)

    def link_artifact(self, project_id: int, portfolio_name: str, artifact: sqlite3.Row,
                      aliases: list[dict[str, Any]]) -> tuple[sqlite3.Row, int]:
        portfolio = links.ensure_portfolio(self.conn, project_id, artifact["type_name"], portfolio_name)
        return portfolio, links.link(self.conn, portfolio, artifact, aliases)

    def portfolio_versions(self, portfolio_id: int, first: int, before_index: int | None) -> tuple[list[sqlite3.Row], bool]:
        return links.versions_page(self.conn, portfolio_id, first, before_index)

    def count_portfolio_versions(self, portfolio_id: int) -> int:
        return links.count(self.conn, portfolio_id)

    def unlink_artifact(self, portfolio_id: int, artifact_id: int) -> None:
        links.unlink(self.conn, portfolio_id, artifact_id)

    def link_index(self, portfolio_id: int, artifact_id: int) -> int | None:
        return links.index_of(self.conn, portfolio_id, artifact_id)

    def artifact_versions(self, collection_id: int, first: int, before_index: int | None) -> tuple[list[sqlite3.Row], bool]:
        return artifacts.versions_page(self.conn, collection_id, first, before_index)

    def count_artifact_versions(self, collection_id: int) -> int:
        return artifacts.count_versions(self.conn, collection_id)

    def latest_artifact(self, collection_id: int) -> sqlite3.Row | None:
        return artifacts.latest(self.conn, collection_id)

    def create_artifact(self, collection: sqlite3.Row, fields: dict[str, Any], run_id: int | None) -> sqlite3.Row:
        return artifacts.create(self.conn, collection, fields, run_id)

    def set_artifact_alias(self, collection_id: int, alias: str, artifact_id: int) -> None:
        artifacts.set_alias(self.conn, collection_id, alias, artifact_id)

    def artifact_aliases(self, artifact_id: int) -> list[sqlite3.Row]:
        return artifacts.aliases_of(self.conn, artifact_id)

    def collection_aliases(self, collection_id: int, first: int, after_id: int) -> tuple[list[sqlite3.Row], bool]:
        return artifacts.collection_aliases(self.conn, collection_id, first, after_id)

    def update_artifact(self, row: sqlite3.Row, fields: dict[str, Any]) -> sqlite3.Row:
        return artifacts.update(self.conn, row, fields)

    def add_artifact_aliases(self, row: sqlite3.Row, aliases: list[dict[str, Any]]) -> list[sqlite3.Row]:
        return artifacts.add_aliases(self.conn, row, aliases)

    def delete_artifact_aliases(self, row: sqlite3.Row, aliases: list[dict[str, Any]]) -> None:
        artifacts.delete_aliases(self.conn, row, aliases)

    def set_artifact_manifest(self, artifact_id: int, manifest_type: str, digest: str | None) -> None:
        artifacts.set_manifest(self.conn, artifact_id, manifest_type, digest)

    def put_artifact_manifest(self, artifact_id: int, data: bytes) -> None:
        artifacts.put_manifest(self.conn, artifact_id, data)

    def add_artifact_files(self, artifact_id: int, specs: list[dict[str, Any]]) -> list[bool]:
        return artifacts.add_files(self.conn, artifact_id, specs)

    def artifact_has_file(self, artifact_id: int, md5: str) -> bool:
        return artifacts.has_file_md5(self.conn, artifact_id, md5)

    def commit_artifact(self, row: sqlite3.Row) -> sqlite3.Row:
        committed = artifacts.commit(self.conn, row)
        multipart.drop_uploads(self.conn, row["id"])
        return committed

    def artifact_files(self, artifact_id: int, names: list[str] | None, first: int, after: str | None) -> tuple[list[sqlite3.Row], bool]:
        return artifacts.files_page(self.conn, artifact_id, names, first, after)

    def count_artifact_files(self, artifact_id: int) -> int:
        return artifacts.count_files(self.conn, artifact_id)

    def use_artifact(self, artifact_id: int, run_id: int, used_as: str | None) -> None:
        artifacts.use(self.conn, artifact_id, run_id, used_as)

    def output_artifacts(self, run_id: int, first: int, after_id: int) -> tuple[list[sqlite3.Row], bool]:
        return artifacts.outputs_page(self.conn, run_id, first, after_id)

    def count_output_artifacts(self, run_id: int) -> int:
        return artifacts.count_outputs(self.conn, run_id)

    def input_artifacts(self, run_id: int, first: int, after_id: int) -> tuple[list[sqlite3.Row], bool]:
        return artifacts.inputs_page(self.conn, run_id, first, after_id)

    def count_input_artifacts(self, run_id: int) -> int:
        return artifacts.count_inputs(self.conn, run_id)

    def artifact_users(self, artifact_id: int, first: int, after_id: int) -> tuple[list[sqlite3.Row], bool]:
        return artifacts.users_page(self.conn, artifact_id, first, after_id)

    def count_artifact_users(self, artifact_id: int) -> int:
        return artifacts.count_users(self.conn, artifact_id)

    def delete_artifact(self, row: sqlite3.Row, delete_aliases: bool) -> int:
        return artifacts.delete(self.conn, row, delete_aliases)

    def delete_artifacts(self, artifact_ids: list[int]) -> int:
        return artifacts.delete_many(self.conn, artifact_ids)

    def run_output_artifact_ids(self, run_id: int) -> list[int]:
        return artifacts.run_outputs(self.conn, run_id)

    def project_artifact_bytes(self, project_id: int) -> int:
        return artifacts.project_bytes(self.conn, project_id)

    def artifact_bytes(self, artifact_id: int) -> int:
        return artifacts.artifact_bytes(self.conn, artifact_id)

    def collection_bytes(self, collection_id: int) -> int:
        return artifacts.collection_bytes(self.conn, collection_id)

    def artifact_bytes_by(self, project_id: int, level: str) -> dict[int, int]:
        return artifacts.bytes_by(self.conn, project_id, level)

    def project_artifact_collections(self, project_id: int) -> list[sqlite3.Row]:
        return artifacts.project_collections(self.conn, project_id)

    def project_artifact_types(self, project_id: int) -> list[sqlite3.Row]:
        return artifacts.project_types(self.conn, project_id)

    def collection_versions(self, collection_id: int) -> list[sqlite3.Row]:
        return artifacts.collection_versions(self.conn, collection_id)

    def insert_artifact_collection(self, project_id: int, type_name: str, name: str,
                                   versions: list[dict[str, Any]]) -> list[int]:
        return artifacts.insert_collection(self.conn, project_id, type_name, name, versions)

    def blob(self, md5: str) -> bytes | None:
        return blobs.data(self.conn, md5)

    def open_multipart_upload(self, artifact_id: int, name: str, md5: str,
                              parts: list[dict[str, Any]]) -> tuple[str, list[int]]:
        return multipart.open_upload(self.conn, artifact_id, name, md5, parts)

    def multipart_part_refusal(self, artifact_id: int, upload_id: str, part: int, data: bytes) -> str | None:
        return multipart.part_refusal(self.conn, artifact_id, upload_id, part, data)

    def put_multipart_part(self, upload_id: str, part: int, data: bytes) -> str:
        return multipart.put_part(self.conn, upload_id, part, data)

    def complete_multipart_upload(self, artifact_id: int, upload_id: str, storage_path: str,
                                  completed: list[dict[str, Any]]) -> str:
        return multipart.complete(self.conn, artifact_id, upload_id, storage_path, completed)

    def put_blob(self, data: bytes) -> str:
        return blobs.put(self.conn, data)

    def blob_bytes(self) -> int:
        return blobs.total_bytes(self.conn)
