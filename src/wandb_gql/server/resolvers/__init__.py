"""Resolvers: schema.graphql's fields mapped onto the Store, one module per GraphQL type.

Resolver names follow the schema's field names. `executable_schema()` is the one place that
wires them; every Run field must have a resolver (executor.py's fast path calls them directly).
"""

from __future__ import annotations

from graphql import GraphQLObjectType, GraphQLSchema, build_schema

from ... import documents
from . import _connection, scalars
from ._context import Context
from .entity import ENTITY_FIELDS
from .mutation import MUTATION_FIELDS
from .project import PROJECT_FIELDS, RUN_CONNECTION_FIELDS
from .query import QUERY_FIELDS
from .run import RUN_FIELDS

__all__ = ["Context", "executable_schema"]

# Edge types whose edges _connection.connection() builds.
_EDGES = ("ProjectEdge", "RunEdge", "FileEdge")


def executable_schema() -> GraphQLSchema:
    schema = build_schema(documents.schema_text())

    def fields(type_name: str) -> dict:
        found = schema.type_map[type_name]
        assert isinstance(found, GraphQLObjectType), type_name
        return found.fields

    for type_name, resolvers in (("Query", QUERY_FIELDS), ("Mutation", MUTATION_FIELDS),
                                 ("Project", PROJECT_FIELDS), ("Entity", ENTITY_FIELDS),
                                 ("RunConnection", RUN_CONNECTION_FIELDS), ("Run", RUN_FIELDS)):
        for name, resolve in resolvers.items():
            fields(type_name)[name].resolve = resolve
    for edge in _EDGES:
        fields(edge)["cursor"].resolve = _connection.edge_cursor
    missing = set(fields("Run")) - set(RUN_FIELDS)
    assert not missing, f"Run fields without a resolver: {missing}"
    scalars.install(schema)
    return schema
