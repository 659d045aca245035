"""Client.history without a server: at most `concurrency` runs in flight, a slow reader stalls
the fetching instead of piling pages up, stopping early leaves nothing running, errors surface."""

from __future__ import annotations

import asyncio

import orjson
import pytest

from tests.helpers import FakeTransport
from wandb_gql import Client, NotFoundError
from wandb_gql.models import Run

pytestmark = pytest.mark.asyncio


def runs(n: int) -> list[Run]:
    return [Run(id=f"id{i}", name=f"r{i}", entity="e", project="p") for i in range(n)]


class Slow:
    """Answers the history requests after a pause, counting how many are in flight at once and
    which runs each one asked for."""

    def __init__(self) -> None:
        self.now = self.most = self.calls = 0
        self.batches: list[tuple[str, str, list[str]]] = []

    async def __call__(self, call):
        self.calls += 1
        self.now += 1
        self.most = max(self.most, self.now)
        await asyncio.sleep(0.01)
        self.now -= 1
        rows = [{"_step": 0, "loss": "NaN"}, {"_step": 1, "loss": 1.5}]
        if call.operation == "ProjectRunsSampledHistory":
            names = orjson.loads(call.variables["filters"])["name"]["$in"]
            assert call.variables["first"] == len(names)
            self.batches.append((call.variables["entity"], call.variables["project"], names))
            return {"project": {"runs": {"edges": [{"node": {"name": n, "sampledHistory": [rows]}}
                                                   for n in reversed(names) if n != "missing"]}}}
        if call.variables["name"] == "missing":
            return {"project": {"run": None}}
        return {"project": {"run": {"sampledHistory": [rows], "historyKeys": {"lastStep": 1}}}}


async def test_at_most_concurrency_requests_in_flight():
    slow = Slow()
    async with Client(transport=FakeTransport(slow)) as c:
        got = [(run.name, rows) async for run, rows in c.history(runs(40), keys=["loss"], concurrency=3, full=True)]
    assert slow.most == 3 and slow.calls == 40
    ends = [name for name, rows in got if not rows]
    assert sorted(ends) == sorted(f"r{i}" for i in range(40))
    assert all(rows[1] == {"_step": 1, "loss": 1.5} and rows[0]["loss"] != rows[0]["loss"]  # NaN
               for _, rows in got if rows)


async def test_samples_mode_reads_runs_in_batches_per_project():
    """One request per batch of a project's runs; each run's rows, then its end mark, whatever
    order the server listed the batch in; runs of another project go in requests of their own."""
    slow = Slow()
    listed = [*runs(60), *(Run(id=f"o{i}", name=f"o{i}", entity="e", project="other") for i in range(3))]
    async with Client(transport=FakeTransport(slow)) as c:
        got = [(run.project, run.name, rows)
               async for run, rows in c.history(listed, keys=["loss"], samples=50, concurrency=2)]
    assert slow.most == 2
    assert sorted((e, p, len(names)) for e, p, names in slow.batches) == [
        ("e", "other", 3), ("e", "p", 10), ("e", "p", 10), ("e", "p", 10), ("e", "p", 10), ("e", "p", 10),
        ("e", "p", 10)]
    assert sorted(n for _, _, names in slow.batches for n in names) == sorted(r.name for r in listed)
    spec = orjson.loads(c.transport.calls[0].variables["specs"][0])
    assert spec == {"keys": ["_step", "loss"], "samples": 50}
    for project, name, _ in got:
        mine = [rows for p, n, rows in got if (p, n) == (project, name)]
        assert len(mine) == 2 and mine[0][1] == {"_step": 1, "loss": 1.5} and mine[1] == []


async def test_large_specs_make_smaller_batches():
    slow = Slow()
    async with Client(transport=FakeTransport(slow)) as c:
        async for _ in c.history(runs(30), keys=[f"k{i}" for i in range(9)], samples=5000, min_step=10,
                                 max_step=20):
            pass
    assert [len(names) for _, _, names in slow.batches] == [4] * 7 + [2]  # 200,000 values / (5,000 x 10)
    spec = orjson.loads(c.transport.calls[0].variables["specs"][0])
    assert spec["minStep"] == 10 and spec["maxStep"] == 19


async def test_a_reader_that_stops_early_leaves_nothing_running():
    slow = Slow()
    async with Client(transport=FakeTransport(slow)) as c:
        stream = c.history(runs(1000), keys=["loss"], concurrency=4)
        async for _ in stream:
            break
        await stream.aclose()
        calls = slow.calls
        await asyncio.sleep(0.05)
    assert slow.calls == calls <= 4 + 8, "fetching went on (or ran ahead) after the reader stopped"
    assert slow.now == 0


@pytest.mark.parametrize("full", [False, True])
async def test_a_run_gone_midway_raises_not_found(full):
    async with Client(transport=FakeTransport(Slow())) as c:
        with pytest.raises(NotFoundError, match="e/p/missing"):
            async for _ in c.history([*runs(3), Run(id="x", name="missing", entity="e", project="p")],
                                     keys=["loss"], full=full):
                pass


@pytest.mark.parametrize("backend", ["pandas", "polars"])
async def test_dataframes_need_their_extra_or_hold_every_row(backend):
    from wandb_gql import UsageError
    from wandb_gql.export_history import history_frame

    chunks = [(run, [{"_step": 0, "loss": "Infinity"}, {"_step": 1, "loss": 0.5}]) for run in runs(3)]
    try:
        __import__(backend)
    except ImportError:
        with pytest.raises(UsageError) as e:
            history_frame(chunks, ["loss"], backend=backend)
        assert e.value.hint == f"pip install 'wandb-gql[{backend}]'"
    else:
        frame = history_frame(chunks, ["loss"], backend=backend)
        assert frame.shape == (6, 3) and list(frame.columns) == ["name", "_step", "loss"]
        assert float("inf") in list(frame["loss"])
