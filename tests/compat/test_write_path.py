"""A run written by this client (create_run, log, set_summary, finish) reads back through the real
`wandb.Api()` exactly as written: config, summary, tags/notes/group/job_type, state, and history
through `run.history(keys, samples)` and `run.scan_history(keys)` (nested dicts as dotted keys,
NaN and ±Infinity included). Logging is resumable: a new client re-running the same log adds
nothing, more rows continue with no gap, and the SDK's own resume continues a run we created."""

from __future__ import annotations

import asyncio
import math
from typing import Any

import pytest

from wandb_gql import Client
from wandb_gql.client.write import RunExistsError

N = 2500  # > 1000 per file_stream request and per scan_history page: both page
CONFIG = {"lr": 0.001, "layers": [64, 32], "optimizer": {"name": "adam", "betas": [0.9, 0.999]}, "seed": None}
SUMMARY = {"loss": float("nan"), "best": {"acc": 0.97}, "peak": float("inf"), "floor": float("-inf")}
SPECIAL = {3: float("nan"), 5: float("inf"), 7: float("-inf")}


def _row(i: int) -> dict[str, Any]:
    row: dict[str, Any] = {"loss": SPECIAL.get(i % 10, 1.0 / (i + 1)), "train": {"acc": i / N, "opt": {"lr": 0.1 * i}}}
    if i % 2 == 0:
        row["even"] = {"x": i}
    return row


def _same(got: Any, want: Any) -> bool:
    """W&B serves NaN/±Infinity as the strings "NaN"/"Infinity"/"-Infinity": equal when they parse
    to the same float (NaN equal to NaN)."""
    if isinstance(want, float) and not math.isfinite(want):
        try:
            value = float(got)
        except (TypeError, ValueError):
            return False
        return (math.isnan(value) and math.isnan(want)) or value == want
    if isinstance(want, float):
        return isinstance(got, (int, float)) and got == pytest.approx(want)
    return bool(got == want)


def _rows_equal(got: list[dict[str, Any]], want: list[dict[str, Any]]) -> None:
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert set(g) == set(w), (g, w)
        assert all(_same(g[k], w[k]) for k in w), (g, w)


def _client(server: Any) -> Client:
    return Client(server.base_url, server.api_key)


def _write(server: Any, path: str, exit_code: int, rows: list[dict[str, Any]]) -> str:
    async def go() -> str:
        async with _client(server) as c:
            run = await c.create_run(path, config=CONFIG, tags=["written", "by-gql"], notes="no SDK",
                                     group="grp", job_type="train", display_name="written run")
            assert run.history_line_count == 0 and run.state == "running"
            assert await c.log(run, rows, batch=1000) == len(rows)
            await c.set_summary(run, SUMMARY)
            await c.finish(run, exit_code=exit_code)
            return str(run.name)

    return asyncio.run(go())


@pytest.fixture(scope="module")
def written(wb, server, viewer_entity) -> Any:
    import uuid
    project = f"compat-write-{uuid.uuid4().hex[:8]}"
    run_id = _write(server, f"{viewer_entity}/{project}", 0, [_row(i) for i in range(N)])
    return wb.Api().run(f"{viewer_entity}/{project}/{run_id}")


def test_fields_read_back_through_wandb_api(written):
    assert written.config == CONFIG  # the SDK's Api hides the `_wandb` entry, as for its own runs
    assert written.tags == ["written", "by-gql"] and written.notes == "no SDK"
    assert written.group == "grp" and written.job_type == "train" and written.display_name == "written run"
    assert written.state == "finished"
    assert written.lastHistoryStep == N - 1


def test_summary_reads_back_with_nan_and_infinity(written):
    summary = dict(written.summary)
    assert set(summary) == set(SUMMARY)
    assert dict(summary["best"]) == {"acc": 0.97}  # a SummarySubDict
    assert all(_same(summary[k], SUMMARY[k]) for k in ("loss", "peak", "floor"))


def test_history_keys_samples_reads_back_every_row(written):
    keys = ["loss", "train.opt.lr"]
    rows = written.history(keys=keys, samples=10 * N, pandas=False)
    _rows_equal(rows, [{"_step": i, "loss": _row(i)["loss"], "train.opt.lr": 0.1 * i} for i in range(N)])
    even = written.history(keys=["even.x"], samples=10 * N, pandas=False)
    _rows_equal(even, [{"_step": i, "even.x": i} for i in range(0, N, 2)])


def test_scan_history_reads_back_every_row(written):
    rows = list(written.scan_history(keys=["loss", "train.acc"]))
    _rows_equal(rows, [{"_step": i, "loss": _row(i)["loss"], "train.acc": i / N} for i in range(N)])


def test_client_history_reads_back_floats(written, server):
    async def read() -> list[dict[str, Any]]:
        async with _client(server) as c:
            out: list[dict[str, Any]] = []
            async for _run, rows in c.history(f"{written.entity}/{written.project}", keys=["loss", "train.acc"],
                                              full=True):
                out += rows
            return out

    rows = asyncio.run(read())
    assert all(isinstance(r["loss"], float) for r in rows)  # "NaN"/"Infinity" back into floats
    _rows_equal(rows, [{"_step": i, "loss": _row(i)["loss"], "train.acc": i / N} for i in range(N)])


def test_runtime_and_timestamp_are_filled_in(written):
    rows = written.history(keys=["_runtime", "_timestamp"], samples=10, pandas=False)
    assert rows and all(r["_runtime"] >= 0 and r["_timestamp"] > 1.7e9 for r in rows)


def test_nonzero_exit_code_is_failed(wb, server, viewer_entity, project_name):
    run_id = _write(server, f"{viewer_entity}/{project_name}", 3, [{"x": 1}])
    assert wb.Api().run(f"{viewer_entity}/{project_name}/{run_id}").state == "failed"


def test_a_new_client_rerunning_the_same_log_adds_nothing_and_more_rows_continue(wb, server, viewer_entity,
                                                                                  project_name):
    path = f"{viewer_entity}/{project_name}"
    rows = [{"_step": i, "x": i} for i in range(1500)]

    async def first() -> str:
        async with _client(server) as c:
            run = await c.create_run(path, name="resume01")
            assert await c.log(run, rows, batch=400) == 1500
            return str(run.name)

    async def again() -> tuple[int, int, int]:
        async with _client(server) as c:  # a new process: nothing kept but what the server holds
            same = await c.log(f"{path}/resume01", rows)
            more = await c.log(f"{path}/resume01", [{"_step": i, "x": i} for i in range(1000, 2000)])
            unnumbered = await c.log(f"{path}/resume01", [{"x": 2000}, {"x": 2001}])
            return same, more, unnumbered

    run_id = asyncio.run(first())
    assert asyncio.run(again()) == (1500, 2000, 2002)
    rows_back = list(wb.Api().run(f"{path}/{run_id}").scan_history(keys=["x"]))
    assert [r["_step"] for r in rows_back] == list(range(2002))
    assert [r["x"] for r in rows_back] == list(range(2002))


def test_create_run_refuses_a_taken_id_unless_resume(server, viewer_entity, project_name):
    path = f"{viewer_entity}/{project_name}"

    async def go() -> None:
        async with _client(server) as c:
            run = await c.create_run(path, name="taken01", config={"a": 1})
            with pytest.raises(RunExistsError, match="resume=True"):
                await c.create_run(path, name="taken01", config={"a": 2})
            again = await c.create_run(path, name="taken01", config={"a": 3}, resume=True)
            assert again.id == run.id and again.config["a"] == 1  # returned unchanged
            fresh = await c.create_run(path)
            assert len(fresh.name or "") == 8 and (fresh.name or "").isalnum() and fresh.name == fresh.name.lower()

    asyncio.run(go())


def test_sdk_resume_must_continues_a_run_we_created(wb, server, viewer_entity, project_name):
    path = f"{viewer_entity}/{project_name}"

    async def create() -> None:
        async with _client(server) as c:
            run = await c.create_run(path, name="sdkres01", config={"lr": 0.5})
            await c.log(run, [{"loss": 1.0 / (i + 1)} for i in range(5)])

    asyncio.run(create())
    run = wb.init(entity=viewer_entity, project=project_name, id="sdkres01", resume="must")
    assert run.config["lr"] == 0.5
    run.log({"loss": 0.01})
    run.finish()
    back = wb.Api().run(f"{path}/sdkres01")
    assert [r["_step"] for r in back.scan_history(keys=["loss"])] == list(range(6))
    assert back.state == "finished"
