"""P7: list every version of a 2,000-version collection and prune it to keep-last 10 — `wbgql`
(plan with dedup-aware bytes, ledger, drift check, concurrent deleteArtifact, verify) vs the
loop W&B users write with wandb.Api — whole processes, on one local server that adds 30 ms to
every GraphQL request (`--faults '{"latency": 0.03}'`: W&B is a network away), as P3.

  (a) wbgql artifacts list bench/P --collection ckpt -f jsonl > /dev/null
      wbgql artifacts prune bench/P --collection ckpt --keep-last 10 --yes --ledger FILE
  (b) python: versions = list(wandb.Api().artifacts("model", "bench/P/ckpt"))
              for a in sorted by version, newest first, [10:]: a.delete() unless a.aliases

Each variant gets a fresh project of its own: one collection `ckpt` (type model) of 2,000
versions inserted straight into SQLite through the server's store (as the demo seed does), each
with a unique `model.pt` (512 B) and, every other version, a `config.json` shared by digest with
99 others; `best` on v1234 (kept by both sides: an aliased version is never pruned unless asked),
`latest` on the newest. Timed: the whole processes, start-up and imports included. After each
variant the server is asked which versions are left: both sides must leave exactly the same ones
(the newest 10 and v1234).

    /work/venv/bin/python bench/p7_artifacts.py [--repeat 3] [--latency 0.03] [--versions 2000]
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import random
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import BIN, make_project, median, server_process, wandb_env  # noqa: E402

ENTITY, COLLECTION, TYPE = "bench", "ckpt", "model"
N, KEEP = 2000, 10
ALIASED = 1234  # a version with a custom alias, older than the newest ten
TARGET = 10.0

_WANDB_PRUNE = """
import sys, wandb
api = wandb.Api(timeout=120)
versions = list(api.artifacts(sys.argv[2], sys.argv[1]))
for artifact in sorted(versions, key=lambda a: int(a.version[1:]), reverse=True)[int(sys.argv[3]):]:
    if not artifact.aliases:
        artifact.delete()
print(len(versions))
"""


def make_collection(db: Path, project: str, n: int, seed: int = 7) -> None:
    """A fresh project with a few producing runs and one collection of n committed versions."""
    from wandb_gql.server.store import Store

    make_project(db, ENTITY, project, 20, group="train")
    store = Store(db)
    conn = store.conn
    rng = random.Random(seed)
    project_id = store.ensure_project(ENTITY, project)["id"]
    runs = [r[0] for r in conn.execute("SELECT id FROM runs WHERE project_id = ? ORDER BY id", (project_id,))]
    configs = [orjson.dumps({"lr": 10 ** -rng.randint(2, 5), "group": g}) for g in range(n // 200 or 1)]
    base = datetime(2025, 6, 1, tzinfo=timezone.utc)
    versions = []
    for i in range(n):
        files = {"model.pt": rng.randbytes(512)}
        if i % 2 == 0:
            files["config.json"] = configs[i % len(configs)]
        versions.append({"files": files, "run_id": runs[i % len(runs)], "used_by": [],
                         "created_at": (base + timedelta(minutes=i)).strftime("%Y-%m-%dT%H:%M:%S"),
                         "aliases": ["best"] if i == ALIASED else [], "metadata": {"step": i}})
    conn.execute("BEGIN")
    store.insert_artifact_collection(project_id, TYPE, COLLECTION, versions)
    conn.execute("COMMIT")
    conn.close()


def _gql(base_url: str, api_key: str, query: str, variables: dict[str, Any]) -> Any:
    req = urllib.request.Request(base_url + "/graphql", data=json.dumps({"query": query, "variables": variables}).encode(),
                                 headers={"Content-Type": "application/json", "Authorization": "Basic "
                                          + base64.b64encode(f"api:{api_key}".encode()).decode()})
    with urllib.request.urlopen(req, timeout=60) as r:
        body = json.loads(r.read())
    assert not body.get("errors"), body
    return body["data"]


_LEFT = """query($e: String!, $p: String!, $c: String!, $after: String) {
  project(name: $p, entityName: $e) { storageBytes artifactCollection(name: $c) {
    artifacts(first: 1000, after: $after) { edges { version node { aliases { alias } } }
      pageInfo { endCursor hasNextPage } } } } }"""


def left(base_url: str, api_key: str, project: str) -> tuple[list[str], int]:
    """The versions still there (with their aliases), and the project's storage bytes."""
    out, after = [], None
    while True:
        p = _gql(base_url, api_key, _LEFT, {"e": ENTITY, "p": project, "c": COLLECTION, "after": after})["project"]
        conn = p["artifactCollection"]["artifacts"]
        out += [e["version"] + "".join(f"[{a['alias']}]" for a in sorted(
            e["node"]["aliases"], key=lambda a: a["alias"])) for e in conn["edges"]]
        if not conn["pageInfo"]["hasNextPage"]:
            return sorted(out, key=lambda v: int(v[1:].split("[")[0])), p["storageBytes"]
        after = conn["pageInfo"]["endCursor"]


def timed(cmd: list[str], env: dict[str, str], stdout: Any = subprocess.PIPE) -> tuple[float, subprocess.CompletedProcess]:
    started = time.perf_counter()
    proc = subprocess.run(cmd, env=env, stdout=stdout, stderr=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stderr[-2000:]}")
    return time.perf_counter() - started, proc


def bench(db: Path, *, repeat: int = 3, latency: float = 0.03, n: int = N, ledger_dir: Path | None = None,
          skip_wandb: bool = False) -> dict[str, Any]:
    projects = [f"p7-gql{i}" for i in range(repeat)] + ([] if skip_wandb else ["p7-wandb"])
    started = time.perf_counter()
    for project in projects:
        make_collection(db, project, n)
    print(f"data: {len(projects)} projects, one collection of {n:,} versions each, in {db}"
          f" ({time.perf_counter() - started:.1f} s)", flush=True)
    ledger_dir = ledger_dir or Path(tempfile.mkdtemp(prefix="wbgql-p7-"))
    expected = [f"v{i}" for i in range(n - KEEP, n)] + [f"v{ALIASED}"]
    results: dict[str, Any] = {"latency": latency, "versions": n}
    with server_process(db, faults={"latency": latency}) as (base_url, api_key):
        wandb_env(base_url, api_key)
        env = dict(os.environ)
        gql = {"list": [], "prune": [], "total": []}
        survivors: list[str] = []
        for project in projects[:repeat]:
            path = f"{ENTITY}/{project}"
            before = left(base_url, api_key, project)[1]
            with open(os.devnull, "w") as null:
                list_s, _ = timed([str(BIN / "wbgql"), "artifacts", "list", path, "--collection", COLLECTION,
                                   "-f", "jsonl"], env, stdout=null)
            ledger = ledger_dir / f"{project}.jsonl"
            prune_s, proc = timed([str(BIN / "wbgql"), "artifacts", "prune", path, "--collection", COLLECTION,
                                   "--keep-last", str(KEEP), "--yes", "--ledger", str(ledger)], env)
            survivors, after = left(base_url, api_key, project)
            assert [v.split("[")[0] for v in survivors] == sorted(expected, key=lambda v: int(v[1:])), survivors
            for key, value in (("list", list_s), ("prune", prune_s), ("total", list_s + prune_s)):
                gql[key].append(value)
            print(f"P7 (a) wbgql list {list_s:.3f} s + prune {prune_s:.3f} s = {list_s + prune_s:.3f} s;"
                  f" {len(survivors)} left, {before - after:,} bytes freed; ledger {ledger.stat().st_size / 1e6:.1f} MB",
                  flush=True)
        results.update(gql_s=median(gql["total"]), gql_list_s=median(gql["list"]), gql_prune_s=median(gql["prune"]),
                       gql_times=gql["total"], left=survivors)
        if not skip_wandb:
            project = projects[-1]
            before = left(base_url, api_key, project)[1]
            seconds, proc = timed([sys.executable, "-c", _WANDB_PRUNE, f"{ENTITY}/{project}/{COLLECTION}", TYPE,
                                   str(KEEP)], env)
            theirs, after = left(base_url, api_key, project)
            listed = int(proc.stdout.strip().splitlines()[-1])
            assert listed == n, f"wandb listed {listed} versions, not {n}"
            assert theirs == survivors, f"different versions left:\nwbgql {survivors}\nwandb {theirs}"
            ratio = seconds / results["gql_s"]
            print(f"P7 (b) wandb.Api {seconds:.1f} s; listed {listed:,}, same {len(theirs)} left"
                  f" ({', '.join(theirs)}), {before - after:,} bytes freed", flush=True)
            print(f"P7 wbgql median {results['gql_s']:.3f} s of {repeat}: {ratio:.1f}x faster"
                  f" (target >= {TARGET:.0f}x {'met' if ratio >= TARGET else 'MISSED'})", flush=True)
            results.update(wandb_s=seconds, ratio=ratio)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", type=Path, help="SQLite file (default: a fresh one in a temporary folder)")
    parser.add_argument("--repeat", type=int, default=3, help="wbgql runs (default 3)")
    parser.add_argument("--latency", type=float, default=0.03, help="seconds added to every request")
    parser.add_argument("--versions", type=int, default=N, help=f"versions in the collection (default {N})")
    parser.add_argument("--no-wandb", action="store_true", help="time the wbgql side only")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="wbgql-p7-") as tmp:
        db = args.db or Path(tmp) / "p7.db"
        result = bench(db, repeat=args.repeat, latency=args.latency, n=args.versions, ledger_dir=Path(tmp),
                       skip_wandb=args.no_wandb)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
