"""File objects, a run's file connection, and the signed URLs files are read and written by."""

from __future__ import annotations

import mimetypes
import posixpath
import sqlite3
from typing import Any

from .. import tokens
from ..store import BadInput, files as file_store, page_size, storage_id
from . import _connection
from ._context import Context, ctx


def file_url(context: Context, row: sqlite3.Row, run: sqlite3.Row) -> str:
    # The SDK sends storage URLs no credentials: the token is bound to this file and its run.
    token = tokens.mint(context.store.secret, tokens.RUN_FILE, row["run_id"], row["id"], ttl=context.url_ttl,
                        bound=tokens.run_file_binding(run["name"], run["created_at"], row["name"]))
    return f"{context.base_url}/storage/{token}"


# Python's own table only (not /etc/mime.types): the same answer on every machine.
_TYPES = mimetypes.MimeTypes()
# Names every run has that the table lacks.
_EXTRA = {".yaml": "application/x-yaml", ".yml": "application/x-yaml", ".log": "text/plain",
          ".jsonl": "application/jsonl"}


def mimetype(name: str) -> str:
    """A file's type from its name, as W&B's storage labels it; unknown kinds are plain bytes."""
    suffix = name[name.rfind("."):].lower() if "." in name else ""
    return _EXTRA.get(suffix) or _TYPES.guess_type(name)[0] or "application/octet-stream"


def file_node(context: Context, row: sqlite3.Row, run: sqlite3.Row) -> dict[str, Any]:
    # Upload and download URLs carry their own token: the SDK sends them no credentials.
    url = file_url(context, row, run)
    return {
        "id": storage_id("File", str(row["id"])), "name": row["name"], "displayName": row["name"],
        "url": url, "directUrl": url, "uploadUrl": url, "uploadHeaders": [], "sizeBytes": row["size"],
        "md5": row["md5"], "mimetype": row["mimetype"] or mimetype(row["name"]), "updatedAt": row["updated_at"],
        "storagePath": row["name"],
    }


def stored_name(name: str) -> str:
    """A requested file name as the SDK stored it: relative to the run's files directory, so
    `run.file("./out.txt")` (what `wandb verify` asks for after `run.save("./out.txt")`) finds out.txt."""
    if not name or name.startswith("/"):
        return name
    return posixpath.normpath(name)


def run_files(run: sqlite3.Row, info: Any, names: list[str] | None = None, after: str | None = None,
              first: int | None = None, pattern: str | None = None) -> dict[str, Any]:
    context = ctx(info)
    if names and pattern:
        raise BadInput("pass either names or pattern, not both")
    if names:
        names = [n if n is None else stored_name(n) for n in names]
    rows, more = context.store.files(run["id"], names, pattern, page_size(first),
                                     _connection.from_opaque("File", after))
    return _connection.connection(rows, more=more, after=after, node=lambda row: file_node(context, row, run),
                                  cursor=lambda row: _connection.opaque("File", row["id"]),
                                  uploadHeaders=[],
                                  # Every file the filter matches, not the page (counted only if asked).
                                  totalCount=lambda _info: file_store.count_matching(
                                      context.store.conn, run["id"], names, pattern))
