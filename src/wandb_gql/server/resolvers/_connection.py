"""Relay connections: edges, pageInfo, and the two kinds of cursor the server hands out.

Opaque cursors ("Kind:<id>" in base64) page by row id, where the order is fixed (projects,
files). Keyset cursors carry a run's position in the order asked for (rank, value, id) and
are signed, so a client cannot hand back a position the server never issued, nor reuse one
with another order. Edge cursors are made only when a client selects them: signing one per
row costs, and most clients read only endCursor.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any, Callable, Sequence

import orjson

from ..store import BadInput, Position

_SIG = 12  # bytes of HMAC-SHA256 kept in a keyset cursor


def connection(rows: Sequence[Any], *, more: bool, after: str | None, cursor: Callable[[Any], str],
               node: Callable[[Any], Any] | None = None, **extra: Any) -> dict[str, Any]:
    """A connection over one page of `rows`; `cursor(row)` is called only for cursors asked for."""
    return {
        "edges": [{"node": row if node is None else node(row), "_row": row, "_cursor": cursor} for row in rows],
        "pageInfo": {"hasNextPage": more, "hasPreviousPage": after is not None,
                     "startCursor": cursor(rows[0]) if rows else None,
                     "endCursor": cursor(rows[-1]) if rows else None},
        **extra,
    }


def edge_cursor(edge: dict[str, Any], _info: Any) -> str:
    """The `cursor` field of every edge `connection()` builds."""
    cursor: str = edge["_cursor"](edge["_row"])
    return cursor


def opaque(kind: str, row_id: int) -> str:
    return base64.urlsafe_b64encode(f"{kind}:{row_id}".encode()).decode()


def from_opaque(kind: str, cursor: str | None) -> int:
    """The row id an opaque cursor points after (0: from the start)."""
    if not cursor:
        return 0
    try:
        head, _, value = base64.urlsafe_b64decode(cursor.encode()).decode().partition(":")
        if head == kind:
            return int(value)
    except Exception:
        pass
    raise BadInput("invalid cursor: pass back an endCursor exactly as returned")


def keyset(secret: str, order: str, position: Position) -> str:
    body = orjson.dumps([order, *position])
    return base64.urlsafe_b64encode(_sign(secret, body) + body).decode()


def from_keyset(secret: str, cursor: str, order: str) -> Position:
    """The position a keyset cursor points after; forged cursors and other orders' are refused."""
    try:
        raw = base64.urlsafe_b64decode(cursor.encode())
        sig, body = raw[:_SIG], raw[_SIG:]
        ok = hmac.compare_digest(sig, _sign(secret, body))
        decoded: Any = orjson.loads(body) if ok else (None, None, None, None)
        cur_order, rank, value, row_id = decoded
    except Exception:
        ok = False
    if not ok:
        raise BadInput("invalid cursor: pass back an endCursor or edge cursor exactly as returned")
    if cur_order != order:
        raise BadInput("cursor was issued for a different order; restart paging without after")
    return rank, value, row_id


def _sign(secret: str, body: bytes) -> bytes:
    return hmac.new(secret.encode(), body, hashlib.sha256).digest()[:_SIG]
