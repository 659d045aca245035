"""A prune killed with SIGKILL midway (a real subprocess, after its first outcomes reached the
ledger) and resumed: exactly the planned versions end deleted, no other version of any
collection is touched, each planned version has one final outcome, and the bytes freed over the
cut-off apply and the resume together are the plan's."""

from __future__ import annotations

import random
import sqlite3
from datetime import datetime, timedelta, timezone
from pathlib import Path

import orjson
import pytest

from tests.helpers import kill_after_first_outcome
from tests.conftest import Caller
from wandb_gql import Client
from wandb_gql.cleanup import read_ledger, resume
from wandb_gql.server.local import LocalServer

ROOT = Path(__file__).resolve().parents[2]
BIG, N = "big-ckpt", 400
STORAGE = 'query($e: String!, $p: String!) { project(name: $p, entityName: $e) { storageBytes } }'

PRUNE = """
import asyncio, sys
from pathlib import Path
from wandb_gql import Client
from wandb_gql.cleanup import Ledger, apply_prune, plan_prune
from wandb_gql.cleanup import artifacts

artifacts.BATCH = 40  # more, smaller batches: the kill lands between them

async def main(url, key, ledger_path):
    async with Client(url, key) as c:
        plan = await plan_prune(c, "demo/vision", keep_last=10)
        with Ledger.create(Path(ledger_path), server=url, user=plan.user) as ledger:
            await apply_prune(c, plan, ledger=ledger)

asyncio.run(main(*sys.argv[1:]))
"""


def add_collection(db: Path) -> None:
    """N more checkpoints in demo/vision, written through the server's store as the seed does:
    each a unique model.pt, every other one a config.json shared by digest with others."""
    from wandb_gql.server.store import Store

    store = Store(db)
    rng = random.Random(3)
    project = store.ensure_project("demo", "vision")["id"]
    runs = [r[0] for r in store.conn.execute("SELECT id FROM runs WHERE project_id = ? ORDER BY id", (project,))]
    base = datetime(2025, 6, 1, tzinfo=timezone.utc)
    shared = [orjson.dumps({"group": g}) for g in range(4)]
    versions = [{"files": {"model.pt": rng.randbytes(256), **({"config.json": shared[i % 4]} if i % 2 else {})},
                 "run_id": runs[i % len(runs)], "used_by": [], "metadata": {"step": i},
                 "created_at": (base + timedelta(minutes=i)).strftime("%Y-%m-%dT%H:%M:%S"),
                 "aliases": ["keeper"] if i == 123 else []} for i in range(N)]
    store.conn.execute("BEGIN")
    store.insert_artifact_collection(project, "model", BIG, versions)
    store.conn.execute("COMMIT")
    store.conn.close()


def listing(db: Path) -> dict[tuple[str, str, int], tuple]:
    """Every version of every collection of every project as stored, with its aliases and files."""
    conn = sqlite3.connect(db)
    try:
        rows = conn.execute(
            "SELECT p.name, c.name, a.version_index, a.id, a.digest, a.state, a.size, a.file_count,"
            " (SELECT group_concat(alias) FROM (SELECT alias FROM artifact_aliases WHERE artifact_id = a.id"
            "   ORDER BY alias)),"
            " (SELECT group_concat(name || ':' || md5) FROM (SELECT name, md5 FROM artifact_files"
            "   WHERE artifact_id = a.id ORDER BY name))"
            " FROM artifacts a JOIN artifact_collections c ON c.id = a.collection_id"
            " JOIN projects p ON p.id = c.project_id").fetchall()
        return {(r[0], r[1], r[2]): r[3:] for r in rows}
    finally:
        conn.close()


@pytest.fixture
def big(tmp_path):
    db = tmp_path / "server.db"
    with LocalServer(db, seed="demo"):
        pass
    add_collection(db)
    with LocalServer(db) as s:
        yield s, db


async def test_prune_killed_midway_then_resumed_deletes_exactly_the_plan(big, tmp_path):
    server, db = big
    api = Caller(server)
    before = listing(db)
    storage_before = api.ok(STORAGE, {"e": "demo", "p": "vision"})["project"]["storageBytes"]
    api.faults({"latency": 0.1})  # W&B is a network away: the deletions take long enough to cut
    ledger = tmp_path / "prune.jsonl"
    kill_after_first_outcome([PRUNE, server.base_url, server.api_key, str(ledger)], ledger, ROOT, timeout=120)
    (record,) = read_ledger(ledger).plans
    planned = {(v["collection"], v["version"]): v["id"] for v in record.data["versions"]}
    assert record.done is None and 0 < len(record.outcomes) < len(planned)  # killed midway
    assert len({c for c, _ in planned}) > 1 and sum(c == BIG for c, _ in planned) == N - 10 - 1
    doomed = {("vision", c, int(v[1:])) for c, v in planned}
    gone_at_kill = set(before) - set(listing(db))
    assert gone_at_kill <= doomed and len(gone_at_kill) < len(doomed)

    api.faults({})
    async with Client(server.base_url, server.api_key) as c:
        (result,) = await resume(c, ledger)
    after = listing(db)
    assert set(before) - set(after) == doomed and not set(after) - set(before)  # exactly the plan
    assert all(after[k] == before[k] for k in after)  # the rest untouched: aliases, files, state
    assert result.ok and result.verify["ok"] and result.verify["pinned"] == len(planned)

    final: dict[str, list[str]] = {}
    for line in (orjson.loads(x) for x in ledger.read_bytes().splitlines() if x.strip()):
        if line["type"] == "outcome":
            final.setdefault(line["run_id"], []).append(line["status"])
    assert final == {i: ["deleted"] for i in planned.values()}  # one final outcome each
    storage_after = api.ok(STORAGE, {"e": "demo", "p": "vision"})["project"]["storageBytes"]
    assert storage_before - storage_after == record.data["bytes_reclaimable"] > 0
    assert server.api_key not in ledger.read_text()
    async with Client(server.base_url, server.api_key) as c:
        assert await resume(c, ledger) == []  # a complete ledger: nothing more to do
