"""Shared pieces of the benchmarks: the 10k-run data set, a server in its own process, wandb's env.

Nothing here is imported by the package; benchmarks run with the project's venv:
    /work/venv/bin/python bench/run_all.py
"""

from __future__ import annotations

import atexit
import contextlib
import os
import random
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Iterator, Sequence

import orjson

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
ENTITY, PROJECT = "bench", "p10k"
PATH = f"{ENTITY}/{PROJECT}"
N_RUNS = 10_000
# The three summary keys every P1/P4 variant reads (a float, a "/"-key, an int).
SUMMARY_KEYS = ["loss", "val/acc", "epoch"]
DEFAULT_DB = Path(tempfile.gettempdir()) / "wandb-gql-bench" / "p10k.db"
QUERIES = ROOT / "queries"


# -- data -------------------------------------------------------------------------------------
def _config(rng: random.Random, i: int) -> dict:
    """~20 keys, W&B's {"key": {"value": v}} storage, including the usual bulky `_wandb`."""
    values = {
        "lr": rng.choice([1e-2, 3e-3, 1e-3, 3e-4, 1e-4]), "batch_size": rng.choice([32, 64, 128, 256]),
        "epochs": rng.randint(10, 100), "seed": i % 17, "model": rng.choice(["resnet50", "vit-b16", "convnext"]),
        "optimizer": {"name": rng.choice(["adam", "adamw", "sgd"]), "betas": [0.9, 0.999],
                      "eps": 1e-8, "momentum": rng.choice([0.0, 0.9])},
        "scheduler": {"name": "cosine", "warmup_steps": rng.choice([0, 500, 1000]), "min_lr": 1e-6},
        "weight_decay": rng.choice([0.0, 0.01, 0.05]), "dropout": rng.choice([0.0, 0.1, 0.2]),
        "label_smoothing": rng.choice([0.0, 0.1]), "grad_clip": 1.0, "precision": "bf16",
        "num_workers": 8, "dataset": "imagenet-1k", "data/augment": rng.random() < 0.5,
        "data/resolution": rng.choice([224, 256, 384]), "data/mixup": rng.choice([0.0, 0.2, 0.8]),
        "ema_decay": 0.9999, "compile": True,
        "output_dir": f"/checkpoints/bench/p10k/run-{i:05d}",
    }
    config = {k: {"desc": None, "value": v} for k, v in values.items()}
    config["_wandb"] = {"desc": None, "value": {
        "cli_version": "0.31.0", "python_version": "3.12.3", "is_jupyter_run": False,
        "is_kaggle_kernel": False, "start_time": 1735689600 + i * 60, "framework": "torch",
        "t": {"1": [1, 41, 49, 55, 105], "2": [1, 41, 49, 55, 105], "3": [13, 16, 23, 55], "4": "3.12.3",
              "5": "0.31.0", "8": [5], "12": "0.31.0", "13": "linux-x86_64"},
    }}
    return config


def _summary(rng: random.Random, i: int, created: datetime) -> dict:
    """~30 keys: metrics, per-class figures, nested dicts, and W&B's underscore keys."""
    quality = max(0.05, min(0.99, rng.gauss(0.8, 0.08)))
    epoch = rng.randint(10, 100)
    summary: dict = {
        "loss": round(2.5 * (1 - quality) + rng.random() * 0.05, 6), "epoch": epoch,
        "train/loss": round(2.4 * (1 - quality), 6), "train/acc": round(quality, 6),
        "val/loss": round(2.6 * (1 - quality) + rng.random() * 0.1, 6),
        "val/acc": round(quality - rng.random() * 0.03, 6), "val/top5": round(min(1, quality + 0.12), 6),
        "lr": 1e-6 + rng.random() * 1e-4, "grad_norm": round(rng.uniform(0.1, 3), 5),
        "throughput/samples_per_s": round(rng.uniform(800, 2400), 2), "gpu/mem_gb": round(rng.uniform(20, 79), 3),
        "best": {"val/acc": round(quality, 6), "epoch": epoch - rng.randint(0, 5)},
        "confusion": {"tp": rng.randint(0, 5000), "fp": rng.randint(0, 500), "fn": rng.randint(0, 500)},
        "_step": epoch * 1000, "_runtime": round(epoch * 321.5, 3), "_timestamp": created.timestamp() + epoch * 321.5,
        "_wandb": {"runtime": int(epoch * 321.5)},
    }
    for c in range(13):
        summary[f"val/acc_class_{c:02d}"] = round(min(1.0, quality + rng.uniform(-0.1, 0.1)), 6)
    return summary


def make_data(db: Path = DEFAULT_DB, n: int = N_RUNS, *, quiet: bool = False) -> Path:
    """A project bench/p10k with n runs, inserted straight into SQLite (~1-2 s); reused if present."""
    from wandb_gql.server.store import Store

    db = Path(db)
    db.parent.mkdir(parents=True, exist_ok=True)
    store = Store(db)
    conn = store.conn
    project_id = store.ensure_project(ENTITY, PROJECT)["id"]
    have = conn.execute("SELECT count(*) FROM runs WHERE project_id = ? AND deleted_at IS NULL",
                        (project_id,)).fetchone()[0]
    if have == n:
        conn.close()
        return db
    started = time.perf_counter()
    rng = random.Random(10_000)
    base = datetime(2025, 1, 1, tzinfo=timezone.utc)
    fmt = "%Y-%m-%dT%H:%M:%S"
    states = ["finished"] * 80 + ["crashed"] * 8 + ["failed"] * 7 + ["running"] * 5
    tags = ("baseline", "ablation", "prod-candidate", "large", "v2")
    rows = []
    for i in range(n):
        created = base + timedelta(minutes=i)
        summary = _summary(rng, i, created)
        heartbeat = created + timedelta(seconds=summary["_runtime"])
        history_keys = {"keys": {k: {"typeCounts": [{"type": "number", "count": summary["epoch"]}]}
                                 for k in summary if not isinstance(summary[k], dict)},
                        "lastStep": summary["_step"]}
        rows.append((project_id, f"r{i:07d}", f"{rng.choice(['adam', 'sgd'])}-{i}", rng.choice(states),
                     orjson.dumps(_config(rng, i)).decode(), orjson.dumps(summary).decode(),
                     orjson.dumps(sorted(rng.sample(tags, rng.randint(0, 2)))).decode(),
                     f"group-{i % 20}", rng.choice(["train", "eval"]), None, "local",
                     created.strftime(fmt), heartbeat.strftime(fmt), heartbeat.strftime(fmt), 0,
                     summary["epoch"], orjson.dumps(history_keys).decode()))
    conn.execute("BEGIN")
    conn.execute("DELETE FROM runs WHERE project_id = ?", (project_id,))
    conn.executemany(
        "INSERT INTO runs (project_id, name, display_name, state, config, summary, tags, group_name,"
        " job_type, sweep_name, username, created_at, updated_at, heartbeat_at, exitcode,"
        " history_line_count, history_keys) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", rows)
    conn.execute("COMMIT")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    if not quiet:
        c, s = len(rows[0][4]), len(rows[0][5])
        print(f"data: {n:,} runs in {db} ({time.perf_counter() - started:.1f} s;"
              f" a run's config {c} B, summary {s} B as JSON)", flush=True)
    return db


def make_project(db: Path, entity: str, project: str, n: int, *, group: str = "doomed", others: int = 0,
                 seed: int = 3) -> None:
    """A fresh project of n finished runs in `group` (plus `others` in another group), with P1's
    config/summary shapes, inserted straight into SQLite; replaces the project's runs if any."""
    from wandb_gql.server.store import Store

    store = Store(db)
    conn = store.conn
    rng = random.Random(seed)
    base = datetime(2025, 6, 1, tzinfo=timezone.utc)
    fmt = "%Y-%m-%dT%H:%M:%S"
    conn.execute("BEGIN")
    project_id = store.ensure_project(entity, project)["id"]
    conn.execute("DELETE FROM runs WHERE project_id = ?", (project_id,))
    rows = []
    for i in range(n + others):
        created = base + timedelta(minutes=i)
        summary = _summary(rng, i, created)
        stamp = (created + timedelta(seconds=summary["_runtime"])).strftime(fmt)
        rows.append((project_id, f"{project[:8]}{i:06d}", f"run-{i}", "finished",
                     orjson.dumps(_config(rng, i)).decode(), orjson.dumps(summary).decode(),
                     orjson.dumps(["baseline"] if i % 3 == 0 else []).decode(),
                     group if i < n else "other", "train", "local", created.strftime(fmt), stamp, stamp))
    conn.executemany(
        "INSERT INTO runs (project_id, name, display_name, state, config, summary, tags, group_name,"
        " job_type, username, created_at, updated_at, heartbeat_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)", rows)
    conn.execute("COMMIT")
    conn.close()


# -- the server, in its own process ----------------------------------------------------------
_SERVER_PIDS: dict[str, int] = {}  # base_url -> pid, for servers started here


def server_pid(base_url: str) -> int | None:
    """The process id of a server started here (None for --url servers)."""
    return _SERVER_PIDS.get(base_url)


def server_cpu(base_url: str) -> float | None:
    """CPU seconds (user + system) the server process has used so far; None if not ours."""
    pid = _SERVER_PIDS.get(base_url)
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(fn, base_url: str) -> tuple[float, float, float | None, object]:
    """(wall s, this process's CPU s, the server's CPU s or None, fn's result) for one call."""
    server0, cpu0, wall0 = server_cpu(base_url), time.process_time(), time.perf_counter()
    result = fn()
    wall, cpu, server1 = time.perf_counter() - wall0, time.process_time() - cpu0, server_cpu(base_url)
    return wall, cpu, (None if server0 is None or server1 is None else server1 - server0), result


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def server_process(db: Path, *, faults: dict | None = None, args: Sequence[str] = (),
                   command: Sequence[str] | None = None) -> Iterator[tuple[str, str]]:
    """`wbgql server` as a subprocess (`args`: more of its options, e.g. --workers 1; `command`:
    what to run instead of `wbgql`, e.g. a wrapper that instruments the server); yields
    (base_url, api_key) once /healthz answers."""
    port = _free_port()
    api_key = "local-" + secrets.token_hex(24)
    log = open(Path(db).with_suffix(".server.log"), "w")
    extra = ["--faults", orjson.dumps(faults).decode()] if faults else []
    proc = subprocess.Popen([*(command or [str(BIN / "wbgql")]), "server", "--db", str(db), "--port", str(port),
                             "--api-key", api_key, *extra, *args], stdout=log, stderr=subprocess.STDOUT)
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited ({proc.returncode}); see {log.name}")
            try:
                with urllib.request.urlopen(base_url + "/healthz", timeout=1) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("server did not answer /healthz within 30 s")
            time.sleep(0.05)
        _SERVER_PIDS[base_url] = proc.pid
        yield base_url, api_key
    finally:
        _SERVER_PIDS.pop(base_url, None)
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@contextlib.contextmanager
def server_from_args(url: str | None, key: str | None, db: Path) -> Iterator[tuple[str, str]]:
    """Use a running server if --url/--api-key were given, else start one over a (made) data set."""
    if url:
        yield url.rstrip("/"), key or os.environ["WANDB_API_KEY"]
        return
    with server_process(make_data(db)) as pair:
        yield pair


def wandb_env(base_url: str, api_key: str) -> None:
    """Point the wandb SDK at the server, quietly, with throw-away dirs."""
    tmp = tempfile.mkdtemp(prefix="wandb-bench-")
    atexit.register(shutil.rmtree, tmp, ignore_errors=True)
    os.environ.update(WANDB_BASE_URL=base_url, WANDB_API_KEY=api_key, WANDB_SILENT="true",
                      WANDB_ERROR_REPORTING="false", WANDB_DIR=tmp, WANDB_CONFIG_DIR=tmp,
                      WANDB_CACHE_DIR=tmp, WANDB_DATA_DIR=tmp, WANDB_DISABLE_CODE="true",
                      NETRC=os.path.join(tmp, "netrc"))


# -- small helpers -----------------------------------------------------------------------------
def load_average() -> str:
    """The 1/5/15-minute load averages, for the notes beside a figure (the machine is shared)."""
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def median(xs: list[float]) -> float:
    return statistics.median(xs)


def fmt_s(x: float) -> str:
    return f"{x:.3f} s" if x < 10 else f"{x:.1f} s"


def add_server_args(parser) -> None:
    parser.add_argument("--db", type=Path, default=DEFAULT_DB, help="SQLite file for the data set")
    parser.add_argument("--url", help="use this running server instead of starting one")
    parser.add_argument("--api-key", help="API key for --url")
