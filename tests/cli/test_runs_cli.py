"""`wbgql runs ...` end to end: in-process (CliRunner) and as real processes, against the local
server. Reading tests use the session's demo server (demo/vision 1200 runs, nlp 600, rl 200);
tests that change runs use a demo server of this module's own (`mutable_server`)."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from .conftest import Terminal, parse_jsonl, requests_seen, run_process

HEAVY = ("aiohttp", "gql", "pydantic", "graphql", "orjson", "rich")


# ---------------------------------------------------------------------------- list


def test_list_json_matches_count(wbgql, server):
    count = wbgql.remote(server, "runs", "count", "demo/rl")
    assert count.exit_code == 0, count
    out = wbgql.remote(server, "--format", "json", "runs", "list", "demo/rl")
    assert out.exit_code == 0, out
    runs = json.loads(out.stdout)
    assert len(runs) == int(count.stdout) == 200
    assert len({r["name"] for r in runs}) == 200
    first = runs[0]
    # JSON keys are the one vocabulary (the names --where takes); no config/summary unless asked for
    assert {"id", "name", "display_name", "state", "tags", "created_at", "job_type", "path"} <= set(first)
    assert "config" not in first and "summary" not in first
    assert first["name"] == "rl000199" and first["path"] == "demo/rl/rl000199"  # newest first by default
    assert [r["created_at"] for r in runs] == sorted((r["created_at"] for r in runs), reverse=True)


def test_list_jsonl_with_where_matches_count(wbgql, server):
    where = "state in (crashed, failed) and summary.loss > 1"
    count = wbgql.remote(server, "--format", "json", "runs", "count", "demo/vision", "--where", where)
    assert count.exit_code == 0, count
    n = json.loads(count.stdout)["count"]
    assert 0 < n < 1200
    out = wbgql.remote(server, "--format", "jsonl", "runs", "list", "demo/vision", "--where", where,
                       "--summary-keys", "loss")
    assert out.exit_code == 0, out
    runs = parse_jsonl(out.stdout)
    assert len(runs) == n
    assert all(r["state"] in ("crashed", "failed") and r["summary"]["loss"] > 1 for r in runs)


def test_list_csv_projection_columns(wbgql, server):
    out = wbgql.remote(server, "runs", "list", "demo/rl", "--format", "csv", "--config-keys", "lr,optimizer",
                       "--summary-keys", "loss,val/acc", "--where", "tags has baseline")
    assert out.exit_code == 0, out
    rows = list(csv.DictReader(io.StringIO(out.stdout)))
    n = int(wbgql.remote(server, "runs", "count", "demo/rl", "--where", "tags has baseline").stdout)
    assert len(rows) == n > 0
    header = out.stdout.splitlines()[0].split(",")
    assert header[:5] == ["id", "name", "display_name", "state", "tags"]
    assert header[-4:] == ["config.lr", "config.optimizer", "summary.loss", "summary.val/acc"]
    # the same runs as JSON, to compare values: nested values are JSON text in csv
    same = json.loads(wbgql.remote(server, "-f", "json", "runs", "list", "demo/rl", "--config-keys", "lr,optimizer",
                                   "--summary-keys", "loss,val/acc", "--where", "tags has baseline").stdout)
    for row, run in zip(rows, same):
        assert row["name"] == run["name"]
        assert json.loads(row["tags"]) == run["tags"] and "baseline" in run["tags"]
        assert float(row["config.lr"]) == run["config"]["lr"]
        assert json.loads(row["config.optimizer"]) == run["config"]["optimizer"]
        assert float(row["summary.loss"]) == run["summary"]["loss"]
        assert float(row["summary.val/acc"]) == run["summary"]["val/acc"]
        assert set(run["config"]) <= {"lr", "optimizer"}  # projection: only the asked keys came back
        assert set(run["summary"]) <= {"loss", "val/acc"}


def test_list_table_with_projection_and_limit(wbgql, server):
    out = wbgql.remote(server, "runs", "list", "demo/rl", "--limit", "5", "--config-keys", "lr",
                       "--summary-keys", "loss")
    assert out.exit_code == 0, out
    lines = out.stdout.splitlines()
    # not a terminal: plain tab-separated text, a header and one line per run, no rules or padding
    header = lines[0].split("\t")
    assert header == ["name", "display_name", "state", "created_at", "tags", "config.lr", "summary.loss"]
    assert [line.split("\t")[0] for line in lines[1:]] == [f"rl{i:06d}" for i in range(199, 194, -1)]
    assert all(len(line.split("\t")) == 7 for line in lines) and "─" not in out.stdout
    assert out.stderr == ""


def test_list_limit_and_pages(wbgql, server):
    out = wbgql.remote(server, "-f", "json", "runs", "list", "demo/vision", "--limit", "7", "--per-page", "3",
                       "--order", "created_at")
    assert out.exit_code == 0, out
    assert [r["name"] for r in json.loads(out.stdout)] == [f"vi{i:06d}" for i in range(7)]
    out = wbgql.remote(server, "-f", "json", "runs", "list", "demo/vision", "--limit", "0")
    assert (out.exit_code, json.loads(out.stdout)) == (0, [])
    out = wbgql.remote(server, "-f", "csv", "runs", "list", "demo/rl", "--per-page", "64", "--order", "-created_at")
    names = [row["name"] for row in csv.DictReader(io.StringIO(out.stdout))]
    assert names == [f"rl{i:06d}" for i in reversed(range(200))]


def test_list_every_key_with_star(wbgql, server):
    out = wbgql.remote(server, "-f", "csv", "runs", "list", "demo/rl", "-n", "3", "--config-keys", "*")
    assert out.exit_code == 0, out
    header = out.stdout.splitlines()[0].split(",")
    assert {"config.lr", "config.batch_size", "config.optimizer"} <= set(header)
    assert not any(h.startswith("summary.") for h in header)


def test_list_empty_result(wbgql, server):
    for fmt, expected in (("json", "[]\n"), ("jsonl", "")):
        out = wbgql.remote(server, "-f", fmt, "runs", "list", "demo/rl", "--where", "name = nothing-here")
        assert (out.exit_code, out.stdout) == (0, expected), out
    out = wbgql.remote(server, "-f", "csv", "runs", "list", "demo/rl", "--where", "name = nothing-here")
    assert out.stdout.startswith("id,name,display_name") and len(out.stdout.splitlines()) == 1


def test_local_format_option_overrides_global(wbgql, server):
    out = wbgql.remote(server, "runs", "count", "demo/rl", "--format", "json")
    assert json.loads(out.stdout) == {"count": 200}


def test_entity_option_and_env(wbgql, server, monkeypatch):
    out = wbgql.remote(server, "--entity", "demo", "runs", "count", "nlp")
    assert (out.exit_code, out.stdout) == (0, "600\n"), out
    monkeypatch.setenv("WANDB_ENTITY", "demo")
    out = wbgql.remote(server, "runs", "count", "rl")
    assert (out.exit_code, out.stdout) == (0, "200\n"), out


# ---------------------------------------------------------------------------- count, get, explain


def test_count(wbgql, server):
    assert wbgql.remote(server, "runs", "count", "demo/vision").stdout == "1200\n"
    out = wbgql.remote(server, "-f", "json", "runs", "count", "demo/vision", "--filters", '{"state": "crashed"}')
    crashed = json.loads(out.stdout)["count"]
    where = wbgql.remote(server, "runs", "count", "demo/vision", "--where", "state = crashed")
    assert int(where.stdout) == crashed > 0


def test_get(wbgql, server):
    out = wbgql.remote(server, "-f", "json", "runs", "get", "demo/rl/rl000001")
    assert out.exit_code == 0, out
    run = json.loads(out.stdout)
    assert run["name"] == "rl000001" and run["path"] == "demo/rl/rl000001"
    assert {"lr", "batch_size", "optimizer"} <= set(run["config"])
    assert isinstance(run["config"]["lr"], float)  # unwrapped from {"value": v}
    assert {"loss", "val/acc", "best"} <= set(run["summary"])
    table = wbgql.remote(server, "runs", "get", "demo/rl/rl000001")
    assert table.exit_code == 0, table
    # a vertical key/value list; not a terminal: key<TAB>value
    rows = dict(line.split("\t", 1) for line in table.stdout.splitlines())
    assert rows["name"] == "rl000001"
    assert float(rows["config.lr"]) == run["config"]["lr"]
    assert rows["url"].endswith("/demo/rl/runs/rl000001")
    # PROJECT/RUN_ID with the default entity
    out = wbgql.remote(server, "--entity", "demo", "-f", "json", "runs", "get", "rl/rl000001")
    assert json.loads(out.stdout)["path"] == "demo/rl/rl000001", out


def test_get_not_found(wbgql, server):
    out = wbgql.remote(server, "runs", "get", "demo/rl/nope")
    assert out.exit_code == 1, out
    assert out.stderr.splitlines()[0] == "error: run demo/rl/nope not found"
    assert "hint:" in out.stderr and out.stdout == ""
    out = wbgql.remote(server, "runs", "get", "rl000001")  # no project
    assert out.exit_code == 2 and "cannot read run path 'rl000001'" in out.stderr, out


def test_explain(wbgql, server):
    where = "summary.val/acc >= 0.8 and name ~ '^vi00'"
    out = wbgql.remote(server, "runs", "explain", "demo/vision", "--where", where)
    assert out.exit_code == 0, out
    n = int(wbgql.remote(server, "runs", "count", "demo/vision", "--where", where).stdout)
    assert f"run_count: {n}" in out.stdout
    assert '"summary_metrics.val/acc"' in out.stdout and '"$regex": "^vi00"' in out.stdout
    assert "anchors" in out.stdout  # the lint warning about regex anchors
    as_json = json.loads(wbgql.remote(server, "-f", "json", "runs", "explain", "demo/vision", "--where", where).stdout)
    assert as_json["filters"] == {"$and": [{"summary_metrics.val/acc": {"$gte": 0.8}},
                                           {"name": {"$regex": "^vi00"}}]}
    assert as_json["run_count"] == n and "regex-anchors" in {w["code"] for w in as_json["warnings"]}
    # a raw filter with W&B's best-known trap: the lint says how to fix it, and the server, as
    # lenient as W&B, matches nothing
    raw = wbgql.remote(server, "runs", "explain", "demo/vision", "--filters", '{"summary.loss": {"$lt": 1}}')
    assert "summary keys are filtered as 'summary_metrics.loss'" in raw.stdout, raw
    assert raw.exit_code == 0 and "run_count: 0" in raw.stdout, raw

    # --destructive: says whether a delete would refuse the filter as matching every run
    every = json.loads(wbgql.remote(server, "-f", "json", "runs", "explain", "demo/vision", "--destructive",
                                    "--where", "state != finshed").stdout)
    assert [w["code"] for w in every["warnings"]] == ["unknown-state", "matches-every-run"]
    assert every["run_count"] == 1200
    narrow = json.loads(wbgql.remote(server, "-f", "json", "runs", "explain", "demo/vision", "--destructive",
                                     "--where", where).stdout)
    assert "matches-every-run" not in {w["code"] for w in narrow["warnings"]}
    raw = wbgql.remote(server, "-f", "json", "runs", "explain", "demo/vision", "--filters", '{"summary.loss": 1}')
    assert raw.exit_code == 0, raw
    assert json.loads(raw.stdout)["run_count"] == 0
    assert "summary-prefix" in {w["code"] for w in json.loads(raw.stdout)["warnings"]}


def test_lint_warnings_on_stderr(wbgql, server):
    out = wbgql.remote(server, "runs", "count", "demo/vision", "--where", "state = finshed")
    assert out.exit_code == 0 and out.stdout == "0\n", out
    assert out.stderr.startswith("warning: state 'finshed' is never used by W&B")


# ---------------------------------------------------------------------------- bad input: exit 2, nothing sent


def test_where_and_filters_are_exclusive(wbgql, server):
    before = requests_seen(server)
    for command in ("list", "count", "explain", "delete", "update"):
        extra = ["--name", "x"] if command == "update" else []
        out = wbgql.remote(server, "runs", command, "demo/rl", "--where", "state = crashed",
                           "--filters", '{"state": "crashed"}', *extra)
        assert out.exit_code == 2, (command, out)
        assert "mutually exclusive" in out.stderr or "not both" in out.stderr, out
    assert requests_seen(server) == before


def test_bad_where_exit_2_with_caret_and_nothing_sent(wbgql, server, closed_port):
    expr = "state in (crashed, failed) and summary.loss >"
    before = requests_seen(server)
    out = wbgql.remote(server, "runs", "list", "demo/vision", "--where", expr)
    assert out.exit_code == 2, out
    lines = out.stderr.splitlines()
    assert lines[0].startswith("error: ") and "after '>'" in lines[0]
    assert lines[1] == f"  {expr}"
    assert lines[2] == "  " + " " * len(expr) + "^"
    assert out.stdout == ""
    assert requests_seen(server) == before
    # and pointed at a port nothing listens on: still the filter error, not a connection error
    out = wbgql("--base-url", f"http://127.0.0.1:{closed_port}", "--api-key", "local-" + "x" * 40,
                "runs", "delete", "demo/vision", "--where", "state === crashed", "--yes")
    assert out.exit_code == 2, out
    assert out.stderr.startswith("error: ") and "^" in out.stderr and "connection" not in out.stderr
    # no key at all: the filter is still checked first
    out = wbgql("--base-url", f"http://127.0.0.1:{closed_port}", "runs", "count", "x/y", "--where", "(")
    assert out.exit_code == 2 and "^" in out.stderr, out


def test_bad_filters_json_exit_2(wbgql, server):
    before = requests_seen(server)
    out = wbgql.remote(server, "runs", "list", "demo/rl", "--filters", '{"state": ')
    assert out.exit_code == 2, out
    assert out.stderr.startswith("error: malformed filter JSON")
    out = wbgql.remote(server, "runs", "count", "demo/rl", "--filters", '{"state": {"$like": "x"}}')
    assert out.exit_code == 2 and "unknown operator '$like'" in out.stderr, out
    out = wbgql.remote(server, "runs", "count", "demo/rl", "--filters", "[1, 2]")
    assert out.exit_code == 2 and "must be an object" in out.stderr, out
    assert requests_seen(server) == before


def test_usage_errors_exit_2(wbgql, server):
    out = wbgql.remote(server, "runs", "list", "demo/rl", "--limit", "-1")
    assert out.exit_code == 2, out
    out = wbgql.remote(server, "runs", "list", "demo/rl", "--per-page", "5000")
    assert out.exit_code == 2, out
    out = wbgql.remote(server, "runs", "list", "a/b/c")
    assert out.exit_code == 2 and "cannot read project path 'a/b/c'" in out.stderr, out
    out = wbgql.remote(server, "runs", "restore", "demo/rl")  # --id or a filter is required
    assert out.exit_code == 2 and "--id" in out.stderr, out
    out = wbgql.remote(server, "runs", "update", "demo/rl", "--id", "rl000000", "--config", "novalue", "--yes")
    assert out.exit_code == 2 and "KEY=VALUE" in out.stderr, out
    out = wbgql.remote(server, "runs", "update", "demo/rl", "--id", "rl000000", "--yes")
    assert out.exit_code == 2 and "nothing to update" in out.stderr, out
    out = wbgql.remote(server, "runs", "update", "demo/rl", "--name", "x", "--yes")
    assert out.exit_code == 2 and "refusing" in out.stderr, out


def test_no_api_key_is_a_usage_error(wbgql, server):
    out = wbgql("--base-url", server.base_url, "runs", "count", "demo/rl")
    assert out.exit_code == 2, out
    assert out.stderr.startswith("error: no API key for 127.0.0.1:") and "hint:" in out.stderr


# ---------------------------------------------------------------------------- auth, not found, secrecy


def test_auth_failure_exit_4(wbgql, server):
    bad = "local-" + "b" * 44
    out = wbgql("--base-url", server.base_url, "--api-key", bad, "runs", "list", "demo/rl")
    assert out.exit_code == 4, out
    assert out.stderr.startswith("error: HTTP 401")
    assert bad not in out.stdout + out.stderr


def test_project_not_found_exit_1(wbgql, server):
    for command in ("list", "count", "explain"):
        out = wbgql.remote(server, "runs", command, "demo/nope")
        assert out.exit_code == 1, (command, out)
        assert out.stderr.splitlines()[0] == "error: project demo/nope not found"
        assert out.stderr.splitlines()[1].startswith("hint: demo has: "), out  # the names that exist


def test_key_never_printed_even_with_vv(wbgql, server):
    key = server.api_key
    outs = [
        wbgql.remote(server, "-vv", "runs", "list", "demo/rl", "-n", "3", "-f", "jsonl"),
        wbgql.remote(server, "-vv", "runs", "get", "demo/rl/nope"),
        wbgql.remote(server, "-vv", "runs", "count", "demo/nope"),
        wbgql.remote(server, "-vv", "runs", "explain", "demo/rl", "--where", "state = crashed"),
        wbgql("-vv", "--base-url", server.base_url, "--api-key", key + "x", "runs", "count", "demo/rl"),
        wbgql("-vv", "--base-url", "http://10.1.2.3:8080", "--api-key", key, "runs", "count", "demo/rl"),
    ]
    assert "DEBUG wandb_gql" in outs[0].stderr  # -vv really logs
    assert [o.exit_code for o in outs] == [0, 1, 1, 0, 4, 2]
    assert "refusing to send the API key over plain http" in outs[-1].stderr
    for out in outs:
        assert key not in out.stdout and key not in out.stderr, out
    # and as a real process, with the key from the environment
    proc = run_process("-vv", "runs", "count", "demo/rl",
                       env={"WANDB_BASE_URL": server.base_url, "WANDB_API_KEY": key})
    assert proc.returncode == 0 and proc.stdout == "200\n", proc
    assert "DEBUG wandb_gql" in proc.stderr and key not in proc.stdout + proc.stderr


def test_verbose_levels(wbgql, server):
    assert wbgql.remote(server, "runs", "count", "demo/rl").stderr == ""
    out = wbgql.remote(server, "-v", "runs", "count", "demo/rl")
    assert "DEBUG" not in out.stderr
    out = wbgql.remote(server, "-vv", "runs", "count", "demo/rl")
    assert "DEBUG wandb_gql: ProjectRunCount: ok" in out.stderr
    assert wbgql.remote(server, "runs", "count", "demo/rl").stderr == ""  # handler removed again


# ---------------------------------------------------------------------------- mutations


def count(wbgql, server, *args: str) -> int:
    out = wbgql.remote(server, "runs", "count", *args)
    assert out.exit_code == 0, out
    return int(out.stdout)


def test_delete_without_filter_refused(wbgql, mutable_server, closed_port):
    out = wbgql.remote(mutable_server, "runs", "delete", "demo/rl", "--yes")
    assert out.exit_code == 2, out
    assert "refusing to delete without --id, --ids-from, --where or --filters" in out.stderr
    assert "--all" in out.stderr
    # a filter that matches every run is refused too, saying why
    out = wbgql.remote(mutable_server, "runs", "delete", "demo/rl", "--where", "name exists", "--yes")
    assert out.exit_code == 2, out
    assert "refusing to delete by a filter that matches every run (every run has a name)" in out.stderr
    out = wbgql.remote(mutable_server, "runs", "delete", "demo/rl", "--where",
                       "not (state = crashed) or state = crashed", "--dry-run")
    assert out.exit_code == 2 and "X or not X" in out.stderr, out
    # refused before anything is sent
    out = wbgql("--base-url", f"http://127.0.0.1:{closed_port}", "--api-key", "local-" + "k" * 40,
                "runs", "delete", "demo/rl", "--yes")
    assert out.exit_code == 2, out
    assert count(wbgql, mutable_server, "demo/rl") == 200


def test_delete_dry_run_changes_nothing(wbgql, mutable_server):
    where = "state = crashed"
    crashed = count(wbgql, mutable_server, "demo/rl", "--where", where)
    out = wbgql.remote(mutable_server, "runs", "delete", "demo/rl", "--where", where, "--dry-run")
    assert out.exit_code == 0, out
    assert out.stderr.startswith(f"server: {mutable_server.base_url} as ")  # where and as whom, first
    assert f"plan: delete {crashed} run(s) in demo/rl (where state = crashed)" in out.stderr
    assert "dry run: nothing changed" in out.stderr and out.stdout == ""
    out = wbgql.remote(mutable_server, "runs", "delete", "demo/rl", "--all", "--include-running", "--dry-run")
    assert out.exit_code == 0 and "plan: delete 200 run(s)" in out.stderr, out
    out = wbgql.remote(mutable_server, "runs", "delete", "demo/rl", "--where", "name exists", "--all",
                       "--include-running", "--dry-run")
    assert out.exit_code == 0 and "plan: delete 200 run(s)" in out.stderr, out
    running = count(wbgql, mutable_server, "demo/rl", "--where", "state = running")
    out = wbgql.remote(mutable_server, "runs", "delete", "demo/rl", "--all", "--dry-run")  # the rail: not running
    assert out.exit_code == 0 and f"plan: delete {200 - running} run(s)" in out.stderr, out
    assert "matches every run" not in out.stderr  # --all says that is what is meant
    assert count(wbgql, mutable_server, "demo/rl", "--where", where) == crashed
    assert count(wbgql, mutable_server, "demo/rl") == 200


def test_delete_asks_and_no_means_no(wbgql, mutable_server):
    out = wbgql.remote(mutable_server, "runs", "delete", "demo/rl", "--id", "rl000003", input="n\n")
    assert out.exit_code == 3, out
    assert f"delete 1 run(s) in demo/rl on {mutable_server.base_url}? [y/N]" in out.stderr
    assert "nothing changed" in out.stderr
    out = wbgql.remote(mutable_server, "runs", "delete", "demo/rl", "--id", "rl000003", input="")
    assert out.exit_code == 3 and "--yes" in out.stderr, out
    assert count(wbgql, mutable_server, "demo/rl") == 200


def test_delete_then_restore(wbgql, mutable_server):
    where = "state = failed and config.lr >= 0.01"
    ids = [r["name"] for r in json.loads(wbgql.remote(mutable_server, "-f", "json", "runs", "list", "demo/nlp",
                                                      "--where", where).stdout)]
    assert ids
    out = wbgql.remote(mutable_server, "-f", "jsonl", "runs", "delete", "demo/nlp", "--where", where, "--yes")
    assert out.exit_code == 0, out
    assert sorted(o["run_id"] for o in parse_jsonl(out.stdout)) == sorted(ids)
    assert {o["status"] for o in parse_jsonl(out.stdout)} == {"deleted"}
    assert f"delete: deleted {len(ids)}" in out.stderr
    assert count(wbgql, mutable_server, "demo/nlp") == 600 - len(ids)
    assert count(wbgql, mutable_server, "demo/nlp", "--where", where) == 0
    # the same filter now matches nothing: nothing to do
    again = wbgql.remote(mutable_server, "runs", "delete", "demo/nlp", "--where", where, "--yes")
    assert again.exit_code == 0 and "nothing to do" in again.stderr, again
    # restore: interactive yes
    args = [a for i in ids for a in ("--id", i)]
    out = wbgql.remote(mutable_server, "-f", "jsonl", "runs", "restore", "demo/nlp", *args, input="y\n")
    assert out.exit_code == 0, out
    assert {o["status"] for o in parse_jsonl(out.stdout)} == {"restored"}
    assert count(wbgql, mutable_server, "demo/nlp") == 600
    assert count(wbgql, mutable_server, "demo/nlp", "--where", where) == len(ids)


def test_delete_by_id_with_unknown_id_exits_1(wbgql, mutable_server):
    out = wbgql.remote(mutable_server, "-f", "jsonl", "runs", "delete", "demo/rl", "--id", "rl000007",
                       "--id", "nope", "--yes")
    assert out.exit_code == 1, out
    assert {o["run_id"]: o["status"] for o in parse_jsonl(out.stdout)} == {"rl000007": "deleted", "nope": "not_found"}
    out = wbgql.remote(mutable_server, "-f", "csv", "runs", "restore", "demo/rl", "--id", "rl000007", "--id",
                       "rl000008", "--yes")
    assert out.exit_code == 0, out
    # the final table is a summary: runs by status
    assert {r["status"]: r["runs"] for r in csv.DictReader(io.StringIO(out.stdout))} == \
        {"restored": "1", "unchanged": "1"}
    assert count(wbgql, mutable_server, "demo/rl") == 200


def test_restore_dry_run(wbgql, mutable_server):
    out = wbgql.remote(mutable_server, "runs", "restore", "demo/rl", "--id", "rl000001", "--dry-run")
    assert out.exit_code == 0 and "plan: restore 1 run(s)" in out.stderr and "dry run" in out.stderr, out


def test_update_fields_and_tags(wbgql, mutable_server):
    before = json.loads(wbgql.remote(mutable_server, "-f", "json", "runs", "get", "demo/rl/rl000010").stdout)
    out = wbgql.remote(mutable_server, "-f", "jsonl", "runs", "update", "demo/rl", "--id", "rl000010",
                       "--name", "renamed", "--notes", "some notes", "--group", "g1", "--job-type", "eval",
                       "--add-tag", "keep", "--add-tag", "v9", "--remove-tag", "tmp",
                       "--config", "lr=0.5", "--config", "opt=adam", "--config", 'nested={"a": [1, 2]}',
                       "--summary", "best=1", "--yes")
    assert out.exit_code == 0, out
    assert parse_jsonl(out.stdout) == [{"run_id": "rl000010", "status": "updated", "error": None}]
    assert "set display_name: 'renamed'" in out.stderr and "add tags: keep, v9" in out.stderr
    after = json.loads(wbgql.remote(mutable_server, "-f", "json", "runs", "get", "demo/rl/rl000010").stdout)
    assert (after["display_name"], after["notes"], after["group"], after["job_type"]) == \
        ("renamed", "some notes", "g1", "eval")
    assert after["tags"] == [t for t in before["tags"] if t != "tmp"] + ["keep", "v9"]
    assert after["config"]["lr"] == 0.5 and after["config"]["opt"] == "adam"
    assert after["config"]["nested"] == {"a": [1, 2]}
    assert after["config"]["batch_size"] == before["config"]["batch_size"]  # merged, not replaced
    assert after["summary"]["best"] == 1 and after["summary"]["loss"] == before["summary"]["loss"]
    assert after["state"] == before["state"]  # untouched fields stay


def test_update_by_filter(wbgql, mutable_server):
    where = "state = killed"
    n = count(wbgql, mutable_server, "demo/rl", "--where", where)
    assert n > 0
    out = wbgql.remote(mutable_server, "runs", "update", "demo/rl", "--where", where, "--add-tag", "was-killed",
                       "--dry-run")
    assert out.exit_code == 0 and f"plan: update {n} run(s)" in out.stderr, out
    assert count(wbgql, mutable_server, "demo/rl", "--where", "tags has was-killed") == 0
    out = wbgql.remote(mutable_server, "runs", "update", "demo/rl", "--where", where, "--add-tag", "was-killed",
                       input="yes\n")
    assert out.exit_code == 0, out
    assert f"update: updated {n}" in out.stderr
    assert count(wbgql, mutable_server, "demo/rl", "--where", "tags has was-killed") == n
    out = wbgql.remote(mutable_server, "-f", "json", "runs", "update", "demo/rl", "--where", "name = none",
                       "--notes", "x", "--yes")
    assert out.exit_code == 0 and "nothing to do" in out.stderr, out
    assert json.loads(out.stdout) == {"ok": True, "ledger": None, "plans": [], "undo": None}


def test_update_unknown_id_exits_1(wbgql, mutable_server):
    out = wbgql.remote(mutable_server, "-f", "jsonl", "runs", "update", "demo/rl", "--id", "rl000011",
                       "--id", "ghost", "--notes", "n", "--yes")
    assert out.exit_code == 1, out
    assert {o["run_id"]: o["status"] for o in parse_jsonl(out.stdout)} == {"rl000011": "updated", "ghost": "not_found"}


# ---------------------------------------------------------------------------- --local


def test_local_in_process_and_delete_persists(wbgql, isolated_env):
    out = wbgql("--local", "-f", "json", "runs", "list", "demo/vision", "-n", "3", "--summary-keys", "loss",
                "--order", "+created_at")
    assert out.exit_code == 0, out
    assert [r["name"] for r in json.loads(out.stdout)] == ["vi000000", "vi000001", "vi000002"]
    db = isolated_env / "xdg" / "wandb-gql" / "server.db"
    assert db.is_file()  # the default db of `wbgql server`, under XDG_DATA_HOME
    assert wbgql("--local", "runs", "count", "demo/vision").stdout == "1200\n"
    out = wbgql("--local", "runs", "delete", "demo/vision", "--id", "vi000001", "--yes")
    assert out.exit_code == 0, out
    assert wbgql("--local", "runs", "count", "demo/vision").stdout == "1199\n"  # persisted
    out = wbgql("--local", "runs", "restore", "demo/vision", "--id", "vi000001", "--yes")
    assert out.exit_code == 0, out
    assert wbgql("--local", "runs", "count", "demo/vision").stdout == "1200\n"


def test_local_subprocess_delete_persists(isolated_env):
    env = {"XDG_DATA_HOME": str(isolated_env / "xdg-proc")}
    proc = run_process("--local", "runs", "list", "demo/rl", "-n", "2", env=env)
    assert proc.returncode == 0, proc
    assert "rl000199" in proc.stdout and "rl000198" in proc.stdout
    proc = run_process("--local", "runs", "delete", "demo/rl", "--where", "state = running", "--include-running",
                       "--yes", env=env, module=False)
    assert proc.returncode == 0 and "delete: deleted" in proc.stderr, proc
    deleted = int(re.search(r"deleted (\d+)", proc.stderr).group(1))
    proc = run_process("--local", "runs", "count", "demo/rl", env=env)
    assert (proc.returncode, proc.stdout) == (0, f"{200 - deleted}\n"), proc


# ---------------------------------------------------------------------------- real processes


def test_subprocess_module_and_entry_point(server):
    env = {"WANDB_BASE_URL": server.base_url, "WANDB_API_KEY": server.api_key}
    proc = run_process("--format", "jsonl", "runs", "list", "demo/nlp", "--limit", "4", "--summary-keys", "loss",
                       "--order", "created_at", env=env)
    assert proc.returncode == 0, proc
    runs = parse_jsonl(proc.stdout)
    assert [r["name"] for r in runs] == [f"nl{i:06d}" for i in range(4)]
    assert all(set(r["summary"]) == {"loss"} for r in runs)
    proc = run_process("runs", "count", "demo/nlp", "--where", "state ==", env=env, module=False)
    assert proc.returncode == 2 and proc.stderr.startswith("error: ") and "^" in proc.stderr, proc
    proc = run_process("runs", "get", "demo/nlp/nl000005", "-f", "json", env=env, module=False)
    assert proc.returncode == 0 and json.loads(proc.stdout)["name"] == "nl000005", proc
    proc = run_process("runs", "list", "demo/nlp", "-n", "1", env={**env, "WANDB_API_KEY": "local-" + "z" * 40})
    assert proc.returncode == 4, proc


def test_ctrl_c_exits_130(fresh_api, fresh_server):
    fresh_api.faults({"rate_limit": 0, "retry_after": 30})  # 429, "come back in 30 s": the client waits
    env = {"WANDB_BASE_URL": fresh_server.base_url, "WANDB_API_KEY": fresh_server.api_key}
    proc = subprocess.Popen([sys.executable, "-m", "wandb_gql.cli", "runs", "count", "demo/rl"],
                            env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 20
        while requests_seen(fresh_server) == 0 and time.monotonic() < deadline:
            time.sleep(0.05)  # wait until the first request was answered and the client is waiting
        assert requests_seen(fresh_server) == 1
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=20)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert "Traceback" not in err


def _import_report(args: list[str], env: dict[str, str]) -> set[str]:
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "wandb_gql.cli", *args],
                          capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return {line.split("|")[-1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")}


def test_help_imports_nothing_heavy(tmp_path):
    # What keeps `wbgql --help` fast, checked deterministically; its time is measured in bench/ (P6).
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(tmp_path / "pycache")
    modules = _import_report(["--help"], env)
    assert "wandb_gql.cli.runs" in modules
    heavy = sorted(m for m in modules if m.split(".")[0] in HEAVY)
    assert heavy == [], heavy
    assert not {m for m in _import_report(["runs", "list", "--help"], env) if m.split(".")[0] in
                ("aiohttp", "gql", "graphql", "orjson", "rich")}


def test_help_lists_the_commands(wbgql):
    out = wbgql("runs", "--help")
    assert out.exit_code == 0
    for command in ("list", "count", "get", "explain", "update", "delete", "restore"):
        assert command in out.stdout


@pytest.mark.parametrize("fmt", ["table", "tsv", "json", "jsonl", "csv"])
def test_every_format_for_every_reader(wbgql, server, fmt):
    for args in (["runs", "list", "demo/rl", "-n", "2"], ["runs", "count", "demo/rl"],
                 ["runs", "get", "demo/rl/rl000002"], ["runs", "explain", "demo/rl", "--where", "state = failed"]):
        out = wbgql.remote(server, "-f", fmt, *args)
        assert out.exit_code == 0 and out.stdout, (args, out)
        if fmt == "json":
            json.loads(out.stdout)
        elif fmt == "jsonl":
            parse_jsonl(out.stdout)


# ---------------------------------------------------------------------------- streaming and progress


def test_jsonl_streams_as_pages_arrive(mutable_server):
    from tests.conftest import Caller

    caller = Caller(mutable_server)
    caller.faults({"latency": 0.4})  # 6 pages of 200: about 2.4 s in all
    env = {**os.environ, "WANDB_BASE_URL": mutable_server.base_url, "WANDB_API_KEY": mutable_server.api_key}
    proc = subprocess.Popen([sys.executable, "-m", "wandb_gql.cli", "-f", "jsonl", "runs", "list", "demo/vision",
                             "--per-page", "200"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        if not line:  # ended without output: show why
            proc.wait(30)
            pytest.fail(f"exit {proc.returncode}: {proc.stderr.read()}")
        try:
            first = json.loads(line)
        except ValueError:
            pytest.fail(f"first line is not JSON: {line!r}; stderr: {proc.stderr.read() if proc.poll() is not None else '(running)'}")
        still_running = proc.poll() is None
        # Read the rest through the same buffered pipe: communicate() would skip what readline()
        # already pulled into the buffer (which loses lines when the machine is busy).
        rest = proc.stdout.read()
        err = proc.stderr.read()
        proc.wait(60)
    finally:
        proc.kill()
        caller.faults({})
    assert proc.returncode == 0, err
    assert first["name"] == "vi001199", (first, err)  # newest first
    assert still_running, f"the first run should be printed before the last page arrives; stderr: {err}"
    assert len(parse_jsonl(rest)) == 1199, err


def test_progress_on_a_terminal_stderr_keeps_stdout_data_only(mutable_server, tmp_path):
    from tests.conftest import Caller

    server = mutable_server
    caller = Caller(server)
    caller.faults({"latency": 0.25})  # 12 pages: about 3 s, so the bar (shown after ~1 s) appears
    env = {**os.environ, "WANDB_BASE_URL": server.base_url, "WANDB_API_KEY": server.api_key, "TERM": "xterm"}
    try:
        with Terminal() as terminal, open(tmp_path / "out.csv", "w") as stdout:
            proc = subprocess.run([sys.executable, "-m", "wandb_gql.cli", "-f", "csv", "runs", "list", "demo/vision",
                                   "--per-page", "100"], env=env, stdout=stdout, stderr=terminal.fd, timeout=120)
    finally:
        caller.faults({})
    assert proc.returncode == 0
    rows = list(csv.DictReader(open(tmp_path / "out.csv")))
    assert len(rows) == 1200  # every row in the file, none diverted to the terminal
    assert "fetching runs" in terminal.text and "vi000000" not in terminal.text
    assert re.search(r"\d[\d,]*/1,200", terminal.text), terminal.text  # done/total, the total from a count


def test_restore_by_filter_reports_what_came_back(wbgql, mutable_server):
    where = "state = killed"
    before = count(wbgql, mutable_server, "demo/nlp")
    ids = sorted(r["name"] for r in json.loads(wbgql.remote(mutable_server, "-f", "json", "runs", "list", "demo/nlp",
                                                             "--where", where).stdout))
    assert ids
    assert wbgql.remote(mutable_server, "runs", "delete", "demo/nlp", "--where", where, "--yes").exit_code == 0
    dry = wbgql.remote(mutable_server, "runs", "restore", "demo/nlp", "--where", where, "--dry-run")
    assert dry.exit_code == 0 and "restore the deleted runs in demo/nlp matching" in dry.stderr, dry
    assert count(wbgql, mutable_server, "demo/nlp") == before - len(ids)
    refused = wbgql.remote(mutable_server, "runs", "restore", "demo/nlp", "--where", "name exists", "--yes")
    assert refused.exit_code == 2, refused  # matches every run: needs --all
    out = wbgql.remote(mutable_server, "-f", "jsonl", "runs", "restore", "demo/nlp", "--where", where, "--yes")
    assert out.exit_code == 0, out
    assert sorted(o["run_id"] for o in parse_jsonl(out.stdout)) == ids
    assert {o["status"] for o in parse_jsonl(out.stdout)} == {"restored"}
    assert count(wbgql, mutable_server, "demo/nlp") == before
