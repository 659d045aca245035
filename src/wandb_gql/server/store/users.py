"""Users, their entities, and API keys (stored as SHA-256 hashes only)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import sqlite3
from dataclasses import dataclass

from ..._time import now


@dataclass(frozen=True)
class Viewer:
    id: int
    username: str
    entity: str


def new_api_key() -> str:
    # W&B's SDK accepts "prefix-secret" with a secret of at least 40 [\w-] characters.
    return "local-" + secrets.token_hex(24)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def entity_exists(conn: sqlite3.Connection, name: str) -> bool:
    return conn.execute("SELECT 1 FROM entities WHERE name = ?", (name,)).fetchone() is not None


def ensure_entity(conn: sqlite3.Connection, name: str) -> int:
    row = conn.execute("SELECT id FROM entities WHERE name = ?", (name,)).fetchone()
    if row:
        return int(row[0])
    return _inserted(conn.execute("INSERT INTO entities (name, created_at) VALUES (?, ?)", (name, now())))


_VIEWER = "SELECT u.id, u.username, e.name FROM users u JOIN entities e ON e.id = u.entity_id"


def ensure_user(conn: sqlite3.Connection, username: str) -> Viewer:
    row = conn.execute(_VIEWER + " WHERE u.username = ?", (username,)).fetchone()
    if row:
        return Viewer(row[0], row[1], row[2])
    entity_id = ensure_entity(conn, username)
    uid = _inserted(conn.execute("INSERT INTO users (username, name, email, entity_id) VALUES (?, ?, ?, ?)",
                                 (username, username, f"{username}@localhost", entity_id)))
    return Viewer(uid, username, username)


def viewer(conn: sqlite3.Connection, user_id: int) -> Viewer | None:
    row = conn.execute(_VIEWER + " WHERE u.id = ?", (user_id,)).fetchone()
    return Viewer(row[0], row[1], row[2]) if row else None


def user_row(conn: sqlite3.Connection, username: str | None) -> sqlite3.Row | None:
    if not username:
        return None
    return conn.execute("SELECT u.*, e.name AS entity FROM users u JOIN entities e ON e.id = u.entity_id"
                        " WHERE u.username = ?", (username,)).fetchone()


def username(conn: sqlite3.Connection, user_id: int | None) -> str | None:
    row = conn.execute("SELECT username FROM users WHERE id = ?", (user_id,)).fetchone()
    return row[0] if row else None


def has_api_keys(conn: sqlite3.Connection) -> bool:
    return conn.execute("SELECT 1 FROM api_keys LIMIT 1").fetchone() is not None


def add_api_key(conn: sqlite3.Connection, user_id: int, key: str, name: str) -> None:
    conn.execute("INSERT OR IGNORE INTO api_keys (user_id, key_hash, name, created_at) VALUES (?, ?, ?, ?)",
                 (user_id, hash_key(key), name, now()))


def key_hashes(conn: sqlite3.Connection) -> dict[str, int]:
    return {row[0]: row[1] for row in conn.execute("SELECT key_hash, user_id FROM api_keys")}


def key_owner(hashes: dict[str, int], key: str) -> int | None:
    """The user id a key belongs to, comparing every stored hash in constant time so timing
    tells nothing about a key."""
    presented = hash_key(key)
    owner = None
    for known, user_id in hashes.items():
        if hmac.compare_digest(known, presented):
            owner = user_id
    return owner


def _inserted(cursor: sqlite3.Cursor) -> int:
    assert cursor.lastrowid is not None  # an INSERT always sets it
    return cursor.lastrowid
