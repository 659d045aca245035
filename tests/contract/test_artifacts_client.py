"""The artifact read side of the client against the demo seed: listing with filters, one
version by version or alias, lineage up and down, the runs that used or logged a version, and
the errors a user meets (a missing name with close names, a ref that names no version)."""

from __future__ import annotations

import pytest

from wandb_gql import Client, NotFoundError, SyncClient, UsageError


def client(server, **kw) -> Client:
    return Client(server.base_url, server.api_key, **kw)


async def test_every_version_is_listed_once_with_filters(server):
    async with client(server) as c:
        every = [a async for a in c.artifacts("demo/vision")]
        models = [a async for a in c.artifacts("demo/vision", type="model")]
        features = [a async for a in c.artifacts("demo/vision", collection="features")]
        some = [a async for a in c.artifacts("demo/vision", limit=5)]
    assert len(every) == 3 + 40 + 3 and len({a.path for a in every}) == len(every)
    assert len(models) == 40 and {a.collection for a in models} == {"resnet-checkpoints"}
    assert [a.version for a in features] == ["v2", "v1", "v0"]  # newest first
    assert len(some) == 5
    best = next(a for a in models if "best" in a.aliases)
    assert best.version == "v31" and best.type == "model" and best.size > 0 and best.file_count == 2
    assert best.created_by and best.state == "COMMITTED" and best.digest
    assert set(best.to_dict()) >= {"collection", "version", "aliases", "size", "created_by", "used_by_count"}


async def test_a_page_smaller_than_a_collection_is_followed(server, recorder):
    async with Client(recorder.base_url, server.api_key) as c:
        models = [a async for a in c.artifacts("demo/vision", collection="resnet-checkpoints", limit=40)]
    assert len(models) == 40
    assert set(recorder.ops()) == {"ArtifactCollectionVersions"}  # a named collection needs no listing


async def test_a_version_by_alias_and_by_index_is_the_same(server):
    async with client(server) as c:
        by_alias = await c.artifact("demo/vision/resnet-checkpoints:best")
        by_index = await c.artifact("demo/vision/resnet-checkpoints:v31")
    assert by_alias.id == by_index.id and by_alias.name == "resnet-checkpoints:v31"


async def test_lineage_of_features_v1_goes_up_to_imagenet(server):
    async with client(server) as c:
        one = await c.lineage("demo/vision/features:v1")
        two = await c.lineage("demo/vision/features:v1", depth=2)
        users = await c.runs_using("demo/vision/features:v1")
        loggers = await c.runs_logging("demo/vision/features:v1")
    assert one.created_by == "vi000300" == loggers[0] and len(loggers) == 1
    assert one.used_by == users and len(users) == 10 and "vi000301" in users
    assert [u.artifact.name for u in one.upstream] == ["imagenet-subset:v2"]
    assert one.upstream[0].used_by[0] == "vi000300" and one.upstream[0].upstream == []
    assert two.upstream[0].created_by == "vi000002"
    graph = two.graph()
    ids = {n["id"] for n in graph["nodes"]}
    assert {"demo/vision/features:v1", "demo/vision/imagenet-subset:v2", "demo/vision/vi000300"} <= ids
    assert {"source": "demo/vision/imagenet-subset:v2", "target": "demo/vision/vi000300", "kind": "used"} in graph["edges"]
    assert {"source": "demo/vision/vi000002", "target": "demo/vision/imagenet-subset:v2", "kind": "logged"} in graph["edges"]


async def test_a_missing_artifact_names_close_names(server):
    async with client(server) as c:
        with pytest.raises(NotFoundError, match="features:v1"):
            await c.artifact("demo/vision/featurez:v1")
        with pytest.raises(NotFoundError, match="not found") as info:
            await c.artifact("demo/vision/features:v9")
        with pytest.raises(NotFoundError, match="did you mean demo/vision"):
            await c.artifact("demo/visoin/features:v1")
    assert "features:v2" in str(info.value)


async def test_a_ref_without_a_version_is_refused_before_sending(server, recorder):
    async with Client(recorder.base_url, server.api_key) as c:
        for bad in ("demo/vision/features", "features:v1", "demo/vision/"):
            with pytest.raises(UsageError):
                await c.artifact(bad)
    assert recorder.requests == []


def test_sync_twins(server):
    with SyncClient(server.base_url, server.api_key) as c:
        assert len(list(c.artifacts("demo/rl"))) == 5
        assert c.lineage("demo/rl/policy:best").artifact.version == "v3"
        assert c.runs_logging("demo/rl/policy:v0") == [c.artifact("demo/rl/policy:v0").created_by]


async def test_every_version_comes_newest_first_across_collections(server):
    async with client(server) as c:
        every = [a async for a in c.artifacts("demo/vision")]
        first = [a async for a in c.artifacts("demo/vision", limit=3)]
        datasets = [a async for a in c.artifacts("demo/vision", type="dataset")]
    keys = [(a.created_at, a.collection, int(a.version[1:])) for a in every]
    assert keys == sorted(keys, reverse=True)
    assert len({a.collection for a in every[:10]}) >= 1 and first == every[:3]
    assert datasets == [a for a in every if a.type == "dataset"]


async def test_merge_streams_hold_one_page_per_collection():
    """The k-way merge asks each stream for one item at a time and closes them all early."""
    from contextlib import aclosing

    from wandb_gql.client._paging import merge_sorted

    pulled: list[int] = []
    closed: list[int] = []

    async def stream(i: int, values: list[int]):
        try:
            for v in values:
                pulled.append(i)
                yield v
        finally:
            closed.append(i)

    streams = [stream(0, [9, 5, 1]), stream(1, [8, 7, 2]), stream(2, [])]
    out = []
    async with aclosing(merge_sorted(streams, key=lambda v: v, reverse=True)) as merged:
        async for v in merged:
            out.append(v)
            if len(out) == 4:
                break
    assert out == [9, 8, 7, 5]
    assert len(pulled) <= 4 + 2  # one head per stream beyond what was handed out
    assert sorted(closed) == [0, 1, 2]


async def test_upstream_consumers_are_listed_up_to_the_per_node_limit(server):
    """imagenet-subset:v2 is used by every later vision run: its consumers are a count beyond
    the limit, with the run being followed always among those listed."""
    async with client(server) as c:
        few = await c.lineage("demo/vision/features:v1", depth=2, consumers=3)
        none = await c.lineage("demo/vision/features:v1", depth=2, consumers=0)
        imagenet = await c.artifact("demo/vision/imagenet-subset:v2")
        with pytest.raises(UsageError):
            await c.lineage("demo/vision/features:v1", consumers=-1)
    up = few.upstream[0]
    assert up.artifact.name == "imagenet-subset:v2" and imagenet.used_by_count > 100
    assert len(up.used_by) == 3 and up.used_by[0] == "vi000300" and len(set(up.used_by)) == 3
    assert up.used_by_count == imagenet.used_by_count and up.used_by_omitted == imagenet.used_by_count - 3
    assert len(few.used_by) == 3 and few.used_by_count == 10 and few.used_by_omitted == 7
    assert none.used_by == [] and none.used_by_omitted == 10 and none.upstream[0].used_by == ["vi000300"]
    graph = few.graph()
    node = next(n for n in graph["nodes"] if n["id"] == "demo/vision/imagenet-subset:v2")
    assert node["used_by_omitted"] == imagenet.used_by_count - 3
    used = [e for e in graph["edges"] if e["source"] == "demo/vision/imagenet-subset:v2" and e["kind"] == "used"]
    assert len(used) == 3
