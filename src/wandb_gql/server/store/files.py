"""Run files: the names the SDK announces, their upload state and their bytes."""

from __future__ import annotations

import base64
import hashlib
import sqlite3
from typing import Any, Iterable

from ..._time import now


def _matching(names: list[str] | None, pattern: str | None) -> tuple[str, list[Any]]:
    sql, params = "", []
    if names:
        sql += f" AND name IN ({','.join('?' * len(names))})"
        params += names
    if pattern:
        sql += " AND name LIKE ?"
        params.append(pattern)
    return sql, params


def count_matching(conn: sqlite3.Connection, run_id: int, names: list[str] | None, pattern: str | None) -> int:
    """How many of a run's files the names or pattern select (all of them without either)."""
    sql, params = _matching(names, pattern)
    return int(conn.execute("SELECT count(*) FROM files WHERE run_id = ?" + sql, (run_id, *params)).fetchone()[0])


def page(conn: sqlite3.Connection, run_id: int, names: list[str] | None, pattern: str | None, first: int,
         after_id: int) -> tuple[list[sqlite3.Row], bool]:
    """A run's files after `after_id` in id order, by exact names or a LIKE pattern; more follow?"""
    sql, params = _matching(names, pattern)
    rows = conn.execute("SELECT * FROM files WHERE run_id = ? AND id > ?" + sql + " ORDER BY id LIMIT ?",
                        (run_id, after_id, *params, first + 1)).fetchall()
    return rows[:first], len(rows) > first


def ensure(conn: sqlite3.Connection, run_id: int, name: str) -> sqlite3.Row:
    conn.execute("INSERT INTO files (run_id, name, updated_at) VALUES (?, ?, ?) ON CONFLICT (run_id, name) DO NOTHING",
                 (run_id, name, now()))
    return conn.execute("SELECT * FROM files WHERE run_id = ? AND name = ?", (run_id, name)).fetchone()


def mark_uploaded(conn: sqlite3.Connection, run_id: int, names: list[str]) -> None:
    """markRunFilesUploaded: only files createRunFiles announced."""
    conn.executemany("UPDATE files SET uploaded = 1 WHERE run_id = ? AND name = ?", [(run_id, n) for n in names])


def record_uploaded(conn: sqlite3.Connection, run_id: int, names: list[str]) -> None:
    """file_stream's `uploaded`: files the SDK stored itself, announced or not."""
    conn.executemany("INSERT INTO files (run_id, name, uploaded, updated_at) VALUES (?, ?, 1, ?)"
                     " ON CONFLICT (run_id, name) DO UPDATE SET uploaded = 1",
                     [(run_id, n, now()) for n in names])


def put_data(conn: sqlite3.Connection, file_id: int, data: bytes) -> None:
    md5 = base64.b64encode(hashlib.md5(data).digest()).decode()
    conn.execute("UPDATE files SET data = ?, size = ?, md5 = ?, uploaded = 1, updated_at = ? WHERE id = ?",
                 (data, len(data), md5, now(), file_id))


def data(conn: sqlite3.Connection, file_id: int) -> bytes | None:
    """A file's bytes; None for an unknown file or one not uploaded yet."""
    row = conn.execute("SELECT data FROM files WHERE id = ?", (file_id,)).fetchone()
    return row[0] if row else None


def live_owner(conn: sqlite3.Connection, file_id: int) -> int | None:
    """The run a file belongs to while that run is not deleted; None otherwise."""
    row = conn.execute("SELECT f.run_id FROM files f JOIN runs r ON r.id = f.run_id"
                       " WHERE f.id = ? AND r.deleted_at IS NULL", (file_id,)).fetchone()
    return None if row is None else int(row[0])


def live_identity(conn: sqlite3.Connection, file_id: int) -> tuple[int, str, str, str] | None:
    """(run id, run name, run created_at, file name) of a file whose run is not deleted."""
    row = conn.execute("SELECT f.run_id, r.name, r.created_at, f.name FROM files f JOIN runs r ON r.id = f.run_id"
                       " WHERE f.id = ? AND r.deleted_at IS NULL", (file_id,)).fetchone()
    return None if row is None else (int(row[0]), row[1], row[2], row[3])


def run_bytes(conn: sqlite3.Connection, run_id: int) -> int:
    return int(conn.execute("SELECT coalesce(sum(size), 0) FROM files WHERE run_id = ?", (run_id,)).fetchone()[0])


def project_bytes(conn: sqlite3.Connection, project_id: int) -> int:
    return int(conn.execute("SELECT coalesce(sum(f.size), 0) FROM files f JOIN runs r ON r.id = f.run_id"
                            " WHERE r.project_id = ?", (project_id,)).fetchone()[0])


def delete(conn: sqlite3.Connection, file_ids: list[int]) -> None:
    """File.delete(): the row and its bytes go; URLs handed out for it stop working."""
    conn.executemany("DELETE FROM files WHERE id = ?", [(i,) for i in file_ids])


def live_project(conn: sqlite3.Connection, file_id: int) -> int | None:
    """The project of a file whose run is not deleted; None otherwise."""
    row = conn.execute("SELECT r.project_id FROM files f JOIN runs r ON r.id = f.run_id"
                       " WHERE f.id = ? AND r.deleted_at IS NULL", (file_id,)).fetchone()
    return None if row is None else int(row[0])


def insert_uploaded(conn: sqlite3.Connection, run_files: Iterable[tuple[int, str, bytes, str]]) -> None:
    """Files whose bytes are here already, (run id, name, bytes, updated_at) each (bulk writers)."""
    conn.executemany(
        "INSERT INTO files (run_id, name, size, md5, uploaded, data, updated_at) VALUES (?, ?, ?, ?, 1, ?, ?)",
        [(run_id, name, len(data), base64.b64encode(hashlib.md5(data).digest()).decode(), data, at)
         for run_id, name, data, at in run_files])
