"""Filters on fields W&B does not know match nothing, as on W&B, instead of an error; a bad
operator is still refused by name, and a bulk mutation with such a filter touches no run."""

from __future__ import annotations

import json

import pytest

COUNT = 'query($f: JSONString) { project(name: "vision", entityName: "demo") { runCount(filters: $f) } }'


@pytest.mark.parametrize("filters", [{"summary.acc": {"$gt": 0}}, {"foo": 1}, {"State": "finished"},
                                     {"$and": [{"state": "finished"}, {"foo": {"$exists": True}}]}])
def test_unknown_fields_match_nothing(api, filters) -> None:
    assert api.ok(COUNT, {"f": json.dumps(filters)})["project"]["runCount"] == 0


def test_unknown_field_in_or_leaves_the_rest(api) -> None:
    finished = api.ok(COUNT, {"f": json.dumps({"state": "finished"})})["project"]["runCount"]
    both = api.ok(COUNT, {"f": json.dumps({"$or": [{"foo": 1}, {"state": "finished"}]})})["project"]["runCount"]
    assert both == finished > 0


def test_bad_operator_on_unknown_field_is_still_an_error(api) -> None:
    reply = api.gql(COUNT, {"f": json.dumps({"foo": {"$near": 1}})})
    assert reply.status == 200 and 'unknown operator "$near"' in reply.errors[0]["message"]


def test_delete_with_unknown_field_deletes_nothing(fresh_api) -> None:
    api = fresh_api
    entity = api.ok("{ viewer { entity } }")["viewer"]["entity"]
    api.ok('mutation { upsertBucket(input: {name: "keep", modelName: "p"}) { bucket { id } } }')
    api.ok('mutation($f: JSONString!, $e: String!) { deleteRuns(input: {entityName: $e, projectName: "p", filters: $f})'
           ' { clientMutationId } }', {"f": json.dumps({"summary.loss": {"$lt": 1}}), "e": entity})
    left = api.ok('query($e: String!) { project(name: "p", entityName: $e) { runCount } }',
                  {"e": entity})["project"]["runCount"]
    assert left == 1
