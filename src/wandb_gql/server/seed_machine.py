"""The demo runs' machines, as the SDK reports them: a wandb-metadata.json run file (what
`api.run(...).metadata` reads) and the latest system metrics (`Run.systemMetrics`, the last
`system.*` sample of wandb-events.jsonl). Own random stream per project: the runs stay as seeded."""

from __future__ import annotations

import random
import uuid
from typing import Any

import orjson

from .store import Store, files, run_system

HOSTS = 8  # gpu-node-0 ... gpu-node-7
GPU, GPU_MEMORY = "NVIDIA A100-SXM4-40GB", 42_949_672_960


def _metadata(rng: random.Random, run: dict[str, Any], host: str, gpus: int) -> dict[str, Any]:
    return {
        "os": "Linux-5.15.0-105-generic-x86_64-with-glibc2.35", "python": "CPython 3.11.7",
        "startedAt": run["created_at"] + ".000000Z", "args": [f"--lr={orjson.loads(run['config'])['lr']['value']}"],
        "program": "train.py", "codePath": "train.py", "root": f"/home/{run['username']}/project",
        "host": host, "username": run["username"], "executable": "/usr/bin/python3",
        "cpu_count": 16, "cpu_count_logical": 32, "gpu": GPU, "gpu_count": gpus,
        "disk": {"/": {"total": "1000203091968", "used": str(rng.randrange(200, 900) * 10**9)}},
        "memory": {"total": "270582939648"}, "cpu": {"model": "AMD EPYC 7763 64-Core Processor"},
        "gpu_nvidia": [{"name": GPU, "memoryTotal": str(GPU_MEMORY), "cudaCores": 6912, "architecture": "Ampere"}
                       for _ in range(gpus)],
        "writerId": str(uuid.UUID(int=rng.getrandbits(128))),
    }


def _system_metrics(rng: random.Random, gpus: int) -> dict[str, Any]:
    metrics: dict[str, Any] = {
        "system.cpu": round(rng.uniform(5, 95), 2), "system.memory_percent": round(rng.uniform(10, 80), 2),
        "system.proc.memory.rssMB": round(rng.uniform(2_000, 30_000), 1),
        "system.disk./.usagePercent": round(rng.uniform(20, 90), 1),
        "system.network.sent": rng.randrange(10**6, 10**9), "system.network.recv": rng.randrange(10**6, 10**9),
    }
    for gpu in range(gpus):
        metrics[f"system.gpu.{gpu}.gpu"] = round(rng.uniform(30, 100), 1)
        metrics[f"system.gpu.{gpu}.memory"] = round(rng.uniform(20, 95), 1)
        metrics[f"system.gpu.{gpu}.temp"] = rng.randrange(40, 85)
    return metrics


def machines(store: Store, project: str, runs: list[tuple[int, dict[str, Any]]]) -> None:
    rng = random.Random(f"machine-{project}")
    machine, uploaded = [], []
    for run_id, run in runs:
        host, gpus = f"gpu-node-{rng.randrange(HOSTS)}", rng.choice([1, 1, 2, 4])
        metadata = orjson.dumps(_metadata(rng, run, host, gpus), option=orjson.OPT_INDENT_2)
        machine.append((run_id, orjson.dumps(_system_metrics(rng, gpus)).decode(), host))
        uploaded.append((run_id, "wandb-metadata.json", metadata, run["created_at"]))
    run_system.set_machine(store.conn, machine)
    files.insert_uploaded(store.conn, uploaded)
