"""Server-only artifact rules, driven over GraphQL and the storage URLs as the SDK drives them:
versions and aliases, digest dedup, content-addressed bytes freed only when unreferenced,
deletion rules, storage URLs bound to their object and expiry, and bad input as GraphQL errors."""

from __future__ import annotations

import base64
import hashlib
import json
import urllib.error
import urllib.request
import uuid
from typing import Any

import pytest

from wandb_gql.server import tokens

UPSERT = """mutation($entity: String, $project: String, $name: String) {
  upsertBucket(input: {entityName: $entity, modelName: $project, name: $name}) { bucket { id name } } }"""
CREATE = """mutation($input: CreateArtifactInput!) { createArtifact(input: $input) {
  artifact { id state versionIndex artifactSequence { latestArtifact { id } } } } }"""
MANIFEST = """mutation($id: ID!, $digest: String!, $e: String!, $p: String!, $r: String!) {
  createArtifactManifest(input: {artifactID: $id, name: "wandb_manifest.json", digest: $digest,
    entityName: $e, projectName: $p, runName: $r}) { artifactManifest { id file { uploadUrl directUrl } } } }"""
FILES = """mutation($input: CreateArtifactFilesInput!) { createArtifactFiles(input: $input) {
  files { edges { node { name uploadUrl directUrl } } } } }"""
COMMIT = """mutation($id: ID!) { commitArtifact(input: {artifactID: $id}) { artifact { id state versionIndex
  size fileCount aliases { alias } } } }"""
DELETE = """mutation($id: ID!, $aliases: Boolean) { deleteArtifact(input: {artifactID: $id, deleteAliases: $aliases}) {
  artifact { id state } } }"""
LOOKUP = """query($p: String!, $name: String!) { project(name: $p, entityName: "local") { storageBytes
  artifact(name: $name) { id versionIndex state storageBytes aliases { alias } currentManifest { file { directUrl } }
  files { edges { node { name directUrl sizeBytes } } } } } }"""


def md5(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode()


def http(method: str, url: str, data: bytes | None = None) -> tuple[int, bytes]:
    req = urllib.request.Request(url, data=data, method=method)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


class Flow:
    """The SDK's save flow (createArtifact, manifest, files, PUTs, commit) over GraphQL."""

    def __init__(self, api) -> None:
        self.api = api
        self.project = f"art-{uuid.uuid4().hex[:8]}"
        self.run = "producer"
        api.ok(UPSERT, {"entity": "local", "project": self.project, "name": self.run})

    def create(self, files: dict[str, bytes], *, collection: str = "ds", aliases: tuple[str, ...] = (),
               type_name: str = "dataset") -> dict[str, Any]:
        digest = hashlib.md5(json.dumps(sorted((n, md5(b)) for n, b in files.items())).encode()).hexdigest()
        return self.api.ok(CREATE, {"input": {
            "entityName": "local", "projectName": self.project, "runName": self.run, "artifactTypeName": type_name,
            "artifactCollectionName": collection, "digest": digest, "digestAlgorithm": "MANIFEST_MD5",
            "aliases": [{"alias": a, "artifactCollectionName": collection} for a in aliases]}})["createArtifact"]["artifact"]

    def log(self, files: dict[str, bytes], **kw: Any) -> dict[str, Any]:
        art = self.create(files, **kw)
        if art["state"] == "COMMITTED":
            return art
        specs = [{"artifactID": art["id"], "name": n, "md5": md5(b)} for n, b in files.items()]
        edges = self.api.ok(FILES, {"input": {"artifactFiles": specs, "storageLayout": "V2"}})
        for edge in edges["createArtifactFiles"]["files"]["edges"]:
            if edge["node"]["uploadUrl"]:
                assert http("PUT", edge["node"]["uploadUrl"], files[edge["node"]["name"]])[0] == 200
        manifest = json.dumps({"version": 1, "contents": {
            n: {"digest": md5(b), "size": len(b)} for n, b in files.items()}}).encode()
        mf = self.api.ok(MANIFEST, {"id": art["id"], "digest": md5(manifest), "e": "local", "p": self.project,
                                    "r": self.run})["createArtifactManifest"]["artifactManifest"]
        assert http("PUT", mf["file"]["uploadUrl"], manifest)[0] == 200
        return self.api.ok(COMMIT, {"id": art["id"]})["commitArtifact"]["artifact"]

    def lookup(self, name: str) -> dict[str, Any]:
        return self.api.ok(LOOKUP, {"p": self.project, "name": name})["project"]


@pytest.fixture
def flow(api) -> Flow:
    return Flow(api)


def test_versions_latest_and_custom_aliases_move(flow):
    v0 = flow.log({"a.txt": b"one"}, aliases=("best",))
    v1 = flow.log({"a.txt": b"two"}, aliases=("best",))
    assert (v0["versionIndex"], v1["versionIndex"]) == (0, 1)
    assert {a["alias"] for a in flow.lookup("ds:v1")["artifact"]["aliases"]} == {"latest", "best"}
    assert flow.lookup("ds:v0")["artifact"]["aliases"] == []
    assert flow.lookup("ds:best")["artifact"]["versionIndex"] == 1


def test_pending_until_committed_and_identical_content_answers_the_existing_version(flow):
    pending = flow.create({"a.txt": b"x"})
    assert pending["state"] == "PENDING" and pending["versionIndex"] is None
    assert flow.lookup("ds:latest")["artifact"] is None
    committed = flow.log({"a.txt": b"x"})
    assert committed["id"] == pending["id"] and committed["versionIndex"] == 0
    again = flow.create({"a.txt": b"x"}, aliases=("prod",))
    assert again["state"] == "COMMITTED" and again["id"] == committed["id"]
    assert "prod" in {a["alias"] for a in flow.lookup("ds:v0")["artifact"]["aliases"]}


def test_bytes_are_stored_once_and_freed_only_when_unreferenced(flow, api):
    shared, own = b"s" * 5000, b"o" * 3000
    flow.log({"shared.bin": shared, "own.bin": own})
    v1 = flow.log({"shared.bin": shared})
    total = flow.lookup("ds:v1")["storageBytes"]
    deleted = flow.lookup("ds:v0")["artifact"]
    api.ok(DELETE, {"id": deleted["id"], "aliases": True})
    after = flow.lookup("ds:v1")
    # own.bin and v0's manifest are freed; shared.bin stays for v1 and still downloads.
    assert 3000 < total - after["storageBytes"] < 3500
    url = after["artifact"]["files"]["edges"][0]["node"]["directUrl"]
    assert http("GET", url) == (200, shared)
    assert v1["versionIndex"] == 1 and after["artifact"]["versionIndex"] == 1


def test_aliased_version_is_refused_without_delete_aliases_and_latest_moves_back(flow, api):
    flow.log({"a.txt": b"1"})
    v1 = flow.log({"a.txt": b"2"})
    reply = api.gql(DELETE, {"id": v1["id"]})
    assert reply.status == 200 and "latest" in reply.errors[0]["message"]
    assert "deleteAliases" in reply.errors[0]["message"]
    assert api.ok(DELETE, {"id": v1["id"], "aliases": True})["deleteArtifact"]["artifact"]["state"] == "DELETED"
    assert flow.lookup("ds:latest")["artifact"]["versionIndex"] == 0
    assert flow.lookup("ds:v1")["artifact"] is None
    assert flow.log({"a.txt": b"3"})["versionIndex"] == 2  # version numbers are never reused


def test_urls_of_deleted_artifacts_and_runs_stop_working(flow, api):
    flow.log({"a.txt": b"keep"})
    art = flow.lookup("ds:v0")["artifact"]
    file_url = art["files"]["edges"][0]["node"]["directUrl"]
    manifest_url = art["currentManifest"]["file"]["directUrl"]
    assert http("GET", file_url) == (200, b"keep") and http("GET", manifest_url)[0] == 200
    api.ok(DELETE, {"id": art["id"], "aliases": True})
    assert http("GET", file_url)[0] == 404 and http("GET", manifest_url)[0] == 404

    files = api.ok("""mutation($p: String!) { createRunFiles(input: {entityName: "local", projectName: $p,
      runName: "producer", files: ["out.txt"]}) { runID files { uploadUrl } } }""", {"p": flow.project})
    run_url = files["createRunFiles"]["files"][0]["uploadUrl"]
    assert http("PUT", run_url, b"run bytes")[0] == 200 and http("GET", run_url) == (200, b"run bytes")
    api.ok("mutation($id: ID!) { deleteRun(input: {id: $id}) { clientMutationId } }",
           {"id": files["createRunFiles"]["runID"]})
    assert http("GET", run_url)[0] == 404


def test_delete_run_with_delete_artifacts_removes_its_outputs(flow, api):
    flow.log({"a.txt": b"gone"})
    run_id = api.ok(UPSERT, {"entity": "local", "project": flow.project, "name": flow.run})["upsertBucket"]["bucket"]["id"]
    api.ok("mutation($id: ID!) { deleteRun(input: {id: $id, deleteArtifacts: true}) { clientMutationId } }",
           {"id": run_id})
    assert flow.lookup("ds:v0")["artifact"] is None
    other = Flow(api)
    other.log({"b.txt": b"bulk"})
    api.ok("""mutation($p: String!) { deleteRuns(input: {entityName: "local", projectName: $p,
      filters: "{}", deleteArtifacts: true}) { clientMutationId } }""", {"p": other.project})
    assert other.lookup("ds:v0")["artifact"] is None


def test_expired_forged_and_mismatched_uploads_are_refused(flow, server):
    secret = server.server.store.secret
    art = flow.create({"a.txt": b"abc"})
    owner = int(base64.b64decode(art["id"]).decode().split(":")[-1])
    expired = tokens.mint(secret, tokens.ARTIFACT_FILE, owner, md5(b"abc"), ttl=-1)
    status, body = http("PUT", f"{server.base_url}/storage/{expired}", b"abc")
    assert status == 403 and b"expired" in body
    forged = tokens.mint("not-the-secret", tokens.ARTIFACT_FILE, owner, md5(b"abc"))
    assert http("PUT", f"{server.base_url}/storage/{forged}", b"abc")[0] == 404
    row = server.server.store.artifact(owner)  # a real URL is bound to the version it was made for
    valid = tokens.mint(secret, tokens.ARTIFACT_FILE, owner, md5(b"abc"),
                        bound=tokens.artifact_binding(row["collection_id"], row["created_at"]))
    status, body = http("PUT", f"{server.base_url}/storage/{valid}", b"not abc")
    assert status == 400 and b"md5" in body


@pytest.mark.parametrize("query, variables, needle", [
    (CREATE, {"input": {"entityName": "local", "projectName": "nope-missing", "artifactTypeName": "dataset",
                        "artifactCollectionName": "ds", "digest": "d", "digestAlgorithm": "MANIFEST_MD5"}}, "project"),
    (COMMIT, {"id": "not base64!"}, "Artifact id"),
    (COMMIT, {"id": base64.b64encode(b"Artifact:v1:999999").decode()}, "not found"),
    ("query { project(name: \"vision\", entityName: \"demo\") { artifact(name: \":v0\") { id } } }", None, "artifact name"),
])
def test_bad_input_is_a_graphql_error(api, query, variables, needle):
    reply = api.gql(query, variables)
    assert reply.status in (200, 400), reply.body
    assert reply.errors and needle in reply.errors[0]["message"], reply.body
    assert "SELECT" not in json.dumps(reply.body)


def test_bad_names_and_aliases_are_refused(flow, api):
    for kw, needle in (({"collection": "bad name!"}, "collection name"), ({"aliases": ("v3",)}, "alias"),
                       ({"type_name": "other"}, None)):
        if needle is None:
            flow.log({"a.txt": b"t"})
            reply = api.gql(CREATE, {"input": {
                "entityName": "local", "projectName": flow.project, "artifactTypeName": "model",
                "artifactCollectionName": "ds", "digest": "zz", "digestAlgorithm": "MANIFEST_MD5"}})
            assert "holds type 'dataset'" in reply.errors[0]["message"]
            continue
        with pytest.raises(AssertionError, match=needle):
            flow.create({"a.txt": b"t"}, **kw)


def test_commit_without_uploaded_files_is_refused(flow, api):
    art = flow.create({"a.txt": b"never uploaded"})
    manifest = json.dumps({"version": 1, "contents": {"a.txt": {"digest": md5(b"never uploaded"), "size": 14}}}).encode()
    mf = api.ok(MANIFEST, {"id": art["id"], "digest": md5(manifest), "e": "local", "p": flow.project,
                           "r": flow.run})["createArtifactManifest"]["artifactManifest"]
    assert http("PUT", mf["file"]["uploadUrl"], manifest)[0] == 200
    reply = api.gql(COMMIT, {"id": art["id"]})
    assert "not uploaded" in reply.errors[0]["message"]


ADD_ALIASES = """mutation($input: AddAliasesInput!) { addAliases(input: $input) { success
  aliases { alias artifactCollectionName entityName projectName } } }"""
DELETE_ALIASES = """mutation($input: DeleteAliasesInput!) { deleteAliases(input: $input) { success } }"""


def test_add_and_delete_aliases_as_the_sdk_sends_them(flow, api):
    v0, v1 = flow.log({"a.txt": b"one"}), flow.log({"a.txt": b"two"})

    def target(alias: str, collection: str = "ds") -> dict[str, str]:
        return {"entityName": "local", "projectName": flow.project, "artifactCollectionName": collection,
                "alias": alias}

    added = api.ok(ADD_ALIASES, {"input": {"artifactID": v0["id"], "aliases": [target("prod")]}})["addAliases"]
    assert added["success"] and {"alias": "prod", "artifactCollectionName": "ds", "entityName": "local",
                                 "projectName": flow.project} in added["aliases"]
    api.ok(ADD_ALIASES, {"input": {"artifactID": v1["id"], "aliases": [target("prod")]}})
    assert flow.lookup("ds:prod")["artifact"]["versionIndex"] == 1  # unique in the collection: it moved
    # Deleting an alias through a version it does not name leaves it where it is.
    api.ok(DELETE_ALIASES, {"input": {"artifactID": v0["id"], "aliases": [target("prod")]}})
    assert flow.lookup("ds:prod")["artifact"]["versionIndex"] == 1
    api.ok(DELETE_ALIASES, {"input": {"artifactID": v1["id"], "aliases": [target("prod")]}})
    assert flow.lookup("ds:prod")["artifact"] is None
    for bad, needle in ((target("v9"), "invalid alias"), (target("x", "other"), "use its own collection")):
        reply = api.gql(ADD_ALIASES, {"input": {"artifactID": v0["id"], "aliases": [bad]}})
        assert needle in reply.errors[0]["message"]


# The request shapes wandb-core sends for a file at or above its multipart threshold (a Go
# constant, 2 GiB, not configurable), driven here with small parts.
MP_FILES = """mutation CreateArtifactFiles($artifactFiles: [CreateArtifactFileSpecInput!]!,
  $storageLayout: ArtifactStorageLayout!) {
  createArtifactFiles(input: {artifactFiles: $artifactFiles, storageLayout: $storageLayout}) {
    files { edges { node { storagePath uploadUrl uploadHeaders
      uploadMultipartUrls { uploadID uploadUrlParts { partNumber uploadUrl } } artifact { id } } } } } }"""
MP_COMPLETE = """mutation CompleteMultipartUploadArtifact($completeMultipartAction: CompleteMultipartAction!,
  $completedParts: [UploadPartsInput!]!, $artifactID: ID!, $storagePath: String!, $uploadID: String!) {
  completeMultipartUploadArtifact(input: {completeMultipartAction: $completeMultipartAction,
    completedParts: $completedParts, artifactID: $artifactID, storagePath: $storagePath, uploadID: $uploadID}) {
    digest } }"""


def put_part(url: str, data: bytes) -> tuple[int, str | None]:
    req = urllib.request.Request(url, data=data, method="PUT", headers={
        "Content-Md5": base64.b64encode(hashlib.md5(data).digest()).decode(), "Content-Length": str(len(data))})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.headers.get("ETag")
    except urllib.error.HTTPError as e:
        return e.code, None


def test_multipart_upload_as_wandb_core_sends_it(flow, api):
    parts = [bytes([i]) * 1000 for i in range(3)] + [b"tail"]
    whole = b"".join(parts)
    art = flow.create({"big.bin": whole})
    spec = {"artifactID": art["id"], "artifactManifestID": None, "md5": md5(whole), "name": "big.bin",
            "mimetype": None, "uploadPartsInput": [{"partNumber": i + 1, "hexMD5": hashlib.md5(p).hexdigest()}
                                                   for i, p in enumerate(parts)]}
    node = api.ok(MP_FILES, {"artifactFiles": [spec], "storageLayout": "V2"})[
        "createArtifactFiles"]["files"]["edges"][0]["node"]
    multipart = node["uploadMultipartUrls"]
    assert node["uploadUrl"] and [p["partNumber"] for p in multipart["uploadUrlParts"]] == [1, 2, 3, 4]
    urls = [p["uploadUrl"] for p in multipart["uploadUrlParts"]]
    assert put_part(urls[0], b"not part one")[0] == 400  # bytes must match the announced hex md5
    etags = []
    for url, data in zip(urls, parts):
        status, etag = put_part(url, data)
        assert status == 200 and etag == f'"{hashlib.md5(data).hexdigest()}"'
        etags.append(etag)
    complete = {"completeMultipartAction": "Complete", "artifactID": art["id"], "storagePath": node["storagePath"],
                "uploadID": multipart["uploadID"]}
    short = [{"partNumber": i + 1, "hexMD5": e} for i, e in enumerate(etags[:3])]
    assert "parts 1..4" in api.gql(MP_COMPLETE, {**complete, "completedParts": short}).errors[0]["message"]
    done = api.ok(MP_COMPLETE, {**complete, "completedParts": [
        {"partNumber": i + 1, "hexMD5": e} for i, e in enumerate(etags)]})["completeMultipartUploadArtifact"]
    assert done["digest"] == md5(whole)
    # The upload is closed: completing it again is an error, and its part URLs stop working.
    assert "not found" in api.gql(MP_COMPLETE, {**complete, "completedParts": short}).errors[0]["message"]
    assert put_part(urls[0], parts[0])[0] == 404
    manifest = json.dumps({"version": 1, "contents": {"big.bin": {"digest": md5(whole), "size": len(whole)}}}).encode()
    mf = api.ok(MANIFEST, {"id": art["id"], "digest": md5(manifest), "e": "local", "p": flow.project,
                           "r": flow.run})["createArtifactManifest"]["artifactManifest"]
    assert http("PUT", mf["file"]["uploadUrl"], manifest)[0] == 200
    assert api.ok(COMMIT, {"id": art["id"]})["commitArtifact"]["artifact"]["size"] == len(whole)
    url = flow.lookup("ds:v0")["artifact"]["files"]["edges"][0]["node"]["directUrl"]
    assert http("GET", url) == (200, whole)


STORAGE_TREE = """query($e: String!) { entity(name: $e) { storageTree { name size projects { totalSize edges {
  node { name size projectID artifactTypes { name size }
    artifactSequences { totalSize edges { cursor node { name size artifactType { name } artifactSequence { name }
      artifacts { totalSize edges { node { name size artifact { versionIndex } } } } } } } } } } } } }"""


def test_storage_tree_per_project_collection_type_and_version(flow, api):
    shared = b"s" * 3000
    flow.log({"shared.bin": shared, "a.bin": b"a" * 100})
    flow.log({"shared.bin": shared, "b.bin": b"b" * 200})
    flow.log({"m.bin": b"m" * 50}, collection="model", type_name="model")
    tree = api.ok(STORAGE_TREE, {"e": "local"})["entity"]["storageTree"]
    projects = {e["node"]["name"]: e["node"] for e in tree["projects"]["edges"]}
    assert tree["size"] == tree["projects"]["totalSize"] == sum(p["size"] for p in projects.values())
    node = projects[flow.project]
    storage = flow.lookup("ds:v0")["storageBytes"]
    assert node["size"] == storage  # the same bytes Project.storageBytes reports
    seqs = {e["node"]["name"]: e["node"] for e in node["artifactSequences"]["edges"]}
    ds, model = seqs["ds"], seqs["model"]
    assert ds["artifactType"]["name"] == "dataset" and ds["artifactSequence"]["name"] == "ds"
    versions = {e["node"]["name"]: e["node"]["size"] for e in ds["artifacts"]["edges"]}
    assert set(versions) == {"ds:v0", "ds:v1"}
    # Each version counts the shared file; the collection counts it once.
    assert versions["ds:v0"] >= 3100 and versions["ds:v1"] >= 3200
    assert 3300 <= ds["size"] < versions["ds:v0"] + versions["ds:v1"]
    assert node["artifactSequences"]["totalSize"] == ds["size"] + model["size"] == storage
    types = {t["name"]: t["size"] for t in node["artifactTypes"]}
    assert types == {"dataset": ds["size"], "model": model["size"]}


UPDATE_TTL = """mutation($id: ID!, $ttl: Int64) { updateArtifact(input: {artifactID: $id, ttlDurationSeconds: $ttl}) {
  artifact { ttlDurationSeconds ttlIsInherited } } }"""


def test_ttl_values_as_the_sdk_sends_them(flow, api):
    art = flow.log({"a.txt": b"ttl"})
    answers = [api.ok(UPDATE_TTL, {"id": art["id"], "ttl": ttl})["updateArtifact"]["artifact"]
               for ttl in (86400, None, -2, -1)]
    assert answers == [{"ttlDurationSeconds": 86400, "ttlIsInherited": False},  # set
                       {"ttlDurationSeconds": 86400, "ttlIsInherited": False},  # unchanged
                       {"ttlDurationSeconds": -2, "ttlIsInherited": False},     # disabled
                       {"ttlDurationSeconds": -1, "ttlIsInherited": True}]      # inherit
    assert "ttlDurationSeconds" in api.gql(UPDATE_TTL, {"id": art["id"], "ttl": -5}).errors[0]["message"]
    assert api.post("/_local/purge", {}).body == {"purged": 0}
    assert flow.lookup("ds:v0")["artifact"] is not None  # no TTL: kept


def test_uploads_left_open_go_when_the_version_is_committed(flow, api, server):
    from wandb_gql.server.resolvers.artifact import artifact_row_id

    data = b"x" * 600
    art = flow.create({"f.bin": data})
    spec = {"artifactID": art["id"], "md5": md5(data), "name": "f.bin",
            "uploadPartsInput": [{"partNumber": 1, "hexMD5": hashlib.md5(data[:300]).hexdigest()},
                                 {"partNumber": 2, "hexMD5": hashlib.md5(data[300:]).hexdigest()}]}
    node = api.ok(MP_FILES, {"artifactFiles": [spec], "storageLayout": "V2"})[
        "createArtifactFiles"]["files"]["edges"][0]["node"]
    part_url = node["uploadMultipartUrls"]["uploadUrlParts"][0]["uploadUrl"]
    assert http("PUT", node["uploadUrl"], data)[0] == 200  # uploaded whole instead
    manifest = json.dumps({"version": 1, "contents": {"f.bin": {"digest": md5(data), "size": len(data)}}}).encode()
    mf = api.ok(MANIFEST, {"id": art["id"], "digest": md5(manifest), "e": "local", "p": flow.project,
                           "r": flow.run})["createArtifactManifest"]["artifactManifest"]
    assert http("PUT", mf["file"]["uploadUrl"], manifest)[0] == 200
    api.ok(COMMIT, {"id": art["id"]})
    assert put_part(part_url, data[:300])[0] == 400  # committed: refused
    upload_id = node["uploadMultipartUrls"]["uploadID"]
    refusal = server.server.store.multipart_part_refusal(artifact_row_id(art["id"]), upload_id, 1, data[:300])
    assert refusal and "no longer exists" in refusal  # the open upload and its parts went with the commit


LINK = """mutation($input: LinkArtifactInput!) { linkArtifact(input: $input) { versionIndex
  artifactMembership { versionIndex aliases { alias } artifactCollection { __typename name } } } }"""


def test_link_artifact_rules(flow, api):
    v0, v1 = flow.log({"a.txt": b"1"}), flow.log({"a.txt": b"2"})

    def link(art: dict[str, Any], name: str, *aliases: str) -> Any:
        return api.gql(LINK, {"input": {"artifactID": art["id"], "artifactPortfolioName": name, "entityName": "local",
                                        "projectName": flow.project, "aliases": [
                                            {"alias": a, "artifactCollectionName": name} for a in aliases]}})

    first = link(v1, "port", "prod").data["linkArtifact"]
    assert first["versionIndex"] == 0 and first["artifactMembership"]["artifactCollection"] == {
        "__typename": "ArtifactPortfolio", "name": "port"}
    assert {a["alias"] for a in first["artifactMembership"]["aliases"]} == {"latest", "prod"}
    assert link(v0, "port", "prod").data["linkArtifact"]["versionIndex"] == 1
    assert link(v1, "port").data["linkArtifact"]["versionIndex"] == 0  # already linked
    # prod moved to v0's link; the sequence keeps its own numbering and aliases.
    assert flow.lookup("port:prod")["artifact"]["versionIndex"] == 0
    assert {a["alias"] for a in flow.lookup("ds:v1")["artifact"]["aliases"]} >= {"latest"}
    listed = api.ok("""query($p: String!) { project(name: $p, entityName: "local") { artifactCollection(name: "port") {
      __typename artifacts { totalCount edges { version node { versionIndex } } }
      artifactMemberships { edges { node { versionIndex } } } } } }""", {"p": flow.project})
    port = listed["project"]["artifactCollection"]
    assert port["__typename"] == "ArtifactPortfolio" and port["artifacts"]["totalCount"] == 2
    assert [e["version"] for e in port["artifacts"]["edges"]] == ["v1", "v0"]  # the portfolio's numbering
    assert [e["node"]["versionIndex"] for e in port["artifacts"]["edges"]] == [0, 1]  # the sequence's
    assert [e["node"]["versionIndex"] for e in port["artifactMemberships"]["edges"]] == [1, 0]
    assert "not a portfolio" in link(v0, "ds").errors[0]["message"]
    pending = flow.create({"p.txt": b"pending"})
    assert "committed" in link(pending, "port").errors[0]["message"]


def test_deleting_a_linked_version_moves_the_portfolios_latest(flow, api):
    v0, v1 = flow.log({"a.txt": b"one"}), flow.log({"a.txt": b"two"})
    for art in (v0, v1):
        api.ok(LINK, {"input": {"artifactID": art["id"], "artifactPortfolioName": "port", "entityName": "local",
                                "projectName": flow.project}})
    assert flow.lookup("port:latest")["artifact"]["id"] == v1["id"]
    api.ok(DELETE, {"id": v1["id"], "aliases": True})
    assert flow.lookup("port:latest")["artifact"]["id"] == v0["id"]
    assert flow.lookup("port:v1")["artifact"] is None  # the link went with the version


UNLINK = """mutation($a: ID!, $p: ID!) { unlinkArtifact(input: {artifactID: $a, artifactPortfolioID: $p}) { success } }"""


def test_unlink_artifact_rules(flow, api):
    v0, v1 = flow.log({"a.txt": b"one"}), flow.log({"a.txt": b"two"})
    for art in (v0, v1):
        api.ok(LINK, {"input": {"artifactID": art["id"], "artifactPortfolioName": "port", "entityName": "local",
                                "projectName": flow.project}})
    ids = api.ok("""query($p: String!) { project(name: $p, entityName: "local") {
      port: artifactCollection(name: "port") { id } ds: artifactCollection(name: "ds") { id } } }""",
                 {"p": flow.project})["project"]
    assert api.ok(UNLINK, {"a": v1["id"], "p": ids["port"]["id"]})["unlinkArtifact"]["success"]
    assert flow.lookup("port:latest")["artifact"]["id"] == v0["id"]  # latest moved back
    assert flow.lookup("ds:v1")["artifact"] is not None  # the version itself stays
    assert "not linked" in api.gql(UNLINK, {"a": v1["id"], "p": ids["port"]["id"]}).errors[0]["message"]
    assert "not name a portfolio" in api.gql(UNLINK, {"a": v0["id"], "p": ids["ds"]["id"]}).errors[0]["message"]
