"""The rest of what the real `wandb` SDK (0.31.0) asks of the local server (issue 12): files,
projects, users, teams, reports, alerts, `wandb verify`. Each call goes through the SDK itself;
what it wrote is checked through the server's own GraphQL (`api.ok`).
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.compat

FILES_QUERY = """
query CompatFiles($entity: String, $project: String, $name: String!, $first: Int) {
  project(entityName: $entity, name: $project) {
    run(name: $name) {
      fileCount
      files(first: $first) { totalCount edges { node { name mimetype } } }
      csv: files(first: 1, pattern: "%.csv") { totalCount }
    }
  }
}
"""


def _server_files(api, entity: str, project: str, run_id: str, first: int = 1000) -> dict[str, Any]:
    variables = {"entity": entity, "project": project, "name": run_id, "first": first}
    run = api.ok(FILES_QUERY, variables)["project"]["run"]
    return {"count": run["fileCount"], "total": run["files"]["totalCount"], "csv": run["csv"]["totalCount"],
            "types": {e["node"]["name"]: e["node"]["mimetype"] for e in run["files"]["edges"]}}


def _finished_run(wb, entity: str, project: str, tmp_path, extra_files: int = 0) -> str:
    run = wb.init(entity=entity, project=project, config={"lr": 0.1})
    run.log({"loss": 1.0})
    for index in range(extra_files):
        path = tmp_path / f"extra-{index}.csv"
        path.write_text("a,b\n1,2\n")
        run.save(str(path), base_path=str(tmp_path), policy="now")
    run_id = run.id
    run.finish()
    return run_id


def test_files_total_count_is_every_file_not_the_page(wb, api, viewer_entity, project_name, tmp_path):
    run_id = _finished_run(wb, viewer_entity, project_name, tmp_path, extra_files=3)
    stored = _server_files(api, viewer_entity, project_name, run_id, first=2)
    assert stored["total"] == stored["count"] >= 7  # the SDK's own files (config.yaml, ...) + 3 saved
    assert stored["csv"] == 3  # a pattern counts what it matches, not the page of 1
    names = [f.name for f in wb.Api().run(f"{viewer_entity}/{project_name}/{run_id}").files(per_page=2)]
    assert len(names) == stored["count"]
    assert {"extra-0.csv", "extra-1.csv", "extra-2.csv", "config.yaml", "wandb-metadata.json"} <= set(names)


def test_file_mimetype_comes_from_the_name(wb, api, viewer_entity, project_name, tmp_path):
    run_id = _finished_run(wb, viewer_entity, project_name, tmp_path, extra_files=1)
    sdk_types = {f.name: f.mimetype for f in wb.Api().run(f"{viewer_entity}/{project_name}/{run_id}").files()}
    assert sdk_types == _server_files(api, viewer_entity, project_name, run_id)["types"]
    assert sdk_types["extra-0.csv"] == "text/csv"
    assert sdk_types["wandb-metadata.json"] == "application/json"
    assert sdk_types["requirements.txt"] == "text/plain"
    assert sdk_types["config.yaml"] == "application/x-yaml"
    assert all(sdk_types.values())  # never null; an unknown kind is application/octet-stream


def test_server_info_cli_version_info_has_min_and_max(wb):
    info = wb.Api()._service_api.execute_graphql("query ServerInfo { serverInfo { cliVersionInfo } }")
    versions = info["serverInfo"]["cliVersionInfo"]
    assert versions["min_cli_version"] <= wb.__version__ <= versions["max_cli_version"]


def test_file_delete_removes_the_file_and_its_bytes(wb, api, viewer_entity, project_name, tmp_path):
    run_id = _finished_run(wb, viewer_entity, project_name, tmp_path, extra_files=2)
    public = wb.Api().run(f"{viewer_entity}/{project_name}/{run_id}")
    doomed = public.file("extra-0.csv")
    url = doomed.url
    before = _server_files(api, viewer_entity, project_name, run_id)
    doomed.delete()
    after = _server_files(api, viewer_entity, project_name, run_id)
    assert "extra-0.csv" not in after["types"] and "extra-1.csv" in after["types"]
    assert after["count"] == after["total"] == before["count"] - 1
    fresh = wb.Api().run(f"{viewer_entity}/{project_name}/{run_id}")
    assert "extra-0.csv" not in [f.name for f in fresh.files()]
    with pytest.raises(urllib.error.HTTPError) as gone:  # the URL handed out before stops working
        urllib.request.urlopen(url, timeout=10)
    assert gone.value.code in (403, 404)
    with pytest.raises(Exception, match="not found"):  # deleting it twice names the problem
        doomed.delete()


def test_create_project_makes_it_in_the_viewers_entity(wb, api, viewer_entity, project_name):
    sdk = wb.Api()
    sdk.create_project(project_name, viewer_entity)
    listed = [p.name for p in sdk.projects(viewer_entity)]
    assert project_name in listed
    assert sdk.project(project_name, viewer_entity).name == project_name
    stored = api.ok('query($e: String, $p: String) { project(entityName: $e, name: $p) { name runCount } }',
                    {"e": viewer_entity, "p": project_name})["project"]
    assert stored == {"name": project_name, "runCount": 0}
    sdk.create_project(project_name, viewer_entity)  # again: still one project, no error
    assert [p.name for p in wb.Api().projects(viewer_entity)].count(project_name) == 1


def test_create_project_in_another_entity_or_with_a_bad_name_fails(wb, viewer_entity, project_name):
    sdk = wb.Api()
    with pytest.raises(Exception, match="entity 'carol' not found"):  # carol's entity: not the admin's
        sdk.create_project(project_name, "carol")
    with pytest.raises(Exception, match="cannot contain"):
        sdk.create_project("a/b", viewer_entity)
    assert project_name not in [p.name for p in sdk.projects(viewer_entity)]


RUN_ALERTS = """
query($e: String, $p: String!, $r: String!) {
  runAlerts(entityName: $e, projectName: $p, runName: $r) { title text severity createdAt }
}
"""


def test_run_alert_is_stored_with_the_run(wb, api, viewer_entity, project_name):
    run = wb.init(entity=viewer_entity, project=project_name)
    run.alert(title="loss spiked", text="loss 9.1 at step 3", level=wb.AlertLevel.WARN)
    run.alert(title="done soon", text="90% through")  # INFO by default
    run.alert(title="loss spiked", text="again within the minute")  # wait_duration 60 s: dropped, as on W&B
    run.alert(title="no wait", text="first", wait_duration=0.001)
    time.sleep(1.1)  # stored times are to the second
    run.alert(title="no wait", text="second", wait_duration=0.001)
    run_id = run.id
    run.finish()
    stored = api.ok(RUN_ALERTS, {"e": viewer_entity, "p": project_name, "r": run_id})["runAlerts"]
    assert [(a["title"], a["text"], a["severity"]) for a in stored] == [
        ("loss spiked", "loss 9.1 at step 3", "WARN"), ("done soon", "90% through", "INFO"),
        ("no wait", "first", "INFO"), ("no wait", "second", "INFO")]
    assert all(a["createdAt"] for a in stored)


def test_api_users_and_user_find_users_by_name_or_email(wb):
    sdk = wb.Api()  # the fixture's key is the admin's: it finds every user
    assert [u.username for u in sdk.users("CAR")] == ["carol"]  # any case, in the username
    assert {"local", "alice", "bob", "carol"} <= {u.username for u in sdk.users("@localhost")}  # the email
    alice = sdk.user("alice@localhost")
    assert (alice.username, alice.email) == ("alice", "alice@localhost")
    assert "demo" in alice.teams
    assert sdk.user("nobody-by-that-name") is None
    assert sdk.users("nobody-by-that-name") == []


def test_api_team_lists_the_teams_members(wb):
    team = wb.Api().team("demo")
    assert team.name == "demo" and team.is_team is True
    assert sorted(m.username for m in team.members) == ["alice", "bob", "local"]
    assert all(m.api_key is None for m in team.members)  # never a key


def test_api_reports_is_empty(wb):
    assert list(wb.Api().reports("demo/vision")) == []


# `wandb verify`'s checks, as it prints them. All pass on plain http but the two https ones
# (yellow warnings, not failures); the 10 MB post needs --max-body above the 1 MiB default.
VERIFY_PASSES = ("Checking if logged in", "Checking signed URL upload", "Checking wandb package version is up to date",
                 "Checking ability to send large payloads through proxy", "Checking CORs configuration of the bucket",
                 "Checking logged metrics, saving and downloading a file",
                 "Checking artifact save and download workflows", "Checking sweep creation and agent execution")
VERIFY_WARNS = ("Checking requests to base url", "Checking requests made over signed URLs")
# verify's large-post query, with its 10 MB argument (wandb/sdk/verify/verify.py check_large_post).
LARGE_POST = """query Project($entity: String!, $name: String!, $runName: String!, $desc: String!) {
  project(entityName: $entity, name: $name) { run(name: $runName, desc: $desc) { name summaryMetrics } } }"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_wandb_verify_passes_the_checks_a_local_server_can(tmp_path):
    """`wbgql server --max-body 16MiB`, as a user starts it for `wandb verify` (one run: ~50 s)."""
    key = "verify-" + secrets.token_hex(24)
    url = f"http://127.0.0.1:{_free_port()}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WANDB_", "WBGQL_"))}
    log = open(tmp_path / "server.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "wandb_gql.cli", "server", "--port", url.rsplit(":", 1)[1],
                             "--db", str(tmp_path / "server.db"), "--max-body", "16MiB"],
                            env={**env, "WBGQL_SERVER_API_KEY": key}, stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait_healthy(url, proc)
        work = tmp_path / "work"
        work.mkdir()
        env.update(WANDB_BASE_URL=url, WANDB_API_KEY=key, WANDB_CONFIG_DIR=str(work / "config"),
                   WANDB_CACHE_DIR=str(work / "cache"), WANDB_DATA_DIR=str(work / "data"), WANDB_DIR=str(work),
                   NETRC=str(work / "netrc"), WANDB_ERROR_REPORTING="false", WANDB_DISABLE_GIT="true")
        done = subprocess.run([sys.executable, "-m", "wandb", "verify", "--host", url], env=env, cwd=work,
                              capture_output=True, text=True, timeout=300)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()
    lines = {line.split(".....")[0]: line for line in done.stdout.splitlines() if "....." in line}
    assert set(lines) == {*VERIFY_PASSES, *VERIFY_WARNS}, done.stdout
    for check in VERIFY_PASSES:
        assert lines[check].endswith("\u2705"), done.stdout
    # Plain http on loopback: verify warns (yellow) on these two, it does not fail on them.
    assert "Connections are not made over https" in done.stdout
    assert "Signed URL requests not made over https" in done.stdout
    assert "Contact W&B" not in done.stdout
    server_log = (tmp_path / "server.log").read_text()
    assert "Traceback" not in server_log and "internal server error" not in server_log
    assert key not in done.stdout + done.stderr + server_log


def _wait_healthy(url: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url + "/healthz", timeout=1).close()
            return
        except OSError:
            assert proc.poll() is None, "wbgql server exited at start"
            time.sleep(0.1)
    raise AssertionError("wbgql server did not answer /healthz within 30 s")


def test_wandb_verify_large_post_is_413_naming_max_body_by_default(wb, server):
    """With the default --max-body (1 MiB, deliberate) verify's 10 MB post is refused with 413,
    which verify reports as a too-small proxy body limit, not a crash."""
    from wandb.sdk.lib.service.service_connection import WandbApiFailedError

    variables = {"entity": "local", "name": "verify-large-post", "runName": "", "desc": "a" * 10 ** 7}
    body = json.dumps({"query": LARGE_POST, "variables": variables}).encode()
    request = urllib.request.Request(server.base_url + "/graphql", data=body, headers={
        "Content-Type": "application/json",
        "Authorization": "Basic " + base64.b64encode(f"api:{server.api_key}".encode()).decode()})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=60)
    assert refused.value.code == 413
    error = json.loads(refused.value.read())["errors"][0]
    assert error["extensions"]["code"] == "BODY_TOO_LARGE"
    assert "1,048,576 bytes" in error["message"] and "wbgql server --max-body" in error["message"]
    with pytest.raises(WandbApiFailedError) as sdk_refused:  # exactly what verify calls and catches
        wb.Api()._service_api.execute_graphql(LARGE_POST, variables=variables, timeout=60)
    assert sdk_refused.value.response is not None and sdk_refused.value.response.http_status == 413
    # Under the limit the same query is answered: `desc` is accepted (and ignored), as W&B does.
    small = wb.Api()._service_api.execute_graphql(LARGE_POST, variables={**variables, "desc": "a" * 1000})
    assert small == {"project": None}


def test_file_reference_is_listed_and_downloaded_from_its_path(wb, api, viewer_entity, project_name, tmp_path):
    """A `file://` reference is in the version's files, as on W&B (the SDK downloads only what
    `files` lists), with no bytes on the server: the SDK copies it from where it points."""
    (tmp_path / "kept.txt").write_text("stored")
    outside = tmp_path / "outside"
    outside.mkdir()
    for name in ("a-ref.txt", "z-ref.txt"):  # around the stored file, across pages of 2
        (outside / name).write_text(f"ref {name}")
    art = wb.Artifact("with-refs", type="dataset")
    art.add_file(str(tmp_path / "kept.txt"))
    for name in ("a-ref.txt", "z-ref.txt"):
        art.add_reference((outside / name).as_uri())
    with wb.init(entity=viewer_entity, project=project_name) as run:
        run.log_artifact(art).wait()
    with wb.init(entity=viewer_entity, project=project_name) as run:
        used = run.use_artifact("with-refs:latest")
        root = Path(used.download(root=str(tmp_path / "down")))
    assert {p.name: p.read_text() for p in root.iterdir()} == {
        "kept.txt": "stored", "a-ref.txt": "ref a-ref.txt", "z-ref.txt": "ref z-ref.txt"}
    used.verify(root=str(root))  # digests of references included
    public = wb.Api().artifact(f"{viewer_entity}/{project_name}/with-refs:v0")
    listed = {f.name: f.direct_url for f in public.files(per_page=2)}
    assert listed.keys() == {"kept.txt", "a-ref.txt", "z-ref.txt"}
    assert listed["a-ref.txt"] == (outside / "a-ref.txt").as_uri() and "/storage/" in listed["kept.txt"]
    stored = api.ok("""query($e: String!, $p: String!) { project(entityName: $e, name: $p) {
      artifact(name: "with-refs:v0") { fileCount storageBytes files(first: 1) { totalCount } } } }""",
                    {"e": viewer_entity, "p": project_name})["project"]["artifact"]
    assert stored["fileCount"] == stored["files"]["totalCount"] == 3
    assert stored["storageBytes"] < 1000  # the stored file and the manifest, nothing of the references


def test_seeded_runs_have_metadata_and_system_metrics(wb, api):
    run = wb.Api().run("demo/vision/vi000010")
    metadata = run.metadata  # downloads wandb-metadata.json, as for a run the SDK wrote
    assert metadata["program"] == "train.py" and metadata["host"].startswith("gpu-node-")
    assert metadata["gpu_count"] == len(metadata["gpu_nvidia"]) >= 1
    assert metadata["startedAt"].startswith(run.created_at)
    metrics = run.system_metrics
    assert 0 <= metrics["system.cpu"] <= 100 and "system.gpu.0.gpu" in metrics
    assert sum(k.endswith(".gpu") for k in metrics) == metadata["gpu_count"]
    stored = api.ok('{ project(entityName: "demo", name: "vision") { run(name: "vi000010") { host } } }')
    assert stored["project"]["run"]["host"] == metadata["host"]
    assert "wandb-metadata.json" in [f.name for f in run.files()]


def test_run_file_finds_a_saved_file_by_the_path_it_was_saved_with(wb, viewer_entity, project_name, tmp_path,
                                                                   monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "with space-and_dash.txt").write_text("test")
    run = wb.init(entity=viewer_entity, project=project_name)
    run.save("./with space-and_dash.txt", policy="now")  # as wandb verify saves its file
    run_id = run.id
    run.finish()
    public = wb.Api().run(f"{viewer_entity}/{project_name}/{run_id}")
    found = public.file("./with space-and_dash.txt")
    assert found.name == "with space-and_dash.txt"
    assert found.download(root=str(tmp_path / "down"), replace=True).read() == "test"
