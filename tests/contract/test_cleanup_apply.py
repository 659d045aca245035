"""apply_plan and resume against the real local server: 2,000 runs under injected faults with the
applying process killed (SIGKILL) midway and resumed; drift; a proxy that loses answers after
the server committed; the ledger's order and completeness."""

from __future__ import annotations

import random
import sqlite3
from datetime import datetime, timedelta, timezone
from pathlib import Path

import orjson
import pytest

from tests.helpers import kill_after_first_outcome
from tests.conftest import Caller, Recorder, add_team
from wandb_gql import Client
from wandb_gql.cleanup import Ledger, Selection, apply_plan, make_plan, read_ledger, resume
from wandb_gql.errors import PlanError
from wandb_gql.server.local import LocalServer

ROOT = Path(__file__).resolve().parents[2]
UPSERT = ('mutation U($n: String, $p: String, $t: [String], $s: String) { upsertBucket(input: '
          '{entityName: "demo", modelName: $p, name: $n, tags: $t, state: $s}) { inserted } }')
WHERE = "state in (finished, crashed, failed) and config.lr <= 0.01"


def seed_big(db: Path, n: int = 2000) -> None:
    """One project of n demo-like runs, written straight into the server's database."""
    from wandb_gql.server import seed
    from wandb_gql.server.db import transaction
    from wandb_gql.server.store import Store

    store = Store(db)
    rng = random.Random(8)
    start = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(days=120)
    with transaction(store.conn):
        for user in seed.USERS:
            store.ensure_user(user)
        project = store.ensure_project("demo", "big")["id"]
        store.insert_runs(project, (seed._run(rng, "big", i, start + timedelta(hours=i))[0] for i in range(n)))
    store.conn.close()


def rows(db: Path, project: str = "big") -> dict[str, dict]:
    """Every run of the project as stored, deleted or not."""
    conn = sqlite3.connect(db)
    conn.row_factory = sqlite3.Row
    try:
        found = conn.execute("SELECT r.* FROM runs r JOIN projects p ON p.id = r.project_id WHERE p.name = ?",
                             (project,)).fetchall()
        return {r["name"]: dict(r) for r in found}
    finally:
        conn.close()


def ledger_lines(path: Path) -> list[dict]:
    return [orjson.loads(line) for line in path.read_bytes().split(b"\n") if line.strip()]


@pytest.fixture
def big(tmp_path):
    db = tmp_path / "server.db"
    seed_big(db)
    with LocalServer(db) as s:
        yield s, db


APPLY = """
import asyncio, sys
from pathlib import Path
from wandb_gql import Client
from wandb_gql.cleanup import Ledger, Selection, apply_plan, make_plan
from wandb_gql.cleanup import apply

apply.BATCH = 40  # more, smaller batches: the kill lands between them

async def main(url, key, ledger_path, where):
    async with Client(url, key) as c:
        plan = await make_plan(c, "demo/big", Selection.choose(where=where), "delete")
        with Ledger.create(Path(ledger_path), server=url, user=plan.user) as ledger:
            await apply_plan(c, plan, ledger=ledger)

asyncio.run(main(*sys.argv[1:]))
"""


async def test_kill_9_midway_then_resume_deletes_exactly_the_plan(big, tmp_path):
    server, db = big
    api = Caller(server)
    before = rows(db)
    assert len(before) == 2000
    api.faults({"error_rate": 0.1, "drop_rate": 0.05, "rate_limit": 60, "window": 0.2, "retry_after": 0.05,
                "latency": 0.01, "seed": 11})
    ledger = tmp_path / "delete.jsonl"
    kill_after_first_outcome([APPLY, server.base_url, server.api_key, str(ledger), WHERE], ledger, ROOT, timeout=60)
    state = read_ledger(ledger)
    (record,) = state.plans
    planned = set(record.run_ids)
    assert record.done is None and 0 < len(record.outcomes) < len(planned)  # killed midway
    assert len(planned) > 1000
    deleted_at_kill = {n for n, r in rows(db).items() if r["deleted_at"]}
    assert deleted_at_kill <= planned

    async with Client(server.base_url, server.api_key) as c:
        results = await resume(c, ledger)
    api.faults({})
    after = rows(db)
    assert {n for n, r in after.items() if r["deleted_at"]} == planned  # exactly the plan
    for name, row in before.items():  # nothing else touched, and nothing but deleted_at on the plan
        changed = {k for k in row if row[k] != after[name][k]}
        assert changed == ({"deleted_at"} if name in planned else set()), (name, changed)
    (result,) = results
    assert result.ok and result.verify["ok"] and result.verify["pinned"] == len(planned)
    assert all(o.status == "deleted" for o in result.outcomes)

    lines = ledger_lines(ledger)
    final: dict[str, list[str]] = {}
    for line in lines:
        if line["type"] == "outcome":
            final.setdefault(line["run_id"], []).append(line["status"])
    assert set(final) == planned
    assert all([s for s in statuses if s != "unknown"] == ["deleted"] for statuses in final.values())
    first_outcome = next(i for i, line in enumerate(lines) if line["type"] == "outcome")
    backups = [i for i, line in enumerate(lines) if line["type"] == "backup"]
    assert max(backups) < first_outcome
    assert {lines[i]["run"]["name"] for i in backups} == planned
    assert all("config" in lines[i]["run"] and "summary" in lines[i]["run"] for i in backups)
    assert [line["kind"] for line in lines if line["type"] == "event"].count("resumed") == 1
    assert lines[-1]["type"] == "done" and read_ledger(ledger).complete
    assert server.api_key not in ledger.read_text()
    # resuming a complete ledger does nothing
    async with Client(server.base_url, server.api_key) as c:
        assert await resume(c, ledger) == []


def small_project(server: LocalServer, project: str, runs: dict[str, list[str]]) -> None:
    add_team(server, "demo")  # entities are not created by upsertBucket
    api = Caller(server)
    for name, tags in runs.items():
        api.ok(UPSERT, {"n": name, "p": project, "t": tags, "s": "finished"})


async def test_drift_a_run_that_starts_running_is_skipped_not_deleted(tmp_path):
    db = tmp_path / "db"
    with LocalServer(db) as server:
        small_project(server, "p", {"a": ["tmp"], "b": ["tmp"], "c": ["tmp"], "d": ["tmp"], "e": []})
        api = Caller(server)
        async with Client(server.base_url, server.api_key) as c:
            plan = await make_plan(c, "demo/p", Selection.choose(where="tags has tmp"), "delete")
            assert plan.run_ids == ("a", "b", "c", "d")
            api.ok(UPSERT, {"n": "b", "p": "p", "s": "running"})          # started running
            api.ok(UPSERT, {"n": "c", "p": "p", "t": ["tmp", "keep"]})    # gained a protected tag
            before = rows(db, "p")
            with Ledger.create(tmp_path / "refused.jsonl", server=server.base_url, user="local") as ledger:
                with pytest.raises(PlanError, match="2 planned run") as info:
                    await apply_plan(c, plan, ledger=ledger, max_drift=1)
            assert info.value.exit_code == 3 and rows(db, "p") == before  # nothing changed
            refused = read_ledger(tmp_path / "refused.jsonl")
            assert refused.complete and refused.plans[0].done["verify"]["ok"] is False
            assert not refused.plans[0].outcomes and len(refused.plans[0].backups) == 4

            seen = []
            with Ledger.create(tmp_path / "ok.jsonl", server=server.base_url, user="local") as ledger:
                result = await apply_plan(c, plan, ledger=ledger, max_drift=2, on_outcome=seen.append)
        after = rows(db, "p")
    assert {n for n, r in after.items() if r["deleted_at"]} == {"a", "d"}
    assert sorted((o.run_id, o.status) for o in result.skipped) == [("b", "skipped"), ("c", "skipped")]
    assert "started running" in next(o.error for o in result.skipped if o.run_id == "b")
    assert "protected" in next(o.error for o in result.skipped if o.run_id == "c")
    assert [(o.run_id, o.status) for o in result.outcomes] == [("a", "deleted"), ("d", "deleted")]
    assert result.ok and result.verify["count_ok"] and result.verify["expected_change"] == -2
    assert sorted(o.run_id for o in seen) == ["a", "b", "c", "d"]
    assert read_ledger(tmp_path / "ok.jsonl").plans[0].outcomes["b"].status == "skipped"


async def test_a_run_that_left_the_selection_is_skipped(tmp_path):
    with LocalServer(tmp_path / "db") as server:
        small_project(server, "p", {"a": ["tmp"], "b": ["tmp"], "e": []})
        async with Client(server.base_url, server.api_key) as c:
            plan = await make_plan(c, "demo/p", Selection.choose(where="tags has tmp"), "delete")
            await c.update_runs("demo/p", ["a"], remove_tags=["tmp"])
            with Ledger.create(tmp_path / "l.jsonl", server=server.base_url, user="local") as ledger:
                result = await apply_plan(c, plan, ledger=ledger, max_drift=1)
            assert [r async for r in c.run_ids("demo/p")] == ["a", "e"]
    assert [(o.run_id, o.status) for o in result.skipped] == [("a", "skipped")]
    assert "left the selection" in (result.skipped[0].error or "")


async def test_lost_answers_after_commit_are_not_misreported(tmp_path, monkeypatch):
    from wandb_gql.client import runs as runs_module
    from wandb_gql.transport import RetryPolicy

    # Every answer to a mutation is lost: the retries give up fast, so the re-check decides.
    monkeypatch.setattr(runs_module, "IDEMPOTENT", RetryPolicy("idempotent", attempts=2, base_delay=0.01))
    with LocalServer(tmp_path / "db") as server:
        small_project(server, "p", {f"r{i}": ["tmp"] for i in range(12)} | {"x": []})
        proxy = Recorder(server.base_url)
        mutations = ("DeleteRuns", "UndeleteRuns", "ModifyRuns", "UpsertBucket")
        proxy.drop_after = lambda body: body.get("operationName") in mutations
        async with Client(server.base_url, server.api_key) as direct:
            await direct.delete_runs("demo/p", ["r11"])  # already deleted before this delete
        async with Client(proxy.base_url, server.api_key) as c:
            out = await c.delete_runs("demo/p", [f"r{i}" for i in range(12)] + ["nope"])
            assert {o.status for o in out[:11]} == {"deleted"}
            assert [(o.run_id, o.status) for o in out[11:]] == [("r11", "unchanged"), ("nope", "not_found")]
            back = await c.restore_runs("demo/p", ["r0", "r1", "x"])
            assert [o.status for o in back] == ["restored", "restored", "unchanged"]
            tagged = await c.update_runs("demo/p", ["r0", "x"], add_tags=["seen"])
            assert [o.status for o in tagged] == ["updated", "updated"]
            noted = await c.update_runs("demo/p", ["r0", "x"], notes="n")
            assert [o.status for o in noted] == ["updated", "updated"]
            again = await c.update_runs("demo/p", ["r0"], notes="n", add_tags=["seen"])
            assert [o.status for o in again] == ["unchanged"]
            assert sorted([i async for i in c.run_ids("demo/p")]) == ["r0", "r1", "x"]
            assert proxy.ops().count("DeleteRuns") == 2  # sent, lost, retried once, lost again
            # the answer is lost and the re-check cannot be read either: unknown, never a guess
            lost = {"mutation": False}

            def drop(body: dict) -> bool:
                lost["mutation"] = lost["mutation"] or body.get("operationName") in mutations
                return body.get("operationName") in mutations

            proxy.drop_after = drop
            proxy.fail_when = lambda body: 400 if lost["mutation"] and body.get("operationName") == "ProjectRunIds" \
                else None
            out = await c.delete_runs("demo/p", ["r0"])
            assert out[0].status == "unknown" and not out[0].ok and "re-check failed" in (out[0].error or "")
        assert rows(tmp_path / "db", "p")["r0"]["deleted_at"]  # it was deleted: unknown was the honest answer


async def test_resume_leaves_an_interrupted_undo_to_ledger_undo(server, tmp_path):
    """A revert plan (written by `undo`) is not replayed by resume: undo itself is the safe way on."""
    path = tmp_path / "undo.jsonl"
    with Ledger.create(path, server=server.base_url, user="local") as ledger:
        ledger.add_plan({"action": "revert", "path": "demo/rl", "run_ids": ["rl000001"], "changes": {"fields": {}}},
                        {"undo_of": 0})
    async with Client(server.base_url, server.api_key) as client:
        results = await resume(client, path)
    assert [r.verify["note"] for r in results] == ["an interrupted undo is finished by running 'wbgql ledger undo' again"]
    assert read_ledger(path).complete
