"""File objects, a run's file connection, and the signed URLs files are read and written by."""

from __future__ import annotations

import hashlib
import hmac
import sqlite3
from typing import Any

from ..store import BadInput, Store, page_size, storage_id
from . import _connection
from ._context import Context, ctx


def file_token(store: Store, file_id: int) -> str:
    sig = hmac.new(store.secret.encode(), f"file:{file_id}".encode(), hashlib.sha256).hexdigest()[:32]
    return f"{file_id}.{sig}"


def file_id_from_token(store: Store, token: str) -> int | None:
    head, _, _sig = token.partition(".")
    if head.isdigit() and hmac.compare_digest(file_token(store, int(head)), token):
        return int(head)
    return None


def file_node(context: Context, row: sqlite3.Row) -> dict[str, Any]:
    # Upload and download URLs carry their own token: the SDK sends them no credentials.
    url = f"{context.base_url}/storage/{file_token(context.store, row['id'])}"
    return {
        "id": storage_id("File", str(row["id"])), "name": row["name"], "displayName": row["name"],
        "url": url, "directUrl": url, "uploadUrl": url, "uploadHeaders": [], "sizeBytes": row["size"],
        "md5": row["md5"], "mimetype": row["mimetype"], "updatedAt": row["updated_at"],
        "storagePath": row["name"],
    }


def run_files(run: sqlite3.Row, info: Any, names: list[str] | None = None, after: str | None = None,
              first: int | None = None, pattern: str | None = None) -> dict[str, Any]:
    context = ctx(info)
    if names and pattern:
        raise BadInput("pass either names or pattern, not both")
    rows, more = context.store.files(run["id"], names, pattern, page_size(first),
                                     _connection.from_opaque("File", after))
    return _connection.connection(rows, more=more, after=after, node=lambda row: file_node(context, row),
                                  cursor=lambda row: _connection.opaque("File", row["id"]),
                                  totalCount=len(rows), uploadHeaders=[])
