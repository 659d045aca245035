"""History logged by the real `wandb` SDK (nested dicts, NaN, ±Infinity) read back through
`wandb.Api()`: `run.history(keys, samples)` and `scan_history(keys)` against the local server."""

from __future__ import annotations

import math
from typing import Any

import pytest

NON_FINITE = {"NaN", "Infinity", "-Infinity"}
N = 30


def _log_run(wb: Any, entity: str, project: str) -> str:
    run = wb.init(project=project, entity=entity)
    for i in range(N):
        row: dict[str, Any] = {"loss": 1.0 / (i + 1), "train": {"acc": i / N, "opt": {"lr": 0.1 * i}}}
        if i % 10 == 3:
            row["loss"] = float("nan")
        elif i % 10 == 5:
            row["loss"] = float("inf")
        elif i % 10 == 7:
            row["loss"] = float("-inf")
        if i % 2 == 0:
            row["even"] = {"x": i}
        run.log(row)
    run.summary["final"] = {"acc": 0.9}
    run_id = run.id
    run.finish()
    return str(run_id)


def _expected_loss(i: int) -> Any:
    return {3: "NaN", 5: "Infinity", 7: "-Infinity"}.get(i % 10, 1.0 / (i + 1))


def _as_float(value: Any) -> float:
    return float(value)  # float("NaN"), float("Infinity") and float("-Infinity") all parse


@pytest.fixture(scope="module")
def logged(wb, viewer_entity) -> Any:
    import uuid
    project = f"compat-hist-{uuid.uuid4().hex[:8]}"
    run_id = _log_run(wb, viewer_entity, project)
    return wb.Api().run(f"{viewer_entity}/{project}/{run_id}")


def test_nested_dicts_are_dotted_keys_in_history_keys_and_summary_stays_nested(logged):
    keys = logged.history_keys["keys"]
    assert {"train.acc", "train.opt.lr", "even.x", "loss"} <= set(keys)
    assert "train" not in keys and "even" not in keys
    assert keys["train.opt.lr"]["typeCounts"] == [{"type": "number", "count": N}]
    assert keys["even.x"]["typeCounts"] == [{"type": "number", "count": N // 2}]
    # wandb-summary.json is the SDK's own, kept as sent: nested values stay nested
    assert logged.summary["final"]["acc"] == 0.9


def test_history_keys_samples_nested_and_non_finite(logged):
    rows = logged.history(keys=["train.opt.lr", "loss"], pandas=False)
    assert [r["_step"] for r in rows] == list(range(N))
    assert [r["loss"] for r in rows] == [_expected_loss(i) for i in range(N)]
    assert [r["train.opt.lr"] for r in rows] == pytest.approx([0.1 * i for i in range(N)])
    # only rows that have every key, at most `samples`, first and last kept
    even = logged.history(keys=["even.x"], samples=5, pandas=False)
    assert len(even) == 5
    assert even[0] == {"_step": 0, "even.x": 0} and even[-1] == {"_step": N - 2, "even.x": N - 2}
    assert all(r["_step"] % 2 == 0 for r in even)


def test_scan_history_keys_nested_and_non_finite(logged):
    scanned = list(logged.scan_history(keys=["train.acc", "loss"], page_size=7))
    assert [r["_step"] for r in scanned] == list(range(N))
    assert [r["train.acc"] for r in scanned] == pytest.approx([i / N for i in range(N)])
    losses = [r["loss"] for r in scanned]
    for i, value in enumerate(losses):
        expected = _expected_loss(i)
        if expected in NON_FINITE:
            # the SDK hands W&B's strings through; they parse back to the same float
            assert value in NON_FINITE or isinstance(value, float)
            got, want = _as_float(value), float(expected)
            assert (math.isnan(got) and math.isnan(want)) or got == want
        else:
            assert value == pytest.approx(expected)
    only_even = list(logged.scan_history(keys=["even.x"], page_size=4))
    assert [r["even.x"] for r in only_even] == list(range(0, N, 2))


def test_full_history_rows_are_flat(logged):
    rows = logged.history(pandas=False, samples=N)
    assert len(rows) == N
    assert all("train.opt.lr" in r and "train" not in r for r in rows)
