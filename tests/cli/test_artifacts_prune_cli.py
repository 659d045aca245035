"""`wbgql artifacts prune` the way users type it, against a demo server of the test's own:
--dry-run changes nothing, --yes prunes to the policy with outcomes streamed and a ledger,
--keep-used, and the mistakes refused before anything is sent."""

from __future__ import annotations

import json

import pytest

from wandb_gql.cleanup import read_ledger
from wandb_gql.server.local import LocalServer

from .conftest import parse_jsonl

CKPT = ("--collection", "resnet-checkpoints")


@pytest.fixture
def demo(tmp_path):
    with LocalServer(tmp_path / "db", seed="demo") as s:
        yield s


def listing(wbgql, demo) -> list[dict]:
    out = wbgql.remote(demo, "artifacts", "list", "demo/vision", "-f", "json")
    assert out.exit_code == 0, out
    return json.loads(out.stdout)


def test_dry_run_prints_the_plan_and_changes_nothing(wbgql, demo):
    before = listing(wbgql, demo)
    out = wbgql.remote(demo, "artifacts", "prune", "demo/vision", *CKPT, "--keep-last", "10", "--dry-run", "-f", "json")
    assert out.exit_code == 0, out
    plan = json.loads(out.stdout)
    assert plan["action"] == "prune_artifacts" and plan["path"] == "demo/vision"
    assert plan["collections"]["resnet-checkpoints"] == {"versions": 40, "keep": 11, "delete": 29}
    assert plan["bytes_reclaimable"] > 0 and "bytes reclaimable" in out.stderr
    assert listing(wbgql, demo) == before


def test_yes_prunes_streams_outcomes_and_writes_the_ledger(wbgql, demo, tmp_path):
    ledger = tmp_path / "prune.jsonl"
    out = wbgql.remote(demo, "artifacts", "prune", "demo/vision", *CKPT, "--keep-last", "10", "--yes",
                       "--ledger", str(ledger), "-f", "jsonl")
    assert out.exit_code == 0, out
    rows = parse_jsonl(out.stdout)
    assert len(rows) == 29 and {r["status"] for r in rows} == {"deleted"}
    assert f"ledger: {ledger}" in out.stderr and "verify: ok" in out.stderr
    assert out.stderr.index(f"ledger: {ledger}") < out.stderr.index("verify:")
    left = [r for r in listing(wbgql, demo) if r["collection"] == "resnet-checkpoints"]
    assert sorted(int(r["version"][1:]) for r in left) == [27, *range(30, 40)]
    (plan,) = read_ledger(ledger).plans
    assert set(plan.backups) == {r["run_id"] for r in rows} == {i for i, o in plan.outcomes.items() if o.status == "deleted"}
    assert plan.done["verify"]["bytes_freed"] == plan.data["bytes_reclaimable"]
    shown = wbgql.remote(demo, "ledger", "show", str(ledger))
    assert shown.exit_code == 0 and "prune_artifacts" in shown.stdout, shown
    assert "undo:" not in shown.stdout  # pruned versions cannot come back: no undo is offered


def test_keep_used_keeps_every_used_features_version(wbgql, demo):
    out = wbgql.remote(demo, "artifacts", "prune", "demo/vision", "--collection", "features", "--keep-last", "1",
                       "--keep-used", "--yes")
    assert out.exit_code == 0 and "nothing to do" in out.stderr
    assert len([r for r in listing(wbgql, demo) if r["collection"] == "features"]) == 3


def test_no_answer_changes_nothing(wbgql, demo):
    before = listing(wbgql, demo)
    out = wbgql.remote(demo, "artifacts", "prune", "demo/vision", *CKPT, "--keep-last", "10", input="")
    assert out.exit_code == 3 and "nothing changed" in out.stderr
    assert listing(wbgql, demo) == before


@pytest.mark.parametrize("args, says", [((), "--keep-last"), (("--keep-last", "3", "--older-than", "soon"), "--older-than"),
                                         (("--keep-last", "3", "--dry-run", "--yes"), "--dry-run")])
def test_bad_input_is_refused(wbgql, demo, args, says):
    out = wbgql.remote(demo, "artifacts", "prune", "demo/vision", *args)
    assert out.exit_code == 2 and says in out.stderr
