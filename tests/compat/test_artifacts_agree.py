"""`wbgql runs list --uses/--logged` (resolved through the artifact's lineage, then combined with
--where) agrees with what the real SDK says: `wandb.Api().artifact(...).used_by()/logged_by()`."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

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
