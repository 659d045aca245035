"""Mutations, named as W&B names them; each acts through the store inside the request's transaction."""

from __future__ import annotations

import secrets
import sqlite3
from typing import Any, Callable

from ..._time import now
from ..store import BadInput, storage_id
from ..store import runs as store_runs
from ._context import Context, ctx
from .artifact_mutation import ARTIFACT_MUTATIONS
from .file import file_node
from .run import run_id
from .sdk_mutations import SDK_MUTATIONS
from .sweep import SWEEP_MUTATIONS


def _run_by_id(context: Context, storage_id: str) -> sqlite3.Row:
    row = context.run_by_storage_id(storage_id)
    if row is None:
        raise BadInput(f"run {storage_id!r} not found")
    return row


def upsert_bucket(_root: Any, info: Any, input: dict[str, Any]) -> dict[str, Any]:
    context = ctx(info)
    if input.get("id"):
        _run_by_id(context, input["id"])  # a run of another user's entity is "not found"
    else:
        context.require_entity(input.get("entityName"))
    row, inserted = context.store.upsert_run(input, context.viewer)
    return {"bucket": row, "inserted": inserted, "updateAvailable": False,
            "clientMutationId": input.get("clientMutationId")}


def delete_run(_root: Any, info: Any, input: dict[str, Any]) -> dict[str, Any]:
    context = ctx(info)
    run = _run_by_id(context, input["id"])
    if input.get("deleteArtifacts"):
        # As on W&B: the run's output artifacts go for good, even if the run is restored later.
        context.store.delete_artifacts(context.store.run_output_artifact_ids(run["id"]))
    context.store.delete_run(run)
    return {"clientMutationId": input.get("clientMutationId")}


def delete_runs(_root: Any, info: Any, input: dict[str, Any]) -> dict[str, Any]:
    store = ctx(info).store
    project = ctx(info).require_project(input["entityName"], input["projectName"])
    if input.get("deleteArtifacts"):
        for run in store.all_runs(project["id"], input["filters"]):
            store.delete_artifacts(store.run_output_artifact_ids(run["id"]))
    store.delete_runs(project["id"], input["filters"])
    return {"clientMutationId": input.get("clientMutationId"), "errors": None}


def undelete_runs(_root: Any, info: Any, input: dict[str, Any]) -> dict[str, Any]:
    store = ctx(info).store
    project = ctx(info).require_project(input["entityName"], input["projectName"])
    store.undelete_runs(project["id"], input["filters"])
    return {"clientMutationId": input.get("clientMutationId")}


def modify_runs(_root: Any, info: Any, input: dict[str, Any]) -> dict[str, Any]:
    context = ctx(info)
    store = context.store
    if input.get("ids"):
        # Ids match like a filter: one that names no live run (purged, deleted, never existed)
        # changes nothing and fails nothing else; only a malformed id refuses the whole call.
        found = [context.run_by_storage_id(i) for i in dict.fromkeys(input["ids"]) if i]
        rows = [r for r in found if r is not None and r["deleted_at"] is None]
        if input.get("entityName") and input.get("projectName"):  # scoped: never a run elsewhere
            project = context.require_project(input["entityName"], input["projectName"])
            rows = [r for r in rows if r["project_id"] == project["id"]]
            if input.get("filters") is not None:  # both given: a run must be named and match
                matching = {r["id"] for r in store.all_runs(project["id"], input["filters"])}
                rows = [r for r in rows if r["id"] in matching]
    elif input.get("filters") is not None:
        project = context.require_project(input.get("entityName"), input.get("projectName"))
        rows = store.all_runs(project["id"], input["filters"])
    else:
        raise BadInput("modifyRuns needs ids or filters")
    add = [t for t in input.get("addTags") or [] if t]
    remove = [t for t in input.get("removeTags") or [] if t]
    changed = [store.modify_tags(r, add, remove) for r in rows]
    return {"clientMutationId": input.get("clientMutationId"), "runs": changed, "runsSQL": []}


def move_runs(_root: Any, info: Any, input: dict[str, Any]) -> dict[str, Any]:
    """W&B's moveRuns. W&B answers with a Task it runs later; here the move is done when the
    answer comes, so the task is already FINISHED, or FAILED when some runs stayed because the
    destination holds their ids (its name says which). The destination project is created if
    missing, in an entity that must exist, as upsertBucket creates projects on first use."""
    context = ctx(info)
    store = context.store
    source = context.require_project(input["sourceEntityName"], input["sourceProjectName"])
    entity, name = input["destinationEntityName"], input["destinationProjectName"]
    if not entity or not name:
        raise BadInput("destinationEntityName and destinationProjectName are required")
    if entity not in context.entities:
        raise BadInput(f"destination entity {entity!r} not found")
    if (entity, name) == (source["entity_name"], source["name"]):
        raise BadInput(f"moveRuns: the destination is the source project {entity}/{name}")
    dest = context.ensure_project(entity, name)
    moved, kept = store.move_runs(source["id"], dest["id"], input["filters"])
    summary = f"moved {len(moved)} run(s) to {entity}/{name}"
    if kept:
        shown = ", ".join(kept[:20]) + (f" and {len(kept) - 20} more" if len(kept) > 20 else "")
        summary += f"; {len(kept)} not moved, their ids exist in the destination already: {shown}"
    total = len(moved) + len(kept)
    stamp = now()
    task = {"id": storage_id("Task", secrets.token_hex(8)), "name": summary, "type": "moveRuns",
            "state": "FAILED" if kept else "FINISHED", "progress": 100 * len(moved) // total if total else 100,
            "createdAt": stamp, "updatedAt": stamp}
    return {"clientMutationId": input.get("clientMutationId"), "task": task}


def create_run_files(_root: Any, info: Any, input: dict[str, Any]) -> dict[str, Any]:
    context = ctx(info)
    store = context.store
    project = context.ensure_project(input["entityName"], input["projectName"])
    run = store.run(project["id"], input["runName"])
    if run is None:
        raise BadInput(f"run {input['entityName']}/{input['projectName']}/{input['runName']} not found")
    # Exactly one entry per requested file, or wandb-core drops the batch.
    nodes = [file_node(context, store.ensure_file(run["id"], name), run) for name in input["files"]]
    return {"runID": run_id(run, info), "uploadHeaders": [], "files": nodes,
            "clientMutationId": input.get("clientMutationId")}


def mark_run_files_uploaded(_root: Any, info: Any, input: dict[str, Any]) -> dict[str, Any]:
    store = ctx(info).store
    project = ctx(info).require_project(input["entityName"], input["projectName"])
    run = store.run(project["id"], input["runName"])
    if run is None:
        raise BadInput(f"run {input['runName']!r} not found")
    store.mark_files_uploaded(run["id"], input["files"])
    return {"success": True}


def rewind_run(_root: Any, info: Any, input: dict[str, Any]) -> dict[str, Any]:
    """wandb.init(resume_from="id?_step=N") rewinds the run before resuming it."""
    context = ctx(info)
    if input["metricName"] != "_step":
        raise BadInput(f"rewindRun: only the _step metric can be rewound to, not {input['metricName']!r}")
    # The SDK leaves entity (and project) out when wandb.init was not given them: the viewer's defaults.
    project = context.require_project(input.get("entityName") or context.viewer.entity,
                                      input.get("projectName") or "uncategorized")
    run = context.store.run(project["id"], input["runName"])
    if run is None:
        raise BadInput(f"rewindRun: run {input['runName']!r} not found in {project['entity_name']}/{project['name']}")
    return {"rewoundRun": store_runs.rewind(context.store.conn, run, input["metricValue"]),
            "clientMutationId": input.get("clientMutationId")}


MUTATION_FIELDS: dict[str, Callable[..., Any]] = {
    "upsertBucket": upsert_bucket,
    "deleteRun": delete_run,
    "deleteRuns": delete_runs,
    "undeleteRuns": undelete_runs,
    "modifyRuns": modify_runs,
    "moveRuns": move_runs,
    "createRunFiles": create_run_files,
    "markRunFilesUploaded": mark_run_files_uploaded,
    "rewindRun": rewind_run,
    **SDK_MUTATIONS,
    **ARTIFACT_MUTATIONS,
    **SWEEP_MUTATIONS,
}
