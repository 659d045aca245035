"""Run fields. Runs travel as sqlite3.Row objects and each field reads its column, so a page of
runs costs one SQL query whatever the selection (and executor.py's fast path can call these
resolvers directly).

Plain column fields come from models.RUN_FIELDS, the one declaration of a run's fields; the
columns the client does not model and the computed fields are listed here.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime
from typing import Any, Callable

import orjson

from ..._time import TIME_FORMAT, format_time
from ...models import RUN_FIELDS as DECLARED
from ..jsonutil import loads_lenient
from ..store import BadInput, storage_id
from ._context import ctx
from .artifact_collection import RUN_ARTIFACT_FIELDS
from .file import run_files
from .sweep import SWEEP_RUN_FIELDS

Resolver = Callable[..., Any]

# Kinds of RunField whose GraphQL value is the column as stored.
COLUMN_KINDS = ("text", "time", "int")

# Columns the server answers but models.Run does not hold.
SERVER_COLUMNS = {
    "systemMetrics": "system_metrics", "commit": "commit_hash", "host": "host", "deletedAt": "deleted_at",
    "exitcode": "exitcode", "eventsLineCount": "events_line_count", "logLineCount": "log_line_count",
}


def _column(name: str) -> Resolver:
    return lambda row, _info: row[name]


def _json_subset(text: str, keys: list[str] | None) -> str:
    if keys is None:
        return text
    data = orjson.loads(text)
    return orjson.dumps({k: data[k] for k in keys if k in data}).decode()


def run_id(row: sqlite3.Row, info: Any) -> str:
    project = ctx(info).project(row["project_id"])
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
    return ctx(info).store.history(row["id"], minStep, maxStep, samples)


def _sampled_history(row: sqlite3.Row, info: Any, specs: list[str]) -> list[orjson.Fragment]:
    out = []
    for spec in specs:
        try:
            parsed = loads_lenient(spec) if isinstance(spec, str) else spec
        except ValueError:
            raise BadInput(f"sampledHistory spec is not valid JSON: {spec[:80]!r}") from None
        if not isinstance(parsed, dict):
            raise BadInput('a sampledHistory spec must be a JSON object like {"keys": ["loss"], "samples": 100}')
        # Already JSON: the response embeds it as it is (200k rows are not parsed and re-encoded).
        out.append(orjson.Fragment(ctx(info).store.sampled_history(row["id"], parsed)))
    return out


def _purge_at(row: sqlite3.Row, info: Any) -> str | None:
    """When the purge may remove a deleted run: its deletion plus the server's retention."""
    if row["deleted_at"] is None:
        return None
    return format_time(datetime.strptime(row["deleted_at"], TIME_FORMAT) + ctx(info).retention)


COMPUTED: dict[str, Resolver] = {
    "id": run_id,
    "displayName": lambda r, _i: r["display_name"] if r["display_name"] is not None else r["name"],
    "config": lambda r, _i, keys=None: _json_subset(r["config"], keys),
    "summaryMetrics": lambda r, _i, keys=None: _json_subset(r["summary"], keys),
    "tags": lambda r, _i: orjson.loads(r["tags"]),
    "user": lambda r, i: ctx(i).user(r["username"]),
    "project": lambda r, i: ctx(i).project(r["project_id"]),
    # The SDK does int(projectId): it must be int-like, not a global id.
    "projectId": lambda r, _i: str(r["project_id"]),
    "readOnly": lambda _r, _i: False,
    "historyKeys": _history_keys,
    "historyTail": lambda r, i: ctx(i).store.tail("history", r["id"]),
    "eventsTail": lambda r, i: ctx(i).store.tail("events", r["id"]),
    "wandbConfig": _wandb_config,
    "history": _history,
    "sampledHistory": _sampled_history,
    # No parquet exports here: empty lists make scan_history read everything through sampledHistory.
    "parquetHistory": lambda _r, _i, liveKeys: {"parquetUrls": [], "liveData": []},
    "events": lambda r, i, samples=None: ctx(i).store.events(r["id"], samples),
    "fileCount": lambda r, i: ctx(i).store.file_count(r["id"]),
    "files": run_files,
    "purgeAt": _purge_at,
    "stopped": lambda _r, _i: False,
    "shouldStop": lambda _r, _i: False,
    # What `wandb sweep --stop/--pause/--cancel` reads of a sweep's runs before changing its state.
    "running": lambda r, _i: r["state"] == "running",
    "failed": lambda r, _i: r["state"] in ("failed", "crashed"),
    **RUN_ARTIFACT_FIELDS,
    **SWEEP_RUN_FIELDS,
}

# GraphQL field -> column of every declared plain field (displayName is declared with a column
# but falls back to the name, so it is computed).
DECLARED_COLUMNS = {f.wire: f.column for f in DECLARED
                    if f.column and f.kind in COLUMN_KINDS and f.wire not in COMPUTED}

RUN_FIELDS: dict[str, Resolver] = {
    **{wire: _column(column) for wire, column in {**DECLARED_COLUMNS, **SERVER_COLUMNS}.items()},
    **COMPUTED,
}
