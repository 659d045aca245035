"""Resolvers: schema.graphql's fields mapped onto the Store, one module per GraphQL type.

Resolver names follow the schema's field names. `executable_schema()` is the one place that
wires them; every Run field must have a resolver (executor.py's fast path calls them directly).
"""

from __future__ import annotations

import functools
from typing import Any

from graphql import GraphQLInterfaceType, GraphQLObjectType, GraphQLSchema, GraphQLUnionType, build_schema

from ... import documents
from ..db import savepoint
from . import _connection, scalars
from ._context import Context
from .artifact import ALIAS_FIELDS, ARTIFACT_FIELDS, MANIFEST_FIELDS, MEMBERSHIP_FIELDS
from .artifact_collection import COLLECTION_FIELDS, PORTFOLIO_FIELDS, PROJECT_ARTIFACT_FIELDS, TYPE_FIELDS
from .entity import ENTITY_FIELDS
from .mutation import MUTATION_FIELDS
from .project import PROJECT_FIELDS, RUN_CONNECTION_FIELDS
from .query import QUERY_FIELDS
from .run import RUN_FIELDS

__all__ = ["Context", "executable_schema"]

# Edge types whose edges _connection.connection() builds.
_EDGES = ("ProjectEdge", "RunEdge", "FileEdge", "ArtifactEdge", "InputArtifactEdge", "VersionedArtifactEdge",
          "ArtifactTypeEdge", "ArtifactCollectionEdge", "ArtifactCollectionMembershipEdge", "ArtifactAliasEdge",
          "TagEdge", "SweepEdge", "AgentEdge", "UserEdge")


def executable_schema() -> GraphQLSchema:
    schema = build_schema(documents.schema_text())

    def fields(type_name: str) -> dict:
        found = schema.type_map[type_name]
        assert isinstance(found, GraphQLObjectType), type_name
        return found.fields

    for type_name, resolvers in (("Query", QUERY_FIELDS), ("Mutation", MUTATION_FIELDS),
                                 ("Project", PROJECT_FIELDS), ("Entity", ENTITY_FIELDS),
                                 ("RunConnection", RUN_CONNECTION_FIELDS), ("Run", RUN_FIELDS),
                                 ("Project", PROJECT_ARTIFACT_FIELDS), ("Artifact", ARTIFACT_FIELDS),
                                 ("ArtifactAlias", ALIAS_FIELDS), ("ArtifactManifest", MANIFEST_FIELDS),
                                 ("ArtifactCollectionMembership", MEMBERSHIP_FIELDS),
                                 ("ArtifactSequence", COLLECTION_FIELDS), ("ArtifactPortfolio", PORTFOLIO_FIELDS),
                                 ("ArtifactType", TYPE_FIELDS)):
        for name, resolve in resolvers.items():
            fields(type_name)[name].resolve = _atomic(resolve) if type_name == "Mutation" else resolve
    for edge in _EDGES:
        fields(edge)["cursor"].resolve = _connection.edge_cursor
    # A producer is always a run; a collection is a sequence unless it is a portfolio (links.py).
    initiator = schema.type_map["Initiator"]
    assert isinstance(initiator, (GraphQLInterfaceType, GraphQLUnionType))
    initiator.resolve_type = functools.partial(_always, "Run")
    collection = schema.type_map["ArtifactCollection"]
    assert isinstance(collection, GraphQLInterfaceType)
    collection.resolve_type = _collection_type
    for type_name, resolvers in (("Artifact", ARTIFACT_FIELDS), ("ArtifactSequence", COLLECTION_FIELDS)):
        unresolved = set(fields(type_name)) - set(resolvers)
        assert not unresolved, f"{type_name} fields without a resolver: {unresolved}"
    missing = set(fields("Run")) - set(RUN_FIELDS)
    assert not missing, f"Run fields without a resolver: {missing}"
    scalars.install(schema)
    return schema


def _atomic(resolve: Any) -> Any:
    """A mutation field that fails leaves nothing half-written: its writes go in a savepoint of
    the request's transaction, rolled back when it raises (other fields keep theirs, as GraphQL
    answers each field on its own)."""

    @functools.wraps(resolve)
    def run(root: Any, info: Any, **args: Any) -> Any:
        with savepoint(info.context.store.conn):
            return resolve(root, info, **args)

    return run


def _always(type_name: str, *_args: Any) -> str:
    return type_name


def _collection_type(row: Any, *_args: Any) -> str:
    return "ArtifactPortfolio" if row["kind"] == "PORTFOLIO" else "ArtifactSequence"
