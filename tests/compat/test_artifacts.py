"""The real `wandb` SDK's artifact flow against the local server (issue 9): log, use, download,
read back through wandb.Api, lineage, deletion. One producing run and one consuming run are
shared by the module (the SDK's start-up is the slow part); each test asserts one behaviour.
"""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.compat

STORAGE_QUERY = """
query CompatArtifactStorage($entity: String, $project: String, $name: String!) {
  project(entityName: $entity, name: $project) {
    storageBytes
    artifact(name: $name) { id state size fileCount versionIndex aliases { alias } }
  }
}
"""


@pytest.fixture(scope="module")
def project(wb) -> str:
    import uuid

    return f"compat-art-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module", autouse=True)
def artifact_dir(wb, tmp_path_factory):
    """Artifact.get()/download() without a root write under ./artifacts: keep them out of the repo."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("WANDB_ARTIFACT_DIR", str(tmp_path_factory.mktemp("artifact-dir")))
        yield


@pytest.fixture(scope="module")
def logged(wb, project, tmp_path_factory) -> dict[str, Any]:
    """A producer run logging a dataset (v0, waited, aliases), a second version without .wait(),
    a wandb.Table, code and a chart; then a consumer run using the dataset."""
    src: Path = tmp_path_factory.mktemp("art-src")
    (src / "data.txt").write_text("hello artifacts\n")
    (src / "sub").mkdir()
    (src / "sub" / "more.bin").write_bytes(bytes(range(256)) * 4)
    (src / "train.py").write_text("print('training')\n")

    run = wb.init(project=project, job_type="producer")
    art = wb.Artifact("ds", type="dataset", metadata={"rows": 2})
    art.add_file(str(src / "data.txt"))
    art.add_dir(str(src / "sub"), name="sub")
    run.log_artifact(art, aliases=["first", "best"]).wait()
    art2 = wb.Artifact("ds", type="dataset")
    art2.add_file(str(src / "data.txt"))
    (src / "data2.txt").write_text("second version\n")
    art2.add_file(str(src / "data2.txt"))
    run.log_artifact(art2, aliases=["best"])  # no .wait(): finish() must still store it
    table = wb.Table(columns=["a", "b"], data=[[1, "x"], [2, "y"]])
    run.log({"tbl": table})
    run.log_code(str(src), include_fn=lambda p: p.endswith(".py"))
    chart_table = wb.Table(data=[[0, 1.0], [1, 0.5]], columns=["step", "loss"])
    run.log({"loss_chart": wb.plot.line(chart_table, "step", "loss", title="loss")})
    producer = run.id
    run.finish()

    consumer = wb.init(project=project, job_type="consumer")
    used = consumer.use_artifact("ds:v0")
    download = Path(used.download(root=str(tmp_path_factory.mktemp("dl"))))
    consumer_id = consumer.id
    consumer.finish()
    return {"producer": producer, "consumer": consumer_id, "src": src, "download": download}


@pytest.fixture(scope="module")
def public(wb, logged):
    return wb.Api()


def path(api, project: str, name: str) -> str:
    return f"{api.ok('{ viewer { entity } }')['viewer']['entity']}/{project}/{name}"


def test_log_artifact_with_aliases_and_wait_commits_v0(public, api, project, logged):
    art = public.artifact(path(api, project, "ds:v0"))
    assert art.version == "v0" and art.type == "dataset"
    assert set(art.aliases) >= {"first"}
    assert art.metadata == {"rows": 2}
    assert art.file_count == 2 and art.size == len("hello artifacts\n") + 1024
    assert art.logged_by().id == logged["producer"]


def test_log_artifact_without_wait_is_stored_at_finish(public, api, project, logged):
    art = public.artifact(path(api, project, "ds:latest"))
    assert art.version == "v1"
    # A custom alias is unique in its collection: "best" moved from v0 to v1.
    assert "best" in art.aliases and "latest" in art.aliases
    assert "best" not in public.artifact(path(api, project, "ds:v0")).aliases


def test_use_artifact_download_returns_the_same_bytes(logged):
    src, dl = logged["src"], logged["download"]
    assert (dl / "data.txt").read_bytes() == (src / "data.txt").read_bytes()
    assert (dl / "sub" / "more.bin").read_bytes() == (src / "sub" / "more.bin").read_bytes()


def test_logged_and_used_artifacts_of_runs(public, api, project, logged):
    entity = api.ok("{ viewer { entity } }")["viewer"]["entity"]
    producer = public.run(f"{entity}/{project}/{logged['producer']}")
    logged_names = {(a.name.split(":")[0], a.type) for a in producer.logged_artifacts()}
    assert ("ds", "dataset") in logged_names
    assert any(t == "run_table" for _n, t in logged_names)
    assert any(t == "code" for _n, t in logged_names)
    consumer = public.run(f"{entity}/{project}/{logged['consumer']}")
    used = [a.name for a in consumer.used_artifacts()]
    assert used == ["ds:v0"]
    v0 = public.artifact(path(api, project, "ds:v0"))
    assert [r.id for r in v0.used_by()] == [logged["consumer"]]


def test_table_reads_back_with_its_rows(public, api, project, logged):
    runs = public.run(path(api, project, logged["producer"]))
    tables = [a for a in runs.logged_artifacts() if a.type == "run_table" and "tbl" in a.name]
    assert tables, "the wandb.Table artifact was not logged"
    table = tables[0].get("tbl")
    assert table.columns == ["a", "b"] and table.data == [[1, "x"], [2, "y"]]


def test_log_code_and_chart_complete(public, api, project, logged):
    runs = public.run(path(api, project, logged["producer"]))
    by_type = {}
    for a in runs.logged_artifacts():
        by_type.setdefault(a.type, []).append(a)
    code = by_type["code"][0]
    assert code.state == "COMMITTED" and [f.name for f in code.files()] == ["train.py"]
    chart = [a for a in by_type["run_table"] if "loss_chart" in a.name]
    assert chart and chart[0].state == "COMMITTED"


def test_log_model_and_use_model(wb, public, api, project, tmp_path):
    weights = tmp_path / "model.pt"
    weights.write_bytes(b"weights" * 100)
    run = wb.init(project=project, job_type="train-model")
    run.log_model(path=str(weights), name="clf", aliases=["best"])
    run.finish()
    model = public.artifact(path(api, project, "clf:best"))
    assert model.type == "model" and set(model.aliases) >= {"best", "latest"} and model.size == 700
    user = wb.init(project=project, job_type="serve")
    local = Path(user.use_model("clf:latest"))
    user.finish()
    assert local.read_bytes() == weights.read_bytes()
    assert [r.id for r in model.used_by()] == [user.id]


def test_api_types_collections_and_versions(public, api, project, logged):
    entity = api.ok("{ viewer { entity } }")["viewer"]["entity"]
    types = {t.name for t in public.artifact_types(f"{entity}/{project}")}
    assert {"dataset", "run_table", "code"} <= types
    collections = [c.name for c in public.artifact_collections(f"{entity}/{project}", "dataset")]
    assert collections == ["ds"]
    versions = [a.version for a in public.artifacts("dataset", f"{entity}/{project}/ds")]
    assert versions == ["v1", "v0"]


def test_delete_rules_and_url_refused_after(public, api, project, logged, wb, tmp_path):
    import requests

    v0 = public.artifact(path(api, project, "ds:v0"))
    files = api.ok("""query($p: String!) { project(name: $p) { artifact(name: "ds:v0") {
      files { edges { node { name directUrl } } } } } }""", {"p": project})["project"]["artifact"]["files"]
    url = {e["node"]["name"]: e["node"]["directUrl"] for e in files["edges"]}["sub/more.bin"]
    with pytest.raises(Exception, match="aliases"):
        v0.delete()
    before = api.ok(STORAGE_QUERY, {"entity": None, "project": project, "name": "ds:v0"})["project"]["storageBytes"]
    v0.delete(delete_aliases=True)
    after = api.ok(STORAGE_QUERY, {"entity": None, "project": project, "name": "ds:v1"})["project"]
    assert after["artifact"]["versionIndex"] == 1
    # data.txt is shared with v1 and stays; sub/more.bin (1024 bytes) and v0's manifest go.
    assert before - after["storageBytes"] >= 1024
    v1 = public.artifact(path(api, project, "ds:v1"))
    assert (Path(v1.download(root=str(tmp_path))) / "data.txt").read_text() == "hello artifacts\n"
    assert requests.get(url, timeout=10).status_code == 404  # the deleted version's URL stops working


def test_demo_seed_artifacts_read_through_the_api(public, tmp_path):
    versions = [a.version for a in public.artifacts("model", "demo/vision/resnet-checkpoints", per_page=15)]
    assert versions == [f"v{i}" for i in range(39, -1, -1)]  # paged newest first
    assert public.artifact("demo/vision/resnet-checkpoints:best").version == "v31"
    dataset = public.artifact("demo/vision/imagenet-subset:prod")
    assert dataset.version == "v2" and len(dataset.used_by()) > 100
    assert (Path(dataset.download(root=str(tmp_path))) / "README.md").read_text() == "imagenet-subset v2\n"
    features = public.artifact("demo/vision/features:v0")
    assert len(features.used_by()) == 10 and features.logged_by().id == "vi000100"


@pytest.fixture(scope="module")
def ckpt(wb, project, tmp_path_factory) -> dict[str, Any]:
    """Run A logs ckpt v0 and v1 (v1 with a 30-day TTL); run B then logs v1's exact contents again (answered by v1)."""
    src: Path = tmp_path_factory.mktemp("ckpt-src")
    run = wb.init(project=project, job_type="train")
    for i in range(2):
        (src / "w.bin").write_bytes(bytes([i]) * 2048)
        art = wb.Artifact("ckpt", type="model")
        art.add_file(str(src / "w.bin"))
        if i == 1:
            art.ttl = timedelta(days=30)
        run.log_artifact(art, aliases=["best"] if i == 0 else []).wait()
    first = run.id
    run.finish()
    again = wb.init(project=project, job_type="retrain")
    art = wb.Artifact("ckpt", type="model")
    art.add_file(str(src / "w.bin"))
    again.log_artifact(art).wait()
    second = again.id
    again.finish()
    return {"first": first, "second": second}


def test_aliases_added_and_removed_after_the_fact(public, api, project, ckpt):
    v1 = public.artifact(path(api, project, "ckpt:v1"))
    v1.aliases.append("prod")
    v1.aliases.append("best")  # "best" is on v0: a custom alias names one version, so it moves
    v1.save()
    assert set(public.artifact(path(api, project, "ckpt:v1")).aliases) == {"latest", "prod", "best"}
    assert "best" not in public.artifact(path(api, project, "ckpt:v0")).aliases
    v1 = public.artifact(path(api, project, "ckpt:prod"))
    v1.aliases.remove("prod")
    v1.save()
    assert set(public.artifact(path(api, project, "ckpt:v1")).aliases) == {"latest", "best"}
    with pytest.raises(Exception):
        public.artifact(path(api, project, "ckpt:prod"))


def test_ttl_set_at_log_and_after_and_expired_versions_are_purged(public, api, project, ckpt):
    assert public.artifact(path(api, project, "ckpt:v1")).ttl == timedelta(days=30)
    v0 = public.artifact(path(api, project, "ckpt:v0"))
    assert v0.ttl is None  # inherited, and this server has no team default
    before = api.ok(STORAGE_QUERY, {"entity": None, "project": project, "name": "ckpt:v0"})["project"]
    v0.ttl = timedelta(seconds=1)  # counted from creation, as W&B does: already past
    v0.save()
    assert public.artifact(path(api, project, "ckpt:v0")).ttl == timedelta(seconds=1)
    deadline = time.monotonic() + 10
    while True:  # created_at has whole seconds: the second after creation may not have passed yet
        api.post("/_local/purge", {})  # the periodic purge loop's work, run now
        after = api.ok(STORAGE_QUERY, {"entity": None, "project": project, "name": "ckpt:v0"})["project"]
        if after["artifact"] is None or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert before["artifact"] and after["artifact"] is None
    assert before["storageBytes"] - after["storageBytes"] >= 2048  # v0's own file is freed
    assert public.artifact(path(api, project, "ckpt:latest")).version == "v1"


def test_identical_log_by_a_second_run_is_among_its_logged_artifacts(public, api, project, ckpt, logged):
    """W&B answers the second run's log with the existing version and lists that version among the
    second run's outputs (its system test for public Run.log_artifact asserts the same); the
    version's producer stays the first run."""
    entity = api.ok("{ viewer { entity } }")["viewer"]["entity"]
    second = public.run(f"{entity}/{project}/{ckpt['second']}")
    assert [a.name for a in second.logged_artifacts()] == ["ckpt:v1"]
    assert public.artifact(path(api, project, "ckpt:v1")).logged_by().id == ckpt["first"]
    assert {a.version for a in public.artifacts("model", f"{entity}/{project}/ckpt")} <= {"v0", "v1"}  # no v2
    # The public API's Run.log_artifact(existing version) sends the same createArtifact.
    second.log_artifact(public.artifact(path(api, project, "ds:v1")))
    assert {a.name for a in public.run(f"{entity}/{project}/{ckpt['second']}").logged_artifacts()} == \
        {"ckpt:v1", "ds:v1"}
    assert public.artifact(path(api, project, "ds:v1")).logged_by().id == logged["producer"]


def test_link_artifact_to_a_portfolio(wb, public, api, project, ckpt):
    """run.link_artifact: the portfolio numbers linked versions on its own and keeps its own
    aliases; the version stays in its sequence."""
    entity = api.ok("{ viewer { entity } }")["viewer"]["entity"]
    run = wb.init(project=project, job_type="promote")
    v1 = run.use_artifact("ckpt:v1")
    linked = run.link_artifact(v1, f"{entity}/{project}/best-models", aliases=["production"])
    run.link_artifact(v1, f"{entity}/{project}/best-models")  # linking again answers the same link
    run.finish()
    assert linked.version == "v0"
    prod = public.artifact(f"{entity}/{project}/best-models:production")
    assert prod.version == "v0" and set(prod.aliases) >= {"production", "latest"}
    assert prod.id == public.artifact(path(api, project, "ckpt:v1")).id  # the same version, linked
    assert prod.is_link
    assert "production" not in public.artifact(path(api, project, "ckpt:v1")).aliases
    with pytest.raises(Exception):
        public.artifact(f"{entity}/{project}/best-models:v1")
    prod.unlink()  # Artifact.unlink() sends unlinkArtifact with the portfolio's id
    with pytest.raises(Exception):
        public.artifact(f"{entity}/{project}/best-models:production")
    assert public.artifact(path(api, project, "ckpt:v1")).version == "v1"  # the version itself stays
