"""Artifact, ArtifactAlias, ArtifactManifest and ArtifactCollectionMembership fields.

Versions travel as the store's joined rows (artifact + collection and type names); aliases as
alias rows; a membership is {"artifact": row, "collection": row}; a manifest {"artifact": row}.
Artifact files are File dicts whose URLs carry tokens bound to the version and the file's md5.
"""

from __future__ import annotations

import sqlite3
from typing import Any, Callable

from .. import tokens
from ..store import BadInput, page_size, storage_id
from ..store._common import MAX_PAGE, decode_storage_id
from . import _connection
from ._context import Context, ctx

Row = Any  # a store row (sqlite3.Row), or a dict of the same keys for a deleted version


def artifact_id(row: Row) -> str:
    return storage_id("Artifact", str(row["id"]))


def artifact_row_id(value: str) -> int:
    parts = decode_storage_id(value, "Artifact")
    if len(parts) != 1 or not parts[0].isdigit():
        raise BadInput(f"invalid Artifact id {value!r}: expected a base64 Artifact id")
    return int(parts[0])


def require_artifact(context: Context, value: str) -> sqlite3.Row:
    row = context.artifact(artifact_row_id(value))
    if row is None:
        raise BadInput(f"artifact {value!r} not found (deleted, or never created)")
    return row


def manifest_row_id(value: str) -> int:
    parts = decode_storage_id(value, "ArtifactManifest")
    if len(parts) != 1 or not parts[0].isdigit():
        raise BadInput(f"invalid ArtifactManifest id {value!r}")
    return int(parts[0])


def storage_url(context: Context, kind: str, artifact: Row, target: str = "") -> str:
    token = tokens.mint(context.store.secret, kind, artifact["id"], target, ttl=context.url_ttl,
                        bound=tokens.artifact_binding(artifact["collection_id"], artifact["created_at"]))
    return f"{context.base_url}/storage/{token}"


def file_node(context: Context, artifact: Row, name: str, md5: str, size: int | None,
              mimetype: str | None = None, upload: bool = False) -> dict[str, Any]:
    url = storage_url(context, tokens.ARTIFACT_FILE, artifact, md5)
    return {
        "id": storage_id("File", f"artifact{artifact['id']}", name), "name": name, "displayName": name,
        "url": url, "directUrl": url, "uploadUrl": url if upload else None, "uploadHeaders": [],
        "uploadMultipartUrls": None, "sizeBytes": size or 0, "md5": md5, "digest": md5, "mimetype": mimetype,
        "updatedAt": artifact["updated_at"], "storagePath": f"wandb_artifacts/{artifact['id']}/{name}",
        "artifact": artifact,
    }


def files(artifact: Row, info: Any, names: list[str] | None = None, after: str | None = None,
          first: int | None = None) -> dict[str, Any]:
    context = ctx(info)
    # The SDK asks for 5,000 files a page when downloading: serve the largest page, it pages on.
    size = page_size(None if first is None else min(first, MAX_PAGE))
    rows, more = context.store.artifact_files(artifact["id"], names, size, _name_after(after))
    return _connection.connection(
        rows, more=more, after=after, cursor=lambda r: _connection.opaque("ArtifactFile", 0) + "." + r["name"],
        node=lambda r: _file_or_reference(context, artifact, r),
        totalCount=context.store.count_artifact_files(artifact["id"]), uploadHeaders=[])


def _file_or_reference(context: Context, artifact: Row, row: sqlite3.Row) -> dict[str, Any]:
    node = file_node(context, artifact, row["name"], row["md5"],
                     row["size"] if row["size"] is not None else row["stored_size"], row["mimetype"])
    if row["ref"] is not None:
        # No bytes of a reference are here to hand out: its URLs are where it points (the SDK
        # reads a reference from there and ignores directUrl), and nothing of it is stored.
        node.update(url=row["ref"], directUrl=row["ref"], storagePath=None)
    return node


def _name_after(after: str | None) -> str | None:
    if not after:
        return None
    head, dot, name = after.partition(".")
    if not dot or head != _connection.opaque("ArtifactFile", 0):
        raise BadInput("invalid cursor: pass back an endCursor exactly as returned")
    return name


def membership(artifact: Row, collection: Row | None = None) -> dict[str, Any]:
    return {"artifact": artifact, "collection": collection}


def manifest_node(artifact: Row) -> dict[str, Any] | None:
    return {"artifact": artifact} if artifact["manifest_created_at"] else None


def _manifest_file(manifest: dict[str, Any], info: Any) -> dict[str, Any]:
    context, artifact = ctx(info), manifest["artifact"]
    url = storage_url(context, tokens.MANIFEST, artifact)
    return {"id": storage_id("File", f"manifest{artifact['id']}"), "name": "wandb_manifest.json",
            "displayName": "wandb_manifest.json", "url": url, "directUrl": url, "uploadUrl": url,
            "uploadHeaders": [], "sizeBytes": 0, "md5": artifact["manifest_md5"], "digest": artifact["manifest_md5"],
            "mimetype": "application/json", "updatedAt": artifact["updated_at"],
            "storagePath": f"wandb_artifacts/{artifact['id']}/wandb_manifest.json", "artifact": artifact}


def _used_by(artifact: Row, info: Any, filters: Any = None, order: str | None = None, before: str | None = None,
             after: str | None = None, first: int | None = None, last: int | None = None) -> dict[str, Any]:
    if filters not in (None, "", "{}") or order or before or last:
        raise BadInput("usedBy pages forward only (first, after); filters and order are not supported here")
    store = ctx(info).store
    # The SDK's used_by() asks without first and never pages: give it the largest page.
    size = MAX_PAGE if first is None else page_size(first)
    rows, more = store.artifact_users(artifact["id"], size, _connection.from_opaque("Run", after))
    return _connection.connection(rows, more=more, after=after, cursor=lambda r: _connection.opaque("Run", r["id"]),
                                  _count=lambda: store.count_artifact_users(artifact["id"]))


def _created_by(artifact: Row, info: Any) -> sqlite3.Row | None:
    run_id = artifact["created_by_run_id"]
    return None if run_id is None else ctx(info).store.run_by_id(run_id)


def _aliases(artifact: Row, info: Any, artifactCollectionName: str | None = None) -> list[sqlite3.Row]:
    rows = ctx(info).store.artifact_aliases(artifact["id"])
    if artifactCollectionName:
        rows = [r for r in rows if r["collection_name"] == artifactCollectionName]
    return rows


def _memberships(artifact: Row, info: Any) -> dict[str, Any]:
    collection = ctx(info).store.artifact_collection_by_id(artifact["collection_id"])
    return _connection.connection([artifact], more=False, after=None,
                                  cursor=lambda r: _connection.opaque("Membership", r["id"]),
                                  node=lambda r: membership(r, collection))


def _commit_hash(artifact: Row) -> str | None:
    return artifact["digest"][:12] if artifact["state"] == "COMMITTED" else None


ARTIFACT_FIELDS: dict[str, Callable[..., Any]] = {
    "id": lambda a, _i: artifact_id(a),
    "digest": lambda a, _i: a["digest"],
    "description": lambda a, _i: a["description"],
    "metadata": lambda a, _i: a["metadata"],
    "state": lambda a, _i: a["state"],
    "size": lambda a, _i: a["size"],
    "storageBytes": lambda a, i: ctx(i).store.artifact_bytes(a["id"]),
    "fileCount": lambda a, _i: a["file_count"],
    "historyStep": lambda a, _i: a["history_step"],
    "ttlDurationSeconds": lambda a, _i: a["ttl_seconds"],
    "ttlIsInherited": lambda a, _i: a["ttl_seconds"] == -1,  # store.artifacts.TTL_INHERIT
    "commitHash": lambda a, _i, artifactCollectionName=None: _commit_hash(a),
    "versionIndex": lambda a, _i, artifactCollectionName=None: a["version_index"],
    "createdAt": lambda a, _i: a["created_at"],
    "updatedAt": lambda a, _i: a["updated_at"],
    "labels": lambda _a, _i: None,
    "tags": lambda _a, _i: [],
    "aliases": _aliases,
    "artifactType": lambda a, i: ctx(i).store.artifact_type_by_id(a["type_id"]),
    "artifactSequence": lambda a, i: ctx(i).store.artifact_collection_by_id(a["collection_id"]),
    "artifactMemberships": _memberships,
    "currentManifest": lambda a, _i: manifest_node(a),
    "createdBy": _created_by,
    "usedBy": _used_by,
    "usedCount": lambda a, i: ctx(i).store.count_artifact_users(a["id"]),
    "files": files,
}

ALIAS_FIELDS: dict[str, Callable[..., Any]] = {
    "id": lambda x, _i: storage_id("ArtifactAlias", str(x["id"])),
    "alias": lambda x, _i: x["alias"],
    "artifact": lambda x, i: ctx(i).store.artifact(x["artifact_id"]),
    "artifactCollection": lambda x, i: ctx(i).store.artifact_collection_by_id(x["collection_id"]),
    "artifactCollectionName": lambda x, _i: x["collection_name"],
}

MANIFEST_FIELDS: dict[str, Callable[..., Any]] = {
    "id": lambda m, _i: storage_id("ArtifactManifest", str(m["artifact"]["id"])),
    "digest": lambda m, _i: m["artifact"]["manifest_digest"] or "",
    "type": lambda m, _i: m["artifact"]["manifest_type"] or "FULL",
    "createdAt": lambda m, _i: m["artifact"]["manifest_created_at"],
    "file": _manifest_file,
    "artifact": lambda m, _i: m["artifact"],
}


def _membership_collection(m: dict[str, Any], info: Any) -> Any:
    return m["collection"] or ctx(info).store.artifact_collection_by_id(m["artifact"]["collection_id"])


def _membership_index(m: dict[str, Any], info: Any) -> int | None:
    """A version's index in a portfolio is the portfolio's own (links.py), not its sequence's."""
    collection = m["collection"]
    if collection is not None and collection["kind"] == "PORTFOLIO":
        return ctx(info).store.link_index(collection["id"], m["artifact"]["id"])
    index: int | None = m["artifact"]["version_index"]
    return index


def _membership_aliases(m: dict[str, Any], info: Any) -> list[sqlite3.Row]:
    collection_id = m["collection"]["id"] if m["collection"] is not None else m["artifact"]["collection_id"]
    return [r for r in ctx(info).store.artifact_aliases(m["artifact"]["id"]) if r["collection_id"] == collection_id]


MEMBERSHIP_FIELDS: dict[str, Callable[..., Any]] = {
    "id": lambda m, _i: storage_id("ArtifactCollectionMembership", str(
        (m["collection"] or m["artifact"])["id" if m["collection"] else "collection_id"]), str(m["artifact"]["id"])),
    "versionIndex": _membership_index,
    "createdAt": lambda m, _i: m["artifact"]["committed_at"] or m["artifact"]["created_at"],
    "commitHash": lambda m, _i: _commit_hash(m["artifact"]),
    "aliases": _membership_aliases,
    "artifact": lambda m, _i: m["artifact"],
    "artifactCollection": _membership_collection,
    "files": lambda m, i, names=None, after=None, first=None: files(m["artifact"], i, names, after, first),
}
