"""wandb_gql.export without a server: every writer streams, --fields picks columns and keys,
a terminal table fits its width, a piped table is plain text, `*` keys come from a first chunk."""

from __future__ import annotations

import csv
import io
import json

import orjson
import pytest

from wandb_gql.export import SAMPLE, json_record, write_vertical, writer
from wandb_gql.models import Run


def make_run(i: int, *, config: dict | None = None, summary: dict | None = None, **fields) -> Run:
    node = {"id": f"id{i}", "name": f"r{i:04d}", "displayName": f"run number {i}", "state": "finished",
            "tags": ["a", "b"], "createdAt": f"2024-01-01T00:00:{i % 60:02d}", "jobType": "train",
            "config": orjson.dumps({k: {"value": v} for k, v in (config or {"lr": 0.1 * i}).items()}).decode(),
            "summaryMetrics": orjson.dumps(summary or {"loss": 1.0 / (i + 1), "val/acc": 0.5}).decode(),
            **fields}
    return Run.from_node(node, "ent", "proj", "https://api.wandb.ai")


class Spy(io.StringIO):
    """Collects what is written, so a test can look between two records."""


@pytest.mark.parametrize("fmt", ["jsonl", "json", "csv", "tsv", "table"])
def test_every_format_streams_each_record_when_written(fmt):
    out = Spy()
    w = writer(fmt, out, ["name", "state", "summary.loss"])
    seen = []
    for i in range(5):
        w.write(make_run(i))
        seen.append(out.getvalue().count("r000"))
    w.close()
    # each record is in the output as soon as it was written: nothing waits for the end
    assert seen == [1, 2, 3, 4, 5], (fmt, seen)


def test_json_keys_follow_fields_with_config_and_summary_nested():
    run = make_run(3, config={"lr": 0.3, "opt": {"name": "adam"}}, summary={"loss": 0.25, "val/acc": 0.9})
    assert json_record(run, ["name", "created_at", "config.opt", "summary.val/acc", "url"]) == {
        "name": "r0003", "created_at": "2024-01-01T00:00:03", "config": {"opt": {"name": "adam"}},
        "summary": {"val/acc": 0.9}, "url": "https://wandb.ai/ent/proj/runs/r0003"}
    assert json_record(run, ["name", "summary.*"]) == {"name": "r0003", "summary": {"loss": 0.25, "val/acc": 0.9}}
    assert json_record(run, None)["display_name"] == "run number 3"  # everything fetched: to_dict()
    out = io.StringIO()
    writer("json", out, ["name", "summary.loss"]).write_all([run]).close()
    assert json.loads(out.getvalue()) == [{"name": "r0003", "summary": {"loss": 0.25}}]
    out = io.StringIO()
    writer("json", out).close()
    assert out.getvalue() == "[]\n"


def test_csv_and_tsv_headers_are_the_vocabulary_and_values_round_trip():
    run = make_run(1, config={"lr": 0.001, "note": "tab\there\nnewline"})
    out = io.StringIO()
    writer("csv", out, ["name", "tags", "created_at", "config.lr", "config.note"]).write_all([run]).close()
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert list(rows[0]) == ["name", "tags", "created_at", "config.lr", "config.note"]
    assert json.loads(rows[0]["tags"]) == ["a", "b"] and float(rows[0]["config.lr"]) == 0.001
    assert rows[0]["config.note"] == "tab\there\nnewline"
    out = io.StringIO()
    writer("tsv", out, ["name", "config.note"]).write_all([run]).close()
    lines = out.getvalue().splitlines()
    assert lines == ["name\tconfig.note", "r0001\ttab\\there\\nnewline"]  # one line per run, escaped


def test_piped_table_is_plain_tab_separated_text():
    out = io.StringIO()
    writer("table", out, ["name", "state", "tags", "summary.loss"], terminal=False).write_all(
        [make_run(0), make_run(1)]).close()
    lines = out.getvalue().splitlines()
    assert lines[0] == "name\tstate\ttags\tsummary.loss"
    assert lines[1] == "r0000\tfinished\ta, b\t1"
    assert "─" not in out.getvalue() and "  " not in out.getvalue() and "\x1b" not in out.getvalue()


def test_terminal_table_fits_the_width_and_cuts_with_an_ellipsis():
    runs = [make_run(i, displayName="a rather long display name that does not fit " * 2) for i in range(3)]
    out = io.StringIO()
    writer("table", out, ["name", "display_name", "state", "created_at"], terminal=True, width=60).write_all(
        runs).close()
    lines = out.getvalue().splitlines()
    assert len(lines) == 2 + 3  # header, rule, rows: nothing folded onto a second line
    assert all(len(line) <= 60 for line in lines), lines
    assert set(lines[1].replace(" ", "")) == {"─"}
    assert lines[2].startswith("r0000  ") and "…" in lines[2]  # the id is whole, the long name cut
    assert "\x1b" not in out.getvalue()  # no colour unless asked (NO_COLOR, not a terminal)
    out = io.StringIO()
    writer("table", out, ["name", "state"], terminal=True, width=60, color=True).write_all(runs).close()
    assert "\x1b[1m" in out.getvalue() and "\x1b[32mfinished" in out.getvalue()


def test_terminal_table_with_too_many_columns_still_never_folds():
    run = make_run(1, config={f"key_number_{i}": i for i in range(40)})
    out = io.StringIO()
    writer("table", out, ["name", "config.*"], terminal=True, width=50).write_all([run]).close()
    assert all(len(line) <= 50 for line in out.getvalue().splitlines())


def test_star_keys_come_from_a_bounded_first_chunk_and_later_keys_are_reported():
    runs = [make_run(i, config={"lr": i}) for i in range(5)]
    runs.append(make_run(5, config={"lr": 5, "late": 1, "later": 2}))
    for fmt in ("csv", "tsv", "table"):
        out = io.StringIO()
        w = writer(fmt, out, ["name", "config.*"], sample=3)
        for run in runs:
            w.write(run)
            if run is runs[3]:
                assert out.getvalue().count("\n") >= 4, fmt  # the header and first chunk went out already
        w.close()
        assert out.getvalue().splitlines()[0].split("," if fmt == "csv" else "\t") == ["name", "config.lr"]
        assert w.late_keys == {"config": ["late", "later"]}
        assert len(out.getvalue().splitlines()) == 7
    assert SAMPLE <= 1000  # what a `*` listing holds back at most


def test_vertical_list_for_one_run():
    run = make_run(2, config={"lr": 0.2}, summary={"loss": 0.5})
    out = io.StringIO()
    write_vertical(run, ["name", "state", "config.*", "summary.*"], out)
    assert out.getvalue() == "name\tr0002\nstate\tfinished\nconfig.lr\t0.2\nsummary.loss\t0.5\n"
    out = io.StringIO()
    write_vertical(run, ["name", "display_name"], out, terminal=True, width=24)
    assert out.getvalue().splitlines() == ["name          r0002", "display_name  run numbe…"]


def test_plain_records_work_like_runs():
    rows = [{"run_id": "a", "status": "deleted", "error": None}, {"run_id": "b", "status": "failed", "error": "x"}]
    out = io.StringIO()
    writer("csv", out, ["run_id", "status", "error"]).write_all(rows).close()
    assert out.getvalue() == "run_id,status,error\na,deleted,\nb,failed,x\n"
