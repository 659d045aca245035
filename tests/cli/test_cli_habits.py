"""The habits of W&B and gh users: paths as pasted, options anywhere, --fields, plain text in a
pipe, a quiet `| head`, --ids-from, plans as JSON, whoami after `wandb login`, projects, help."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys

import pytest

from .conftest import Terminal, parse_jsonl, requests_seen, run_process

WBGQL = [sys.executable, "-m", "wandb_gql.cli"]


def env_for(server) -> dict[str, str]:
    return {"WANDB_BASE_URL": server.base_url, "WANDB_API_KEY": server.api_key}


# ---------------------------------------------------------------------------- paths


@pytest.mark.parametrize("path", ["demo/rl", "rl", "https://wandb.ai/demo/rl", "https://wandb.ai/demo/rl/workspace?nw=abc",
                                  "wandb.ai/demo/rl/"])
def test_runs_list_takes_every_path_form(wbgql, server, path):
    out = wbgql.remote(server, "--entity", "demo", "-f", "jsonl", "runs", "list", path, "-n", "2",
                       "--fields", "name,path")
    assert out.exit_code == 0, out
    assert parse_jsonl(out.stdout) == [{"name": "rl000199", "path": "demo/rl/rl000199"},
                                       {"name": "rl000198", "path": "demo/rl/rl000198"}]


@pytest.mark.parametrize("path", ["demo/rl/rl000001", "demo/rl/runs/rl000001", "rl/rl000001",
                                  "https://wandb.ai/demo/rl/runs/rl000001?nw=x1", "https://wandb.ai/demo/rl/runs/rl000001/logs"])
def test_runs_get_takes_every_path_form(wbgql, server, path):
    out = wbgql.remote(server, "--entity", "demo", "-f", "json", "runs", "get", path, "--fields", "name,path")
    assert out.exit_code == 0, out
    assert json.loads(out.stdout) == {"name": "rl000001", "path": "demo/rl/rl000001"}


@pytest.mark.parametrize("args", [["runs", "list", "demo/"], ["runs", "list", "a/b/c/d/e"], ["runs", "count", "/"],
                                  ["runs", "get", "rl000001"], ["runs", "get", "a/b/c/d/e"]])
def test_a_path_that_cannot_be_read_is_exit_2_with_nothing_sent(wbgql, server, args):
    before = requests_seen(server)
    out = wbgql.remote(server, *args)
    assert out.exit_code == 2, out
    assert out.stderr.startswith("error: cannot read ") and len(out.stderr.splitlines()) <= 2, out
    assert requests_seen(server) == before


def test_missing_project_suggests_the_closest_names(wbgql, server):
    out = wbgql.remote(server, "runs", "list", "demo/visoin")
    assert out.exit_code == 1, out
    assert out.stderr.splitlines() == ["error: project demo/visoin not found", "hint: did you mean demo/vision?"]


# ---------------------------------------------------------------------------- global options anywhere


def test_global_options_after_the_command_in_process(wbgql, server):
    out = wbgql("runs", "count", "demo/rl", "--base-url", server.base_url, "--api-key", server.api_key, "-f", "json")
    assert (out.exit_code, json.loads(out.stdout)) == (0, {"count": 200}), out
    out = wbgql("runs", "list", "demo/rl", "-n", "1", f"--base-url={server.base_url}", "--api-key", server.api_key,
                "-vv", "--format", "jsonl")
    assert out.exit_code == 0 and "DEBUG wandb_gql" in out.stderr, out
    assert parse_jsonl(out.stdout)[0]["name"] == "rl000199"


def test_global_options_after_the_command_as_a_process(server, isolated_env):
    proc = run_process("runs", "list", "demo/rl", "-n", "2", "--base-url", server.base_url, "--api-key",
                       server.api_key, "-f", "json", "-v", module=False)
    assert proc.returncode == 0, proc
    assert [r["name"] for r in json.loads(proc.stdout)] == ["rl000199", "rl000198"]
    proc = run_process("runs", "count", "demo/rl", "--local", env={"XDG_DATA_HOME": str(isolated_env / "x")})
    assert (proc.returncode, proc.stdout) == (0, "200\n"), proc


def test_an_option_value_is_never_taken_for_a_global_option(wbgql, server):
    # '--local' is the --where expression here, not the global flag: a filter error, nothing started
    out = wbgql.remote(server, "runs", "count", "demo/rl", "--where", "--local")
    assert out.exit_code == 2 and out.stderr.startswith("error: "), out
    assert "local server" not in out.stderr
    from wandb_gql.cli import global_options_first

    assert global_options_first(["runs", "list", "P", "--where", "-v", "--local", "--", "--entity", "x"]) == \
        ["--local", "runs", "list", "P", "--where", "-v", "--", "--entity", "x"]
    assert global_options_first(["runs", "list", "P", "--entity=e", "-vv", "-n", "5", "--api-key", "K"]) == \
        ["--entity=e", "-vv", "--api-key", "K", "runs", "list", "P", "-n", "5"]


# ---------------------------------------------------------------------------- --fields in every format


@pytest.mark.parametrize("fmt", ["table", "tsv", "csv", "json", "jsonl"])
def test_fields_in_every_format(wbgql, server, fmt):
    fields = "name,state,created_at,config.lr,summary.val/acc,url"
    out = wbgql.remote(server, "-f", fmt, "runs", "list", "demo/rl", "-n", "3", "--fields", fields)
    assert out.exit_code == 0, out
    if fmt in ("json", "jsonl"):
        runs = json.loads(out.stdout) if fmt == "json" else parse_jsonl(out.stdout)
        assert [set(r) for r in runs] == [{"name", "state", "created_at", "config", "summary", "url"}] * 3
        assert all(set(r["config"]) == {"lr"} and set(r["summary"]) == {"val/acc"} for r in runs)
        assert runs[0]["url"].endswith("/demo/rl/runs/rl000199")
        return
    sep = "," if fmt == "csv" else "\t"
    rows = list(csv.reader(io.StringIO(out.stdout), delimiter=sep))
    assert rows[0] == ["name", "state", "created_at", "config.lr", "summary.val/acc", "url"]
    assert [r[0] for r in rows[1:]] == ["rl000199", "rl000198", "rl000197"]
    assert all(float(r[3]) > 0 for r in rows[1:])


def test_unknown_field_is_exit_2_with_a_suggestion(wbgql, server):
    out = wbgql.remote(server, "runs", "list", "demo/rl", "--fields", "name,displayName")
    assert out.exit_code == 2, out
    assert "unknown field 'displayName'" in out.stderr and "did you mean 'display_name'" in out.stderr


def test_order_takes_the_vocabulary(wbgql, server):
    out = wbgql.remote(server, "-f", "json", "runs", "list", "demo/rl", "--order", "-summary.val/acc",
                       "--fields", "name,summary.val/acc", "-n", "20")
    values = [r["summary"]["val/acc"] for r in json.loads(out.stdout)]
    assert values == sorted(values, reverse=True) and len(values) == 20, out
    out = wbgql.remote(server, "runs", "list", "demo/rl", "--order", "-nope")
    assert out.exit_code == 2 and out.stderr.startswith("error: "), out


def test_get_respects_fields_and_a_piped_table_has_no_rules(wbgql, server):
    out = wbgql.remote(server, "runs", "get", "demo/rl/rl000003", "--fields", "name,state,config.lr")
    assert out.exit_code == 0, out
    lines = out.stdout.splitlines()
    assert [line.split("\t")[0] for line in lines] == ["name", "state", "config.lr"]
    assert "─" not in out.stdout


# ---------------------------------------------------------------------------- pipes


@pytest.mark.parametrize("fmt", ["jsonl", "table", "csv"])
def test_closed_pipe_ends_quietly_with_exit_0(server, fmt):
    # `wbgql runs list P -f jsonl | head -1`, with a real pipe: the reader goes away early
    proc = subprocess.Popen([*WBGQL, "-f", fmt, "runs", "list", "demo/vision", "--all", "--config-keys", "*"],
                            env={**os.environ, **env_for(server)}, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    first = proc.stdout.readline()
    proc.stdout.close()
    err = proc.stderr.read()
    proc.wait(60)
    assert first.strip(), err
    assert proc.returncode == 0, err
    assert err == b""


def test_closed_pipe_through_a_shell(server):
    shell = f"{' '.join(WBGQL)} runs list demo/vision -f jsonl 2>err.txt | head -1; echo ${{PIPESTATUS[0]}}"
    proc = subprocess.run(["bash", "-c", shell], capture_output=True, text=True, env={**os.environ, **env_for(server)},
                          cwd=os.environ.get("TMPDIR", "/tmp"), timeout=60)
    lines = proc.stdout.splitlines()
    assert json.loads(lines[0])["name"] == "vi001199"
    assert lines[1] == "0"  # wbgql's own exit status


# ---------------------------------------------------------------------------- --ids-from, plans as JSON


def test_ids_from_a_file_and_from_stdin(wbgql, mutable_server, tmp_path):
    ids = tmp_path / "ids.txt"
    ids.write_text("# runs to check\nrl000020\n\n  rl000021  # trailing comment\nrl000020\n")
    out = wbgql.remote(mutable_server, "-f", "json", "runs", "delete", "demo/rl", "--ids-from", str(ids), "--dry-run")
    assert out.exit_code == 0, out
    plan = json.loads(out.stdout)
    assert plan["run_ids"] == ["rl000020", "rl000021"] and plan["selection"]["kind"] == "ids"
    out = wbgql.remote(mutable_server, "-f", "jsonl", "runs", "update", "demo/rl", "--ids-from", "-", "--add-tag",
                       "from-stdin", "--yes", input="rl000022\nrl000023\n")
    assert out.exit_code == 0, out
    assert {o["run_id"]: o["status"] for o in parse_jsonl(out.stdout)} == {"rl000022": "updated", "rl000023": "updated"}
    out = wbgql.remote(mutable_server, "-f", "json", "runs", "list", "demo/rl", "--where", "tags has from-stdin",
                       "--fields", "name", "--order", "name")
    assert json.loads(out.stdout) == [{"name": "rl000022"}, {"name": "rl000023"}]
    # stdin cannot hold both the ids and the answer
    out = wbgql.remote(mutable_server, "runs", "delete", "demo/rl", "--ids-from", "-", input="rl000022\n")
    assert out.exit_code == 2 and "--yes" in out.stderr, out
    out = wbgql.remote(mutable_server, "runs", "delete", "demo/rl", "--ids-from", str(tmp_path / "nope.txt"))
    assert out.exit_code == 2 and "cannot read --ids-from" in out.stderr, out
    out = wbgql.remote(mutable_server, "runs", "delete", "demo/rl", "--ids-from", str(ids), "--where", "state = x")
    assert out.exit_code == 2 and "not both" in out.stderr, out


@pytest.mark.parametrize("command", ["update", "delete", "restore"])
def test_dry_run_json_prints_the_plan_with_ids(wbgql, mutable_server, command):
    extra = ["--notes", "n"] if command == "update" else []
    selection = ["--id", "rl000030", "--id", "rl000031"] if command == "restore" else ["--where", "state = failed"]
    out = wbgql.remote(mutable_server, "-f", "json", "runs", command, "demo/rl", *selection, *extra, "--dry-run")
    assert out.exit_code == 0, out
    plan = json.loads(out.stdout)
    assert plan["action"] == command and plan["path"] == "demo/rl"
    assert plan["server"] == mutable_server.base_url and plan["user"]
    assert plan["run_count"] == len(plan["run_ids"]) > 0
    if command != "restore":
        failed = json.loads(wbgql.remote(mutable_server, "-f", "json", "runs", "list", "demo/rl", "--where",
                                         "state = failed", "--fields", "name").stdout)
        assert sorted(plan["run_ids"]) == sorted(r["name"] for r in failed)
        assert plan["selection"]["kind"] == "filter" and plan["selection"]["where"] == "state = failed"
        assert plan["selection"]["filters"] == {"state": "failed"}
        assert plan["selection"]["protect_tags"] == ["keep", "protected"] and plan["sample"]
    assert "dry run: nothing changed" in out.stderr
    if command == "update":
        assert plan["changes"] == {"notes": "n"}


# ---------------------------------------------------------------------------- whoami, projects, help


def test_whoami_names_the_key_source_and_never_the_key(wbgql, server, monkeypatch, tmp_path):
    out = wbgql.remote(server, "whoami")
    assert out.exit_code == 0, out
    rows = dict(line.split("\t", 1) for line in out.stdout.splitlines())
    assert rows["server"] == server.base_url and rows["key_from"] == "--api-key" and rows["user"]
    assert server.api_key not in out.stdout + out.stderr
    monkeypatch.setenv("WANDB_API_KEY", server.api_key)
    out = wbgql("--base-url", server.base_url, "-f", "json", "auth", "status")
    assert out.exit_code == 0, out
    info = json.loads(out.stdout)
    assert info["key_source"] == "env" and info["server"] == server.base_url
    assert server.api_key not in out.stdout + out.stderr
    assert {"user", "entity", "teams", "email"} <= set(info)


def test_wandb_login_settings_and_netrc_are_picked_up(server, tmp_path):
    """`wandb login --host URL KEY` (the real wandb CLI) writes its settings file and netrc;
    `wbgql whoami` with no flags then talks to that host with that key."""
    home = {"HOME": str(tmp_path / "home"), "WANDB_CONFIG_DIR": str(tmp_path / "wandb"),
            "NETRC": str(tmp_path / "netrc"), "XDG_DATA_HOME": str(tmp_path / "xdg")}
    clean = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_")}
    wandb = str(os.path.join(os.path.dirname(sys.executable), "wandb"))
    login = subprocess.run([wandb, "login", "--host", server.base_url, server.api_key], capture_output=True, text=True,
                           env={**clean, **home}, timeout=120)
    assert login.returncode == 0, login.stderr
    assert (tmp_path / "wandb" / "settings").is_file() and (tmp_path / "netrc").is_file()
    proc = subprocess.run([*WBGQL, "-f", "json", "whoami"], capture_output=True, text=True, env={**clean, **home},
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    assert info["server"] == server.base_url and info["key_source"] == "netrc"
    assert "settings" in info["server_from"]
    assert server.api_key not in proc.stdout + proc.stderr
    proc = subprocess.run([*WBGQL, "runs", "count", "demo/rl"], capture_output=True, text=True,
                          env={**clean, **home}, timeout=60)
    assert (proc.returncode, proc.stdout) == (0, "200\n"), proc.stderr


def test_projects_list(wbgql, server):
    out = wbgql.remote(server, "projects", "list", "demo")
    assert out.exit_code == 0, out
    rows = [line.split("\t") for line in out.stdout.splitlines()]
    assert rows[0] == ["name", "run_count", "last_active"]
    assert {r[0]: int(r[1]) for r in rows[1:]} == {"vision": 1200, "nlp": 600, "rl": 200}
    out = wbgql.remote(server, "-f", "json", "projects", "list", "demo", "--fields", "path,run_count")
    assert {p["path"]: p["run_count"] for p in json.loads(out.stdout)} == \
        {"demo/vision": 1200, "demo/nlp": 600, "demo/rl": 200}
    out = wbgql.remote(server, "projects", "list", "nobody-here")
    assert out.exit_code == 1 and out.stderr.startswith("error: entity nobody-here not found"), out


def test_help_where_is_the_language_reference(wbgql):
    from wandb_gql.models import RUN_FIELDS

    out = wbgql("help", "where")
    assert out.exit_code == 0, out
    for f in RUN_FIELDS:
        if f.filter is not None:
            assert f"\n  {f.name} " in out.stdout, f.name
    for word in ("config.<key>", "summary.<key>", "not in", "exists", "30d ago", "summary_metrics", "RE2"):
        assert word in out.stdout, word


def test_help_version_and_placeholders(wbgql):
    from wandb_gql import __version__

    assert wbgql("--version").stdout == f"wbgql {__version__}\n"
    short = wbgql("runs", "list", "-h")
    assert short.exit_code == 0 and short.stdout == wbgql("runs", "list", "--help").stdout
    assert "Usage: wbgql runs list [OPTIONS] ENTITY/PROJECT" in short.stdout
    assert "{" not in short.stdout.split("Options:")[0] and "<str>" not in short.stdout
    assert "--install-completion" in wbgql("--help").stdout
    for command in (["runs", "list"], ["runs", "count"], ["runs", "get"], ["runs", "explain"], ["runs", "update"],
                    ["runs", "delete"], ["runs", "restore"], ["projects", "list"], ["whoami"], ["auth", "status"],
                    ["server"], ["help", "where"]):
        text = wbgql(*command, "--help").stdout
        assert "Examples:" in text and "wbgql " in text.split("Examples:")[1], command


def test_a_bad_format_says_which_values_are_allowed(wbgql, server):
    for args in (["-f", "xml", "runs", "count", "demo/rl"], ["runs", "count", "demo/rl", "-f", "xml"],
                 ["runs", "count", "demo/rl", "--format", "yaml"]):
        out = wbgql.remote(server, *args)
        assert out.exit_code == 2, (args, out)
        assert len(out.stderr.splitlines()) == 1 and out.stderr.startswith("error: "), out
        for name in ("table", "tsv", "csv", "json", "jsonl"):
            assert name in out.stderr, out


# ---------------------------------------------------------------------------- on a terminal


def _on_a_terminal(args: list[str], env: dict[str, str], timeout: float = 60) -> tuple[int, str]:
    """Run wbgql with stdout and stderr on a pseudo-terminal; (exit status, what the terminal got)."""
    with Terminal() as terminal:
        proc = subprocess.run([*WBGQL, *args], env={**os.environ, "TERM": "xterm", "COLUMNS": "100", **env},
                              stdin=subprocess.DEVNULL, stdout=terminal.fd, stderr=terminal.fd, timeout=timeout)
    return proc.returncode, terminal.text


def test_a_terminal_table_is_newest_first_limited_and_says_so(server):
    code, text = _on_a_terminal(["runs", "list", "demo/vision"], {**env_for(server), "NO_COLOR": "1"})
    assert code == 0, text
    lines = text.replace("\r", "").splitlines()
    assert lines[0].split()[:3] == ["name", "display_name", "state"] and set(lines[1].replace(" ", "")) == {"─"}
    rows = [line for line in lines[2:] if line.startswith("vi")]
    assert len(rows) == 50 and rows[0].startswith("vi001199")
    assert "showing 50 of 1,200: --limit N or --all" in text
    assert "\x1b[1m" not in text  # NO_COLOR
    assert all(len(line) <= 100 for line in lines)


def test_unreachable_server_is_one_line_with_a_hint(closed_port):
    proc = run_process("runs", "count", "demo/rl", env={"WANDB_BASE_URL": f"http://127.0.0.1:{closed_port}",
                                                        "WANDB_API_KEY": "local-" + "u" * 40})
    assert proc.returncode == 1, proc
    lines = proc.stderr.splitlines()
    assert lines[0].startswith(f"error: cannot reach http://127.0.0.1:{closed_port}"), proc.stderr
    assert len(lines) <= 2 and all(line.startswith(("error: ", "hint: ")) for line in lines), proc.stderr


def test_retry_shows_a_status_line_on_a_terminal(fresh_api, fresh_server):
    fresh_api.faults({"script": [429], "retry_after": 2})
    code, text = _on_a_terminal(["runs", "count", "demo/nope"], env_for(fresh_server))
    assert "rate limited, waiting 2 s" in text, text
