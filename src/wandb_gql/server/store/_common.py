"""What every store module shares: the client-mistake exception, W&B's ids, page sizes, JSON input."""

from __future__ import annotations

import base64
from typing import Any

import orjson

from ..jsonutil import loads_lenient

MAX_PAGE = 1000
DEFAULT_PAGE = 50


class BadInput(Exception):
    """A client mistake; its message is shown to the client as a GraphQL error."""


def storage_id(kind: str, *parts: str) -> str:
    return base64.b64encode(":".join((kind, "v1", *parts)).encode()).decode()


def decode_storage_id(value: str, kind: str) -> list[str]:
    try:
        text = base64.b64decode(value.encode(), validate=True).decode()
    except Exception:
        raise BadInput(f"invalid {kind} id {value!r}: expected a base64 {kind} id") from None
    head, _, rest = text.partition(":v1:")
    if head != kind or not rest:
        raise BadInput(f"invalid {kind} id {value!r}: expected a base64 {kind} id")
    return rest.split(":")


def page_size(first: int | None) -> int:
    """A connection's `first`, defaulted and capped; the cap is stated when exceeded."""
    first = DEFAULT_PAGE if first is None else first
    if first < 0 or first > MAX_PAGE:
        raise BadInput(f"first must be between 0 and {MAX_PAGE} (got {first}); page with after")
    return first


def json_object_text(value: Any, what: str) -> str:
    """A JSONString argument as canonical JSON object text; bad JSON is the client's error."""
    if isinstance(value, str):
        try:
            value = loads_lenient(value)
        except ValueError:
            raise BadInput(f"{what} is not valid JSON; send a JSON object encoded as a string") from None
    if not isinstance(value, dict):
        raise BadInput(f"{what} must be a JSON object")
    return orjson.dumps(value).decode()
