"""Mutations the SDK sends beyond runs and artifacts: File.delete() (deleteFiles),
api.create_project (upsertModel) and run.alert (notifyScriptableRunAlert). Every lookup goes
through the Context, so another entity's files, projects and runs are as absent as missing ones."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Callable

from ..._time import TIME_FORMAT, utc_naive
from ..store import BadInput, alerts, files, project_edits
from ..store._common import decode_storage_id
from ._context import ctx


def _file_id(info: Any, file_id: str, project_id: int | None) -> int:
    number = decode_storage_id(file_id, "File")[0]
    context = ctx(info)
    row_id = int(number) if number.isdigit() else -1
    owner = files.live_project(context.store.conn, row_id)
    if owner is None or not context.visible(owner) or project_id not in (None, owner):
        raise BadInput(f"file {file_id!r} not found: pass File ids from run.files()")
    return row_id


def delete_files(_root: Any, info: Any, input: dict[str, Any]) -> dict[str, Any]:
    # All or nothing: one unknown id deletes none of the others.
    ids = [_file_id(info, file_id, input.get("projectId")) for file_id in dict.fromkeys(input["files"])]
    files.delete(ctx(info).store.conn, ids)
    return {"success": True, "clientMutationId": input.get("clientMutationId")}


def upsert_model(_root: Any, info: Any, input: dict[str, Any]) -> dict[str, Any]:
    """api.create_project: the project in one of the viewer's entities, created if missing; a
    description given replaces the stored one. With `id`, an existing project of the viewer's."""
    context = ctx(info)
    if input.get("id"):
        name, *entity_parts = decode_storage_id(input["id"], "Project")
        project = context.find_project(":".join(entity_parts), name) if entity_parts else None
        if project is None:
            raise BadInput(f"project {input['id']!r} not found")
        inserted = False
    else:
        name = project_edits.check_name(input.get("name"))
        entity = context.require_entity(input.get("entityName"))
        inserted = context.find_project(entity, name) is None
        project = context.ensure_project(entity, name)
    if input.get("description") is not None:
        project_edits.set_description(context.store.conn, project["id"], input["description"])
        project = context.store.project_by_id(project["id"])
    return {"project": project, "model": project, "inserted": inserted, "entityName": project["entity_name"],
            "clientMutationId": input.get("clientMutationId")}


def _waiting(last: str | None, wait: Any) -> bool:
    """Whether an alert of the same title came less than `wait` ms ago (wandb-core sends
    run.alert's wait_duration in milliseconds; 60,000 unless told)."""
    if last is None or isinstance(wait, bool) or not isinstance(wait, (int, float)) or wait <= 0:
        return False
    return utc_naive() - datetime.strptime(last, TIME_FORMAT) < timedelta(milliseconds=wait)


def notify_scriptable_run_alert(_root: Any, info: Any, input: dict[str, Any]) -> dict[str, Any]:
    """run.alert: kept with the run (readable through Query.runAlerts). W&B mails or posts them;
    a local server has nowhere to send them, so it only records them. As on W&B, an alert whose
    title the run raised less than waitDuration ago is dropped (the call still succeeds)."""
    context = ctx(info)
    project = context.require_project(input["entityName"], input["projectName"])
    run = context.store.run(project["id"], input["runName"])
    if run is None:
        raise BadInput(f"run {input['entityName']}/{input['projectName']}/{input['runName']} not found")
    conn = context.store.conn
    if not _waiting(alerts.last_of_title(conn, run["id"], input["title"]), input.get("waitDuration")):
        alerts.add(conn, run["id"], input["title"], input["text"], input.get("severity") or "INFO")
    return {"success": True, "clientMutationId": input.get("clientMutationId")}


def run_alerts(_root: Any, info: Any, projectName: str, runName: str,
               entityName: str | None = None) -> list[dict[str, Any]]:
    context = ctx(info)
    project = context.find_project(entityName, projectName)
    run = context.store.run(project["id"], runName) if project is not None else None
    if run is None:
        raise BadInput(f"run {entityName or context.viewer.entity}/{projectName}/{runName} not found")
    return [{"title": r["title"], "text": r["text"], "severity": r["severity"], "createdAt": r["created_at"]}
            for r in alerts.of_run(context.store.conn, run["id"])]


SDK_MUTATIONS: dict[str, Callable[..., Any]] = {
    "deleteFiles": delete_files,
    "upsertModel": upsert_model,
    "notifyScriptableRunAlert": notify_scriptable_run_alert,
}
