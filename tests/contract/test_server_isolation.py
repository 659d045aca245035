"""Issue 11, isolation: database work runs on a thread pool (reads in parallel, one writer at a
time), so a slow request never holds a quick one; writers wait for the lock up front and a lock
held too long is a 503 the client retries, never a 200 "internal server error"; two servers on
one database file lose no write; a server killed mid-write leaves a database that opens whole."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import orjson
import pytest

from wandb_gql import WRITE, Client
from wandb_gql.server.local import LocalServer
from wandb_gql.server.store import new_api_key

from tests.cli.test_server_cli import start
from tests.conftest import Caller

VIEWER = "query { viewer { username } }"
PAGE = """query P($after: String) { project(entityName: "local", name: "big") {
  runs(first: 1000, after: $after, order: "-summary_metrics.loss") {
    edges { node { name displayName state config summaryMetrics tags createdAt } }
    pageInfo { hasNextPage endCursor } } } }"""
UPSERT = """mutation U($input: UpsertBucketInput!) { upsertBucket(input: $input) { bucket { id name } inserted } }"""
MODIFY = """mutation M($ids: [String], $add: [String]) {
  modifyRuns(input: {entityName: "local", projectName: "p", ids: $ids, addTags: $add}) { runs { name } } }"""
LIST = """query L($after: String) { project(entityName: "local", name: "p") {
  runs(first: 1000, after: $after) { edges { node { name config tags historyLineCount } }
  pageInfo { hasNextPage endCursor } } } }"""


def _big_project(server: LocalServer, n: int) -> None:
    """n runs with W&B-sized config and summary, written through the store as the seed does."""
    store = server.server.store
    with store.writing():
        project_id = store.ensure_project("local", "big")["id"]
        store.insert_runs(project_id, ({
            "name": f"r{i:06d}", "display_name": f"run-{i}", "state": "finished",
            "config": orjson.dumps({f"c{k}": {"value": i * k} for k in range(40)}).decode(),
            "summary": orjson.dumps({"loss": (i * 7919) % 1000 / 1000, **{f"m{k}": i / (k + 1) for k in range(40)}}).decode(),
            "tags": '["a"]', "group_name": None, "job_type": None, "sweep_name": None, "username": "local",
            "created_at": "2025-01-01T00:00:00", "updated_at": "2025-01-01T00:00:00",
            "heartbeat_at": "2025-01-01T00:00:00", "exitcode": 0, "history_line_count": 0,
            "history_keys": "{}"} for i in range(n)))


_PAGER = """
import base64, json, sys, time, urllib.request
url, key, query = sys.argv[1], sys.argv[2], sys.argv[3]
auth = "Basic " + base64.b64encode(("api:" + key).encode()).decode()
while True:
    after = None
    while True:
        started = time.monotonic()
        req = urllib.request.Request(url + "/graphql", json.dumps({"query": query, "variables": {"after": after}}).encode(),
                                     {"Authorization": auth, "Content-Type": "application/json"})
        body = json.loads(urllib.request.urlopen(req, timeout=120).read())
        if body.get("errors"):
            sys.exit(json.dumps(body)[:500])
        print(time.monotonic() - started, flush=True)
        info = body["data"]["project"]["runs"]["pageInfo"]
        if not info["hasNextPage"]:
            break
        after = info["endCursor"]
"""


def test_a_viewer_query_is_answered_while_other_clients_page_through_many_runs(tmp_path):
    """Three clients (processes of their own, as they would be) page 20,000 runs by a summary
    metric, 1,000 a page (each page ~0.25-1 s of server work, most of it Python: slow however the
    ordering is done); a viewer query sent every 50 ms meanwhile stays quick. Before the pool it
    waited behind whole pages (p50 4 s at 100k runs). The bound is loose for 2 shared cores:
    the measured figure is in the report of issue 11."""
    with LocalServer(tmp_path / "big.db") as server:
        _big_project(server, 20_000)
        api = Caller(server)
        api.ok(VIEWER)
        pagers = [subprocess.Popen([sys.executable, "-c", _PAGER, server.base_url, server.api_key, PAGE],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(3)]
        try:
            for pager in pagers:  # every pager is under way
                assert pager.stdout is not None and float(pager.stdout.readline() or "nan") > 0, pager.stderr
            took = []
            until = time.monotonic() + 8
            while time.monotonic() < until:
                started = time.monotonic()
                api.ok(VIEWER)
                took.append(time.monotonic() - started)
                time.sleep(0.05)
            assert all(p.poll() is None for p in pagers), [p.communicate()[1] for p in pagers if p.poll() is not None]
        finally:
            for pager in pagers:
                pager.kill()
        pages = [float(line) for pager in pagers for line in pager.communicate()[0].split()]
    took.sort()
    p95 = took[int(len(took) * 0.95)]
    print(f"viewer x{len(took)}: p50 {statistics.median(took) * 1000:.1f} ms, p95 {p95 * 1000:.1f} ms; "
          f"{len(pages)} pages of 1,000 meanwhile, p50 {statistics.median(pages):.2f} s")
    assert p95 < 0.25, f"viewer p95 {p95 * 1000:.0f} ms while pages took {statistics.median(pages):.2f} s each"
    assert statistics.median(pages) > 2 * statistics.median(took), "the background work was not slow: no test"


def _hammer(api: Caller, tag: str, n: int, failures: list[Any]) -> None:
    """n writes of three kinds, in turn: create a run, stream a history line to this writer's run,
    tag this writer's run. Every answer that is not a clean 200 is a failure."""
    own = api.gql(UPSERT, {"input": {"modelName": "p", "entityName": "local", "name": tag}})
    if own.status != 200 or own.errors:
        failures.append((tag, own.status, own.body))
        return
    own_id = own.data["upsertBucket"]["bucket"]["id"]
    line = 0
    for i in range(n):
        if i % 3 == 0:
            reply = api.gql(UPSERT, {"input": {"modelName": "p", "entityName": "local", "name": f"{tag}-{i}",
                                               "config": json.dumps({"i": {"value": i}})}})
        elif i % 3 == 1:
            reply = api.post(f"/files/local/p/{tag}/file_stream", {"files": {"wandb-history.jsonl": {
                "offset": line, "content": [json.dumps({"_step": line, "i": i})]}}})
            line += 1
        else:
            reply = api.gql(MODIFY, {"ids": [own_id], "add": [f"t{i}"]})
        if reply.status != 200 or (isinstance(reply.body, dict) and reply.body.get("errors")):
            failures.append((tag, i, reply.status, reply.body))


def _all_runs(api: Caller) -> dict[str, dict[str, Any]]:
    runs: dict[str, dict[str, Any]] = {}
    after = None
    while True:
        page = api.ok(LIST, {"after": after})["project"]["runs"]
        runs.update((e["node"]["name"], e["node"]) for e in page["edges"])
        if not page["pageInfo"]["hasNextPage"]:
            return runs
        after = page["pageInfo"]["endCursor"]


def test_two_servers_on_one_database_lose_no_write(tmp_path):
    """`wbgql server` and an embedded server (`--local`) on one file, 4 writers each, 200 writes
    per writer: every answer is a 200 and every write is there afterwards (issue 11 saw up to 20 %
    "database is locked" answered as 200 "internal server error")."""
    db = tmp_path / "shared.db"
    key = new_api_key()
    env = {**os.environ, "WBGQL_CONFIG": str(tmp_path / "none.toml")}
    with LocalServer(db) as embedded:
        proc, url = start(["--db", str(db), "--api-key", key], env)
        try:
            apis = [Caller(embedded), Caller(SimpleNamespace(base_url=url, api_key=key))]  # type: ignore[arg-type]
            writes, failures = 200, []  # 2 servers x 4 writers x 200 = 1,600 writes
            writers = [threading.Thread(target=_hammer, args=(apis[s], f"s{s}w{w}", writes, failures))
                       for s in range(2) for w in range(4)]
            started = time.monotonic()
            for t in writers:
                t.start()
            for t in writers:
                t.join(300)
            took = time.monotonic() - started
            assert not failures, f"{len(failures)} failed writes, e.g. {failures[:3]}"
            for api in apis:  # both servers see every write of both
                runs = _all_runs(api)
                for s in range(2):
                    for w in range(4):
                        tag = f"s{s}w{w}"
                        assert runs[tag]["historyLineCount"] == len(range(1, writes, 3)), tag
                        assert set(runs[tag]["tags"]) == {f"t{i}" for i in range(2, writes, 3)}, tag
                        for i in range(0, writes, 3):
                            assert json.loads(runs[f"{tag}-{i}"]["config"])["i"]["value"] == i
            print(f"{8 * writes:,} writes through two servers in {took:.1f} s")
        finally:
            proc.terminate()
            proc.communicate(timeout=10)


def test_a_write_lock_held_past_the_busy_timeout_is_503_and_the_client_retries(tmp_path):
    """Another process holds the write lock (here a raw sqlite3 connection) longer than the
    server's busy timeout: the server answers 503 DATABASE_BUSY with Retry-After and writes
    nothing; reads go on meanwhile; the Client's retry succeeds once the lock is released."""
    db = tmp_path / "held.db"
    with LocalServer(db, busy_timeout=0.3) as server:
        api = Caller(server)
        api.ok(UPSERT, {"input": {"modelName": "p", "entityName": "local", "name": "before"}})
        holder = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
        holder.execute("BEGIN IMMEDIATE")
        try:
            started = time.monotonic()
            reply = api.gql(UPSERT, {"input": {"modelName": "p", "entityName": "local", "name": "refused"}})
            assert reply.status == 503, reply.body
            assert reply.headers.get("Retry-After") == "1"
            assert reply.body["errors"][0]["extensions"]["code"] == "DATABASE_BUSY"
            assert "send the request again" in reply.body["errors"][0]["message"]
            assert 0.25 < time.monotonic() - started < 3
            stream = api.post("/files/local/p/before/file_stream", {"files": {"wandb-history.jsonl": {
                "offset": 0, "content": ['{"_step": 0}']}}})
            assert stream.status == 503 and stream.headers.get("Retry-After") == "1", stream.body
            assert set(_all_runs(api)) == {"before"}  # reads do not wait for the writer
            assert api.ok(VIEWER)["viewer"]["username"]

            retries: list[Any] = []
            threading.Timer(1.0, holder.execute, ("ROLLBACK",)).start()

            async def create() -> Any:
                async with Client(server.base_url, server.api_key,
                                  on_retry=lambda op, err, delay: retries.append(str(err))) as client:
                    return await client.create_run("local/p", name="retried")

            run = asyncio.run(create())
            assert run.name == "retried"
            assert retries and all("503" in r for r in retries), retries

            # WRITE (not safe to repeat) retries it too: DATABASE_BUSY says nothing was written.
            holder.execute("BEGIN IMMEDIATE")
            threading.Timer(1.0, holder.execute, ("ROLLBACK",)).start()

            async def write_once() -> int:
                async with Client(server.base_url, server.api_key) as client:
                    await client.transport.execute("UpsertBucket", {"input": {
                        "modelName": "p", "entityName": "local", "name": "written"}}, WRITE)
                    return client.transport.attempts

            assert asyncio.run(write_once()) > 1
        finally:
            if holder.in_transaction:
                holder.execute("ROLLBACK")
            holder.close()
        assert set(_all_runs(api)) == {"before", "retried", "written"}  # "refused" was never half-written


_WRITER = """
import json, sys, threading, urllib.request, base64
url, key, tag = sys.argv[1], sys.argv[2], sys.argv[3]
auth = "Basic " + base64.b64encode(("api:" + key).encode()).decode()
def post(path, body):
    req = urllib.request.Request(url + path, json.dumps(body).encode(), {"Authorization": auth,
                                 "Content-Type": "application/json"})
    urllib.request.urlopen(req, timeout=30).read()
def run(w):
    name = f"{tag}{w}"
    post("/graphql", {"query": "mutation U($i: UpsertBucketInput!) { upsertBucket(input: $i) { inserted } }",
                      "variables": {"i": {"modelName": "p", "entityName": "local", "name": name}}})
    line = 0
    while True:
        post(f"/files/local/p/{name}/file_stream", {"files": {"wandb-history.jsonl": {"offset": line,
             "content": [json.dumps({"_step": line + k, "x": "y" * 200}) for k in range(50)]}}})
        line += 50
threads = [threading.Thread(target=run, args=(w,), daemon=True) for w in range(4)]
[t.start() for t in threads]
print("writing", flush=True)
[t.join() for t in threads]
"""


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")
def test_a_server_killed_mid_write_leaves_a_whole_database(tmp_path):
    """kill -9 while four clients stream 50-line history batches: the database passes SQLite's
    integrity check, every run holds whole batches only and its line count matches its rows,
    and a new server opens it and serves it."""
    db = tmp_path / "killed.db"
    key = new_api_key()
    env = {**os.environ, "WBGQL_CONFIG": str(tmp_path / "none.toml")}
    proc, url = start(["--db", str(db), "--api-key", key], env)
    writer = subprocess.Popen([sys.executable, "-c", _WRITER, url, key, "k"], stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, text=True)
    try:
        assert writer.stdout is not None and writer.stdout.readline().strip() == "writing"
        watch = sqlite3.connect(db, timeout=10)
        until = time.monotonic() + 30  # batches are committing (however loaded the machine), then kill
        while watch.execute("SELECT count(*) FROM history").fetchone()[0] < 400 and time.monotonic() < until:
            time.sleep(0.1)
        watch.close()
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        writer.kill()
        writer.wait(10)
        if proc.poll() is None:
            proc.kill()
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        runs = conn.execute("SELECT id, name, history_line_count, history_keys FROM runs WHERE name LIKE 'k%'").fetchall()
        assert len(runs) == 4 and sum(r[2] for r in runs) > 0, runs
        for run_id, name, count, keys in runs:
            rows = conn.execute("SELECT count(*), coalesce(max(line), -1) FROM history WHERE run_id = ?",
                                (run_id,)).fetchone()
            assert rows == (count, count - 1) and count % 50 == 0, (name, count, rows)
            assert json.loads(keys).get("lastStep", -1) == count - 1, name
    finally:
        conn.close()
    with LocalServer(db) as again:
        names = set(_all_runs(Caller(again)))
        assert {"k0", "k1", "k2", "k3"} <= names


def test_an_in_memory_server_is_one_database_for_every_thread_and_leaves_nothing(tmp_path):
    """":memory:" would give each worker thread a database of its own: it is one private file,
    seen by every thread (a write on one is read on another), removed when the server stops."""
    server = LocalServer(":memory:").start()
    api = Caller(server)
    path = Path(server.server.store.path)
    assert path.exists() and str(path) != ":memory:"
    names = [f"m{i}" for i in range(20)]
    threads = [threading.Thread(target=api.ok, args=(UPSERT, {"input": {"modelName": "p", "entityName": "local",
                                                                         "name": n}})) for n in names]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert set(_all_runs(api)) == set(names)
    server.stop()
    deadline = time.monotonic() + 10
    while path.parent.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not path.parent.exists()
