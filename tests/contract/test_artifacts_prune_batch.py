"""Prune deletes versions 20 to a request (DeleteArtifactBatch): a field the server refuses must not
spoil the other fields of its request, and gets its own exact outcome."""

from __future__ import annotations

import pytest

from wandb_gql import Client
from wandb_gql.cleanup import Ledger, apply_prune, plan_prune, read_ledger
from wandb_gql.cleanup.artifacts import DELETE_GROUP
from wandb_gql.server.local import LocalServer

PATH = "demo/vision"
CKPT = "resnet-checkpoints"


@pytest.fixture
def demo(tmp_path):
    with LocalServer(tmp_path / "db", seed="demo") as s:
        yield s


async def test_refused_fields_fail_alone_and_the_rest_of_their_request_is_deleted(demo, tmp_path):
    async with Client(demo.base_url, demo.api_key) as c:
        plan = await plan_prune(c, PATH, collection=CKPT, keep_last=5, keep_aliased=False)
        aliased = {v["id"] for v in plan.versions if v["aliases"]}
        assert len(plan.versions) == 35 and aliased & set(plan.ids[:DELETE_GROUP])  # one in a full group
        plan.delete_aliases = False  # so the server refuses the aliased versions, inside full groups
        with Ledger.create(tmp_path / "l.jsonl", server=plan.server, user=plan.user) as ledger:
            result = await apply_prune(c, plan, ledger=ledger)
        assert result.counts == {"deleted": 35 - len(aliased), "failed": len(aliased)}
        assert {o.run_id for o in result.outcomes if o.status == "failed"} == aliased
        left = {a.id async for a in c.artifacts(PATH, collection=CKPT)}
        assert aliased <= left and len(left) == 5 + len(aliased)
        assert not result.verify["still_there"]
    (record,) = read_ledger(tmp_path / "l.jsonl").plans
    assert {i for i, o in record.outcomes.items() if o.status == "failed"} == aliased
