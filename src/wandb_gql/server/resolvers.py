"""Resolvers: schema.graphql's fields mapped onto the Store, named as W&B names them.

Runs travel as sqlite3.Row objects and each Run field reads its column, so a page of runs
costs one SQL query, whatever the selection. Resolver names follow the schema's field names.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import sqlite3
from dataclasses import dataclass, field
from typing import Any, Callable

import orjson
from graphql import GraphQLSchema, build_schema

from .. import documents
from . import history
from .jsonutil import loads_lenient
from .store import BadInput, Store, Viewer, page_size, storage_id


@dataclass
class Context:
    store: Store
    viewer: Viewer
    base_url: str
    _projects: dict[int, sqlite3.Row] = field(default_factory=dict)
    _users: dict[str | None, dict[str, Any] | None] = field(default_factory=dict)

    def project(self, project_id: int) -> sqlite3.Row:
        row = self._projects.get(project_id)
        if row is None:
            row = self._projects[project_id] = self.store.project_by_id(project_id)
        return row

    def user(self, username: str | None) -> dict[str, Any] | None:
        # A page of 1000 runs has a handful of distinct users: look each up once per request.
        if username not in self._users:
            self._users[username] = user_node(self.store, username)
        return self._users[username]


def _ctx(info: Any) -> Context:
    return info.context


# -- users, entities, server ----------------------------------------------------------------
def user_node(store: Store, username: str | None) -> dict[str, Any] | None:
    row = store.user_row(username)
    if row is None:
        return None
    return {
        "id": storage_id("User", row["username"]), "name": row["name"], "username": row["username"],
        "email": row["email"], "admin": bool(row["admin"]), "flags": "{}", "entity": row["entity"],
        "deletedAt": None, "apiKeys": {"edges": []},
        "teams": {"edges": [{"cursor": row["entity"], "node": entity_node(store, row["entity"])}]},
    }


def entity_node(store: Store, name: str) -> dict[str, Any] | None:
    if not store.entity_exists(name):
        return None
    return {"id": storage_id("Entity", name), "name": name, "isTeam": False, "organization": None}


def resolve_viewer(_root: Any, info: Any, entityName: str | None = None) -> dict[str, Any] | None:
    ctx = _ctx(info)
    return user_node(ctx.store, ctx.viewer.username)


def resolve_server_info(_root: Any, _info: Any) -> dict[str, Any]:
    # An empty feature list keeps the SDK's optional paths (gzip, structured logs) off.
    return {"cliVersionInfo": {}, "features": [], "latestLocalVersionInfo": None}


def resolve_entity(_root: Any, info: Any, name: str | None = None, login: bool | None = None):
    ctx = _ctx(info)
    return entity_node(ctx.store, name or ctx.viewer.entity)


# -- projects --------------------------------------------------------------------------------
def resolve_project(_root: Any, info: Any, name: str | None = None, entityName: str | None = None):
    ctx = _ctx(info)
    if not name:
        raise BadInput("project name is required")
    return ctx.store.project(entityName or ctx.viewer.entity, name)


def _opaque(kind: str, value: int) -> str:
    return base64.urlsafe_b64encode(f"{kind}:{value}".encode()).decode()


def _from_opaque(kind: str, cursor: str | None) -> int:
    if not cursor:
        return 0
    try:
        head, _, value = base64.urlsafe_b64decode(cursor.encode()).decode().partition(":")
        if head == kind:
            return int(value)
    except Exception:
        pass
    raise BadInput("invalid cursor: pass back an endCursor exactly as returned")


def resolve_models(_root: Any, info: Any, entityName: str | None = None, after: str | None = None,
                   first: int | None = None) -> dict[str, Any]:
    # W&B's legacy root name for listing projects; the SDK's GetProjects needs it non-null.
    rows, more = _ctx(info).store.projects(entityName, page_size(first), _from_opaque("Project", after))
    edges = [{"cursor": _opaque("Project", r["id"]), "node": r} for r in rows]
    return {"edges": edges, "pageInfo": {"hasNextPage": more, "hasPreviousPage": after is not None,
                                         "startCursor": edges[0]["cursor"] if edges else None,
                                         "endCursor": edges[-1]["cursor"] if edges else None}}


def resolve_entity_projects(entity: dict[str, Any], info: Any, after: str | None = None,
                            first: int | None = None, **_: Any) -> dict[str, Any]:
    return resolve_models(None, info, entity["name"], after, first)


PROJECT_FIELDS: dict[str, Callable[..., Any]] = {
    "id": lambda p, _i: storage_id("Project", p["name"], p["entity_name"]),
    "internalId": lambda p, _i: str(p["id"]),
    "name": lambda p, _i: p["name"],
    "entityName": lambda p, _i: p["entity_name"],
    "entity": lambda p, i: entity_node(_ctx(i).store, p["entity_name"]),
    "description": lambda p, _i: p["description"],
    "createdAt": lambda p, _i: p["created_at"],
    "isBenchmark": lambda p, _i: False,
    "readOnly": lambda p, _i: False,
    # The latest heartbeat or update of a live run, else the project's creation.
    "lastActive": lambda p, i: _ctx(i).store.conn.execute(
        "SELECT coalesce(max(max(coalesce(heartbeat_at, ''), updated_at)), ?) FROM runs"
        " WHERE project_id = ? AND deleted_at IS NULL", (p["created_at"], p["id"])).fetchone()[0],
}


def resolve_project_user(project: sqlite3.Row, info: Any) -> dict[str, Any] | None:
    store = _ctx(info).store
    row = store.conn.execute("SELECT username FROM users WHERE id = ?", (project["user_id"],)).fetchone()
    return user_node(store, row[0] if row else None)


def resolve_project_run(project: sqlite3.Row, info: Any, name: str) -> sqlite3.Row | None:
    return _ctx(info).store.run(project["id"], name)


def resolve_project_bucket(project: sqlite3.Row, info: Any, name: str, missingOk: bool | None = None,
                           desc: str | None = None) -> sqlite3.Row | None:
    # RunResumeStatus asks with missingOk: true; null then means "no such run".
    row = _ctx(info).store.run(project["id"], name)
    if row is None and not missingOk:
        raise BadInput(f"run {project['entity_name']}/{project['name']}/{name} not found")
    return row


def resolve_project_runs(project: sqlite3.Row, info: Any, filters: Any = None, order: str | None = None,
                         first: int | None = None, after: str | None = None) -> dict[str, Any]:
    store = _ctx(info).store
    rows, more, key = store.list_runs(project["id"], filters, order, first, after)
    cursor = functools.partial(store.cursor, key)
    return {
        "edges": [{"node": row, "_cursor": cursor} for row in rows],
        "pageInfo": {"hasNextPage": more, "hasPreviousPage": after is not None,
                     "startCursor": cursor(rows[0]) if rows else None,
                     "endCursor": cursor(rows[-1]) if rows else None},
        "_count": lambda: store.count_runs(project["id"], filters),
    }


def resolve_project_run_count(project: sqlite3.Row, info: Any, filters: Any = None) -> int:
    return _ctx(info).store.count_runs(project["id"], filters)


# -- runs ------------------------------------------------------------------------------------
def _column(name: str) -> Callable[[sqlite3.Row, Any], Any]:
    return lambda row, _info: row[name]


def _json_subset(text: str, keys: list[str] | None) -> str:
    if keys is None:
        return text
    data = orjson.loads(text)
    return orjson.dumps({k: data[k] for k in keys if k in data}).decode()


def _run_id(row: sqlite3.Row, info: Any) -> str:
    project = _ctx(info).project(row["project_id"])
    return storage_id("Run", row["name"], project["name"], project["entity_name"])


def _history_keys(row: sqlite3.Row, _info: Any) -> dict[str, Any]:
    keys = orjson.loads(row["history_keys"])
    # Without lastStep the SDK assumes -1 and scan_history returns nothing.
    return {"keys": keys.get("keys", {}), "lastStep": keys.get("lastStep", -1)}


def _wandb_config(row: sqlite3.Row, _info: Any, keys: list[str | None] | None = None) -> str:
    # resume="must" counts a run as existing only when this holds the key "t".
    internal = orjson.loads(row["config"]).get("_wandb", {})
    internal = internal.get("value", {}) if isinstance(internal, dict) else {}
    wanted = internal if keys is None else {k: internal[k] for k in keys if k in internal}
    return orjson.dumps(wanted).decode()


def _history(row: sqlite3.Row, info: Any, minStep: int | None = None, maxStep: int | None = None,
             samples: int | None = None) -> list[str]:
    return history.history(_ctx(info).store.conn, row["id"], minStep, maxStep, samples)


def _sampled_history(row: sqlite3.Row, info: Any, specs: list[str]) -> list[list[dict[str, Any]]]:
    out = []
    for spec in specs:
        try:
            parsed = loads_lenient(spec) if isinstance(spec, str) else spec
        except ValueError:
            raise BadInput(f"sampledHistory spec is not valid JSON: {spec[:80]!r}") from None
        if not isinstance(parsed, dict):
            raise BadInput('a sampledHistory spec must be a JSON object like {"keys": ["loss"], "samples": 100}')
        out.append(history.sampled_history(_ctx(info).store.conn, row["id"], parsed))
    return out


RUN_FIELDS: dict[str, Callable[..., Any]] = {
    "id": _run_id,
    "name": _column("name"),
    "displayName": lambda r, _i: r["display_name"] if r["display_name"] is not None else r["name"],
    "state": _column("state"),
    "config": lambda r, _i, keys=None: _json_subset(r["config"], keys),
    "summaryMetrics": lambda r, _i, keys=None: _json_subset(r["summary"], keys),
    "systemMetrics": _column("system_metrics"),
    "tags": lambda r, _i: orjson.loads(r["tags"]),
    "group": _column("group_name"),
    "jobType": _column("job_type"),
    "sweepName": _column("sweep_name"),
    "notes": _column("notes"),
    "description": _column("description"),
    "commit": _column("commit_hash"),
    "host": _column("host"),
    "createdAt": _column("created_at"),
    "heartbeatAt": _column("heartbeat_at"),
    "updatedAt": _column("updated_at"),
    "deletedAt": _column("deleted_at"),
    "user": lambda r, i: _ctx(i).user(r["username"]),
    "project": lambda r, i: _ctx(i).project(r["project_id"]),
    # The SDK does int(projectId): it must be int-like, not a global id.
    "projectId": lambda r, _i: str(r["project_id"]),
    "readOnly": lambda r, _i: False,
    "exitcode": _column("exitcode"),
    "historyLineCount": _column("history_line_count"),
    "eventsLineCount": _column("events_line_count"),
    "logLineCount": _column("log_line_count"),
    "historyKeys": _history_keys,
    "historyTail": lambda r, i: history.tail(_ctx(i).store.conn, "history", r["id"]),
    "eventsTail": lambda r, i: history.tail(_ctx(i).store.conn, "events", r["id"]),
    "wandbConfig": _wandb_config,
    "history": _history,
    "sampledHistory": _sampled_history,
    # No parquet exports here: empty lists make scan_history read everything through sampledHistory.
    "parquetHistory": lambda r, _i, liveKeys: {"parquetUrls": [], "liveData": []},
    "events": lambda r, i, samples=None: history.events(_ctx(i).store.conn, r["id"], samples),
    "fileCount": lambda r, i: _ctx(i).store.conn.execute(
        "SELECT count(*) FROM files WHERE run_id = ?", (r["id"],)).fetchone()[0],
    "stopped": lambda r, _i: False,
    "shouldStop": lambda r, _i: False,
}


# -- files -----------------------------------------------------------------------------------
def file_token(store: Store, file_id: int) -> str:
    sig = hmac.new(store.secret.encode(), f"file:{file_id}".encode(), hashlib.sha256).hexdigest()[:32]
    return f"{file_id}.{sig}"


def file_id_from_token(store: Store, token: str) -> int | None:
    head, _, sig = token.partition(".")
    if head.isdigit() and hmac.compare_digest(file_token(store, int(head)), token):
        return int(head)
    return None


def file_node(ctx: Context, row: sqlite3.Row) -> dict[str, Any]:
    # Upload and download URLs carry their own token: the SDK sends them no credentials.
    url = f"{ctx.base_url}/storage/{file_token(ctx.store, row['id'])}"
    return {
        "id": storage_id("File", str(row["id"])), "name": row["name"], "displayName": row["name"],
        "url": url, "directUrl": url, "uploadUrl": url, "uploadHeaders": [], "sizeBytes": row["size"],
        "md5": row["md5"], "mimetype": row["mimetype"], "updatedAt": row["updated_at"],
        "storagePath": row["name"],
    }


def _run_files(row: sqlite3.Row, info: Any, names: list[str | None] | None = None, after: str | None = None,
               first: int | None = None, pattern: str | None = None) -> dict[str, Any]:
    ctx = _ctx(info)
    if names and pattern:
        raise BadInput("pass either names or pattern, not both")
    sql, params = "SELECT * FROM files WHERE run_id = ? AND id > ?", [row["id"], _from_opaque("File", after)]
    if names:
        sql += f" AND name IN ({','.join('?' * len(names))})"
        params += names
    if pattern:
        sql += " AND name LIKE ?"
        params.append(pattern)
    size = page_size(first)
    rows = ctx.store.conn.execute(sql + " ORDER BY id LIMIT ?", (*params, size + 1)).fetchall()
    edges = [{"cursor": _opaque("File", r["id"]), "node": file_node(ctx, r)} for r in rows[:size]]
    return {"edges": edges, "totalCount": len(edges), "uploadHeaders": [],
            "pageInfo": {"hasNextPage": len(rows) > size, "hasPreviousPage": after is not None,
                         "startCursor": edges[0]["cursor"] if edges else None,
                         "endCursor": edges[-1]["cursor"] if edges else None}}


RUN_FIELDS["files"] = _run_files


# -- mutations -------------------------------------------------------------------------------
def _run_by_id(ctx: Context, run_id: str) -> sqlite3.Row:
    row = ctx.store.run_by_storage_id(run_id)
    if row is None:
        raise BadInput(f"run {run_id!r} not found")
    return row


def resolve_upsert_bucket(_root: Any, info: Any, input: dict[str, Any]) -> dict[str, Any]:
    ctx = _ctx(info)
    row, inserted = ctx.store.upsert_run(input, ctx.viewer)
    return {"bucket": row, "inserted": inserted, "updateAvailable": False,
            "clientMutationId": input.get("clientMutationId")}


def resolve_delete_run(_root: Any, info: Any, input: dict[str, Any]) -> dict[str, Any]:
    ctx = _ctx(info)
    ctx.store.delete_run(_run_by_id(ctx, input["id"]))
    return {"clientMutationId": input.get("clientMutationId")}


def resolve_delete_runs(_root: Any, info: Any, input: dict[str, Any]) -> dict[str, Any]:
    store = _ctx(info).store
    project = store.require_project(input["entityName"], input["projectName"])
    store.delete_runs(project["id"], input["filters"])
    return {"clientMutationId": input.get("clientMutationId"), "errors": None}


def resolve_undelete_runs(_root: Any, info: Any, input: dict[str, Any]) -> dict[str, Any]:
    store = _ctx(info).store
    project = store.require_project(input["entityName"], input["projectName"])
    store.undelete_runs(project["id"], input["filters"])
    return {"clientMutationId": input.get("clientMutationId")}


def resolve_modify_runs(_root: Any, info: Any, input: dict[str, Any]) -> dict[str, Any]:
    ctx = _ctx(info)
    store = ctx.store
    if input.get("ids"):
        rows = [_run_by_id(ctx, i) for i in input["ids"] if i]
        rows = [r for r in rows if r["deleted_at"] is None]
    elif input.get("filters") is not None:
        project = store.require_project(input.get("entityName"), input.get("projectName"))
        rows = store.all_runs(project["id"], input["filters"])
    else:
        raise BadInput("modifyRuns needs ids or filters")
    add = [t for t in input.get("addTags") or [] if t]
    remove = [t for t in input.get("removeTags") or [] if t]
    changed = [store.modify_tags(r, add, remove) for r in rows]
    return {"clientMutationId": input.get("clientMutationId"), "runs": changed, "runsSQL": []}


def resolve_create_run_files(_root: Any, info: Any, input: dict[str, Any]) -> dict[str, Any]:
    ctx = _ctx(info)
    store = ctx.store
    project = store.ensure_project(input["entityName"], input["projectName"], ctx.viewer.id)
    run = store.run(project["id"], input["runName"])
    if run is None:
        raise BadInput(f"run {input['entityName']}/{input['projectName']}/{input['runName']} not found")
    nodes = []
    for name in input["files"]:
        store.conn.execute(
            "INSERT INTO files (run_id, name, updated_at) VALUES (?, ?, datetime('now'))"
            " ON CONFLICT (run_id, name) DO NOTHING", (run["id"], name))
        row = store.conn.execute("SELECT * FROM files WHERE run_id = ? AND name = ?", (run["id"], name)).fetchone()
        nodes.append(file_node(ctx, row))
    # Exactly one entry per requested file, or wandb-core drops the batch.
    return {"runID": _run_id(run, info), "uploadHeaders": [], "files": nodes,
            "clientMutationId": input.get("clientMutationId")}


def resolve_mark_run_files_uploaded(_root: Any, info: Any, input: dict[str, Any]) -> dict[str, Any]:
    store = _ctx(info).store
    project = store.require_project(input["entityName"], input["projectName"])
    run = store.run(project["id"], input["runName"])
    if run is None:
        raise BadInput(f"run {input['runName']!r} not found")
    store.conn.executemany("UPDATE files SET uploaded = 1 WHERE run_id = ? AND name = ?",
                           [(run["id"], n) for n in input["files"]])
    return {"success": True}


# -- wiring ----------------------------------------------------------------------------------
def executable_schema() -> GraphQLSchema:
    schema = build_schema(documents.schema_text())
    types = schema.type_map
    query = types["Query"].fields
    query["viewer"].resolve = resolve_viewer
    query["serverInfo"].resolve = resolve_server_info
    query["project"].resolve = resolve_project
    query["model"].resolve = resolve_project  # legacy alias used by RunResumeStatus
    query["models"].resolve = resolve_models
    query["entity"].resolve = resolve_entity
    mutation = types["Mutation"].fields
    mutation["upsertBucket"].resolve = resolve_upsert_bucket
    mutation["deleteRun"].resolve = resolve_delete_run
    mutation["deleteRuns"].resolve = resolve_delete_runs
    mutation["undeleteRuns"].resolve = resolve_undelete_runs
    mutation["modifyRuns"].resolve = resolve_modify_runs
    mutation["createRunFiles"].resolve = resolve_create_run_files
    mutation["markRunFilesUploaded"].resolve = resolve_mark_run_files_uploaded

    project = types["Project"].fields
    for name, fn in PROJECT_FIELDS.items():
        project[name].resolve = fn
    project["user"].resolve = resolve_project_user
    project["run"].resolve = resolve_project_run
    project["bucket"].resolve = resolve_project_bucket
    project["runs"].resolve = resolve_project_runs
    project["runCount"].resolve = resolve_project_run_count
    types["Entity"].fields["projects"].resolve = resolve_entity_projects
    types["Entity"].fields["user"].resolve = lambda e, i: None
    types["RunConnection"].fields["totalCount"].resolve = lambda conn, _i: conn["_count"]()
    # Signing a cursor per row costs; most clients read only endCursor.
    types["RunEdge"].fields["cursor"].resolve = lambda edge, _i: edge["_cursor"](edge["node"])
    run = types["Run"].fields
    missing = set(run) - set(RUN_FIELDS)
    assert not missing, f"Run fields without a resolver: {missing}"
    for name, fn in RUN_FIELDS.items():
        run[name].resolve = fn
    _scalars(schema)
    return schema


def _scalars(schema: GraphQLSchema) -> None:
    from graphql.utilities import value_from_ast_untyped

    def json_string_out(value: Any) -> str:
        return value if isinstance(value, str) else orjson.dumps(value).decode()

    def json_string_in(value: Any) -> str:
        # W&B sends JSONString values as strings; a raw object is accepted and re-encoded.
        return value if isinstance(value, str) else orjson.dumps(value).decode()

    def int64_in(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise ValueError(f"Int64 cannot represent {value!r}")
        return int(value)

    t = schema.type_map
    t["JSONString"].serialize = json_string_out
    t["JSONString"].parse_value = json_string_in
    t["JSONString"].parse_literal = lambda node, _vars=None: json_string_in(value_from_ast_untyped(node, _vars))
    t["JSON"].serialize = lambda v: v
    t["JSON"].parse_value = lambda v: v
    t["JSON"].parse_literal = lambda node, _vars=None: value_from_ast_untyped(node, _vars)
    t["DateTime"].serialize = lambda v: v
    t["DateTime"].parse_value = lambda v: v
    t["Int64"].serialize = int
    t["Int64"].parse_value = int64_in
    t["Int64"].parse_literal = lambda node, _vars=None: int64_in(value_from_ast_untyped(node, _vars))
