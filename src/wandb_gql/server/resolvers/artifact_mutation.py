"""The artifact mutations the SDK's save/use/delete flow sends, in the order it sends them."""

from __future__ import annotations

import sqlite3
from typing import Any, Callable

from ..store import BadInput, storage_id
from ..store._common import decode_storage_id
from ._context import Context, ctx
from .. import tokens
from .artifact import file_node, manifest_row_id, membership, require_artifact, storage_url


def _project(context: Context, entity: str | None, project: str | None) -> sqlite3.Row:
    return context.require_project(entity or context.viewer.entity, project)


def _run(context: Context, project: sqlite3.Row, name: str) -> sqlite3.Row:
    run = context.store.run(project["id"], name)
    if run is None:
        raise BadInput(f"run {project['entity_name']}/{project['name']}/{name} not found (or deleted)")
    return run


def create_artifact(_root: Any, info: Any, input: dict[str, Any]) -> dict[str, Any]:
    context = ctx(info)
    store = context.store
    project = _project(context, input["entityName"], input["projectName"])
    run = _run(context, project, input["runName"]) if input.get("runName") else None
    names = [n for n in [input.get("artifactCollectionName"), *(input.get("artifactCollectionNames") or [])] if n]
    if not names:
        raise BadInput("createArtifact needs artifactCollectionName (or artifactCollectionNames)")
    if len(set(names)) > 1:
        raise BadInput("the local server creates an artifact in one collection at a time; pass one name")
    type_row = store.ensure_artifact_type(project["id"], input["artifactTypeName"])
    collection = store.ensure_artifact_collection(project["id"], type_row, names[0])
    artifact = store.create_artifact(collection, input, None if run is None else run["id"])
    return {"artifact": artifact, "clientMutationId": input.get("clientMutationId")}


def _manifest(context: Context, artifact: sqlite3.Row, manifest_type: str | None, digest: str | None,
              client_mutation_id: str | None) -> dict[str, Any]:
    if artifact["state"] != "PENDING":
        raise BadInput("the artifact is committed: its manifest cannot change")
    context.store.set_artifact_manifest(artifact["id"], manifest_type or "FULL", digest)
    return {"artifactManifest": {"artifact": context.store.artifact(artifact["id"])},
            "clientMutationId": client_mutation_id}


def create_artifact_manifest(_root: Any, info: Any, input: dict[str, Any]) -> dict[str, Any]:
    context = ctx(info)
    artifact = require_artifact(context, input["artifactID"])
    return _manifest(context, artifact, input.get("type"), input.get("digest"), input.get("clientMutationId"))


def update_artifact_manifest(_root: Any, info: Any, input: dict[str, Any]) -> dict[str, Any]:
    context = ctx(info)
    artifact = context.artifact(manifest_row_id(input["artifactManifestID"]))
    if artifact is None or not artifact["manifest_created_at"]:
        raise BadInput(f"artifact manifest {input['artifactManifestID']!r} not found")
    return _manifest(context, artifact, None, input.get("digest"), input.get("clientMutationId"))


def create_artifact_files(_root: Any, info: Any, input: dict[str, Any]) -> dict[str, Any]:
    context = ctx(info)
    nodes = []
    by_artifact: dict[str, list[dict[str, Any]]] = {}
    for spec in input["artifactFiles"]:
        by_artifact.setdefault(spec["artifactID"], []).append(spec)
    for artifact_gid, specs in by_artifact.items():
        artifact = require_artifact(context, artifact_gid)
        if artifact["state"] != "PENDING":
            raise BadInput("the artifact is committed: add files to a new version instead")
        needed = context.store.add_artifact_files(artifact["id"], specs)
        for spec, upload in zip(specs, needed):
            node = file_node(context, artifact, spec["name"], spec["md5"], None, spec.get("mimetype"), upload)
            if upload and spec.get("uploadPartsInput"):
                node["uploadMultipartUrls"] = _multipart_urls(context, artifact, spec)
            nodes.append(node)
    edges = [{"node": n, "_row": n, "_cursor": lambda n: n["id"]} for n in nodes]
    page = {"hasNextPage": False, "hasPreviousPage": False, "startCursor": None, "endCursor": None}
    return {"files": {"edges": edges, "pageInfo": page, "totalCount": len(nodes), "uploadHeaders": []},
            "clientMutationId": input.get("clientMutationId")}


def _multipart_urls(context: Context, artifact: sqlite3.Row, spec: dict[str, Any]) -> dict[str, Any]:
    upload_id, parts = context.store.open_multipart_upload(artifact["id"], spec["name"], spec["md5"],
                                                           spec["uploadPartsInput"])
    return {"uploadID": upload_id, "uploadUrlParts": [
        {"partNumber": n, "uploadUrl": storage_url(context, tokens.PART, artifact, f"{upload_id}:{n}")}
        for n in parts]}


def complete_multipart_upload_artifact(_root: Any, info: Any, input: dict[str, Any]) -> dict[str, Any]:
    context = ctx(info)
    artifact = require_artifact(context, input["artifactID"])
    if artifact["state"] != "PENDING":
        raise BadInput("the artifact is committed: its files cannot change")
    digest = context.store.complete_multipart_upload(artifact["id"], input["uploadID"], input["storagePath"],
                                                     input["completedParts"])
    return {"digest": digest}


def commit_artifact(_root: Any, info: Any, input: dict[str, Any]) -> dict[str, Any]:
    context = ctx(info)
    artifact = context.store.commit_artifact(require_artifact(context, input["artifactID"]))
    return {"artifact": artifact, "clientMutationId": input.get("clientMutationId")}


def use_artifact(_root: Any, info: Any, input: dict[str, Any]) -> dict[str, Any]:
    context = ctx(info)
    artifact = require_artifact(context, input["artifactID"])
    run = _run(context, _project(context, input["entityName"], input["projectName"]), input["runName"])
    context.store.use_artifact(artifact["id"], run["id"], input.get("usedAs"))
    return {"artifact": artifact, "run": run, "clientMutationId": input.get("clientMutationId")}


def update_artifact(_root: Any, info: Any, input: dict[str, Any]) -> dict[str, Any]:
    context = ctx(info)
    artifact = context.store.update_artifact(require_artifact(context, input["artifactID"]), input)
    return {"artifact": artifact, "clientMutationId": input.get("clientMutationId")}


def delete_artifact(_root: Any, info: Any, input: dict[str, Any]) -> dict[str, Any]:
    context = ctx(info)
    artifact = require_artifact(context, input["artifactID"])
    context.store.delete_artifact(artifact, bool(input.get("deleteAliases")))
    return {"artifact": {**dict(zip(artifact.keys(), artifact)), "state": "DELETED"},
            "clientMutationId": input.get("clientMutationId")}


def add_aliases(_root: Any, info: Any, input: dict[str, Any]) -> dict[str, Any]:
    context = ctx(info)
    artifact = require_artifact(context, input["artifactID"])
    rows = context.store.add_artifact_aliases(artifact, input["aliases"])
    project = context.store.project_by_id(artifact["project_id"])
    aliases = [{"alias": r["alias"], "artifactCollectionName": r["collection_name"],
                "entityName": project["entity_name"], "projectName": project["name"]} for r in rows]
    return {"aliases": aliases, "artifact": context.store.artifact(artifact["id"]), "success": True,
            "clientMutationId": input.get("clientMutationId")}


def delete_aliases(_root: Any, info: Any, input: dict[str, Any]) -> dict[str, Any]:
    context = ctx(info)
    context.store.delete_artifact_aliases(require_artifact(context, input["artifactID"]), input["aliases"])
    return {"success": True, "clientMutationId": input.get("clientMutationId")}


def link_artifact(_root: Any, info: Any, input: dict[str, Any]) -> dict[str, Any]:
    context = ctx(info)
    if not input.get("artifactID") or not input.get("artifactPortfolioName"):
        raise BadInput("linkArtifact needs artifactID and artifactPortfolioName (linking by clientID or"
                       " artifactPortfolioID is not supported by the local server)")
    artifact = require_artifact(context, input["artifactID"])
    project = _project(context, input.get("entityName"), input.get("projectName"))
    portfolio, index = context.store.link_artifact(project["id"], input["artifactPortfolioName"], artifact,
                                                   input.get("aliases") or [])
    aliases = [{"alias": r["alias"], "artifactCollectionName": r["collection_name"],
                "entityName": project["entity_name"], "projectName": project["name"]}
               for r in context.store.artifact_aliases(artifact["id"]) if r["collection_id"] == portfolio["id"]]
    return {"versionIndex": index, "artifactMembership": membership(artifact, portfolio), "aliases": aliases,
            "artifactCollectionID": storage_id("ArtifactCollection", str(portfolio["id"])),
            "artifactID": input["artifactID"], "createdAt": portfolio["updated_at"],
            "clientMutationId": input.get("clientMutationId")}


def unlink_artifact(_root: Any, info: Any, input: dict[str, Any]) -> dict[str, Any]:
    context = ctx(info)
    artifact = require_artifact(context, input["artifactID"])
    parts = decode_storage_id(input["artifactPortfolioID"], "ArtifactCollection")
    if len(parts) != 1 or not parts[0].isdigit():
        raise BadInput(f"invalid ArtifactCollection id {input['artifactPortfolioID']!r}")
    portfolio = context.store.artifact_collection_by_id(int(parts[0]))
    if portfolio is None or not context.visible(portfolio["project_id"]):
        raise BadInput(f"artifact collection {input['artifactPortfolioID']!r} not found")
    context.store.unlink_artifact(portfolio["id"], artifact["id"])
    return {"artifactID": input["artifactID"], "success": True, "clientMutationId": input.get("clientMutationId")}


ARTIFACT_MUTATIONS: dict[str, Callable[..., Any]] = {
    "createArtifact": create_artifact,
    "createArtifactManifest": create_artifact_manifest,
    "updateArtifactManifest": update_artifact_manifest,
    "createArtifactFiles": create_artifact_files,
    "commitArtifact": commit_artifact,
    "useArtifact": use_artifact,
    "updateArtifact": update_artifact,
    "deleteArtifact": delete_artifact,
    "completeMultipartUploadArtifact": complete_multipart_upload_artifact,
    "addAliases": add_aliases,
    "linkArtifact": link_artifact,
    "unlinkArtifact": unlink_artifact,
    "deleteAliases": delete_aliases,
}
