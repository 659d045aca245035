"""Lost answers during a prune: a proxy forwards the deletion, lets the server commit, then drops
the answer (Recorder.drop_after). The versions were deleted by this prune, so their outcomes say
deleted — never unchanged, failed or unknown — and nothing outside the plan goes."""

from __future__ import annotations

import pytest

from tests.conftest import Recorder
from wandb_gql import Client
from wandb_gql.cleanup import Ledger, apply_prune, plan_prune
from wandb_gql.cleanup.artifacts import DELETE_GROUP
from wandb_gql.server.local import LocalServer

PATH = "demo/vision"
CKPT = "resnet-checkpoints"


@pytest.fixture
def demo(tmp_path):
    with LocalServer(tmp_path / "db", seed="demo") as s:
        yield s


async def listing(c: Client) -> dict[str, tuple[str, str, tuple[str, ...]]]:
    return {a.id: (a.collection, a.version, tuple(sorted(a.aliases))) async for a in c.artifacts(PATH)}


def drop(operation: str, times: int | None):
    """Drop the answers of the first `times` requests of `operation` (None: all of them)."""
    seen = {"n": 0}

    def lost(body: dict) -> bool:
        if body.get("operationName") != operation:
            return False
        seen["n"] += 1
        return times is None or seen["n"] <= times
    return lost


async def prune_through(demo, tmp_path, proxy: Recorder, collection: str, keep_last: int):
    async with Client(demo.base_url, demo.api_key) as direct:
        before = await listing(direct)
    async with Client(proxy.base_url, demo.api_key) as c:
        plan = await plan_prune(c, PATH, collection=collection, keep_last=keep_last)
        with Ledger.create(tmp_path / "l.jsonl", server=plan.server, user=plan.user) as ledger:
            result = await apply_prune(c, plan, ledger=ledger)
    async with Client(demo.base_url, demo.api_key) as direct:
        after = await listing(direct)
    assert set(before) - set(after) == set(plan.ids)  # exactly the plan went
    assert all(after[i] == before[i] for i in after)
    return plan, result


@pytest.mark.parametrize("times", [1, None], ids=["lost-once", "lost-always"])
async def test_lost_batch_answers_are_reported_deleted(demo, tmp_path, times):
    proxy = Recorder(demo.base_url)
    proxy.drop_after = drop("DeleteArtifactBatch", times)
    plan, result = await prune_through(demo, tmp_path, proxy, CKPT, 10)
    assert len(plan.ids) >= DELETE_GROUP and "DeleteArtifactBatch" in proxy.ops()
    assert {o.run_id: o.status for o in result.outcomes} == {i: "deleted" for i in plan.ids}
    assert result.ok and result.verify["ok"]


@pytest.mark.parametrize("times", [1, None], ids=["lost-once", "lost-always"])
async def test_lost_single_answers_are_reported_deleted(demo, tmp_path, times):
    proxy = Recorder(demo.base_url)
    proxy.drop_after = drop("DeleteArtifact", times)
    plan, result = await prune_through(demo, tmp_path, proxy, "features", 1)  # fewer than a group: one by one
    assert 0 < len(plan.ids) < DELETE_GROUP and "DeleteArtifact" in proxy.ops()
    assert {o.run_id: o.status for o in result.outcomes} == {i: "deleted" for i in plan.ids}
    assert result.ok and result.verify["ok"]
