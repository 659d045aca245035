"""SyncClient mirrors every public Client method, and its listings stream."""

from __future__ import annotations

import asyncio
import inspect

import pytest

from tests.helpers import FakeTransport, FakeWandb, run_node
from wandb_gql import Client, SyncClient


def public(cls: type) -> dict[str, inspect.Signature]:
    return {name: inspect.signature(member) for name, member in inspect.getmembers(cls, inspect.isfunction)
            if not name.startswith("_") or name == "__init__"}


def test_every_public_method_has_a_twin_with_the_same_parameters():
    async_side, sync_side = public(Client), public(SyncClient)
    missing = set(async_side) - set(sync_side)
    assert not missing, f"SyncClient lacks {sorted(missing)}"
    for name, sig in async_side.items():
        twin = sync_side[name]
        assert list(twin.parameters.values()) == list(sig.parameters.values()), name
        expected = str(sig.return_annotation).replace("AsyncIterator[", "Iterator[")
        if name != "__init__":
            assert str(twin.return_annotation) == expected, name
    assert inspect.isasyncgenfunction(Client.runs) and not inspect.isgeneratorfunction(SyncClient.runs)


def fake(n: int) -> FakeTransport:
    return FakeTransport(FakeWandb(projects={("demo", "p"): [run_node(f"r{i:04d}") for i in range(n)]}))


def test_runs_stream_lazily_and_stop_cleanly():
    transport = fake(1000)
    with SyncClient(transport=transport) as c:
        stream = c.runs("demo/p", per_page=100)
        assert transport.calls == []  # nothing is asked before the first item is read
        first = next(stream)
        assert first.name == "r0000" and 1 <= len(transport.calls) <= 2
        stream.close()
        asked = len(transport.calls)
        assert [r.name for r in c.runs("demo/p", limit=150, per_page=100)][-1] == "r0149"
        assert len(transport.calls) == asked + 2
        assert len(list(c.runs("demo/p"))) == 1000
        assert list(c.run_ids("demo/p", limit=2)) == ["r0000", "r0001"]
        assert c.count_runs("demo/p") == 1000 and c.viewer().username == "ada"
        assert [p.name for p in c.projects("demo")] == ["p"]


def test_works_inside_a_running_event_loop():
    async def cell() -> int:
        with SyncClient(transport=fake(5)) as c:
            return sum(1 for _ in c.runs("demo/p"))

    assert asyncio.run(cell()) == 5


def test_a_closed_client_says_so():
    c = SyncClient(transport=fake(1))
    c.close()
    with pytest.raises(RuntimeError, match="closed"):
        c.count_runs("demo/p")
