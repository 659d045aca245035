"""`wbgql artifacts ...` and `runs list --uses/--logged` against the demo server, the way users
type them: filters, --fields, every format, a tree or a graph, and the mistakes (a missing
name, a reference without a version)."""

from __future__ import annotations

import csv
import io
import json

from .conftest import parse_jsonl, requests_seen


def test_list_newest_first_with_type_and_fields(wbgql, server):
    out = wbgql.remote(server, "artifacts", "list", "demo/vision", "-f", "json")
    assert out.exit_code == 0, out
    rows = json.loads(out.stdout)
    assert len(rows) == 46
    stamps = [r["created_at"] for r in rows]
    assert stamps == sorted(stamps, reverse=True)
    models = parse_jsonl(wbgql.remote(server, "artifacts", "list", "demo/vision", "--type", "model",
                                      "-f", "jsonl", "--fields", "collection,version,aliases").stdout)
    assert len(models) == 40 and set(models[0]) == {"collection", "version", "aliases"}
    assert {"collection": "resnet-checkpoints", "version": "v31", "aliases": ["best"]} in models
    newest = json.loads(wbgql.remote(server, "artifacts", "list", "demo/vision", "-n", "3", "-f", "json").stdout)
    assert newest == rows[:3]  # --limit/-n as in runs list: the newest N


def test_list_a_collection_as_csv_and_table(wbgql, server):
    out = wbgql.remote(server, "artifacts", "list", "demo/vision", "--collection", "features", "-f", "csv")
    rows = list(csv.DictReader(io.StringIO(out.stdout)))
    assert [r["version"] for r in rows] == ["v2", "v1", "v0"]
    assert rows[1]["created_by"] == "vi000300" and rows[1]["used_by_count"] == "10"
    table = wbgql.remote(server, "artifacts", "list", "demo/rl")
    assert table.exit_code == 0 and table.stdout.split("\n")[0].split() == [
        "collection", "version", "aliases", "size", "created_at", "created_by", "used_by_count"]


def test_unknown_field_is_refused_before_sending(wbgql, server):
    before = requests_seen(server)
    out = wbgql.remote(server, "artifacts", "list", "demo/vision", "--fields", "version,bytes")
    assert out.exit_code == 2 and "bytes" in out.stderr and "used_by_count" in out.stderr
    assert requests_seen(server) == before


def test_lineage_tree_and_graph(wbgql, server):
    tree = wbgql.remote(server, "artifacts", "lineage", "demo/vision/features:v1", "--depth", "2")
    assert tree.exit_code == 0, tree
    lines = tree.stdout.splitlines()
    assert lines[0].startswith("demo/vision/features:v1")
    assert any("logged by run vi000300" in line for line in lines)
    assert any("used imagenet-subset:v2" in line for line in lines)
    assert any("logged by run vi000002" in line for line in lines)
    assert any("used by 10 run(s)" in line for line in lines)
    graph = json.loads(wbgql.remote(server, "artifacts", "lineage", "demo/vision/features:v1", "--depth", "2",
                                    "-f", "json").stdout)
    kinds = {(e["source"], e["target"], e["kind"]) for e in graph["edges"]}
    assert ("demo/vision/vi000300", "demo/vision/features:v1", "logged") in kinds
    assert ("demo/vision/features:v1", "demo/vision/vi000305", "used") in kinds
    assert ("demo/vision/imagenet-subset:v2", "demo/vision/vi000300", "used") in kinds
    assert ("demo/vision/vi000002", "demo/vision/imagenet-subset:v2", "logged") in kinds


def test_missing_artifact_is_one_error_naming_close_names(wbgql, server):
    out = wbgql.remote(server, "artifacts", "lineage", "demo/vision/featurs:v1")
    assert out.exit_code == 1 and out.stdout == ""
    assert out.stderr.splitlines()[0] == "error: artifact demo/vision/featurs:v1 not found"
    assert "features:v1" in out.stderr


def test_ref_without_version_is_exit_2_nothing_sent(wbgql, server):
    before = requests_seen(server)
    out = wbgql.remote(server, "artifacts", "lineage", "demo/vision/features")
    assert out.exit_code == 2 and "features:v0" in out.stderr
    assert requests_seen(server) == before


def test_runs_list_uses_and_logged_combined_with_where(wbgql, server):
    def names(*args: str) -> list[str]:
        out = wbgql.remote(server, "runs", "list", "demo/vision", "-f", "json", "--fields", "name,state", *args)
        assert out.exit_code == 0, out
        return [r["name"] for r in json.loads(out.stdout)]

    used = names("--uses", "features:v1")
    assert sorted(used) == [f"vi000{i}" for i in range(301, 311)]
    finished = names("--uses", "features:v1", "--where", "state = finished")
    assert set(finished) < set(used) and finished
    assert names("--logged", "features:v1") == ["vi000300"]
    assert names("--logged", "features:v1", "--uses", "features:v1") == []  # both: the runs doing both


def test_runs_list_uses_without_version_is_exit_2_nothing_sent(wbgql, server):
    before = requests_seen(server)
    out = wbgql.remote(server, "runs", "list", "demo/vision", "--uses", "features")
    assert out.exit_code == 2 and "COLLECTION:vN" in out.stderr
    assert requests_seen(server) == before
    out = wbgql.remote(server, "runs", "list", "demo/vision", "--uses", "features:v1", "--deleted")
    assert out.exit_code == 2 and requests_seen(server) == before


def test_usage_by_type_and_collection_matches_the_versions(wbgql, server):
    versions = json.loads(wbgql.remote(server, "artifacts", "list", "demo/vision", "-f", "json").stdout)
    rows = json.loads(wbgql.remote(server, "projects", "usage", "demo/vision", "-f", "json").stdout)
    by = {(r["type"], r["collection"]): (r["version_count"], r["size"]) for r in rows}
    checkpoints = [v["size"] for v in versions if v["collection"] == "resnet-checkpoints"]
    assert by[("model", "resnet-checkpoints")] == (40, sum(checkpoints))
    assert by[("dataset", "all collections")][0] == 6
    assert by[("all types", "all collections")] == (46, sum(v["size"] for v in versions))
    assert rows[-1]["type"] == "all types"
    some = wbgql.remote(server, "projects", "usage", "demo/vision", "--fields", "collection,size", "-f", "csv")
    assert some.stdout.splitlines()[0] == "collection,size"
    assert "counted once per version" in " ".join(wbgql("projects", "usage", "--help").stdout.split())


def test_orphans_after_runs_and_versions_are_deleted(wbgql, mutable_server):
    from tests.conftest import Caller

    out = wbgql.remote(mutable_server, "artifacts", "orphans", "demo/rl", "-f", "json")
    assert out.exit_code == 0 and json.loads(out.stdout) == []
    versions = json.loads(wbgql.remote(mutable_server, "artifacts", "list", "demo/rl", "-f", "json").stdout)
    v0 = next(v for v in versions if v["version"] == "v0")
    deleted = wbgql.remote(mutable_server, "runs", "delete", "demo/rl", "--id", v0["created_by"], "--yes")
    assert deleted.exit_code == 0, deleted
    found = json.loads(wbgql.remote(mutable_server, "artifacts", "orphans", "demo/rl", "-f", "json").stdout)
    assert found == [{"kind": "version", "collection": "policy", "version": "v0", "created_by": v0["created_by"],
                      "reason": "its producing run is deleted"}]
    api = Caller(mutable_server)
    ids = api.ok('{ project(name: "rl", entityName: "demo") { artifactCollection(name: "policy") {'
                 ' artifacts { edges { node { id } } } } } }')["project"]["artifactCollection"]["artifacts"]["edges"]
    for edge in ids:
        api.ok("mutation($id: ID!) { deleteArtifact(input: {artifactID: $id, deleteAliases: true}) { artifact { id } } }",
               {"id": edge["node"]["id"]})
    found = json.loads(wbgql.remote(mutable_server, "artifacts", "orphans", "demo/rl", "-f", "json").stdout)
    assert found == [{"kind": "collection", "collection": "policy", "version": None, "created_by": None,
                      "reason": "no versions left"}]


def test_runs_list_uses_a_version_of_more_than_a_thousand_runs(wbgql, server):
    """imagenet-subset's first version is used by more runs than one `name $in` may hold: the
    batches come back as one listing, newest first as `runs list` orders."""
    versions = parse_jsonl(wbgql.remote(server, "artifacts", "list", "demo/vision", "--collection",
                                        "imagenet-subset", "-f", "jsonl").stdout)
    big = max(versions, key=lambda v: v["used_by_count"])
    assert big["used_by_count"] > 1000
    ref = f"imagenet-subset:{big['version']}"
    out = wbgql.remote(server, "runs", "list", "demo/vision", "--uses", ref, "--all", "-f", "jsonl",
                       "--fields", "name")
    assert out.exit_code == 0, out
    rows = parse_jsonl(out.stdout)
    assert set(rows[0]) == {"name"}  # the merge's created_at is fetched, not shown
    every = parse_jsonl(wbgql.remote(server, "runs", "list", "demo/vision", "--all", "-f", "jsonl",
                                     "--fields", "name,created_at").stdout)
    from wandb_gql import SyncClient

    with SyncClient(server.base_url, server.api_key) as c:
        users = set(c.runs_using(f"demo/vision/{ref}"))
    assert len(users) == big["used_by_count"]
    assert [r["name"] for r in rows] == [r["name"] for r in every if r["name"] in users]
    capped = parse_jsonl(wbgql.remote(server, "runs", "list", "demo/vision", "--uses", ref, "-n", "5",
                                      "-f", "jsonl", "--fields", "name").stdout)
    assert capped == rows[:5]
    finished = parse_jsonl(wbgql.remote(server, "runs", "list", "demo/vision", "--uses", ref, "--all",
                                        "--where", "state = finished", "-f", "jsonl", "--fields", "name").stdout)
    assert finished and {r["name"] for r in finished} < users


def test_lineage_lists_upstream_consumers_with_a_more_marker(wbgql, server):
    tree = wbgql.remote(server, "artifacts", "lineage", "demo/vision/features:v1", "--depth", "2",
                        "--consumers", "2")
    assert tree.exit_code == 0, tree
    lines = [line.strip() for line in tree.stdout.splitlines()]
    assert "used by 10 run(s): " in tree.stdout and any(line.endswith("… 8 more") for line in lines)
    upstream = [line for line in lines if line.startswith("used by") and "vi000300" in line]
    assert upstream and "more" in upstream[0]  # imagenet-subset:v2: the followed run first, the rest counted
    graph = json.loads(wbgql.remote(server, "artifacts", "lineage", "demo/vision/features:v1", "--depth", "2",
                                    "--consumers", "2", "-f", "json").stdout)
    imagenet = next(n for n in graph["nodes"] if n["id"] == "demo/vision/imagenet-subset:v2")
    assert imagenet["used_by_omitted"] == imagenet["used_by_count"] - 2 > 1000
    assert sum(e["source"] == imagenet["id"] and e["kind"] == "used" for e in graph["edges"]) == 2
    bad = wbgql.remote(server, "artifacts", "lineage", "demo/vision/features:v1", "--consumers", "-1")
    assert bad.exit_code == 2


def test_every_artifact_listing_speaks_the_one_vocabulary(wbgql, server):
    for command in (("artifacts", "list"), ("artifacts", "lineage"), ("artifacts", "orphans"), ("projects", "usage")):
        text = wbgql(*command, "--help").stdout
        assert "Examples:" in text and "A,B" not in text, command
    listing = wbgql("artifacts", "list", "--help").stdout
    assert "COLLECTION:VERSION" in wbgql("artifacts", "lineage", "--help").stdout
    assert "--uses COLLECTION:VERSION" in " ".join(wbgql("runs", "list", "--help").stdout.split())
    assert "used_by_count" in listing and "config.lr" not in listing
    out = wbgql.remote(server, "artifacts", "orphans", "demo/vision", "--fields", "collection,reason", "-f", "csv")
    assert out.exit_code == 0 and out.stdout.splitlines()[0] == "collection,reason"
    bad = wbgql.remote(server, "artifacts", "orphans", "demo/vision", "--fields", "bytes")
    assert bad.exit_code == 2 and "created_by" in bad.stderr
    edges = list(csv.DictReader(io.StringIO(wbgql.remote(
        server, "artifacts", "lineage", "demo/vision/features:v1", "-f", "csv", "--consumers", "2").stdout)))
    assert {"source": "demo/vision/vi000300", "kind": "logged", "target": "demo/vision/features:v1"} in edges
    assert len([e for e in edges if e["kind"] == "used" and e["source"] == "demo/vision/features:v1"]) == 2
