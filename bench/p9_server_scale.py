"""P9: the local server at 100k runs — ordering by a metric, selective filters, counts (issue 11).

Over one project of 100,000 runs (make_data's shapes, inserted straight into SQLite, in a file of
its own), against `wbgql server` in its own process, raw GraphQL over one keep-alive connection:
    default listing     every run, 1,000 per page, +created_at      (name, summaryMetrics)
    ordered listing     the same ordered by -summary_metrics.loss, and one page at depth 0/50k/99k
    config filter       {"config.output_dir": <one run's>}           (1 match in 100k)
    summary filter      {"summary_metrics._timestamp": <one run's>}  (1 match)
    runCount            no filter
    name $in            100 run names
Wall time per request as the client sees it (an upper bound of the server's), and the server
process's CPU seconds (from /proc; 10 ms ticks, so small requests are repeated and averaged).
Ingest: runs/s of a bulk INSERT of the same runs, and of summary replacements (file_stream's
write), with the run_keys triggers and with them dropped; and through a server (LocalServer in
this process, one request each): upsertBucket creating a run with config + summary, and
file_stream summary posts changing 5 of the 43 keys, or all of them.

Targets: ordered listing <= 3x the default one and per-page time flat with depth; each selective
filter <= 30 ms; runCount <= 10 ms.

    /work/venv/bin/python bench/p9_server_scale.py [--runs 100000] [--repeat 20] [--json OUT]
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (DEFAULT_DB, ENTITY, PROJECT, _config, _summary, make_data, server_cpu,  # noqa: E402
                     server_process)

PAGE = """query P($e: String!, $p: String!, $o: String, $a: String, $f: JSONString, $n: Int) {
  project(name: $p, entityName: $e) { runs(order: $o, after: $a, filters: $f, first: $n) {
    edges { node { name summaryMetrics } } pageInfo { endCursor hasNextPage } } } }"""
COUNT = """query C($e: String!, $p: String!) { project(name: $p, entityName: $e) { runCount } }"""


class Gql:
    """POST /graphql over one keep-alive connection."""

    def __init__(self, base_url: str, api_key: str) -> None:
        parts = urlsplit(base_url)
        self.conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=600)
        self.headers = {"Content-Type": "application/json",
                        "Authorization": "Basic " + base64.b64encode(f"api:{api_key}".encode()).decode()}

    def __call__(self, query: str, **variables: Any) -> Any:
        self.conn.request("POST", "/graphql", orjson.dumps({"query": query, "variables": {
            "e": ENTITY, "p": PROJECT, **variables}}), self.headers)
        body = orjson.loads(self.conn.getresponse().read())
        if body.get("errors"):
            raise RuntimeError(body["errors"][0]["message"])
        return body["data"]["project"]


def full_listing(gql: Gql, order: str | None, depths: tuple[int, ...] = ()) -> tuple[float, int, dict[int, str | None]]:
    """(wall seconds, runs listed, cursor before the page at each depth) of paging every run."""
    cursors: dict[int, str | None] = {0: None} if 0 in depths else {}
    after, n = None, 0
    started = time.perf_counter()
    while True:
        runs = gql(PAGE, o=order, a=after, n=1000)["runs"]
        n += len(runs["edges"])
        after = runs["pageInfo"]["endCursor"]
        if n in depths:
            cursors[n] = after
        if not runs["pageInfo"]["hasNextPage"]:
            return time.perf_counter() - started, n, cursors


def timed(base_url: str, fn: Any, repeat: int) -> dict[str, float]:
    """Median wall ms of `fn()` and the server's mean CPU ms per call."""
    fn()  # warm: caches, the document cache, the first page of the file
    walls = []
    cpu0 = server_cpu(base_url)
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        walls.append(time.perf_counter() - t0)
    cpu1 = server_cpu(base_url)
    cpu = None if cpu0 is None or cpu1 is None else (cpu1 - cpu0) / repeat * 1000
    return {"wall_ms": statistics.median(walls) * 1000, "server_cpu_ms": cpu if cpu is not None else float("nan")}


def listing_figures(base_url: str, gql: Gql, order: str | None, depths: tuple[int, ...] = ()) -> dict[str, Any]:
    cpu0 = server_cpu(base_url)
    wall, n, cursors = full_listing(gql, order, depths)
    cpu1 = server_cpu(base_url)
    out: dict[str, Any] = {"wall_s": wall, "runs": n,
                           "server_cpu_s": None if cpu0 is None or cpu1 is None else cpu1 - cpu0}
    for depth, cursor in sorted(cursors.items()):
        out[f"page_at_{depth}"] = timed(base_url, lambda c=cursor: gql(PAGE, o=order, a=c, n=1000), 5)
    return out


def ingest(source: Path, n: int) -> dict[str, float]:
    """Runs/s of inserting n of the data set's runs, and of replacing n summaries, into a fresh
    database with the run_keys triggers and without them."""
    from wandb_gql.server import db

    out: dict[str, float] = {}
    for label in ("with run_keys", "without run_keys"):
        with tempfile.TemporaryDirectory() as tmp:
            conn = db.connect(Path(tmp) / "ingest.db")
            if label == "without run_keys":
                for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall():
                    conn.execute(f"DROP TRIGGER {name}")
            conn.execute("ATTACH DATABASE ? AS src", (str(source),))
            conn.execute("INSERT INTO entities SELECT * FROM src.entities")
            conn.execute("INSERT INTO projects (id, entity_id, name, created_at) SELECT id, entity_id, name,"
                         " created_at FROM src.projects")
            columns = ("id, project_id, name, display_name, state, config, summary, tags, group_name, job_type,"
                       " username, created_at, updated_at, heartbeat_at, exitcode, history_line_count, history_keys")
            rows = conn.execute(f"SELECT {columns} FROM src.runs ORDER BY id LIMIT ?", (n,)).fetchall()
            conn.execute("DETACH DATABASE src")
            marks = ",".join("?" * len(rows[0]))
            started = time.perf_counter()
            with db.transaction(conn):
                conn.executemany(f"INSERT INTO runs ({columns}) VALUES ({marks})", [tuple(r) for r in rows])
            out[f"insert runs/s, {label}"] = n / (time.perf_counter() - started)
            # file_stream replaces a running run's summary every few seconds: one more key each time
            updates = [(orjson.dumps({**json.loads(r["summary"]), "extra": i}).decode(), r["id"])
                       for i, r in enumerate(rows)]
            started = time.perf_counter()
            with db.transaction(conn):
                conn.executemany("UPDATE runs SET summary = ? WHERE id = ?", updates)
            out[f"summary updates/s, {label}"] = n / (time.perf_counter() - started)
            size = conn.execute("SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()")
            out[f"MB per 10k runs, {label}"] = size.fetchone()[0] / 1e6 * 10_000 / n
            conn.close()
    return out


def server_ingest(n: int) -> dict[str, float]:
    """ms per request through a server, with the run_keys triggers and with them dropped."""
    import random
    from datetime import datetime, timezone

    from wandb_gql.server.local import LocalServer

    upsert = "mutation U($input: UpsertBucketInput!) { upsertBucket(input: $input) { bucket { id } } }"
    rng = random.Random(9)
    out: dict[str, float] = {}
    for label in ("with run_keys", "without run_keys"):
        with tempfile.TemporaryDirectory() as tmp, LocalServer(Path(tmp) / "ingest.db") as server:
            if label == "without run_keys":
                with sqlite3.connect(Path(tmp) / "ingest.db") as conn:
                    for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall():
                        conn.execute(f"DROP TRIGGER {name}")
            parts = urlsplit(server.base_url)
            client = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=60)
            headers = {"Content-Type": "application/json",
                       "Authorization": "Basic " + base64.b64encode(f"api:{server.api_key}".encode()).decode()}

            def post(path: str, body: Any) -> None:
                client.request("POST", path, orjson.dumps(body), headers)
                reply = client.getresponse()
                reply.read()
                assert reply.status == 200, reply.status

            def stream(i: int, summary: dict) -> None:
                post(f"/files/local/p/r{i}/file_stream",
                     {"files": {"wandb-summary.json": {"offset": 0, "content": [json.dumps(summary)]}}})

            now = datetime.now(timezone.utc)
            summaries = {i: _summary(rng, i, now) for i in range(n)}
            started = time.perf_counter()
            for i in range(n):
                post("/graphql", {"query": upsert, "variables": {"input": {
                    "modelName": "p", "entityName": "local", "name": f"r{i}", "config": json.dumps(_config(rng, i)),
                    "summaryMetrics": json.dumps(summaries[i])}}})
            out[f"upsertBucket new run ms, {label}"] = (time.perf_counter() - started) / n * 1000
            started = time.perf_counter()
            for i in range(n):
                summaries[i].update(loss=rng.random(), epoch=i, _step=i * 7, _runtime=i * 3.5, _timestamp=time.time())
                stream(i, summaries[i])
            out[f"file_stream summary, 5 keys changed ms, {label}"] = (time.perf_counter() - started) / n * 1000
            started = time.perf_counter()
            for i in range(n):
                stream(i, _summary(rng, i, now))
            out[f"file_stream summary, all keys changed ms, {label}"] = (time.perf_counter() - started) / n * 1000
            client.close()
    return out


def bench(runs: int, repeat: int, ingest_runs: int) -> dict[str, Any]:
    data = DEFAULT_DB.with_name(f"p9-{runs // 1000}k.db")
    started = time.perf_counter()
    make_data(data, runs)
    prepared = time.perf_counter() - started
    with sqlite3.connect(data) as conn:
        probe = f"r{runs * 54 // 100:07d}"
        output_dir, stamp = conn.execute(
            "SELECT json_extract(config, '$.output_dir.value'), json_extract(summary, '$._timestamp') FROM runs"
            " WHERE name = ?", (probe,)).fetchone()
        names = [row[0] for row in conn.execute("SELECT name FROM runs ORDER BY random() LIMIT 100")]
    figures: dict[str, Any] = {"runs": runs, "data_seconds": prepared}
    with server_process(data) as (base_url, api_key):
        gql = Gql(base_url, api_key)
        gql(COUNT)  # the server has opened (and, for an older file, migrated) the database
        figures["default listing"] = listing_figures(base_url, gql, None)
        depths = (0, runs // 2, runs - 1000)
        figures["ordered listing"] = listing_figures(base_url, gql, "-summary_metrics.loss", depths)
        figures["ordered listing, ascending"] = listing_figures(base_url, gql, "+summary_metrics.loss")
        config_filter = json.dumps({"config.output_dir": output_dir})
        summary_filter = json.dumps({"summary_metrics._timestamp": stamp})
        names_filter = json.dumps({"name": {"$in": names}})
        assert [e["node"]["name"] for e in gql(PAGE, f=config_filter, n=50)["runs"]["edges"]] == [probe]
        assert probe in [e["node"]["name"] for e in gql(PAGE, f=summary_filter, n=50)["runs"]["edges"]]
        assert len(gql(PAGE, f=names_filter, n=100)["runs"]["edges"]) == 100
        figures["config filter"] = timed(base_url, lambda: gql(PAGE, f=config_filter, n=50), repeat)
        figures["summary filter"] = timed(base_url, lambda: gql(PAGE, f=summary_filter, n=50), repeat)
        figures["runCount"] = timed(base_url, lambda: gql(COUNT), repeat)
        figures["name $in 100"] = timed(base_url, lambda: gql(PAGE, f=names_filter, n=100), repeat)
        gql.conn.close()
    figures["ingest"] = ingest(data, ingest_runs)
    figures["ingest"].update(server_ingest(300))
    return figures


def report(figures: dict[str, Any]) -> list[str]:
    default, ordered = figures["default listing"], figures["ordered listing"]
    pages = [ordered[k]["wall_ms"] for k in ordered if k.startswith("page_at_")]
    lines = [f"P9 — {figures['runs']:,} runs (server in its own process)",
             f"  default listing (+created_at)     {default['wall_s']:7.2f} s wall, server CPU {default['server_cpu_s']:.2f} s"]
    for label in ("ordered listing", "ordered listing, ascending"):
        f = figures[label]
        lines.append(f"  {label:<33} {f['wall_s']:7.2f} s wall, server CPU {f['server_cpu_s']:.2f} s"
                     f"  = {f['wall_s'] / default['wall_s']:.2f}x default (target <= 3x)")
    lines.append("  one page of 1,000 at depth " + ", ".join(
        f"{k[8:]}: {ordered[k]['wall_ms']:.0f} ms" for k in ordered if k.startswith("page_at_"))
        + f"  (max/min {max(pages) / min(pages):.2f})")
    for label, target in (("config filter", 30), ("summary filter", 30), ("runCount", 10), ("name $in 100", None)):
        f = figures[label]
        goal = f" (target <= {target} ms)" if target else ""
        lines.append(f"  {label:<33} {f['wall_ms']:7.1f} ms wall, server CPU {f['server_cpu_ms']:.1f} ms{goal}")
    for label, value in figures["ingest"].items():
        lines.append(f"  ingest: {label:<50} {value:10,.1f}")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=20, help="requests per small measurement (median)")
    parser.add_argument("--ingest-runs", type=int, default=20_000)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    figures = bench(args.runs, args.repeat, args.ingest_runs)
    print("\n".join(report(figures)))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
