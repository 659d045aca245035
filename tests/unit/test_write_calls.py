"""The write path's requests, checked on a fake transport: what create_run, log, set_summary and
finish send (file_stream bodies, offsets, steps, NaN as the SDK writes it), and bad input refused
before anything is written."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import orjson
import pytest

from tests.helpers import Call, FakeTransport
from wandb_gql import Client, SyncClient
from wandb_gql.client.write import RunExistsError
from wandb_gql.errors import NotFoundError, UsageError
from wandb_gql.transport import IDEMPOTENT

PATH = "ent/proj/r1"
STREAM = "/files/ent/proj/r1/file_stream"


class FakeRun:
    """One stored run: answers RunWriteState/ProjectRun/CreateRun/UpsertBucket, appends file_stream lines."""

    def __init__(self, lines: int = 0, last_step: int | None = None, exists: bool = True) -> None:
        self.exists = exists
        self.lines: list[str] = ["{}"] * lines
        self.last_step = last_step if last_step is not None else lines - 1
        self.summary: dict[str, Any] = {"old": 1}
        self.finished: tuple[bool, Any] | None = None

    def __call__(self, call: Call) -> Any:
        v = call.variables
        if call.operation == STREAM:
            history = v.get("files", {}).get("wandb-history.jsonl")
            if history:
                offset = history["offset"]
                self.lines[offset:offset + len(history["content"])] = history["content"]
                for line in history["content"]:
                    self.last_step = max(self.last_step, json.loads(line)["_step"])
            if v.get("complete"):
                self.finished = (True, v.get("exitcode"))
            return {}
        if call.operation == "RunWriteState":
            node = {"id": "gid", "historyLineCount": len(self.lines), "createdAt": "2026-01-01T00:00:00",
                    "historyKeys": {"lastStep": self.last_step, "keys": {}} if self.lines else None,
                    "summaryMetrics": orjson.dumps(self.summary).decode()} if self.exists else None
            return {"project": {"run": node}}
        if call.operation == "ProjectRun":
            node = {"id": "gid", "name": v["name"], "historyLineCount": len(self.lines)} if self.exists else None
            return {"project": {"run": node}}
        if call.operation == "CreateRun":
            self.exists = True
            return {"upsertBucket": {"bucket": {"id": "gid", "name": v["input"]["name"]}, "inserted": True}}
        if call.operation == "UpsertBucket":
            self.summary = json.loads(v["input"]["summaryMetrics"])
            return {"upsertBucket": {"bucket": {"id": "gid", "name": "r1"}}}
        raise AssertionError(call.operation)


def run(coro_fn, store: FakeRun) -> tuple[Any, FakeTransport]:
    transport = FakeTransport(store)

    async def go() -> Any:
        async with Client(transport=transport, entity="ent") as c:
            return await coro_fn(c)

    return asyncio.run(go()), transport


def streamed(transport: FakeTransport) -> list[dict[str, Any]]:
    return [c.variables for c in transport.calls if c.operation == STREAM]


def test_log_batches_from_the_stored_line_count_with_steps_after_the_last():
    store = FakeRun(lines=10)
    count, t = run(lambda c: c.log(PATH, ({"loss": i} for i in range(25)), batch=10), store)
    assert count == 35
    bodies = streamed(t)
    assert [b["files"]["wandb-history.jsonl"]["offset"] for b in bodies] == [10, 20, 30]
    assert [len(b["files"]["wandb-history.jsonl"]["content"]) for b in bodies] == [10, 10, 5]
    rows = [json.loads(line) for b in bodies for line in b["files"]["wandb-history.jsonl"]["content"]]
    assert [r["_step"] for r in rows] == list(range(10, 35))
    assert all(r["_runtime"] > 0 and r["_timestamp"] > 1.7e9 for r in rows)
    assert all(c.policy is IDEMPOTENT for c in t.calls if c.operation == STREAM)


def test_log_sends_nan_and_infinity_as_the_sdk_does_and_nested_dicts_nested():
    store = FakeRun()
    row = {"a": float("nan"), "b": float("inf"), "c": float("-inf"), "n": {"x": {"y": 1}}, "_step": 0,
           "_runtime": 1.5, "_timestamp": 1.8e9}
    run(lambda c: c.log(PATH, [row]), store)
    line = store.lines[0]
    assert '"a":NaN' in line and '"b":Infinity' in line and '"c":-Infinity' in line
    assert json.loads(line)["n"] == {"x": {"y": 1}}
    assert json.loads(line)["_runtime"] == 1.5  # given values are kept


def test_log_skips_steps_already_stored_and_keeps_others():
    store = FakeRun(lines=5, last_step=4)
    count, t = run(lambda c: c.log(PATH, [{"_step": i, "v": i} for i in range(8)] + [{"v": 99}]), store)
    assert count == 9
    assert [json.loads(line)["_step"] for line in store.lines[5:]] == [5, 6, 7, 8]
    # nothing to write: no file_stream request at all
    _, t2 = run(lambda c: c.log(PATH, [{"_step": 3}]), store)
    assert streamed(t2) == []


@pytest.mark.parametrize("rows, message", [
    ([{"_step": -1}], "non-negative integer"),
    ([{"_step": 1.5}], "non-negative integer"),
    ([{"_step": True}], "non-negative integer"),
    ([{"ok": 1}, ["not", "a", "row"]], "not a mapping"),
    ([{"when": object()}], "not JSON"),
    ([{1: 2}], "not a non-empty string"),
    ({"loss": 1}, "iterable of rows"),
    ("rows", "iterable of rows"),
])
def test_bad_rows_are_refused_before_any_write(rows, message):
    store = FakeRun()
    with pytest.raises(UsageError, match=message):
        run(lambda c: c.log(PATH, rows), store)
    assert store.lines == []


@pytest.mark.parametrize("path", ["", "a/b/c/d/e", "ent//r1", "ftp://x/y/z"])
def test_bad_run_paths_are_refused_with_nothing_sent(path):
    store = FakeRun()
    transport = FakeTransport(store)

    async def go() -> None:
        async with Client(transport=transport, entity="ent") as c:
            for call in (c.log(path, [{"x": 1}]), c.finish(path), c.set_summary(path, {"x": 1})):
                with pytest.raises(UsageError):
                    await call

    asyncio.run(go())
    assert transport.calls == []


def test_finish_sends_complete_and_exit_code_and_refuses_non_integers():
    store = FakeRun()
    _, t = run(lambda c: c.finish(PATH, 3), store)
    assert store.finished == (True, 3) and streamed(t) == [{"complete": True, "exitcode": 3}]
    for bad in ("0", 1.0, None, True):
        with pytest.raises(UsageError, match="exit_code"):
            run(lambda c: c.finish(PATH, bad), FakeRun())


def test_set_summary_merges_or_replaces_through_upsert_bucket():
    store = FakeRun()
    run(lambda c: c.set_summary(PATH, {"loss": float("nan")}), store)
    assert set(store.summary) == {"old", "loss"}
    _, t = run(lambda c: c.set_summary(PATH, {"acc": 1}, replace=True), store)
    assert store.summary == {"acc": 1}
    assert t.of("UpsertBucket") == [{"input": {"id": "gid", "summaryMetrics": '{"acc":1}'}}]
    with pytest.raises(UsageError, match="not JSON"):
        run(lambda c: c.set_summary(PATH, {"x": {1, 2}}), store)
    with pytest.raises(UsageError, match="mapping"):
        run(lambda c: c.set_summary(PATH, [("x", 1)]), store)


def test_create_run_sends_one_upsert_with_wrapped_config_and_refuses_taken_ids():
    store = FakeRun(exists=False)
    created, t = run(lambda c: c.create_run("ent/proj", name="r1", config={"lr": 0.1}, tags=["a"],
                                            group="g", job_type="train", notes="n", display_name="d"), store)
    assert created.name == "r1"
    (sent,) = t.of("CreateRun")
    fields = sent["input"]
    assert json.loads(fields.pop("config")) == {"lr": {"value": 0.1}, "_wandb": {"value": {"t": {}}}}
    assert fields == {"entityName": "ent", "modelName": "proj", "name": "r1", "tags": ["a"], "groupName": "g",
                      "jobType": "train", "notes": "n", "displayName": "d"}
    with pytest.raises(RunExistsError, match="resume=True"):
        run(lambda c: c.create_run("ent/proj", name="r1"), store)
    again, t = run(lambda c: c.create_run("ent/proj", name="r1", resume=True), store)
    assert again.name == "r1" and t.of("CreateRun") == []


@pytest.mark.parametrize("kwargs, message", [
    ({"name": "a/b"}, "run id"), ({"name": ""}, "run id"), ({"name": "has space"}, "run id"),
    ({"tags": "baseline"}, "tags"), ({"tags": ["ok", 3]}, "tags"), ({"config": [1, 2]}, "config"),
    ({"config": {"t": object()}}, "not JSON"), ({"notes": 5}, "notes"),
])
def test_create_run_refuses_bad_input_before_sending(kwargs, message):
    store = FakeRun(exists=False)
    transport = FakeTransport(store)

    async def go() -> None:
        async with Client(transport=transport, entity="ent") as c:
            await c.create_run("ent/proj", **kwargs)

    with pytest.raises(UsageError, match=message):
        asyncio.run(go())
    assert transport.calls == []


def test_a_missing_run_is_not_found_with_a_hint():
    with pytest.raises(NotFoundError, match="create_run"):
        run(lambda c: c.log(PATH, [{"x": 1}]), FakeRun(exists=False))


def test_sync_twins():
    store = FakeRun(exists=False)
    with SyncClient(transport=FakeTransport(store), entity="ent") as c:
        created = c.create_run("ent/proj", name="r1")
        assert c.log(created, ({"x": i} for i in range(3))) == 3
        c.set_summary(created, {"x": 2})
        c.finish(created)
    assert store.finished == (True, 0) and store.summary == {"old": 1, "x": 2}


def test_a_bad_row_late_in_a_list_stops_everything_and_in_a_stream_keeps_earlier_batches():
    rows = [{"_step": i} for i in range(1500)] + [{"_step": "1501"}]
    store = FakeRun()
    with pytest.raises(UsageError, match="row 1500"):
        run(lambda c: c.log(PATH, rows, batch=1000), store)
    assert store.lines == []  # a list is checked whole first
    with pytest.raises(UsageError, match="row 1500"):
        run(lambda c: c.log(PATH, iter(rows), batch=1000), store)
    assert len(store.lines) == 1000  # an iterator: the batch before the bad row is written
    count, _ = run(lambda c: c.log(PATH, rows[:1500], batch=1000), store)
    assert count == 1500 and [json.loads(line)["_step"] for line in store.lines] == list(range(1500))


@pytest.mark.parametrize("as_list", [True, False])
def test_wide_rows_split_requests_by_bytes_too(monkeypatch, as_list):
    from wandb_gql.client import write

    monkeypatch.setattr(write, "MAX_REQUEST_BYTES", 2000)
    rows = [{"_step": i, "blob": "x" * 450} for i in range(20)]  # ~500 bytes a line
    store = FakeRun()
    count, t = run(lambda c: c.log(PATH, rows if as_list else iter(rows), batch=1000), store)
    sizes = [len(b["files"]["wandb-history.jsonl"]["content"]) for b in streamed(t)]
    assert count == 20 and sum(sizes) == 20 and max(sizes) <= 5 and len(sizes) >= 4
    assert [json.loads(line)["_step"] for line in store.lines] == list(range(20))
