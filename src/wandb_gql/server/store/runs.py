"""Runs (W&B's buckets): lookup, filtered listing in keyset order, upsert, soft delete, purge.

Filters and orders come from sqlfilter as parameterised SQL fragments; column names put into
statements here come from this module's own constants, never from a request.
"""

from __future__ import annotations

import secrets
import sqlite3
from typing import Any, Iterable

import orjson

from ..._time import now
from .. import sqlfilter
from . import history, projects
from ._common import MAX_PAGE, BadInput, decode_storage_id, json_object_text
from .users import Viewer

Position = tuple[Any, Any, int]  # (rank, value, id) of a row in its order: where a page resumes


def get(conn: sqlite3.Connection, project_id: int, name: str, *, deleted: bool = False) -> sqlite3.Row | None:
    row = conn.execute("SELECT * FROM runs WHERE project_id = ? AND name = ?", (project_id, name)).fetchone()
    if row is not None and row["deleted_at"] is not None and not deleted:
        return None
    return row


def by_storage_id(conn: sqlite3.Connection, value: str) -> sqlite3.Row | None:
    """A run by W&B's base64 id, deleted or not (None if its project or the run is gone)."""
    parts = decode_storage_id(value, "Run")
    if len(parts) < 3:
        raise BadInput(f"invalid Run id {value!r}: expected a base64 Run id")
    name, project, entity = parts[0], parts[1], ":".join(parts[2:])
    proj = projects.get(conn, entity, project)
    return get(conn, proj["id"], name, deleted=True) if proj else None


def _where(filters_json: Any, project_id: int) -> tuple[str, list[Any]]:
    """The filter over `runs r` of one project (config/summary keys are looked up in run_keys)."""
    try:
        return sqlfilter.where_sql(sqlfilter.parse_filters(filters_json), project_id)
    except sqlfilter.FilterSyntaxError as e:
        raise BadInput(f"invalid filters: {e}") from None


def order(text: str | None) -> sqlfilter.OrderSpec:
    try:
        return sqlfilter.order_sql(text)
    except sqlfilter.FilterSyntaxError as e:
        raise BadInput(f"invalid order: {e}") from None


def position(row: sqlite3.Row) -> Position:
    """Where a row listed by `page` stands in its order."""
    return row[sqlfilter.ORDER_RANK_ALIAS], row[sqlfilter.ORDER_VALUE_ALIAS], row["id"]


def count(conn: sqlite3.Connection, project_id: int, filters_json: Any) -> int:
    where, params = _where(filters_json, project_id)
    if where == "1":
        return live_count(conn, project_id)
    return int(conn.execute(
        f"SELECT count(*) FROM runs r WHERE r.project_id = ? AND r.deleted_at IS NULL AND ({where})",
        (project_id, *params)).fetchone()[0])


def page(conn: sqlite3.Connection, project_id: int, filters_json: Any, spec: sqlfilter.OrderSpec, first: int,
         after: Position | None) -> tuple[list[sqlite3.Row], bool]:
    """Up to `first` live runs after `after` in `spec`'s order, and whether more follow."""
    where, params = _where(filters_json, project_id)
    if after is not None:
        try:
            spec.after(*after)  # checks the position's types whichever way it is used
        except sqlfilter.FilterSyntaxError as e:
            raise BadInput(str(e)) from None
    if spec.keys is not None:
        return _keyed_page(conn, project_id, where, params, spec, first, after)
    select, select_params = spec.select()
    order_by, order_params = spec.order_by()
    sql = (f"SELECT r.*, {select} FROM runs r"
           f" WHERE r.project_id = ? AND r.deleted_at IS NULL AND ({where})")
    args: list[Any] = [*select_params, project_id, *params]
    if after is not None:
        try:
            cond, cond_params = spec.after(*after)
        except sqlfilter.FilterSyntaxError as e:
            raise BadInput(str(e)) from None
        sql += f" AND {cond}"
        args += cond_params
    rows = conn.execute(f"{sql} ORDER BY {order_by} LIMIT ?", (*args, *order_params, first + 1)).fetchall()
    return rows[:first], len(rows) > first


def _keyed_page(conn: sqlite3.Connection, project_id: int, where: str, params: list[Any], spec: sqlfilter.OrderSpec,
                first: int, after: Position | None) -> tuple[list[sqlite3.Row], bool]:
    """`page` ordered by a config/summary key, without sorting every run: the runs holding a
    non-null value come from the run_keys index in (rank, value, id) order; the rest (missing or
    null, rank 0, ordered by id) from the runs_live index. Rank 0 comes first ascending, last
    descending, so a page reads at most one part and the start of the next: time per page does
    not grow with depth."""
    assert spec.keys is not None
    found = conn.execute("SELECT id FROM run_key_paths WHERE project_id = ? AND source = ? AND path = ?",
                         (project_id, *spec.keys)).fetchone()
    path_id = None if found is None else found[0]
    d, op = ("DESC", "<") if spec.descending else ("ASC", ">")
    parts = ["keyed", "missing"] if spec.descending else ["missing", "keyed"]
    if after is not None:  # skip the part the cursor is past
        parts = parts[parts.index("missing" if after[0] == 0 else "keyed"):]
    rows: list[sqlite3.Row] = []
    for part in parts:
        within = after is not None and (after[0] == 0) == (part == "missing")
        limit = first + 1 - len(rows)
        if part == "keyed":
            if path_id is None:
                continue
            # CROSS JOIN: walk the index in order, whatever the filter; a page stops at `limit`.
            sql = (f"SELECT r.*, k.rank AS {sqlfilter.ORDER_RANK_ALIAS}, k.value AS {sqlfilter.ORDER_VALUE_ALIAS}"
                   f" FROM run_keys k CROSS JOIN runs r WHERE k.path_id = ? AND k.rank > 0 AND r.id = k.run_id"
                   f" AND r.project_id = ? AND r.deleted_at IS NULL AND ({where})")
            args: list[Any] = [path_id, project_id, *params]
            if within and after is not None:
                sql += f" AND (k.rank, k.value, k.run_id) {op} (?, ?, ?)"
                args += after
            sql += f" ORDER BY k.rank {d}, k.value {d}, k.run_id {d} LIMIT ?"
        else:
            if path_id is not None and _every_live_run_has(conn, project_id, spec.keys[0], path_id):
                continue
            sql = (f"SELECT r.*, 0 AS {sqlfilter.ORDER_RANK_ALIAS}, 0 AS {sqlfilter.ORDER_VALUE_ALIAS}"
                   f" FROM runs r WHERE r.project_id = ? AND r.deleted_at IS NULL AND ({where})")
            args = [project_id, *params]
            if path_id is not None:
                sql += (" AND NOT EXISTS (SELECT 1 FROM run_keys k WHERE k.run_id = r.id AND k.source = ?"
                        " AND k.path_id = ? AND k.rank > 0)")
                args += [spec.keys[0], path_id]
            if within and after is not None:
                sql += f" AND r.id {op} ?"
                args.append(after[2])
            sql += f" ORDER BY r.id {d} LIMIT ?"
        rows += conn.execute(sql, (*args, limit)).fetchall()
        if len(rows) > first:
            break
    return rows[:first], len(rows) > first


def live_count(conn: sqlite3.Connection, project_id: int) -> int:
    """The project's live runs, from the counter db.py's triggers keep."""
    row = conn.execute("SELECT live FROM project_run_counts WHERE project_id = ?", (project_id,)).fetchone()
    return 0 if row is None else int(row[0])


def _every_live_run_has(conn: sqlite3.Connection, project_id: int, source: int, path_id: int) -> bool:
    """Whether no live run of the project lacks a non-null value at the path, from two index
    counts (~5 ms each at 100k runs) instead of probing every run (~100 ms): the runs holding the
    value, less the deleted ones among them, against the live runs."""
    live = live_count(conn, project_id)
    keyed = conn.execute("SELECT count(*) FROM run_keys WHERE path_id = ? AND rank > 0", (path_id,)).fetchone()[0]
    if keyed < live:
        return False
    keyed_deleted = conn.execute(
        # INDEXED BY: the deleted runs are few; the planner would walk the project's live ones.
        "SELECT count(*) FROM runs r INDEXED BY runs_deleted WHERE r.project_id = ? AND r.deleted_at IS NOT NULL"
        " AND EXISTS (SELECT 1 FROM run_keys k WHERE k.run_id = r.id AND k.source = ? AND k.path_id = ? AND k.rank > 0)",
        (project_id, source, path_id)).fetchone()[0]
    return bool(keyed - keyed_deleted == live)


def deleted_page(conn: sqlite3.Connection, project_id: int, filters_json: Any, first: int,
                 after: tuple[str, int] | None) -> tuple[list[sqlite3.Row], bool]:
    """Up to `first` soft-deleted runs, the most recently deleted first, after (deleted_at, id)."""
    where, params = _where(filters_json, project_id)
    sql = f"SELECT r.* FROM runs r WHERE r.project_id = ? AND r.deleted_at IS NOT NULL AND ({where})"
    args: list[Any] = [project_id, *params]
    if after is not None:
        sql += " AND (r.deleted_at, r.id) < (?, ?)"
        args += after
    rows = conn.execute(f"{sql} ORDER BY r.deleted_at DESC, r.id DESC LIMIT ?", (*args, first + 1)).fetchall()
    return rows[:first], len(rows) > first


def count_deleted(conn: sqlite3.Connection, project_id: int, filters_json: Any) -> int:
    where, params = _where(filters_json, project_id)
    return int(conn.execute(
        f"SELECT count(*) FROM runs r WHERE r.project_id = ? AND r.deleted_at IS NOT NULL AND ({where})",
        (project_id, *params)).fetchone()[0])


def matching(conn: sqlite3.Connection, project_id: int, filters_json: Any) -> list[sqlite3.Row]:
    """Every live run matching a filter, paged internally (bulk mutations cover all matches)."""
    spec = order(None)
    rows: list[sqlite3.Row] = []
    after = None
    while True:
        chunk, more = page(conn, project_id, filters_json, spec, MAX_PAGE, after)
        rows += chunk
        if not more:
            return rows
        after = position(chunk[-1])


def upsert(conn: sqlite3.Connection, fields: dict[str, Any], viewer: Viewer) -> tuple[sqlite3.Row, bool]:
    """W&B's upsertBucket: update by storage id, else create-or-update by (entity, project, name)."""
    if fields.get("id"):
        row = by_storage_id(conn, fields["id"])
        if row is None:
            raise BadInput(f"run {fields['id']!r} not found")
        if row["deleted_at"] is not None:
            raise BadInput(f"run {row['name']!r} was deleted; restore it with undeleteRuns first")
        return update(conn, row, fields), False
    entity = fields.get("entityName") or viewer.entity
    project = projects.ensure(conn, entity, fields.get("modelName") or "uncategorized", viewer.id)
    name = fields.get("name") or secrets.token_hex(4)
    existing = get(conn, project["id"], name, deleted=True)
    if existing is not None:
        if existing["deleted_at"] is not None:
            raise BadInput(f"run id {name!r} belongs to a deleted run in {entity}/{project['name']} and "
                           "cannot be reused; choose another id or restore it with undeleteRuns")
        return update(conn, existing, fields), False
    fork = _fork_parent(conn, project["id"], fields.get("config"))  # checked before anything is written
    stamp = now()
    conn.execute(
        "INSERT INTO runs (project_id, name, state, username, created_at, updated_at, heartbeat_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        (project["id"], name, fields.get("state") or "running", viewer.username, stamp, stamp, stamp))
    created = get(conn, project["id"], name)
    assert created is not None  # inserted just above, in this transaction
    created = update(conn, created, fields)
    if fork is not None:
        _fork(conn, created, *fork)
    return get(conn, project["id"], name) or created, True


def rewind(conn: sqlite3.Connection, run: sqlite3.Row, step: float) -> sqlite3.Row:
    """W&B's rewindRun (wandb.init(resume_from="id?_step=N")): the history after `step` goes,
    and the summary becomes the last row kept, so the run continues from there."""
    kept = _rows_through(conn, run["id"], step)
    # Rebuilt from the rows kept, so the line count, historyKeys and the columns agree.
    conn.execute("DELETE FROM history WHERE run_id = ?", (run["id"],))
    conn.execute("DELETE FROM history_columns WHERE run_id = ?", (run["id"],))
    conn.execute("UPDATE runs SET history_line_count = 0, history_keys = '{}', summary = ?, updated_at = ?"
                 " WHERE id = ?", (orjson.dumps(kept[-1] if kept else {}).decode(), now(), run["id"]))
    if kept:
        history.append_history(conn, by_id(conn, run["id"]) or run, 0, kept)
    return by_id(conn, run["id"]) or run


def _rows_through(conn: sqlite3.Connection, run_id: int, step: float) -> list[dict[str, Any]]:
    """The run's history rows with an int step up to `step`, in line order."""
    return [orjson.loads(text) for (text,) in conn.execute(
        "SELECT row FROM history WHERE run_id = ? AND step <= ? ORDER BY line", (run_id, step))]


def _fork_parent(conn: sqlite3.Connection, project_id: int, config: Any) -> tuple[sqlite3.Row, float] | None:
    """wandb.init(fork_from="id?_step=N") sends no mutation of its own: the SDK puts
    {"run_id", "step"} in the new run's config under _wandb.branch_point. The parent run and
    the step, or None for a run that is no fork."""
    if config is None:
        return None
    internal = orjson.loads(json_object_text(config, "config")).get("_wandb")
    value = internal.get("value") if isinstance(internal, dict) else None
    point = value.get("branch_point") if isinstance(value, dict) else None
    if not isinstance(point, dict):
        return None
    parent_name, step = point.get("run_id"), point.get("step")
    if not isinstance(parent_name, str) or not isinstance(step, (int, float)) or isinstance(step, bool):
        raise BadInput(f"fork_from: _wandb.branch_point must be {{run_id: string, step: number}}, got {point!r:.80}")
    parent = get(conn, project_id, parent_name)
    if parent is None:
        raise BadInput(f"fork_from: run {parent_name!r} not found in this project; fork a run of the same project")
    return parent, step


def _fork(conn: sqlite3.Connection, child: sqlite3.Row, parent: sqlite3.Row, step: float) -> None:
    """As W&B documents fork_from: the new run starts with the parent's history up to `step`
    and the parent's summary."""
    rows = _rows_through(conn, parent["id"], step)
    if rows:
        history.append_history(conn, child, 0, rows)
    conn.execute("UPDATE runs SET summary = ? WHERE id = ?", (parent["summary"], child["id"]))


_COLUMNS = {  # UpsertBucketInput field -> runs column
    "displayName": "display_name", "groupName": "group_name", "jobType": "job_type",
    "sweep": "sweep_name", "notes": "notes", "description": "description", "commit": "commit_hash",
    "host": "host", "state": "state",
}


def update(conn: sqlite3.Connection, row: sqlite3.Row, fields: dict[str, Any]) -> sqlite3.Row:
    """Set the UpsertBucketInput fields given (not None); updatedAt moves only when one changed."""
    sets: dict[str, Any] = {}
    for key, column in _COLUMNS.items():
        if fields.get(key) is not None:
            sets[column] = fields[key]
    if fields.get("tags") is not None:
        sets["tags"] = orjson.dumps([t for t in dict.fromkeys(fields["tags"]) if t is not None]).decode()
    for key, column in (("config", "config"), ("summaryMetrics", "summary")):
        if fields.get(key) is not None:
            sets[column] = json_object_text(fields[key], key)
    if sets:
        sets["updated_at"] = now()
        assignments = ", ".join(f"{c} = ?" for c in sets)  # column names come from this module only
        conn.execute(f"UPDATE runs SET {assignments} WHERE id = ?", (*sets.values(), row["id"]))
    return conn.execute("SELECT * FROM runs WHERE id = ?", (row["id"],)).fetchone()


def modify_tags(conn: sqlite3.Connection, row: sqlite3.Row, add: list[str], remove: list[str]) -> sqlite3.Row:
    before = orjson.loads(row["tags"])
    tags = [t for t in before if t not in remove]
    tags += [t for t in dict.fromkeys(add) if t not in tags]
    if tags == before:  # already so: repeating a bulk tagging leaves updatedAt alone
        return row
    return update(conn, row, {"tags": tags})


def delete(conn: sqlite3.Connection, row: sqlite3.Row) -> None:
    if row["deleted_at"] is None:  # deleting twice is success, as on W&B
        conn.execute("UPDATE runs SET deleted_at = ? WHERE id = ?", (now(), row["id"]))


def delete_matching(conn: sqlite3.Connection, project_id: int, filters_json: Any) -> int:
    where, params = _where(filters_json, project_id)
    return conn.execute(
        f"UPDATE runs SET deleted_at = ? WHERE id IN (SELECT r.id FROM runs r WHERE r.project_id = ?"
        f" AND r.deleted_at IS NULL AND ({where}))", (now(), project_id, *params)).rowcount


def undelete_matching(conn: sqlite3.Connection, project_id: int, filters_json: Any) -> int:
    where, params = _where(filters_json, project_id)
    return conn.execute(
        f"UPDATE runs SET deleted_at = NULL WHERE id IN (SELECT r.id FROM runs r WHERE r.project_id = ?"
        f" AND r.deleted_at IS NOT NULL AND ({where}))", (project_id, *params)).rowcount


def move_matching(conn: sqlite3.Connection, source_id: int, dest_id: int,
                  filters_json: Any) -> tuple[list[str], list[str]]:
    """W&B's moveRuns: live runs matching the filter go to another project under the same run
    ids; a run whose id the destination already holds (live or deleted: ids are never reused)
    stays where it is. Returns (moved, kept) run names."""
    where, params = _where(filters_json, source_id)
    matched = (f"SELECT r.id, r.name FROM runs r WHERE r.project_id = ? AND r.deleted_at IS NULL"
               f" AND ({where})")
    rows = conn.execute(matched, (source_id, *params)).fetchall()
    taken = {row[0] for row in conn.execute(
        f"SELECT d.name FROM runs d WHERE d.project_id = ? AND d.name IN (SELECT m.name FROM ({matched}) m)",
        (dest_id, source_id, *params))}
    moving = [row for row in rows if row["name"] not in taken]
    conn.executemany("UPDATE runs SET project_id = ? WHERE id = ?", [(dest_id, row["id"]) for row in moving])
    return [row["name"] for row in moving], sorted(taken)


def purge(conn: sqlite3.Connection, cutoff: str) -> int:
    """Hard-delete runs (their history, logs and files cascade) deleted before `cutoff`."""
    return conn.execute("DELETE FROM runs WHERE deleted_at IS NOT NULL AND deleted_at < ?", (cutoff,)).rowcount


# -- what file_stream reports about a running run ----------------------------------------------
def replace_summary(conn: sqlite3.Connection, run_id: int, summary: Any) -> None:
    conn.execute("UPDATE runs SET summary = ? WHERE id = ?", (json_object_text(summary, "wandb-summary.json"), run_id))


def finish(conn: sqlite3.Connection, run_id: int, exitcode: int | None) -> None:
    stamp = now()
    state = "finished" if exitcode in (0, None) else "failed"
    conn.execute("UPDATE runs SET state = ?, exitcode = ?, heartbeat_at = ?, updated_at = ? WHERE id = ?",
                 (state, exitcode, stamp, stamp, run_id))


def heartbeat(conn: sqlite3.Connection, run_id: int, state: str) -> None:
    conn.execute("UPDATE runs SET state = ?, heartbeat_at = ? WHERE id = ?", (state, now(), run_id))


# What a live run becomes when its heartbeats stop, as on W&B.
STALE = {"running": "crashed", "preempting": "preempted"}
_STALE_WHERE = ("state IN ('running', 'preempting') AND deleted_at IS NULL AND heartbeat_at IS NOT NULL"
                " AND heartbeat_at < ?")


def any_stale(conn: sqlite3.Connection, cutoff: str) -> bool:
    """A read first (on db.py's runs_heartbeat index), so the sweep takes the write lock only
    when it has something to change."""
    return conn.execute(f"SELECT EXISTS (SELECT 1 FROM runs WHERE {_STALE_WHERE})", (cutoff,)).fetchone()[0] == 1


def sweep_stale(conn: sqlite3.Connection, cutoff: str) -> int:
    """Live runs whose last heartbeat (or creation) is before `cutoff` become crashed, or
    preempted if they said they were being preempted. A NULL heartbeat_at (the demo seed's
    running runs) is never swept, so the demo stays as seeded until such a run streams."""
    new_state = "CASE state " + " ".join(f"WHEN '{before}' THEN '{after}'" for before, after in STALE.items()) + " END"
    return conn.execute(f"UPDATE runs SET state = {new_state}, updated_at = ? WHERE {_STALE_WHERE}",
                        (now(), cutoff)).rowcount


# -- bulk loading ----------------------------------------------------------------------------
_BULK_COLUMNS = ("name", "display_name", "state", "config", "summary", "tags", "group_name", "job_type",
                 "sweep_name", "username", "created_at", "updated_at", "heartbeat_at", "exitcode",
                 "history_line_count", "history_keys")


def insert_many(conn: sqlite3.Connection, project_id: int, runs: Iterable[dict[str, Any]]) -> dict[str, int]:
    """Insert complete runs (dicts keyed by the columns above) in one statement; name -> id of
    every run of the project."""
    conn.executemany(
        f"INSERT INTO runs (project_id, {', '.join(_BULK_COLUMNS)}) VALUES (?{', ?' * len(_BULK_COLUMNS)})",
        [(project_id, *(run[c] for c in _BULK_COLUMNS)) for run in runs])
    return {name: run_id for name, run_id in conn.execute("SELECT name, id FROM runs WHERE project_id = ?",
                                                           (project_id,))}


def by_id(conn: sqlite3.Connection, run_id: int) -> sqlite3.Row | None:
    """A run by row id, deleted or not (an artifact's producer stays known after its run is deleted)."""
    return conn.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
