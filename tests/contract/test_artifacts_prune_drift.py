"""Drift between plan and apply: a planned version that gains an alias (addAliases, as the SDK's
`artifact.aliases.append(...); artifact.save()` sends it) or a use (useArtifact) is skipped, not
deleted; the rest of the plan goes."""

from __future__ import annotations

import sqlite3

import pytest

from tests.conftest import Caller
from wandb_gql import Client
from wandb_gql.cleanup import Ledger, apply_prune, plan_prune, read_ledger
from wandb_gql.server.local import LocalServer

PATH = "demo/vision"
CKPT = "resnet-checkpoints"
ADD_ALIASES = """mutation($input: AddAliasesInput!) { addAliases(input: $input) { success } }"""
USE = """mutation($input: UseArtifactInput!) { useArtifact(input: $input) { artifact { id } } }"""


@pytest.fixture
def demo(tmp_path):
    with LocalServer(tmp_path / "db", seed="demo") as s:
        yield s


def a_run(db, project: str = "vision") -> str:
    conn = sqlite3.connect(db)
    try:
        return conn.execute("SELECT r.name FROM runs r JOIN projects p ON p.id = r.project_id WHERE p.name = ?"
                            " AND r.deleted_at IS NULL ORDER BY r.name LIMIT 1", (project,)).fetchone()[0]
    finally:
        conn.close()


async def test_a_version_that_gains_an_alias_or_a_use_is_skipped_not_deleted(demo, tmp_path):
    api = Caller(demo)
    async with Client(demo.base_url, demo.api_key) as c:
        plan = await plan_prune(c, PATH, collection=CKPT, keep_last=10)
        unused = [v for v in plan.versions if not v["used_by_count"]]
        aliased, used = unused[0], unused[1]
        api.ok(ADD_ALIASES, {"input": {"artifactID": aliased["id"], "aliases": [
            {"entityName": "demo", "projectName": "vision", "artifactCollectionName": CKPT, "alias": "golden"}]}})
        api.ok(USE, {"input": {"artifactID": used["id"], "entityName": "demo", "projectName": "vision",
                               "runName": a_run(tmp_path / "db")}})
        with Ledger.create(tmp_path / "l.jsonl", server=plan.server, user=plan.user) as ledger:
            result = await apply_prune(c, plan, ledger=ledger)
        skipped = {o.run_id: o.error for o in result.skipped}
        assert skipped == {aliased["id"]: "gained alias(es) golden since the plan",
                           used["id"]: "used by a run since the plan"}
        assert result.counts == {"skipped": 2, "deleted": len(plan.ids) - 2}
        assert result.verify["ok"] and not result.verify["still_there"]
        left = {a.id: a for a in [a async for a in c.artifacts(PATH, collection=CKPT)]}
        assert aliased["id"] in left and used["id"] in left  # still there, as they now are
        assert "golden" in left[aliased["id"]].aliases and (left[used["id"]].used_by_count or 0) == 1
        assert not (set(plan.ids) - {aliased["id"], used["id"]}) & set(left)
    (record,) = read_ledger(tmp_path / "l.jsonl").plans
    assert record.outcomes[aliased["id"]].status == record.outcomes[used["id"]].status == "skipped"
