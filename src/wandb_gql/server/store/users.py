"""Users, entities, team membership, and API keys (stored as SHA-256 hashes only).

W&B's model: a key belongs to a user; a user belongs to entities (their own, named after them,
and the teams they are members of); a key reads and writes only those entities. Being an admin
(the first user, `local`) means managing users and keys from the CLI, not reading every team's
data: a local server's admin joins a team like anyone else.
"""

from __future__ import annotations

import hashlib
import secrets
import sqlite3
from dataclasses import dataclass

from ..._time import now
from ._common import BadInput

# Membership lives beside db.py's schema: own entities are users.entity_id, teams are listed
# in `teams`, and a user belongs to a team through `team_members`.
_DDL = """
CREATE TABLE IF NOT EXISTS teams (entity_id INTEGER PRIMARY KEY REFERENCES entities(id));
CREATE TABLE IF NOT EXISTS team_members (
  entity_id INTEGER NOT NULL REFERENCES entities(id),
  user_id INTEGER NOT NULL REFERENCES users(id),
  PRIMARY KEY (entity_id, user_id)
) WITHOUT ROWID;
"""


@dataclass(frozen=True)
class Viewer:
    id: int
    username: str
    entity: str
    admin: bool = False  # manages users and keys (and /_local/); reads no more entities for it


def new_api_key() -> str:
    # W&B's SDK accepts "prefix-secret" with a secret of at least 40 [\w-] characters.
    return "local-" + secrets.token_hex(24)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def ensure_schema(conn: sqlite3.Connection, default_user: str) -> None:
    """Create the membership tables; a database from before them had one user acting in every
    entity, so there every entity no user owns becomes a team all existing users belong to."""
    existed = conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'team_members'").fetchone()
    for statement in _DDL.split(";"):  # not executescript: it would commit the caller's transaction
        if statement.strip():
            conn.execute(statement)
    if existed:
        return
    conn.execute("UPDATE users SET admin = (username = ?)", (default_user,))
    conn.execute("INSERT OR IGNORE INTO teams (entity_id) SELECT id FROM entities"
                 " WHERE id NOT IN (SELECT entity_id FROM users)")
    conn.execute("INSERT OR IGNORE INTO team_members (entity_id, user_id) SELECT t.entity_id, u.id"
                 " FROM teams t, users u")


def entity_exists(conn: sqlite3.Connection, name: str) -> bool:
    return conn.execute("SELECT 1 FROM entities WHERE name = ?", (name,)).fetchone() is not None


def is_team(conn: sqlite3.Connection, name: str) -> bool:
    return conn.execute("SELECT 1 FROM teams t JOIN entities e ON e.id = t.entity_id WHERE e.name = ?",
                        (name,)).fetchone() is not None


def _new_entity(conn: sqlite3.Connection, name: str) -> int:
    if entity_exists(conn, name):
        raise BadInput(f"entity {name!r} exists already (a user or a team): choose another name")
    return _inserted(conn.execute("INSERT INTO entities (name, created_at) VALUES (?, ?)", (name, now())))


_VIEWER = "SELECT u.id, u.username, e.name, u.admin FROM users u JOIN entities e ON e.id = u.entity_id"


def ensure_user(conn: sqlite3.Connection, username: str) -> Viewer:
    row = conn.execute(_VIEWER + " WHERE u.username = ?", (username,)).fetchone()
    if row:
        return Viewer(row[0], row[1], row[2], bool(row[3]))
    return add_user(conn, username)


def add_user(conn: sqlite3.Connection, username: str) -> Viewer:
    """A new user and their own entity; the first user of a database is its admin."""
    first = conn.execute("SELECT 1 FROM users LIMIT 1").fetchone() is None
    entity_id = _new_entity(conn, username)
    uid = _inserted(conn.execute(
        "INSERT INTO users (username, name, email, entity_id, admin) VALUES (?, ?, ?, ?, ?)",
        (username, username, f"{username}@localhost", entity_id, int(first))))
    return Viewer(uid, username, username, first)


def ensure_team(conn: sqlite3.Connection, name: str) -> int:
    row = conn.execute("SELECT t.entity_id FROM teams t JOIN entities e ON e.id = t.entity_id WHERE e.name = ?",
                       (name,)).fetchone()
    if row:
        return int(row[0])
    entity_id = _new_entity(conn, name)
    conn.execute("INSERT INTO teams (entity_id) VALUES (?)", (entity_id,))
    return entity_id


def add_member(conn: sqlite3.Connection, team: str, user_id: int) -> None:
    conn.execute("INSERT OR IGNORE INTO team_members (entity_id, user_id) VALUES (?, ?)",
                 (ensure_team(conn, team), user_id))


def member_entities(conn: sqlite3.Connection, user_id: int) -> frozenset[str]:
    """The entities a user reads and writes: their own and their teams'."""
    return frozenset(row[0] for row in conn.execute(
        "SELECT e.name FROM users u JOIN entities e ON e.id = u.entity_id WHERE u.id = ?"
        " UNION SELECT e.name FROM team_members m JOIN entities e ON e.id = m.entity_id WHERE m.user_id = ?",
        (user_id, user_id)))


def teams_of(conn: sqlite3.Connection, user_id: int) -> list[str]:
    return [row[0] for row in conn.execute(
        "SELECT e.name FROM team_members m JOIN entities e ON e.id = m.entity_id WHERE m.user_id = ?"
        " ORDER BY e.name", (user_id,))]


def users_list(conn: sqlite3.Connection) -> list[dict[str, object]]:
    rows = conn.execute("SELECT u.id, u.username, u.admin, (SELECT count(*) FROM api_keys k WHERE k.user_id = u.id)"
                        " FROM users u ORDER BY u.id").fetchall()
    return [{"username": r[1], "admin": bool(r[2]), "teams": teams_of(conn, r[0]), "keys": r[3]} for r in rows]


def viewer(conn: sqlite3.Connection, user_id: int) -> Viewer | None:
    row = conn.execute(_VIEWER + " WHERE u.id = ?", (user_id,)).fetchone()
    return Viewer(row[0], row[1], row[2], bool(row[3])) if row else None


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


def keys_list(conn: sqlite3.Connection) -> list[dict[str, object]]:
    """Every key's id, name, user and creation time; never the key (only its hash is stored)."""
    return [{"id": r[0], "name": r[1], "user": r[2], "created_at": r[3]} for r in conn.execute(
        "SELECT k.id, k.name, u.username, k.created_at FROM api_keys k JOIN users u ON u.id = k.user_id"
        " ORDER BY k.id")]


def revoke_key(conn: sqlite3.Connection, name_or_id: str) -> list[dict[str, object]]:
    """Delete the keys named `name_or_id` (or with that id); returns what was revoked."""
    revoked = [k for k in keys_list(conn) if k["name"] == name_or_id or str(k["id"]) == name_or_id]
    conn.executemany("DELETE FROM api_keys WHERE id = ?", [(k["id"],) for k in revoked])
    return revoked


def key_owner(conn: sqlite3.Connection, key: str) -> int | None:
    """The user a key belongs to. Looked up by its SHA-256 on every request (no cache), so a key
    revoked by `wbgql server keys revoke` in another process is refused at once; the index
    compares hashes, whose timing says nothing useful about a key."""
    row = conn.execute("SELECT user_id FROM api_keys WHERE key_hash = ?", (hash_key(key),)).fetchone()
    return None if row is None else int(row[0])


def _inserted(cursor: sqlite3.Cursor) -> int:
    assert cursor.lastrowid is not None  # an INSERT always sets it
    return cursor.lastrowid


def members(conn: sqlite3.Connection, entity: str) -> list[sqlite3.Row]:
    """The users of an entity: a team's members, or the user an entity is named after."""
    return conn.execute(
        "SELECT u.*, o.name AS entity FROM entities e JOIN team_members m ON m.entity_id = e.id"
        " JOIN users u ON u.id = m.user_id JOIN entities o ON o.id = u.entity_id WHERE e.name = ?"
        " UNION SELECT u.*, e.name AS entity FROM entities e JOIN users u ON u.entity_id = e.id WHERE e.name = ?"
        " ORDER BY id", (entity, entity)).fetchall()


def search(conn: sqlite3.Connection, text: str | None, usernames: list[str] | None, among: frozenset[str] | None,
           first: int, after_id: int) -> tuple[list[sqlite3.Row], bool]:
    """Users whose username, name or email contains `text` (any case), or named in `usernames`;
    only those belonging to one of the entities `among` (if given); id order after `after_id`."""
    sql = "SELECT u.*, e.name AS entity FROM users u JOIN entities e ON e.id = u.entity_id WHERE u.id > ?"
    params: list[object] = [after_id]
    if text:
        pattern = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        sql += (" AND (u.username LIKE ? ESCAPE '\\' OR u.name LIKE ? ESCAPE '\\'"
                " OR coalesce(u.email, '') LIKE ? ESCAPE '\\')")
        params += [pattern] * 3
    if usernames is not None:
        sql += f" AND u.username IN ({', '.join('?' * len(usernames))})" if usernames else " AND 0"
        params += usernames
    if among is not None:
        names = sorted(among)
        marks = ", ".join("?" * len(names)) or "NULL"
        sql += (f" AND (e.name IN ({marks}) OR u.id IN (SELECT m.user_id FROM team_members m"
                f" JOIN entities t ON t.id = m.entity_id WHERE t.name IN ({marks})))")
        params += names * 2
    rows = conn.execute(sql + " ORDER BY u.id LIMIT ?", (*params, first + 1)).fetchall()
    return rows[:first], len(rows) > first


def entity_project_ids(conn: sqlite3.Connection, entity: str) -> list[int]:
    return [int(r[0]) for r in conn.execute(
        "SELECT p.id FROM projects p JOIN entities e ON e.id = p.entity_id WHERE e.name = ?", (entity,))]
