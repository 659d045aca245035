"""W&B's custom scalars as W&B clients send and expect them."""

from __future__ import annotations

from typing import Any, Callable

import orjson
from graphql import GraphQLScalarType, GraphQLSchema, ValueNode
from graphql.utilities import value_from_ast_untyped


def _json_string(value: Any) -> str:
    # W&B sends JSONString values as strings; a raw object is accepted and re-encoded.
    return value if isinstance(value, str) else orjson.dumps(value).decode()


def _int64(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ValueError(f"Int64 cannot represent {value!r}")
    return int(value)


def _identity(value: Any) -> Any:
    return value


def _literal(parse: Callable[[Any], Any]) -> Callable[..., Any]:
    def parse_literal(node: ValueNode, variables: dict[str, Any] | None = None) -> Any:
        return parse(value_from_ast_untyped(node, variables))

    return parse_literal


_SCALARS: dict[str, dict[str, Callable[..., Any]]] = {
    "JSONString": {"serialize": _json_string, "parse_value": _json_string, "parse_literal": _literal(_json_string)},
    "JSON": {"serialize": _identity, "parse_value": _identity, "parse_literal": _literal(_identity)},
    "DateTime": {"serialize": _identity, "parse_value": _identity},
    "Int64": {"serialize": int, "parse_value": _int64, "parse_literal": _literal(_int64)},
}


def install(schema: GraphQLSchema) -> None:
    for name, functions in _SCALARS.items():
        scalar = schema.type_map[name]
        assert isinstance(scalar, GraphQLScalarType), name
        # graphql-core keeps a scalar's functions as instance attributes (its constructor sets
        # them); build_schema leaves the defaults, so they are replaced here.
        for attribute, function in functions.items():
            setattr(scalar, attribute, function)
