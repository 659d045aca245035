"""W&B's storage tree (`Entity.storageTree`): bytes per entity, project, artifact type, collection
and version, as plain nodes whose expensive parts are callables the default resolver calls only
when asked for. Artifact bytes count each distinct blob once per node (store.artifacts.bytes_by),
so a collection's size is what deleting all of it would free, shared blobs aside."""

from __future__ import annotations

import functools
import sqlite3
from typing import Any, Callable

from ..store import Store, storage_id
from ._context import ctx

_PAGE = 500


def _nodes(kind: str, nodes: list[dict[str, Any]]) -> dict[str, Any]:
    """A whole connection in one page: the tree is small per entity on a local server."""
    return {"edges": [{"cursor": storage_id(kind, n["id"]), "node": n} for n in nodes],
            "pageInfo": {"hasNextPage": False, "hasPreviousPage": False,
                         "startCursor": storage_id(kind, nodes[0]["id"]) if nodes else None,
                         "endCursor": storage_id(kind, nodes[-1]["id"]) if nodes else None},
            "totalSize": sum(n["size"] for n in nodes)}


def _lazy(build: Callable[[], Any]) -> Callable[..., Any]:
    return lambda _info, **_args: build()


def _project_node(store: Store, project: sqlite3.Row) -> dict[str, Any]:
    pid = project["id"]

    def versions(collection: sqlite3.Row) -> dict[str, Any]:
        sizes = store.artifact_bytes_by(pid, "artifact")
        return _nodes("ArtifactStorageNode", [{
            "id": storage_id("ArtifactStorageNode", str(a["id"])), "name": f"{collection['name']}:v{a['version_index']}",
            "size": sizes.get(a["id"], 0), "artifactID": storage_id("Artifact", str(a["id"])), "artifact": a,
        } for a in store.collection_versions(collection["id"])])

    def sequences() -> dict[str, Any]:
        sizes = store.artifact_bytes_by(pid, "collection")
        return _nodes("ArtifactSequenceStorageNode", [{
            "id": storage_id("ArtifactSequenceStorageNode", str(c["id"])), "name": c["name"],
            "size": sizes.get(c["id"], 0), "artifactSequenceID": storage_id("ArtifactCollection", str(c["id"])),
            "artifactSequence": c, "artifactType": store.artifact_type_by_id(c["type_id"]),
            "artifacts": _lazy(functools.partial(versions, c)),
        } for c in store.project_artifact_collections(pid)])

    def types() -> list[dict[str, Any]]:
        sizes = store.artifact_bytes_by(pid, "type")
        return [{"id": storage_id("ArtifactTypeStorageNode", str(t["id"])), "name": t["name"],
                 "size": sizes.get(t["id"], 0), "artifactType": t} for t in store.project_artifact_types(pid)]

    return {"id": storage_id("ProjectStorageNode", str(pid)), "name": project["name"], "project": project,
            "projectID": storage_id("Project", project["name"], project["entity_name"]),
            "size": store.project_artifact_bytes(pid) + store.project_file_bytes(pid),
            "artifactSequences": _lazy(sequences), "artifactTypes": _lazy(types)}


def storage_tree(entity: dict[str, Any], info: Any) -> dict[str, Any]:
    store = ctx(info).store
    rows: list[sqlite3.Row] = []
    while True:
        page, more = store.projects(entity["name"], _PAGE, rows[-1]["id"] if rows else 0)
        rows += page
        if not more:
            break
    projects = [_project_node(store, p) for p in rows]
    return {"id": storage_id("EntityStorageNode", entity["name"]), "name": entity["name"], "entity": entity,
            "entityID": entity["id"], "lastUpdatedAt": None, "size": sum(p["size"] for p in projects),
            "projects": _nodes("ProjectStorageNode", projects)}
