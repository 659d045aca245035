"""Storage URL tokens: what an unauthenticated PUT/GET of /storage/<token> may touch, until when.

The SDK sends no credentials to the upload and download URLs the server hands out, so the URL
is the credential, like a presigned URL: a token names one object (a run file, an artifact's
file by its md5, an artifact's manifest), the run or artifact it belongs to, and an expiry, and
is signed with the server's secret. The handler re-checks that the object still exists, so a URL
of a deleted run or artifact stops working before it expires. Row ids come back after a purge
(SQLite reuses the highest rowid), so a token also carries a `bound` digest of what the id
stood for when the URL was made (the run's name and creation time and the file's name; the
artifact's collection and creation time): an old URL never reaches a newer object with its id.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from dataclasses import dataclass

import orjson

DEFAULT_TTL = 3600.0  # seconds a URL stays valid

RUN_FILE, ARTIFACT_FILE, MANIFEST, PART = "r", "f", "m", "p"


@dataclass(frozen=True)
class Grant:
    kind: str      # RUN_FILE, ARTIFACT_FILE, MANIFEST or PART (one part of a multipart upload)
    owner: int     # run id (RUN_FILE) or artifact id
    target: str    # file id (RUN_FILE), md5 (ARTIFACT_FILE), "" (MANIFEST), "<upload id>:<part>" (PART)
    expires: float
    bound: str     # binding(...) of the owner (and file) the URL was made for


def binding(*identity: object) -> str:
    """A short digest of what an id stood for when a URL was made."""
    return hashlib.sha256(orjson.dumps([str(part) for part in identity])).hexdigest()[:16]


def run_file_binding(run_name: str, run_created_at: str, file_name: str) -> str:
    return binding("run-file", run_name, run_created_at, file_name)


def artifact_binding(collection_id: int, created_at: str) -> str:
    return binding("artifact", collection_id, created_at)


def mint(secret: str, kind: str, owner: int, target: str | int = "", *, bound: str = "", ttl: float = DEFAULT_TTL,
         now: float | None = None) -> str:
    expires = int((time.time() if now is None else now) + ttl)
    body = base64.urlsafe_b64encode(orjson.dumps([kind, owner, str(target), expires, bound])).decode().rstrip("=")
    return f"{body}.{_sign(secret, body)}"


def check(secret: str, token: str) -> Grant | str:
    """The grant a token carries, or why it is refused."""
    body, _, sig = token.partition(".")
    if not body or not hmac.compare_digest(sig, _sign(secret, body)):
        return "unknown or forged storage token"
    try:
        kind, owner, target, expires, bound = orjson.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    except (ValueError, TypeError):
        return "unknown or forged storage token"
    if expires < time.time():
        return "storage URL expired: ask the API for a fresh one"
    return Grant(str(kind), int(owner), str(target), float(expires), str(bound))


def _sign(secret: str, body: str) -> str:
    return hmac.new(secret.encode(), f"storage:{body}".encode(), hashlib.sha256).hexdigest()[:32]
