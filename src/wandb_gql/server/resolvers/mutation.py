"""Mutations, named as W&B names them; each acts through the store inside the request's transaction."""

from __future__ import annotations

import sqlite3
from typing import Any, Callable

from ..store import BadInput
from ._context import Context, ctx
from .file import file_node
from .run import run_id


def _run_by_id(context: Context, storage_id: str) -> sqlite3.Row:
    row = context.store.run_by_storage_id(storage_id)
    if row is None:
        raise BadInput(f"run {storage_id!r} not found")
    return row


def upsert_bucket(_root: Any, info: Any, input: dict[str, Any]) -> dict[str, Any]:
    context = ctx(info)
    row, inserted = context.store.upsert_run(input, context.viewer)
    return {"bucket": row, "inserted": inserted, "updateAvailable": False,
            "clientMutationId": input.get("clientMutationId")}


def delete_run(_root: Any, info: Any, input: dict[str, Any]) -> dict[str, Any]:
    context = ctx(info)
    context.store.delete_run(_run_by_id(context, input["id"]))
    return {"clientMutationId": input.get("clientMutationId")}


def delete_runs(_root: Any, info: Any, input: dict[str, Any]) -> dict[str, Any]:
    store = ctx(info).store
    project = store.require_project(input["entityName"], input["projectName"])
    store.delete_runs(project["id"], input["filters"])
    return {"clientMutationId": input.get("clientMutationId"), "errors": None}


def undelete_runs(_root: Any, info: Any, input: dict[str, Any]) -> dict[str, Any]:
    store = ctx(info).store
    project = store.require_project(input["entityName"], input["projectName"])
    store.undelete_runs(project["id"], input["filters"])
    return {"clientMutationId": input.get("clientMutationId")}


def modify_runs(_root: Any, info: Any, input: dict[str, Any]) -> dict[str, Any]:
    context = ctx(info)
    store = context.store
    if input.get("ids"):
        rows = [_run_by_id(context, i) for i in input["ids"] if i]
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


def create_run_files(_root: Any, info: Any, input: dict[str, Any]) -> dict[str, Any]:
    context = ctx(info)
    store = context.store
    project = store.ensure_project(input["entityName"], input["projectName"], context.viewer.id)
    run = store.run(project["id"], input["runName"])
    if run is None:
        raise BadInput(f"run {input['entityName']}/{input['projectName']}/{input['runName']} not found")
    # Exactly one entry per requested file, or wandb-core drops the batch.
    nodes = [file_node(context, store.ensure_file(run["id"], name)) for name in input["files"]]
    return {"runID": run_id(run, info), "uploadHeaders": [], "files": nodes,
            "clientMutationId": input.get("clientMutationId")}


def mark_run_files_uploaded(_root: Any, info: Any, input: dict[str, Any]) -> dict[str, Any]:
    store = ctx(info).store
    project = store.require_project(input["entityName"], input["projectName"])
    run = store.run(project["id"], input["runName"])
    if run is None:
        raise BadInput(f"run {input['runName']!r} not found")
    store.mark_files_uploaded(run["id"], input["files"])
    return {"success": True}


MUTATION_FIELDS: dict[str, Callable[..., Any]] = {
    "upsertBucket": upsert_bucket,
    "deleteRun": delete_run,
    "deleteRuns": delete_runs,
    "undeleteRuns": undelete_runs,
    "modifyRuns": modify_runs,
    "createRunFiles": create_run_files,
    "markRunFilesUploaded": mark_run_files_uploaded,
}
