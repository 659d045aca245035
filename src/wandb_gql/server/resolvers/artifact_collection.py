"""ArtifactType and ArtifactSequence (the one ArtifactCollection kind the local server keeps),
the artifact lookups of Project and Run, and the artifact connections."""

from __future__ import annotations

import sqlite3
from typing import Any, Callable

import orjson

from ..store import BadInput, page_size, storage_id
from . import _connection
from ._context import ctx
from .artifact import membership

_NEWEST_FIRST = (None, "", "-createdAt", "-versionIndex", "-created_at")


def split_name(name: str) -> tuple[str, str]:
    """'collection:alias' (alias may be vN); a bare collection name means its latest version."""
    collection, _, alias = name.partition(":")
    if not collection:
        raise BadInput(f"invalid artifact name {name!r}: expected COLLECTION:ALIAS, e.g. dataset:v0 or model:latest")
    return collection, alias or "latest"


def _collection(project_id: int, info: Any, name: str, type_id: int | None = None) -> sqlite3.Row | None:
    row = ctx(info).store.artifact_collection(project_id, name)
    return row if row is not None and (type_id is None or row["type_id"] == type_id) else None


def artifact_by_name(project_id: int, info: Any, name: str, type_id: int | None = None) -> sqlite3.Row | None:
    collection_name, alias = split_name(name)
    collection = _collection(project_id, info, collection_name, type_id)
    return None if collection is None else ctx(info).store.resolve_artifact(collection["id"], alias)


def _membership_by_name(project: sqlite3.Row, info: Any, name: str) -> dict[str, Any] | None:
    collection_name, alias = split_name(name)
    collection = _collection(project["id"], info, collection_name)
    artifact = None if collection is None else ctx(info).store.resolve_artifact(collection["id"], alias)
    return None if artifact is None else membership(artifact, collection)


def _collections(project_id: int, info: Any, type_id: int | None, first: int | None, after: str | None,
                 filters: Any = None, order: str | None = None) -> dict[str, Any]:
    if filters not in (None, "", "{}"):
        raise BadInput("filters on artifact collections are not supported by the local server; pass none")
    if order not in (None, "", "+createdAt", "createdAt"):
        raise BadInput(f"unsupported order {order!r} for artifact collections: they come oldest first")
    store = ctx(info).store
    rows, more = store.artifact_collections(project_id, type_id, page_size(first),
                                            _connection.from_opaque("ArtifactCollection", after))
    return _connection.connection(rows, more=more, after=after,
                                  cursor=lambda r: _connection.opaque("ArtifactCollection", r["id"]),
                                  totalCount=store.count_artifact_collections(project_id, type_id))


def _types(project: sqlite3.Row, info: Any, first: int | None = None, after: str | None = None,
           includeAll: bool | None = None) -> dict[str, Any]:
    rows, more = ctx(info).store.artifact_types(project["id"], page_size(first),
                                                _connection.from_opaque("ArtifactType", after))
    return _connection.connection(rows, more=more, after=after,
                                  cursor=lambda r: _connection.opaque("ArtifactType", r["id"]))


def _versions(collection: sqlite3.Row, info: Any, first: int | None = None, after: str | None = None,
              order: str | None = None, filters: Any = None) -> dict[str, Any]:
    if _version_filters(filters) not in ({}, {"state": "COMMITTED"}):
        raise BadInput('the local server filters artifact versions only by {"state": "COMMITTED"} (the default)')
    if order not in _NEWEST_FIRST:
        raise BadInput(f"unsupported order {order!r} for artifact versions: they come newest first")
    store = ctx(info).store
    return _version_page(store.artifact_versions, store.count_artifact_versions, collection["id"], "version_index",
                     first, after)


def _version_filters(filters: Any) -> Any:
    try:
        return orjson.loads(filters) if isinstance(filters, str) and filters else (filters or {})
    except orjson.JSONDecodeError:
        raise BadInput("filters is not valid JSON; send a JSON object encoded as a string") from None


def _collection_aliases(collection: sqlite3.Row, info: Any, first: int | None = None,
                        after: str | None = None) -> dict[str, Any]:
    rows, more = ctx(info).store.collection_aliases(collection["id"], page_size(first),
                                                    _connection.from_opaque("ArtifactAlias", after))
    return _connection.connection(rows, more=more, after=after,
                                  cursor=lambda r: _connection.opaque("ArtifactAlias", r["id"]))


def _memberships(collection: sqlite3.Row, info: Any, first: int | None = None) -> dict[str, Any]:
    rows, more = ctx(info).store.artifact_versions(collection["id"], page_size(first), None)
    return _connection.connection(rows, more=more, after=None,
                                  cursor=lambda r: _connection.opaque("Version", r["version_index"]),
                                  node=lambda r: membership(r, collection))


def _membership(collection: sqlite3.Row, info: Any, aliasName: str) -> dict[str, Any] | None:
    artifact = ctx(info).store.resolve_artifact(collection["id"], aliasName)
    return None if artifact is None else membership(artifact, collection)


_EMPTY_TAGS = {"edges": [], "pageInfo": {"hasNextPage": False, "hasPreviousPage": False,
                                         "startCursor": None, "endCursor": None}}

COLLECTION_FIELDS: dict[str, Callable[..., Any]] = {
    "id": lambda c, _i: storage_id("ArtifactCollection", str(c["id"])),
    "name": lambda c, _i: c["name"],
    "description": lambda c, _i: c["description"],
    "createdAt": lambda c, _i: c["created_at"],
    "updatedAt": lambda c, _i: c["updated_at"],
    "project": lambda c, i: ctx(i).project(c["project_id"]),
    "state": lambda _c, _i: "READY",
    "defaultArtifactType": lambda c, i: ctx(i).store.artifact_type_by_id(c["type_id"]),
    "tags": lambda _c, _i: _EMPTY_TAGS,
    "aliases": _collection_aliases,
    "artifactMembership": _membership,
    "artifactMemberships": _memberships,
    "artifacts": _versions,
    "latestArtifact": lambda c, i: ctx(i).store.latest_artifact(c["id"]),
}

def _linked(portfolio: sqlite3.Row, info: Any, first: int | None = None, after: str | None = None,
            order: str | None = None, filters: Any = None) -> dict[str, Any]:
    """A portfolio's linked versions, newest link first, named by the portfolio's own vN."""
    if _version_filters(filters) not in ({}, {"state": "COMMITTED"}) or order not in _NEWEST_FIRST:
        raise BadInput("a portfolio's versions come newest first, unfiltered (or {\"state\": \"COMMITTED\"})")
    store = ctx(info).store
    return _version_page(store.portfolio_versions, store.count_portfolio_versions, portfolio["id"], "link_index",
                     first, after)


def _version_page(page: Any, count: Any, owner: int, index: str, first: int | None, after: str | None) -> dict[str, Any]:
    """One page of a collection's versions, newest first, each edge named vN by `index` (a
    sequence's own version numbers, or a portfolio's link numbers)."""
    before = _connection.from_opaque("Version", after) if after else None
    rows, more = page(owner, page_size(first), before)
    out = _connection.connection(rows, more=more, after=after,
                                 cursor=lambda r: _connection.opaque("Version", r[index]),
                                 totalCount=count(owner))
    for edge in out["edges"]:
        edge["version"] = f"v{edge['_row'][index]}"
    return out


def _linked_memberships(portfolio: sqlite3.Row, info: Any, first: int | None = None) -> dict[str, Any]:
    rows, more = ctx(info).store.portfolio_versions(portfolio["id"], page_size(first), None)
    return _connection.connection(rows, more=more, after=None,
                                  cursor=lambda r: _connection.opaque("Version", r["link_index"]),
                                  node=lambda r: membership(r, portfolio))


# A portfolio resolves names (vN in its own numbering, its aliases) like a sequence.
PORTFOLIO_FIELDS: dict[str, Callable[..., Any]] = {
    **{k: v for k, v in COLLECTION_FIELDS.items() if k != "latestArtifact"},
    "artifactMemberships": _linked_memberships,
    "artifacts": _linked,
}

TYPE_FIELDS: dict[str, Callable[..., Any]] = {
    "id": lambda t, _i: storage_id("ArtifactType", str(t["id"])),
    "name": lambda t, _i: t["name"],
    "description": lambda t, _i: t["description"],
    "createdAt": lambda t, _i: t["created_at"],
    "project": lambda t, i: ctx(i).project(t["project_id"]),
    "artifact": lambda t, i, name: artifact_by_name(t["project_id"], i, name, t["id"]),
    "artifactCollection": lambda t, i, name: _collection(t["project_id"], i, name, t["id"]),
    "artifactCollections": lambda t, i, first=None, after=None, filters=None, order=None: _collections(
        t["project_id"], i, t["id"], first, after, filters, order),
}

PROJECT_ARTIFACT_FIELDS: dict[str, Callable[..., Any]] = {
    "storageBytes": lambda p, i: ctx(i).store.project_artifact_bytes(p["id"]) + ctx(i).store.project_file_bytes(p["id"]),
    "artifact": lambda p, i, name: artifact_by_name(p["id"], i, name),
    "artifactType": lambda p, i, name: ctx(i).store.artifact_type(p["id"], name),
    "artifactTypes": _types,
    "artifactCollection": lambda p, i, name: _collection(p["id"], i, name),
    "artifactCollections": lambda p, i, first=None, after=None, filters=None, order=None: _collections(
        p["id"], i, None, first, after, filters, order),
    "artifactCollectionMembership": _membership_by_name,
}


def _outputs(run: sqlite3.Row, info: Any, first: int | None = None, after: str | None = None) -> dict[str, Any]:
    store = ctx(info).store
    rows, more = store.output_artifacts(run["id"], page_size(first), _connection.from_opaque("Artifact", after))
    return _connection.connection(rows, more=more, after=after, cursor=lambda r: _connection.opaque("Artifact", r["id"]),
                                  totalCount=store.count_output_artifacts(run["id"]))


def _inputs(run: sqlite3.Row, info: Any, first: int | None = None, after: str | None = None) -> dict[str, Any]:
    store = ctx(info).store
    rows, more = store.input_artifacts(run["id"], page_size(first), _connection.from_opaque("Artifact", after))
    out = _connection.connection(rows, more=more, after=after, cursor=lambda r: _connection.opaque("Artifact", r["id"]),
                                 totalCount=store.count_input_artifacts(run["id"]))
    for edge in out["edges"]:
        edge["usedAs"] = [edge["_row"]["used_as"]] if edge["_row"]["used_as"] else []
    return out


RUN_ARTIFACT_FIELDS: dict[str, Callable[..., Any]] = {
    "outputArtifacts": _outputs,
    "inputArtifacts": _inputs,
    "storageBytes": lambda r, i: ctx(i).store.run_file_bytes(r["id"]),
}
