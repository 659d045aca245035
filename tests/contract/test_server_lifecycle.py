"""A run's life on the local server beyond create/update: moveRuns between projects, the bulk
mutations the cleanup engine pins to ids (exact, idempotent, never touching other runs), the
listing of soft-deleted runs (a local extension) and the purge after retention."""

from __future__ import annotations

import json

from wandb_gql.server.store import storage_id

UPSERT = """mutation U($input: UpsertBucketInput!) { upsertBucket(input: $input) { bucket { id name } } }"""
MOVE = """mutation M($input: MoveRunsInput!) { moveRuns(input: $input) {
  clientMutationId task { id name type state progress createdAt updatedAt } } }"""
NAMES = """query N($p: String!, $e: String!) { project(name: $p, entityName: $e) {
  runCount runs(first: 1000) { edges { node { id name config tags } } } } }"""
DELETE_BY = 'mutation D($f: JSONString!) { deleteRuns(input: {entityName: "local", projectName: "p", filters: $f}) { errors } }'
UNDELETE_BY = 'mutation U($f: JSONString!) { undeleteRuns(input: {entityName: "local", projectName: "p", filters: $f}) { clientMutationId } }'


def create(api, name, project="p", entity="local", **fields):
    return api.ok(UPSERT, {"input": {"modelName": project, "entityName": entity, "name": name,
                                     **fields}})["upsertBucket"]["bucket"]


def runs_of(api, project, entity="local"):
    data = api.ok(NAMES, {"p": project, "e": entity})["project"]
    if data is None:
        return None
    return {e["node"]["name"]: e["node"] for e in data["runs"]["edges"]}


def move(api, filters, to="dest", to_entity="local", source="p"):
    return api.gql(MOVE, {"input": {"sourceEntityName": "local", "sourceProjectName": source,
                                    "destinationEntityName": to_entity, "destinationProjectName": to,
                                    "filters": json.dumps(filters), "clientMutationId": "c1"}})


def names_in(*names):
    return {"name": {"$in": list(names)}}


# -- moveRuns --------------------------------------------------------------------------------
def test_move_runs_keeps_ids_and_data_and_creates_the_destination(fresh_api):
    for n in ("a", "b", "c"):
        create(fresh_api, n, config=json.dumps({"lr": {"value": 0.1}}), tags=["t"])
    reply = move(fresh_api, names_in("a", "b"))
    assert reply.status == 200 and not reply.errors, reply.body
    payload = reply.data["moveRuns"]
    assert payload["clientMutationId"] == "c1"
    task = payload["task"]
    assert task["state"] == "FINISHED" and task["progress"] == 100 and task["type"] == "moveRuns"
    assert "moved 2 run(s) to local/dest" in task["name"]
    moved = runs_of(fresh_api, "dest")
    assert set(moved) == {"a", "b"} and set(runs_of(fresh_api, "p")) == {"c"}
    # the run id (name) stays; W&B's storage id names the project, so it is the destination's now
    assert moved["a"]["id"] == storage_id("Run", "a", "dest", "local")
    assert json.loads(moved["a"]["config"]) == {"lr": {"value": 0.1}} and moved["a"]["tags"] == ["t"]


def test_move_runs_never_overwrites_a_run_id_the_destination_holds(fresh_api):
    for n in ("a", "b", "c"):
        create(fresh_api, n, notes="source")
    create(fresh_api, "a", project="dest", notes="theirs")
    create(fresh_api, "b", project="dest")
    fresh_api.ok('mutation { deleteRuns(input: {entityName: "local", projectName: "dest",'
                 ' filters: "{\\"name\\": \\"b\\"}"}) { errors } }')  # a deleted id is still taken
    task = move(fresh_api, names_in("a", "b", "c")).data["moveRuns"]["task"]
    assert task["state"] == "FAILED" and task["progress"] == 33
    assert "2 not moved" in task["name"] and "a, b" in task["name"]
    assert set(runs_of(fresh_api, "p")) == {"a", "b"} and set(runs_of(fresh_api, "dest")) == {"a", "c"}
    theirs = fresh_api.ok('{ project(name: "dest", entityName: "local") { run(name: "a") { notes } } }')
    assert theirs["project"]["run"]["notes"] == "theirs"


def test_move_runs_moves_only_live_runs_and_is_idempotent(fresh_api):
    for n in ("a", "b"):
        create(fresh_api, n)
    fresh_api.ok(DELETE_BY, {"f": json.dumps(names_in("b"))})
    assert move(fresh_api, names_in("a", "b")).data["moveRuns"]["task"]["state"] == "FINISHED"
    again = move(fresh_api, names_in("a", "b")).data["moveRuns"]["task"]
    assert again["state"] == "FINISHED" and "moved 0 run(s)" in again["name"]
    assert set(runs_of(fresh_api, "dest")) == {"a"}
    fresh_api.ok(UNDELETE_BY, {"f": json.dumps(names_in("b"))})  # the deleted one stayed behind
    assert set(runs_of(fresh_api, "p")) == {"b"}


def test_move_runs_bad_input_is_a_graphql_error(fresh_api):
    create(fresh_api, "a")
    cases = [
        (move(fresh_api, names_in("a"), source="nosuch"), "project local/nosuch not found"),
        (move(fresh_api, names_in("a"), to_entity="nobody"), "destination entity 'nobody' not found"),
        (move(fresh_api, names_in("a"), to="p"), "the destination is the source project"),
        (move(fresh_api, names_in("a"), to=""), "destinationProjectName are required"),
        (move(fresh_api, {"name": {"$frob": 1}}), "invalid filters"),
        (fresh_api.gql(MOVE, {"input": {"sourceEntityName": "local", "sourceProjectName": "p",
                                        "destinationEntityName": "local", "destinationProjectName": "d",
                                        "filters": "{not json"}}), "invalid filters"),
        (fresh_api.gql('mutation { moveRuns(input: {sourceEntityName: "local"}) { task { id } } }'),
         "destinationEntityName"),
    ]
    for reply, message in cases:
        assert reply.status in (200, 400) and reply.errors, reply.body
        assert message in reply.errors[0]["message"], reply.body
        assert "sql" not in reply.errors[0]["message"].lower()
    assert set(runs_of(fresh_api, "p")) == {"a"}
