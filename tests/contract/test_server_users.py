"""Users, keys and entities as W&B has them, against the real local server.

The demo seed has the team `demo` (local, alice, bob) and carol outside it with her own
`carol/scratch`. Carol's key must find nothing of `demo`: every query and mutation family
answers as for an entity that does not exist, and nothing changes. Keys are made the way an
operator makes them (the store, or `wbgql server users add` in another process).
"""

from __future__ import annotations

import base64
import json
import os
import stat
import subprocess
import sys
import time
import urllib.error
import urllib.request
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from wandb_gql.server import tokens
from wandb_gql.server.local import LocalServer
from wandb_gql.server.store import new_api_key

from tests.conftest import Caller, basic

NOT_FOUND = "not found"


def _key_for(server: LocalServer, user: str, name: str | None = None) -> str:
    store = server.server.store
    key = new_api_key()
    with store.writing():
        store.add_api_key(key, name or user, user_id=store.user_row(user)["id"])
    return key


def _as(server: LocalServer, key: str) -> Caller:
    caller = Caller(server)
    caller.key = key
    return caller


def http(method: str, url: str, data: bytes | None = None, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A seeded server on a file; keys for alice (team member) and carol (outsider)."""
    path = tmp_path_factory.mktemp("users") / "server.db"
    with LocalServer(path, seed="demo") as s:
        admin = Caller(s)
        run = admin.ok('{ project(name: "vision", entityName: "demo") { run(name: "vi000010") { id '
                       'outputArtifacts(first: 1) { edges { node { id } } } } } }')["project"]["run"]
        yield {"server": s, "path": path, "admin": admin,
               "alice": _as(s, _key_for(s, "alice")), "carol": _as(s, _key_for(s, "carol")),
               "run_id": run["id"], "artifact_id": run["outputArtifacts"]["edges"][0]["node"]["id"]}


def _demo_state(admin: Caller) -> Any:
    return admin.ok('{ project(name: "vision", entityName: "demo") { runCount deleted: runCount(filters: '
                    '"{\\"state\\": \\"finished\\"}") run(name: "vi000010") { displayName tags state } '
                    'artifacts: run(name: "vi000010") { outputArtifacts(first: 5) { edges { node { id state '
                    'description aliases { alias } } } } } } }')


# (name, query, variables-from-world) -> must be refused as "not found", or answer null/empty
QUERIES = [
    ("project", '{ project(name: "vision", entityName: "demo") { runCount } }', lambda w: {},
     lambda d: d["project"] is None),
    ("model (legacy alias)", '{ model(name: "vision", entityName: "demo") { id bucket(name: "vi000010") { id } } }',
     lambda w: {}, lambda d: d["model"] is None),
    ("models of demo", '{ models(entityName: "demo", first: 50) { edges { node { name } } } }', lambda w: {},
     lambda d: d["models"]["edges"] == []),
    ("models of everyone", '{ models(first: 100) { edges { node { entityName name } } } }', lambda w: {},
     lambda d: {e["node"]["entityName"] for e in d["models"]["edges"]} == {"carol"}),
    ("entity", '{ entity(name: "demo") { name projects { edges { node { name } } } } }', lambda w: {},
     lambda d: d["entity"] is None),
    ("artifact by id", 'query($id: ID!) { artifact(id: $id) { id files { edges { node { url } } } } }',
     lambda w: {"id": w["artifact_id"]}, lambda d: d["artifact"] is None),
]


@pytest.mark.parametrize("name,query,variables,empty", QUERIES, ids=[q[0] for q in QUERIES])
def test_outsider_reads_nothing_of_another_entity(world, name, query, variables, empty):
    reply = world["carol"].gql(query, variables(world))
    assert reply.status == 200 and not reply.errors, reply.body
    assert empty(reply.data), reply.data


FILTERS = json.dumps({})
MUTATIONS = [
    ("upsertBucket into demo", 'mutation { upsertBucket(input: {entityName: "demo", modelName: "vision", name: "pwn"}) '
     '{ bucket { id } } }', lambda w: {}),
    ("upsertBucket by a demo run's id", 'mutation($id: String) { upsertBucket(input: {id: $id, displayName: "pwned"}) '
     '{ bucket { id } } }', lambda w: {"id": w["run_id"]}),
    ("deleteRun", 'mutation($id: ID!) { deleteRun(input: {id: $id}) { clientMutationId } }', lambda w: {"id": w["run_id"]}),
    ("deleteRuns", 'mutation($f: JSONString!) { deleteRuns(input: {entityName: "demo", projectName: "vision", '
     'filters: $f}) { clientMutationId } }', lambda w: {"f": FILTERS}),
    ("undeleteRuns", 'mutation($f: JSONString!) { undeleteRuns(input: {entityName: "demo", projectName: "vision", '
     'filters: $f}) { clientMutationId } }', lambda w: {"f": FILTERS}),
    ("modifyRuns by filter", 'mutation($f: JSONString) { modifyRuns(input: {entityName: "demo", projectName: "vision", '
     'filters: $f, addTags: ["pwned"]}) { runs { id } } }', lambda w: {"f": FILTERS}),
    ("moveRuns out of demo", 'mutation($f: JSONString!) { moveRuns(input: {sourceEntityName: "demo", '
     'sourceProjectName: "vision", destinationEntityName: "carol", destinationProjectName: "loot", filters: $f}) '
     '{ task { state } } }', lambda w: {"f": FILTERS}),
    ("moveRuns into demo", 'mutation($f: JSONString!) { moveRuns(input: {sourceEntityName: "carol", '
     'sourceProjectName: "scratch", destinationEntityName: "demo", destinationProjectName: "vision", filters: $f}) '
     '{ task { state } } }', lambda w: {"f": FILTERS}),
    ("createRunFiles", 'mutation { createRunFiles(input: {entityName: "demo", projectName: "vision", '
     'runName: "vi000010", files: ["x.txt"]}) { files { uploadUrl } } }', lambda w: {}),
    ("markRunFilesUploaded", 'mutation { markRunFilesUploaded(input: {entityName: "demo", projectName: "vision", '
     'runName: "vi000010", files: ["x.txt"]}) { success } }', lambda w: {}),
    ("createArtifact", 'mutation { createArtifact(input: {entityName: "demo", projectName: "vision", '
     'artifactTypeName: "model", artifactCollectionName: "resnet-checkpoints", digest: "d", digestAlgorithm: '
     'MANIFEST_MD5}) { artifact { id } } }', lambda w: {}),
    ("updateArtifact", 'mutation($id: ID!) { updateArtifact(input: {artifactID: $id, description: "pwned"}) '
     '{ artifact { id } } }', lambda w: {"id": w["artifact_id"]}),
    ("deleteArtifact", 'mutation($id: ID!) { deleteArtifact(input: {artifactID: $id, deleteAliases: true}) '
     '{ artifact { id } } }', lambda w: {"id": w["artifact_id"]}),
    ("addAliases", 'mutation($id: ID!) { addAliases(input: {artifactID: $id, aliases: [{alias: "pwned", '
     'artifactCollectionName: "resnet-checkpoints", entityName: "demo", projectName: "vision"}]}) { success } }',
     lambda w: {"id": w["artifact_id"]}),
    ("createArtifactFiles", 'mutation($id: ID!) { createArtifactFiles(input: {storageLayout: V2, artifactFiles: '
     '[{artifactID: $id, name: "x", md5: "XrY7u+Ae7tCTyyK7j1rNww=="}]}) { files { edges { node { uploadUrl } } } } }',
     lambda w: {"id": w["artifact_id"]}),
    ("commitArtifact", 'mutation($id: ID!) { commitArtifact(input: {artifactID: $id}) { artifact { id } } }',
     lambda w: {"id": w["artifact_id"]}),
    ("deleteAliases", 'mutation($id: ID!) { deleteAliases(input: {artifactID: $id, aliases: [{alias: "best", '
     'artifactCollectionName: "resnet-checkpoints", entityName: "demo", projectName: "vision"}]}) { success } }',
     lambda w: {"id": w["artifact_id"]}),
    ("linkArtifact into the outsider's project", 'mutation($id: ID!) { linkArtifact(input: {artifactID: $id, '
     'artifactPortfolioName: "loot", entityName: "carol", projectName: "scratch"}) { versionIndex } }',
     lambda w: {"id": w["artifact_id"]}),
    ("unlinkArtifact", 'mutation($id: ID!, $p: ID!) { unlinkArtifact(input: {artifactID: $id, artifactPortfolioID: $p}) '
     '{ success } }', lambda w: {"id": w["artifact_id"], "p": base64.b64encode(b"ArtifactCollection:v1:1").decode()}),
    ("useArtifact from the outsider's run", 'mutation($id: ID!) { useArtifact(input: {artifactID: $id, '
     'entityName: "carol", projectName: "scratch", runName: "sc000000"}) { artifact { id } } }',
     lambda w: {"id": w["artifact_id"]}),
]


@pytest.mark.parametrize("name,query,variables", MUTATIONS, ids=[m[0] for m in MUTATIONS])
def test_outsider_changes_nothing_of_another_entity(world, name, query, variables):
    before = _demo_state(world["admin"])
    reply = world["carol"].gql(query, variables(world))
    assert reply.errors and NOT_FOUND in reply.errors[0]["message"], reply.body
    assert "demo" not in json.dumps(reply.data or {})
    assert _demo_state(world["admin"]) == before


def test_outsider_ids_match_nothing_in_modify_runs(world):
    """modifyRuns by ids treats an id like a filter: another entity's run simply does not match."""
    reply = world["carol"].gql('mutation($ids: [String]) { modifyRuns(input: {ids: $ids, addTags: ["pwned"]}) '
                               '{ runs { id } } }', {"ids": [world["run_id"]]})
    assert not reply.errors and reply.data["modifyRuns"]["runs"] == []
    assert "pwned" not in _demo_state(world["admin"])["project"]["run"]["tags"]


def test_outsider_file_stream_into_another_entity_is_404(world):
    carol = world["carol"]
    body = {"files": {"wandb-history.jsonl": {"offset": 0, "content": ['{"_step": 0, "pwned": 1}']}}}
    reply = carol.post("/files/demo/vision/vi000010/file_stream", body)
    assert reply.status == 404 and NOT_FOUND in reply.body["error"]
    own = carol.post("/files/carol/scratch/sc000000/file_stream", {"files": {}})
    assert own.status == 200, own.body


def test_outsider_sees_its_own_entity(world):
    data = world["carol"].ok('{ viewer { username entity admin teams { edges { node { name isTeam } } } } '
                             'project(name: "scratch") { runCount } }')
    assert data["viewer"] == {"username": "carol", "entity": "carol", "admin": False,
                              "teams": {"edges": [{"node": {"name": "carol", "isTeam": False}}]}}
    assert data["project"]["runCount"] == 5


def test_team_member_reads_and_writes_the_team_not_others(world):
    alice = world["alice"]
    data = alice.ok('{ viewer { teams { edges { node { name isTeam } } } } '
                    'project(name: "vision", entityName: "demo") { runCount } }')
    assert {"name": "demo", "isTeam": True} in [e["node"] for e in data["viewer"]["teams"]["edges"]]
    assert data["project"]["runCount"] == 1200
    made = alice.ok('mutation { upsertBucket(input: {entityName: "demo", modelName: "team-new", name: "a1"}) '
                    '{ bucket { name project { name entity { name } } } inserted } }')["upsertBucket"]
    assert made["inserted"] and made["bucket"]["project"]["entity"]["name"] == "demo"
    assert world["admin"].ok('{ project(name: "team-new", entityName: "demo") { runCount } }')["project"]["runCount"] == 1
    assert alice.ok('{ project(name: "scratch", entityName: "carol") { runCount } }')["project"] is None
    refused = alice.gql('mutation { upsertBucket(input: {entityName: "carol", modelName: "scratch", name: "x"}) '
                        '{ bucket { id } } }')
    assert "entity 'carol' not found" in refused.errors[0]["message"]


def test_unknown_entity_is_an_error_and_null_entity_is_the_users_own(world):
    alice = world["alice"]
    reply = alice.gql('mutation { upsertBucket(input: {entityName: "nobody", modelName: "p", name: "x"}) '
                      '{ bucket { id } } }')
    assert "entity 'nobody' not found" in reply.errors[0]["message"]
    admin = world["admin"]
    reply = admin.gql('mutation { upsertBucket(input: {entityName: "nobody", modelName: "p", name: "x"}) '
                      '{ bucket { id } } }')
    assert "entity 'nobody' not found" in reply.errors[0]["message"]  # admins create no entities either
    assert admin.ok('{ entity(name: "nobody") { name } }')["entity"] is None
    own = alice.ok('mutation { upsertBucket(input: {entityName: null, modelName: "mine", name: "x"}) '
                   '{ bucket { project { entity { name } } } } }')
    assert own["upsertBucket"]["bucket"]["project"]["entity"]["name"] == "alice"


def test_local_admin_endpoints_are_the_admins_only(world):
    assert world["carol"].post("/_local/faults", {}).status == 403
    assert world["carol"].post("/_local/purge", {}).status == 403
    assert world["admin"].post("/_local/faults", {}).status == 200


def test_revoked_key_gets_401_at_once_from_another_process(world):
    key = _key_for(world["server"], "alice", "alice-laptop")
    laptop = _as(world["server"], key)
    assert laptop.ok("{ viewer { username } }")["viewer"]["username"] == "alice"
    done = _cli("server", "keys", "revoke", "alice-laptop", "--db", str(world["path"]))
    assert done.returncode == 0, done.stderr
    assert "alice-laptop" in done.stderr and key not in done.stdout + done.stderr
    reply = laptop.gql("{ viewer { username } }")
    assert reply.status == 401 and key not in json.dumps(reply.body)
    assert world["alice"].ok("{ viewer { username } }")  # her other key still works


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "wandb_gql.cli", *args], capture_output=True, text=True, timeout=60,
                          env={**os.environ, **(env or {})})


def test_users_add_prints_a_key_once_and_keys_list_never_shows_it(tmp_path):
    db = tmp_path / "server.db"
    added = _cli("server", "users", "add", "dana", "--team", "lab", "--db", str(db))
    assert added.returncode == 0, added.stderr
    key = added.stdout.strip()
    assert key.startswith("local-") and len(key) > 40 and "shown only this once" in added.stderr
    listed = _cli("server", "keys", "list", "--db", str(db))
    users = _cli("server", "users", "list", "--json", "--db", str(db))
    assert listed.returncode == 0 and "dana" in listed.stdout and key not in listed.stdout + listed.stderr
    assert {"username": "dana", "admin": False, "teams": ["lab"], "keys": 1} in \
        [json.loads(line) for line in users.stdout.splitlines()]
    assert key.encode() not in db.read_bytes()  # only its hash is stored
    again = _cli("server", "users", "add", "dana", "--db", str(db))
    assert again.returncode == 2 and again.stderr.count("\n") == 1 and not again.stdout
    with LocalServer(db) as s:
        dana = _as(s, key)
        assert dana.ok("{ viewer { username entity } }")["viewer"] == {"username": "dana", "entity": "dana"}
        assert dana.ok('mutation { upsertBucket(input: {entityName: "lab", modelName: "p", name: "r"}) '
                       '{ inserted } }')["upsertBucket"]["inserted"]


def test_fixed_key_from_a_file_or_the_environment(tmp_path):
    from wandb_gql.cli.server import _fixed_keys

    key_file = tmp_path / "key"
    key_file.write_text("# the rehearsal key\nlocal-" + "a" * 40 + "\n\n")
    assert _fixed_keys(key_file) == ["local-" + "a" * 40]
    os.environ["WBGQL_SERVER_API_KEY"] = "local-" + "b" * 40
    try:
        assert _fixed_keys(None) == ["local-" + "b" * 40]
    finally:
        del os.environ["WBGQL_SERVER_API_KEY"]
    empty = tmp_path / "empty"
    empty.write_text("\n")
    done = _cli("server", "--api-key-file", str(empty), "--db", str(tmp_path / "s.db"))
    assert done.returncode == 2 and "no key in it" in done.stderr


@pytest.mark.parametrize("source", ["file", "env"])
def test_wbgql_server_accepts_a_fixed_key_not_on_its_command_line(tmp_path, source):
    from tests.cli.test_server_cli import start, stop

    key = new_api_key()
    env = {**os.environ}
    args = ["--db", str(tmp_path / "s.db")]
    if source == "file":
        (tmp_path / "key").write_text(key + "\n")
        args += ["--api-key-file", str(tmp_path / "key")]
    else:
        env["WBGQL_SERVER_API_KEY"] = key
    proc, url = start(args, env)
    try:
        assert key not in " ".join(proc.args)  # nothing for `ps` to show
        reply = http("POST", url + "/graphql", b'{"query": "{ viewer { username admin } }"}',
                     {"Authorization": basic(key), "Content-Type": "application/json"})
        assert reply == (200, b'{"data":{"viewer":{"username":"local","admin":true}}}'), reply
    finally:
        out, err = stop(proc)
    assert key not in out + err and "generated" not in err


def test_database_is_0600_in_a_0700_directory(tmp_path):
    path = tmp_path / "made-by-server" / "server.db"
    with LocalServer(path) as s:
        Caller(s).ok('mutation { upsertBucket(input: {modelName: "p", name: "r"}) { inserted } }')
        assert stat.S_IMODE(os.stat(path.parent).st_mode) == 0o700
        for made in path.parent.iterdir():  # server.db, and SQLite's -wal / -shm beside it
            assert stat.S_IMODE(os.stat(made).st_mode) == 0o600, made


def test_a_readable_directory_is_left_alone_with_a_warning(tmp_path, capfd):
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o755)
    with LocalServer(shared / "server.db"):
        pass
    assert "readable by other users" in capfd.readouterr().err
    assert stat.S_IMODE(os.stat(shared).st_mode) == 0o755
    assert stat.S_IMODE(os.stat(shared / "server.db").st_mode) == 0o600


def test_a_database_from_before_users_keeps_its_data_readable(tmp_path):
    """Before teams, one admin acted in every entity: opening such a database makes each entity no
    user owns a team of every existing user, and only `local` stays admin."""
    import sqlite3

    from wandb_gql.server.store import Store

    db = tmp_path / "old.db"
    store = Store(db)
    with store.writing():
        store.ensure_user("alice")
        store.ensure_project("lab", "p")
    store.close()
    conn = sqlite3.connect(db)
    conn.executescript("DROP TABLE team_members; DROP TABLE teams; UPDATE users SET admin = 1;")
    conn.close()
    with LocalServer(db) as s:
        alice = _as(s, _key_for(s, "alice"))
        data = alice.ok('{ viewer { admin } project(name: "p", entityName: "lab") { name } }')
        assert data == {"viewer": {"admin": False}, "project": {"name": "p"}}
        assert Caller(s).ok("{ viewer { admin } }")["viewer"]["admin"] is True


# -- storage URLs ------------------------------------------------------------------------------

FILES = 'mutation($e: String!, $p: String!, $r: String!) { createRunFiles(input: {entityName: $e, projectName: $p, ' \
        'runName: $r, files: ["f.txt"]}) { files { uploadUrl } } }'


def _run_file_url(api: Caller, project: str, run: str) -> str:
    api.ok('mutation($p: String, $r: String) { upsertBucket(input: {modelName: $p, name: $r}) { inserted } }',
           {"p": project, "r": run})
    return api.ok(FILES, {"e": "local", "p": project, "r": run})["createRunFiles"]["files"][0]["uploadUrl"]


def _grant(url: str, secret: str) -> tokens.Grant:
    grant = tokens.check(secret, url.rsplit("/", 1)[1])
    assert isinstance(grant, tokens.Grant)
    return grant


def test_deleted_runs_url_stops_and_an_old_url_never_reaches_a_reused_file_id(tmp_path):
    with LocalServer(tmp_path / "server.db", retention=timedelta(0)) as s:
        api = Caller(s)
        old = _run_file_url(api, "p", "first")
        assert http("PUT", old, b"first's bytes")[0] == 200
        assert http("GET", old) == (200, b"first's bytes")
        run_id = api.ok('{ project(name: "p") { run(name: "first") { id } } }')["project"]["run"]["id"]
        api.ok('mutation($id: ID!) { deleteRun(input: {id: $id}) { clientMutationId } }', {"id": run_id})
        assert http("GET", old)[0] == 404 and http("PUT", old, b"x")[0] == 404
        time.sleep(1.1)  # timestamps have whole seconds: the purge takes runs deleted before now
        assert api.post("/_local/purge", {}).status == 200  # (the purge loop may have been first)
        new = _run_file_url(api, "p", "second")
        secret = s.server.store.secret
        # SQLite handed the purged ids out again: same run id and file id, another run
        assert (_grant(new, secret).owner, _grant(new, secret).target) == \
            (_grant(old, secret).owner, _grant(old, secret).target)
        assert http("PUT", new, b"second's bytes")[0] == 200
        assert http("GET", old)[0] == 404
        assert http("PUT", old, b"overwritten")[0] == 404
        assert http("GET", new) == (200, b"second's bytes")


def test_a_url_moved_to_another_run_is_refused(tmp_path):
    with LocalServer(tmp_path / "server.db") as s:
        api = Caller(s)
        a = _grant(_run_file_url(api, "p", "a"), s.server.store.secret)
        b = _grant(_run_file_url(api, "p", "b"), s.server.store.secret)
        secret = s.server.store.secret
        # Signed with the real secret, but naming run a's file under run b (and b's binding)
        crossed = tokens.mint(secret, tokens.RUN_FILE, b.owner, a.target, bound=b.bound)
        assert http("GET", f"{s.base_url}/storage/{crossed}")[0] == 404
        assert http("PUT", f"{s.base_url}/storage/{crossed}", b"x")[0] == 404
        expired = tokens.mint(secret, tokens.RUN_FILE, a.owner, a.target, bound=a.bound, ttl=-1)
        assert http("GET", f"{s.base_url}/storage/{expired}")[0] == 403


def test_unauthenticated_and_bad_keys_leak_nothing(world):
    reply = world["admin"].gql('{ project(name: "vision", entityName: "demo") { runCount } }',
                               auth=basic("local-" + "z" * 40))
    assert reply.status == 401 and "demo" not in json.dumps(reply.body)
