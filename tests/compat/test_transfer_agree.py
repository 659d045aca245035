"""A project logged by the real `wandb` SDK on server A, copied with `wbgql runs export
--with-history` and `wbgql runs import` into server B, lists identically through `wandb.Api()`
pointed at each: names, display names, config, summary, tags, notes, group, job type, state, and
`scan_history()` / `history(samples)` rows (NaN compared as NaN)."""

from __future__ import annotations

import subprocess
import sys
import uuid
from typing import Any

import pytest

from tests.helpers import same_numbers, sdk_history_row
from wandb_gql.server.local import LocalServer

STEPS = 1_100  # more than one 1,000-row page on export and one file_stream batch on import


def _log(wb: Any, entity: str, project: str, seed: int, exit_code: int) -> None:
    run = wb.init(project=project, entity=entity, config={"seed": seed, "opt": {"name": "adam", "lr": 0.1}},
                  tags=["baseline", f"s{seed}"], notes=f"seed {seed}", group="g" if seed else None,
                  job_type="train", name=f"copy-{seed}")
    for i in range(STEPS):
        run.log(sdk_history_row(i, STEPS, seed))
    run.summary["best"] = {"acc": 0.9, "loss": float("nan")}
    run.finish(exit_code=exit_code)


@pytest.fixture(scope="module")
def copied(wb, server, viewer_entity, tmp_path_factory) -> tuple[Any, Any, str, str]:
    """(wandb.Api on A, wandb.Api on B, the path on A, the path on B)."""
    project = f"compat-copy-{uuid.uuid4().hex[:8]}"
    for seed, code in ((0, 0), (1, 1), (2, 0)):
        _log(wb, viewer_entity, project, seed, code)
    source = f"{viewer_entity}/{project}"
    folder = tmp_path_factory.mktemp("copy")
    out = folder / "runs.jsonl"
    with LocalServer(folder / "b.db") as dest:
        def cli(s: LocalServer, *args: str) -> None:
            r = subprocess.run([sys.executable, "-m", "wandb_gql.cli", "--base-url", s.base_url, "--api-key",
                                s.api_key, *args], capture_output=True, text=True, timeout=120)
            assert r.returncode == 0, r.stderr

        cli(server, "runs", "export", source, "--with-history", "--out", str(out))
        target = f"{viewer_entity}/copied"
        cli(dest, "runs", "import", str(out), target)
        a = wb.Api(overrides={"base_url": server.base_url}, api_key=server.api_key)
        b = wb.Api(overrides={"base_url": dest.base_url}, api_key=dest.api_key)
        yield a, b, source, target


def _listing(api: Any, path: str) -> dict[str, dict[str, Any]]:
    return {run.id: {"name": run.name, "config": same_numbers(dict(run.config)), "summary": same_numbers(run.summary_metrics),
                     "tags": list(run.tags), "notes": run.notes, "group": run.group, "job_type": run.job_type,
                     "state": run.state}
            for run in api.runs(path)}


def test_runs_list_identically_through_wandb_api(copied):
    a, b, source, target = copied
    want, got = _listing(a, source), _listing(b, target)
    assert len(want) == 3
    assert got == want
    assert {r["state"] for r in got.values()} == {"finished", "failed"}


def test_history_rows_are_the_same_through_wandb_api(copied):
    a, b, source, target = copied
    for run_id in [r.id for r in a.runs(source)]:
        ra, rb = a.run(f"{source}/{run_id}"), b.run(f"{target}/{run_id}")
        scan_a, scan_b = [same_numbers(r) for r in ra.scan_history()], [same_numbers(r) for r in rb.scan_history()]
        assert len(scan_a) == STEPS and scan_b == scan_a
        keyed_a = [same_numbers(r) for r in ra.scan_history(keys=["loss", "val.acc"])]
        assert [same_numbers(r) for r in rb.scan_history(keys=["loss", "val.acc"])] == keyed_a and keyed_a
        sampled_a = same_numbers(ra.history(keys=["loss", "train.acc"], samples=5000, pandas=False))
        assert same_numbers(rb.history(keys=["loss", "train.acc"], samples=5000, pandas=False)) == sampled_a
