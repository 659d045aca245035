"""P4: this client's overhead over the wire — Client.runs() vs a hand-written aiohttp + orjson replay
of the same requests.

Same document text (queries/project_runs.graphql as loaded), same variables (the order as the client
compiles `created_at`: `+createdAt`), same headers, same page
size (1000), same pagination (endCursor until hasNextPage is false), 10,000 runs, 3 summary keys read
from every run. Two raw variants:
  raw sequential: fetch a page, read it, fetch the next (the obvious hand-written loop);
  raw pipelined:  ask for the next page before reading the current one (what Client.runs does).
Each variant runs --repeat times, interleaved (client, raw seq, raw pipe, client, ...), after one
warm-up round; the medians are compared, and the target (<= 1.2x) is checked against the faster raw one.
Also reported (steadier than wall time on a shared machine): CPU seconds of this process (the client
side) and of the server process (when this script started it) per variant.

    /work/venv/bin/python bench/p4_raw_baseline.py [--db PATH | --url URL --api-key KEY] [--repeat 5]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import sys
import time
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (ENTITY, N_RUNS, PROJECT, QUERIES, SUMMARY_KEYS, add_server_args, measure,  # noqa: E402
                     median, server_from_args)
from p1_list_runs import run_client  # noqa: E402

TARGET = 1.2
PER_PAGE = 1000


def run_raw(base_url: str, api_key: str, *, pipelined: bool) -> tuple[float, dict[str, tuple]]:
    import aiohttp

    text = (QUERIES / "project_runs.graphql").read_text()
    token = base64.b64encode(f"api:{api_key}".encode()).decode()
    headers = {"Authorization": f"Basic {token}", "Content-Type": "application/json"}
    variables = {"entity": ENTITY, "project": PROJECT, "filters": "{}", "order": "+createdAt",
                 "withConfig": False, "configKeys": None, "withSummary": True, "summaryKeys": SUMMARY_KEYS,
                 "first": PER_PAGE}

    async def main() -> dict[str, tuple]:
        out: dict[str, tuple] = {}
        async with aiohttp.ClientSession(headers=headers) as session:
            async def page(after: str | None) -> dict[str, Any]:
                body = {"query": text, "operationName": "ProjectRuns", "variables": {**variables, "after": after}}
                async with session.post(base_url + "/graphql", data=orjson.dumps(body)) as resp:
                    resp.raise_for_status()
                    return orjson.loads(await resp.read())["data"]["project"]["runs"]

            pending = asyncio.ensure_future(page(None))
            while pending is not None:
                runs = await pending
                info = runs["pageInfo"]
                pending = None
                if info["hasNextPage"]:
                    if pipelined:
                        pending = asyncio.ensure_future(page(info["endCursor"]))
                for edge in runs["edges"]:
                    node = edge["node"]
                    summary = orjson.loads(node["summaryMetrics"])
                    out[node["name"]] = tuple(summary[k] for k in SUMMARY_KEYS)
                if info["hasNextPage"] and not pipelined:
                    pending = asyncio.ensure_future(page(info["endCursor"]))
        return out

    started = time.perf_counter()
    values = asyncio.run(main())
    return time.perf_counter() - started, values


def bench(base_url: str, api_key: str, *, repeat: int = 5) -> dict[str, Any]:
    variants = {
        "client": lambda: run_client(base_url, api_key),
        "raw_seq": lambda: run_raw(base_url, api_key, pipelined=False),
        "raw_pipe": lambda: run_raw(base_url, api_key, pipelined=True),
    }
    times: dict[str, list[float]] = {k: [] for k in variants}
    cpu: dict[str, list[float]] = {k: [] for k in variants}
    server: dict[str, list[float]] = {k: [] for k in variants}
    reference = None
    for round_ in range(repeat + 1):  # round 0 is the warm-up
        for name, fn in variants.items():
            _, client_cpu, server_cpu, (seconds, values) = measure(fn, base_url)
            assert len(values) == N_RUNS, f"{name} read {len(values)} runs"
            if reference is None:
                reference = values
            assert values == reference, f"{name} read different values"
            if round_:
                times[name].append(seconds)
                cpu[name].append(client_cpu)
                if server_cpu is not None:
                    server[name].append(server_cpu)
    med = {k: median(v) for k, v in times.items()}
    med_cpu = {k: median(v) for k, v in cpu.items()}
    med_server = {k: (median(v) if v else None) for k, v in server.items()}
    best_raw = min(med["raw_seq"], med["raw_pipe"])
    result = {"client_s": med["client"], "raw_seq_s": med["raw_seq"], "raw_pipe_s": med["raw_pipe"],
              "ratio": med["client"] / best_raw, "ratio_seq": med["client"] / med["raw_seq"],
              "ratio_pipe": med["client"] / med["raw_pipe"], "times": times,
              "cpu": med_cpu, "server_cpu": med_server}
    for name in variants:
        srv = med_server[name]
        print(f"P4 {name:9s} median {med[name]:.3f} s wall, {med_cpu[name]:.3f} s client CPU"
              + (f", {srv:.2f} s server CPU" if srv is not None else "")
              + "   walls: " + ", ".join(f"{t:.3f}" for t in times[name]))
    print(f"P4 client / raw sequential: {result['ratio_seq']:.2f}x; client / raw pipelined: "
          f"{result['ratio_pipe']:.2f}x; vs the faster raw {result['ratio']:.2f}x (target <= {TARGET:g}x) "
          f"{'OK' if result['ratio'] <= TARGET else 'MISSED'}; client-side CPU "
          f"{med_cpu['client'] / min(med_cpu['raw_seq'], med_cpu['raw_pipe']):.2f}x the raw replay's", flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_server_args(parser)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with server_from_args(args.url, args.api_key, args.db) as (base_url, api_key):
        bench(base_url, api_key, repeat=args.repeat)


if __name__ == "__main__":
    main()
