"""A mutation field that fails leaves nothing half-written; the other fields of the request keep
what they wrote (GraphQL answers each field on its own)."""

from __future__ import annotations

import pytest

from tests.conftest import Caller

UPSERT = ('mutation($p: String, $c: JSONString) { upsertBucket(input: {entityName: "local", modelName: $p, '
          'name: "r", config: $c}) { inserted } }')


@pytest.mark.parametrize("config", ["{not json", "[1, 2]"])
def test_a_refused_upsert_leaves_no_project_behind(fresh_server, config):
    api = Caller(fresh_server)
    reply = api.gql(UPSERT, {"p": "half", "c": config})
    assert reply.status == 200 and reply.errors and reply.data == {"upsertBucket": None}, reply.body
    # upsertBucket makes the project before it reads the config: that write is undone too
    assert api.ok('{ project(name: "half", entityName: "local") { name } }') == {"project": None}


def test_the_other_fields_of_a_request_keep_their_writes(fresh_server):
    api = Caller(fresh_server)
    reply = api.gql('mutation { good: upsertBucket(input: {entityName: "local", modelName: "kept", name: "a"}) '
                    '{ inserted } bad: upsertBucket(input: {entityName: "local", modelName: "gone", name: "b", '
                    'config: "{"}) { inserted } }')
    assert reply.data == {"good": {"inserted": True}, "bad": None} and len(reply.errors) == 1, reply.body
    names = api.ok('{ a: project(name: "kept", entityName: "local") { name } '
                   'b: project(name: "gone", entityName: "local") { name } }')
    assert names == {"a": {"name": "kept"}, "b": None}
