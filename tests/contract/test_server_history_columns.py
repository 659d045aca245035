"""sampledHistory read from the per-key columns (history_columns) answers exactly what the rows
say: for random histories written through file_stream the way clients break them (sparse keys,
nested dicts, NaN/Infinity, strings with commas and quotes, media dicts, lists, nulls, lines
re-sent as they were or changed, gaps filled later, steps out of order, repeated or missing),
every spec (keys, samples, minStep/maxStep across the 1,000-entry chunk boundaries) equals a
reference computed in this file from the rows the server returns through `history` (the row
table, the source of truth). Also: the bulk insert path, run deletion, and a database written
before the columns existed (built once on open)."""

from __future__ import annotations

import json
import random
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from wandb_gql.server.local import LocalServer

UPSERT = "mutation U($input: UpsertBucketInput!) { upsertBucket(input: $input) { inserted } }"
ROWS = """query H($n: String!) { project(name: "p", entityName: "local") { run(name: $n) { history } } }"""
SAMPLED = """query S($n: String!, $specs: [JSONString!]!) { project(name: "p", entityName: "local") {
  run(name: $n) { sampledHistory(specs: $specs) } } }"""

WEIRD_KEY = 'odd "key", 100% \\ é'
TABLE = {"_type": "table-file", "path": "media/table/t.table.json", "nrows": 2}


def _value(rng: random.Random) -> Any:
    pick = rng.random()
    if pick < 0.55:
        return rng.choice([rng.random(), rng.uniform(-1e6, 1e6), rng.randrange(-10**12, 10**12), -0.0, 5e-324])
    if pick < 0.65:
        return rng.choice([float("nan"), float("inf"), float("-inf")])  # json.dumps: bare NaN, as the SDK
    if pick < 0.75:
        return rng.choice(["a,b", 'say "hi"', "[1, 2]", "{x}", "", "NaN", "é\u2028\\"])
    if pick < 0.85:
        return rng.choice([None, True, False, [1, [2, 3.5]], [], {}])
    if pick < 0.92:
        return dict(TABLE, nrows=rng.randrange(5))  # media: kept whole, never flattened
    return {"deep": {"x": rng.random(), "y": [1, 2]}}  # flattened to <key>.deep.x, <key>.deep.y


def _row(rng: random.Random, line: int) -> dict[str, Any]:
    row: dict[str, Any] = {}
    kind = rng.random()
    if kind < 0.8:
        row["_step"] = line
    elif kind < 0.9:
        row["_step"] = rng.randrange(0, 3000)  # out of order or repeated
    elif kind < 0.95:
        row["_step"] = rng.choice([1.5, "7", None])  # not an int step: only unranged reads see it
    # (else: no _step at all)
    row["loss"] = rng.random() if rng.random() < 0.97 else float("nan")
    for key, p in (("acc", 0.6), ("rare", 0.05), ("v", 0.5), (WEIRD_KEY, 0.3)):
        if rng.random() < p:
            row[key] = _value(rng)
    if rng.random() < 0.5:
        row["opt"] = {"lr": rng.random(), "beta": {"one": 0.9}}
    if rng.random() < 0.1:
        row["t"] = TABLE
    return row


def _post(api: Any, name: str, offset: int, rows: list[dict[str, Any]]) -> None:
    reply = api.post(f"/files/local/p/{name}/file_stream",
                     {"files": {"wandb-history.jsonl": {"offset": offset, "content": [json.dumps(r) for r in rows]}}})
    assert reply.status == 200, reply.body


def write_randomly(api: Any, name: str, n: int, rng: random.Random) -> None:
    """n lines in batches, with a retried batch, a gap filled later, a stored line rewritten and a
    batch overlapping what is stored."""
    api.ok(UPSERT, {"input": {"modelName": "p", "entityName": "local", "name": name}})
    lines = [_row(rng, i) for i in range(n)]
    held_back: tuple[int, int] | None = None
    start = 0
    while start < n:
        size = rng.choice([1, 7, 150, 400, 999, 1001])
        end = min(n, start + size)
        if held_back is None and start > 0 and rng.random() < 0.2:
            held_back = (start, end)  # a gap: sent after later lines
        else:
            _post(api, name, start, lines[start:end])
            if rng.random() < 0.2:
                _post(api, name, start, lines[start:end])  # a retry: the same lines again
            if rng.random() < 0.15 and start:
                back = rng.randrange(max(0, start - 50), start)  # overlap: stored lines then new ones
                _post(api, name, back, lines[back:end])
        start = end
    if held_back is not None:
        _post(api, name, held_back[0], lines[held_back[0]:held_back[1]])
    if n > 10 and rng.random() < 0.7:
        at = rng.randrange(n - 5)
        lines[at] = {**_row(rng, at), "rewritten": True}  # the same line, other content
        _post(api, name, at, lines[at:at + 3])


def stored_rows(api: Any, name: str) -> list[dict[str, Any]]:
    return [json.loads(r) for r in api.ok(ROWS, {"n": name})["project"]["run"]["history"]]


def reference(rows: list[dict[str, Any]], spec: dict[str, Any]) -> list[dict[str, Any]]:
    """sampledHistory from whole rows (in line order): rows holding every key; with a step range
    (both ends inclusive) only int steps inside it, in (step, line) order; evenly spaced samples
    keeping the first and last; projected to the keys in the order asked."""
    keys = list(dict.fromkeys(spec["keys"]))
    lo, hi = spec.get("minStep"), spec.get("maxStep")
    if lo is None and hi is None:
        chosen = rows
    else:
        stepped = [(r["_step"], i, r) for i, r in enumerate(rows)
                   if type(r.get("_step")) is int and (lo is None or r["_step"] >= lo) and (hi is None or r["_step"] <= hi)]
        chosen = [r for _, _, r in sorted(stepped, key=lambda t: (t[0], t[1]))]
    out = [{k: r[k] for k in keys} for r in chosen if all(k in r for k in keys)]
    samples = spec.get("samples")
    if samples and len(out) > samples:
        out = [out[-1]] if samples == 1 else [out[round(i * (len(out) - 1) / (samples - 1))] for i in range(samples)]
    return out


def specs_for(n: int, rng: random.Random) -> list[dict[str, Any]]:
    key_sets = [["_step", "loss"], ["_step", "loss", "acc"], ["acc", "v"], ["_step", "opt.lr", "opt.beta.one"],
                ["_step", WEIRD_KEY], ["rare", "loss"], ["_step", "t"], ["_step", "v.deep.x", "v.deep.y"],
                ["_step", "rewritten"], ["nope"], ["loss", "loss", "_step"], ["opt"]]
    ranges: list[tuple[int | None, int | None]] = [(None, None), (None, None), (0, 999), (995, 1005),
                                                   (1000, 1999), (250, None), (None, 1000), (1200, 1100)]
    specs = []
    for keys in key_sets:
        for lo, hi in rng.sample(ranges, 3):
            spec: dict[str, Any] = {"keys": keys}
            samples = rng.choice([None, 0, 1, 2, 7, 500, n, n + 5])
            if samples is not None:
                spec["samples"] = samples
            if lo is not None:
                spec["minStep"] = lo
            if hi is not None:
                spec["maxStep"] = hi
            specs.append(spec)
    return specs


def check(api: Any, name: str, rng: random.Random) -> int:
    rows = stored_rows(api, name)
    specs = specs_for(len(rows), rng)
    got = api.ok(SAMPLED, {"n": name, "specs": [json.dumps(s) for s in specs]})["project"]["run"]["sampledHistory"]
    for spec, answer in zip(specs, got):
        # Compared as JSON text: the same values (-0.0, 5e-324, "NaN" strings), keys in the same order.
        assert json.dumps(answer) == json.dumps(reference(rows, spec)), spec
    return sum(len(a) for a in got)


@pytest.mark.parametrize("seed, n", [(1, 1), (2, 999), (3, 1000), (4, 1001), (5, 2600)])
def test_columns_answer_what_the_rows_say(fresh_api, seed, n):
    rng = random.Random(seed)
    write_randomly(fresh_api, f"r{seed}", n, rng)
    rows = stored_rows(fresh_api, f"r{seed}")
    assert len(rows) == n and "opt" not in {k for r in rows for k in r}  # flattened as stored
    assert check(fresh_api, f"r{seed}", rng) > 0


def test_lines_sent_again_as_they_were_change_nothing_and_changed_ones_are_read_back(fresh_api):
    rng = random.Random(9)
    fresh_api.ok(UPSERT, {"input": {"modelName": "p", "entityName": "local", "name": "re"}})
    lines = [{"_step": i, "loss": i / 10, **({"acc": i} if i % 2 else {})} for i in range(1500)]
    _post(fresh_api, "re", 0, lines[:1200])
    conn = fresh_api.server.server.store.conn
    before = conn.execute("SELECT * FROM history_columns ORDER BY key, chunk").fetchall()
    _post(fresh_api, "re", 0, lines[:1200])  # a retry
    assert conn.execute("SELECT * FROM history_columns ORDER BY key, chunk").fetchall() == before
    _post(fresh_api, "re", 1100, lines[1100:])  # stored lines then new ones
    lines[5] = {"_step": 5, "acc": "changed"}  # loss gone from line 5, acc now a string
    _post(fresh_api, "re", 5, lines[5:6])
    spec = {"keys": ["_step", "loss", "acc"]}
    (got,) = fresh_api.ok(SAMPLED, {"n": "re", "specs": [json.dumps(spec)]})["project"]["run"]["sampledHistory"]
    assert got == reference(lines, spec) and got[0] == {"_step": 1, "loss": 0.1, "acc": 1}
    (acc,) = fresh_api.ok(SAMPLED, {"n": "re", "specs": [json.dumps({"keys": ["acc"], "minStep": 4,
                                                                      "maxStep": 7})]})["project"]["run"]["sampledHistory"]
    assert acc == [{"acc": "changed"}, {"acc": 7}]
    assert check(fresh_api, "re", rng) > 0


def test_columns_are_chunks_of_1000_and_a_step_range_reads_only_its_chunks(fresh_api):
    fresh_api.ok(UPSERT, {"input": {"modelName": "p", "entityName": "local", "name": "c"}})
    for start in range(0, 2500, 300):
        _post(fresh_api, "c", start, [{"_step": i, "loss": i * 0.5} for i in range(start, min(2500, start + 300))])
    conn = fresh_api.server.server.store.conn
    chunks = conn.execute("SELECT key, chunk, first_line, n, min_step, max_step, lines, steps FROM history_columns"
                          " WHERE key = 'loss' ORDER BY chunk").fetchall()
    # consecutive lines whose steps are their lines store neither
    assert [tuple(c) for c in chunks] == [("loss", 0, 0, 1000, 0, 999, None, None),
                                          ("loss", 1, 1000, 1000, 1000, 1999, None, None),
                                          ("loss", 2, 2000, 500, 2000, 2499, None, None)]
    (page,) = fresh_api.ok(SAMPLED, {"n": "c", "specs": [json.dumps(
        {"keys": ["_step", "loss"], "minStep": 1000, "maxStep": 1999, "samples": 1000})]})["project"]["run"]["sampledHistory"]
    assert page == [{"_step": i, "loss": i * 0.5} for i in range(1000, 2000)]


def test_bulk_insert_and_deleted_runs(fresh_server, fresh_api):
    store = fresh_server.server.store
    fresh_api.ok(UPSERT, {"input": {"modelName": "p", "entityName": "local", "name": "bulk"}})
    ids = {"bulk": store.conn.execute("SELECT id FROM runs WHERE name = 'bulk'").fetchone()[0]}
    rng = random.Random(4)
    rows = [{"_step": i, "loss": rng.random(), "nested": {"a": i, "t": TABLE}, **({"odd": "x,y"} if i % 3 else {})}
            for i in range(1300)]
    with store.writing():  # the seed's and the benchmarks' way in
        store.insert_history([(ids["bulk"], rows)])
    stored = stored_rows(fresh_api, "bulk")
    assert stored[3] == {"_step": 3, "loss": rows[3]["loss"], "nested.a": 3, "nested.t": TABLE}
    assert check(fresh_api, "bulk", rng) > 0
    conn = store.conn
    assert conn.execute("SELECT count(*) FROM history_columns WHERE run_id = ?", (ids["bulk"],)).fetchone()[0] == 9
    with store.writing():
        conn.execute("DELETE FROM runs WHERE id = ?", (ids["bulk"],))  # what the purge does
    assert conn.execute("SELECT count(*) FROM history_columns").fetchone()[0] == 0


def _without_columns(db: Path) -> None:
    """Make `db` look written by a version before history_columns: no table, no marker."""
    conn = sqlite3.connect(db)
    conn.execute("DROP TABLE history_columns")
    conn.execute("DELETE FROM meta WHERE key = 'history_columns'")
    conn.commit()
    conn.close()


def test_a_database_without_columns_gets_them_once_on_open(tmp_path):
    from tests.conftest import Caller

    db = tmp_path / "old.db"
    rng = random.Random(11)
    with LocalServer(db) as server:
        api = Caller(server)
        write_randomly(api, "a", 1234, rng)
        write_randomly(api, "b", 40, rng)
        want = {name: stored_rows(api, name) for name in ("a", "b")}
    _without_columns(db)
    with LocalServer(db) as server:
        api = Caller(server)
        conn = server.server.store.conn
        assert conn.execute("SELECT value FROM meta WHERE key = 'history_columns'").fetchone() is not None
        built = conn.execute("SELECT count(DISTINCT run_id) FROM history_columns").fetchone()[0]
        assert built == 2
        for name in ("a", "b"):
            assert stored_rows(api, name) == want[name]
            assert check(api, name, rng) > 0
        _post(api, "a", 1234, [{"_step": 1234, "loss": 0.5}])  # appends go on from the built columns
        assert check(api, "a", rng) > 0
        snapshot = conn.execute("SELECT * FROM history_columns ORDER BY run_id, key, chunk").fetchall()
    with LocalServer(db) as server:  # built once: opening again leaves them as they are
        conn = server.server.store.conn
        assert conn.execute("SELECT * FROM history_columns ORDER BY run_id, key, chunk").fetchall() == snapshot


def test_a_key_logged_in_two_stretches_keeps_its_gap(fresh_api):
    fresh_api.ok(UPSERT, {"input": {"modelName": "p", "entityName": "local", "name": "gap"}})
    rows = [{"_step": i, "b": i, **({"a": -i} if i < 1000 or i >= 1500 else {})} for i in range(2500)]
    _post(fresh_api, "gap", 0, rows[:1000])
    _post(fresh_api, "gap", 1000, rows[1000:])
    specs = [{"keys": ["_step", "a", "b"]}, {"keys": ["a"], "minStep": 990, "maxStep": 1510},
             {"keys": ["b", "a"], "samples": 3}]
    got = fresh_api.ok(SAMPLED, {"n": "gap", "specs": [json.dumps(s) for s in specs]})["project"]["run"]["sampledHistory"]
    assert [len(g) for g in got] == [2000, 21, 3]
    for spec, answer in zip(specs, got):
        assert answer == reference(rows, spec)


def test_step_values_that_equal_their_line_only_as_numbers_come_back_as_logged(fresh_api):
    # `_step` columns whose steps are their lines are read without splitting (the SDK's case);
    # a bool is an int to Python (True == 1) and 1.0 == 1: neither may come back as the line number.
    fresh_api.ok(UPSERT, {"input": {"modelName": "p", "entityName": "local", "name": "steps"}})
    rows = [{"_step": i, "x": i} for i in range(1200)]
    rows[0]["_step"], rows[1]["_step"], rows[1100]["_step"] = False, True, 1100.0
    _post(fresh_api, "steps", 0, rows)
    specs = [{"keys": ["_step", "x"]}, {"keys": ["_step"], "samples": 1200}, {"keys": ["_step", "x"], "minStep": 0,
                                                                              "maxStep": 5}]
    got = fresh_api.ok(SAMPLED, {"n": "steps", "specs": [json.dumps(s) for s in specs]})["project"]["run"]["sampledHistory"]
    for spec, answer in zip(specs, got):
        assert json.dumps(answer) == json.dumps(reference(rows, spec)), spec
    assert got[0][0]["_step"] is False and got[0][1]["_step"] is True and got[0][1100]["_step"] == 1100.0
    assert json.dumps(got[0][2]) == '{"_step": 2, "x": 2}'
