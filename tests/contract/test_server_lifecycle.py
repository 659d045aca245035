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


# -- soft-deleted runs: Project.deletedRuns and Run.purgeAt (local extensions) ----------------
DELETED = """query D($first: Int, $after: String, $f: JSONString) { project(name: "p", entityName: "local") {
  deletedRuns(filters: $f, first: $first, after: $after) { totalCount
    edges { node { name displayName state deletedAt purgeAt } } pageInfo { endCursor hasNextPage } } } }"""


def _plus(stamp, **delta):
    from datetime import datetime, timedelta

    from wandb_gql._time import TIME_FORMAT
    return (datetime.strptime(stamp, TIME_FORMAT) + timedelta(**delta)).strftime(TIME_FORMAT)


def test_deleted_runs_are_listed_newest_deletion_first_with_their_purge_date(fresh_api):
    for n in ("a", "b", "c", "d", "e", "live"):
        create(fresh_api, n, displayName=f"run {n}", state="finished")
    fresh_api.ok(DELETE_BY, {"f": json.dumps(names_in("a", "b", "c", "d"))})
    fresh_api.ok(DELETE_BY, {"f": json.dumps(names_in("e"))})
    seen, after = [], None
    while True:
        conn = fresh_api.ok(DELETED, {"first": 2, "after": after})["project"]["deletedRuns"]
        assert conn["totalCount"] == 5
        seen += [e["node"] for e in conn["edges"]]
        if not conn["pageInfo"]["hasNextPage"]:
            break
        after = conn["pageInfo"]["endCursor"]
    assert [n["name"] for n in seen][0] == "e" and sorted(n["name"] for n in seen) == ["a", "b", "c", "d", "e"]
    stamps = [n["deletedAt"] for n in seen]
    assert stamps == sorted(stamps, reverse=True)
    for node in seen:
        assert node["purgeAt"] == _plus(node["deletedAt"], days=7)  # the server's default retention
        assert node["state"] == "finished" and node["displayName"] == f"run {node['name']}"
    only = fresh_api.ok(DELETED, {"f": json.dumps({"display_name": "run c"})})["project"]["deletedRuns"]
    assert [e["node"]["name"] for e in only["edges"]] == ["c"] and only["totalCount"] == 1
    live = fresh_api.ok('{ project(name: "p", entityName: "local") { run(name: "live") { deletedAt purgeAt } } }')
    assert live["project"]["run"] == {"deletedAt": None, "purgeAt": None}
    forged = fresh_api.gql(DELETED, {"after": "bm90IGEgY3Vyc29y"})
    assert forged.status == 200 and "invalid cursor" in forged.errors[0]["message"]
    other_order = fresh_api.ok('{ project(name: "p", entityName: "local") { runs(first: 1) {'
                               ' pageInfo { endCursor } } } }')["project"]["runs"]["pageInfo"]["endCursor"]
    refused = fresh_api.gql(DELETED, {"after": other_order})
    assert "different order" in refused.errors[0]["message"]


def test_purge_at_follows_the_servers_retention(tmp_path):
    from datetime import timedelta

    from tests.conftest import Caller
    from wandb_gql.server.local import LocalServer

    with LocalServer(tmp_path / "s.db", retention=timedelta(hours=36)) as s:
        api = Caller(s)
        create(api, "a")
        api.ok(DELETE_BY, {"f": json.dumps(names_in("a"))})
        node = api.ok(DELETED)["project"]["deletedRuns"]["edges"][0]["node"]
        assert node["purgeAt"] == _plus(node["deletedAt"], hours=36)


# -- Client.deleted_runs -----------------------------------------------------------------------
async def test_client_lists_deleted_runs_with_limit_and_where(fresh_server, fresh_api):
    from wandb_gql import Client, SyncClient
    from wandb_gql.client.deleted import DeletedRun

    for n in ("a", "b", "c"):
        create(fresh_api, n, state="crashed" if n != "c" else "finished")
    fresh_api.ok(DELETE_BY, {"f": json.dumps(names_in("a", "b", "c"))})
    async with Client(fresh_server.base_url, fresh_server.api_key) as c:
        every = [r async for r in c.deleted_runs("local/p")]
        assert sorted(r.name for r in every) == ["a", "b", "c"] and isinstance(every[0], DeletedRun)
        assert every[0].purge_at == _plus(every[0].deleted_at, days=7)
        assert len([r async for r in c.deleted_runs("local/p", limit=2)]) == 2
        assert sorted([r.name async for r in c.deleted_runs("local/p", where="state = crashed")]) == ["a", "b"]
        assert [r async for r in c.deleted_runs("local/p", limit=0)] == []
    with SyncClient(fresh_server.base_url, fresh_server.api_key) as s:
        assert [r.to_dict()["name"] for r in s.deleted_runs("local/p", where="state = finished")] == ["c"]


async def test_client_deleted_runs_of_a_missing_project_names_the_close_ones(fresh_server, fresh_api):
    import pytest

    from wandb_gql import Client, NotFoundError

    create(fresh_api, "a")
    async with Client(fresh_server.base_url, fresh_server.api_key) as c:
        with pytest.raises(NotFoundError, match="local/q not found") as caught:
            [r async for r in c.deleted_runs("local/q")]
    assert caught.value.hint == "local has: p"


def _like_wandb(target: str, schema_text: str):
    """A loopback proxy that validates every document against W&B's reference schema (which has
    no local extensions) and answers invalid ones as a GraphQL server does: 400 and the
    validation messages. Valid ones go on to the local server."""
    from graphql import build_schema, parse, validate

    from tests.conftest import Recorder

    schema = build_schema(schema_text)
    proxy = Recorder(target)

    def invalid(body):
        errors = validate(schema, parse(body["query"]))
        return (400, [e.message for e in errors]) if errors else None

    proxy.fail_when = invalid
    return proxy


async def test_against_w_and_b_deleted_runs_says_it_cannot(fresh_server, fresh_api):
    import pytest

    from tests.conftest import REFERENCE
    from wandb_gql import Client, UsageError

    if not (REFERENCE / "wandb-reference.graphql").is_file():
        pytest.skip("the W&B reference schema is absent here")
    wandb_like = _like_wandb(fresh_server.base_url, (REFERENCE / "wandb-reference.graphql").read_text())
    create(fresh_api, "a")
    async with Client(wandb_like.base_url, fresh_server.api_key) as c:
        assert [r.name async for r in c.runs("local/p")] == ["a"]  # the ordinary documents pass
        with pytest.raises(UsageError, match=r"cannot list deleted runs \(W&B cannot\)") as caught:
            [r async for r in c.deleted_runs("local/p")]
    assert "--ledger" in (caught.value.hint or "") and fresh_server.api_key not in str(caught.value)


# -- the bulk mutations the cleanup engine pins to ids -----------------------------------------
RUN_STATE = '{ project(name: "p", entityName: "local") { run(name: "%s") { tags updatedAt deletedAt } } }'
MODIFY = """mutation M($ids: [String], $add: [String], $remove: [String], $e: String, $p: String, $f: JSONString) {
  modifyRuns(input: {entityName: $e, projectName: $p, ids: $ids, filters: $f, addTags: $add, removeTags: $remove}) {
    runs { name tags } } }"""


def deleted_names(api, project="p"):
    q = '{ project(name: "%s", entityName: "local") { deletedRuns { edges { node { name deletedAt } } } } }' % project
    return {e["node"]["name"]: e["node"]["deletedAt"] for e in api.ok(q)["project"]["deletedRuns"]["edges"]}


def test_delete_runs_pinned_to_names_is_exact_and_idempotent(fresh_api):
    for n in ("a", "b", "c", "other"):
        create(fresh_api, n)
    fresh_api.ok(DELETE_BY, {"f": json.dumps(names_in("other"))})  # someone else's earlier deletion
    first = deleted_names(fresh_api)
    fresh_api.ok(DELETE_BY, {"f": json.dumps(names_in("a", "b", "nosuch"))})  # an unknown id fails nothing
    once = deleted_names(fresh_api)
    assert set(once) == {"a", "b", "other"} and once["other"] == first["other"]
    assert fresh_api.ok(DELETE_BY, {"f": json.dumps(names_in("a", "b"))})["deleteRuns"]["errors"] is None
    assert deleted_names(fresh_api) == once  # deleting again changes nothing, deletedAt included
    assert set(runs_of(fresh_api, "p")) == {"c"}


def test_undelete_runs_pinned_to_names_never_restores_other_runs(fresh_api):
    for n in ("a", "b", "c", "other"):
        create(fresh_api, n, tags=["tmp"])
    fresh_api.ok(DELETE_BY, {"f": json.dumps(names_in("other"))})
    fresh_api.ok(DELETE_BY, {"f": json.dumps(names_in("a", "b", "c"))})
    fresh_api.ok(UNDELETE_BY, {"f": json.dumps(names_in("a", "b"))})
    fresh_api.ok(UNDELETE_BY, {"f": json.dumps(names_in("a", "b"))})  # again: nothing more comes back
    assert set(runs_of(fresh_api, "p")) == {"a", "b"} and set(deleted_names(fresh_api)) == {"c", "other"}
    # the filter the runs were chosen by would also bring back 'other': pinning is what keeps it away
    fresh_api.ok(UNDELETE_BY, {"f": json.dumps({"$and": [{"tags": "tmp"}, names_in("c")]})})
    assert set(deleted_names(fresh_api)) == {"other"}


def test_modify_runs_by_ids_is_exact_idempotent_and_skips_what_is_gone(fresh_api):
    ids = {n: create(fresh_api, n, tags=["old"])["id"] for n in ("a", "b", "gone", "elsewhere")}
    ids["elsewhere"] = create(fresh_api, "x", project="q", tags=["old"])["id"]
    fresh_api.ok(DELETE_BY, {"f": json.dumps(names_in("gone"))})
    never = storage_id("Run", "never", "p", "local")
    pinned = [ids["a"], ids["b"], ids["gone"], never, ids["elsewhere"], ids["a"]]
    out = fresh_api.ok(MODIFY, {"ids": pinned, "add": ["new"], "remove": ["old"], "e": "local", "p": "p"})
    assert sorted((r["name"], r["tags"]) for r in out["modifyRuns"]["runs"]) == [("a", ["new"]), ("b", ["new"])]
    stamp = fresh_api.ok(RUN_STATE % "a")["project"]["run"]["updatedAt"]
    import time
    time.sleep(1.1)  # W&B times have whole seconds: a change now would show
    again = fresh_api.ok(MODIFY, {"ids": pinned, "add": ["new"], "remove": ["old"], "e": "local", "p": "p"})
    assert [r["tags"] for r in again["modifyRuns"]["runs"]] == [["new"], ["new"]]
    assert fresh_api.ok(RUN_STATE % "a")["project"]["run"]["updatedAt"] == stamp
    fresh_api.ok(UNDELETE_BY, {"f": json.dumps(names_in("gone"))})
    assert fresh_api.ok(RUN_STATE % "gone")["project"]["run"]["tags"] == ["old"]  # deleted: untouched
    other = fresh_api.ok('{ project(name: "q", entityName: "local") { run(name: "x") { tags } } }')
    assert other["project"]["run"]["tags"] == ["old"]  # scoped to local/p: never a run elsewhere
    both = fresh_api.ok(MODIFY, {"ids": [ids["a"], ids["b"]], "add": ["both"], "e": "local", "p": "p",
                                 "f": json.dumps(names_in("b"))})
    assert [r["name"] for r in both["modifyRuns"]["runs"]] == ["b"]  # ids and filter: both must hold
    bad = fresh_api.gql(MODIFY, {"ids": [ids["a"], "not-an-id"], "add": ["z"]})
    assert "invalid Run id" in bad.errors[0]["message"]
    assert "z" not in fresh_api.ok(RUN_STATE % "a")["project"]["run"]["tags"]


def test_the_purge_removes_runs_deleted_longer_ago_than_retention(fresh_server, fresh_api):
    from datetime import timedelta

    from wandb_gql._time import ago

    for n in ("old", "recent", "live"):
        create(fresh_api, n, tags=["t"])
    fresh_api.ok(DELETE_BY, {"f": json.dumps(names_in("old", "recent"))})
    conn = fresh_server.server.store.conn
    # Time travel: "old" was deleted 8 days ago (the default retention is 7).
    conn.execute("UPDATE runs SET deleted_at = ? WHERE name = 'old'", (ago(timedelta(days=8)),))
    run_id = conn.execute("SELECT id FROM runs WHERE name = 'old'").fetchone()[0]
    conn.execute("INSERT INTO history (run_id, line, step, row) VALUES (?, 0, 0, '{}')", (run_id,))
    assert fresh_api.post("/_local/purge", {}).body == {"purged": 1}
    assert fresh_api.post("/_local/purge", {}).body == {"purged": 0}
    assert set(deleted_names(fresh_api)) == {"recent"} and set(runs_of(fresh_api, "p")) == {"live"}
    assert conn.execute("SELECT count(*) FROM history WHERE run_id = ?", (run_id,)).fetchone()[0] == 0
    fresh_api.ok(UNDELETE_BY, {"f": json.dumps(names_in("old", "recent"))})
    assert set(runs_of(fresh_api, "p")) == {"live", "recent"}  # a purged run is gone for good
