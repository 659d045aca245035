"""Runs on the local server: upsertBucket as W&B does it, soft delete, restore, bulk mutations,
the purge, and file_stream's offset-idempotent history."""

from __future__ import annotations

import json
import time

from wandb_gql.server.store import storage_id

UPSERT = """mutation U($input: UpsertBucketInput!) {
  upsertBucket(input: $input) { inserted bucket { id name displayName state config summaryMetrics tags group
    jobType notes project { name entity { name } } } } }"""
RUN = """query R($n: String!) { project(name: "p", entityName: "local") { runCount run(name: $n) {
  id name displayName state config summaryMetrics tags historyLineCount historyKeys eventsLineCount logLineCount
  heartbeatAt exitcode history sampledHistory(specs: ["{\\"keys\\": [\\"_step\\", \\"loss\\"], \\"minStep\\": 1, \\"maxStep\\": 2}"])
  wandbConfig(keys: ["t"]) systemMetrics } } }"""


def create(api, name, **fields):
    return api.ok(UPSERT, {"input": {"modelName": "p", "entityName": "local", "name": name, **fields}})["upsertBucket"]


def run(api, name):
    return api.ok(RUN, {"n": name})["project"]["run"]


def test_upsert_creates_then_updates_with_w_and_b_shapes(fresh_api):
    config = json.dumps({"lr": {"value": 0.1}, "_wandb": {"value": {"t": {"1": [1]}}}})
    made = create(fresh_api, "r1", config=config, tags=["a", "a", "b"], groupName="g", jobType="train",
                  displayName="first")
    assert made["inserted"] is True
    bucket = made["bucket"]
    assert bucket["id"] == storage_id("Run", "r1", "p", "local")
    assert bucket["project"] == {"name": "p", "entity": {"name": "local"}}
    assert json.loads(bucket["config"]) == {"lr": {"value": 0.1}, "_wandb": {"value": {"t": {"1": [1]}}}}
    assert bucket["tags"] == ["a", "b"] and bucket["group"] == "g" and bucket["jobType"] == "train"
    again = fresh_api.ok(UPSERT, {"input": {"id": bucket["id"], "notes": "n", "summaryMetrics": '{"acc": 1}'}})
    assert again["upsertBucket"]["inserted"] is False
    updated = again["upsertBucket"]["bucket"]
    assert updated["notes"] == "n" and json.loads(updated["summaryMetrics"]) == {"acc": 1}
    assert updated["displayName"] == "first" and updated["tags"] == ["a", "b"]  # untouched fields stay
    assert json.loads(run(fresh_api, "r1")["wandbConfig"]) == {"t": {"1": [1]}}


def test_upsert_without_entity_uses_the_viewers(fresh_api):
    made = fresh_api.ok(UPSERT, {"input": {"modelName": "p", "name": "r0"}})["upsertBucket"]["bucket"]
    assert made["project"]["entity"]["name"] == "local"


def test_soft_delete_hides_restore_returns_and_ids_are_not_reused(fresh_api):
    ids = {n: create(fresh_api, n, tags=["x"] if n != "keep" else [])["bucket"]["id"] for n in ("a", "b", "keep")}
    delete = 'mutation D($id: ID!) { deleteRun(input: {id: $id}) { clientMutationId } }'
    fresh_api.ok(delete, {"id": ids["a"]})
    fresh_api.ok(delete, {"id": ids["a"]})  # deleting twice is success, as on W&B
    assert run(fresh_api, "a") is None
    data = fresh_api.ok('{ project(name: "p", entityName: "local") { runCount runs { edges { node { name } } } } }')
    assert data["project"]["runCount"] == 2
    assert {e["node"]["name"] for e in data["project"]["runs"]["edges"]} == {"b", "keep"}
    reuse = fresh_api.gql(UPSERT, {"input": {"modelName": "p", "entityName": "local", "name": "a"}})
    assert "deleted" in reuse.errors[0]["message"] and "cannot be reused" in reuse.errors[0]["message"]
    # deleteRuns by filter, then undeleteRuns by filter restores exactly the matching ones
    fresh_api.ok('mutation { deleteRuns(input: {entityName: "local", projectName: "p",'
                 ' filters: "{\\"tags\\": \\"x\\"}"}) { errors } }')
    assert run(fresh_api, "b") is None and run(fresh_api, "keep") is not None
    fresh_api.ok('mutation { undeleteRuns(input: {entityName: "local", projectName: "p",'
                 ' filters: "{\\"name\\": {\\"$in\\": [\\"a\\"]}}"}) { clientMutationId } }')
    assert run(fresh_api, "a")["name"] == "a" and run(fresh_api, "b") is None


def test_modify_runs_adds_and_removes_tags_by_id_and_by_filter(fresh_api):
    ids = [create(fresh_api, n, tags=["old"])["bucket"]["id"] for n in ("m1", "m2", "m3")]
    out = fresh_api.ok('mutation M($ids: [String]) { modifyRuns(input: {ids: $ids, addTags: ["new"],'
                       ' removeTags: ["old"]}) { runs { name tags } } }', {"ids": ids[:2]})
    assert sorted((r["name"], r["tags"]) for r in out["modifyRuns"]["runs"]) == [("m1", ["new"]), ("m2", ["new"])]
    fresh_api.ok('mutation { modifyRuns(input: {entityName: "local", projectName: "p",'
                 ' filters: "{\\"tags\\": \\"old\\"}", addTags: ["seen"]}) { runs { name } } }')
    assert run(fresh_api, "m3")["tags"] == ["old", "seen"] and run(fresh_api, "m1")["tags"] == ["new"]


def test_purge_endpoint_keeps_runs_inside_retention(fresh_api):
    made = create(fresh_api, "kept")["bucket"]
    fresh_api.ok('mutation D($id: ID!) { deleteRun(input: {id: $id}) { clientMutationId } }', {"id": made["id"]})
    assert fresh_api.post("/_local/purge", {}).body == {"purged": 0}
    fresh_api.ok('mutation { undeleteRuns(input: {entityName: "local", projectName: "p",'
                 ' filters: "{\\"name\\": \\"kept\\"}"}) { clientMutationId } }')
    assert run(fresh_api, "kept") is not None


def test_purge_hard_deletes_after_retention(tmp_path):
    from datetime import timedelta

    from tests.conftest import Caller
    from wandb_gql.server.local import LocalServer

    with LocalServer(tmp_path / "db.sqlite", retention=timedelta(seconds=1)) as server:
        api = Caller(server)
        made = create(api, "gone")["bucket"]
        stream(api, "gone", {"files": {"wandb-history.jsonl": {"offset": 0, "content": ['{"_step": 0}']}}})
        api.ok('mutation D($id: ID!) { deleteRun(input: {id: $id}) { clientMutationId } }', {"id": made["id"]})
        conn = server.server.store.conn
        assert conn.execute("SELECT count(*) FROM runs WHERE name = 'gone'").fetchone()[0] == 1
        deadline = time.monotonic() + 6  # the periodic purge runs every retention/10, at least 1 s
        while conn.execute("SELECT count(*) FROM runs WHERE name = 'gone'").fetchone()[0] and time.monotonic() < deadline:
            time.sleep(0.2)
        assert conn.execute("SELECT count(*) FROM runs WHERE name = 'gone'").fetchone()[0] == 0
        assert api.post("/_local/purge", {}).body == {"purged": 0}
        assert conn.execute("SELECT count(*) FROM history").fetchone()[0] == 0
        # once purged, the id is free again (W&B keeps tombstones only for the retention period)
        assert create(api, "gone")["inserted"] is True


def stream(api, name, body, project="p"):
    return api.post(f"/files/local/{project}/{name}/file_stream", body)


def test_file_stream_is_offset_idempotent_and_tolerates_nan(fresh_api):
    create(fresh_api, "fs")
    lines = ['{"_step": %d, "loss": %s, "nested": {"a": %d}}' % (i, v, i)
             for i, v in enumerate(["1.5", "NaN", "Infinity", "0.25"])]
    assert stream(fresh_api, "fs", {"files": {"wandb-history.jsonl": {"offset": 0, "content": lines[:3]}}}).status == 200
    # a retried request and an overlapping one change nothing twice
    stream(fresh_api, "fs", {"files": {"wandb-history.jsonl": {"offset": 0, "content": lines[:3]}}})
    stream(fresh_api, "fs", {"files": {"wandb-history.jsonl": {"offset": 2, "content": lines[2:]},
                                       "wandb-events.jsonl": {"offset": 0, "content": ['{"system.cpu": 3}']},
                                       "output.log": {"offset": 0, "content": ["a", "b"]},
                                       "wandb-summary.json": {"offset": 0, "content": ['{"loss": NaN, "acc": 1}']}}})
    stream(fresh_api, "fs", {"files": {"output.log": {"offset": 1, "content": ["b2"]}}})  # \r overwrite
    r = run(fresh_api, "fs")
    assert r["historyLineCount"] == 4 and r["eventsLineCount"] == 1 and r["logLineCount"] == 2
    assert [json.loads(h)["loss"] for h in r["history"]] == [1.5, "NaN", "Infinity", 0.25]
    assert r["historyKeys"]["lastStep"] == 3
    assert r["historyKeys"]["keys"]["loss"]["typeCounts"] == [{"type": "number", "count": 4}]
    assert r["historyKeys"]["keys"]["loss"]["previousValue"] == 0.25  # the last value, not a replayed one
    assert r["sampledHistory"] == [[{"_step": 1, "loss": "NaN"}, {"_step": 2, "loss": "Infinity"}]]
    assert json.loads(r["summaryMetrics"]) == {"loss": "NaN", "acc": 1}
    assert json.loads(r["systemMetrics"]) == {"system.cpu": 3}
    assert r["state"] == "running"


def test_file_stream_complete_sets_state_from_exit_code(fresh_api):
    for name, code, state in (("ok", 0, "finished"), ("bad", 3, "failed")):
        create(fresh_api, name)
        before = run(fresh_api, name)["heartbeatAt"]
        assert stream(fresh_api, name, {}).status == 200  # heartbeat
        assert stream(fresh_api, name, {"complete": True, "exitcode": code}).status == 200
        after = run(fresh_api, name)
        assert after["state"] == state and after["exitcode"] == code and after["heartbeatAt"] >= before


def test_file_stream_never_answers_5xx(fresh_api):
    create(fresh_api, "junk")
    bodies = [b"{oops", b"[]", b'{"files": 3}', b'{"files": {"wandb-history.jsonl": {"offset": "x"}}}',
              b'{"files": {"wandb-history.jsonl": {"offset": 0, "content": "no"}}}',
              b'{"files": {"wandb-history.jsonl": {"offset": 0, "content": ["not json", "[1]"]}}}',
              b'{"files": {"wandb-summary.json": {"offset": 0, "content": ["[1, 2]"]}}}']
    for raw in bodies:
        reply = fresh_api.post("/files/local/p/junk/file_stream", None, raw=raw)
        assert reply.status < 500, (raw, reply.status)
    assert fresh_api.post("/files/local/p/missing/file_stream", {}).status == 404
    assert run(fresh_api, "junk")["historyLineCount"] == 2  # the unparseable lines were kept, not dropped


def test_run_files_upload_and_download_through_presigned_urls(fresh_api):
    import urllib.request

    create(fresh_api, "files")
    out = fresh_api.ok('mutation { createRunFiles(input: {entityName: "local", projectName: "p", runName: "files",'
                       ' files: ["a.txt", "b.txt"]}) { runID uploadHeaders files { name uploadUrl } } }')
    files = out["createRunFiles"]["files"]
    assert [f["name"] for f in files] == ["a.txt", "b.txt"]
    put = urllib.request.Request(files[0]["uploadUrl"], data=b"hello", method="PUT")  # no auth, as the SDK
    assert urllib.request.urlopen(put).status == 200
    listed = fresh_api.ok('{ project(name: "p", entityName: "local") { run(name: "files") { fileCount'
                          ' files(names: ["a.txt"]) { edges { node { name sizeBytes md5 directUrl } } } } } }')
    node = listed["project"]["run"]["files"]["edges"][0]["node"]
    assert node["sizeBytes"] == 5 and node["md5"] == "XUFAKrxLKna5cZ2REBfFkg=="
    assert urllib.request.urlopen(node["directUrl"]).read() == b"hello"
    forged = node["directUrl"].rsplit(".", 1)[0] + ".0000"
    try:
        urllib.request.urlopen(forged)
        raise AssertionError("a forged storage token was served")
    except urllib.error.HTTPError as e:
        assert e.code == 404
