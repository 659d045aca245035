"""`--seed demo`: deterministic demo data so every feature has something real to act on.

Users alice, bob and carol beside the admin `local`; the team `demo` (local, alice, bob) with
three projects, 2,000 runs in all with varied states, tags, groups, sweeps,
nested config and summary keys (some containing "/"), and history; and artifacts: model
checkpoints with many versions and aliases, datasets used by many runs, and runs whose outputs
later runs use; carol, outside the team, has her own project `carol/scratch` (5 runs), so
isolation between entities has something to show. Same content every time;
only timestamps follow the clock (runs were created over the 120 days before seeding), so
relative filters like `created_at < 30d ago` mean something. Bulk inserts: about a second.
"""

from __future__ import annotations

import math
import random
from datetime import datetime, timedelta, timezone
from typing import Any

import orjson

from .._time import format_time
from .db import transaction
from .seed_machine import machines
from .store import Store
from .store import sweeps as store_sweeps

PROJECTS = {"vision": 1200, "nlp": 600, "rl": 200}
USERS = ("alice", "bob", "carol")
TEAM, TEAM_MEMBERS = "demo", ("alice", "bob")  # and the admin; carol is outside the team
STATES = ["finished"] * 70 + ["crashed"] * 12 + ["failed"] * 10 + ["running"] * 5 + ["killed"] * 3
TAGS = ("baseline", "ablation", "prod-candidate", "tmp", "large", "v2")
HISTORY_STEPS = 12


_WANDB = {"cli_version": "0.19.8", "python_version": "3.11.9", "is_jupyter_run": False,
          "is_kaggle_kernel": False, "start_time": 0, "m": [],
          "t": {"1": [1, 55], "2": [1, 55], "3": [16, 23, 55], "4": "3.11.9", "5": "0.19.8", "8": [5],
                "12": "0.19.8", "13": "linux-x86_64"}}


def _run(rng: random.Random, project: str, index: int, created: datetime) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """One run as `runs` columns, and its history rows."""
    state = rng.choice(STATES)
    lr = rng.choice([0.1, 0.03, 0.01, 0.003, 0.001, 0.0003])
    batch = rng.choice([16, 32, 64, 128, 256])
    optimizer = rng.choice(["adam", "sgd", "adamw"])
    config = {
        "lr": {"value": lr}, "batch_size": {"value": batch}, "epochs": {"value": rng.randint(5, 50)},
        "model": {"value": rng.choice(["resnet50", "vit-b16", "convnext", "mlp"])},
        "optimizer": {"value": {"name": optimizer, "momentum": rng.choice([0.0, 0.9, 0.99])}},
        "data/augment": {"value": rng.random() < 0.5}, "seed": {"value": index % 7},
        # What the SDK keeps about itself in every run's config; resume="must" counts a run as
        # existing only when its "t" is there (wandb.Api hides the key, as on W&B).
        "_wandb": {"value": _WANDB},
    }
    finished = state in ("finished", "killed")
    quality = max(0.0, min(1.0, rng.gauss(0.8, 0.1) - 30 * max(0, lr - 0.01)))
    steps = HISTORY_STEPS if finished else rng.randint(1, HISTORY_STEPS)
    rows = []
    for step in range(steps):
        progress = (step + 1) / HISTORY_STEPS
        rows.append({
            "_step": step, "_runtime": round(30.0 * (step + 1), 1),
            "_timestamp": created.timestamp() + 30 * (step + 1),
            "loss": round(2.5 * math.exp(-3 * progress * quality) + rng.random() * 0.05, 5),
            "train/acc": round(quality * progress, 5),
            "val/acc": round(quality * progress - rng.random() * 0.03, 5),
        })
    last = rows[-1]
    summary = {
        "loss": last["loss"], "train/acc": last["train/acc"], "val/acc": last["val/acc"],
        "best": {"val/acc": max(r["val/acc"] for r in rows), "epoch": len(rows) - 1},
        "_step": last["_step"], "_runtime": last["_runtime"], "_timestamp": last["_timestamp"],
    }
    tags = sorted(rng.sample(TAGS, rng.choice([0, 1, 1, 2, 3])))
    sweep = f"sw{index % 4:02d}{project[:2]}" if rng.random() < 0.3 else None
    heartbeat = format_time(created + timedelta(seconds=30 * len(rows)))
    run = {
        "name": f"{project[:2]}{index:06d}", "display_name": f"{optimizer}-{batch}-{index}",
        "state": state, "config": orjson.dumps(config).decode(), "summary": orjson.dumps(summary).decode(),
        "tags": orjson.dumps(tags).decode(),
        "group_name": rng.choice(["baseline", "ablation", "sweep-a", None]),
        "job_type": rng.choice(["train", "train", "eval"]), "sweep_name": sweep,
        "username": rng.choice(USERS), "created_at": format_time(created), "updated_at": heartbeat,
        # A seeded running run has no heartbeat, so the stale sweep leaves it alone (the demo stays
        # deterministic) until it streams, e.g. after wandb.init(id=..., resume="must").
        "heartbeat_at": None if state == "running" else heartbeat, "exitcode": None if state == "running" else (0 if finished else 1),
        "history_line_count": len(rows), "history_keys": orjson.dumps(_history_keys(rows)).decode(),
    }
    return run, rows


def _history_keys(rows: list[dict[str, Any]]) -> dict[str, Any]:
    keys = {k: {"typeCounts": [{"type": "number", "count": len(rows)}], "previousValue": rows[-1][k]} for k in rows[0]}
    return {"keys": keys, "lastStep": rows[-1]["_step"]}


def demo(store: Store, *, now: datetime | None = None) -> int:
    """Seed the demo team (and carol's project) once, in one transaction; returns how many runs
    the demo team got (0 if already there)."""
    if store.project("demo", "vision") is not None:
        return 0
    now = (now or datetime.now(timezone.utc)).replace(microsecond=0)
    rng = random.Random(20261126)
    added = 0
    with transaction(store.conn):
        store.ensure_team(TEAM)
        store.add_member(TEAM, store.default_user.id)
        for user in USERS:
            viewer = store.ensure_user(user)
            if user in TEAM_MEMBERS:
                store.add_member(TEAM, viewer.id)
        for project, count in PROJECTS.items():
            project_id = store.ensure_project("demo", project)["id"]
            made = [_run(rng, project, index,
                         now - timedelta(days=120) + timedelta(seconds=int(120 * 86400 * index / count)))
                    for index in range(count)]
            ids = store.insert_runs(project_id, (run for run, _rows in made))
            store.insert_history((ids[run["name"]], rows) for run, rows in made)
            machines(store, project, [(ids[run["name"]], run) for run, _rows in made])
            _artifacts(store, project_id, project, [(ids[run["name"]], run) for run, _rows in made])
            _sweeps(store, project_id)
            added += count
        _outsider(store, now)
    return added


def _outsider(store: Store, now: datetime) -> None:
    """carol's own project: runs only she (not the demo team) can see. Own random stream."""
    rng = random.Random("outsider")
    project_id = store.ensure_project("carol", "scratch")["id"]
    made = [_run(rng, "scratch", index, now - timedelta(days=5 - index)) for index in range(5)]
    for run, _rows in made:
        run["username"] = "carol"
    ids = store.insert_runs(project_id, (run for run, _rows in made))
    store.insert_history((ids[run["name"]], rows) for run, rows in made)
    machines(store, "scratch", [(ids[run["name"]], run) for run, _rows in made])


# The demo runs' sweeps: random searches over what their configs vary, judged by val/acc.
DEMO_SWEEP = {"method": "random", "metric": {"name": "val/acc", "goal": "maximize"},
              "parameters": {"lr": {"values": [0.1, 0.03, 0.01, 0.003, 0.001, 0.0003]},
                             "batch_size": {"values": [16, 32, 64, 128, 256]},
                             "epochs": {"distribution": "int_uniform", "min": 5, "max": 50}}}


def _sweeps(store: Store, project_id: int) -> None:
    """A Sweep row for each sweep the runs name: running while its newest run is, else finished."""
    for found in store_sweeps.named_without_row(store.conn, project_id):
        store_sweeps.create(store.conn, project_id, orjson.dumps(DEMO_SWEEP).decode(), "random",
                            state="RUNNING" if found["running"] else "FINISHED", name=found["name"],
                            created_at=found["created_at"], updated_at=found["updated_at"], issued=found["runs"],
                            user_id=store.default_user.id)


# project -> (type, collection, producing run indices, aliases by version, how consumers are chosen)
ARTIFACTS: dict[str, list[tuple[str, str, list[int], dict[int, list[str]], str]]] = {
    "vision": [
        ("dataset", "imagenet-subset", [0, 1, 2], {2: ["prod"]}, "all"),
        ("model", "resnet-checkpoints", [10 + 25 * k for k in range(40)], {31: ["best"], 27: ["prod"], 38: ["staging"]},
         "none"),
        ("dataset", "features", [100, 300, 500], {}, "downstream"),
    ],
    "nlp": [
        ("dataset", "corpus", [0, 1], {}, "all"),
        ("model", "bert-finetune", [20 + 30 * k for k in range(15)], {12: ["best", "prod"]}, "none"),
    ],
    "rl": [("model", "policy", [5 + 40 * k for k in range(5)], {3: ["best"]}, "none")],
}


def _artifacts(store: Store, project_id: int, project: str, runs: list[tuple[int, dict[str, Any]]]) -> None:
    """Checkpoints with many versions and aliases, datasets used by many runs, and a few runs
    whose outputs later runs use. Own random stream: the runs above stay as they were."""
    rng = random.Random(f"artifacts-{project}")
    for type_name, name, producers, aliases, consumers in ARTIFACTS[project]:
        versions = []
        for version, index in enumerate(producers):
            run_id, run = runs[index]
            if type_name == "model":
                files = {"model.pt": rng.randbytes(4096 + 512 * version),
                         "config.json": orjson.dumps({"step": version, "lr": orjson.loads(run["config"])["lr"]["value"]})}
            else:
                rows = "\n".join(f"{i},{rng.random():.6f}" for i in range(50 * (version + 1)))
                files = {"data.csv": f"id,value\n{rows}\n".encode(), "README.md": f"{name} v{version}\n".encode()}
            if consumers == "all":  # each later run trains on the newest version that existed
                used = [runs[i][0] for i in range(len(runs)) if i > index and
                        (version + 1 == len(producers) or i < producers[version + 1])]
            elif consumers == "downstream":  # the next ten runs evaluate on this run's output
                used = [runs[i][0] for i in range(index + 1, min(index + 11, len(runs)))]
            else:
                used = []
            versions.append({"files": files, "run_id": run_id, "created_at": run["created_at"],
                             "aliases": aliases.get(version, []), "used_by": used,
                             "metadata": {"source_run": run["name"], "version": version}})
        store.insert_artifact_collection(project_id, type_name, name, versions)
