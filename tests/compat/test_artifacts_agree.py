"""`wbgql runs list --uses/--logged` (resolved through the artifact's lineage, then combined with
--where), `Client.lineage` and `Client.artifacts(path, collection=...)` agree with what the real SDK
says: `wandb.Api().artifact(...).used_by()/logged_by()` and `wandb.Api().artifacts(type, name)`."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from wandb_gql import Client
from wandb_gql.cli import app, global_options_first

REFS = ["demo/vision/features:v0", "demo/vision/features:v1", "demo/vision/features:latest", "demo/nlp/corpus:v1",
        "demo/rl/policy:best"]


def cli_runs(server, project: str, *args: str) -> set[str]:
    argv = ["--base-url", server.base_url, "--api-key", server.api_key, "runs", "list", project, "--all",
            "-f", "json", "--fields", "name", *args]
    result = CliRunner().invoke(app, global_options_first(argv), catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    return {row["name"] for row in json.loads(result.stdout)}


@pytest.fixture(scope="module")
def public(wb):
    return wb.Api()


@pytest.mark.parametrize("ref", REFS)
@pytest.mark.parametrize("where", [None, "state = finished"])
def test_uses_and_logged_agree_with_the_sdk(public, server, ref, where):
    project, name = ref.rsplit("/", 1)
    artifact = public.artifact(ref)
    users = [r for r in artifact.used_by() if where is None or r.state == "finished"]
    producer = artifact.logged_by()
    logged = {producer.id} if producer is not None and (where is None or producer.state == "finished") else set()
    extra = ("--where", where) if where else ()
    assert cli_runs(server, project, "--uses", name, *extra) == {r.id for r in users}
    assert cli_runs(server, project, "--logged", name, *extra) == logged


LINEAGE = ["demo/vision/features:v0", "demo/vision/features:v1", "demo/vision/resnet-checkpoints:best",
           "demo/nlp/corpus:v1", "demo/rl/policy:best"]


@pytest.mark.parametrize("ref", LINEAGE)
async def test_lineage_agrees_with_logged_by_and_used_by(public, server, ref):
    artifact = public.artifact(ref)
    producer = artifact.logged_by()
    async with Client(server.base_url, server.api_key) as c:
        lineage = await c.lineage(ref, consumers=None)
    assert lineage.artifact.id == artifact.id and lineage.artifact.version == artifact.version
    assert lineage.created_by == (producer.id if producer is not None else None)
    assert sorted(lineage.used_by) == sorted(r.id for r in artifact.used_by())


@pytest.mark.parametrize(("type_", "name"), [("model", "demo/vision/resnet-checkpoints"),
                                             ("dataset", "demo/vision/features"), ("dataset", "demo/nlp/corpus")])
async def test_artifacts_of_a_collection_agree_with_the_sdk(public, server, type_, name):
    sdk = {a.version: sorted(a.aliases) for a in public.artifacts(type_, name)}
    path, collection = name.rsplit("/", 1)
    async with Client(server.base_url, server.api_key) as c:
        ours = {a.version: sorted(a.aliases) async for a in c.artifacts(path, collection=collection)}
    assert sdk and ours == sdk
