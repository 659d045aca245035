"""`wbgql sweeps list` against the demo server, and --sweep selecting a real sweep's runs."""

from __future__ import annotations

import json

from tests.conftest import Caller
from tests.cli.conftest import parse_jsonl, requests_seen

CREATE = """
mutation($config: String) {
  upsertSweep(input: {config: $config, entityName: "demo", projectName: "cli-sweeps"}) { sweep { name } }
}
"""
RUN = """
mutation($n: String, $s: String, $m: JSONString) {
  upsertBucket(input: {name: $n, entityName: "demo", modelName: "cli-sweeps", sweep: $s, summaryMetrics: $m}) { bucket { id } }
}
"""


def test_list_table_shows_state_method_metric_count_and_best_run(wbgql, server):
    out = wbgql.remote(server, "sweeps", "list", "demo/vision")
    assert out.exit_code == 0, out
    lines = out.stdout.splitlines()
    assert lines[0].split() == ["id", "state", "method", "metric", "run_count", "best_run"]
    assert [line.split()[0] for line in lines[1:]] == ["sw03vi", "sw02vi", "sw01vi", "sw00vi"]  # newest first
    assert all("random" in line and "val/acc (max)" in line for line in lines[1:])


def test_list_json_best_run_holds_the_best_value(wbgql, server):
    out = wbgql.remote(server, "sweeps", "list", "demo/nlp", "-f", "json")
    assert out.exit_code == 0, out
    sweeps = json.loads(out.stdout)
    assert len(sweeps) == 4
    api = Caller(server)
    for sweep in sweeps:
        assert sweep["metric"] == "val/acc" and sweep["goal"] == "maximize" and sweep["path"].startswith("demo/nlp/")
        runs = api.ok('query($f: JSONString) { project(name: "nlp", entityName: "demo") { runCount(filters: $f) '
                      'run: runs(filters: $f, first: 1000) { edges { node { name summaryMetrics } } } } }',
                      {"f": json.dumps({"sweep": sweep["id"]})})["project"]
        assert runs["runCount"] == sweep["run_count"]
        values = {e["node"]["name"]: json.loads(e["node"]["summaryMetrics"])["val/acc"] for e in runs["run"]["edges"]}
        assert values[sweep["best_run"]] == sweep["best_value"] == max(values.values())


def test_fields_and_a_sweep_made_by_an_agent_protocol(wbgql, mutable_server):
    api = Caller(mutable_server)
    name = api.ok(CREATE, {"config": "method: grid\nmetric: {name: loss, goal: minimize}\n"
                                     "parameters: {lr: {values: [1, 2]}}\n"})["upsertSweep"]["sweep"]["name"]
    for run, loss in (("r1", 0.5), ("r2", 0.25), ("r3", None)):  # r3 never reported the metric
        api.ok(RUN, {"n": run, "s": name, "m": json.dumps({} if loss is None else {"loss": loss})})
    api.ok(RUN, {"n": "other", "s": None, "m": "{}"})
    out = wbgql.remote(mutable_server, "sweeps", "list", "demo/cli-sweeps", "-f", "jsonl",
                       "--fields", "id,state,run_count,expected_run_count,best_value,best_run")
    assert out.exit_code == 0, out
    assert parse_jsonl(out.stdout) == [{"id": name, "state": "RUNNING", "run_count": 3, "expected_run_count": 2,
                                        "best_value": 0.25, "best_run": "r2"}]
    # --sweep in run commands selects exactly this sweep's runs.
    plan = wbgql.remote(mutable_server, "runs", "delete", "demo/cli-sweeps", "--sweep", name, "--dry-run",
                        "--include-running", "-f", "jsonl")
    assert plan.exit_code == 0, plan
    [planned] = parse_jsonl(plan.stdout)
    assert sorted(planned["run_ids"]) == ["r1", "r2", "r3"]


def test_bad_input_is_one_line_and_nothing_is_sent(wbgql, server):
    before = requests_seen(server)
    out = wbgql.remote(server, "sweeps", "list", "demo/vision", "--fields", "id,bogus")
    assert out.exit_code == 2 and "unknown field(s) bogus" in out.stderr and "best_run" in out.stderr
    assert requests_seen(server) == before
    out = wbgql.remote(server, "sweeps", "list", "demo/nope")
    assert out.exit_code == 1 and "project demo/nope not found" in out.stderr
