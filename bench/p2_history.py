"""P2: the history of 200 runs x 2,000 steps, 3 keys — this client vs a wandb.Api loop.

Data: project bench/p2h, 200 finished runs (P1's config/summary shapes), each with 2,000 history
rows of 9 keys (_step, _runtime, _timestamp, loss, val/acc, lr, train/loss, grad_norm, epoch),
inserted straight into SQLite through the server's store (`store.history.insert`, ~5 s, reused
when already there). The three keys read: loss, val/acc, lr (all logged at every step).

Sampled (every row: samples = the step count):
  (a) Client.history("bench/p2h", keys=3 keys, samples=2000, concurrency=8)
  (b) for run in wandb.Api().runs("bench/p2h"): run.history(keys=3 keys, samples=2000, pandas=False)
  (r) raw aiohttp + orjson: the same requests as (a) (one ProjectRuns listing, then one
      ProjectRunsSampledHistory per batch of runs (`name $in`, as many runs as the client puts in
      one), 8 in flight), rows parsed the same way
Full (every row, paged):
  (c) Client.history("bench/p2h", keys=3 keys, full=True, concurrency=8) (pages of 1,000 steps)
  (d) for run in wandb.Api().runs("bench/p2h"): list(run.scan_history(keys=3 keys))
  (r) raw aiohttp + orjson: the same requests as (c) (RunSampledHistoryPage by step range)

Timed: from building the client (Client / wandb.Api / aiohttp session) to the last row read;
imports are not timed (wandb runs in a process of its own, timed inside it after its imports:
wandb keeps the first server a process pointed it at). Every variant must return the same 400,000 (run, step) -> values. Targets
(issue 10): (a) >= 8x faster than (b), (c) >= 8x faster than (d). The client variants and raw
replays: median of --repeat after a warm-up; wandb's: once. Reported too: CPU seconds of this
process and of the server process.

    /work/venv/bin/python bench/p2_history.py [--db PATH | --url URL --api-key KEY] [--repeat 3]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import math
import random
import sys
import time
from pathlib import Path
from typing import Any, Callable

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (DEFAULT_DB, QUERIES, fmt_s, make_project, measure, median, server_cpu,  # noqa: E402
                     server_process, wandb_env)

ENTITY, PROJECT = "bench", "p2h"
P2_PATH = f"{ENTITY}/{PROJECT}"
N_RUNS, N_STEPS = 200, 2000
KEYS = ["loss", "val/acc", "lr"]
CONCURRENCY = 8
TARGET = 8.0
P2_DB = DEFAULT_DB.with_name("p2h.db")

Values = dict[tuple[str, int], tuple]
Chunks = list[tuple[str, list[dict[str, Any]]]]  # (run id, rows) as a variant received them


# -- data -------------------------------------------------------------------------------------
def make_history(db: Path = P2_DB, runs: int = N_RUNS, steps: int = N_STEPS, *, quiet: bool = False) -> Path:
    """bench/p2h: `runs` runs with `steps` history rows each, straight into SQLite; reused if there."""
    from wandb_gql.server.store import Store
    from wandb_gql.server.store import history as history_store

    db = Path(db)
    db.parent.mkdir(parents=True, exist_ok=True)
    store = Store(db)
    conn = store.conn
    project_id = store.ensure_project(ENTITY, PROJECT)["id"]
    have = conn.execute("SELECT count(*), min(history_line_count), max(history_line_count) FROM runs"
                        " WHERE project_id = ? AND deleted_at IS NULL", (project_id,)).fetchone()
    if tuple(have) == (runs, steps, steps):
        conn.close()
        return db
    started = time.perf_counter()
    conn.execute("DELETE FROM history WHERE run_id IN (SELECT id FROM runs WHERE project_id = ?)", (project_id,))
    conn.close()
    make_project(db, ENTITY, PROJECT, runs, group="p2")
    store = Store(db)
    conn = store.conn
    rng = random.Random(2)
    ids = [r[0] for r in conn.execute("SELECT id FROM runs WHERE project_id = ? ORDER BY id", (project_id,))]
    names = ["_step", "_runtime", "_timestamp", "loss", "val/acc", "lr", "train/loss", "grad_norm", "epoch"]
    keys = {"keys": {k: {"typeCounts": [{"type": "number", "count": steps}]} for k in names}, "lastStep": steps - 1}
    conn.execute("BEGIN")
    for run_id in ids:
        scale, t0 = rng.uniform(0.5, 2.0), 1_750_000_000 + run_id * 10_000
        rows = [{"_step": s, "_runtime": round(s * 0.37, 3), "_timestamp": t0 + s * 0.37,
                 "loss": round(scale * math.exp(-s / 700) + rng.random() * 0.01, 6),
                 "val/acc": round(1 - 0.9 * math.exp(-s / 900) - rng.random() * 0.01, 6),
                 "lr": 1e-3 * 0.5 * (1 + math.cos(math.pi * s / steps)),
                 "train/loss": round(scale * math.exp(-s / 650), 6), "grad_norm": round(rng.uniform(0.1, 3), 5),
                 "epoch": s // 100} for s in range(steps)]
        history_store.insert(conn, [(run_id, rows)])
    conn.execute("UPDATE runs SET history_line_count = ?, history_keys = ? WHERE project_id = ?",
                 (steps, orjson.dumps(keys).decode(), project_id))
    conn.execute("COMMIT")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    if not quiet:
        print(f"data: {runs} runs x {steps:,} steps in {db} ({time.perf_counter() - started:.1f} s)", flush=True)
    return db


# -- variants -----------------------------------------------------------------------------------
def values_of(chunks: Chunks) -> Values:
    """{(run, step): the 3 values}, NaN/Infinity as floats: built after the clock stopped, so the
    comparison's own cost is not in any variant's time."""
    special = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
    return {(name, row["_step"]): tuple(special.get(v, v) if isinstance(v, str) else v
                                        for v in (row.get(k) for k in KEYS))
            for name, rows in chunks for row in rows}


def run_client(base_url: str, api_key: str, *, full: bool) -> Chunks:
    from wandb_gql.client import Client

    async def main() -> Chunks:
        out: Chunks = []
        async with Client(base_url, api_key) as client:
            kw: dict[str, Any] = {"full": True} if full else {"samples": N_STEPS}
            async for run, rows in client.history(P2_PATH, keys=KEYS, concurrency=CONCURRENCY, **kw):
                out.append((run.name, rows))
        return out

    return asyncio.run(main())


def run_raw(base_url: str, api_key: str, *, full: bool) -> Chunks:
    """The client's requests by hand: the listing, then 8 runs in flight, orjson both ways."""
    import aiohttp

    token = base64.b64encode(f"api:{api_key}".encode()).decode()
    headers = {"Authorization": f"Basic {token}", "Content-Type": "application/json"}
    from wandb_gql.models import RUN_FIELDS

    listing = (QUERIES / "project_runs.graphql").read_text()
    # ids and names only, as Client.history lists the runs it reads
    only_names = {"withConfig": False, "withSummary": False, **{f.flag: False for f in RUN_FIELDS if f.optional}}
    from wandb_gql.client.history import BATCH_RUNS, BATCH_VALUES

    sampled = (QUERIES / "project_runs_sampled_history.graphql").read_text()
    batch_size = max(1, min(BATCH_RUNS, BATCH_VALUES // (N_STEPS * (1 + len(KEYS)))))
    paged = (QUERIES / "run_sampled_history_page.graphql").read_text()
    base = {"entity": ENTITY, "project": PROJECT}

    async def main() -> Chunks:
        out: Chunks = []
        async with aiohttp.ClientSession(headers=headers) as session:
            async def post(query: str, name: str, variables: dict[str, Any]) -> Any:
                body = {"query": query, "operationName": name, "variables": {**base, **variables}}
                async with session.post(base_url + "/graphql", data=orjson.dumps(body)) as resp:
                    resp.raise_for_status()
                    return orjson.loads(await resp.read())["data"]

            names: list[str] = []
            after = None
            while True:
                runs = (await post(listing, "ProjectRuns", {**only_names, "filters": "{}", "order": "-createdAt",
                                                           "first": 1000, "after": after}))["project"]["runs"]
                names += [e["node"]["name"] for e in runs["edges"]]
                if not runs["pageInfo"]["hasNextPage"]:
                    break
                after = runs["pageInfo"]["endCursor"]
            slots = asyncio.Semaphore(CONCURRENCY)

            async def batch(batch_names: list[str]) -> None:
                async with slots:
                    spec = orjson.dumps({"keys": ["_step", *KEYS], "samples": N_STEPS}).decode()
                    filters = orjson.dumps({"name": {"$in": batch_names}}).decode()
                    data = await post(sampled, "ProjectRunsSampledHistory", {"filters": filters,
                                                                            "first": len(batch_names), "specs": [spec]})
                    out.extend((e["node"]["name"], e["node"]["sampledHistory"][0])
                               for e in data["project"]["runs"]["edges"])

            async def one(name: str) -> None:
                async with slots:
                    low, last = 0, None
                    while last is None or low <= last:
                        spec = {"keys": ["_step", *KEYS], "minStep": low, "maxStep": low + 999, "samples": 1000}
                        node = (await post(paged, "RunSampledHistoryPage", {"name": name,
                                                                             "specs": [orjson.dumps(spec).decode()]}))
                        run = node["project"]["run"]
                        info = run["historyKeys"]  # a JSON scalar: an object, or its text
                        last = (orjson.loads(info) if isinstance(info, str) else info)["lastStep"]
                        out.append((name, run["sampledHistory"][0]))
                        low += 1000

            if full:
                await asyncio.gather(*(one(n) for n in names))
            else:
                await asyncio.gather(*(batch(names[i:i + batch_size]) for i in range(0, len(names), batch_size)))
        return out

    return asyncio.run(main())


def run_wandb(*, full: bool) -> Chunks:
    import wandb

    out: Chunks = []
    api = wandb.Api(timeout=120)
    for run in api.runs(P2_PATH):
        rows = list(run.scan_history(keys=KEYS)) if full else run.history(keys=KEYS, samples=N_STEPS, pandas=False)
        out.append((run.id, rows))
    return out


def run_wandb_process(base_url: str, api_key: str, *, full: bool) -> tuple[float, float, float | None, Values]:
    """run_wandb in a fresh process (wandb keeps the first server it was pointed at for the life of
    a process, and its wandb-core helper with it); timed inside, after the imports. (wall, CPU of
    that process, the server's CPU, values)."""
    import subprocess
    import tempfile

    with tempfile.TemporaryDirectory(prefix="wbgql-p2-") as tmp:
        out = Path(tmp) / "chunks.json"
        server0 = server_cpu(base_url)
        subprocess.run([sys.executable, __file__, "--wandb-child", "full" if full else "sampled", "--url", base_url,
                        "--api-key", api_key, "--child-out", str(out)], check=True)
        server1 = server_cpu(base_url)
        got = orjson.loads(out.read_bytes())
    chunks = [(name, rows) for name, rows in got["chunks"]]
    server = None if server0 is None or server1 is None else server1 - server0
    return got["wall"], got["cpu"], server, values_of(chunks)


def _wandb_child(mode: str, base_url: str, api_key: str, out: Path) -> None:
    wandb_env(base_url, api_key)
    import wandb  # noqa: F401  (imported before the clock starts)

    cpu0, wall0 = time.process_time(), time.perf_counter()
    chunks = run_wandb(full=mode == "full")
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    out.write_bytes(orjson.dumps({"wall": wall, "cpu": cpu, "chunks": chunks}))


# -- the benchmark ------------------------------------------------------------------------------
def _timed(fn: Callable[[], Chunks], base_url: str) -> tuple[float, float, float | None, Values]:
    wall, cpu, server, chunks = measure(fn, base_url)
    assert isinstance(chunks, list)
    return wall, cpu, server, values_of(chunks)


def _check(name: str, values: Values, reference: Values) -> None:
    assert len(values) == N_RUNS * N_STEPS, f"{name} read {len(values):,} rows, not {N_RUNS * N_STEPS:,}"
    assert values == reference, f"{name} read different values"


def bench(base_url: str, api_key: str, *, repeat: int = 3) -> dict[str, Any]:
    result: dict[str, Any] = {}
    reference: Values | None = None
    for mode, full in (("sampled", False), ("full", True)):
        ours = {"client": lambda: run_client(base_url, api_key, full=full),
                "raw": lambda: run_raw(base_url, api_key, full=full)}
        walls: dict[str, list[float]] = {k: [] for k in ours}
        cpus: dict[str, list[float]] = {k: [] for k in ours}
        servers: dict[str, list[float]] = {k: [] for k in ours}
        for round_ in range(repeat + 1):  # round 0 is the warm-up
            for name, fn in ours.items():
                wall, cpu, server, values = _timed(fn, base_url)
                if reference is None:
                    reference = values
                _check(f"{mode} {name}", values, reference)
                if round_:
                    walls[name].append(wall)
                    cpus[name].append(cpu)
                    if server is not None:
                        servers[name].append(server)
        wall, cpu, server, values = run_wandb_process(base_url, api_key, full=full)
        assert reference is not None
        _check(f"{mode} wandb", values, reference)
        client_s, raw_s = median(walls["client"]), median(walls["raw"])
        r = {"client_s": client_s, "raw_s": raw_s, "wandb_s": wall, "ratio": wall / client_s,
             "raw_ratio": client_s / raw_s, "client_walls": walls["client"], "raw_walls": walls["raw"],
             "cpu": {"client": median(cpus["client"]), "raw": median(cpus["raw"]), "wandb": cpu},
             "server_cpu": {"client": median(servers["client"]) if servers["client"] else None,
                            "raw": median(servers["raw"]) if servers["raw"] else None, "wandb": server}}
        result[mode] = r
        wandb_label = "scan_history loop" if full else "run.history loop"
        srv = r["server_cpu"]
        print(f"P2 {mode:7s} client  {fmt_s(client_s):>9s}  (walls {', '.join(f'{w:.2f}' for w in walls['client'])};"
              f" CPU client {r['cpu']['client']:.2f} s" + (f", server {srv['client']:.2f} s" if srv["client"] else "")
              + ")", flush=True)
        print(f"P2 {mode:7s} raw     {fmt_s(raw_s):>9s}  client / raw {r['raw_ratio']:.2f}x (CPU {r['cpu']['raw']:.2f} s"
              + (f", server {srv['raw']:.2f} s" if srv["raw"] else "") + ")", flush=True)
        print(f"P2 {mode:7s} wandb   {fmt_s(wall):>9s}  ({wandb_label}; CPU here {cpu:.2f} s"
              + (f", server {server:.2f} s" if server is not None else "") + f")  -> {r['ratio']:.1f}x faster "
              f"(target >= {TARGET:g}x) {'OK' if r['ratio'] >= TARGET else 'MISSED'}", flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", type=Path, default=P2_DB, help="SQLite file for the data set")
    parser.add_argument("--url", help="use this running server (with bench/p2h already there) instead")
    parser.add_argument("--api-key", help="API key for --url")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--wandb-child", choices=["sampled", "full"], help=argparse.SUPPRESS)
    parser.add_argument("--child-out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.wandb_child:
        _wandb_child(args.wandb_child, args.url, args.api_key, args.child_out)
        return
    if args.url:
        bench(args.url.rstrip("/"), args.api_key, repeat=args.repeat)
        return
    with server_process(make_history(args.db)) as (base_url, api_key):
        bench(base_url, api_key, repeat=args.repeat)


if __name__ == "__main__":
    main()
