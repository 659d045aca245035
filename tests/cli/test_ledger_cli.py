"""`wbgql ledger list|show|resume|undo` and `runs restore --ledger`: reading ledgers, and the
rails around acting on one (its own server, bad files, nothing left to do)."""

from __future__ import annotations

import csv
import io
import json

import pytest

from .conftest import run_process


@pytest.fixture(scope="module")
def two_ledgers(mutable_server, tmp_path_factory):
    """An update and a delete, applied (in a process of their own, as users run them), with
    their ledgers in the default folder of that process's XDG_DATA_HOME."""
    xdg = tmp_path_factory.mktemp("xdg")
    env = {"WANDB_BASE_URL": mutable_server.base_url, "WANDB_API_KEY": mutable_server.api_key,
           "XDG_DATA_HOME": str(xdg)}
    first = run_process("runs", "update", "demo/nlp", "--id", "nl000001", "--id", "nl000002", "--notes", "x",
                        "--yes", env=env)
    assert first.returncode == 0, first.stderr
    second = run_process("runs", "delete", "demo/nlp", "--id", "nl000003", "--yes", env=env)
    assert second.returncode == 0, second.stderr
    return xdg


def _path(stderr: str) -> str:
    return next(line[len("ledger: "):] for line in stderr.splitlines() if line.startswith("ledger: "))


def test_ledger_list_newest_first(wbgql, two_ledgers, mutable_server, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(two_ledgers))
    out = wbgql("-f", "json", "ledger", "list")
    assert out.exit_code == 0, out
    rows = json.loads(out.stdout)
    assert [r["actions"] for r in rows] == ["delete", "update"]  # newest first
    assert [r["runs"] for r in rows] == [1, 2]
    assert {r["state"] for r in rows} == {"done"}
    assert {r["server"] for r in rows} == {mutable_server.base_url} and all(r["user"] for r in rows)
    assert all(r["path"].startswith(str(two_ledgers)) and r["created"] for r in rows)
    table = wbgql("ledger", "list")  # piped table: tab-separated with a header
    assert table.stdout.splitlines()[0].split("\t") == ["path", "created", "server", "user", "actions", "runs",
                                                          "state"]


def test_ledger_list_with_none_says_where_it_looked(wbgql):
    out = wbgql("ledger", "list")
    assert out.exit_code == 0 and "no ledgers in " in out.stderr, out


def test_ledger_show_header_plans_counts(wbgql, two_ledgers, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(two_ledgers))
    newest = json.loads(wbgql("-f", "json", "ledger", "list").stdout)[0]["path"]
    out = wbgql("ledger", "show", newest)
    assert out.exit_code == 0, out
    assert f"ledger: {newest}" in out.stdout and "server: http://127.0.0.1:" in out.stdout
    assert "plan 0: delete 1 run(s) in demo/nlp (given ids)" in out.stdout
    assert "outcomes: deleted 1; pending 0" in out.stdout and "done: ok" in out.stdout
    assert f"undo: wbgql runs restore --ledger {newest}" in out.stdout
    doc = json.loads(wbgql("-f", "json", "ledger", "show", newest).stdout)
    assert doc["header"]["user"] and doc["plans"][0]["counts"] == {"deleted": 1} and doc["state"] == "done"
    rows = list(csv.DictReader(io.StringIO(wbgql("-f", "csv", "ledger", "show", newest).stdout)))
    assert {(r["status"], r["runs"]) for r in rows} == {("deleted", "1"), ("pending", "0")}


def test_bad_ledger_files_are_one_line_exit_2(wbgql, tmp_path):
    out = wbgql("ledger", "show", str(tmp_path / "missing.jsonl"))
    assert out.exit_code == 2 and out.stderr.startswith("error: cannot read ledger"), out
    other = tmp_path / "other.jsonl"
    other.write_text('{"hello": 1}\n')
    for args in (["ledger", "show", str(other)], ["ledger", "resume", str(other), "--yes"],
                 ["runs", "restore", "--ledger", str(other), "--yes"], ["ledger", "undo", str(other), "--yes"]):
        out = wbgql(*args)
        assert out.exit_code == 2 and "not a wandb-gql ledger" in out.stderr, (args, out)


def test_acting_on_a_ledger_uses_its_server_and_refuses_another(wbgql, two_ledgers, mutable_server, monkeypatch,
                                                                closed_port):
    monkeypatch.setenv("XDG_DATA_HOME", str(two_ledgers))
    newest = json.loads(wbgql("-f", "json", "ledger", "list").stdout)[0]["path"]
    out = wbgql("--base-url", f"http://127.0.0.1:{closed_port}", "--api-key", mutable_server.api_key,
                "runs", "restore", "--ledger", newest, "--yes")
    assert out.exit_code == 2 and f"was written against {mutable_server.base_url}" in out.stderr, out
    # no --base-url: the ledger's own server; restore, and a second restore changes nothing
    monkeypatch.setenv("WANDB_API_KEY", mutable_server.api_key)
    out = wbgql("-f", "json", "runs", "restore", "--ledger", newest, "--yes")
    assert out.exit_code == 0, out
    assert json.loads(out.stdout)["plans"][0]["counts"] == {"restored": 1}
    out = wbgql("runs", "restore", "--ledger", newest, "demo/rl", "--yes")
    assert out.exit_code == 2 and "not demo/rl" in out.stderr, out
    out = wbgql("runs", "restore", "--ledger", newest, "--id", "nl000003", "--yes")
    assert out.exit_code == 2 and "not both" in out.stderr, out
    out = wbgql("ledger", "resume", newest, "--yes")
    assert out.exit_code == 0 and "nothing to resume" in out.stderr, out


def test_every_ledger_and_cleanup_command_has_an_example(wbgql):
    for command in (["ledger", "list"], ["ledger", "show"], ["ledger", "resume"], ["ledger", "undo"],
                    ["cleanup", "plan"], ["cleanup", "apply"], ["runs", "archive"], ["runs", "restore"]):
        text = wbgql(*command, "--help").stdout
        assert "Examples:" in text and "wbgql " in text.split("Examples:")[1], command
        assert "{" not in text.split("Options:")[0] and "<str>" not in text, command


def test_global_options_after_ledger_commands(wbgql, two_ledgers, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(two_ledgers))
    out = wbgql("ledger", "list", "--format", "json", "-v")
    assert out.exit_code == 0 and json.loads(out.stdout), out
