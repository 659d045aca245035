"""Restore and undo by ledger, against the real local server: exactly the ledger's runs come back
(compared by id, config, summary, tags), other deleted runs stay deleted, purged runs are
re-created from their backup, updates and moves are taken back, and the ledger records it all."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path
from typing import Any, Awaitable, Callable

import pytest

from tests.conftest import Caller
from wandb_gql import Client, UsageError
from wandb_gql.cleanup.apply import apply_plan
from wandb_gql.cleanup.ledger import Ledger, read_ledger
from wandb_gql.cleanup.plan import Selection, make_plan
from wandb_gql.cleanup.restore import restore_from_ledger, undo
from wandb_gql.models import Outcome
from wandb_gql.server.local import LocalServer

Act = Callable[..., Awaitable[list[Outcome]]]


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """A demo server of this module's own: these tests delete, restore and move runs."""
    with LocalServer(tmp_path_factory.mktemp("restore") / "db.sqlite", seed="demo") as s:
        yield s


def client(server: LocalServer) -> Client:
    return Client(server.base_url, server.api_key)


async def snapshot(c: Client, path: str, ids: list[str]) -> dict[str, Any]:
    """What must survive a round trip, per run id."""
    runs = [r async for r in c.runs(path, filters={"name": {"$in": ids}}, config_keys=True, summary_keys=True)]
    return {r.name: (dict(r.config), dict(r.summary), sorted(r.tags or []), r.display_name, r.state, r.group,
                     r.job_type, r.notes or None) for r in runs}  # upsertBucket clears notes with "" 


async def ids_where(c: Client, path: str, where: str, n: int, skip: int = 0) -> list[str]:
    found = [i async for i in c.run_ids(path, where=where)]
    assert len(found) >= skip + n, f"the demo data has too few runs for {where!r}"
    return found[skip:skip + n]


async def write_ledger(c: Client, where: Path, path: str, ids: list[str], action: str, act: Act, *,
                       changes: dict[str, Any] | None = None, finish: bool = True,
                       history: bool = False) -> Path:
    """A ledger as the engine writes one: plan, one backup per run (before acting), one outcome
    per run as it is known, done."""
    with Ledger.create(where, server=c.settings.base_url, user="test") as ledger:
        index = ledger.add_plan({"action": action, "server": c.settings.base_url, "user": "test", "path": path,
                                 "selection": {"kind": "ids", "ids": ids}, "changes": changes or {},
                                 "run_count": len(ids), "run_ids": ids})
        backups = []
        for run_id in ids:
            run = (await c.run(f"{path}/{run_id}")).to_dict()
            if history:
                run["history"] = [{"_step": 0, "loss": 1.0}, {"_step": 1, "loss": 0.5}]
            backups.append(run)
        ledger.backup(index, backups)
        ledger.sync()
        await act(path, ids, on_outcome=lambda o: ledger.outcome(index, o))
        if finish:
            ledger.done(index, verify={"ok": True})
    return where


async def test_restore_brings_back_exactly_the_ledgers_runs(demo, tmp_path):
    path = "demo/rl"
    async with client(demo) as c:
        ours = await ids_where(c, path, "state in (crashed, failed)", 12)
        theirs = await ids_where(c, path, "state in (crashed, failed)", 4, skip=12)
        before = await snapshot(c, path, ours)
        live_before = await c.count_runs(path)
        ledger = await write_ledger(c, tmp_path / "delete.jsonl", path, ours, "delete", c.delete_runs)
        await c.delete_runs(path, theirs)  # someone else's deletion, matching the same filter
        assert await c.count_runs(path) == live_before - 16

        seen: list[Outcome] = []
        result = await restore_from_ledger(c, ledger, on_outcome=seen.append)

        assert sorted(o.run_id for o in result.outcomes) == sorted(ours)
        assert {o.status for o in result.outcomes} == {"restored"} and seen == result.outcomes
        assert await snapshot(c, path, ours) == before
        assert await snapshot(c, path, theirs) == {}  # W&B's restore by filter would have brought these back
        assert await c.count_runs(path) == live_before - 4
        assert result.verify["ok"] and result.verify["not_visible"] == [] and result.verify["expected_change"] == 12
        assert result.ledger == ledger

        state = read_ledger(ledger)
        restore = state.plans[-1]
        assert restore.action == "restore" and restore.data["options"]["undo_of"] == 0
        assert restore.run_ids == ours and restore.done is not None and restore.done["verify"]["ok"]
        assert {o.status for o in restore.outcomes.values()} == {"restored"}

        again = await restore_from_ledger(c, ledger)  # nothing left to do: nothing changes
        assert {o.status for o in again.outcomes} == {"unchanged"} and again.verify["ok"]
        assert await snapshot(c, path, theirs) == {}
        await c.restore_runs(path, theirs)


async def test_an_interrupted_delete_is_restored_including_runs_without_an_outcome(demo, tmp_path):
    path = "demo/nlp"
    async with client(demo) as c:
        ids = await ids_where(c, path, "state = finished", 10)
        before = await snapshot(c, path, ids)

        async def killed_midway(path: str, ids: list[str], on_outcome: Callable[[Outcome], object]) -> list[Outcome]:
            # The first 4 outcomes reached the ledger; the apply died after deleting 3 more.
            outcomes = await c.delete_runs(path, ids[:4], on_outcome=on_outcome)
            await c.delete_runs(path, ids[4:7])
            return outcomes

        ledger = await write_ledger(c, tmp_path / "killed.jsonl", path, ids, "delete", killed_midway, finish=False)
        result = await restore_from_ledger(c, ledger)

    statuses = {o.run_id: o.status for o in result.outcomes}
    assert set(statuses) == set(ids)  # never an id outside the plan
    assert all(statuses[i] == "restored" for i in ids[:7])
    assert all(statuses[i] == "unchanged" for i in ids[7:])  # the apply never reached them
    async with client(demo) as c:
        assert await snapshot(c, path, ids) == before
    assert result.verify["ok"]


async def test_purged_runs_are_recreated_from_their_backup(tmp_path):
    with LocalServer(tmp_path / "db.sqlite", seed="demo", retention=timedelta(seconds=1)) as server:
        path = "demo/rl"
        async with client(server) as c:
            ids = await ids_where(c, path, "state = finished and tags has baseline", 3)
            before = await snapshot(c, path, ids)
            ledger = await write_ledger(c, tmp_path / "purged.jsonl", path, ids, "delete", c.delete_runs,
                                        history=True)
            await asyncio.sleep(2.1)  # W&B times have whole seconds: past the 1 s retention for sure
            purge(server)
            assert await c.restore_runs(path, ids) == [Outcome(i, "not_found") for i in ids]  # gone for good

            plain = await restore_from_ledger(c, ledger)
            assert {o.status for o in plain.outcomes} == {"not_found"}
            assert all("recreate" in (o.error or "") for o in plain.outcomes)

            result = await restore_from_ledger(c, ledger, recreate=True)
            assert {o.status for o in result.outcomes} == {"restored"}
            assert all(o.error is None for o in result.outcomes)
            assert await snapshot(c, path, ids) == before  # state and summary too, after file_stream
            assert result.verify["ok"] and result.verify["expected_change"] == 3
            # the backup's history is written again, through file_stream (Client.log)
            got = {run.name: rows async for run, rows in c.history(path, filters={"name": {"$in": ids}},
                                                                   keys=["loss"], full=True) if rows}
            assert got == {i: [{"_step": 0, "loss": 1.0}, {"_step": 1, "loss": 0.5}] for i in ids}


async def test_recreate_never_overrides_a_soft_deleted_run(demo, tmp_path):
    path = "demo/rl"
    async with client(demo) as c:
        [run_id] = await ids_where(c, path, "state = killed", 1)
        backup = (await c.run(f"{path}/{run_id}")).to_dict()
        await c.delete_runs(path, [run_id])
        outcome = await c.recreate_run(path, backup)
        assert outcome.status == "failed" and "deleted" in (outcome.error or "")
        assert await c.count_runs(path, filters={"name": run_id}) == 0
        await c.restore_runs(path, [run_id])


async def test_undo_of_an_update_puts_back_the_previous_values(demo, tmp_path):
    path = "demo/nlp"
    async with client(demo) as c:
        ids = await ids_where(c, path, "state = crashed", 6)
        raw_before = {r.name: r.config_json async for r in c.runs(path, filters={"name": {"$in": ids}},
                                                                   config_keys=True)}
        before = await snapshot(c, path, ids)
        changes = {"notes": "bulk edit", "add_tags": ["reviewed"], "config": {"lr": 9.9, "added": 1},
                   "summary": {"loss": -1}}

        async def update(path: str, ids: list[str], on_outcome: Any) -> list[Outcome]:
            return await c.update_runs(path, ids, notes="bulk edit", add_tags=["reviewed"],
                                       config={"lr": 9.9, "added": 1}, summary={"loss": -1}, on_outcome=on_outcome)

        ledger = await write_ledger(c, tmp_path / "update.jsonl", path, ids, "update", update, changes=changes)
        assert all(v[7] == "bulk edit" for v in (await snapshot(c, path, ids)).values())
        # someone changes another field of one run afterwards: undo leaves that alone
        await c.update_runs(path, ids[:1], group="kept-by-someone")

        result = await undo(c, ledger)
        assert {o.status for o in result.outcomes} == {"updated"} and result.verify["ok"]
        after = await snapshot(c, path, ids)
        assert after[ids[0]][5] == "kept-by-someone"
        assert {k: v[:5] + v[6:] for k, v in after.items()} == {k: v[:5] + v[6:] for k, v in before.items()}
        raw_after = {r.name: r.config_json async for r in c.runs(path, filters={"name": {"$in": ids}},
                                                                  config_keys=True)}
        assert raw_after == raw_before  # W&B's stored config form, key for key

        second = await undo(c, ledger)  # the undo plan itself is not undone
        assert {o.status for o in second.outcomes} == {"unchanged"}
        state = read_ledger(ledger)
        assert [p.action for p in state.plans] == ["update", "revert", "revert"]
        assert [p.data["options"].get("undo_of") for p in state.plans] == [None, 0, 0]


async def test_undo_of_a_delete_ledger_restores_and_of_a_move_moves_back(demo, tmp_path):
    path = "demo/vision"
    async with client(demo) as c:
        ids = await ids_where(c, path, "state = finished and group = ablation", 5)
        before = await snapshot(c, path, ids)

        async def move(path: str, ids: list[str], on_outcome: Any) -> list[Outcome]:
            return await c.move_runs(path, ids, "demo/vision-archive", on_outcome=on_outcome)

        moved = await write_ledger(c, tmp_path / "move.jsonl", path, ids, "move", move,
                                   changes={"to": "demo/vision-archive"})
        assert await snapshot(c, path, ids) == {}
        assert await snapshot(c, "demo/vision-archive", ids) == before
        result = await undo(c, moved)
        assert {o.status for o in result.outcomes} == {"moved"} and result.verify["ok"]
        assert await snapshot(c, path, ids) == before
        assert await snapshot(c, "demo/vision-archive", ids) == {}

        deleted = await write_ledger(c, tmp_path / "delete.jsonl", path, ids, "delete", c.delete_runs)
        result = await undo(c, deleted)
        assert {o.status for o in result.outcomes} == {"restored"}
        assert await snapshot(c, path, ids) == before


async def test_ledgers_that_cannot_be_restored_are_refused_before_anything_is_sent(demo, tmp_path):
    async with client(demo) as c:
        [run_id] = await ids_where(c, "demo/rl", "state = finished", 1)

        async def nothing(path: str, ids: list[str], on_outcome: Any) -> list[Outcome]:
            outcomes = [Outcome(i, "not_found") for i in ids]
            for o in outcomes:
                on_outcome(o)
            return outcomes

        empty = await write_ledger(c, tmp_path / "nothing.jsonl", "demo/rl", [run_id], "delete", nothing)
        with pytest.raises(UsageError, match="deleted no runs"):
            await restore_from_ledger(c, empty)
        with pytest.raises(UsageError, match="changed no runs"):
            await undo(c, empty)
        size = empty.stat().st_size

        other = tmp_path / "other.jsonl"
        other.write_text(empty.read_text().replace(c.settings.base_url, "https://api.wandb.ai"))
        with pytest.raises(UsageError, match="written against https://api.wandb.ai"):
            await restore_from_ledger(c, other)
    assert empty.stat().st_size == size  # a refused restore appends nothing


def purge(server: LocalServer) -> None:
    reply = Caller(server).post("/_local/purge", {})
    assert reply.status == 200, reply.body


async def test_restore_after_an_engine_delete_under_faults_brings_back_the_plan_and_nothing_else(demo, tmp_path):
    path = "demo/vision"
    api = Caller(demo)
    async with client(demo) as c:
        theirs = await ids_where(c, path, "state = failed", 5)
        await c.delete_runs(path, theirs)  # deleted earlier by someone else: they match the filter too
        plan = await make_plan(c, path, Selection.choose(where="state = failed", action="delete"), "delete")
        ours = list(plan.run_ids or ())
        assert len(ours) > 50 and not set(ours) & set(theirs)
        before = await snapshot(c, path, ours)
        with Ledger.create(tmp_path / "engine.jsonl", server=c.settings.base_url, user="test") as ledger:
            applied = await apply_plan(c, plan, ledger=ledger)
        assert applied.ok and await snapshot(c, path, ours) == {}

        api.faults({"error_rate": 0.15, "drop_rate": 0.05, "retry_after": 0.05, "seed": 8})
        try:
            result = await restore_from_ledger(c, tmp_path / "engine.jsonl")
        finally:
            api.faults({})
        assert {o.status for o in result.outcomes} == {"restored"}, result.counts
        assert sorted(o.run_id for o in result.outcomes) == sorted(ours)
        assert await snapshot(c, path, ours) == before
        assert await snapshot(c, path, theirs) == {}
        assert result.verify["ok"], result.verify
        await c.restore_runs(path, theirs)


async def test_a_run_the_cut_off_apply_never_sent_is_not_restored(demo, tmp_path):
    path = "demo/nlp"
    async with client(demo) as c:
        ids = await ids_where(c, path, "state = killed", 6)
        with Ledger.create(tmp_path / "cut.jsonl", server=c.settings.base_url, user="test") as ledger:
            index = ledger.add_plan({"action": "delete", "path": path, "run_ids": ids, "changes": {},
                                     "selection": {"kind": "ids", "ids": ids}})
            ledger.event(index, "sending", run_ids=ids[:3])  # what the engine syncs before a batch
            ledger.sync()
            await c.delete_runs(path, ids[:3])  # ... then it died before writing the outcomes
        await c.delete_runs(path, ids[5:])  # someone else deletes a run of the plan the apply never reached

        result = await restore_from_ledger(c, tmp_path / "cut.jsonl")
        assert sorted(o.run_id for o in result.outcomes) == sorted(ids[:3])
        assert {o.status for o in result.outcomes} == {"restored"}
        assert await snapshot(c, path, ids[5:]) == {}
        await c.restore_runs(path, ids[5:])
