"""Artifacts: types, collections (sequences), versions, aliases, their files, who used them.

A version is PENDING from createArtifact until commitArtifact, which gives it the next version
index of its collection (v0, v1 ... never reused), reads its manifest for size and files, and
applies the aliases asked for at creation (`latest` included: it moves to the newest). A custom
alias names one version per collection and moves when reused. File bytes live in blobs.py,
addressed by their md5; a version's files point at them, and deleting versions frees only blobs
no remaining version (file or manifest) points at.
"""

from __future__ import annotations

import re
import sqlite3
from typing import Any, Iterable

import orjson

from ..._time import now
from . import blobs
from ._common import BadInput, json_object_text

# Every artifact read carries its collection's and type's names: resolvers never look them up again.
ARTIFACT_SELECT = ("SELECT a.*, c.name AS collection_name, c.project_id AS project_id, c.type_id AS type_id,"
           " t.name AS type_name FROM artifacts a JOIN artifact_collections c ON c.id = a.collection_id"
           " JOIN artifact_types t ON t.id = c.type_id")
VERSION = re.compile(r"v(\d+)")
_NAME = re.compile(r"[\w.-]+")


def check_name(kind: str, name: str) -> None:
    if not name or not _NAME.fullmatch(name):
        raise BadInput(f"invalid artifact {kind} name {name!r}: use letters, digits, '-', '_' and '.'")


# -- types and collections -------------------------------------------------------------------
def ensure_type(conn: sqlite3.Connection, project_id: int, name: str) -> sqlite3.Row:
    check_name("type", name)
    conn.execute("INSERT INTO artifact_types (project_id, name, created_at) VALUES (?, ?, ?)"
                 " ON CONFLICT (project_id, name) DO NOTHING", (project_id, name, now()))
    return type_by_name(conn, project_id, name)  # type: ignore[return-value]


def type_by_name(conn: sqlite3.Connection, project_id: int, name: str) -> sqlite3.Row | None:
    return conn.execute("SELECT * FROM artifact_types WHERE project_id = ? AND name = ?",
                        (project_id, name)).fetchone()


def type_by_id(conn: sqlite3.Connection, type_id: int) -> sqlite3.Row:
    return conn.execute("SELECT * FROM artifact_types WHERE id = ?", (type_id,)).fetchone()


def types_page(conn: sqlite3.Connection, project_id: int, first: int, after_id: int) -> tuple[list[sqlite3.Row], bool]:
    rows = conn.execute("SELECT * FROM artifact_types WHERE project_id = ? AND id > ? ORDER BY id LIMIT ?",
                        (project_id, after_id, first + 1)).fetchall()
    return rows[:first], len(rows) > first


def ensure_collection(conn: sqlite3.Connection, project_id: int, type_row: sqlite3.Row, name: str) -> sqlite3.Row:
    check_name("collection", name)
    stamp = now()
    conn.execute("INSERT INTO artifact_collections (project_id, type_id, name, created_at, updated_at)"
                 " VALUES (?, ?, ?, ?, ?) ON CONFLICT (project_id, name) DO NOTHING",
                 (project_id, type_row["id"], name, stamp, stamp))
    row: sqlite3.Row = collection_by_name(conn, project_id, name)  # type: ignore[assignment]
    if row["type_id"] != type_row["id"]:
        raise BadInput(f"artifact collection {name!r} holds type {row['type_name']!r}, not"
                       f" {type_row['name']!r}: log it under another name or with type {row['type_name']!r}")
    return row


_COLLECTION = ("SELECT c.*, t.name AS type_name FROM artifact_collections c"
               " JOIN artifact_types t ON t.id = c.type_id")


def collection_by_name(conn: sqlite3.Connection, project_id: int, name: str) -> sqlite3.Row | None:
    return conn.execute(f"{_COLLECTION} WHERE c.project_id = ? AND c.name = ?", (project_id, name)).fetchone()


def collection_by_id(conn: sqlite3.Connection, collection_id: int) -> sqlite3.Row | None:
    return conn.execute(f"{_COLLECTION} WHERE c.id = ?", (collection_id,)).fetchone()


def collections_page(conn: sqlite3.Connection, project_id: int, type_id: int | None, first: int,
                     after_id: int) -> tuple[list[sqlite3.Row], bool]:
    sql, params = f"{_COLLECTION} WHERE c.project_id = ? AND c.id > ?", [project_id, after_id]
    if type_id is not None:
        sql += " AND c.type_id = ?"
        params.append(type_id)
    rows = conn.execute(sql + " ORDER BY c.id LIMIT ?", (*params, first + 1)).fetchall()
    return rows[:first], len(rows) > first


def count_collections(conn: sqlite3.Connection, project_id: int, type_id: int | None) -> int:
    sql, params = "SELECT count(*) FROM artifact_collections WHERE project_id = ?", [project_id]
    if type_id is not None:
        sql += " AND type_id = ?"
        params.append(type_id)
    return int(conn.execute(sql, params).fetchone()[0])


# -- versions --------------------------------------------------------------------------------
def by_id(conn: sqlite3.Connection, artifact_id: int) -> sqlite3.Row | None:
    return conn.execute(f"{ARTIFACT_SELECT} WHERE a.id = ?", (artifact_id,)).fetchone()


def resolve(conn: sqlite3.Connection, collection_id: int, alias: str) -> sqlite3.Row | None:
    """A committed version of a collection by `vN` or by alias (`latest` included)."""
    version = VERSION.fullmatch(alias)
    if version:
        return conn.execute(f"{ARTIFACT_SELECT} WHERE a.collection_id = ? AND a.version_index = ? AND a.state = 'COMMITTED'",
                            (collection_id, int(version.group(1)))).fetchone()
    return conn.execute(f"{ARTIFACT_SELECT} JOIN artifact_aliases x ON x.artifact_id = a.id"
                        " WHERE x.collection_id = ? AND x.alias = ?", (collection_id, alias)).fetchone()


def versions_page(conn: sqlite3.Connection, collection_id: int, first: int,
                  before_index: int | None) -> tuple[list[sqlite3.Row], bool]:
    """Committed versions, newest first, below `before_index` (None: from the newest)."""
    rows = conn.execute(f"{ARTIFACT_SELECT} WHERE a.collection_id = ? AND a.state = 'COMMITTED' AND a.version_index < ?"
                        " ORDER BY a.version_index DESC LIMIT ?",
                        (collection_id, 2 ** 62 if before_index is None else before_index, first + 1)).fetchall()
    return rows[:first], len(rows) > first


def count_versions(conn: sqlite3.Connection, collection_id: int) -> int:
    return int(conn.execute("SELECT count(*) FROM artifacts WHERE collection_id = ? AND state = 'COMMITTED'",
                            (collection_id,)).fetchone()[0])


def latest(conn: sqlite3.Connection, collection_id: int) -> sqlite3.Row | None:
    return conn.execute(f"{ARTIFACT_SELECT} WHERE a.collection_id = ? AND a.state = 'COMMITTED'"
                        " ORDER BY a.version_index DESC LIMIT 1", (collection_id,)).fetchone()


def create(conn: sqlite3.Connection, collection: sqlite3.Row, fields: dict[str, Any],
           run_id: int | None) -> sqlite3.Row:
    """createArtifact. An identical committed version (same digest) of the collection is answered
    instead of a new one, and takes the aliases asked for; a retried create of the same run's
    pending version answers that version."""
    aliases = alias_names(fields.get("aliases") or [], collection["name"])
    digest = fields["digest"]
    same = conn.execute(f"{ARTIFACT_SELECT} WHERE a.collection_id = ? AND a.digest = ? AND a.state = 'COMMITTED'"
                        " ORDER BY a.version_index DESC LIMIT 1", (collection["id"], digest)).fetchone()
    if same is not None:
        for alias in aliases:
            set_alias(conn, collection["id"], alias, same["id"])
        if run_id is not None and run_id != same["created_by_run_id"]:
            conn.execute("INSERT INTO artifact_outputs (artifact_id, run_id, created_at) VALUES (?, ?, ?)"
                         " ON CONFLICT DO NOTHING", (same["id"], run_id, now()))
        return same
    pending = conn.execute(f"{ARTIFACT_SELECT} WHERE a.collection_id = ? AND a.digest = ? AND a.state = 'PENDING'"
                           " AND a.created_by_run_id IS ?", (collection["id"], digest, run_id)).fetchone()
    if pending is not None:
        return pending
    metadata = fields.get("metadata")
    metadata_text = "{}" if metadata in (None, "") else json_object_text(metadata, "metadata")
    stamp = now()
    ttl = _ttl(fields.get("ttlDurationSeconds"))
    cur = conn.execute(
        "INSERT INTO artifacts (collection_id, digest, description, metadata, ttl_seconds, history_step,"
        " pending_aliases, created_by_run_id, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (collection["id"], digest, fields.get("description"), metadata_text, TTL_INHERIT if ttl is None else ttl,
         fields.get("historyStep"), orjson.dumps(aliases).decode(), run_id, stamp, stamp))
    return by_id(conn, int(cur.lastrowid))  # type: ignore[arg-type,return-value]


# W&B's ttlDurationSeconds: seconds from the version's creation until it is deleted, or one of
# these; the SDK sends nothing (or 0) when the TTL did not change.
TTL_INHERIT, TTL_DISABLED = -1, -2


def _ttl(value: Any) -> int | None:
    if value in (None, 0):
        return None
    ttl = int(value)
    if ttl < 0 and ttl not in (TTL_INHERIT, TTL_DISABLED):
        raise BadInput(f"invalid ttlDurationSeconds {ttl}: send seconds > 0, -1 (inherit) or -2 (no TTL)")
    return ttl


def expired(conn: sqlite3.Connection, at: str) -> list[int]:
    """Versions whose TTL, counted from their creation, has passed by `at`."""
    return [r[0] for r in conn.execute("SELECT id FROM artifacts WHERE ttl_seconds > 0"
                                       " AND julianday(created_at) + ttl_seconds / 86400.0 <= julianday(?)", (at,))]


def alias_names(given: Iterable[dict[str, Any]], collection: str) -> list[str]:
    out = []
    for item in given:
        if item.get("artifactCollectionName") not in (None, collection):
            continue  # aliases for another collection of a multi-collection create
        alias = item["alias"]
        if not alias or VERSION.fullmatch(alias) or any(c in alias for c in ":/"):
            raise BadInput(f"invalid alias {alias!r}: 'vN' names versions, and ':' and '/' are not allowed")
        out.append(alias)
    return list(dict.fromkeys(out))


def set_alias(conn: sqlite3.Connection, collection_id: int, alias: str, artifact_id: int) -> None:
    conn.execute("INSERT INTO artifact_aliases (collection_id, alias, artifact_id) VALUES (?, ?, ?)"
                 " ON CONFLICT (collection_id, alias) DO UPDATE SET artifact_id = excluded.artifact_id",
                 (collection_id, alias, artifact_id))


def remove_aliases(conn: sqlite3.Connection, artifact_id: int, keep: Iterable[str]) -> None:
    kept = list(keep)
    conn.execute(f"DELETE FROM artifact_aliases WHERE artifact_id = ? AND alias NOT IN ({','.join('?' * len(kept))})",
                 (artifact_id, *kept))


def aliases_of(conn: sqlite3.Connection, artifact_id: int) -> list[sqlite3.Row]:
    return conn.execute("SELECT x.*, c.name AS collection_name, c.project_id AS project_id FROM artifact_aliases x"
                        " JOIN artifact_collections c ON c.id = x.collection_id WHERE x.artifact_id = ?"
                        " ORDER BY x.id", (artifact_id,)).fetchall()


def collection_aliases(conn: sqlite3.Connection, collection_id: int, first: int,
                       after_id: int) -> tuple[list[sqlite3.Row], bool]:
    rows = conn.execute("SELECT x.*, c.name AS collection_name, c.project_id AS project_id FROM artifact_aliases x"
                        " JOIN artifact_collections c ON c.id = x.collection_id WHERE x.collection_id = ? AND x.id > ?"
                        " ORDER BY x.id LIMIT ?", (collection_id, after_id, first + 1)).fetchall()
    return rows[:first], len(rows) > first


def update(conn: sqlite3.Connection, row: sqlite3.Row, fields: dict[str, Any]) -> sqlite3.Row:
    """updateArtifact: description, metadata, ttl, and the whole alias set when given."""
    sets: dict[str, Any] = {}
    if fields.get("description") is not None:
        sets["description"] = fields["description"]
    if fields.get("metadata") is not None:
        sets["metadata"] = json_object_text(fields["metadata"], "metadata")
    ttl = _ttl(fields.get("ttlDurationSeconds"))
    if ttl is not None:
        sets["ttl_seconds"] = ttl
    if sets:
        assignments = ", ".join(f"{column} = ?" for column in sets)
        conn.execute(f"UPDATE artifacts SET {assignments}, updated_at = ? WHERE id = ?",
                     (*sets.values(), now(), row["id"]))
    if fields.get("aliases") is not None:
        if row["state"] != "COMMITTED":
            raise BadInput("aliases are set on committed versions: commit the artifact first")
        wanted = alias_names(fields["aliases"], row["collection_name"])
        remove_aliases(conn, row["id"], wanted)
        for alias in wanted:
            set_alias(conn, row["collection_id"], alias, row["id"])
    return by_id(conn, row["id"])  # type: ignore[return-value]


def add_aliases(conn: sqlite3.Connection, row: sqlite3.Row, given: list[dict[str, Any]]) -> list[sqlite3.Row]:
    """addAliases: each alias names this version in its collection from now on (a custom alias
    already on another version moves here, as W&B does). Returns the version's aliases."""
    for alias in _targeted(row, given, "add"):
        set_alias(conn, row["collection_id"], alias, row["id"])
    return aliases_of(conn, row["id"])


def delete_aliases(conn: sqlite3.Connection, row: sqlite3.Row, given: list[dict[str, Any]]) -> None:
    """deleteAliases: aliases of this version go; an alias naming another version is left alone."""
    names = _targeted(row, given, "delete")
    if names:
        conn.execute(f"DELETE FROM artifact_aliases WHERE artifact_id = ? AND alias IN ({','.join('?' * len(names))})",
                     (row["id"], *names))


def _targeted(row: sqlite3.Row, given: list[dict[str, Any]], verb: str) -> list[str]:
    if row["state"] != "COMMITTED":
        raise BadInput(f"aliases are {verb}d on committed versions: commit the artifact first")
    for item in given:
        if item.get("artifactCollectionName") != row["collection_name"]:
            raise BadInput(f"alias {item.get('alias')!r} names collection {item.get('artifactCollectionName')!r},"
                           f" but the artifact is in {row['collection_name']!r}: use its own collection name")
    return alias_names(given, row["collection_name"])


# -- manifest, files, commit -----------------------------------------------------------------
def set_manifest(conn: sqlite3.Connection, artifact_id: int, manifest_type: str, digest: str | None) -> None:
    conn.execute("UPDATE artifacts SET manifest_type = coalesce(?, manifest_type, 'FULL'),"
                 " manifest_digest = coalesce(?, manifest_digest), manifest_created_at = coalesce(manifest_created_at, ?)"
                 " WHERE id = ?", (manifest_type, digest or None, now(), artifact_id))


def put_manifest(conn: sqlite3.Connection, artifact_id: int, data: bytes) -> None:
    md5 = blobs.put(conn, data)
    conn.execute("UPDATE artifacts SET manifest_md5 = ? WHERE id = ?", (md5, artifact_id))


def add_files(conn: sqlite3.Connection, artifact_id: int, specs: list[dict[str, Any]]) -> list[bool]:
    """createArtifactFiles: records each file; True where its bytes still have to be uploaded."""
    conn.executemany("INSERT INTO artifact_files (artifact_id, name, md5, mimetype) VALUES (?, ?, ?, ?)"
                     " ON CONFLICT (artifact_id, name) DO UPDATE SET md5 = excluded.md5",
                     [(artifact_id, s["name"], s["md5"], s.get("mimetype")) for s in specs])
    return [not blobs.exists(conn, s["md5"]) for s in specs]


def has_file_md5(conn: sqlite3.Connection, artifact_id: int, md5: str) -> bool:
    return conn.execute("SELECT 1 FROM artifact_files WHERE artifact_id = ? AND md5 = ? LIMIT 1",
                        (artifact_id, md5)).fetchone() is not None


def commit(conn: sqlite3.Connection, row: sqlite3.Row) -> sqlite3.Row:
    """commitArtifact: files, size and count from the uploaded manifest; next version; aliases."""
    if row["state"] == "COMMITTED":
        return row  # committing twice is success
    manifest = blobs.data(conn, row["manifest_md5"]) if row["manifest_md5"] else None
    if manifest is None:
        raise BadInput("the artifact's manifest was not uploaded: createArtifactManifest, PUT it, then commit")
    try:
        contents = orjson.loads(manifest).get("contents") or {}
        entries = [(str(path), e) for path, e in contents.items() if isinstance(e, dict)]
    except (orjson.JSONDecodeError, AttributeError):
        raise BadInput("the uploaded manifest is not a W&B manifest (JSON with \"contents\")") from None
    stored = [(path, e) for path, e in entries if not e.get("ref") and e.get("digest")]
    missing = [path for path, e in stored if not blobs.exists(conn, str(e["digest"]))]
    if missing:
        raise BadInput(f"{len(missing)} file(s) of the manifest were not uploaded (first: {missing[0]!r});"
                       " PUT them to the URLs createArtifactFiles returned")
    conn.execute("DELETE FROM artifact_files WHERE artifact_id = ?", (row["id"],))
    conn.executemany("INSERT INTO artifact_files (artifact_id, name, md5, size) VALUES (?, ?, ?, ?)",
                     [(row["id"], path, str(e["digest"]), int(e.get("size") or 0)) for path, e in stored])
    version = conn.execute("UPDATE artifact_collections SET next_version = next_version + 1, updated_at = ?"
                           " WHERE id = ? RETURNING next_version - 1", (now(), row["collection_id"])).fetchone()[0]
    stamp = now()
    conn.execute("UPDATE artifacts SET state = 'COMMITTED', version_index = ?, size = ?, file_count = ?,"
                 " committed_at = ?, updated_at = ?, pending_aliases = '[]' WHERE id = ?",
                 (version, sum(int(e.get("size") or 0) for _p, e in entries), len(entries), stamp, stamp, row["id"]))
    for alias in ["latest", *orjson.loads(row["pending_aliases"])]:
        set_alias(conn, row["collection_id"], alias, row["id"])
    return by_id(conn, row["id"])  # type: ignore[return-value]


# A committed version's reference entries (`add_reference`), read from its manifest: W&B lists
# them among the version's files (wandb/wandb#5808: "Artifact.files() in GraphQL ... does include
# references") and the SDK downloads only what `files` lists, fetching a reference itself from
# where it points. No bytes are stored for them, so they have no artifact_files row (which blobs
# and storage bytes count). The manifest is read only when the version has more entries than rows.
_REFERENCES = ("SELECT j.key AS name, json_extract(j.value, '$.digest') AS md5,"
               " CAST(json_extract(j.value, '$.size') AS INTEGER) AS size, NULL AS mimetype, NULL AS stored_size,"
               " json_extract(j.value, '$.ref') AS ref"
               " FROM artifacts a JOIN blobs m ON m.md5 = a.manifest_md5, json_each(CAST(m.data AS TEXT), '$.contents') j"
               " WHERE a.id = ? AND a.state = 'COMMITTED'"
               " AND a.file_count > (SELECT count(*) FROM artifact_files WHERE artifact_id = a.id)"
               " AND json_type(j.value, '$.ref') = 'text' AND json_extract(j.value, '$.ref') <> ''")  # commit's test
_STORED = ("SELECT f.name, f.md5, f.size, f.mimetype, b.size AS stored_size, NULL AS ref FROM artifact_files f"
           " LEFT JOIN blobs b ON b.md5 = f.md5 WHERE f.artifact_id = ?")


def files_page(conn: sqlite3.Connection, artifact_id: int, names: list[str] | None, first: int,
               after: str | None) -> tuple[list[sqlite3.Row], bool]:
    """Stored files and references by name; a reference's `ref` is its URI (None for a stored file).
    Each kind is paged on its own, so a page reads at most `first` + 1 rows of each."""
    where, params = "name > ?", [after or ""]
    if names:
        where += f" AND name IN ({','.join('?' * len(names))})"
        params += names
    rows: list[sqlite3.Row] = []
    for source in (_STORED, _REFERENCES):
        rows += conn.execute(f"SELECT * FROM ({source}) WHERE {where} ORDER BY name LIMIT ?",
                             (artifact_id, *params, first + 1)).fetchall()
    rows.sort(key=lambda r: r["name"])  # code point order is SQLite's (UTF-8 bytes) order
    return rows[:first], len(rows) > first


def count_files(conn: sqlite3.Connection, artifact_id: int) -> int:
    return int(conn.execute(f"SELECT (SELECT count(*) FROM artifact_files WHERE artifact_id = ?)"
                            f" + (SELECT count(*) FROM ({_REFERENCES}))", (artifact_id, artifact_id)).fetchone()[0])


# -- lineage ---------------------------------------------------------------------------------
def use(conn: sqlite3.Connection, artifact_id: int, run_id: int, used_as: str | None) -> None:
    conn.execute("INSERT INTO artifact_usage (artifact_id, run_id, used_as, created_at) VALUES (?, ?, ?, ?)"
                 " ON CONFLICT (artifact_id, run_id) DO UPDATE SET used_as = coalesce(excluded.used_as, used_as)",
                 (artifact_id, run_id, used_as, now()))


# A run's outputs: the versions it created and those its identical logs were answered with.
_OUTPUT = ("(a.created_by_run_id = ? OR a.id IN (SELECT artifact_id FROM artifact_outputs WHERE run_id = ?))")


def outputs_page(conn: sqlite3.Connection, run_id: int, first: int, after_id: int) -> tuple[list[sqlite3.Row], bool]:
    rows = conn.execute(f"{ARTIFACT_SELECT} WHERE {_OUTPUT} AND a.id > ? ORDER BY a.id LIMIT ?",
                        (run_id, run_id, after_id, first + 1)).fetchall()
    return rows[:first], len(rows) > first


def count_outputs(conn: sqlite3.Connection, run_id: int) -> int:
    return int(conn.execute(f"SELECT count(*) FROM artifacts a WHERE {_OUTPUT}", (run_id, run_id)).fetchone()[0])


def inputs_page(conn: sqlite3.Connection, run_id: int, first: int, after_id: int) -> tuple[list[sqlite3.Row], bool]:
    rows = conn.execute(f"{ARTIFACT_SELECT.replace('SELECT a.*', 'SELECT a.*, u.used_as')}"
                        " JOIN artifact_usage u ON u.artifact_id = a.id WHERE u.run_id = ? AND a.id > ?"
                        " ORDER BY a.id LIMIT ?", (run_id, after_id, first + 1)).fetchall()
    return rows[:first], len(rows) > first


def count_inputs(conn: sqlite3.Connection, run_id: int) -> int:
    return int(conn.execute("SELECT count(*) FROM artifact_usage WHERE run_id = ?", (run_id,)).fetchone()[0])


def users_page(conn: sqlite3.Connection, artifact_id: int, first: int, after_id: int) -> tuple[list[sqlite3.Row], bool]:
    """Live runs that used a version, in run id order."""
    rows = conn.execute("SELECT r.* FROM runs r JOIN artifact_usage u ON u.run_id = r.id WHERE u.artifact_id = ?"
                        " AND r.deleted_at IS NULL AND r.id > ? ORDER BY r.id LIMIT ?",
                        (artifact_id, after_id, first + 1)).fetchall()
    return rows[:first], len(rows) > first


def count_users(conn: sqlite3.Connection, artifact_id: int) -> int:
    return int(conn.execute("SELECT count(*) FROM artifact_usage u JOIN runs r ON r.id = u.run_id"
                            " WHERE u.artifact_id = ? AND r.deleted_at IS NULL", (artifact_id,)).fetchone()[0])


# -- deletion and storage --------------------------------------------------------------------
def delete(conn: sqlite3.Connection, row: sqlite3.Row, delete_aliases: bool) -> int:
    """deleteArtifact: refused for an aliased version unless delete_aliases; `latest` then moves
    to the newest version left. Returns the bytes freed (blobs no other version points at)."""
    aliases = [a["alias"] for a in aliases_of(conn, row["id"])]
    if aliases and not delete_aliases:
        raise BadInput(f"artifact {row['collection_name']}:v{row['version_index']} has aliases"
                       f" {', '.join(aliases)}: remove them first or delete with deleteAliases: true")
    return delete_many(conn, [row["id"]])


def delete_many(conn: sqlite3.Connection, artifact_ids: list[int]) -> int:
    if not artifact_ids:
        return 0
    marks = ",".join("?" * len(artifact_ids))
    md5s = {r[0] for r in conn.execute(f"SELECT md5 FROM artifact_files WHERE artifact_id IN ({marks})"
                                       f" UNION SELECT manifest_md5 FROM artifacts WHERE id IN ({marks})"
                                       " AND manifest_md5 IS NOT NULL", (*artifact_ids, *artifact_ids))}
    collections = {r[0] for r in conn.execute(f"SELECT collection_id FROM artifacts WHERE id IN ({marks})",
                                              artifact_ids)}
    was_latest = {r[0] for r in conn.execute(f"SELECT collection_id FROM artifact_aliases WHERE alias = 'latest'"
                                             f" AND artifact_id IN ({marks})", artifact_ids)}
    conn.execute(f"DELETE FROM artifacts WHERE id IN ({marks})", artifact_ids)
    for collection_id in collections & was_latest:
        newest = latest(conn, collection_id)
        if newest is not None:
            set_alias(conn, collection_id, "latest", newest["id"])
    for portfolio_id in was_latest - collections:  # portfolios (links.py) the versions were linked into
        link = conn.execute("SELECT artifact_id FROM artifact_links WHERE portfolio_id = ?"
                            " ORDER BY version_index DESC LIMIT 1", (portfolio_id,)).fetchone()
        if link is not None:
            set_alias(conn, portfolio_id, "latest", link[0])
    return blobs.free_unreferenced(conn, md5s)


def run_outputs(conn: sqlite3.Connection, run_id: int) -> list[int]:
    return [r[0] for r in conn.execute("SELECT id FROM artifacts WHERE created_by_run_id = ?", (run_id,))]


_DISTINCT_BLOBS = ("SELECT coalesce(sum(b.size), 0) FROM blobs b WHERE b.md5 IN ("
                   "SELECT f.md5 FROM artifact_files f JOIN artifacts a ON a.id = f.artifact_id"
                   " JOIN artifact_collections c ON c.id = a.collection_id WHERE {scope}"
                   " UNION SELECT a.manifest_md5 FROM artifacts a JOIN artifact_collections c"
                   " ON c.id = a.collection_id WHERE {scope})")


def project_bytes(conn: sqlite3.Connection, project_id: int) -> int:
    """Bytes stored for a project's artifacts, each distinct blob once."""
    sql = _DISTINCT_BLOBS.format(scope="c.project_id = ?")
    return int(conn.execute(sql, (project_id, project_id)).fetchone()[0])


def artifact_bytes(conn: sqlite3.Connection, artifact_id: int) -> int:
    sql = _DISTINCT_BLOBS.format(scope="a.id = ?")
    return int(conn.execute(sql, (artifact_id, artifact_id)).fetchone()[0])


def collection_bytes(conn: sqlite3.Connection, collection_id: int) -> int:
    sql = _DISTINCT_BLOBS.format(scope="c.id = ?")
    return int(conn.execute(sql, (collection_id, collection_id)).fetchone()[0])


_REFS = ("SELECT a.id AS artifact_id, a.collection_id, c.type_id, f.md5 FROM artifact_files f"
         " JOIN artifacts a ON a.id = f.artifact_id JOIN artifact_collections c ON c.id = a.collection_id"
         " WHERE c.project_id = ? UNION SELECT a.id, a.collection_id, c.type_id, a.manifest_md5 FROM artifacts a"
         " JOIN artifact_collections c ON c.id = a.collection_id WHERE c.project_id = ? AND a.manifest_md5 IS NOT NULL")
_BY = {"artifact": "artifact_id", "collection": "collection_id", "type": "type_id"}


def bytes_by(conn: sqlite3.Connection, project_id: int, level: str) -> dict[int, int]:
    """A project's artifact bytes per version, collection or type ({id: bytes}): each distinct blob
    once per group, so a file two versions share counts once in their collection."""
    key = _BY[level]
    sql = (f"SELECT r.{key}, sum(b.size) FROM (SELECT DISTINCT {key}, md5 FROM ({_REFS})) r"
           f" JOIN blobs b ON b.md5 = r.md5 GROUP BY r.{key}")
    return {int(k): int(v) for k, v in conn.execute(sql, (project_id, project_id))}


def project_collections(conn: sqlite3.Connection, project_id: int) -> list[sqlite3.Row]:
    return conn.execute(f"{_COLLECTION} WHERE c.project_id = ? AND c.kind = 'SEQUENCE' ORDER BY c.id",
                        (project_id,)).fetchall()


def project_types(conn: sqlite3.Connection, project_id: int) -> list[sqlite3.Row]:
    return conn.execute("SELECT * FROM artifact_types WHERE project_id = ? ORDER BY id", (project_id,)).fetchall()


def collection_versions(conn: sqlite3.Connection, collection_id: int) -> list[sqlite3.Row]:
    return conn.execute(f"{ARTIFACT_SELECT} WHERE a.collection_id = ? AND a.state = 'COMMITTED' ORDER BY a.version_index DESC",
                        (collection_id,)).fetchall()


# -- bulk loading (the demo seed) ------------------------------------------------------------
def insert_collection(conn: sqlite3.Connection, project_id: int, type_name: str, name: str,
                      versions: list[dict[str, Any]]) -> list[int]:
    """A collection with committed versions in one go: each version is {"files": {path: bytes},
    "run_id", "created_at", "aliases", "used_by": [run ids], "metadata"}; `latest` goes to the last.
    Returns the versions' artifact ids."""
    collection = ensure_collection(conn, project_id, ensure_type(conn, project_id, type_name), name)
    ids = []
    for index, version in enumerate(versions):
        files = version["files"]
        md5s = {path: blobs.put(conn, data) for path, data in files.items()}
        manifest = orjson.dumps({"version": 1, "storagePolicy": "wandb-storage-policy-v1",
                                 "storagePolicyConfig": {"storageLayout": "V2"},
                                 "contents": {p: {"digest": md5s[p], "size": len(d)} for p, d in files.items()}})
        digest = blobs.md5_b64(manifest)
        stamp = version["created_at"]
        cur = conn.execute(
            "INSERT INTO artifacts (collection_id, version_index, digest, state, metadata, size, file_count,"
            " created_by_run_id, manifest_type, manifest_digest, manifest_md5, manifest_created_at, created_at,"
            " updated_at, committed_at) VALUES (?, ?, ?, 'COMMITTED', ?, ?, ?, ?, 'FULL', ?, ?, ?, ?, ?, ?)",
            (collection["id"], index, digest, orjson.dumps(version.get("metadata") or {}).decode(),
             sum(len(d) for d in files.values()), len(files), version.get("run_id"), digest, blobs.put(conn, manifest),
             stamp, stamp, stamp, stamp))
        artifact_id = int(cur.lastrowid)  # type: ignore[arg-type]
        ids.append(artifact_id)
        conn.executemany("INSERT INTO artifact_files (artifact_id, name, md5, size) VALUES (?, ?, ?, ?)",
                         [(artifact_id, p, md5s[p], len(d)) for p, d in files.items()])
        conn.executemany("INSERT INTO artifact_usage (artifact_id, run_id, created_at) VALUES (?, ?, ?)",
                         [(artifact_id, run_id, stamp) for run_id in version.get("used_by") or []])
        for alias in version.get("aliases") or []:
            set_alias(conn, collection["id"], alias, artifact_id)
    if ids:
        set_alias(conn, collection["id"], "latest", ids[-1])
    conn.execute("UPDATE artifact_collections SET next_version = ? WHERE id = ?", (len(versions), collection["id"]))
    return ids
