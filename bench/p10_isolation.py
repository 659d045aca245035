"""P10: isolation — a quick query stays quick while other clients page 100k runs (issue 11).

One `wbgql server` process over P9's project of 100,000 runs (`p9-100k.db`, reused; made by
make_data if missing, ~5 min). K pager processes (default K = 1, 2, 4) each page through every
run ordered by `-summary_metrics.loss`, 1,000 a page, with the projection `wbgql runs list
--order -summary.loss` sends (ProjectRuns, the table's fields, no config or summary), over a
keep-alive connection of their own. Meanwhile this process sends the `Viewer` query (the one
`wbgql` sends for whoami and its auth checks) one at a time, one every ~20 ms, and records each
latency. Reported per K: viewer p50/p95/p99/max while all K pagers were under way (from the last
pager's first request to the first pager's last answer), the pagers' runs/s, and the server
process's CPU (seconds per second of wall, from /proc); and the same viewer figures with no
pagers (baseline). Each server setting (`--workers`: the default, and 1) gets a server of its own.

Target (issue 11): viewer p95 < 50 ms while other clients page 100k runs ordered by a metric.

    /work/venv/bin/python bench/p10_isolation.py [--pagers 1,2,4] [--workers default,1]
        [--pages N] [--baseline 10] [--interval 0.02] [--json OUT]
    /work/venv/bin/python bench/p10_isolation.py --quick     # K=2, 40 pages each, default workers

Also per phase: the server's threads' CPU and run-queue wait (Linux schedstat), and the pagers'
and the prober's CPU. `--what-if` runs the same server through a wrapper in this file with one
thing changed from outside src/ (GIL switch interval, large pages at once, a cached key lookup)
and can trace where each viewer request's time goes, to find what would fix a miss.

The API key reaches the pagers in their environment, never on their command line.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import math
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlsplit

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (DEFAULT_DB, ENTITY, PROJECT, load_average, make_data, server_cpu, server_pid,  # noqa: E402
                     server_process)

TARGET_MS = 50.0
# --quick, and what run_all runs: enough viewer samples (~200) for a p95 in ~20 s.
QUICK = {"pagers": [2], "workers": ["default"], "pages": 40, "baseline_s": 3.0}
_KEY_ENV = "WBGQL_P10_KEY"


# -- one keep-alive GraphQL connection (prober and pagers) ------------------------------------
class Connection:
    def __init__(self, base_url: str, api_key: str) -> None:
        parts = urlsplit(base_url)
        self.http = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=600)
        self.headers = {"Content-Type": "application/json",
                        "Authorization": "Basic " + base64.b64encode(f"api:{api_key}".encode()).decode()}

    def post(self, body: bytes) -> dict[str, Any]:
        self.http.request("POST", "/graphql", body, self.headers)
        reply = self.http.getresponse()
        data = orjson.loads(reply.read())
        if reply.status != 200 or data.get("errors"):
            raise RuntimeError(f"HTTP {reply.status}: {str(data)[:300]}")
        return data["data"]


# -- what-if: the same server with one thing changed, from outside src/ -------------------------
_WHATIF_ENV = "WBGQL_P10_WHATIF"


def whatif_server(argv: list[str]) -> None:
    """Run `wbgql <argv>` with the what-ifs in $WBGQL_P10_WHATIF (JSON) applied first:
    switch: sys.setswitchinterval (CPython's GIL hand-over period, 5 ms by default);
    lane: how many large pages may run at once (Server.large's threads; the server's is 1);
    authcache: seconds a key's user is kept (the server looks it up on the event loop, two SQLite
    statements, on every request);
    trace: a file that gets one line per Viewer request: when the auth middleware saw it
    (perf_counter), then seconds in auth and parsing, waiting for a pool thread, in the pool, and
    until the loop had the answer back."""
    import contextvars
    from concurrent.futures import ThreadPoolExecutor

    from aiohttp import web

    from wandb_gql.cli import main as wbgql
    from wandb_gql.server import app

    spec = orjson.loads(os.environ[_WHATIF_ENV])
    if "switch" in spec:
        sys.setswitchinterval(spec["switch"])
    if "lane" in spec:
        init = app.Server.__init__

        def patched_init(self: Any, *args: Any, **kwargs: Any) -> None:
            init(self, *args, **kwargs)
            self.large = ThreadPoolExecutor(max_workers=spec["lane"], thread_name_prefix="wbgql-large")

        app.Server.__init__ = patched_init  # type: ignore[method-assign]
    if "authcache" in spec:
        from wandb_gql.server.store import Store

        authenticate, known = Store.authenticate, {}

        def cached(self: Any, key: str) -> Any:
            now = time.monotonic()
            hit = known.get(key)
            if hit is None or now - hit[0] > spec["authcache"]:
                hit = known[key] = (now, authenticate(self, key))
            return hit[1]

        Store.authenticate = cached  # type: ignore[method-assign]
    if "trace" in spec:
        trace = open(spec["trace"], "a", buffering=1)
        arrived: contextvars.ContextVar[float] = contextvars.ContextVar("arrived", default=0.0)
        auth = app.auth_middleware

        @web.middleware
        async def stamped(request: web.Request, handler: Any) -> web.StreamResponse:
            arrived.set(time.perf_counter())
            return await auth(request, handler)

        app.auth_middleware = stamped
        run = app.Server.run

        async def traced(self: Any, work: Any, *args: Any, **kwargs: Any) -> Any:
            if work is not app._execute or args[2] != "Viewer":
                return await run(self, work, *args, **kwargs)
            box: dict[str, float] = {}

            def timed(*a: Any) -> Any:
                box["ran"] = time.perf_counter()
                try:
                    return work(*a)
                finally:
                    box["done"] = time.perf_counter()

            queued = time.perf_counter()
            result = await run(self, timed, *args, **kwargs)
            back = time.perf_counter()
            trace.write(f"{arrived.get()} {queued - arrived.get()} {box['ran'] - queued} "
                        f"{box['done'] - box['ran']} {back - box['done']}\n")
            return result

        app.Server.run = traced  # type: ignore[method-assign]
    sys.argv = ["wbgql", *argv]
    wbgql()


def trace_figures(path: Path, samples: list[tuple[float, float, float | None]], t0: float,
                  t1: float) -> dict[str, float]:
    """p50/p95 ms of each part of the prober's viewer requests sent between t0 and t1: the
    server's trace lines matched to them (one clock: perf_counter is CLOCK_MONOTONIC), plus
    `to handler` (sent until the middleware ran: the loop reading the request) and `reply` (back
    on the loop until the prober had the answer)."""
    traced = sorted(tuple(float(x) for x in line.split()) for line in path.read_text().splitlines() if line.strip())
    rows, i = [], 0
    for sent, took, _ in samples:
        while i < len(traced) and traced[i][0] < sent:
            i += 1
        if t0 <= sent <= t1 and i < len(traced) and traced[i][0] <= sent + took:
            arrived, *parts = traced[i]
            rows.append((arrived - sent, *parts, sent + took - arrived - sum(parts)))
    out: dict[str, float] = {"n": len(rows)}
    for i, part in enumerate(("to handler", "auth+parse", "to pool", "in pool", "to loop", "reply")):
        xs = sorted(r[i] * 1000 for r in rows)
        if xs:
            out[f"{part} p50_ms"], out[f"{part} p95_ms"] = percentile(xs, 0.5), percentile(xs, 0.95)
    return out


# -- the pager: a process of its own ----------------------------------------------------------
def pager_main(base_url: str, pages: int) -> None:
    """Page through the project with the request read from stdin, printing one line per page:
    `ready` before the first request, `page <seconds> <runs>` after each, `done` at the end."""
    template = orjson.loads(sys.stdin.buffer.read())
    conn = Connection(base_url, os.environ[_KEY_ENV])
    after, done = None, 0
    print("ready", flush=True)
    while True:
        started = time.perf_counter()
        runs = conn.post(orjson.dumps({**template, "variables": {**template["variables"], "after": after}}))
        runs = runs["project"]["runs"]
        done += 1
        print(f"page {time.perf_counter() - started:.6f} {len(runs['edges'])}", flush=True)
        if not runs["pageInfo"]["hasNextPage"] or done == pages:
            break
        after = runs["pageInfo"]["endCursor"]
    print("done", flush=True)


def runs_list_request(per_page: int = 1000) -> dict[str, Any]:
    """ProjectRuns as `wbgql runs list bench/p10k --order -summary.loss` sends it (table view)."""
    from wandb_gql.documents import document
    from wandb_gql.export import TABLE_COLUMNS
    from wandb_gql.filters import compile_order
    from wandb_gql.models import RUN_FIELDS

    flags = {f.flag: f.name in TABLE_COLUMNS for f in RUN_FIELDS if f.optional}
    return {"query": document("ProjectRuns"), "operationName": "ProjectRuns", "variables": {
        "entity": ENTITY, "project": PROJECT, "filters": "{}", "order": compile_order("-summary.loss"),
        "withConfig": False, "configKeys": None, "withSummary": False, "summaryKeys": None,
        "first": per_page, "after": None, **flags}}


class Pager:
    """A pager process and what its lines said, with this process's clock."""

    def __init__(self, base_url: str, api_key: str, request: dict[str, Any], pages: int) -> None:
        self.ready_at: float | None = None
        self.done_at: float | None = None
        self.pages: list[tuple[float, float, int]] = []  # (answered at, seconds, runs)
        env = {**os.environ, _KEY_ENV: api_key}
        self.proc = subprocess.Popen([sys.executable, __file__, "--pager-of", base_url, "--pages", str(pages)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        assert self.proc.stdin is not None
        self.proc.stdin.write(orjson.dumps(request))
        self.proc.stdin.close()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            line = raw.decode().split()
            now = time.perf_counter()
            if line[0] == "ready":
                self.ready_at = now
            elif line[0] == "page":
                self.pages.append((now, float(line[1]), int(line[2])))
            elif line[0] == "done":
                self.done_at = now

    def wait(self) -> None:
        self.proc.wait()
        self.reader.join()
        if self.proc.returncode != 0 or self.done_at is None:
            assert self.proc.stderr is not None
            raise RuntimeError(f"pager failed ({self.proc.returncode}): {self.proc.stderr.read().decode()[-500:]}")

    def runs_between(self, t0: float, t1: float) -> int:
        return sum(n for at, _, n in self.pages if t0 < at <= t1)


# -- the prober ---------------------------------------------------------------------------------
class Prober:
    """Viewer queries, one at a time, one every `interval` s (or right after a slower answer),
    until stopped: (sent at, seconds, server CPU s so far) for each."""

    def __init__(self, base_url: str, api_key: str, interval: float) -> None:
        from wandb_gql.documents import document

        self.conn = Connection(base_url, api_key)
        self.body = orjson.dumps({"query": document("Viewer"), "operationName": "Viewer", "variables": {}})
        self.base_url, self.interval = base_url, interval
        self.samples: list[tuple[float, float, float | None]] = []
        self.stop = threading.Event()
        self.error: BaseException | None = None
        self.conn.post(self.body)  # the document is parsed and cached before anything is timed

    def run(self) -> None:
        try:
            while not self.stop.is_set():
                sent = time.perf_counter()
                answer = self.conn.post(self.body)
                took = time.perf_counter() - sent
                assert answer["viewer"]["username"]
                self.samples.append((sent, took, server_cpu(self.base_url)))
                self.stop.wait(max(0.0, self.interval - took))
        except BaseException as e:  # reported by the caller, not lost in a thread
            self.error = e

    def __enter__(self) -> "Prober":
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop.set()
        self.thread.join()
        if self.error is not None and exc[0] is None:
            raise self.error


def scheduler_times(base_url: str) -> dict[str, tuple[float, float, int]]:
    """{"loop" (the main thread) or "pool" (every other thread): (s on a CPU, s runnable but
    waiting for one, times it was scheduled)} of the server's threads, from Linux schedstat. A
    thread waiting for the GIL sleeps, so it is in neither: what a request waits beyond these is
    the GIL (or the pool), not the machine's other work."""
    pid = server_pid(base_url)
    out: dict[str, tuple[float, float, int]] = {}
    if pid is None:
        return out
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            on_cpu, waiting, slices = (task / "schedstat").read_text().split()
        except (OSError, ValueError):
            continue
        name = "loop" if task.name == str(pid) else "pool"
        cpu0, wait0, n0 = out.get(name, (0.0, 0.0, 0))
        out[name] = (cpu0 + int(on_cpu) / 1e9, wait0 + int(waiting) / 1e9, n0 + int(slices))
    return out


def scheduler_figures(before: dict[str, tuple[float, float, int]], after: dict[str, tuple[float, float, int]],
                      seconds: float) -> dict[str, float]:
    """Per second of the phase: each thread group's CPU, its wait for a CPU, and that wait per
    time it was scheduled. Threads that came and went inside the phase are not counted."""
    out: dict[str, float] = {}
    for name in ("loop", "pool"):
        if name in before and name in after:
            cpu, wait, slices = (a - b for a, b in zip(after[name], before[name]))
            out[f"{name} cpu s/s"] = cpu / seconds
            out[f"{name} runqueue wait s/s"] = wait / seconds
            out[f"{name} runqueue wait per slice ms"] = wait / slices * 1000 if slices > 0 else 0.0
    return out


def percentile(sorted_xs: list[float], p: float) -> float:
    """Nearest rank: the smallest value with at least p of the samples at or below it."""
    return sorted_xs[max(0, math.ceil(p * len(sorted_xs)) - 1)]


def latency_figures(samples: list[tuple[float, float, float | None]], t0: float, t1: float) -> dict[str, Any]:
    inside = [s for s in samples if t0 <= s[0] <= t1]
    took = sorted(s[1] * 1000 for s in inside)
    if not took:
        raise RuntimeError("no viewer answer fell inside the window: the pagers finished too soon")
    out: dict[str, Any] = {"n": len(took), "t0": t0, "t1": t1, "window_s": t1 - t0, "p50_ms": percentile(took, 0.50),
                           "p95_ms": percentile(took, 0.95), "p99_ms": percentile(took, 0.99), "max_ms": took[-1]}
    cpu = [(s[0], s[2]) for s in inside if s[2] is not None]
    if len(cpu) >= 2 and cpu[-1][0] > cpu[0][0]:
        out["server_cpu_per_s"] = (cpu[-1][1] - cpu[0][1]) / (cpu[-1][0] - cpu[0][0])
    return out


# -- the phases ---------------------------------------------------------------------------------
def baseline(base_url: str, api_key: str, interval: float, seconds: float) -> dict[str, Any]:
    load = load_average()
    with Prober(base_url, api_key, interval) as prober:
        t0, sched = time.perf_counter(), scheduler_times(base_url)
        time.sleep(seconds)
    out = latency_figures(prober.samples, t0, time.perf_counter())
    out.update(load_before=load, load_after=load_average(), samples=prober.samples,
               sched=scheduler_figures(sched, scheduler_times(base_url), time.perf_counter() - t0))
    return out


def _children_cpu() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def under_pagers(base_url: str, api_key: str, k: int, interval: float, pages: int) -> dict[str, Any]:
    """Viewer latencies while all k pagers are under way, and the pagers' throughput."""
    load = load_average()
    request = runs_list_request()
    with Prober(base_url, api_key, interval) as prober:
        started, sched = time.perf_counter(), scheduler_times(base_url)
        children, own = _children_cpu(), time.process_time()
        pagers = [Pager(base_url, api_key, request, pages) for _ in range(k)]
        try:
            for pager in pagers:
                pager.wait()
        finally:
            for pager in pagers:
                if pager.proc.poll() is None:
                    pager.proc.kill()
        # The whole phase (pagers starting and finishing too): a slightly wider window.
        phase_s = time.perf_counter() - started
        sched_figures = scheduler_figures(sched, scheduler_times(base_url), phase_s)
        # The pagers have been waited for (the server has not): their CPU is the children's.
        sched_figures["pagers cpu s/s"] = (_children_cpu() - children) / phase_s
        sched_figures["prober cpu s/s"] = (time.process_time() - own) / phase_s
    t0 = max(p.ready_at for p in pagers if p.ready_at is not None)
    t1 = min(p.done_at for p in pagers if p.done_at is not None)
    out = latency_figures(prober.samples, t0, t1)
    window_runs = sum(p.runs_between(t0, t1) for p in pagers)
    page_s = sorted(s for p in pagers for _, s, _ in p.pages)
    out.update(
        pagers=k, runs_each=[sum(n for _, _, n in p.pages) for p in pagers],
        runs_per_s=window_runs / (t1 - t0),  # every pager together, while all were under way
        wall_each_s=[p.done_at - p.ready_at for p in pagers if p.done_at and p.ready_at],
        page_p50_ms=percentile(page_s, 0.5) * 1000, page_max_ms=page_s[-1] * 1000,
        load_before=load, load_after=load_average(), samples=prober.samples, sched=sched_figures)
    return out


def warm_up(base_url: str, api_key: str, pages: int) -> float:
    """One pager's listing, not measured: the first pass over the file reads it from disk (a cold
    100k listing ran at a quarter of the warm speed), and the later phases must not depend on
    which came first."""
    started = time.perf_counter()
    pager = Pager(base_url, api_key, runs_list_request(), pages)
    pager.wait()
    return time.perf_counter() - started


def bench(pagers: list[int], workers: list[str], *, pages: int = 0, interval: float = 0.02,
          baseline_s: float = 10.0, runs: int = 100_000, warm: bool = True, whatif: dict[str, Any] | None = None,
          on_result: Callable[[str, str, dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """{workers setting: {"baseline": ..., "K=1": ..., ...}}; `pages` 0 = every page; `whatif`:
    the server changed from outside (see whatif_server), figures not the shipped server's."""
    data = make_data(DEFAULT_DB.with_name(f"p9-{runs // 1000}k.db"), runs)
    figures: dict[str, Any] = {"runs": runs, "pages_per_pager": pages or math.ceil(runs / 1000),
                               "interval_s": interval, "whatif": whatif or {}}
    command = None
    trace = None
    if whatif:
        if whatif.get("trace"):
            trace = data.with_name("p10-trace.txt")
            trace.write_text("")
            whatif = {**whatif, "trace": str(trace)}
        os.environ[_WHATIF_ENV] = orjson.dumps(whatif).decode()
        command = [sys.executable, __file__, "--as-server"]
    for setting in workers:
        args = [] if setting == "default" else ["--workers", setting]
        results: dict[str, Any] = {}
        with server_process(data, args=args, command=command) as (base_url, api_key):
            if warm:
                results["warm-up s"] = warm_up(base_url, api_key, pages)
            phases: list[tuple[str, Callable[[], dict[str, Any]]]] = [
                ("baseline", lambda: baseline(base_url, api_key, interval, baseline_s))]
            phases += [(f"K={k}", lambda k=k: under_pagers(base_url, api_key, k, interval, pages))  # type: ignore[misc]
                       for k in pagers]
            for phase, measure_phase in phases:
                result = results[phase] = measure_phase()
                if trace is not None:
                    result["trace"] = trace_figures(trace, result.pop("samples"), result["t0"], result["t1"])
                result.pop("samples", None)
                if on_result:
                    on_result(setting, phase, result)
        figures[f"workers {setting}"] = results
    return figures


def line(setting: str, phase: str, f: dict[str, Any]) -> str:
    verdict = "OK" if f["p95_ms"] < TARGET_MS else "MISSED"
    text = (f"  workers {setting:<7} {phase:<8} viewer p50 {f['p50_ms']:6.1f}  p95 {f['p95_ms']:6.1f}  "
            f"p99 {f['p99_ms']:6.1f}  max {f['max_ms']:6.1f} ms  (n={f['n']}, {f['window_s']:.1f} s)")
    if "runs_per_s" in f:
        text += f"  pagers {f['runs_per_s']:,.0f} runs/s, page p50 {f['page_p50_ms']:.0f} ms"
    if "server_cpu_per_s" in f:
        text += f"  server CPU {f['server_cpu_per_s']:.2f} s/s"
    text += f"  load {f['load_before']} -> {f['load_after']}  p95 < {TARGET_MS:.0f} ms {verdict}"
    if f.get("sched"):
        text += "\n    server threads, s per s on a CPU / waiting for one (ms a wait): " + ", ".join(
            f"{name} {f['sched'][name + ' cpu s/s']:.2f}/{f['sched'][name + ' runqueue wait s/s']:.2f}"
            f" ({f['sched'][name + ' runqueue wait per slice ms']:.2f})"
            for name in ("loop", "pool") if name + " cpu s/s" in f["sched"])
        if "pagers cpu s/s" in f["sched"]:
            text += (f"; CPU s/s of the pagers {f['sched']['pagers cpu s/s']:.2f}, of the prober"
                     f" {f['sched']['prober cpu s/s']:.2f}")
    if "trace" in f:
        parts = [k[:-7] for k in f["trace"] if k.endswith(" p50_ms")]
        text += "\n    server side (p50/p95 ms): " + ", ".join(
            f"{p} {f['trace'][p + ' p50_ms']:.1f}/{f['trace'][p + ' p95_ms']:.1f}" for p in parts)
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pagers", default="1,2,4", help="pager process counts K, comma-separated")
    parser.add_argument("--workers", default="default,1",
                        help="server --workers settings, comma-separated ('default': the server's own)")
    parser.add_argument("--pages", type=int, default=0, help="pages each pager reads (default 0: every page)")
    parser.add_argument("--interval", type=float, default=0.02, help="seconds between viewer queries")
    parser.add_argument("--baseline", type=float, default=10.0, help="seconds of viewer queries with no pagers")
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--quick", action="store_true", help="K=2, 40 pages each, default workers, 3 s baseline")
    parser.add_argument("--no-warmup", action="store_true", help="skip the unmeasured listing before the phases")
    parser.add_argument("--what-if", metavar="SPEC",
                        help="the server changed from outside src/, to find what would help: comma-separated "
                             "switch=SECONDS (sys.setswitchinterval), lane=N (large pages at once), "
                             "authcache=SECONDS (a key's user kept that long instead of looked up per request), trace "
                             "(where each viewer request's time goes, server side)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--pager-of", metavar="URL", help=argparse.SUPPRESS)
    if sys.argv[1:2] == ["--as-server"]:
        whatif_server(sys.argv[2:])
        return
    args = parser.parse_args()
    if args.pager_of:
        pager_main(args.pager_of, args.pages)
        return
    if args.quick:
        args.pagers, args.workers = ",".join(map(str, QUICK["pagers"])), ",".join(QUICK["workers"])
        args.pages, args.baseline = QUICK["pages"], QUICK["baseline_s"]
    workers = [w.strip() for w in args.workers.split(",")]
    try:
        pagers = [int(k) for k in args.pagers.split(",")]
    except ValueError:
        pagers = []
    if not pagers or any(k < 1 for k in pagers) or any(w != "default" and not w.isdigit() for w in workers):
        parser.error("--pagers takes counts >= 1, e.g. 1,2,4; --workers takes 'default' or counts, e.g. default,1")
    whatif: dict[str, Any] = {}
    for item in filter(None, (args.what_if or "").split(",")):
        name, _, value = item.partition("=")
        try:
            if name in ("switch", "authcache") and float(value) > 0:
                whatif[name] = float(value)
            elif name == "lane" and int(value) >= 1:
                whatif[name] = int(value)
            elif name == "trace" and not value:
                whatif[name] = True
            else:
                raise ValueError(item)
        except ValueError:
            parser.error(f"--what-if {item!r}: expected switch=SECONDS, lane=N, authcache=SECONDS or trace")
    print(f"P10 — viewer latency while K pagers list {args.runs:,} runs by -summary_metrics.loss "
          f"({os.cpu_count()} CPUs; load average {load_average()})", flush=True)
    if whatif:
        print(f"what-if (not the shipped server): {whatif}", flush=True)
    figures = bench(pagers, workers, pages=args.pages, interval=args.interval, baseline_s=args.baseline,
                    runs=args.runs, warm=not args.no_warmup, whatif=whatif,
                    on_result=lambda s, p, f: print(line(s, p, f), flush=True))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
