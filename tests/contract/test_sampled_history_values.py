"""sampledHistory values come back exactly as logged: the server projects rows in SQLite and
passes the JSON text through unparsed, so every kind of value is checked against the rows as
file_stream received them, both when nothing is sampled away and when lines are sampled."""

from __future__ import annotations

import json
import math
import random
import struct
from typing import Any

SAMPLED = """query S($specs: [JSONString!]!) { project(name: "p", entityName: "local") {
  run(name: "vals") { sampledHistory(specs: $specs) } } }"""


def log(api: Any, lines: list[dict[str, Any]]) -> None:
    api.ok("mutation U($input: UpsertBucketInput!) { upsertBucket(input: $input) { inserted } }",
           {"input": {"modelName": "p", "entityName": "local", "name": "vals"}})
    reply = api.post("/files/local/p/vals/file_stream",  # json.dumps writes bare NaN/Infinity, as the SDK does
                     {"files": {"wandb-history.jsonl": {"offset": 0, "content": [json.dumps(x) for x in lines]}}})
    assert reply.status == 200


def sampled(api: Any, spec: dict[str, Any]) -> list[dict[str, Any]]:
    return api.ok(SAMPLED, {"specs": [json.dumps(spec)]})["project"]["run"]["sampledHistory"][0]


def _values(i: int, rng: random.Random) -> dict[str, Any]:
    odd = [0.1 + 0.2, 5e-324, 1.7976931348623157e308, -0.0, 1e-7, 123456789.123456789, 2 ** 53 + 1, -(2 ** 62),
           "é \"quoted\" \\ \u2028 ☃", [1, {"x": 2.5e-300}], None, True, float("nan"), float("inf")]
    row: dict[str, Any] = {"v": odd[i % len(odd)], "r": struct.unpack("d", struct.pack("Q", rng.getrandbits(62)))[0]}
    if i % 4:
        row["w"] = rng.random()
    return row


def _expected(lines: list[dict[str, Any]], keys: list[str]) -> list[dict[str, Any]]:
    special = {"NaN": float("nan"), "Infinity": float("inf"), "-Infinity": float("-inf")}
    out = []
    for line in lines:
        if all(k in line for k in keys):
            out.append({k: line[k] for k in keys})
    return [{k: (special[v] if isinstance(v, str) and v in special else v) for k, v in r.items()} for r in out]


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, float) and isinstance(b, float):
        return a == b and math.copysign(1, a) == math.copysign(1, b)
    return a == b and type(a) is type(b)


def _decode(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    special = {"NaN": float("nan"), "Infinity": float("inf"), "-Infinity": float("-inf")}
    return [{k: (special[v] if isinstance(v, str) and v in special else v) for k, v in r.items()} for r in rows]


def test_values_round_trip_exactly(fresh_api):
    rng = random.Random(7)
    lines = [{"_step": i, **_values(i, rng)} for i in range(300)]
    log(fresh_api, lines)
    keys = ["_step", "v", "r", "w"]
    want = _expected(lines, keys)
    every = sampled(fresh_api, {"keys": keys, "samples": 300})
    got = _decode(every)
    assert len(got) == len(want) == 225
    assert all(_same(g[k], w[k]) for g, w in zip(got, want) for k in keys)
    assert all(list(g) == keys for g in every)  # the keys in the order asked
    # Sampled away: 10 of the 225 rows with every key, first and last kept, values still exact.
    ten = _decode(sampled(fresh_api, {"keys": keys, "samples": 10}))
    assert len(ten) == 10 and ten[0]["_step"] == want[0]["_step"] and ten[-1]["_step"] == want[-1]["_step"]
    by_step = {w["_step"]: w for w in want}
    assert all(_same(t[k], by_step[t["_step"]][k]) for t in ten for k in keys)
    # A key named twice comes back once; a null value is a present key.
    twice = sampled(fresh_api, {"keys": ["_step", "v", "v"], "samples": 300})
    assert len(twice) == 300 and all(list(r) == ["_step", "v"] for r in twice)
    assert sum(r["v"] is None for r in twice) == sum(line["v"] is None for line in lines) > 0
    assert json.loads(json.dumps(every)) == every
