"""P3: clean up 1,000 runs — `wbgql` (plan, ledger, bulk mutations pinned to ids, verify) vs the
loop W&B users write with wandb.Api — both as whole processes, on one local server that adds
30 ms to every GraphQL request (`--faults '{"latency": 0.03}'`: W&B is a network away).

  delete  (a) wbgql runs delete PATH --where 'group = doomed' --yes --ledger FILE
          (b) python: for run in wandb.Api().runs(PATH, {"group": "doomed"}): run.delete()
  tag     (a) wbgql runs update PATH --where 'group = doomed' --add-tag cleaned --yes --ledger FILE
          (b) python: for run in wandb.Api().runs(PATH, {"group": "doomed"}):
                          run.tags.append("cleaned"); run.update()

Each variant gets a fresh project of its own (1,000 finished runs in group "doomed" plus 100
others that must stay untouched), made straight in SQLite before the server starts. Timed: the
whole process, start-up and imports included (subprocess wall time). After each variant the
project is checked on the server: exactly the 1,000 deleted / tagged, the 100 others untouched.
(a) runs --repeat times (fresh project each, median); (b) once.

    /work/venv/bin/python bench/p3_cleanup.py [--repeat 3] [--latency 0.03] [--only delete|tag]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import BIN, make_project, median, server_process, wandb_env  # noqa: E402

ENTITY = "bench"
N, OTHERS = 1000, 100
TARGET = 20.0
TAG = "cleaned"
WHERE = "group = doomed"

_WANDB_DELETE = """
import sys, wandb
api = wandb.Api(timeout=120)
for run in api.runs(sys.argv[1], filters={"group": "doomed"}):
    run.delete()
"""
_WANDB_TAG = """
import sys, wandb
api = wandb.Api(timeout=120)
for run in api.runs(sys.argv[1], filters={"group": "doomed"}):
    run.tags.append("cleaned")
    run.update()
"""


def _gql(base_url: str, api_key: str, query: str) -> Any:
    import base64

    req = urllib.request.Request(base_url + "/graphql", data=json.dumps({"query": query}).encode(), headers={
        "Content-Type": "application/json",
        "Authorization": "Basic " + base64.b64encode(f"api:{api_key}".encode()).decode()})
    with urllib.request.urlopen(req, timeout=60) as r:
        body = json.loads(r.read())
    assert not body.get("errors"), body
    return body["data"]


def check(base_url: str, api_key: str, project: str, action: str) -> str:
    """Exactly the 1,000 doomed runs deleted / tagged; the others untouched. Returns a summary."""
    q = ('{ project(name: "%s", entityName: "%s") { doomed: runCount(filters: "{\\"group\\": \\"doomed\\"}")'
         ' others: runCount(filters: "{\\"group\\": \\"other\\"}")'
         ' tagged: runCount(filters: "{\\"tags\\": \\"%s\\"}") deletedRuns(first: 1) { totalCount } } }'
         % (project, ENTITY, TAG))
    p = _gql(base_url, api_key, q)["project"]
    deleted = p["deletedRuns"]["totalCount"]
    if action == "delete":
        assert (p["doomed"], deleted, p["others"]) == (0, N, OTHERS), p
    else:
        assert (p["doomed"], p["tagged"], deleted, p["others"]) == (N, N, 0, OTHERS), p
    return f"{deleted} deleted, {p['tagged']} tagged, {p['others']} others intact"


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, subprocess.CompletedProcess]:
    started = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    return time.perf_counter() - started, proc


def bench(db: Path, *, repeat: int = 3, latency: float = 0.03, only: str | None = None,
          ledger_dir: Path | None = None, src: Path | None = None, skip_wandb: bool = False) -> dict[str, Any]:
    """`src`: run the wbgql side from another source tree (e.g. `git archive` of an older commit,
    whose CLI has no --ledger: then none is passed)."""
    actions = [a for a in ("delete", "tag") if only in (None, a)]
    projects = {(a, v, i): f"p3-{a}-{v}{i}" for a in actions
                for v, count in (("gql", repeat), ("wandb", 0 if skip_wandb else 1)) for i in range(count)}
    started = time.perf_counter()
    for project in projects.values():
        make_project(db, ENTITY, project, N, others=OTHERS)
    print(f"data: {len(projects)} projects of {N:,} + {OTHERS} runs in {db}"
          f" ({time.perf_counter() - started:.1f} s)", flush=True)
    ledger_dir = ledger_dir or Path(tempfile.mkdtemp(prefix="wbgql-p3-"))
    results: dict[str, Any] = {"latency": latency}
    with server_process(db, faults={"latency": latency}) as (base_url, api_key):
        wandb_env(base_url, api_key)  # sets WANDB_BASE_URL / WANDB_API_KEY for both sides
        env = dict(os.environ)
        gql_env = dict(env, PYTHONPATH=str(src / "src")) if src else env
        for action in actions:
            gql_times = []
            for i in range(repeat):
                project = projects[(action, "gql", i)]
                ledger = ledger_dir / f"{project}.jsonl"
                cmd = [str(BIN / "wbgql"), "runs", "delete" if action == "delete" else "update",
                       f"{ENTITY}/{project}", "--where", WHERE, "--yes"]
                cmd += [] if src else ["--ledger", str(ledger)]
                if action == "tag":
                    cmd += ["--add-tag", TAG]
                seconds, proc = timed(cmd, gql_env)
                if proc.returncode != 0:
                    raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stderr[-2000:]}")
                note = check(base_url, api_key, project, action)
                gql_times.append(seconds)
                size = f"; ledger {ledger.stat().st_size / 1e6:.1f} MB" if ledger.exists() else "; no ledger"
                print(f"P3 {action:6} (a) wbgql     {seconds:8.3f} s  {note}{size}", flush=True)
            gql_s = median(gql_times)
            results[action] = {"gql_s": gql_s, "gql_times": gql_times}
            if skip_wandb:
                continue
            project = projects[(action, "wandb", 0)]
            script = _WANDB_DELETE if action == "delete" else _WANDB_TAG
            seconds, proc = timed([sys.executable, "-c", script, f"{ENTITY}/{project}"], env)
            if proc.returncode != 0:
                raise RuntimeError(f"wandb loop exited {proc.returncode}:\n{proc.stderr[-2000:]}")
            note = check(base_url, api_key, project, action)
            ratio = seconds / gql_s
            print(f"P3 {action:6} (b) wandb.Api {seconds:8.3f} s  {note}", flush=True)
            print(f"P3 {action:6} wbgql median {gql_s:.3f} s of {repeat}: {ratio:.1f}x faster"
                  f" (target >= {TARGET:.0f}x {'met' if ratio >= TARGET else 'MISSED'})", flush=True)
            results[action].update(wandb_s=seconds, ratio=ratio)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", type=Path, help="SQLite file (default: a fresh one in a temporary folder)")
    parser.add_argument("--repeat", type=int, default=3, help="wbgql runs per action (default 3)")
    parser.add_argument("--latency", type=float, default=0.03, help="seconds added to every request")
    parser.add_argument("--only", choices=("delete", "tag"))
    parser.add_argument("--src", type=Path, help="run wbgql from this source tree (no --ledger passed)")
    parser.add_argument("--no-wandb", action="store_true", help="time the wbgql side only")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="wbgql-p3-") as tmp:
        db = args.db or Path(tmp) / "p3.db"
        result = bench(db, repeat=args.repeat, latency=args.latency, only=args.only, ledger_dir=Path(tmp),
                       src=args.src, skip_wandb=args.no_wandb)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
