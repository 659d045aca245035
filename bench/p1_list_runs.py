"""P1: list 10,000 runs reading 3 summary keys — this client vs wandb.Api().runs() in both its modes.

  (a) wandb-gql:   Client.runs(path, summary_keys=[3 keys], per_page=1000), then run.summary[k]
                   (median of --client-repeat runs after one warm-up; (b) and (c) run once each)
  (b) wandb lazy:  wandb.Api().runs(path, per_page=1000) (the default lazy=True), then
                   run.summary[k]: the first summary access loads the run's full data, one query per run
  (c) wandb full:  wandb.Api().runs(path, lazy=False, per_page=50) (whole config/summary per run)

Timed: from building the client (Client / wandb.Api) to the last value read; imports are not timed.
All three run in this process, one after the other, against the same server in its own process.
(b) stops after --lazy-sample runs if the linear projection says the whole list would take longer
than --lazy-budget seconds, and then reports the projection (clearly marked); otherwise it runs in full.
Values read by (b) and (c) are checked against (a) for every run they read.

    /work/venv/bin/python bench/p1_list_runs.py [--db PATH | --url URL --api-key KEY]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (N_RUNS, PATH, SUMMARY_KEYS, add_server_args, fmt_s, measure, median,  # noqa: E402
                     server_from_args, wandb_env)

TARGET_LAZY, TARGET_FULL = 30.0, 10.0


def run_client(base_url: str, api_key: str) -> tuple[float, dict[str, tuple]]:
    from wandb_gql.client import Client

    async def main() -> dict[str, tuple]:
        out: dict[str, tuple] = {}
        async with Client(base_url, api_key) as client:
            async for run in client.runs(PATH, summary_keys=SUMMARY_KEYS, per_page=1000):
                summary = run.summary
                out[run.name] = tuple(summary[k] for k in SUMMARY_KEYS)
        return out

    started = time.perf_counter()
    values = asyncio.run(main())
    return time.perf_counter() - started, values


def run_wandb(*, lazy: bool, per_page: int, sample: int | None = None,
              budget: float | None = None) -> dict[str, Any]:
    """Time wandb.Api().runs(); with sample/budget, may stop early and project linearly."""
    import wandb

    values: dict[str, tuple] = {}
    started = time.perf_counter()
    api = wandb.Api(timeout=120)
    stopped_at = None
    for run in api.runs(PATH, per_page=per_page, lazy=lazy):
        summary = run.summary
        values[run.id] = tuple(summary[k] for k in SUMMARY_KEYS)
        if sample and len(values) == sample and budget is not None:
            elapsed = time.perf_counter() - started
            if elapsed * N_RUNS / sample > budget:
                stopped_at = len(values)
                break
    elapsed = time.perf_counter() - started
    total = elapsed if stopped_at is None else elapsed * N_RUNS / stopped_at
    return {"seconds": total, "measured": elapsed, "runs": len(values), "projected": stopped_at is not None,
            "values": values}


def check(reference: dict[str, tuple], other: dict[str, tuple], label: str) -> None:
    missing = [k for k in other if k not in reference]
    assert not missing, f"{label}: runs the client did not list: {missing[:5]}"
    wrong = [(k, reference[k], v) for k, v in other.items() if reference[k] != v]
    assert not wrong, f"{label}: values differ from the client's, e.g. {wrong[:3]}"


def bench(base_url: str, api_key: str, *, lazy_sample: int = 1000, lazy_budget: float = 300.0,
          client_repeat: int = 5) -> dict[str, Any]:
    wandb_env(base_url, api_key)
    import wandb  # noqa: F401  (imported before timing: import cost is not what P1 measures)
    import wandb_gql.client  # noqa: F401

    run_client(base_url, api_key)  # warm-up: first connection, server page cache, lazy imports
    client_times, client_cpu, server_cpu = [], [], []
    for _ in range(client_repeat):  # a second each: the median of a few is cheap and steadier
        _, cpu, srv, (seconds, ref) = measure(lambda: run_client(base_url, api_key), base_url)
        client_times.append(seconds)
        client_cpu.append(cpu)
        if srv is not None:
            server_cpu.append(srv)
    client_s = median(client_times)
    assert len(ref) == N_RUNS, f"the client listed {len(ref)} runs, expected {N_RUNS}"
    print(f"P1 (a) wandb-gql              {fmt_s(client_s):>10}  {len(ref):,} runs (median of {client_repeat}: "
          + ", ".join(f"{t:.3f}" for t in client_times) + f"; client CPU {median(client_cpu):.3f} s"
          + (f", server CPU {median(server_cpu):.3f} s" if server_cpu else "") + ")", flush=True)

    _, full_cpu, full_srv, full = measure(lambda: run_wandb(lazy=False, per_page=50), base_url)
    assert full["runs"] == N_RUNS, f"wandb lazy=False listed {full['runs']} runs"
    check(ref, full["values"], "wandb lazy=False")
    print(f"P1 (c) wandb lazy=False/50    {fmt_s(full['seconds']):>10}  {full['runs']:,} runs, values match"
          f" (CPU: this process {full_cpu:.1f} s" + (f", server {full_srv:.1f} s" if full_srv is not None else "")
          + ", wandb-core not counted)", flush=True)

    _, lazy_cpu, lazy_srv, lazy = measure(
        lambda: run_wandb(lazy=True, per_page=1000, sample=lazy_sample, budget=lazy_budget), base_url)
    check(ref, lazy["values"], "wandb lazy")
    note = (f"PROJECTED from {lazy['runs']:,} runs in {fmt_s(lazy['measured'])}" if lazy["projected"]
            else f"{lazy['runs']:,} runs")
    print(f"P1 (b) wandb lazy (default)   {fmt_s(lazy['seconds']):>10}  {note}, values match"
          f" (CPU: this process {lazy_cpu:.1f} s" + (f", server {lazy_srv:.1f} s" if lazy_srv is not None else "")
          + ", wandb-core not counted)", flush=True)

    result = {
        "client_s": client_s, "client_times": client_times, "client_cpu": median(client_cpu),
        "server_cpu": median(server_cpu) if server_cpu else None,
        "lazy_s": lazy["seconds"], "lazy_projected": lazy["projected"], "lazy_runs": lazy["runs"],
        "full_s": full["seconds"],
        "lazy_cpu": lazy_cpu, "lazy_server_cpu": lazy_srv, "full_cpu": full_cpu, "full_server_cpu": full_srv,
        "ratio_lazy": lazy["seconds"] / client_s, "ratio_full": full["seconds"] / client_s,
    }
    print(f"P1 ratio vs lazy:       {result['ratio_lazy']:7.1f}x  (target >= {TARGET_LAZY:g}x)"
          f" {'OK' if result['ratio_lazy'] >= TARGET_LAZY else 'MISSED'}")
    print(f"P1 ratio vs lazy=False: {result['ratio_full']:7.1f}x  (target >= {TARGET_FULL:g}x)"
          f" {'OK' if result['ratio_full'] >= TARGET_FULL else 'MISSED'}", flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_server_args(parser)
    parser.add_argument("--lazy-sample", type=int, default=1000,
                        help="runs after which (b) may stop and project (default 1000)")
    parser.add_argument("--lazy-budget", type=float, default=300.0,
                        help="run (b) in full if projected under this many seconds (default 300)")
    parser.add_argument("--client-repeat", type=int, default=5)
    args = parser.parse_args()
    with server_from_args(args.url, args.api_key, args.db) as (base_url, api_key):
        bench(base_url, api_key, lazy_sample=args.lazy_sample, lazy_budget=args.lazy_budget,
              client_repeat=args.client_repeat)


if __name__ == "__main__":
    main()
