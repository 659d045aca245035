"""Raw ``--filters`` JSON, checked before anything is sent.

W&B answers a malformed filter with a vague server error (or silently matches nothing), so
this catches what can be caught locally, naming the path of the culprit inside the JSON.
"""

from __future__ import annotations

import math
from typing import Any

from ..errors import FilterError
from .regex import regex_error

__all__ = ["validate_filters"]

LOGICAL = ("$and", "$or", "$nor")
FIELD_OPS = ("$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$exists", "$regex")
_OP_LIST = ", ".join(LOGICAL + FIELD_OPS)
MAX_DEPTH = 20  # what the local server accepts; deeper is never needed and W&B's parser has limits too


def validate_filters(filters: dict[str, Any] | str) -> dict[str, Any]:
    """Check raw ``--filters`` JSON (text or dict) before anything is sent; return the dict.

    Known operators only, ``$and``/``$or``/``$nor`` take non-empty lists of objects, ``$in``/
    ``$nin`` lists, ``$exists`` a boolean, ``$regex`` a valid pattern, numbers are finite.
    """
    if isinstance(filters, str):
        import json  # lazily: the CLI imports this module for --help too

        text = filters
        try:
            filters = json.loads(text)
        except RecursionError:
            raise FilterError(f"filter JSON nests more than {MAX_DEPTH} levels deep",
                              hint="flatten it: $and/$or take lists of any length") from None
        except json.JSONDecodeError as e:
            one_line = "\n" not in text
            raise FilterError(
                f"malformed filter JSON: {e.msg} at line {e.lineno} column {e.colno}",
                expression=text if one_line else None, position=e.pos if one_line else None,
            ) from None
    if not isinstance(filters, dict):
        raise FilterError(f"filter JSON must be an object, found {short(filters)}")
    _check_node(filters, "filters", 0)
    return filters


def dumps(value: Any) -> str:
    import json

    return json.dumps(value)


def short(value: Any) -> str:
    """`value` as JSON, cut to fit in a one-line message."""
    try:
        text = dumps(value)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _fail(path: str, msg: str) -> FilterError:
    return FilterError(f"{path}: {msg}")


def _check_node(node: dict[str, Any], path: str, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise FilterError(f"filters nest $and/$or/$nor more than {MAX_DEPTH} levels deep",
                          hint="flatten it: $and/$or take lists of any length")
    for key, arg in node.items():
        here = f"{path}[{dumps(key)}]"
        if not isinstance(key, str) or key == "":
            raise _fail(here, "expected a field name or an operator, found an empty key")
        if key in LOGICAL:
            if not isinstance(arg, list) or not arg or not all(isinstance(x, dict) for x in arg):
                raise _fail(here, f"'{key}' needs a non-empty list of filter objects, found {short(arg)}")
            for i, item in enumerate(arg):
                _check_node(item, f"{here}[{i}]", depth + 1)
        elif key in FIELD_OPS:
            raise _fail(here, f"'{key}' needs a field: expected {{\"<field>\": {{\"{key}\": ...}}}}")
        elif key.startswith("$"):
            raise _fail(here, f"unknown operator '{key}': expected one of {_OP_LIST}")
        elif isinstance(arg, dict) and any(str(k).startswith("$") for k in arg):
            _check_condition(arg, here)
        else:
            _check_finite(arg, here)


def _check_condition(cond: dict[str, Any], path: str) -> None:
    for op, arg in cond.items():
        here = f"{path}[{dumps(op)}]"
        if not str(op).startswith("$"):
            raise _fail(here, "cannot mix operators and plain keys in one condition")
        if op in LOGICAL:
            raise _fail(here, f"'{op}' combines whole filters and is not valid inside a field's "
                              "condition: move it to the top level")
        if op not in FIELD_OPS:
            raise _fail(here, f"unknown operator '{op}': expected one of {_OP_LIST}")
        _check_finite(arg, here)
        if op in ("$in", "$nin") and not isinstance(arg, list):
            raise _fail(here, f"'{op}' needs a list, found {short(arg)}")
        if op == "$exists" and not isinstance(arg, bool):
            raise _fail(here, f"'$exists' needs true or false, found {short(arg)}")
        if op == "$regex":
            if not isinstance(arg, str):
                raise _fail(here, f"'$regex' needs a string, found {short(arg)}")
            reason = regex_error(arg)
            if reason is not None:
                raise _fail(here, f"invalid regex {dumps(arg)}: {reason} (W&B reads RE2 syntax: no "
                                  "backreferences or lookarounds)")


def _check_finite(value: Any, path: str) -> None:
    """NaN and Infinity are not JSON: W&B would reject them (orjson would send null)."""
    if isinstance(value, float) and not math.isfinite(value):
        raise _fail(path, f"expected a finite number, found {value}")
    if isinstance(value, list):
        for item in value:
            _check_finite(item, path)
    elif isinstance(value, dict):
        for item in value.values():
            _check_finite(item, path)
