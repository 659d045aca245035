"""Multipart uploads of artifact files, as S3 does them for the SDK's large files.

createArtifactFiles with `uploadPartsInput` (part number + hex md5 of each part) opens an upload;
each part is PUT to its own URL and answered with its hex md5 as the ETag; completing the upload
with the parts' ETags joins them in order, checks the whole file's md5 against the one announced,
and stores it as one blob. Parts of an upload whose artifact is deleted go with it.
"""

from __future__ import annotations

import hashlib
import sqlite3
import uuid
from typing import Any

import orjson

from ..._time import now
from . import blobs
from ._common import BadInput


def open_upload(conn: sqlite3.Connection, artifact_id: int, name: str, md5: str,
                parts: list[dict[str, Any]]) -> tuple[str, list[int]]:
    """The upload id and its part numbers (1..N, each with the hex md5 its bytes must have)."""
    announced = {int(p["partNumber"]): str(p["hexMD5"]).lower() for p in parts}
    if sorted(announced) != list(range(1, len(parts) + 1)):
        raise BadInput(f"uploadPartsInput of {name!r} must number its parts 1..{len(parts)}, each once")
    upload_id = uuid.uuid4().hex
    conn.execute("INSERT INTO artifact_uploads (upload_id, artifact_id, name, md5, parts, created_at)"
                 " VALUES (?, ?, ?, ?, ?, ?)", (upload_id, artifact_id, name, md5,
                                                orjson.dumps({str(k): v for k, v in announced.items()}).decode(), now()))
    return upload_id, sorted(announced)


def _upload(conn: sqlite3.Connection, upload_id: str) -> sqlite3.Row | None:
    return conn.execute("SELECT * FROM artifact_uploads WHERE upload_id = ?", (upload_id,)).fetchone()


def part_refusal(conn: sqlite3.Connection, artifact_id: int, upload_id: str, part: int, data: bytes) -> str | None:
    """Why this part's bytes are refused, or None."""
    upload = _upload(conn, upload_id)
    if upload is None or upload["artifact_id"] != artifact_id:
        return "this multipart upload no longer exists (completed, or its artifact was deleted)"
    expected = orjson.loads(upload["parts"]).get(str(part))
    if expected != hashlib.md5(data).hexdigest():
        return f"part {part}'s bytes do not match the hex md5 announced in uploadPartsInput"
    return None


def put_part(conn: sqlite3.Connection, upload_id: str, part: int, data: bytes) -> str:
    """Stores a part; returns its ETag (hex md5, quoted as S3 quotes it)."""
    conn.execute("INSERT INTO artifact_upload_parts (upload_id, part_number, data) VALUES (?, ?, ?)"
                 " ON CONFLICT (upload_id, part_number) DO UPDATE SET data = excluded.data", (upload_id, part, data))
    return f'"{hashlib.md5(data).hexdigest()}"'


def complete(conn: sqlite3.Connection, artifact_id: int, upload_id: str, storage_path: str,
             completed: list[dict[str, Any]]) -> str:
    """completeMultipartUploadArtifact: joins the parts into the file's blob; returns its md5."""
    upload = _upload(conn, upload_id)
    if upload is None or upload["artifact_id"] != artifact_id:
        raise BadInput(f"multipart upload {upload_id!r} not found for this artifact (completed already, or never"
                       " opened by createArtifactFiles)")
    if not storage_path.endswith("/" + upload["name"]):
        raise BadInput(f"storagePath {storage_path!r} is not the one createArtifactFiles gave {upload['name']!r}")
    rows = {r["part_number"]: bytes(r["data"]) for r in conn.execute(
        "SELECT part_number, data FROM artifact_upload_parts WHERE upload_id = ?", (upload_id,))}
    announced = orjson.loads(upload["parts"])
    numbers = [int(p["partNumber"]) for p in completed]
    if numbers != list(range(1, len(announced) + 1)):
        raise BadInput(f"completedParts must list parts 1..{len(announced)} in order")
    for p in completed:
        data = rows.get(int(p["partNumber"]))
        if data is None:
            raise BadInput(f"part {p['partNumber']} was not uploaded: PUT it to its uploadUrl first")
        if str(p["hexMD5"]).strip('"').lower() != hashlib.md5(data).hexdigest():
            raise BadInput(f"part {p['partNumber']}'s ETag does not match its uploaded bytes")
    whole = b"".join(rows[n] for n in numbers)
    if blobs.md5_b64(whole) != upload["md5"]:
        raise BadInput(f"the joined parts of {upload['name']!r} do not match the file's md5 announced in"
                       " createArtifactFiles")
    md5 = blobs.put(conn, whole)
    conn.execute("DELETE FROM artifact_uploads WHERE upload_id = ?", (upload_id,))
    return md5


def drop_uploads(conn: sqlite3.Connection, artifact_id: int) -> None:
    """A committed version's files are final: uploads it left open (and their parts) go."""
    conn.execute("DELETE FROM artifact_uploads WHERE artifact_id = ?", (artifact_id,))
