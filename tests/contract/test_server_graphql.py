"""The local server's GraphQL surface: auth, protocol quirks the SDK relies on, pagination,
and bad input answered with clear GraphQL errors (never a 500, never SQL)."""

from __future__ import annotations

import json

import pytest

from tests.conftest import basic

RUNS = """query R($f: JSONString, $o: String, $first: Int, $after: String) {
  project(name: "vision", entityName: "demo") {
    runCount(filters: $f)
    runs(filters: $f, order: $o, first: $first, after: $after) {
      totalCount
      edges { cursor node { name createdAt summaryMetrics(keys: ["loss"]) config(keys: ["seed"]) } }
      pageInfo { endCursor hasNextPage }
    }
  }
}"""


def page_all(api, filters=None, order=None, first=100):
    names, after = [], None
    while True:
        data = api.ok(RUNS, {"f": json.dumps(filters or {}), "o": order, "first": first, "after": after})
        runs = data["project"]["runs"]
        names += [e["node"]["name"] for e in runs["edges"]]
        if not runs["pageInfo"]["hasNextPage"]:
            return names, data["project"]["runCount"]
        assert runs["pageInfo"]["endCursor"] == runs["edges"][-1]["cursor"]
        after = runs["pageInfo"]["endCursor"]


def test_viewer_and_server_info(api):
    data = api.ok("{ viewer { id username entity email admin flags teams { edges { node { name } } } }"
                  " serverInfo { features { name isEnabled } } }")
    assert data["viewer"]["username"] == "local" and data["viewer"]["entity"] == "local"
    assert data["viewer"]["teams"]["edges"][0]["node"]["name"] == "local"
    assert data["serverInfo"]["features"] == []


@pytest.mark.parametrize("auth", [None, basic("local-" + "x" * 40), "Bearer abc", "Basic !!!", basic("")])
def test_bad_credentials_get_401_with_graphql_errors(api, auth):
    reply = api.gql("{ viewer { id } }", auth=auth)
    assert reply.status == 401
    assert "API key" in reply.errors[0]["message"]
    assert "x" * 40 not in json.dumps(reply.body)


def test_file_stream_requires_auth(api):
    reply = api.post("/files/demo/vision/vi000001/file_stream", {}, auth=None)
    assert reply.status == 401


def test_operation_name_empty_means_none_and_undeclared_variables_are_ignored(api):
    reply = api.gql("query Q($n: String!) { project(name: $n, entityName: \"demo\") { name } }",
                    {"n": "vision", "entity": "x", "project": "y"}, extra={"operationName": ""})
    assert reply.status == 200 and reply.data == {"project": {"name": "vision"}}


def test_introspection_and_typenames(api):
    data = api.ok('{ __type(name: "Run") { name fields { name } } project(name: "vision", entityName: "demo")'
                  ' { __typename runs(first: 1) { __typename pageInfo { __typename } edges { node { __typename } } } } }')
    assert data["__type"]["name"] == "Run" and {"name", "summaryMetrics"} <= {f["name"] for f in data["__type"]["fields"]}
    project = data["project"]
    assert project["__typename"] == "Project"
    assert project["runs"]["__typename"] == "RunConnection"
    assert project["runs"]["pageInfo"]["__typename"] == "PageInfo"
    assert project["runs"]["edges"][0]["node"]["__typename"] == "Run"


def test_otel_probe_is_404(api):
    assert api.post("/sdk/otel/v1/metrics", {}, auth=None).status == 404


def test_models_lists_projects_with_pages(api):
    data = api.ok('{ models(entityName: "demo", first: 2) { edges { node { name entityName internalId } cursor }'
                  ' pageInfo { hasNextPage endCursor } } }')
    first = data["models"]
    assert [e["node"]["name"] for e in first["edges"]] == ["vision", "nlp"] and first["pageInfo"]["hasNextPage"]
    rest = api.ok('query M($a: String) { models(entityName: "demo", first: 2, after: $a) { edges { node { name } } } }',
                  {"a": first["pageInfo"]["endCursor"]})
    assert [e["node"]["name"] for e in rest["models"]["edges"]] == ["rl"]


def test_unknown_project_is_null(api):
    assert api.ok('{ project(name: "nope", entityName: "demo") { name } }') == {"project": None}


def test_pagination_covers_every_run_once_in_order(api):
    names, count = page_all(api, order="+created_at", first=173)
    assert count == 1200 and len(names) == 1200 and len(set(names)) == 1200
    assert names == sorted(names)  # demo ids grow with creation time


def test_pagination_with_ties_is_stable(api):
    # seed takes 7 values: ~170 runs share each; the id tie-breaker keeps paging exact.
    names, _ = page_all(api, order="-config.seed.value", first=37)
    assert len(names) == 1200 and len(set(names)) == 1200
    data = api.ok('{ project(name: "vision", entityName: "demo") { runs(order: "-config.seed.value", first: 1000)'
                  ' { edges { node { name config(keys: ["seed"]) } } } } }')
    seeds = [json.loads(e["node"]["config"])["seed"]["value"] for e in data["project"]["runs"]["edges"]]
    assert seeds == sorted(seeds, reverse=True)
    assert names[:1000] == [e["node"]["name"] for e in data["project"]["runs"]["edges"]]


def test_projection_returns_only_the_asked_keys(api):
    data = api.ok('{ project(name: "vision", entityName: "demo") { run(name: "vi000001") {'
                  ' config(keys: ["lr", "nope"]) summaryMetrics(keys: ["val/acc", "best"]) all: config } } }')
    run = data["project"]["run"]
    assert set(json.loads(run["config"])) == {"lr"}
    assert set(json.loads(run["summaryMetrics"])) == {"val/acc", "best"}
    assert "optimizer" in json.loads(run["all"])


BAD_INPUT = [
    ('{ project(name: "vision", entityName: "demo") { runs(filters: "{not json") { totalCount } } }', "not valid JSON"),
    ('{ project(name: "vision", entityName: "demo") { runs(filters: "[1]") { totalCount } } }', "object"),
    ('{ project(name: "vision", entityName: "demo") { runs(filters: "{\\"state\\": {\\"$like\\": 1}}") { totalCount } } }', "$like"),
    # an unknown field matches nothing (as on W&B), but its operators are still checked
    ('{ project(name: "vision", entityName: "demo") { runs(filters: "{\\"colour\\": {\\"$near\\": 1}}") { totalCount } } }', "colour"),
    ('{ project(name: "vision", entityName: "demo") { runs(filters: "{\\"summary_metrics\\": 1}") { totalCount } } }', "summary_metrics"),
    ('{ project(name: "vision", entityName: "demo") { runs(filters: "{\\"name\\": {\\"$regex\\": \\"(\\"}}") { totalCount } } }', "regex"),
    ('{ project(name: "vision", entityName: "demo") { runs(filters: "{\\"state\\": {\\"$in\\": \\"x\\"}}") { totalCount } } }', "$in"),
    ('{ project(name: "vision", entityName: "demo") { runs(filters: "{\\"createdAt\\": {\\"$gt\\": 1700000000.5}}") { totalCount } } }', "ISO"),
    ('{ project(name: "vision", entityName: "demo") { runs(first: 100000) { totalCount } } }', "1000"),
    ('{ project(name: "vision", entityName: "demo") { runs(first: -1) { totalCount } } }', "first"),
    ('{ project(name: "vision", entityName: "demo") { runs(after: "Zm9yZ2Vk") { totalCount } } }', "cursor"),
    ('{ project(name: "vision", entityName: "demo") { runs(order: "-colour") { totalCount } } }', "colour"),
    ('{ project(name: "vision", entityName: "demo") { runCount(filters: "{\\"$and\\": {}}") } }', "$and"),
    ('{ project(name: "vision", entityName: "demo") { run(name: "vi000001") { sampledHistory(specs: ["nope"]) } } }', "spec"),
    ('{ models(after: "garbage") { edges { cursor } } }', "cursor"),
    ('mutation { deleteRun(input: {id: "bm90LWEtcnVu"}) { clientMutationId } }', "Run id"),
    ('mutation { deleteRuns(input: {entityName: "nobody", projectName: "x", filters: "{}"}) { errors } }', "entity 'nobody' not found"),
    ('mutation { undeleteRuns(input: {entityName: "demo", projectName: "nope", filters: "{}"}) { clientMutationId } }', "project demo/nope not found"),
    ('mutation { upsertBucket(input: {modelName: "x", config: "{oops"}) { inserted } }', "config is not valid JSON"),
    ('mutation { upsertBucket(input: {id: "UnVuOnYxOm5vcGU6dmlzaW9uOmRlbW8="}) { inserted } }', "not found"),
    ('{ project(name: "vision", entityName: "demo") { run(name: "vi000001") { history(minStep: "x") } } }', "Int64"),
]


@pytest.mark.parametrize("query,phrase", BAD_INPUT)
def test_bad_input_is_a_clear_graphql_error(api, query, phrase):
    reply = api.gql(query)
    assert reply.status in (200, 400), reply.body
    messages = " | ".join(e["message"] for e in reply.errors)
    assert phrase in messages, messages
    for leak in ("SELECT", "json_extract", "Traceback", "sqlite", "internal server error"):
        assert leak not in messages


def test_malformed_requests_are_400_not_500(api):
    assert api.post("/graphql", None, raw=b"{nope").status == 400
    assert api.post("/graphql", [{"query": "{ viewer { id } }"}]).status == 400
    assert api.post("/graphql", {"query": "{ viewer { id } }", "variables": [1]}).status == 400
    reply = api.post("/graphql", {"query": "{ viewer { "})
    assert reply.status == 400 and "Syntax Error" in reply.errors[0]["message"]
