"""Pruning versions that hold references (`add_reference`): W&B lists a reference among a
version's files with its size, but stores none of its bytes, so a prune's reclaimable bytes
must leave references out (they counted the referenced files' sizes as freed)."""

from __future__ import annotations

import asyncio

from wandb_gql import Client
from wandb_gql.cleanup import Ledger, apply_prune, plan_prune


def test_prune_does_not_count_referenced_bytes(wb, server, viewer_entity, project_name, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    for i in range(3):
        (tmp_path / f"weights-{i}.bin").write_bytes(bytes([i]) * 2_000)
        (outside / f"big-{i}.bin").write_bytes(bytes([i]) * 1_000_000)
        art = wb.Artifact("refs", type="dataset")
        art.add_file(str(tmp_path / f"weights-{i}.bin"), name="weights.bin")
        art.add_reference((outside / f"big-{i}.bin").as_uri(), name="big.bin")
        with wb.init(entity=viewer_entity, project=project_name) as run:
            run.log_artifact(art).wait()
    path = f"{viewer_entity}/{project_name}"

    async def prune() -> None:
        async with Client(server.base_url, server.api_key) as c:
            plan = await plan_prune(c, path, collection="refs", keep_last=1)
            assert sorted(v["version"] for v in plan.versions) == ["v0", "v1"]
            # two stored 2,000-byte files and two manifests; nothing of the 1 MB references
            assert plan.bytes_exact and 4_000 <= plan.bytes_reclaimable < 10_000, plan.bytes_reclaimable
            with Ledger.create(tmp_path / "prune.jsonl", server=plan.server, user=plan.user) as ledger:
                result = await apply_prune(c, plan, ledger=ledger)
            assert result.ok, result.verify
            assert result.verify["bytes_freed"] == plan.bytes_reclaimable

    asyncio.run(prune())
