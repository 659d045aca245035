"""Sweeps over GraphQL: the shapes the SDK reads, the agent protocol (pause, resume, stop, cancel,
grid exhaustion), the demo sweeps, other users' sweeps, and bad input answered as GraphQL errors."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.conftest import Caller
from wandb_gql.server.local import LocalServer
from wandb_gql.server.store import new_api_key

CREATE = """
mutation($config: String, $entity: String, $project: String, $state: String, $prior: JSONString) {
  upsertSweep(input: {config: $config, entityName: $entity, projectName: $project, state: $state,
                      priorRunsFilters: $prior}) {
    inserted configValidationWarnings
    sweep { id name state method config runCount runCountExpected bestLoss project { name entity { name } } }
  }
}
"""
SET_STATE = "mutation($id: ID, $state: String) { upsertSweep(input: {id: $id, state: $state}) { sweep { state } } }"
AGENT = """
mutation($sweep: String!, $entity: String, $project: String) {
  createAgent(input: {host: "box", sweep: $sweep, entityName: $entity, projectName: $project}) { agent { id name } }
}
"""
BEAT = """
mutation($id: ID!, $runState: JSONString) {
  agentHeartbeat(input: {id: $id, metrics: "{}", runState: $runState}) { commands agent { totalRuns state } }
}
"""
SWEEP = """
query($entity: String, $project: String, $name: String!) {
  project(entityName: $entity, name: $project) {
    totalSweeps
    sweep(sweepName: $name) {
      id name displayName state method config bestLoss runCount runCountExpected createdAt updatedAt heartbeatAt
      runs { totalCount edges { node { name config summaryMetrics sweepName sweep { name } } } }
    }
  }
}
"""
GRID = "method: grid\nmetric: {name: loss, goal: minimize}\nparameters:\n  lr: {values: [0.1, 0.01]}\n  depth: {values: [2, 4]}\n"


@pytest.fixture
def world(tmp_path):
    with LocalServer(tmp_path / "server.db", seed="demo") as s:
        yield s


def _create(api: Caller, config: str = GRID, **extra: Any) -> dict[str, Any]:
    variables = {"config": config, "entity": "demo", "project": "sweeping", **extra}
    return api.ok(CREATE, variables)["upsertSweep"]["sweep"]


def _beat(api: Caller, agent: str, active: list[str] = ()) -> list[dict[str, Any]]:
    reply = api.ok(BEAT, {"id": agent, "runState": json.dumps({run: True for run in active})})
    return json.loads(reply["agentHeartbeat"]["commands"])


def _agent(api: Caller, sweep: dict[str, Any]) -> str:
    return api.ok(AGENT, {"sweep": sweep["name"], "entity": "demo", "project": "sweeping"})["createAgent"]["agent"]["id"]


def _finish(api: Caller, command: dict[str, Any], sweep: str, loss: float) -> None:
    """What wandb.init + finish do for a sweep run: upsertBucket with the sweep and the parameters."""
    config = json.dumps(command["args"])
    api.ok('mutation($n: String, $c: JSONString, $s: String, $m: JSONString) { upsertBucket(input: {name: $n, '
           'entityName: "demo", modelName: "sweeping", config: $c, sweep: $s, summaryMetrics: $m, state: "finished"})'
           ' { bucket { id } } }', {"n": command["run_id"], "c": config, "s": sweep, "m": json.dumps({"loss": loss})})


def test_grid_hands_out_every_combination_once_then_finishes(world):
    api = Caller(world)
    sweep = _create(api)
    assert sweep["state"] == "RUNNING" and sweep["method"] == "grid" and sweep["config"] == GRID
    assert sweep["runCountExpected"] == 4 and sweep["runCount"] == 0 and sweep["bestLoss"] is None
    agent = _agent(api, sweep)
    seen = []
    for i in range(4):
        [command] = _beat(api, agent)
        assert command["type"] == "run" and len(command["run_id"]) == 8
        assert _beat(api, agent, [command["run_id"]]) == []  # one run at a time per agent
        seen.append((command["args"]["lr"]["value"], command["args"]["depth"]["value"]))
        _finish(api, command, sweep["name"], loss=float(i))
    assert sorted(seen) == [(0.01, 2), (0.01, 4), (0.1, 2), (0.1, 4)]
    assert _beat(api, agent) == [{"type": "exit"}]
    found = api.ok(SWEEP, {"entity": "demo", "project": "sweeping", "name": sweep["name"]})["project"]
    assert found["totalSweeps"] == 1
    got = found["sweep"]
    assert got["state"] == "FINISHED" and got["runCount"] == 4 and got["bestLoss"] == 0.0
    assert got["runs"]["totalCount"] == 4
    assert {e["node"]["sweep"]["name"] for e in got["runs"]["edges"]} == {sweep["name"]}
    # A finished sweep takes no new agents and cannot be resumed.
    reply = api.gql(AGENT, {"sweep": sweep["name"], "entity": "demo", "project": "sweeping"})
    assert "finished" in reply.errors[0]["message"]
    reply = api.gql(SET_STATE, {"id": sweep["id"], "state": "RUNNING"})
    assert "cannot change state" in reply.errors[0]["message"]


def test_pause_resume_and_cancel(world):
    api = Caller(world)
    sweep = _create(api, "method: random\nparameters:\n  x: {min: 0.0, max: 1.0}\n")
    agent = _agent(api, sweep)
    assert api.ok(SET_STATE, {"id": sweep["id"], "state": "PAUSED"})["upsertSweep"]["sweep"]["state"] == "PAUSED"
    assert _beat(api, agent) == []  # paused: the agent waits
    api.ok(SET_STATE, {"id": sweep["id"], "state": "RUNNING"})
    [command] = _beat(api, agent)
    assert 0.0 <= command["args"]["x"]["value"] <= 1.0
    api.ok(SET_STATE, {"id": sweep["id"], "state": "CANCELED"})
    assert _beat(api, agent, [command["run_id"]]) == [{"type": "stop", "run_id": command["run_id"]}]
    assert _beat(api, agent) == [{"type": "exit"}]


def test_random_sets_are_reproducible_per_sweep_and_run_cap_ends_it(world):
    api = Caller(world)
    config = "method: random\nrun_cap: 3\nparameters:\n  lr: {distribution: log_uniform_values, min: 0.0001, max: 0.1}\n"
    sweep = _create(api, config)
    assert sweep["runCountExpected"] == 3
    agent = _agent(api, sweep)
    values = [_beat(api, agent)[0]["args"]["lr"]["value"] for _ in range(3)]
    assert all(1e-4 <= v <= 0.1 for v in values) and len(set(values)) == 3
    assert _beat(api, agent) == [{"type": "exit"}]


def test_prior_runs_join_the_sweep(world):
    api = Caller(world)
    for name in ("p1", "p2", "p3"):
        api.ok('mutation($n: String) { upsertBucket(input: {name: $n, entityName: "demo", modelName: "sweeping"})'
               ' { bucket { id } } }', {"n": name})
    sweep = _create(api, prior=json.dumps({"name": {"$in": ["p1", "p3"]}}))
    assert sweep["runCount"] == 2


def test_demo_runs_sweeps_are_real(api):
    found = api.ok('{ project(name: "vision", entityName: "demo") { totalSweeps sweeps(first: 2) { '
                   'edges { cursor node { name state method runCount bestLoss } } pageInfo { hasNextPage endCursor } } } }')
    project = found["project"]
    assert project["totalSweeps"] == 4
    edges = project["sweeps"]["edges"]
    assert len(edges) == 2 and project["sweeps"]["pageInfo"]["hasNextPage"]
    rest = api.ok('query($after: String) { project(name: "vision", entityName: "demo") { sweeps(first: 10, after: $after) '
                  '{ edges { node { name } } pageInfo { hasNextPage } } } }',
                  {"after": project["sweeps"]["pageInfo"]["endCursor"]})["project"]["sweeps"]
    names = [e["node"]["name"] for e in edges] + [e["node"]["name"] for e in rest["edges"]]
    assert sorted(names) == ["sw00vi", "sw01vi", "sw02vi", "sw03vi"] and not rest["pageInfo"]["hasNextPage"]
    for edge in edges:
        node = edge["node"]
        assert node["method"] == "random" and node["runCount"] > 50 and 0 < node["bestLoss"] <= 1
    run = api.ok('{ project(name: "vision", entityName: "demo") { runs(first: 1, filters: "{\\"sweep\\": \\"sw01vi\\"}")'
                 ' { edges { node { sweepName sweep { name runCount } } } } } }')["project"]["runs"]["edges"][0]["node"]
    assert run["sweep"]["name"] == run["sweepName"] == "sw01vi"


def test_another_entity_s_sweep_is_not_found(world):
    admin = Caller(world)
    sweep = _create(admin)
    store = world.server.store
    key = new_api_key()
    with store.writing():
        store.add_api_key(key, "carol", user_id=store.user_row("carol")["id"])
    carol = Caller(world)
    carol.key = key
    assert carol.ok(SWEEP, {"entity": "demo", "project": "sweeping", "name": sweep["name"]})["project"] is None
    for query, variables in ((SET_STATE, {"id": sweep["id"], "state": "PAUSED"}),
                             (AGENT, {"sweep": sweep["name"], "entity": "demo", "project": "sweeping"}),
                             (CREATE, {"config": GRID, "entity": "demo", "project": "x"})):
        reply = carol.gql(query, variables)
        assert reply.status == 200 and "not found" in reply.errors[0]["message"], reply.body
    agent = _agent(admin, sweep)
    reply = carol.gql(BEAT, {"id": agent})
    assert "not found" in reply.errors[0]["message"]


@pytest.mark.parametrize("config, message", [
    ("method: hyperband\nparameters: {x: {values: [1]}}", "unknown method 'hyperband'"),
    ("method: bayes\nparameters: {x: {min: 0.0, max: 1.0}}", "'bayes' is not available"),
    ("method: grid\nparameters: {x: {values: [1]}\n", "not valid YAML"),
    ("- just\n- a list", "must be a mapping"),
    ("", "needs config"),
    ("method: grid", "needs parameters"),
    ("method: grid\nparameters: {x: {min: 0.0, max: 1.0}}", "no finite set of values"),
    ("method: random\nparameters: {x: {distribution: zipf, min: 1, max: 2}}", "unknown distribution 'zipf'"),
    ("method: random\nparameters: {x: {distribution: uniform, min: 1}}", "needs max"),
    ("method: random\nparameters: {x: {min: 2.0, max: 1.0}}", "min is above max"),
    ("method: random\nparameters: {x: {distribution: normal, mu: a, sigma: 1}}", "mu must be a number"),
    ("method: random\nparameters: {x: {values: []}}", "values must be a non-empty list"),
    ("method: random\nparameters: {x: 3}", "must be a mapping"),
    ("method: random\nparameters: {x: {parameters: {y: {value: 1}}}}", "nested parameters"),
    ("method: random\nmetric: {name: loss, goal: lowest}\nparameters: {x: {value: 1}}", "metric must be"),
    ("method: random\nrun_cap: 0\nparameters: {x: {value: 1}}", "run_cap must be a positive integer"),
])
def test_bad_sweep_config_is_one_graphql_error(api, config, message):
    reply = api.gql(CREATE, {"config": config, "entity": "demo", "project": "bad"})
    assert reply.status == 200 and reply.data["upsertSweep"] is None, reply.body
    assert message in reply.errors[0]["message"]
    assert api.ok('{ project(name: "bad", entityName: "demo") { totalSweeps } }')["project"] is None


@pytest.mark.parametrize("query, variables, message", [
    (SET_STATE, {"id": "nope", "state": "PAUSED"}, "invalid Sweep id"),
    (SET_STATE, {"id": None, "state": "STOPPED"}, "sweep state 'STOPPED' is not one of"),
    (AGENT, {"sweep": "missing1", "entity": "demo", "project": "vision"}, "sweep demo/vision/missing1 not found"),
    (BEAT, {"id": "QWdlbnQ6djE6OTk5OQ=="}, "not found"),
    (BEAT, {"id": "bad"}, "invalid Agent id"),
])
def test_bad_sweep_requests_are_graphql_errors(api, query, variables, message):
    reply = api.gql(query, variables)
    assert reply.status == 200 and reply.errors and message in reply.errors[0]["message"], reply.body


def test_malformed_run_state_is_an_error(world):
    api = Caller(world)
    agent = _agent(api, _create(api))
    reply = api.gql(BEAT, {"id": agent, "runState": "[1, 2"})
    assert "runState is not valid JSON" in reply.errors[0]["message"]


def test_agents_at_once_share_the_grid_without_repeats(world):
    """Heartbeats are mutations, one transaction each: 8 agents asking together get distinct sets."""
    from concurrent.futures import ThreadPoolExecutor

    api = Caller(world)
    sweep = _create(api, "method: grid\nparameters:\n  a: {values: [1, 2, 3, 4]}\n  b: {values: [x, y]}\n")
    agents = [_agent(api, sweep) for _ in range(8)]
    with ThreadPoolExecutor(8) as pool:
        commands = list(pool.map(lambda agent: _beat(api, agent), agents))
    combos = {(c[0]["args"]["a"]["value"], c[0]["args"]["b"]["value"]) for c in commands}
    assert len(combos) == 8 and all(c[0]["type"] == "run" for c in commands)
    found = api.ok('query($n: String!) { project(name: "sweeping", entityName: "demo") { sweep(sweepName: $n) '
                   '{ agents { edges { cursor node { name host state totalRuns } } } } } }', {"n": sweep["name"]})
    nodes = [e["node"] for e in found["project"]["sweep"]["agents"]["edges"]]
    assert len(nodes) == 8 and all(n["totalRuns"] == 1 and n["host"] == "box" for n in nodes)


def test_a_stored_config_the_rules_refuse_still_reads_back(world):
    """A sweep written by another tool (or an older server) with a config this one refuses: it reads
    back as stored, and an agent asking for work gets the config's problem as a GraphQL error."""
    api = Caller(world)
    sweep = _create(api, "method: random\nparameters: {x: {value: 1}}\n")
    agent = _agent(api, sweep)
    store = world.server.store
    with store.writing():
        store.conn.execute("UPDATE sweeps SET config = 'method: bayes' WHERE name = ?", (sweep["name"],))
    got = api.ok(SWEEP, {"entity": "demo", "project": "sweeping", "name": sweep["name"]})["project"]["sweep"]
    assert got["config"] == "method: bayes" and got["runCountExpected"] is None and got["state"] == "RUNNING"
    reply = api.gql(BEAT, {"id": agent})
    assert reply.status == 200 and "'bayes' is not available" in reply.errors[0]["message"]
