"""Client.history against the local server: the demo seed, samples vs full, step ranges, NaN."""

from __future__ import annotations

import math

import orjson
import pytest

from wandb_gql import SyncClient
from wandb_gql.errors import UsageError


def collect(client, *args, **kw):
    """{run name: rows} and the order each run ended in, checking each run ends exactly once."""
    rows: dict[str, list[dict]] = {}
    ended: list[str] = []
    for run, chunk in client.history(*args, **kw):
        assert run.name not in ended, "rows after the run's end mark"
        if chunk:
            rows.setdefault(run.name, []).extend(chunk)
        else:
            ended.append(run.name)
    assert len(ended) == len(set(ended))
    return rows, ended


@pytest.fixture(scope="module")
def sync(server):
    with SyncClient(server.base_url, server.api_key) as c:
        yield c


def test_every_demo_run_has_history(sync):
    names = list(sync.run_ids("demo/rl"))
    rows, ended = collect(sync, "demo/rl", keys=["loss"])
    assert sorted(ended) == sorted(names) and len(names) > 0
    assert set(rows) == set(names)
    for run_rows in rows.values():
        steps = [r["_step"] for r in run_rows]
        assert steps == sorted(steps) and len(steps) <= 500
        assert all(set(r) == {"_step", "loss"} for r in run_rows)


def test_samples_keep_first_and_last_and_full_has_every_row(sync):
    where = "state = finished"
    full, _ = collect(sync, "demo/nlp", where=where, keys=["loss"], full=True, page_size=3)
    sampled, _ = collect(sync, "demo/nlp", where=where, keys=["loss"], samples=4)
    assert set(full) == set(sampled)
    for name, every in full.items():
        steps = [r["_step"] for r in every]
        assert steps == sorted(set(steps)), "full pages overlap or reorder"
        few = sampled[name]
        assert len(few) == min(4, len(every))
        assert few[0] == every[0] and few[-1] == every[-1]
        assert all(r in every for r in few)


def test_full_equals_the_unpaged_history(sync, api):
    run = next(iter(sync.runs("demo/vision", limit=1)))
    reply = api.ok('query { project(name: "vision", entityName: "demo") { run(name: "%s") { history } } }' % run.name)
    expected = [orjson.loads(r) for r in reply["project"]["run"]["history"]]
    expected = [{"_step": r["_step"], "loss": r["loss"]} for r in expected if "loss" in r]
    for page_size in (1, 2, 5, 1000):
        got, _ = collect(sync, [run], keys=["loss"], full=True, page_size=page_size)
        assert got[run.name] == expected


def test_step_ranges_max_exclusive(sync):
    run = next(iter(sync.runs("demo/vision", limit=1)))
    for full in (True, False):
        kw = {"full": True, "page_size": 2} if full else {}
        got, ended = collect(sync, [run], keys=["loss"], min_step=2, max_step=5, **kw)
        assert [r["_step"] for r in got[run.name]] == [2, 3, 4]
        assert ended == [run.name]


def test_bad_input_is_refused_before_sending(sync):
    with pytest.raises(UsageError):
        list(sync.history("demo/rl", keys=[]))
    with pytest.raises(UsageError):
        list(sync.history("demo/rl", keys=["loss"], samples=10, full=True))


def test_nan_and_infinity_read_back_as_floats(fresh_server, fresh_api):
    viewer = fresh_api.ok("query { viewer { entity } }")["viewer"]["entity"]
    fresh_api.ok("mutation U($input: UpsertBucketInput!) { upsertBucket(input: $input) { bucket { id } } }",
                 {"input": {"entityName": viewer, "modelName": "nan", "name": "r1"}})
    lines = ['{"_step": 0, "loss": NaN, "acc": 1.0}', '{"_step": 1, "loss": Infinity, "acc": -Infinity}',
             '{"_step": 2, "loss": 0.5, "acc": 0.25}']
    body = {"files": {"wandb-history.jsonl": {"offset": 0, "content": lines}}}
    assert fresh_api.post(f"/files/{viewer}/nan/r1/file_stream", body).status == 200
    with SyncClient(fresh_server.base_url, fresh_server.api_key) as c:
        for kw in ({}, {"full": True}):
            got, _ = collect(c, f"{viewer}/nan", keys=["loss", "acc"], **kw)
            rows = got["r1"]
            assert math.isnan(rows[0]["loss"]) and rows[0]["acc"] == 1.0
            assert rows[1]["loss"] == math.inf and rows[1]["acc"] == -math.inf
            assert rows[2] == {"_step": 2, "loss": 0.5, "acc": 0.25}
