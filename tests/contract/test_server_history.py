"""Run history as W&B serves it, on a run written through file_stream: history(minStep, maxStep,
samples) pages by step range (maxStep exclusive), sampledHistory (inclusive range, only rows with
the keys, at most `samples`, first and last kept), historyKeys; and a 100,000-step run pages fast."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

UPSERT = "mutation U($input: UpsertBucketInput!) { upsertBucket(input: $input) { inserted } }"
HISTORY = """query H($n: String!, $min: Int64, $max: Int64, $s: Int) { project(name: "p", entityName: "local") {
  run(name: $n) { history(minStep: $min, maxStep: $max, samples: $s) } } }"""
SAMPLED = """query S($n: String!, $specs: [JSONString!]!) { project(name: "p", entityName: "local") {
  run(name: $n) { sampledHistory(specs: $specs) historyKeys } } }"""


def make_run(api: Any, name: str, steps: int, row: Any, batch: int = 10_000) -> None:
    api.ok(UPSERT, {"input": {"modelName": "p", "entityName": "local", "name": name}})
    for start in range(0, steps, batch):
        lines = [json.dumps({"_step": i, **row(i)}) for i in range(start, min(start + batch, steps))]
        reply = api.post(f"/files/local/p/{name}/file_stream",
                         {"files": {"wandb-history.jsonl": {"offset": start, "content": lines}}})
        assert reply.status == 200


def history(api: Any, name: str, lo: int | None = None, hi: int | None = None, samples: int | None = None):
    data = api.ok(HISTORY, {"n": name, "min": lo, "max": hi, "s": samples})
    return [json.loads(r) for r in data["project"]["run"]["history"]]


def sampled(api: Any, name: str, *specs: dict[str, Any]) -> Any:
    run = api.ok(SAMPLED, {"n": name, "specs": [json.dumps(s) for s in specs]})["project"]["run"]
    return run["sampledHistory"], run["historyKeys"]


def _row(i: int) -> dict[str, Any]:
    row: dict[str, Any] = {"loss": 1 / (i + 1), "opt": {"lr": i, "beta": {"one": 0.9}}}
    if i % 3 == 0:
        row["val"] = {"acc": i}
    if i == 7:
        row["loss"] = float("nan")  # json.dumps writes a bare NaN, as the SDK does
    return row


@pytest.fixture
def small(fresh_api) -> Any:
    make_run(fresh_api, "h", 20, _row, batch=6)
    return fresh_api


def test_history_pages_by_step_range_max_exclusive(small):
    full = history(small, "h")
    assert [r["_step"] for r in full] == list(range(20))
    pages = [history(small, "h", lo, lo + 6) for lo in range(0, 20, 6)]
    assert [[r["_step"] for r in p] for p in pages] == [list(range(lo, min(lo + 6, 20))) for lo in range(0, 20, 6)]
    assert [r for p in pages for r in p] == full  # no gap, no duplicate
    assert history(small, "h", 20, 30) == [] and history(small, "h", 5, 5) == []
    assert full[7]["loss"] == "NaN"  # strict JSON in the response
    assert full[3]["opt.beta.one"] == 0.9 and full[3]["val.acc"] == 3 and "opt" not in full[3]


def test_history_samples_keep_first_and_last(small):
    rows = history(small, "h", 2, 17, samples=4)
    assert [r["_step"] for r in rows] == [2, 7, 11, 16]
    assert len(history(small, "h", samples=50)) == 20


def test_sampled_history_specs_keys_range_and_samples(small):
    (val, lr, capped), keys = sampled(
        small, "h",
        {"keys": ["_step", "val.acc"], "samples": 100},
        {"keys": ["_step", "opt.lr"], "minStep": 4, "maxStep": 6},
        {"keys": ["_step", "loss"], "samples": 5})
    assert val == [{"_step": i, "val.acc": i} for i in range(0, 20, 3)]  # only rows with the key
    assert lr == [{"_step": i, "opt.lr": i} for i in (4, 5, 6)]  # both bounds inclusive
    assert len(capped) == 5 and capped[0]["_step"] == 0 and capped[-1]["_step"] == 19
    assert keys["lastStep"] == 19
    assert keys["keys"]["val.acc"]["typeCounts"] == [{"type": "number", "count": 7}]
    assert keys["keys"]["opt.beta.one"]["typeCounts"] == [{"type": "number", "count": 20}]
    assert "opt" not in keys["keys"] and "val" not in keys["keys"]


def test_media_dicts_are_not_flattened(fresh_api):
    table = {"_type": "table-file", "path": "media/table/t_0_ab.table.json", "nrows": 2}
    make_run(fresh_api, "m", 2, lambda i: {"t": table, "empty": {}})
    rows = history(fresh_api, "m")
    assert rows[0]["t"] == table and rows[0]["empty"] == {}


@pytest.mark.parametrize("spec, needle", [
    ('{"keys": "loss"}', "keys"), ('{"keys": ["loss"], "minStep": "a"}', "minStep"),
    ('{"keys": ["loss"], "samples": 1.5}', "samples"), ('[1]', "JSON object"), ("{", "not valid JSON"),
])
def test_bad_sampled_history_spec_is_a_graphql_error(small, spec, needle):
    reply = small.gql(SAMPLED, {"n": "h", "specs": [spec]})
    assert reply.status == 200 and reply.errors and needle in reply.errors[0]["message"]
    assert "SELECT" not in reply.errors[0]["message"]


def test_100k_step_run_pages_of_1000_are_fast(fresh_api):
    steps, page = 100_000, 1_000
    make_run(fresh_api, "big", steps, lambda i: {"loss": 1 / (i + 1), "acc": i % 97})
    plan = fresh_api.server.server.store.conn.execute(
        "EXPLAIN QUERY PLAN SELECT row FROM history WHERE run_id = 1 AND step >= 5 AND step < 10 ORDER BY step, line"
    ).fetchall()
    assert any("history_run_step" in str(tuple(p)) for p in plan), plan
    timings = []
    for lo in (0, 50_000, 99_000):
        t0 = time.perf_counter()
        rows = history(fresh_api, "big", lo, lo + page)
        timings.append(time.perf_counter() - t0)
        assert [r["_step"] for r in rows] == list(range(lo, lo + page))
    t0 = time.perf_counter()
    (tail,), _ = sampled(fresh_api, "big", {"keys": ["_step", "acc"], "minStep": 98_000, "maxStep": 98_999})
    timings.append(time.perf_counter() - t0)
    assert len(tail) == page
    print(f"100k-step run, page of {page}: " + ", ".join(f"{t * 1000:.1f} ms" for t in timings))
    # A page seeks the (run_id, step) index instead of scanning the run (~17 ms a page without it).
    assert max(timings) < 0.25, timings


def test_sampled_history_keys_with_quotes_and_dots(fresh_api):
    make_run(fresh_api, "q", 4, lambda i: {'say "hi"': i} if i % 2 else {"a.b": i})
    (quoted, dotted), _ = sampled(fresh_api, "q", {"keys": ["_step", 'say "hi"']}, {"keys": ["a.b"]})
    assert quoted == [{"_step": 1, 'say "hi"': 1}, {"_step": 3, 'say "hi"': 3}]
    assert dotted == [{"a.b": 0}, {"a.b": 2}]
