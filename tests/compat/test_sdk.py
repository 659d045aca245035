"""The real `wandb` SDK (0.31.0, with its Go sidecar wandb-core) against the local server.

Everything the SDK writes is checked through the server's own GraphQL (`api.ok`), and everything
it reads is compared with the server's own answer, so a disagreement points at one side.
Expected behaviour is W&B's, as recorded in ../shared/reference/sdk-wire.md.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any, Callable

import pytest

pytestmark = pytest.mark.compat

AUTH_MESSAGE = "invalid or missing API key"
BAD_KEY = "local-" + "x" * 40  # well-formed (the SDK checks the format), unknown to the server

RUN_QUERY = """
query CompatRun($entity: String, $project: String, $name: String!) {
  project(entityName: $entity, name: $project) {
    runCount
    run(name: $name) {
      name displayName state config summaryMetrics tags historyLineCount historyKeys exitcode
      history
    }
  }
}
"""

RUNS_PAGE_QUERY = """
query CompatRunsPage($entity: String, $project: String, $filters: JSONString, $order: String,
                     $after: String) {
  project(entityName: $entity, name: $project) {
    runCount(filters: $filters)
    runs(filters: $filters, order: $order, first: 1000, after: $after) {
      edges { node { name } }
      pageInfo { endCursor hasNextPage }
    }
  }
}
"""

ALL_RUNS_QUERY = """
query CompatAllRuns($entity: String, $project: String, $after: String) {
  project(entityName: $entity, name: $project) {
    runs(first: 1000, after: $after) {
      edges { node { name displayName state config summaryMetrics tags createdAt } }
      pageInfo { endCursor hasNextPage }
    }
  }
}
"""


# -- helpers --------------------------------------------------------------------------------
def server_run(api, entity: str, project: str, name: str) -> dict[str, Any] | None:
    """The run as the server stores it, JSON strings decoded; None if it is not (or no longer) there."""
    data = api.ok(RUN_QUERY, {"entity": entity, "project": project, "name": name})
    run = (data["project"] or {}).get("run")
    if run is None:
        return None
    run["config"] = json.loads(run["config"])
    run["summaryMetrics"] = json.loads(run["summaryMetrics"])
    run["history"] = [json.loads(line) for line in run["history"]]
    run["runCount"] = data["project"]["runCount"]
    return run


def server_run_ids(api, entity: str, project: str, filters: dict[str, Any],
                   order: str) -> tuple[list[str], int]:
    """The server's own evaluation of a filter and order: every run id in order, and runCount."""
    ids: list[str] = []
    after = None
    while True:
        data = api.ok(RUNS_PAGE_QUERY, {"entity": entity, "project": project,
                                        "filters": json.dumps(filters), "order": order, "after": after})
        conn = data["project"]["runs"]
        ids += [edge["node"]["name"] for edge in conn["edges"]]
        if not conn["pageInfo"]["hasNextPage"]:
            return ids, data["project"]["runCount"]
        after = conn["pageInfo"]["endCursor"]


def sdk_run_id(wb, entity: str, project: str, **kw: Any) -> str:
    run = wb.init(entity=entity, project=project, **kw)
    try:
        return run.id
    finally:
        run.finish()


# -- 1. init / log / summary / finish --------------------------------------------------------
CONFIG = {
    "lr": 0.01,
    "batch_size": 32,
    "optimizer": {"name": "adam", "betas": [0.9, 0.999], "schedule": {"kind": "cosine", "warmup": 5}},
    "data/augment": True,
}
TAGS = ["compat", "sdk", "nested-config"]
STEPS = [
    {"loss": 1.5, "acc": 0.1, "nested": {"a": 1, "b": {"c": "x"}}},
    {"loss": float("nan"), "acc": 0.2, "nested": {"a": 2, "b": {"c": "y"}}},
    {"loss": float("inf"), "acc": 0.3, "nested": {"a": 3, "b": {"c": "z"}}},
    {"loss": float("-inf"), "acc": 0.4},
    {"loss": 0.25, "acc": 0.5, "nested": {"a": 5, "b": {"c": "w"}}},
]


@pytest.mark.parametrize("entity_arg", ["viewer", None], ids=["entity=viewer", "entity=None"])
def test_init_log_summary_finish_round_trip(wb, api, viewer_entity, project_name, entity_arg):
    entity = viewer_entity if entity_arg == "viewer" else None
    run = wb.init(project=project_name, entity=entity, config=CONFIG, tags=TAGS)
    run_id = run.id
    assert run.entity == viewer_entity  # entity=None: taken from UpsertBucket's answer
    for row in STEPS:
        run.log(row)
    run.summary["best"] = {"loss": 0.25, "step": 4}
    run.summary["note"] = "done"
    run.finish()

    data = api.ok("""query($e: String, $p: String) { project(entityName: $e, name: $p) {
        runCount runs(first: 10) { edges { node { name state } } } } }""",
                  {"e": viewer_entity, "p": project_name})
    assert data["project"]["runCount"] == 1
    assert [e["node"] for e in data["project"]["runs"]["edges"]] == [{"name": run_id, "state": "finished"}]

    stored = server_run(api, viewer_entity, project_name, run_id)
    assert stored is not None
    assert stored["state"] == "finished"
    assert stored["exitcode"] in (0, None)
    assert sorted(stored["tags"]) == sorted(TAGS)

    # config: W&B's {"key": {"value": v}} with nesting kept, plus the SDK's own "_wandb" entry
    config = stored["config"]
    for key, value in CONFIG.items():
        assert config[key]["value"] == value, key
    assert "t" in config["_wandb"]["value"]

    # history: one line per log() call, NaN/Infinity as W&B's strings, nested dicts flattened
    # to dotted keys as W&B stores them
    assert stored["historyLineCount"] == len(STEPS)
    history = stored["history"]
    assert [row["_step"] for row in history] == list(range(len(STEPS)))
    assert [row["loss"] for row in history] == [1.5, "NaN", "Infinity", "-Infinity", 0.25]
    assert [row["acc"] for row in history] == [s["acc"] for s in STEPS]
    assert (history[0]["nested.a"], history[0]["nested.b.c"]) == (1, "x")
    assert (history[4]["nested.a"], history[4]["nested.b.c"]) == (5, "w")
    assert not any(k.startswith("nested") for k in history[3])
    assert all("_runtime" in row and "_timestamp" in row for row in history)
    assert stored["historyKeys"]["lastStep"] == len(STEPS) - 1
    assert "loss" in stored["historyKeys"]["keys"]

    # summary: the last logged values plus what was set explicitly
    summary = stored["summaryMetrics"]
    assert summary["loss"] == 0.25 and summary["acc"] == 0.5
    assert summary["best"] == {"loss": 0.25, "step": 4}
    assert summary["note"] == "done"
    assert summary["_step"] == len(STEPS) - 1

    # ... and the SDK reads the same back
    public = wb.Api().run(f"{viewer_entity}/{project_name}/{run_id}")
    rows = public.history(keys=["loss"], pandas=False)
    assert [r["loss"] for r in rows] == [1.5, "NaN", "Infinity", "-Infinity", 0.25]
    scanned = list(public.scan_history(keys=["acc"], page_size=2))
    assert [r["acc"] for r in scanned] == [s["acc"] for s in STEPS]
    assert [r["_step"] for r in scanned] == list(range(len(STEPS)))


def test_finish_with_exit_code_marks_run_failed(wb, api, viewer_entity, project_name):
    run = wb.init(project=project_name, entity=viewer_entity)
    run_id = run.id
    run.log({"loss": 1.0})
    run.finish(exit_code=3)

    stored = server_run(api, viewer_entity, project_name, run_id)
    assert stored is not None
    assert stored["state"] == "failed"
    assert stored["exitcode"] == 3
    assert stored["historyLineCount"] == 1


# -- 2. Api().runs(filters, order) == the server's own evaluation ------------------------------
def _days_ago(days: int) -> str:
    return (datetime.now(timezone.utc) - timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%S")


def _cfg(run: dict[str, Any], key: str) -> Any:
    return run["config"].get(key, {}).get("value")


def _sm(run: dict[str, Any], *path: str) -> Any:
    value: Any = run["summaryMetrics"]
    for key in path:
        value = value.get(key) if isinstance(value, dict) else None
    return value


def _num(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


RANGE_LO, RANGE_HI = _days_ago(90), _days_ago(30)

# (case id, project, filters, order, independent predicate over a run, order key or None)
FILTER_CASES: list[tuple[str, str, dict[str, Any], str, Callable[[dict], bool], Any]] = [
    ("state-in", "vision", {"state": {"$in": ["crashed", "failed"]}}, "+created_at",
     lambda r: r["state"] in ("crashed", "failed"), ("createdAt", False)),
    ("summary-gt", "nlp", {"summary_metrics.val/acc": {"$gt": 0.8}}, "-summary_metrics.loss",
     lambda r: _num(_sm(r, "val/acc")) and _sm(r, "val/acc") > 0.8, ("loss", True)),
    ("config-short-form", "vision", {"config.lr": 0.001}, "-created_at",
     lambda r: _cfg(r, "lr") == 0.001, ("createdAt", True)),
    ("config-value-in", "rl", {"config.lr.value": {"$in": [0.1, 0.03]}}, "+config.lr.value",
     lambda r: _cfg(r, "lr") in (0.1, 0.03), ("lr", False)),
    ("config-nested-short-form", "nlp",
     {"$and": [{"config.optimizer.name": "sgd"}, {"config.batch_size.value": {"$gte": 64}}]},
     "+config.lr.value",
     lambda r: _cfg(r, "optimizer")["name"] == "sgd" and _cfg(r, "batch_size") >= 64, ("lr", False)),
    ("tags-eq", "vision", {"tags": "baseline"}, "-summary_metrics.loss",
     lambda r: "baseline" in r["tags"], ("loss", True)),
    ("or", "nlp", {"$or": [{"state": "running"}, {"tags": "tmp"}]}, "-created_at",
     lambda r: r["state"] == "running" or "tmp" in r["tags"], ("createdAt", True)),
    ("and-summary-nested", "vision",
     {"$and": [{"state": "finished"}, {"summary_metrics.best.val/acc": {"$gte": 0.85}},
               {"summary_metrics.loss": {"$lt": 0.5}}]}, "+config.lr.value",
     lambda r: r["state"] == "finished" and _sm(r, "best", "val/acc") >= 0.85 and _sm(r, "loss") < 0.5,
     ("lr", False)),
    ("nor", "rl", {"$nor": [{"state": "finished"}, {"tags": "baseline"}]}, "+created_at",
     lambda r: r["state"] != "finished" and "baseline" not in r["tags"], ("createdAt", False)),
    ("regex-display-name", "vision", {"display_name": {"$regex": "^adam-(32|64)-"}}, "-summary_metrics.loss",
     lambda r: re.search("^adam-(32|64)-", r["displayName"]) is not None, ("loss", True)),
    ("created-at-range", "vision", {"createdAt": {"$gte": RANGE_LO, "$lt": RANGE_HI}}, "-created_at",
     lambda r: RANGE_LO <= r["createdAt"] < RANGE_HI, ("createdAt", True)),
    ("created-at-snake-and-state", "nlp",
     {"$and": [{"created_at": {"$gt": RANGE_HI}}, {"state": {"$nin": ["finished", "killed"]}}]},
     "-summary_metrics.loss",
     lambda r: r["createdAt"] > RANGE_HI and r["state"] not in ("finished", "killed"), ("loss", True)),
    ("no-filter", "rl", {}, "-created_at", lambda r: True, ("createdAt", True)),
    ("matches-nothing", "rl", {"state": "no-such-state"}, "+created_at", lambda r: False, None),
]


@pytest.fixture(scope="module")
def demo_runs(api) -> Callable[[str], list[dict[str, Any]]]:
    """Every run of a demo project with the fields the predicates read (fetched once per project)."""
    cache: dict[str, list[dict[str, Any]]] = {}

    def get(project: str) -> list[dict[str, Any]]:
        if project not in cache:
            runs, after = [], None
            while True:
                conn = api.ok(ALL_RUNS_QUERY, {"entity": "demo", "project": project,
                                               "after": after})["project"]["runs"]
                for edge in conn["edges"]:
                    node = edge["node"]
                    node["config"] = json.loads(node["config"])
                    node["summaryMetrics"] = json.loads(node["summaryMetrics"])
                    runs.append(node)
                if not conn["pageInfo"]["hasNextPage"]:
                    break
                after = conn["pageInfo"]["endCursor"]
            cache[project] = runs
        return cache[project]

    return get


def _order_value(run: dict[str, Any], key: str) -> Any:
    return {"createdAt": lambda: run["createdAt"], "loss": lambda: _sm(run, "loss"),
            "lr": lambda: _cfg(run, "lr")}[key]()


@pytest.mark.parametrize("case", FILTER_CASES, ids=[c[0] for c in FILTER_CASES])
def test_api_runs_matches_server_filters_and_order(wb, api, demo_runs, case):
    _, project, filters, order, predicate, order_key = case
    expected, run_count = server_run_ids(api, "demo", project, filters, order)

    sdk_api = wb.Api()
    runs = sdk_api.runs(f"demo/{project}", filters=filters, order=order, per_page=50)
    got = [run.id for run in runs]
    assert got == expected
    assert len(runs) == run_count == len(expected)
    assert len(set(got)) == len(got)

    # An independent check of the server's evaluation over the demo data.
    everything = demo_runs(project)
    assert set(expected) == {r["name"] for r in everything if predicate(r)}
    if case[0] == "matches-nothing":
        assert expected == []
    else:
        assert expected, "the case should select something"
        if filters:
            assert len(expected) < len(everything), "the filter should leave some runs out"
    if order_key is not None and expected:
        key, descending = order_key
        by_name = {r["name"]: r for r in everything}
        values = [_order_value(by_name[name], key) for name in expected]
        assert values == sorted(values, reverse=descending)


def test_api_runs_pagination_covers_a_large_project(wb, api):
    """~1200 runs at per_page=50: two dozen SDK pages must give the server's full order, no gaps or repeats."""
    expected, run_count = server_run_ids(api, "demo", "vision", {}, "+created_at")
    assert run_count > 1000  # the demo seed's 1200, less whatever other suites deleted
    runs = wb.Api().runs("demo/vision", order="+created_at", per_page=50)
    got = [run.id for run in runs]
    assert len(runs) == run_count == len(expected)
    assert got == expected
    assert len(set(got)) == len(got)


# -- 3. Api().run: read, update, delete; a deleted id cannot be reused -------------------------
def test_api_run_read_update_delete(wb, api, viewer_entity, project_name):
    run = wb.init(entity=viewer_entity, project=project_name, name="first-name",
                  config={"lr": 0.01, "optimizer": {"name": "adam", "momentum": 0.9}},
                  tags=["keep", "drop"])
    run_id = run.id
    for step in range(3):
        run.log({"loss": 1.0 / (step + 1), "val/acc": 0.3 * step})
    run.summary["best"] = {"val/acc": 0.6, "epoch": 2}
    run.finish()
    other_id = sdk_run_id(wb, viewer_entity, project_name)  # a neighbour that must survive
    path = f"{viewer_entity}/{project_name}/{run_id}"

    public = wb.Api().run(path)
    assert public.id == run_id
    assert public.name == "first-name"
    assert public.state == "finished"
    assert sorted(public.tags) == ["drop", "keep"]
    assert public.config == {"lr": 0.01, "optimizer": {"name": "adam", "momentum": 0.9}}
    assert public.summary["loss"] == pytest.approx(1 / 3)
    assert public.summary["val/acc"] == pytest.approx(0.6)
    assert public.summary_metrics["best"] == {"val/acc": 0.6, "epoch": 2}
    assert public.lastHistoryStep == 2

    public.tags.remove("drop")
    public.tags.append("promoted")
    public.name = "renamed"
    public.config["lr"] = 0.5
    public.summary["extra"] = 42
    public.summary["loss"] = 0.125
    public.update()

    stored = server_run(api, viewer_entity, project_name, run_id)
    assert stored is not None
    assert stored["displayName"] == "renamed"
    assert sorted(stored["tags"]) == ["keep", "promoted"]
    assert stored["config"]["lr"]["value"] == 0.5
    assert stored["config"]["optimizer"]["value"] == {"name": "adam", "momentum": 0.9}
    assert "_wandb" in stored["config"]  # update() resends the SDK's internal config
    assert stored["summaryMetrics"]["extra"] == 42
    assert stored["summaryMetrics"]["loss"] == 0.125
    assert stored["summaryMetrics"]["best"] == {"val/acc": 0.6, "epoch": 2}  # the rest is kept
    assert stored["state"] == "finished" and stored["historyLineCount"] == 3

    again = wb.Api().run(path)  # a fresh Api: nothing cached
    assert again.name == "renamed"
    assert sorted(again.tags) == ["keep", "promoted"]
    assert again.config["lr"] == 0.5
    assert again.summary["extra"] == 42 and again.summary["loss"] == 0.125

    count_before = stored["runCount"]
    again.delete()
    with pytest.raises((wb.errors.CommError, ValueError), match="Could not find run"):
        wb.Api().run(path)
    assert server_run(api, viewer_entity, project_name, run_id) is None
    names = api.ok("""query($e: String, $p: String) { project(entityName: $e, name: $p) {
        runCount runs(first: 100) { edges { node { name } } } } }""",
                   {"e": viewer_entity, "p": project_name})["project"]
    assert names["runCount"] == count_before - 1
    assert [e["node"]["name"] for e in names["runs"]["edges"]] == [other_id]

    # W&B refuses to reuse the id of a deleted run; the SDK must surface that, not hang.
    start = time.monotonic()
    with pytest.raises(wb.errors.Error) as info:  # "Error initializing run: <server message>"
        wb.init(id=run_id, entity=viewer_entity, project=project_name)
    assert time.monotonic() - start < 30
    message = str(info.value).lower()
    assert "deleted" in message and ("reuse" in message or "reused" in message), info.value
    assert server_run(api, viewer_entity, project_name, run_id) is None
    assert wb.run is None


# -- 4. a bad API key fails fast with an auth error ------------------------------------------
def test_bad_key_public_api_fails_fast(wb):
    start = time.monotonic()
    with pytest.raises(wb.errors.AuthenticationError, match=AUTH_MESSAGE):
        wb.Api(api_key=BAD_KEY).viewer
    assert time.monotonic() - start < 10


def test_bad_key_login_verify_fails_fast(wb):
    start = time.monotonic()
    with pytest.raises(wb.errors.AuthenticationError, match=AUTH_MESSAGE):
        wb.login(key=BAD_KEY, relogin=True, verify=True)
    assert time.monotonic() - start < 10


def test_bad_key_from_env_fails_fast_for_api_and_init(wb, monkeypatch, project_name):
    wb.teardown()  # forget the session's good credentials
    monkeypatch.setenv("WANDB_API_KEY", BAD_KEY)
    try:
        start = time.monotonic()
        with pytest.raises(wb.errors.CommError, match=AUTH_MESSAGE):
            list(wb.Api().runs("demo/rl", per_page=10))
        assert time.monotonic() - start < 10

        start = time.monotonic()
        with pytest.raises(wb.errors.CommError, match=AUTH_MESSAGE):
            wb.init(project=project_name)
        assert time.monotonic() - start < 10
        assert wb.run is None
    finally:
        wb.teardown()
        monkeypatch.undo()
    # and the good key works again afterwards
    assert wb.Api().viewer.username


# -- 5. resume="allow" appends to the history ------------------------------------------------
def test_resume_allow_continues_history(wb, api, viewer_entity, project_name):
    run_id = "resume" + uuid.uuid4().hex[:8]
    run = wb.init(id=run_id, entity=viewer_entity, project=project_name, config={"phase": 1})
    for step in range(3):
        run.log({"x": step, "phase": 1})
    run.finish()
    first = server_run(api, viewer_entity, project_name, run_id)
    assert first is not None and first["historyLineCount"] == 3 and first["state"] == "finished"

    run = wb.init(id=run_id, entity=viewer_entity, project=project_name, resume="allow")
    assert run.resumed
    assert run.starting_step == 3
    for step in range(2):
        run.log({"x": 10 + step, "phase": 2})
    run.finish()

    stored = server_run(api, viewer_entity, project_name, run_id)
    assert stored is not None
    assert stored["state"] == "finished"
    assert stored["historyLineCount"] == 5
    assert [row["_step"] for row in stored["history"]] == [0, 1, 2, 3, 4]
    assert [row["x"] for row in stored["history"]] == [0, 1, 2, 10, 11]
    assert [row["phase"] for row in stored["history"]] == [1, 1, 1, 2, 2]
    assert stored["history"][:3] == first["history"]  # appended, not overwritten
    assert stored["historyKeys"]["lastStep"] == 4
    assert stored["summaryMetrics"]["x"] == 11
    assert stored["config"]["phase"]["value"] == 1  # resumed config is kept
    assert stored["runCount"] == 1  # the same run, not a second one
