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
from wandb_gql.errors import UsageError

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


@pytest.mark.parametrize("state", ["crashed", "killed", "running"])
def test_set_state_reads_back_through_wandb_api(wb, server, viewer_entity, project_name, state):
    path = f"{viewer_entity}/{project_name}"

    async def go() -> str:
        async with _client(server) as c:
            run = await c.create_run(path)
            await c.log(run, [{"x": 1}])
            await c.finish(run)
            await c.set_state(run, state)
            with pytest.raises(UsageError, match="no run has the state 'done'"):
                await c.set_state(run, "done")
            return str(run.name)

    run_id = asyncio.run(go())
    assert wb.Api().run(f"{path}/{run_id}").state == state


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


# -- crashes and lost answers (no SDK needed) ---------------------------------------------------
KILL_ROWS = 20_000
_LOGGER = """
import asyncio, sys, time
from wandb_gql import Client
base, key, path, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])

def rows():  # a pipeline producing rows at its own pace
    for i in range(n):
        if i % 1000 == 0:
            time.sleep(0.05)
        yield {"_step": i, "x": i, "y": {"z": float(i)}}

async def main():
    async with Client(base, key) as c:
        await c.log(path, rows(), batch=1000)

asyncio.run(main())
"""


def _line_count(api: Any, path: str) -> int:
    entity, project, name = path.split("/")
    data = api.ok("query($e: String!, $p: String!, $n: String!) { project(name: $p, entityName: $e) "
                  "{ run(name: $n) { historyLineCount } } }", {"e": entity, "p": project, "n": name})
    return int(data["project"]["run"]["historyLineCount"])


def _all_steps(server: Any, path: str) -> list[int]:
    async def read() -> list[int]:
        async with _client(server) as c:
            steps: list[int] = []
            async for _run, rows in c.history(path.rsplit("/", 1)[0], keys=None, full=True):
                steps += [r["_step"] for r in rows]
            return steps

    return asyncio.run(read())


def _created(server: Any, path: str) -> str:
    async def go() -> str:
        async with _client(server) as c:
            run = await c.create_run(path)
            return f"{run.entity}/{run.project}/{run.name}"

    return asyncio.run(go())


def test_a_log_killed_midway_and_run_again_has_every_row_once(server, api, viewer_entity, project_name, tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    path = _created(server, f"{viewer_entity}/{project_name}")
    args = [sys.executable, "-c", _LOGGER, server.base_url, server.api_key, path, str(KILL_ROWS)]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None and _line_count(api, path) < 3000:
        time.sleep(0.01)
    assert proc.poll() is None, proc.communicate()
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    cut = _line_count(api, path)
    assert 3000 <= cut < KILL_ROWS  # killed midway

    async def again() -> int:
        async with _client(server) as c:
            return await c.log(path, ({"_step": i, "x": i, "y": {"z": float(i)}} for i in range(KILL_ROWS)))

    assert asyncio.run(again()) == KILL_ROWS
    assert _line_count(api, path) == KILL_ROWS
    assert _all_steps(server, path) == list(range(KILL_ROWS))  # no duplicate, no gap


def test_a_lost_answer_or_a_5xx_is_retried_at_the_same_offset(server, recorder, viewer_entity, project_name):
    path = _created(server, f"{viewer_entity}/{project_name}")
    streams = [0]

    def file_stream(body: dict[str, Any]) -> bool:
        return "files" in body

    def first_stream_fails(body: dict[str, Any]) -> Any:
        if file_stream(body):
            streams[0] += 1
            return 503 if streams[0] == 1 else None
        return None

    recorder.drop_after = lambda body: file_stream(body) and streams[0] == 3  # third request's answer lost
    recorder.fail_when = first_stream_fails

    async def go() -> int:
        async with Client(recorder.base_url, server.api_key) as c:
            return await c.log(path, [{"_step": i, "v": i} for i in range(2500)], batch=1000)

    assert asyncio.run(go()) == 2500
    offsets = [r["files"]["wandb-history.jsonl"]["offset"] for r in recorder.requests if file_stream(r)]
    assert offsets == [0, 0, 1000, 1000, 2000]  # the 503 and the lost answer each sent again, same offset
    assert _all_steps(server, path) == list(range(2500))


def test_a_refused_file_stream_is_one_line_without_the_key(server, recorder, viewer_entity, project_name):
    from wandb_gql.errors import HTTPStatusError

    path = _created(server, f"{viewer_entity}/{project_name}")
    recorder.fail_when = lambda body: (400, ["offset out of range"]) if "files" in body else None

    async def go() -> None:
        async with Client(recorder.base_url, server.api_key) as c:
            await c.log(path, [{"v": 1}])

    with pytest.raises(HTTPStatusError) as caught:
        asyncio.run(go())
    message = str(caught.value)
    assert "offset out of range" in message and "\n" not in message and server.api_key not in message
    assert sum(1 for r in recorder.requests if "files" in r) == 1  # a 400 is not asked again


def test_recreate_run_writes_a_backups_history_with_non_finite_values(wb, server, viewer_entity, project_name):
    """A ledger backup holds rows as W&B serves them (dotted keys, "NaN"/"Infinity" strings):
    re-created, they read back through wandb.Api as the original run's did, and again adds nothing."""
    history = [{"_step": i, "_runtime": float(i), "_timestamp": 1.8e9 + i, "train.loss": v}
               for i, v in enumerate([0.5, "NaN", "Infinity", "-Infinity", 0.25])]
    backup = {"name": "purged01", "state": "crashed", "tags": ["kept"], "config": {"lr": 0.1},
              "summary": {"train.loss": 0.25}, "history": history}
    path = f"{viewer_entity}/{project_name}"

    async def recreate() -> list[Any]:
        async with _client(server) as c:
            return [await c.recreate_run(path, backup), await c.recreate_run(path, backup)]

    outcomes = asyncio.run(recreate())
    assert [(o.status, o.error) for o in outcomes] == [("restored", None), ("restored", None)]
    back = wb.Api().run(f"{path}/purged01")
    assert back.state == "crashed" and back.config == {"lr": 0.1} and dict(back.summary) == {"train.loss": 0.25}
    assert back.history_keys["keys"]["train.loss"]["typeCounts"] == [{"type": "number", "count": 5}]
    rows = back.history(keys=["train.loss"], samples=100, pandas=False)
    _rows_equal(rows, [{"_step": i, "train.loss": float(r["train.loss"])} for i, r in enumerate(history)])


def test_file_stream_errors_map_like_graphql_ones(server, viewer_entity, project_name):
    from wandb_gql.errors import AuthError, NotFoundError

    body = {"files": {"wandb-history.jsonl": {"offset": 0, "content": ['{"_step":0}']}}}
    stream = f"/files/{viewer_entity}/{project_name}/nosuchrun/file_stream"

    async def go(key: str) -> None:
        async with Client(server.base_url, key) as c:
            await c.transport.post_json(stream, body)

    with pytest.raises(NotFoundError, match="not found"):
        asyncio.run(go(server.api_key))
    wrong = "local-" + "x" * 40
    with pytest.raises(AuthError) as caught:
        asyncio.run(go(wrong))
    assert wrong not in str(caught.value) and server.api_key not in str(caught.value)
