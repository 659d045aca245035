"""The SDK's extra calls at the GraphQL level: bad input and other entities' data (issue 12)."""

from __future__ import annotations

import pytest

from wandb_gql.server.local import LocalServer
from wandb_gql.server.store import new_api_key

from tests.conftest import Caller

FILES = """query($e: String, $p: String, $r: String!) {
  project(entityName: $e, name: $p) { internalId run(name: $r) { files(first: 100) { totalCount edges { node { id name } } } } }
}"""
DELETE = "mutation($f: [ID!]!, $p: Int) { deleteFiles(input: {files: $f, projectId: $p}) { success } }"
ALERT = """mutation($e: String!, $p: String!, $r: String!) {
  notifyScriptableRunAlert(input: {entityName: $e, projectName: $p, runName: $r, title: "t", text: "x"}) { success }
}"""
ALERTS = "query($e: String, $p: String!, $r: String!) { runAlerts(entityName: $e, projectName: $p, runName: $r) { title } }"
CREATE = "mutation($i: UpsertModelInput!) { upsertModel(input: $i) { inserted project { name entityName description } } }"


def _as(server: LocalServer, user: str) -> Caller:
    store = server.server.store
    key = new_api_key()
    with store.writing():
        store.add_api_key(key, user, user_id=store.user_row(user)["id"])
    caller = Caller(server)
    caller.key = key
    return caller


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    with LocalServer(tmp_path_factory.mktemp("sdkcalls") / "server.db", seed="demo") as s:
        admin = Caller(s)
        ids = admin.ok('mutation { createRunFiles(input: {entityName: "demo", projectName: "rl", runName: "rl000001",'
                       ' files: ["a.txt", "b.txt"]}) { files { id name } } }')["createRunFiles"]["files"]
        yield {"admin": admin, "carol": _as(s, "carol"), "alice": _as(s, "alice"),
               "files": {f["name"]: f["id"] for f in ids}}


def _message(reply) -> str:
    assert reply.status < 500 and reply.errors, reply.body  # a GraphQL error, never a 500
    return reply.errors[0]["message"]


def test_outsider_cannot_delete_files_or_alert_or_read_alerts_of_another_entity(world):
    carol, admin = world["carol"], world["admin"]
    assert "not found" in _message(carol.gql(DELETE, {"f": [world["files"]["a.txt"]]}))
    assert "not found" in _message(carol.gql(ALERT, {"e": "demo", "p": "rl", "r": "rl000001"}))
    assert "not found" in _message(carol.gql(ALERTS, {"e": "demo", "p": "rl", "r": "rl000001"}))
    assert "not found" in _message(carol.gql(CREATE, {"i": {"name": "x", "entityName": "demo"}}))
    names = [e["node"]["name"] for e in admin.ok(FILES, {"e": "demo", "p": "rl", "r": "rl000001"})
             ["project"]["run"]["files"]["edges"]]
    assert {"a.txt", "b.txt"} <= set(names)
    assert admin.ok(ALERTS, {"e": "demo", "p": "rl", "r": "rl000001"})["runAlerts"] == []


def test_delete_files_is_all_or_nothing_and_checks_the_project(world):
    admin = world["admin"]
    other_project = admin.ok('{ project(entityName: "demo", name: "nlp") { internalId } }')["project"]["internalId"]
    a = world["files"]["a.txt"]
    assert "not found" in _message(admin.gql(DELETE, {"f": [a], "p": int(other_project)}))
    assert "not found" in _message(admin.gql(DELETE, {"f": [a, "RmlsZTp2MTo5OTk5OTk5"]}))  # File:v1:9999999
    assert "invalid File id" in _message(admin.gql(DELETE, {"f": ["nonsense"]}))
    run = admin.ok(FILES, {"e": "demo", "p": "rl", "r": "rl000001"})["project"]
    assert run["run"]["files"]["totalCount"] >= 2  # nothing went
    assert admin.ok(DELETE, {"f": [a], "p": int(run["internalId"])})["deleteFiles"]["success"] is True
    names = [e["node"]["name"] for e in admin.ok(FILES, {"e": "demo", "p": "rl", "r": "rl000001"})
             ["project"]["run"]["files"]["edges"]]
    assert "a.txt" not in names and "b.txt" in names


def test_upsert_model_creates_once_in_a_team_and_sets_the_description(world):
    admin = world["admin"]
    made = admin.ok(CREATE, {"i": {"name": "fresh", "entityName": "demo", "description": "d1"}})["upsertModel"]
    assert made == {"inserted": True, "project": {"name": "fresh", "entityName": "demo", "description": "d1"}}
    again = admin.ok(CREATE, {"i": {"name": "fresh", "entityName": "demo"}})["upsertModel"]
    assert again["inserted"] is False and again["project"]["description"] == "d1"
    project_id = admin.ok('{ project(entityName: "demo", name: "fresh") { id } }')["project"]["id"]
    by_id = admin.ok(CREATE, {"i": {"id": project_id, "description": "d2"}})["upsertModel"]
    assert by_id == {"inserted": False, "project": {"name": "fresh", "entityName": "demo", "description": "d2"}}
    assert "not found" in _message(world["carol"].gql(CREATE, {"i": {"id": project_id, "description": "x"}}))
    for bad, words in (({"name": ""}, "needs a project name"), ({"name": "a:b"}, "cannot contain :"),
                       ({"name": "x" * 129}, "at most 128"), ({"name": "n", "entityName": "nobody"}, "not found")):
        assert words in _message(admin.gql(CREATE, {"i": bad}))


USERS = 'query($q: String) { users(query: $q) { edges { node { username teams { edges { node { name } } } } } } }'
MEMBERS = 'query($n: String) { entity(name: $n) { isTeam storageBytes members { username apiKey } } }'


def _users(caller: Caller, query: str = "") -> dict[str, list[str]]:
    edges = caller.ok(USERS, {"q": query})["users"]["edges"]
    return {e["node"]["username"]: [t["node"]["name"] for t in e["node"]["teams"]["edges"]] for e in edges}


def test_users_the_admin_sees_all_others_only_whom_they_share_an_entity_with(world):
    assert {"local", "alice", "bob", "carol"} <= set(_users(world["admin"]))
    assert _users(world["carol"]) == {"carol": ["carol"]}
    seen = _users(world["alice"])
    assert set(seen) == {"local", "alice", "bob"}  # the demo team; carol shares nothing with alice
    assert seen["bob"] == ["demo"]  # bob's own entity is not alice's to see
    assert world["alice"].ok('{ user(userName: "carol") { username } }')["user"] is None
    assert world["admin"].ok('{ user(userName: "carol") { username } }')["user"] == {"username": "carol"}
    assert "user needs id or userName" in _message(world["admin"].gql("{ user { username } }"))
    carol_id = world["carol"].ok("{ viewer { id } }")["viewer"]["id"]
    by_id = 'query($id: ID) { user(id: $id) { username } }'
    assert world["admin"].ok(by_id, {"id": carol_id})["user"] == {"username": "carol"}
    assert world["alice"].ok(by_id, {"id": carol_id})["user"] is None
    assert "invalid User id" in _message(world["admin"].gql(by_id, {"id": "bm9wZQ=="}))


def test_team_members_and_storage_bytes_only_for_members(world):
    team = world["alice"].ok(MEMBERS, {"n": "demo"})["entity"]
    assert team["isTeam"] is True and team["storageBytes"] > 0  # the demo artifacts
    assert sorted(m["username"] for m in team["members"]) == ["alice", "bob", "local"]
    assert all(m["apiKey"] is None for m in team["members"])
    assert world["carol"].ok(MEMBERS, {"n": "demo"})["entity"] is None
    own = world["carol"].ok(MEMBERS, {"n": "carol"})["entity"]
    assert own["isTeam"] is False and [m["username"] for m in own["members"]] == ["carol"]
