"""P5: stream 10k, 50k and 100k runs to Parquet — peak memory of `wbgql runs list ... --out FILE.parquet`.

    wbgql runs list bench/p10k --summary-keys loss,val/acc,epoch,train/loss,lr --out runs.parquet

(every run field plus 5 summary keys: 21 columns; a row group per 10,000 runs). Peak RSS is
wait4's ru_maxrss of the wbgql process alone; the file is re-read afterwards and must hold every
run, with the 5 summary columns as float64. Target (issue 10): <= 200 MB and flat as the count
grows. The data sets are P8's (bench/p10k with N runs, ~20 config and ~30 summary keys each,
made straight in SQLite by make_data.py in a process of its own, once, and reused).

With --wandb (default on for 10k): the wandb.Api equivalent in a process of its own —
`api.runs(path, lazy=False)` (lazy mode would fetch every run again for its summary), a list of
dicts with the same fields and 5 summary keys, `pandas.DataFrame(rows).to_parquet(FILE)` — its
peak RSS (the Python process; wandb-core, its helper process, is not counted) and time.

    /work/venv/bin/python bench/p5_parquet.py [--sizes 10000,50000,100000] [--no-wandb]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import BIN, DEFAULT_DB, PATH, server_process  # noqa: E402

SUMMARY5 = ["loss", "val/acc", "epoch", "train/loss", "lr"]
TARGET_MB = 200.0

WANDB_SCRIPT = """
import sys, pandas
import wandb
path, out, keys = sys.argv[1], sys.argv[2], sys.argv[3].split(",")
api = wandb.Api(timeout=120)
rows = []
for run in api.runs(path, lazy=False):
    row = {"id": run.storage_id, "name": run.id, "display_name": run.name, "state": run.state, "tags": run.tags,
           "group": run.group, "job_type": run.job_type, "sweep": run.sweep_name, "notes": run.notes,
           "created_at": run.created_at, "heartbeat_at": run.heartbeat_at, "user": run.username,
           "path": "/".join(run.path)}
    summary = run.summary
    for k in keys:
        row["summary." + k] = summary.get(k)
    rows.append(row)
pandas.DataFrame(rows).to_parquet(out)
print(len(rows))
"""


def db_for(n: int) -> Path:
    return DEFAULT_DB if n == 10_000 else DEFAULT_DB.with_name(f"p{n // 1000}k.db")


def _wait(proc: subprocess.Popen, what: str) -> tuple[float, float]:
    started = time.perf_counter()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"{what} exited {proc.returncode}")
    return usage.ru_maxrss / 1024, time.perf_counter() - started


def run_wbgql(n: int, out: Path, env: dict[str, str]) -> tuple[float, float]:
    """(peak RSS MB, seconds) of one `wbgql runs list ... --out out`; checks the file."""
    import pyarrow.parquet as pq

    started = time.perf_counter()
    proc = subprocess.Popen([str(BIN / "wbgql"), "runs", "list", PATH, "--summary-keys", ",".join(SUMMARY5),
                             "--out", str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    mb, _ = _wait(proc, "wbgql runs list")
    seconds = time.perf_counter() - started
    f = pq.ParquetFile(out)
    assert f.metadata.num_rows == n, f"{out}: {f.metadata.num_rows} rows, not {n}"
    types = {field.name: str(field.physical_type) for field in f.schema}
    assert all(types[f"summary.{k}"] == "DOUBLE" for k in SUMMARY5), types
    return mb, seconds


def run_wandb(n: int, out: Path, env: dict[str, str]) -> tuple[float, float]:
    tmp = tempfile.mkdtemp(prefix="wandb-p5-")
    env = {**env, "WANDB_SILENT": "true", "WANDB_ERROR_REPORTING": "false", "WANDB_DIR": tmp,
           "WANDB_CONFIG_DIR": tmp, "WANDB_CACHE_DIR": tmp, "WANDB_DATA_DIR": tmp, "NETRC": os.path.join(tmp, "n")}
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", WANDB_SCRIPT, PATH, str(out), ",".join(SUMMARY5)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    mb, _ = _wait(proc, "the wandb.Api script")
    seconds = time.perf_counter() - started
    import pyarrow.parquet as pq

    assert pq.ParquetFile(out).metadata.num_rows == n
    return mb, seconds


def bench(sizes: list[int], *, wandb_sizes: tuple[int, ...] = (10_000,)) -> dict[str, dict[int, list[float]]]:
    figures: dict[str, dict[int, list[float]]] = {"wbgql": {}, "wandb": {}}
    with tempfile.TemporaryDirectory(prefix="wbgql-p5-") as tmp:
        for n in sizes:
            db = db_for(n)
            # In a process of its own: a child's peak RSS counts what it inherited from this process
            # at fork, and building 100k rows here would be counted in every figure.
            subprocess.run([sys.executable, str(Path(__file__).with_name("make_data.py")), "--db", str(db),
                            "--runs", str(n)], check=True)
            with server_process(db) as (base_url, api_key):
                env = {**os.environ, "WANDB_BASE_URL": base_url, "WANDB_API_KEY": api_key}
                out = Path(tmp) / f"runs-{n}.parquet"
                mb, seconds = run_wbgql(n, out, env)
                size = out.stat().st_size / 1e6
                figures["wbgql"][n] = [mb, seconds]
                print(f"P5 wbgql runs list --out .parquet {n:>7,} runs: peak RSS {mb:6.1f} MB, {seconds:5.1f} s, "
                      f"file {size:.1f} MB", flush=True)
                if n in wandb_sizes:
                    mb, seconds = run_wandb(n, Path(tmp) / f"wandb-{n}.parquet", env)
                    figures["wandb"][n] = [mb, seconds]
                    print(f"P5 wandb.Api + DataFrame.to_parquet {n:>7,} runs: peak RSS {mb:6.1f} MB, {seconds:5.1f} s",
                          flush=True)
    ours = figures["wbgql"]
    if ours:
        worst = max(mb for mb, _ in ours.values())
        small, large = min(ours), max(ours)
        print(f"P5 peak RSS {', '.join(f'{n:,}: {ours[n][0]:.1f} MB' for n in sorted(ours))}; "
              f"{large:,} vs {small:,}: x{ours[large][0] / ours[small][0]:.2f}; target <= {TARGET_MB:g} MB "
              f"{'met' if worst <= TARGET_MB else 'MISSED'}", flush=True)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10000,50000,100000", help="run counts, comma-separated")
    parser.add_argument("--no-wandb", action="store_true", help="skip the wandb.Api equivalent (10k)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    figures = bench([int(x) for x in args.sizes.split(",")], wandb_sizes=() if args.no_wandb else (10_000,))
    if args.json:
        args.json.write_text(json.dumps(figures))


if __name__ == "__main__":
    main()
