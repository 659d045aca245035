"""`wbgql runs export` / `wbgql runs import`: runs copied from one local server to another read back
the same; a second import renames instead of overwriting; an import killed with SIGKILL and
resumed writes every run once with its whole history; bad input exits 2 before anything is sent."""

from __future__ import annotations

import json
import math
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from typing import Any

import pytest

from wandb_gql import SyncClient
from wandb_gql.server.local import LocalServer

from ..conftest import Caller, Recorder, add_team
from .conftest import Terminal, requests_seen, run_process

STATES = ["finished", "failed", "crashed", "killed", "running"]


def make_project(server: LocalServer, project: str, runs: int, steps: int) -> str:
    """A project written by this client: every state, tags, notes, groups, nested config, a summary
    with NaN and Infinity, history with NaN/±Infinity, nested dicts and keys logged on some steps
    only. Returns ENTITY/PROJECT."""
    caller = Caller(server)
    with SyncClient(server.base_url, server.api_key) as client:
        path = f"{client.viewer().entity}/{project}"
        for i in range(runs):
            state = STATES[i % len(STATES)]
            run = client.create_run(path, name=f"run{i:03d}", display_name=f"copy-me-{i}",
                                    config={"lr": 10 ** -(i % 4), "optim": {"name": "adam", "betas": [0.9, 0.99]}},
                                    tags=["baseline", f"t{i % 3}"] if i % 4 else None, notes=f"note {i}" if i % 2 else None,
                                    group=["a", "b", None][i % 3], job_type="train" if i % 2 else "eval")
            rows = []
            for step in range(steps):
                row: dict[str, Any] = {"_step": step, "loss": 1.0 / (step + 1 + i), "acc": {"top1": step / steps}}
                if step % 37 == 5:
                    row["loss"] = math.nan
                elif step % 53 == 7:
                    row["loss"] = math.inf if step % 2 else -math.inf
                if step % 10 == 0:
                    row["val"] = {"loss": 0.5 + i, "acc": step / 1000}
                rows.append(row)
            client.log(run, rows)
            client.set_summary(run, {"loss": math.nan if i % 2 else 0.25, "best": {"acc": math.inf, "step": steps},
                                     "epoch": i}, replace=True)
            if state in ("finished", "failed"):
                client.finish(run, exit_code=0 if state == "finished" else 1)
            else:
                caller.ok("mutation S($input: UpsertBucketInput!) { upsertBucket(input: $input) { bucket { id } } }",
                          {"input": {"id": run.id, "state": state}})
    return path


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """Server A: the demo data plus a project of this module's own."""
    with LocalServer(tmp_path_factory.mktemp("source") / "a.db", seed="demo") as s:
        yield s


@pytest.fixture(scope="module")
def copy_me(source) -> str:
    return make_project(source, "copy-me", runs=10, steps=300)


@pytest.fixture
def dest(tmp_path):
    """Server B: empty, of this test's own."""
    with LocalServer(tmp_path / "b.db") as s:
        add_team(s, "e")  # the entity the tests import into: upsertBucket creates no entities
        yield s


def entity_of(server: LocalServer) -> str:
    with SyncClient(server.base_url, server.api_key) as client:
        return client.viewer().entity


def norm(value: Any) -> Any:
    """NaN compares equal to NaN; W&B's strings and floats for non-finite numbers read alike."""
    if isinstance(value, str) and value in ("NaN", "Infinity", "-Infinity"):
        value = float(value)
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    if isinstance(value, dict):
        return {k: norm(v) for k, v in value.items()}
    if isinstance(value, list):
        return [norm(v) for v in value]
    return value


COPIED = ("name", "display_name", "state", "tags", "group", "job_type", "notes", "config", "summary")


def snapshot(server: LocalServer, path: str, rename: dict[str, str] | None = None, **kw: Any) -> dict[str, Any]:
    """Every run of path as this client reads it: the copied fields and every history row,
    by source run id (`rename` maps a copy's id back to its source's)."""
    back = {new: old for old, new in (rename or {}).items()}
    with SyncClient(server.base_url, server.api_key) as client:
        runs = {r.name: r for r in client.runs(path, config_keys=True, summary_keys=True, **kw)}
        history: dict[str, list[Any]] = {name: [] for name in runs}
        for run, rows in client.history(list(runs.values()), keys=None, full=True):
            history[run.name] += rows
    out = {}
    for name, run in runs.items():
        record = {k: norm(v) for k, v in run.to_dict().items() if k in COPIED}
        record["config"].pop("_wandb", None)  # the SDK's own entry, which wandb.Api hides too
        record["name"] = back.get(name, name)
        record["history"] = sorted((norm(row) for row in history[name]), key=lambda row: row["_step"])
        out[record["name"]] = record
    return out


def cli(server: LocalServer, *args: str, **kw: Any) -> subprocess.CompletedProcess:
    return run_process("--base-url", server.base_url, "--api-key", server.api_key, *args, **kw)


def test_copy_reads_back_the_same_on_another_server(wbgql, source, copy_me, dest, tmp_path):
    out = tmp_path / "runs.jsonl"
    r = wbgql.remote(source, "runs", "export", copy_me, "--with-history", "--out", str(out))
    assert r.exit_code == 0, r
    assert "10 runs, 3,000 history rows written to" in r.stderr
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    with SyncClient(source.base_url, source.api_key) as client:  # the one vocabulary: runs list -f json's keys
        keys = set(next(iter(client.runs(copy_me, config_keys=True, summary_keys=True))).to_dict())
    assert all(set(line) == keys | {"history"} for line in lines)
    assert {"name", "state", "config", "summary", "created_at", "user"} <= keys
    assert any(row.get("loss") == "NaN" for line in lines for row in line["history"]), "NaN kept as W&B's string"
    target = f"{entity_of(dest)}/copy"
    r = wbgql.remote(dest, "runs", "import", str(out), target, "--json")
    assert r.exit_code == 0, r
    summary = json.loads(r.stdout)
    assert summary == {"ok": True, "dest": target, "imported": 10, "already_done": 0, "rows": 3000, "renamed": {},
                       "failed": {}, "sidecar": None}
    assert not list(tmp_path.glob("runs.jsonl.import-*")), "a complete import leaves no sidecar"
    want = snapshot(source, copy_me)
    got = snapshot(dest, target)
    assert got == want
    assert {r["state"] for r in got.values()} == set(STATES)


def test_demo_runs_copy_with_where_and_ids(wbgql, source, dest, tmp_path):
    out = tmp_path / "crashed.jsonl"
    where = "state in (crashed, failed) and tags has baseline"
    r = wbgql.remote(source, "runs", "export", "demo/vision", "--where", where, "--with-history", "--out", str(out))
    assert r.exit_code == 0, r
    want = snapshot(source, "demo/vision", where=where)
    assert 5 < len(want) < 200
    assert sorted(json.loads(line)["name"] for line in out.read_text().splitlines()) == sorted(want)
    target = f"{entity_of(dest)}/vision"
    r = wbgql.remote(dest, "runs", "import", str(out), target)
    assert r.exit_code == 0, r
    assert snapshot(dest, target) == want
    # --id pins the runs, with or without a filter
    two = sorted(want)[:2]
    r = wbgql.remote(source, "runs", "export", "demo/vision", "--id", two[0], "--id", two[1], "--out", "-")
    assert r.exit_code == 0, r
    assert sorted(json.loads(line)["name"] for line in r.stdout.splitlines()) == two
    assert "history" not in json.loads(r.stdout.splitlines()[0])


def test_importing_twice_renames_and_overwrites_nothing(wbgql, source, copy_me, dest, tmp_path):
    out = tmp_path / "runs.jsonl"
    assert wbgql.remote(source, "runs", "export", copy_me, "--with-history", "--out", str(out)).exit_code == 0
    target = f"{entity_of(dest)}/twice"
    assert wbgql.remote(dest, "runs", "import", str(out), target).exit_code == 0
    first = snapshot(dest, target)
    r = wbgql.remote(dest, "runs", "import", str(out), target, "--json")
    assert r.exit_code == 0, r
    summary = json.loads(r.stdout)
    renamed = summary["renamed"]
    assert sorted(renamed) == sorted(first) and summary["imported"] == 10
    assert not set(renamed.values()) & set(first), "every copy got an id of its own"
    assert all(re.fullmatch(r"[a-z0-9]{8}", new) for new in renamed.values())
    assert "10 runs got new ids" in r.stderr and "run000 -> " in r.stderr
    everything = snapshot(dest, target)
    assert len(everything) == 20
    assert {k: v for k, v in everything.items() if k in first} == first, "the first copies are untouched"
    assert snapshot(dest, target, rename=renamed, where="name in (" + ", ".join(f'"{n}"' for n in renamed.values()) + ")") == first


@pytest.fixture(scope="module")
def big(source, tmp_path_factory) -> tuple[str, bytes]:
    """12 runs of 2,000 steps: (their path on the source, their export file's bytes)."""
    path = make_project(source, "big", runs=12, steps=2000)
    out = tmp_path_factory.mktemp("big") / "big.jsonl"
    assert cli(source, "runs", "export", path, "--with-history", "--out", str(out)).returncode == 0
    return path, out.read_bytes()


def _steps_once(server: LocalServer, path: str, runs: int, steps: int) -> None:
    """Every run of the file once, each with every step once."""
    with SyncClient(server.base_url, server.api_key) as client:
        names = [run.name for run in client.runs(path)]
        seen: dict[str, Counter] = {name: Counter() for name in names}
        for run, rows in client.history(path, keys=None, full=True):
            seen[run.name].update(row["_step"] for row in rows)
    assert sorted(names) == [f"run{i:03d}" for i in range(runs)], "every run exactly once"
    for name, counts in seen.items():
        assert max(counts.values()) == 1, f"{name}: a step twice"
        assert set(counts) == set(range(steps)), f"{name}: steps missing"


def test_a_failed_run_is_reported_and_resume_retries_it(wbgql, source, copy_me, dest, tmp_path):
    out = tmp_path / "runs.jsonl"
    assert wbgql.remote(source, "runs", "export", copy_me, "--with-history", "--out", str(out)).exit_code == 0
    proxy = Recorder(dest.base_url)
    proxy.fail_when = lambda body: ((400, ["refused by the test proxy"]) if body.get("operationName") == "CreateRun"
                                    and body["variables"]["input"]["name"] == "run003" else None)
    r = wbgql("--base-url", proxy.base_url, "--api-key", dest.api_key, "runs", "import", str(out), "e/p", "--json")
    assert r.exit_code == 1, r
    summary = json.loads(r.stdout)
    assert summary["imported"] == 9 and list(summary["failed"]) == ["run003"] and summary["renamed"] == {}
    assert "refused by the test proxy" in summary["failed"]["run003"]
    assert "failed: run003: " in r.stderr and "--resume" in r.stderr
    assert summary["sidecar"] and os.path.exists(summary["sidecar"]), "kept for the retry"
    r = wbgql.remote(dest, "runs", "import", str(out), "e/p", "--resume", "--json")
    assert r.exit_code == 0, r
    assert json.loads(r.stdout) | {"sidecar": None} == {"ok": True, "dest": "e/p", "imported": 1, "already_done": 9,
                                                        "rows": 300, "renamed": {}, "failed": {}, "sidecar": None}
    assert snapshot(dest, "e/p") == snapshot(source, copy_me)


def test_an_id_held_by_a_deleted_run_is_not_reused(wbgql, source, copy_me, dest, tmp_path):
    out = tmp_path / "runs.jsonl"
    assert wbgql.remote(source, "runs", "export", copy_me, "--id", "run001", "--id", "run002",
                        "--out", str(out)).exit_code == 0
    with SyncClient(dest.base_url, dest.api_key) as client:
        client.create_run("e/p", name="run001", display_name="deleted before the import")
        assert [o.status for o in client.delete_runs("e/p", ["run001"])] == ["deleted"]
    r = wbgql.remote(dest, "runs", "import", str(out), "e/p", "--json")
    assert r.exit_code == 0, r
    renamed = json.loads(r.stdout)["renamed"]
    assert list(renamed) == ["run001"]
    with SyncClient(dest.base_url, dest.api_key) as client:
        assert sorted(run.name for run in client.runs("e/p")) == sorted(["run002", renamed["run001"]])
        assert [(run.name, run.display_name) for run in client.deleted_runs("e/p")] == [
            ("run001", "deleted before the import")], "the deleted run stays as it was"


def test_killed_import_resumes_every_run_once(source, big, dest, tmp_path):
    out = tmp_path / "big.jsonl"
    out.write_bytes(big[1])
    target = f"{entity_of(dest)}/big"
    sidecar = out.with_name(f"big.jsonl.import-{target.replace('/', '_')}.jsonl")
    args = ["--base-url", dest.base_url, "--api-key", dest.api_key, "runs", "import", str(out), target,
            "--concurrency", "2"]
    dest_api = Caller(dest)
    child = subprocess.Popen([sys.executable, "-m", "wandb_gql.cli", *args], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, env=os.environ.copy())
    partial = False
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and child.poll() is None:
            counts = _line_counts(dest_api, target)
            whole = sum(n == 2000 for n in counts)
            if whole >= 2 and any(0 < n < 2000 for n in counts):
                partial = True  # runs done, and one cut off in the middle of its history
                break
            if whole >= 6:
                break
            time.sleep(0.005)
        child.send_signal(signal.SIGKILL)
    finally:
        child.wait(10)
    events = []
    for line in sidecar.read_text().splitlines():
        try:
            events.append(json.loads(line))
        except ValueError:  # blank, or cut off by the kill
            pass
    done = {e["old"] for e in events if e["event"] == "done"}
    assert 0 < len(done) < 12, "the import was not interrupted mid-way"
    r = run_process(*args)
    assert r.returncode == 2 and "use --resume" in r.stderr, r.stderr
    r = run_process(*args, "--resume", "--json")
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)
    assert summary["already_done"] == len(done) and summary["imported"] == 12 - len(done), (summary, partial)
    assert summary["renamed"] == {}
    assert not sidecar.exists()
    _steps_once(dest, target, 12, 2000)
    assert snapshot(dest, target) == snapshot(source, big[0])


def test_ctrl_c_says_how_to_resume_and_resume_finishes(big, dest, tmp_path):
    out = tmp_path / "big.jsonl"
    out.write_bytes(big[1])
    args = ["--base-url", dest.base_url, "--api-key", dest.api_key, "runs", "import", str(out), "e/ctrl-c",
            "--concurrency", "2"]
    dest_api = Caller(dest)
    child = subprocess.Popen([sys.executable, "-m", "wandb_gql.cli", *args], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=os.environ.copy())
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and child.poll() is None:
        if sum(n > 0 for n in _line_counts(dest_api, "e/ctrl-c")) >= 3:
            break
        time.sleep(0.005)
    child.send_signal(signal.SIGINT)
    _, err = child.communicate(timeout=30)
    assert child.returncode == 130, err
    assert "interrupted: progress is in" in err and f"resume: wbgql runs import {out} e/ctrl-c --resume" in err
    r = run_process(*args, "--resume")
    assert r.returncode == 0, r.stderr
    _steps_once(dest, "e/ctrl-c", 12, 2000)


def _line_counts(api: Caller, path: str) -> list[int]:
    entity, project = path.split("/")
    reply = api.gql("query R($e: String!, $p: String!) { project(name: $p, entityName: $e) "
                    "{ runs(first: 100) { edges { node { historyLineCount } } } } }", {"e": entity, "p": project})
    project_node = (reply.data or {}).get("project") if isinstance(reply.body, dict) else None
    if not project_node:
        return []
    return [e["node"]["historyLineCount"] or 0 for e in project_node["runs"]["edges"]]


def test_bad_input_exits_2_with_one_line_and_sends_nothing(wbgql, source, copy_me, dest, tmp_path):
    good = tmp_path / "good.jsonl"
    assert wbgql.remote(source, "runs", "export", copy_me, "--id", "run001", "--out", str(good)).exit_code == 0
    line = good.read_text()
    files = {
        "not-json.jsonl": line + "this is not json\n",
        "csv.jsonl": "name,state\nrun1,finished\n",
        "no-name.jsonl": line + json.dumps({"state": "finished", "config": {}}) + "\n",
        "array.jsonl": "[1, 2]\n",
        "twice.jsonl": line + line,
        "empty.jsonl": "\n\n",
        "bad-history.jsonl": json.dumps({"name": "x", "history": [{"_step": -1}]}) + "\n",
        "bad-config.jsonl": json.dumps({"name": "x", "config": [1]}) + "\n",
    }
    cases = []
    for name, text in files.items():
        (tmp_path / name).write_text(text)
        cases.append([str(tmp_path / name), "e/p"])
    cases += [[str(good), "a/b/c/d"], [str(good), ""], [str(tmp_path / "missing.jsonl"), "e/p"],
              [str(tmp_path), "e/p"]]
    before = requests_seen(dest)
    for args in cases:
        r = wbgql.remote(dest, "runs", "import", *args)
        assert r.exit_code == 2, (args, r)
        assert r.stderr.startswith("error: ") and len(r.stderr.splitlines()) <= 2, r  # the error, maybe a hint
    assert "line 2" in wbgql.remote(dest, "runs", "import", str(tmp_path / "not-json.jsonl"), "e/p").stderr
    assert "no run id (name)" in wbgql.remote(dest, "runs", "import", str(tmp_path / "no-name.jsonl"), "e/p").stderr
    assert requests_seen(dest) == before, "bad input sent nothing"
    assert not list(tmp_path.glob("*.import-*")), "no sidecar for an import that never started"
    r = wbgql.remote(dest, "runs", "import", str(good), "e/p", "--resume")
    assert r.exit_code == 2 and "nothing to resume" in r.stderr, r
    # an entity that is not the viewer's nor one of their teams: one error before any run is written
    r = wbgql.remote(dest, "runs", "import", str(good), "stranger/p")
    assert r.exit_code == 2 and "entity 'stranger' is not" in r.stderr and "hint: import into" in r.stderr, r
    assert not list(tmp_path.glob("*.import-*")), "nothing started"
    before = requests_seen(dest)
    # a sidecar of an unfinished import is in the way until --resume or removal
    sidecar = tmp_path / "good.jsonl.import-e_p.jsonl"
    sidecar.write_text(json.dumps({"event": "started", "old": "run001", "new": "run001"}) + "\n")
    r = wbgql.remote(dest, "runs", "import", str(good), "e/p")
    assert r.exit_code == 2 and "use --resume to continue it, or remove" in r.stderr, r
    assert requests_seen(dest) == before
    # export refuses to overwrite a file, and bad filters, before sending
    before = requests_seen(source)
    for args in (["--out", str(good)], ["--out", str(tmp_path / "n.jsonl"), "--where", "state = = x"],
                 ["--out", "-", "--resume"], ["--out", str(tmp_path)]):
        r = wbgql.remote(source, "runs", "export", "demo/rl", *args)
        assert r.exit_code == 2 and r.stderr.startswith("error: "), (args, r)
    assert requests_seen(source) == before


def test_interrupted_export_resumes_from_its_complete_lines(wbgql, source, tmp_path):
    out = tmp_path / "rl.jsonl"
    assert wbgql.remote(source, "runs", "export", "demo/rl", "--with-history", "--out", str(out)).exit_code == 0
    whole = out.read_bytes()
    lines = whole.splitlines(keepends=True)
    out.write_bytes(b"".join(lines[:50]) + lines[50][: len(lines[50]) // 2])  # cut mid-line, as a kill does
    r = wbgql.remote(source, "runs", "export", "demo/rl", "--with-history", "--out", str(out), "--resume")
    assert r.exit_code == 0, r
    assert "(50 runs were already there)" in r.stderr
    again = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted(x["name"] for x in again) == sorted(json.loads(line)["name"] for line in lines)
    assert len(again) == 200


def test_local_to_local_rehearsal(wbgql, tmp_path):
    """The README's rehearsal: export from the embedded server, import into another project of it."""
    out = tmp_path / "rl.jsonl"
    r = wbgql("--local", "runs", "export", "demo/rl", "--where", "state = crashed", "--with-history", "--out", str(out))
    assert r.exit_code == 0, r
    r = wbgql("--local", "runs", "import", str(out), "demo/rl-rehearsal", "--json")
    assert r.exit_code == 0, r
    n = json.loads(r.stdout)["imported"]
    r = wbgql("--local", "runs", "count", "demo/rl-rehearsal", "-f", "json")
    assert r.exit_code == 0 and str(n) in r.stdout, r


def test_progress_on_a_terminal_shows_runs_and_rows(source, big, dest, tmp_path):
    env = {**os.environ, "TERM": "xterm", "COLUMNS": "120"}
    with Terminal() as terminal:
        proc = subprocess.run([sys.executable, "-m", "wandb_gql.cli", "--base-url", source.base_url, "--api-key",
                               source.api_key, "runs", "export", "demo/vision", "--with-history", "--concurrency", "2",
                               "--out", str(tmp_path / "vision.jsonl")],
                              env=env, stdout=subprocess.DEVNULL, stderr=terminal.fd, timeout=180)
    assert proc.returncode == 0, terminal.text
    assert re.search(r"export \([\d,]+ rows\).*\d+/1,200", terminal.text), terminal.text
    assert "1,200 runs, " in terminal.text
    out = tmp_path / "big.jsonl"
    out.write_bytes(big[1])
    with Terminal() as terminal:
        proc = subprocess.run([sys.executable, "-m", "wandb_gql.cli", "--base-url", dest.base_url, "--api-key",
                               dest.api_key, "runs", "import", str(out), "e/p", "--concurrency", "1"],
                              env=env, stdout=subprocess.DEVNULL, stderr=terminal.fd, timeout=180)
    assert proc.returncode == 0, terminal.text
    assert re.search(r"import \([\d,]+/24,000 rows\).*\d+/12", terminal.text), terminal.text
    assert "12 runs (24,000 history rows) imported into e/p" in terminal.text
