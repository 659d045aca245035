"""The server's fast executor answers byte for byte what stock graphql-core answers."""

from __future__ import annotations

import orjson
import pytest
from graphql import execute

from wandb_gql import documents
from wandb_gql.server.db import transaction
from wandb_gql.server.executor import executor_options
from wandb_gql.server.resolvers import Context

RUN_FIELDS = """id tags name displayName sweepName state config group jobType commit readOnly createdAt
heartbeatAt description notes systemMetrics summaryMetrics historyLineCount user { name username } historyKeys"""

CASES = [
    (documents.document("ProjectRuns"), {"entity": "demo", "project": "vision", "filters": "{}", "order": "+created_at",
                                         "withConfig": False, "configKeys": None, "withSummary": True,
                                         "summaryKeys": ["loss", "val/acc"], "first": 300}),
    (documents.document("ProjectRuns"), {"entity": "demo", "project": "nlp", "filters": '{"state": "crashed"}',
                                         "order": "-summary_metrics.loss", "withConfig": True, "configKeys": None,
                                         "withSummary": True, "summaryKeys": None, "first": 100}),
    (documents.document("ProjectRun"), {"entity": "demo", "project": "rl", "name": "rl000007"}),
    # the SDK's Runs query, full fragment, with aliases, fragments and directives
    ("query Runs($project: String!, $entity: String!, $cursor: String, $perPage: Int = 50, $order: String,"
     " $filters: JSONString) { project(name: $project, entityName: $entity) { internalId runCount(filters: $filters)"
     " readOnly runs(filters: $filters, after: $cursor, first: $perPage, order: $order) { edges { node { projectId"
     " ...RunFragment } cursor } pageInfo { endCursor hasNextPage } } } }"
     f" fragment RunFragment on Run {{ {RUN_FIELDS} }}", {"project": "rl", "entity": "demo", "perPage": 120}),
    ('query { a: project(name: "rl", entityName: "demo") { runs(first: 3) { edges { node { n: name __typename'
     ' cfg: config(keys: ["lr"]) @skip(if: true) sm: summaryMetrics(keys: ["loss"]) @include(if: true)'
     ' h: history(samples: 3) s: sampledHistory(specs: ["{\\"keys\\": [\\"loss\\"]}"]) } } } } }', {}),
    # errors and nulls must come out the same
    ('{ project(name: "rl", entityName: "demo") { runs(first: 5000) { totalCount } } }', {}),
    ('{ project(name: "rl", entityName: "demo") { run(name: "rl000001") { name sampledHistory(specs: ["nope"]) } } }', {}),
    ('{ project(name: "rl", entityName: "demo") { run(name: "rl000001") { name history(minStep: 2, maxStep: 4) } } }', {}),
    ('{ project(name: "nope", entityName: "demo") { id } viewer { username entity } serverInfo { features { name } } }', {}),
    ('{ __schema { queryType { name } } __type(name: "Run") { fields { name } } }', {}),
    ('{ models(entityName: "demo", first: 2) { edges { node { name createdAt entity { name } } } } }', {}),
    # a non-null field failing inside nested objects nulls the nearest nullable parent, once
    ('{ a: project(name: "vision", entityName: "demo") { name runCount(filters: "{\\"summary.x\\": 1}") }'
     ' b: project(name: "rl", entityName: "demo") { name runCount } }', {}),
    ('{ project(name: "rl", entityName: "demo") { runs(first: 2) { edges { c: cursor node { n: name } }'
     ' edges { node { state user { username } } } pageInfo { hasNextPage } } } }', {}),
    ('{ viewer { teams { edges { node { name projects(first: 1) { edges { node { name } } } } } } } }', {}),
    ('query Q($f: JSONString) { project(name: "rl", entityName: "demo") { runs(filters: $f, first: 2) {'
     ' totalCount edges { node { ... on Run { name tags } ...F } } } } } fragment F on Run { state }',
     {"f": "{\"$or\": 3}"}),
]


@pytest.mark.parametrize("text,variables", CASES)
def test_fast_executor_matches_stock_graphql_core(server, text, variables):
    fast = executor_options()
    assert fast, "graphql-core 3.3 is pinned: the fast path should be on"
    served = server.server
    prepared = served.document(text)
    doc = prepared.doc
    assert doc is not None and not prepared.errors, prepared.errors
    bodies = []
    for extra in ({}, fast):
        ctx = Context(served.store, served.store.default_user, "http://x")
        with transaction(served.store.conn):
            result = execute(served.schema, doc, context_value=ctx, variable_values=variables, **extra)
        bodies.append(orjson.dumps({"data": result.data, "errors": [e.formatted for e in result.errors or []]}))
    assert bodies[0] == bodies[1]


def test_a_passed_deadline_stops_execution_without_raising(server):
    """Past the deadline the fast path stops at the next object and never redoes a failed
    resolver; nothing escapes graphql-core, root fields included."""
    from wandb_gql.server.db import Deadline, time_limit
    from wandb_gql.server.executor import DEADLINE

    served = server.server
    prepared = served.document(CASES[0][0])
    deadline = Deadline(0)
    ctx = Context(served.store, served.store.default_user, "http://x")
    with transaction(served.store.conn), time_limit(served.store.conn, deadline):
        token = DEADLINE.set(deadline)
        try:
            result = execute(served.schema, prepared.doc, context_value=ctx, variable_values=CASES[0][1],
                             **executor_options())
        finally:
            DEADLINE.reset(token)
    assert deadline.hit and result.errors and result.data is None
