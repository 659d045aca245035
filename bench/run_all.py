"""Run every benchmark in one go against one server process and print a summary table.

    cd /work/main && /work/venv/bin/python bench/run_all.py [--db PATH] [--repeat 5] [--json OUT]

Order: data set (made once, reused), P6 (no server needed), then one `wbgql server` subprocess for
P4 and P1 (P1 last: it starts wandb's wandb-core helper, which stays up until this process exits),
then P8 (its own servers over 10k and 100k runs; `--no-p8` skips it), then P3 (its own server with
30 ms latency per request and fresh projects; `--no-p3` skips it, ~3 min), then P7 (the same for
pruning a 2,000-version artifact collection; `--no-p7` skips it, ~2 min), then P2 (its own server
over 200 runs x 2,000 history steps; `--no-p2` skips it, ~2 min), then P5 (runs to Parquet over
10k/50k/100k runs, in a process of its own; `--no-p5` skips it, ~2 min), then P9 (its own server
over 100k runs: ordering by a metric, selective filters, runCount; `--no-p9` skips it, ~6 min the
first time, when its data set is made), then P10's quick mode (its own server over P9's data set: viewer
latency while 2 pager processes list 40 pages each by a metric; `--no-p10` skips it, ~15 s).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import p1_list_runs  # noqa: E402
import p2_history  # noqa: E402
import p3_cleanup  # noqa: E402
import p4_raw_baseline  # noqa: E402
import p6_help  # noqa: E402
import p7_artifacts  # noqa: E402
import p9_server_scale  # noqa: E402
import p10_isolation  # noqa: E402
from _common import DEFAULT_DB, make_data, server_process  # noqa: E402


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _p8() -> dict[str, dict[int, float]]:
    """P8 in a process of its own: a child's peak RSS counts what it inherited at fork, and this
    process holds wandb by now."""
    import subprocess

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "p8.json"
        subprocess.run([sys.executable, str(Path(__file__).with_name("p8_table_memory.py")), "--json", str(out)],
                       check=True)
        return {case: {int(n): mb for n, mb in peaks.items()} for case, peaks in json.loads(out.read_text()).items()}


def _p5() -> dict[str, dict[int, list[float]]]:
    """P5 in a process of its own, for the same reason as P8."""
    import subprocess

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "p5.json"
        subprocess.run([sys.executable, str(Path(__file__).with_name("p5_parquet.py")), "--json", str(out)],
                       check=True)
        return {who: {int(n): v for n, v in by_n.items()} for who, by_n in json.loads(out.read_text()).items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", type=Path, default=DEFAULT_DB)
    parser.add_argument("--repeat", type=int, default=5, help="P4 rounds and P1 client runs (default 5)")
    parser.add_argument("--help-repeat", type=int, default=10, help="P6 runs (default 10)")
    parser.add_argument("--lazy-budget", type=float, default=300.0,
                        help="P1 (b) runs in full if projected under this many seconds")
    parser.add_argument("--no-p8", action="store_true", help="skip P8 (memory over 100k runs, ~2 min)")
    parser.add_argument("--no-p3", action="store_true", help="skip P3 (cleanup of 1,000 runs, ~3 min)")
    parser.add_argument("--no-p7", action="store_true", help="skip P7 (prune 2,000 artifact versions, ~2 min)")
    parser.add_argument("--no-p2", action="store_true", help="skip P2 (history of 200 runs x 2,000 steps, ~2 min)")
    parser.add_argument("--no-p5", action="store_true", help="skip P5 (runs to Parquet, 10k-100k runs, ~2 min)")
    parser.add_argument("--no-p9", action="store_true", help="skip P9 (server at 100k runs, ~2-6 min)")
    parser.add_argument("--no-p10", action="store_true", help="skip P10 (viewer latency beside pagers, ~15 s)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()

    import wandb

    started = time.perf_counter()
    print(f"# {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} CPUs, Python "
          f"{platform.python_version()}, wandb {wandb.__version__}, load average at start {_load()}", flush=True)
    db = make_data(args.db)
    p6 = p6_help.bench(args.help_repeat)
    with server_process(db) as (base_url, api_key):
        p4 = p4_raw_baseline.bench(base_url, api_key, repeat=args.repeat)
        p1 = p1_list_runs.bench(base_url, api_key, lazy_budget=args.lazy_budget, client_repeat=args.repeat)
    p8 = {} if args.no_p8 else _p8()
    p3: dict = {}
    if not args.no_p3:
        with tempfile.TemporaryDirectory(prefix="wbgql-p3-") as tmp:
            p3 = p3_cleanup.bench(Path(tmp) / "p3.db", repeat=3, ledger_dir=Path(tmp))
    p7: dict = {}
    if not args.no_p7:
        with tempfile.TemporaryDirectory(prefix="wbgql-p7-") as tmp:
            p7 = p7_artifacts.bench(Path(tmp) / "p7.db", repeat=3, ledger_dir=Path(tmp))
    p2: dict = {}
    if not args.no_p2:
        with server_process(p2_history.make_history()) as (base_url, api_key):
            p2 = p2_history.bench(base_url, api_key, repeat=3)
    p5 = {} if args.no_p5 else _p5()
    p9: dict = {} if args.no_p9 else p9_server_scale.bench(100_000, repeat=20, ingest_runs=20_000)
    p10: dict = {} if args.no_p10 else p10_isolation.bench(**p10_isolation.QUICK)

    def ok(good: bool) -> str:
        return "met" if good else "MISSED"

    lazy_note = " (projected)" if p1["lazy_projected"] else ""
    rows = [
        ("P1 wandb-gql, 10k runs, 3 summary keys", f"{p1['client_s']:.3f} s", "",
         f"CPU: client {p1['client_cpu']:.2f} s" + (f", server {p1['server_cpu']:.2f} s" if p1["server_cpu"] else "")),
        (f"P1 wandb lazy (default){lazy_note}", f"{p1['lazy_s']:.1f} s", f"{p1['ratio_lazy']:.1f}x faster",
         f">= 30x {ok(p1['ratio_lazy'] >= 30)}"),
        ("P1 wandb lazy=False, per_page=50", f"{p1['full_s']:.1f} s", f"{p1['ratio_full']:.1f}x faster",
         f">= 10x {ok(p1['ratio_full'] >= 10)}"),
        ("P4 wandb-gql (median)", f"{p4['client_s']:.3f} s", "", f"client CPU {p4['cpu']['client']:.3f} s"),
        ("P4 raw aiohttp+orjson, sequential", f"{p4['raw_seq_s']:.3f} s", f"{p4['ratio_seq']:.2f}x",
         f"client CPU {p4['cpu']['raw_seq']:.3f} s"),
        ("P4 raw aiohttp+orjson, pipelined", f"{p4['raw_pipe_s']:.3f} s", f"{p4['ratio_pipe']:.2f}x",
         f"<= 1.2x {ok(p4['ratio'] <= 1.2)} (vs faster raw)"),
        ("P6 wbgql --help (median)", f"{p6['help_s']:.3f} s", "", f"<= 0.25 s {ok(p6['help_s'] <= 0.25)}"),
        ("P6 wbgql runs list --help (median)", f"{p6['runs_list_help_s']:.3f} s", "",
         f"<= 0.3 s {ok(p6['runs_list_help_s'] <= 0.3)}"),
        ("P6 wbgql --help, PYTHONDONTWRITEBYTECODE=1", f"{p6['help_nopyc_s']:.3f} s", "", ""),
        ("P6 python -c pass (floor)", f"{p6['python_s']:.3f} s", "", ""),
    ]
    for action, label in (("delete", "delete"), ("tag", "add a tag to")):
        if action in p3:
            r = p3[action]
            rows.append((f"P3 wbgql {label} 1,000 runs, ledger on", f"{r['gql_s']:.3f} s", "",
                         "whole process, 30 ms per request"))
            rows.append((f"P3 wandb.Api loop, {action}", f"{r['wandb_s']:.1f} s", f"{r['ratio']:.1f}x faster",
                         f">= 20x {ok(r['ratio'] >= 20)}"))
    if p7:
        rows.append(("P7 wbgql artifacts list + prune --keep-last 10", f"{p7['gql_s']:.3f} s", "",
                     "2,000 versions, whole processes, 30 ms per request"))
        rows.append(("P7 wandb.Api loop, artifact.delete()", f"{p7['wandb_s']:.1f} s", f"{p7['ratio']:.1f}x faster",
                     f">= 10x {ok(p7['ratio'] >= 10)}"))
    for mode, label in (("sampled", "run.history(samples=2000)"), ("full", "scan_history")):
        if mode in p2:
            r = p2[mode]
            rows.append((f"P2 wandb-gql history, {mode}", f"{r['client_s']:.3f} s", f"{r['raw_ratio']:.2f}x raw",
                         "200 runs x 2,000 steps, 3 keys, concurrency 8"))
            rows.append((f"P2 wandb.Api loop, {label}", f"{r['wandb_s']:.1f} s", f"{r['ratio']:.1f}x faster",
                         f">= 8x {ok(r['ratio'] >= 8)}"))
    ours = p5.get("wbgql", {})
    for n, (mb, seconds) in sorted(ours.items()):
        rows.append((f"P5 runs list --out .parquet, {n:,} runs", f"{mb:.1f} MB", f"{seconds:.1f} s",
                     f"peak RSS <= 200 MB {ok(mb <= 200)}"))
    for n, (mb, seconds) in sorted(p5.get("wandb", {}).items()):
        rows.append((f"P5 wandb.Api + DataFrame.to_parquet, {n:,} runs", f"{mb:.1f} MB", f"{seconds:.1f} s",
                     "peak RSS, for comparison"))
    for case, peaks in p8.items():
        small, large = peaks.get(10_000), peaks.get(100_000)
        if small and large:
            rows.append((f"P8 peak RSS, {case}", f"{large:.1f} MB", f"{large / small:.2f}x of 10k",
                         f"100k vs {small:.1f} MB at 10k"))
    if p9:
        base = p9["default listing"]["wall_s"]
        rows.append(("P9 100k runs, default order, full listing", f"{base:.2f} s", "",
                     f"server CPU {p9['default listing']['server_cpu_s']:.2f} s"))
        ordered = p9["ordered listing"]
        pages = [v["wall_ms"] for k, v in ordered.items() if k.startswith("page_at_")]
        rows.append(("P9 ordered by -summary_metrics.loss", f"{ordered['wall_s']:.2f} s",
                     f"{ordered['wall_s'] / base:.2f}x default", f"<= 3x {ok(ordered['wall_s'] <= 3 * base)}"))
        rows.append(("P9 one ordered page at depth 0/50k/99k", f"{min(pages):.0f}-{max(pages):.0f} ms",
                     f"{max(pages) / min(pages):.2f}x", "flat with depth"))
        for label, target in (("config filter", 30), ("summary filter", 30), ("runCount", 10), ("name $in 100", 0)):
            wall = p9[label]["wall_ms"]
            rows.append((f"P9 {label} (1 match in 100k)" if "filter" in label else f"P9 {label}", f"{wall:.1f} ms",
                         "", f"<= {target} ms {ok(wall <= target)}" if target else "unique index"))
    for phase, f in p10.get("workers default", {}).items():
        if isinstance(f, dict):
            rows.append((f"P10 viewer p95, {'no pagers' if phase == 'baseline' else '2 pagers (40 pages each)'}",
                         f"{f['p95_ms']:.1f} ms", f"p50 {f['p50_ms']:.1f} ms",
                         f"< {p10_isolation.TARGET_MS:.0f} ms {ok(f['p95_ms'] < p10_isolation.TARGET_MS)}"))
    widths = [max(len(r[i]) for r in rows + [("benchmark", "time", "ratio", "target / notes")]) for i in range(4)]
    print()
    for row in [("benchmark", "time", "ratio", "target / notes"), tuple("-" * w for w in widths), *rows]:
        print("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths)) + " |")
    print(f"\ntotal {time.perf_counter() - started:.0f} s; load average at end {_load()}", flush=True)
    if args.json:
        p4.pop("times", None)
        args.json.write_text(json.dumps({"p1": p1, "p2": p2, "p3": p3, "p4": p4, "p5": p5, "p6": p6, "p7": p7,
                                         "p8": p8, "p9": p9, "p10": p10}, indent=2))


if __name__ == "__main__":
    main()
