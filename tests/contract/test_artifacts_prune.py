"""Pruning artifact versions through plan -> ledger -> apply -> verify, on a server of the test's
own seeded with the demo data (resnet-checkpoints v0..v39, aliases best/prod/staging)."""

from __future__ import annotations

import pytest

from wandb_gql import Client
from wandb_gql.cleanup import Ledger, apply_prune, plan_prune, read_ledger, resume
from wandb_gql.errors import UsageError
from wandb_gql.server.local import LocalServer

PATH = "demo/vision"
CKPT = "resnet-checkpoints"


@pytest.fixture
def demo(tmp_path):
    with LocalServer(tmp_path / "db", seed="demo") as s:
        yield s


async def versions(c: Client, collection: str = CKPT) -> dict[str, list[str]]:
    return {a.version: a.aliases async for a in c.artifacts(PATH, collection=collection)}


async def test_keep_last_10_keeps_the_newest_10_and_the_aliased(demo, tmp_path):
    async with Client(demo.base_url, demo.api_key) as c:
        before = await versions(c)
        aliased = {v for v, a in before.items() if set(a) & {"best", "prod", "staging"}}
        assert len(before) == 40 and len(aliased) == 3
        plan = await plan_prune(c, PATH, collection=CKPT, keep_last=10)
        newest = {f"v{i}" for i in range(30, 40)}
        assert {v["version"] for v in plan.versions} == set(before) - newest - aliased
        assert plan.collections[CKPT] == {"versions": 40, "keep": 10 + len(aliased - newest), "delete": len(plan.versions)}
        assert plan.bytes_exact and plan.bytes_reclaimable > 0 and not plan.delete_aliases
        assert await versions(c) == before  # planning changes nothing
        with Ledger.create(tmp_path / "prune.jsonl", server=plan.server, user=plan.user) as ledger:
            result = await apply_prune(c, plan, ledger=ledger)
        assert result.ok, result.verify
        assert set(await versions(c)) == newest | aliased
        assert result.verify["bytes_freed"] == plan.bytes_reclaimable  # dedup-aware plan, exactly
        assert result.counts == {"deleted": len(plan.versions)}
    state = read_ledger(tmp_path / "prune.jsonl")
    (record,) = state.plans
    assert record.action == "prune_artifacts" and record.done is not None
    assert set(record.backups) == set(plan.ids) == set(record.outcomes)
    for i, backup in record.backups.items():
        assert backup["collection"] == CKPT and backup["files"] and backup["digest"]
        assert record.outcomes[i].status == "deleted"


async def test_no_keep_aliased_deletes_aliases_and_says_so(demo, tmp_path):
    async with Client(demo.base_url, demo.api_key) as c:
        plan = await plan_prune(c, PATH, collection=CKPT, keep_last=5, keep_aliased=False)
        assert plan.delete_aliases and len(plan.versions) == 35
        with Ledger.create(tmp_path / "l.jsonl", server=plan.server, user=plan.user) as ledger:
            result = await apply_prune(c, plan, ledger=ledger)
        assert result.ok and sorted(await versions(c)) == sorted(f"v{i}" for i in range(35, 40))


async def test_keep_used_never_deletes_a_used_version(demo):
    async with Client(demo.base_url, demo.api_key) as c:
        used = await plan_prune(c, PATH, collection="features", keep_last=1, keep_used=True)
        assert used.versions == [] and used.bytes_reclaimable == 0
        unused = await plan_prune(c, PATH, collection="features", keep_last=1)
        assert {v["version"] for v in unused.versions} == {"v0", "v1"}


async def test_older_than_only_selects_old_versions(demo):
    async with Client(demo.base_url, demo.api_key) as c:
        assert (await plan_prune(c, PATH, collection=CKPT, keep_last=0, older_than="36500d")).versions == []


async def test_drift_skips_a_version_gone_since_the_plan(demo, tmp_path):
    async with Client(demo.base_url, demo.api_key) as c:
        plan = await plan_prune(c, PATH, collection=CKPT, keep_last=10)
        doomed_too = plan.versions[1]
        await c.delete_artifact(doomed_too["id"])  # gone before the apply: skipped, not counted
        with Ledger.create(tmp_path / "l.jsonl", server=plan.server, user=plan.user) as ledger:
            result = await apply_prune(c, plan, ledger=ledger)
        skipped = {o.run_id: o.error for o in result.skipped}
        assert skipped == {doomed_too["id"]: "gone since the plan"}
        assert result.counts == {"skipped": 1, "deleted": len(plan.ids) - 1}
        assert result.verify["ok"]


async def test_an_interrupted_prune_resumes_without_repeating_or_straying(demo, tmp_path):
    path = tmp_path / "cut.jsonl"
    async with Client(demo.base_url, demo.api_key) as c:
        plan = await plan_prune(c, PATH, collection=CKPT, keep_last=10)
        others = await versions(c, "features")
        # A cut-off apply: plan and backups written, the first half sent and done, no `done`.
        with Ledger.create(path, server=plan.server, user=plan.user) as ledger:
            index = ledger.add_plan(plan.to_dict())
            half = plan.ids[: len(plan.ids) // 2]
            ledger.event(index, "sending", run_ids=half)
            for i in half:
                ledger.outcome(index, await c.delete_artifact(i))
        results = await resume(c, path)
        (result,) = results
        assert result.ok, result.verify
        assert {o.run_id for o in result.outcomes} == set(plan.ids) - set(half)  # nothing twice
        assert all(o.status == "deleted" for o in result.outcomes)
        assert await versions(c, "features") == others  # nothing outside the plan
        assert len(await versions(c)) == 40 - len(plan.ids)


async def test_bad_keep_last_is_refused(demo):
    async with Client(demo.base_url, demo.api_key) as c:
        with pytest.raises(UsageError):
            await plan_prune(c, PATH, keep_last=-1)


async def test_delete_artifact_outcomes(demo):
    async with Client(demo.base_url, demo.api_key) as c:
        best = await c.artifact(f"{PATH}/{CKPT}:best")
        refused = await c.delete_artifact(best.id)
        assert refused.status == "failed" and "alias" in (refused.error or "")
        assert (await c.delete_artifact(best.id, delete_aliases=True)).status == "deleted"
        assert (await c.delete_artifact(best.id)).status == "unchanged"
