"""Storage URL tokens: what an unauthenticated PUT/GET of /storage/<token> may touch, until when.

The SDK sends no credentials to the upload and download URLs the server hands out, so the URL
is the credential, like a presigned URL: a token names one object (a run file, an artifact's
file by its md5, an artifact's manifest), the run or artifact it belongs to, and an expiry, and
is signed with the server's secret. The handler re-checks that the object still exists, so a URL
of a deleted run or artifact stops working before it expires.
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


def mint(secret: str, kind: str, owner: int, target: str | int = "", *, ttl: float = DEFAULT_TTL,
         now: float | None = None) -> str:
    expires = int((time.time() if now is None else now) + ttl)
    body = base64.urlsafe_b64encode(orjson.dumps([kind, owner, str(target), expires])).decode().rstrip("=")
    return f"{body}.{_sign(secret, body)}"


def check(secret: str, token: str) -> Grant | str:
    """The grant a token carries, or why it is refused."""
    body, _, sig = token.partition(".")
    if not body or not hmac.compare_digest(sig, _sign(secret, body)):
        return "unknown or forged storage token"
    try:
        kind, owner, target, expires = orjson.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    except (ValueError, TypeError):
        return "unknown or forged storage token"
    if expires < time.time():
        return "storage URL expired: ask the API for a fresh one"
    return Grant(str(kind), int(owner), str(target), float(expires))


def _sign(secret: str, body: str) -> str:
    return hmac.new(secret.encode(), f"storage:{body}".encode(), hashlib.sha256).hexdigest()[:32]
