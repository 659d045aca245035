"""`wbgql history export`: files that re-read to the same values, progress, resume after a kill."""

from __future__ import annotations

import math
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter

import pytest

from wandb_gql import SyncClient
from wandb_gql.export_history import read_rows

from .conftest import Terminal, run_process


def expected(server, project, keys, **kw):
    """{(run, step): values} straight from the library."""
    with SyncClient(server.base_url, server.api_key) as c:
        return {(run.name, row["_step"]): {k: row.get(k) for k in keys}
                for run, rows in c.history(project, keys=keys, **kw) for row in rows}


def same(a, b):
    return a == b or (isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b))


@pytest.mark.parametrize("suffix", ["csv", "jsonl"])
def test_export_rereads_to_the_same_values(wbgql, server, tmp_path, suffix):
    out = tmp_path / f"h.{suffix}"
    r = wbgql.remote(server, "history", "export", "demo/nlp", "--where", "state = finished", "--keys", "loss",
                     "--full", "--run-columns", "name,state", "--out", str(out))
    assert r.exit_code == 0, r
    assert "rows written to" in r.stderr and r.stdout == ""
    rows = list(read_rows(out))
    want = expected(server, "demo/nlp", ["loss"], where="state = finished", full=True)
    got = {(row["name"], row["_step"]): {"loss": row.get("loss")} for row in rows}
    assert len(rows) == len(got), "a (run, step) written twice"
    assert got.keys() == want.keys() and all(same(got[k]["loss"], want[k]["loss"]) for k in want)
    assert {row["state"] for row in rows} == {"finished"}
    assert len(out.with_name(out.name + ".done").read_text().split()) == len({k[0] for k in want})


def test_nan_survives_csv_and_jsonl(wbgql, fresh_server, fresh_api, tmp_path):
    viewer = fresh_api.ok("query { viewer { entity } }")["viewer"]["entity"]
    fresh_api.ok("mutation U($input: UpsertBucketInput!) { upsertBucket(input: $input) { bucket { id } } }",
                 {"input": {"entityName": viewer, "modelName": "nan", "name": "r1"}})
    lines = ['{"_step": 0, "loss": NaN}', '{"_step": 1, "loss": Infinity}', '{"_step": 2, "loss": -Infinity}',
             '{"_step": 3, "loss": 0.5}']
    assert fresh_api.post(f"/files/{viewer}/nan/r1/file_stream",
                          {"files": {"wandb-history.jsonl": {"offset": 0, "content": lines}}}).status == 200
    for suffix in ("csv", "jsonl"):
        out = tmp_path / f"n.{suffix}"
        r = wbgql.remote(fresh_server, "history", "export", f"{viewer}/nan", "--keys", "loss", "--out", str(out))
        assert r.exit_code == 0, r
        values = [row["loss"] for row in read_rows(out)]
        assert math.isnan(values[0]) and values[1:] == [math.inf, -math.inf, 0.5]
    try:
        import pyarrow.parquet as pq
    except ImportError:
        return
    out = tmp_path / "n.parquet"
    r = wbgql.remote(fresh_server, "history", "export", f"{viewer}/nan", "--keys", "loss", "--out", str(out))
    assert r.exit_code == 0, r
    values = pq.read_table(out).column("loss").to_pylist()
    assert math.isnan(values[0]) and values[1:] == [math.inf, -math.inf, 0.5]


def test_bad_input_exits_2_and_sends_nothing(wbgql, server, tmp_path):
    cases = [["--keys", "loss", "--samples", "5", "--full", "--out", str(tmp_path / "a.csv")],
             ["--keys", "loss", "--out", str(tmp_path / "a.xlsx")],
             ["--keys", "loss", "--out", str(tmp_path / "a.csv"), "--where", "state = = x"]]
    for args in cases:
        r = wbgql.remote(server, "history", "export", "demo/rl", *args)
        assert r.exit_code == 2, r
        assert r.stderr.startswith("error: "), r
        assert not (tmp_path / "a.csv").exists()


def test_parquet_without_pyarrow_names_the_extra(wbgql, server, tmp_path):
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        r = wbgql.remote(server, "history", "export", "demo/rl", "--keys", "loss", "--out", str(tmp_path / "a.parquet"))
        assert r.exit_code == 2 and "pip install 'wandb-gql[parquet]'" in r.stderr, r
    else:
        import pyarrow.parquet as pq

        out = tmp_path / "a.parquet"
        r = wbgql.remote(server, "history", "export", "demo/rl", "--keys", "loss", "--out", str(out))
        assert r.exit_code == 0, r
        table = pq.read_table(out)
        assert table.num_rows == len(expected(server, "demo/rl", ["loss"]))


@pytest.mark.parametrize("suffix", ["csv", "jsonl"])
def test_killed_export_resumes_without_duplicates_or_gaps(server, tmp_path, suffix):
    out = tmp_path / f"h.{suffix}"
    marks = out.with_name(out.name + ".done")
    args = ["--base-url", server.base_url, "--api-key", server.api_key, "history", "export", "demo/vision",
            "--keys", "loss", "--full", "--concurrency", "2", "--out", str(out)]
    child = subprocess.Popen([sys.executable, "-m", "wandb_gql.cli", *args], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, env=os.environ.copy())
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if marks.exists() and len(marks.read_text().split()) >= 20:
                break
            time.sleep(0.02)
        child.send_signal(signal.SIGKILL)
    finally:
        child.wait(10)
    cut = len(marks.read_text().split())
    assert 20 <= cut < 1200, "the export was not interrupted mid-way"
    r = run_process(*args, "--resume")
    assert r.returncode == 0, r.stderr
    assert f"({cut:,} runs were already done)" in r.stderr
    rows = list(read_rows(out))
    seen = Counter((row["name"], row["_step"]) for row in rows)
    assert max(seen.values()) == 1, "duplicates after resume"
    want = expected(server, "demo/vision", ["loss"], full=True)
    assert set(seen) == set(want), "gaps after resume"
    assert all(same(row["loss"], want[(row["name"], row["_step"])]["loss"]) for row in rows)
    assert sorted(marks.read_text().split()) == sorted({k[0] for k in want})


def test_progress_on_a_terminal_shows_runs_and_rows(server, tmp_path):
    env = {**os.environ, "TERM": "xterm", "COLUMNS": "120"}
    args = ["--base-url", server.base_url, "--api-key", server.api_key, "history", "export", "demo/vision",
            "--keys", "loss", "--full", "--concurrency", "2", "--out", str(tmp_path / "h.jsonl")]
    with Terminal() as terminal:
        proc = subprocess.run([sys.executable, "-m", "wandb_gql.cli", *args], env=env, stdout=subprocess.DEVNULL,
                              stderr=terminal.fd, timeout=180)
    assert proc.returncode == 0, terminal.text
    assert re.search(r"history \([\d,]+ rows\).*\d+/1,200", terminal.text), terminal.text
    assert "1,200 runs" in terminal.text
