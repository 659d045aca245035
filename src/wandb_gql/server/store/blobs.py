"""Artifact bytes, stored once per content: the key is the base64 md5 the SDK sends."""

from __future__ import annotations

import base64
import hashlib
import sqlite3
from typing import Iterable

from ..._time import now


def md5_b64(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode()


def put(conn: sqlite3.Connection, data: bytes) -> str:
    md5 = md5_b64(data)
    conn.execute("INSERT INTO blobs (md5, size, data, created_at) VALUES (?, ?, ?, ?) ON CONFLICT (md5) DO NOTHING",
                 (md5, len(data), data, now()))
    return md5


def exists(conn: sqlite3.Connection, md5: str) -> bool:
    return conn.execute("SELECT 1 FROM blobs WHERE md5 = ?", (md5,)).fetchone() is not None


def data(conn: sqlite3.Connection, md5: str) -> bytes | None:
    row = conn.execute("SELECT data FROM blobs WHERE md5 = ?", (md5,)).fetchone()
    return None if row is None else bytes(row[0])


def free_unreferenced(conn: sqlite3.Connection, md5s: Iterable[str]) -> int:
    """Delete those of `md5s` no version's file or manifest points at; returns the bytes freed."""
    freed = 0
    for md5 in md5s:
        row = conn.execute(
            "DELETE FROM blobs WHERE md5 = ? AND NOT EXISTS (SELECT 1 FROM artifact_files WHERE md5 = ?)"
            " AND NOT EXISTS (SELECT 1 FROM artifacts WHERE manifest_md5 = ?) RETURNING size",
            (md5, md5, md5)).fetchone()
        freed += row[0] if row else 0
    return freed


def total_bytes(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT coalesce(sum(size), 0) FROM blobs").fetchone()[0])
