"""This client's history agrees with `wandb.Api()` row for row, on runs the real SDK logged.

Samples mode against `run.history(keys, samples)`, full mode against `run.scan_history(keys)`,
and `keys=None` against both without keys. The runs hold what real scripts log: nested dicts,
NaN and ±Infinity, keys logged on some steps only, and enough steps that pages are needed.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.helpers import same_numbers, sdk_history_row
from wandb_gql import SyncClient

STEPS = 1_250  # more than one 1,000-step page


def _log(wb: Any, entity: str, project: str, seed: int) -> None:
    run = wb.init(project=project, entity=entity, config={"seed": seed})
    for i in range(STEPS):
        run.log(sdk_history_row(i, STEPS, seed))
    run.finish()


def _rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [same_numbers(row) for row in rows]


@pytest.fixture(scope="module")
def logged(wb, viewer_entity) -> tuple[str, Any]:
    project = f"compat-agree-{uuid.uuid4().hex[:8]}"
    for seed in range(3):
        _log(wb, viewer_entity, project, seed)
    path = f"{viewer_entity}/{project}"
    return path, wb.Api().runs(path)


@pytest.fixture(scope="module")
def ours(server, logged) -> Any:
    with SyncClient(server.base_url, server.api_key) as client:
        def read(**kw: Any) -> dict[str, list[dict[str, Any]]]:
            got: dict[str, list[dict[str, Any]]] = {}
            for run, chunk in client.history(logged[0], **kw):
                got.setdefault(run.name, []).extend(chunk)
            return got
        yield read


KEY_SETS = [["loss"], ["val.acc"], ["loss", "val.acc"], ["train.acc", "val.loss"]]


@pytest.mark.parametrize("keys", KEY_SETS, ids=",".join)
@pytest.mark.parametrize("samples", [7, 500, STEPS])
def test_samples_agree_with_run_history(logged, ours, keys, samples):
    path, runs = logged
    got = ours(keys=keys, samples=samples)
    assert len(runs) == 3 and set(got) == {r.id for r in runs}
    for run in runs:
        want = run.history(keys=keys, samples=samples, pandas=False)
        assert want, "the SDK found no rows: the comparison would prove nothing"
        assert _rows(got[run.id]) == _rows(want), (run.id, keys, samples)


@pytest.mark.parametrize("keys", KEY_SETS, ids=",".join)
def test_full_agrees_with_scan_history(logged, ours, keys):
    _, runs = logged
    got = ours(keys=keys, full=True, page_size=300)
    for run in runs:
        want = list(run.scan_history(keys=keys, page_size=300))
        assert want
        assert _rows(got[run.id]) == _rows(want), (run.id, keys)


def test_every_key_agrees_without_keys(logged, ours):
    _, runs = logged
    full = ours(keys=None, full=True)
    sampled = ours(keys=None, samples=100)
    for run in runs:
        scanned = list(run.scan_history())
        assert len(scanned) == STEPS
        assert _rows(full[run.id]) == _rows(scanned)
        assert _rows(sampled[run.id]) == _rows(run.history(samples=100, pandas=False))
