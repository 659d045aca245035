"""`wbgql runs list ... --out FILE.parquet`: the file re-read with pyarrow holds what `-f jsonl`
prints for the same runs (NaN and ±Infinity as floats), with csv's columns and --fields."""

from __future__ import annotations

import json
import math
import os

import pytest

from wandb_gql import SyncClient
from wandb_gql.export import ALL_COLUMNS, parquet_writer

from .conftest import parse_jsonl, requests_seen, run_process

pq = pytest.importorskip("pyarrow.parquet")


def rows_of(path) -> list[dict]:
    return pq.read_table(path).to_pylist()


def same(a, b) -> bool:
    return a == b or (isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b))


def cell(value):
    """What a Parquet cell holds for a jsonl value: W&B's non-finite strings as floats, numbers
    as floats, lists and dicts as JSON text."""
    special = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
    if isinstance(value, str) and value in special:
        return special[value]
    if isinstance(value, (dict, list)):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def parquet_value(value):
    if isinstance(value, str) and value[:1] in "[{":
        return json.loads(value)
    return value


def test_parquet_rereads_as_jsonl_with_every_key(wbgql, server, tmp_path):
    out = tmp_path / "runs.parquet"
    args = ["runs", "list", "demo/vision", "--config-keys", "*", "--summary-keys", "*", "--order", "name"]
    r = wbgql.remote(server, *args, "--out", str(out))
    assert r.exit_code == 0, r
    assert r.stdout == "" and "runs written to" in r.stderr
    assert not out.with_name(out.name + ".part").exists()
    want = parse_jsonl(wbgql.remote(server, *args, "-f", "jsonl").stdout)
    got = rows_of(out)
    assert len(got) == len(want) == 1200
    table = pq.read_table(out)
    columns = table.column_names
    assert columns[:len(ALL_COLUMNS)] == list(ALL_COLUMNS)
    assert {c[7:] for c in columns if c.startswith("config.")} == set().union(*(w["config"] for w in want))
    assert {c[8:] for c in columns if c.startswith("summary.")} == set().union(*(w["summary"] for w in want))
    assert str(table.schema.field("tags").type) == "list<element: string>"
    assert str(table.schema.field("history_line_count").type) == "int64"
    for row, run in zip(got, want):
        for field in ALL_COLUMNS:
            assert row[field] == run.get(field), (run["name"], field)
        for head in ("config", "summary"):
            for key, value in run[head].items():
                assert same(parquet_value(row[f"{head}.{key}"]), cell(value)), (run["name"], head, key)
            assert all(row[c] is None for c in columns if c.startswith(head + ".") and
                       c.partition(".")[2] not in run[head])


def test_nan_and_infinity_are_floats(wbgql, fresh_server, fresh_api, tmp_path):
    viewer = fresh_api.ok("query { viewer { entity } }")["viewer"]["entity"]
    summaries = ['{"loss": NaN, "acc": 0.5, "note": "x", "ok": true}',
                 '{"loss": Infinity, "acc": 1, "note": {"a": [1, 2]}, "ok": false}',
                 '{"loss": -Infinity, "acc": NaN}',
                 '{"loss": 0.25}']
    for i, summary in enumerate(summaries):
        fresh_api.ok("mutation U($input: UpsertBucketInput!) { upsertBucket(input: $input) { bucket { id } } }",
                     {"input": {"entityName": viewer, "modelName": "nan", "name": f"r{i}", "tags": ["t", str(i)],
                                "config": json.dumps({"lr": {"value": 10 ** -i}})}})
        reply = fresh_api.post(f"/files/{viewer}/nan/r{i}/file_stream",
                               {"files": {"wandb-summary.json": {"offset": 0, "content": [summary]}}})
        assert reply.status == 200
    out = tmp_path / "nan.parquet"
    args = ["runs", "list", f"{viewer}/nan", "--summary-keys", "*", "--config-keys", "lr", "--order", "name"]
    r = wbgql.remote(fresh_server, *args, "--out", str(out))
    assert r.exit_code == 0, r
    table = pq.read_table(out)
    types = {f.name: str(f.type) for f in table.schema}
    assert types["summary.loss"] == types["summary.acc"] == types["config.lr"] == "double"
    assert types["summary.ok"] == "bool" and types["summary.note"] == "string"
    loss = table.column("summary.loss").to_pylist()
    assert math.isnan(loss[0]) and loss[1:] == [math.inf, -math.inf, 0.25]
    acc = table.column("summary.acc").to_pylist()
    assert acc[0] == 0.5 and acc[1] == 1.0 and math.isnan(acc[2]) and acc[3] is None
    assert table.column("summary.note").to_pylist() == ["x", '{"a":[1,2]}', None, None]
    assert table.column("summary.ok").to_pylist() == [True, False, None, None]
    assert [sorted(t) for t in table.column("tags").to_pylist()] == [sorted(["t", str(i)]) for i in range(4)]
    want = parse_jsonl(wbgql.remote(fresh_server, *args, "-f", "jsonl").stdout)
    for row, run in zip(table.to_pylist(), want):
        for key, value in run["summary"].items():
            assert same(parquet_value(row[f"summary.{key}"]), cell(value)), (run["name"], key)


def test_fields_choose_the_columns(wbgql, server, tmp_path):
    out = tmp_path / "f.parquet"
    r = wbgql.remote(server, "runs", "list", "demo/rl", "--fields", "name,state,config.lr,summary.loss,tags",
                     "-f", "parquet", "-o", str(out))
    assert r.exit_code == 0, r
    table = pq.read_table(out)
    assert table.column_names == ["name", "state", "config.lr", "summary.loss", "tags"]
    want = parse_jsonl(wbgql.remote(server, "runs", "list", "demo/rl", "--fields",
                                    "name,state,config.lr,summary.loss,tags", "-f", "jsonl").stdout)
    assert [row["name"] for row in table.to_pylist()] == [w["name"] for w in want]
    for row, run in zip(table.to_pylist(), want):
        assert row["state"] == run["state"] and row["tags"] == run["tags"]
        assert same(row["config.lr"], cell(run.get("config", {}).get("lr")))
        assert same(row["summary.loss"], cell(run.get("summary", {}).get("loss")))


def test_empty_result_is_a_valid_file_with_the_columns(wbgql, server, tmp_path):
    out = tmp_path / "empty.parquet"
    r = wbgql.remote(server, "runs", "list", "demo/rl", "--where", "name = nothing-here", "--summary-keys",
                     "loss,val/acc", "--out", str(out))
    assert r.exit_code == 0, r
    table = pq.read_table(out)
    assert table.num_rows == 0
    assert table.column_names == [*ALL_COLUMNS, "summary.loss", "summary.val/acc"]
    csv_header = wbgql.remote(server, "runs", "list", "demo/rl", "--where", "name = nothing-here",
                              "--summary-keys", "loss,val/acc", "-f", "csv").stdout.splitlines()[0]
    assert csv_header.split(",") == table.column_names


def test_out_with_a_text_suffix_writes_what_stdout_would(wbgql, server, tmp_path):
    for suffix in ("csv", "jsonl", "tsv", "json"):
        out = tmp_path / f"runs.{suffix}"
        args = ["runs", "list", "demo/rl", "--summary-keys", "loss", "--order", "name"]
        r = wbgql.remote(server, *args, "--out", str(out))
        assert r.exit_code == 0, r
        assert out.read_text() == wbgql.remote(server, *args, "-f", suffix).stdout


def test_out_dash_is_stdout_and_parquet_cannot_go_there(wbgql, server, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = ["runs", "list", "demo/rl", "--summary-keys", "loss", "--order", "name", "-f", "csv"]
    r = wbgql.remote(server, *args, "--out", "-")
    assert r.exit_code == 0, r
    assert r.stdout == wbgql.remote(server, *args).stdout and r.stdout.startswith("id,name,")
    r = wbgql.remote(server, "runs", "list", "demo/rl", "-f", "parquet", "--out", "-")
    assert r.exit_code == 2 and "Parquet needs --out FILE" in r.stderr, r
    assert not (tmp_path / "-").exists() and not (tmp_path / "-.part").exists()


def test_row_groups_hold_at_most_n_runs_and_a_misfit_is_left_empty(server, tmp_path):
    out = tmp_path / "groups.parquet"
    with SyncClient(server.base_url, server.api_key) as client:
        runs = list(client.runs("demo/rl", summary_keys=["loss"], order="name"))
    odd = {"name": "odd", "summary": {"loss": "not a number"}}  # after the first row group decided: float
    w = parquet_writer(out, ["name", "summary.loss"], row_group=100)
    w.write_all([*runs, odd]).close()
    f = pq.ParquetFile(out)
    assert f.metadata.num_row_groups == -(-(len(runs) + 1) // 100)
    assert all(f.metadata.row_group(i).num_rows <= 100 for i in range(f.metadata.num_row_groups))
    rows = f.read().to_pylist()
    assert [r["name"] for r in rows] == [r.name for r in runs] + ["odd"]
    assert [r["summary.loss"] for r in rows[:-1]] == [run.summary.get("loss") for run in runs]
    assert rows[-1]["summary.loss"] is None and w.misfits == {"summary.loss": 1}


def test_bad_input_exits_2_and_sends_nothing(wbgql, fresh_server, tmp_path):
    tmp_path = tmp_path / "out"
    tmp_path.mkdir()
    cases = [(["-f", "parquet"], "Parquet needs --out FILE"),
             (["--out", str(tmp_path / "runs.xlsx")], "cannot tell the format"),
             (["-f", "csv", "--out", str(tmp_path / "runs.parquet")], "-f csv but --out names a .parquet file"),
             (["--out", str(tmp_path / "no-such-dir" / "runs.parquet")], "cannot write"),
             (["--deleted", "--out", str(tmp_path / "d.csv")], "not with --out"),
             (["--fields", "nmae", "--out", str(tmp_path / "x.parquet")], "unknown field")]
    for args, message in cases:
        before = requests_seen(fresh_server)
        r = wbgql.remote(fresh_server, "runs", "list", "demo/rl", *args)
        assert r.exit_code == 2, (args, r)
        assert r.stderr.startswith("error: ") and message in r.stderr, (args, r)
        assert requests_seen(fresh_server) == before, args
    assert list(tmp_path.iterdir()) == []


def test_a_failed_listing_leaves_no_file(wbgql, closed_port, tmp_path):
    tmp_path = tmp_path / "out"
    tmp_path.mkdir()
    out = tmp_path / "runs.parquet"
    r = wbgql("--base-url", f"http://127.0.0.1:{closed_port}", "--api-key", "local-" + "k" * 40,
              "runs", "list", "demo/rl", "--out", str(out))
    assert r.exit_code not in (0, 2), r
    assert list(tmp_path.iterdir()) == []


def test_without_pyarrow_one_error_names_the_extra(server, tmp_path):
    blocker = tmp_path / "blocker" / "pyarrow"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text("raise ImportError('pyarrow is not installed here')\n")
    env = {"PYTHONPATH": os.pathsep.join([str(blocker.parent), os.environ.get("PYTHONPATH", "")]),
           "WANDB_BASE_URL": server.base_url, "WANDB_API_KEY": server.api_key}
    out = tmp_path / "runs.parquet"
    before = requests_seen(server)
    proc = run_process("runs", "list", "demo/rl", "--out", str(out), env=env)
    assert proc.returncode == 2, proc
    assert proc.stderr.splitlines()[0] == "error: pyarrow is not installed", proc
    assert "wandb-gql[parquet]" in proc.stderr and "Traceback" not in proc.stderr
    assert not out.exists() and requests_seen(server) == before
