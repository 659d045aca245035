"""The cleanup workflow as users meet it: plan -> ledger -> apply -> verify; restore by ledger;
Ctrl-C and kill -9 midway then `ledger resume`; drift; `runs archive`; `runs list --deleted`;
`cleanup plan|apply POLICY.toml`. Against a real local server of each test's own (demo seed),
in-process and as real processes."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import Recorder
from wandb_gql.server.local import LocalServer

from .conftest import parse_jsonl, rest_of, run_process

EXAMPLE_POLICY = Path(__file__).resolve().parents[2] / "examples" / "cleanup-policy.toml"


@pytest.fixture
def demo(tmp_path):
    """A demo-seeded server of this test's own: every test here changes runs."""
    with LocalServer(tmp_path / "demo.db", seed="demo") as s:
        yield s


@pytest.fixture
def caller(demo):
    from tests.conftest import Caller

    c = Caller(demo)
    yield c
    c.faults({})


def env_for(server: LocalServer) -> dict[str, str]:
    return {"WANDB_BASE_URL": server.base_url, "WANDB_API_KEY": server.api_key}


def snapshot(wbgql, server, path: str) -> dict[str, dict]:
    """Every live run of `path`, by id, with config, summary and tags."""
    out = wbgql.remote(server, "-f", "json", "runs", "list", path, "--config-keys", "*", "--summary-keys", "*")
    assert out.exit_code == 0, out
    return {r["name"]: r for r in json.loads(out.stdout)}


def deleted_ids(wbgql, server, path: str) -> set[str]:
    out = wbgql.remote(server, "-f", "json", "runs", "list", path, "--deleted")
    assert out.exit_code == 0, out
    return {r["name"] for r in json.loads(out.stdout)}


def ledger_of(stderr: str) -> Path:
    found = re.search(r"^ledger: (.+)$", stderr, re.M)
    assert found, stderr
    return Path(found.group(1).strip())


# ---------------------------------------------------------------------------- delete, ledger, restore


def test_delete_with_a_ledger_then_restore_brings_back_exactly_those_runs(wbgql, demo, tmp_path):
    before = snapshot(wbgql, demo, "demo/nlp")
    # someone else deleted a run earlier: a restore by filter would bring it back too
    other = sorted(r for r, v in before.items() if v["state"] == "failed")[0]
    out = wbgql.remote(demo, "runs", "delete", "demo/nlp", "--id", other, "--yes")
    assert out.exit_code == 0, out

    ledger = tmp_path / "ours.jsonl"
    out = wbgql.remote(demo, "-f", "json", "runs", "delete", "demo/nlp", "--state", "failed,crashed",
                       "--older-than", "10d", "--ledger", str(ledger), "--yes")
    assert out.exit_code == 0, out
    summary = json.loads(out.stdout)
    assert summary["ok"] is True and summary["ledger"] == str(ledger)
    ours = {i for i, v in before.items() if v["state"] in ("failed", "crashed") and i != other
            and v["created_at"] < _days_ago(10)}
    assert summary["plans"][0]["counts"] == {"deleted": len(ours)}
    assert out.stderr.startswith(f"server: {demo.base_url} as ")
    # the ledger's path is printed before anything changes; the verify result after
    assert out.stderr.index(f"ledger: {ledger}") < out.stderr.index("delete: deleted")
    assert "verify: ok" in out.stderr
    assert f"undo: wbgql runs restore --ledger {ledger}" in out.stderr
    assert deleted_ids(wbgql, demo, "demo/nlp") == ours | {other}

    out = wbgql.remote(demo, "-f", "json", "runs", "restore", "--ledger", str(ledger), "--yes")
    assert out.exit_code == 0, out
    assert json.loads(out.stdout)["plans"][0]["counts"] == {"restored": len(ours)}
    after = snapshot(wbgql, demo, "demo/nlp")
    assert set(after) == set(before) - {other}  # exactly ours came back, not the other deleted run
    for run_id in ours:
        assert (after[run_id]["config"], after[run_id]["summary"], after[run_id]["tags"]) == \
            (before[run_id]["config"], before[run_id]["summary"], before[run_id]["tags"])
    assert deleted_ids(wbgql, demo, "demo/nlp") == {other}


def _days_ago(days: int) -> str:
    from datetime import datetime, timedelta, timezone

    return (datetime.now(timezone.utc) - timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%S")


def test_dry_run_json_changes_nothing_and_writes_no_ledger(wbgql, demo, isolated_env):
    before = snapshot(wbgql, demo, "demo/rl")
    for command in ("delete", "archive"):
        out = wbgql.remote(demo, "-f", "json", "runs", command, "demo/rl", "--state", "crashed",
                           "--keep-best", "2", "--by", "summary.val/acc", "--per", "group", "--dry-run")
        assert out.exit_code == 0, out
        plan = json.loads(out.stdout)
        assert plan["server"] == demo.base_url and plan["user"] and plan["path"] == "demo/rl"
        crashed = {i for i, r in before.items() if r["state"] == "crashed"}
        assert set(plan["run_ids"]) < crashed and plan["excluded"]["kept_best"] > 0
        assert plan["run_count"] == len(plan["run_ids"]) == len(crashed) - plan["excluded"]["kept_best"]
        assert "dry run: nothing changed" in out.stderr
    assert snapshot(wbgql, demo, "demo/rl") == before
    assert deleted_ids(wbgql, demo, "demo/rl") == set()
    assert not list((isolated_env / "xdg").rglob("*.jsonl"))  # a dry run writes no ledger


def test_protected_tags_come_from_the_config_file_and_protect_tag_adds(wbgql, demo, isolated_env, monkeypatch):
    before = snapshot(wbgql, demo, "demo/rl")
    tagged = {i for i, r in before.items() if r["state"] == "crashed" and "tmp" in (r["tags"] or [])}
    assert tagged

    def planned(*extra: str) -> dict:
        out = wbgql.remote(demo, "-f", "json", "runs", "delete", "demo/rl", "--state", "crashed", "--dry-run", *extra)
        assert out.exit_code == 0, out
        return json.loads(out.stdout)

    assert tagged <= set(planned()["run_ids"])  # tmp protects nothing by default
    assert not tagged & set(planned("--protect-tag", "tmp")["run_ids"])
    config = isolated_env / "wandb-gql.toml"
    config.write_text('[cleanup]\nprotect_tags = ["keep", "tmp"]\n')
    monkeypatch.setenv("WBGQL_CONFIG", str(config))
    plan = planned()
    assert not tagged & set(plan["run_ids"]) and plan["excluded"]["protected"] >= len(tagged)
    config.write_text("[cleanup\n")
    bad = wbgql.remote(demo, "runs", "delete", "demo/rl", "--state", "crashed", "--dry-run")
    assert bad.exit_code == 2 and "not valid TOML" in bad.stderr and "Traceback" not in bad.stderr, bad


def test_archive_is_delete_and_both_helps_say_it_is_a_soft_delete(wbgql, demo):
    for command in ("delete", "archive"):
        text = " ".join(wbgql("runs", command, "--help").stdout.split())
        assert "soft delete" in text and "restored" in text and "retention period" in text, command
        assert "--keep-best K" in text and "--older-than AGE" in text and "Examples:" in text
    out = wbgql.remote(demo, "runs", "archive", "demo/rl", "--id", "rl000004", "--id", "rl000005", "--yes")
    assert out.exit_code == 0, out
    assert re.search(r"^deleted\s+2$", out.stdout, re.M), out
    assert deleted_ids(wbgql, demo, "demo/rl") == {"rl000004", "rl000005"}


def test_list_deleted_shows_deletion_and_purge_dates(wbgql, demo):
    assert wbgql.remote(demo, "runs", "delete", "demo/rl", "--id", "rl000009", "--yes").exit_code == 0
    out = wbgql.remote(demo, "-f", "json", "runs", "list", "demo/rl", "--deleted")
    assert out.exit_code == 0, out
    [run] = json.loads(out.stdout)
    assert set(run) == {"name", "display_name", "state", "deleted_at", "purge_at"}
    assert run["name"] == "rl000009" and run["deleted_at"] < run["purge_at"]
    out = wbgql.remote(demo, "-f", "csv", "runs", "list", "demo/rl", "--deleted", "--where", "state = nosuch")
    assert out.stdout == "name,display_name,state,deleted_at,purge_at\n", out


def test_list_deleted_on_a_server_that_cannot_says_so_in_one_line(wbgql, demo):
    wandb_like = without_deleted_runs(demo.base_url)
    out = wbgql("--base-url", wandb_like.base_url, "--api-key", demo.api_key, "runs", "list", "demo/rl",
                "--deleted")
    assert out.exit_code == 2, out
    assert len(out.stderr.strip().splitlines()) <= 2 and "cannot list deleted runs" in out.stderr, out
    assert out.stdout == ""


def without_deleted_runs(target: str) -> Recorder:
    """A proxy in front of the local server that answers as W&B does for the local extension:
    'Cannot query field "deletedRuns"' (W&B cannot list deleted runs)."""
    proxy = Recorder(target)
    proxy.fail_when = lambda body: ((400, ['Cannot query field "deletedRuns" on type "Project".'])
                                    if "deletedRuns" in body["query"] else None)
    return proxy


# ---------------------------------------------------------------------------- streaming, interruption


def _start(server: LocalServer, *args: str, stdin=subprocess.DEVNULL) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "wandb_gql.cli", *args], env={**os.environ, **env_for(server)},
                            stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


SLOW = {"latency": 0.15, "rate_limit": 4, "window": 1.0, "retry_after": 0.3}  # W&B a network away, and busy


def test_jsonl_outcomes_stream_while_the_apply_runs(demo, caller, tmp_path):
    caller.faults(SLOW)
    proc = _start(demo, "-f", "jsonl", "runs", "delete", "demo/vision", "--state", "finished", "--older-than", "30d",
                  "--ledger", str(tmp_path / "l.jsonl"), "--yes")
    try:
        first = proc.stdout.readline()
        still_running = proc.poll() is None
        rest, err = rest_of(proc, 120)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert json.loads(first)["status"] == "deleted" and still_running, (first, err)
    lines = [json.loads(first), *parse_jsonl(rest)]
    assert {o["status"] for o in lines} == {"deleted"}
    assert len(lines) == len({o["run_id"] for o in lines}) > 100
    assert "delete: deleted" in err and "verify: ok" in err


@pytest.mark.parametrize("how", ["ctrl-c", "kill -9"])
def test_interrupted_apply_then_ledger_resume_finishes_exactly_the_plan(wbgql, demo, caller, tmp_path, how):
    before = snapshot(wbgql, demo, "demo/vision")
    ledger = tmp_path / "cut.jsonl"
    caller.faults(SLOW)
    proc = _start(demo, "-f", "jsonl", "runs", "delete", "demo/vision", "--state", "finished", "--older-than", "30d",
                  "--ledger", str(ledger), "--yes")
    try:
        first = proc.stdout.readline()  # one outcome is known: the apply is under way
        assert first, proc.stderr.read() if proc.poll() is not None else "no outcome"
        proc.send_signal(signal.SIGINT if how == "ctrl-c" else signal.SIGKILL)
        out, err = rest_of(proc)
    finally:
        proc.kill()
        caller.faults({})
    planned = set(_plan_ids(ledger))
    done_before = {o["run_id"] for o in [json.loads(first), *parse_jsonl(out)]}
    assert done_before < planned, "interrupted before the end"
    if how == "ctrl-c":
        assert proc.returncode == 130, err
        assert "Traceback" not in err
        assert "interrupted: deleted" in err and "not done" in err
        assert f"resume: wbgql ledger resume {ledger}" in err
        assert f"undo:   wbgql runs restore --ledger {ledger}" in err
    else:
        assert proc.returncode == -signal.SIGKILL

    show = wbgql("-f", "json", "ledger", "show", str(ledger))
    assert show.exit_code == 0, show
    shown = json.loads(show.stdout)
    assert shown["state"] == "interrupted" and shown["plans"][0]["pending_count"] > 0

    proc = run_process("-f", "jsonl", "ledger", "resume", str(ledger), "--yes", env=env_for(demo))
    assert proc.returncode == 0, proc.stderr
    resumed = {o["run_id"] for o in parse_jsonl(proc.stdout)}
    assert resumed <= planned and not (resumed & {o["run_id"] for o in [json.loads(first)]})
    after = snapshot(wbgql, demo, "demo/vision")
    assert set(before) - set(after) == planned  # exactly the plan ended deleted, nothing else
    assert deleted_ids(wbgql, demo, "demo/vision") == planned
    assert json.loads(wbgql("-f", "json", "ledger", "show", str(ledger)).stdout)["state"] == "done"
    again = wbgql("ledger", "resume", str(ledger), "--yes")
    assert again.exit_code == 0 and "nothing to resume" in again.stderr, again


def _plan_ids(ledger: Path) -> list[str]:
    for line in ledger.read_text().splitlines():
        record = json.loads(line)
        if record["type"] == "plan":
            return record["run_ids"]
    raise AssertionError(f"no plan in {ledger}")


def test_drift_beyond_max_drift_exits_3_naming_the_runs(wbgql, demo, tmp_path):
    proc = _start(demo, "runs", "delete", "demo/rl", "--state", "killed", "--ledger", str(tmp_path / "d.jsonl"),
                  stdin=subprocess.PIPE)
    try:
        prompt = ""
        while "[y/N]" not in prompt:  # the plan is shown and the question asked: now the world changes
            char = proc.stderr.read(1)
            assert char, prompt
            prompt += char
        ids = re.findall(r"^  - (rl\d+)", prompt, re.M)
        assert ids, prompt
        changed = wbgql.remote(demo, "runs", "update", "demo/rl", "--id", ids[0], "--add-tag", "keep", "--yes")
        assert changed.exit_code == 0, changed
        out, err = proc.communicate("y\n", timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 3, err
    assert ids[0] in err and "nothing changed" in err
    assert deleted_ids(wbgql, demo, "demo/rl") == set()


# ---------------------------------------------------------------------------- update and undo


def test_update_then_ledger_undo_puts_the_previous_values_back(wbgql, demo, tmp_path):
    before = snapshot(wbgql, demo, "demo/rl")
    ledger = tmp_path / "u.jsonl"
    out = wbgql.remote(demo, "runs", "update", "demo/rl", "--state", "killed", "--add-tag", "was-killed",
                       "--notes", "checked", "--ledger", str(ledger), "--yes")
    assert out.exit_code == 0, out
    assert f"undo: wbgql ledger undo {ledger}" in out.stderr
    changed = {i for i, r in snapshot(wbgql, demo, "demo/rl").items() if "was-killed" in r["tags"]}
    assert changed == {i for i, r in before.items() if r["state"] == "killed"}
    out = wbgql.remote(demo, "ledger", "undo", str(ledger), "--yes")
    assert out.exit_code == 0, out
    after = snapshot(wbgql, demo, "demo/rl")
    # notes that were never set come back empty (W&B has no way to set them back to null)
    assert {i: (r["tags"], r["notes"] or None) for i, r in after.items()} == \
        {i: (r["tags"], r["notes"] or None) for i, r in before.items()}


# ---------------------------------------------------------------------------- policies


POLICY = """
[[rule]]
name = "tag old crashes"
path = "demo/rl"
states = ["crashed"]
action = "tag"
add_tags = ["stale"]

[[rule]]
name = "drop failures"
path = "demo/rl"
states = ["failed"]
action = "delete"
"""


def test_cleanup_plan_then_apply_a_policy(wbgql, demo, tmp_path):
    policy = tmp_path / "policy.toml"
    policy.write_text(POLICY)
    before = snapshot(wbgql, demo, "demo/rl")
    out = wbgql.remote(demo, "-f", "json", "cleanup", "plan", str(policy))
    assert out.exit_code == 0, out
    plans = json.loads(out.stdout)
    assert [p["action"] for p in plans] == ["tag", "delete"]
    assert set(plans[1]["run_ids"]) == {i for i, r in before.items() if r["state"] == "failed"}
    assert snapshot(wbgql, demo, "demo/rl") == before  # planning changes nothing

    out = wbgql.remote(demo, "-f", "json", "cleanup", "apply", str(policy), "--yes")
    assert out.exit_code == 0, out
    summary = json.loads(out.stdout)
    assert summary["ok"] is True and len(summary["plans"]) == 2
    after = snapshot(wbgql, demo, "demo/rl")
    assert set(after) == {i for i, r in before.items() if r["state"] != "failed"}
    assert {i for i, r in after.items() if "stale" in r["tags"]} == {i for i, r in before.items()
                                                                     if r["state"] == "crashed"}
    listed = json.loads(wbgql("-f", "json", "ledger", "list").stdout)
    assert listed[0]["path"] == summary["ledger"] and listed[0]["state"] == "done"
    assert listed[0]["actions"] == "tag,delete"


def test_cleanup_exit_codes_for_cron(wbgql, demo, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[[rule]]\nname = "x"\npath = "demo/rl"\nstates = ["failed"]\naction = "explode"\n')
    out = wbgql.remote(demo, "cleanup", "apply", str(bad), "--yes")
    assert out.exit_code == 2 and out.stderr.startswith("error: ") and "action" in out.stderr, out
    refused = tmp_path / "refused.toml"
    refused.write_text('[defaults]\nmax_runs = 1\n\n[[rule]]\nname = "too many"\npath = "demo/rl"\n'
                       'states = ["failed"]\naction = "delete"\n')
    out = wbgql.remote(demo, "cleanup", "apply", str(refused), "--yes")
    assert out.exit_code == 3, out
    assert deleted_ids(wbgql, demo, "demo/rl") == set()


def test_the_example_policy_plans_on_the_demo_data(wbgql, demo):
    out = wbgql.remote(demo, "-f", "json", "cleanup", "plan", str(EXAMPLE_POLICY))
    assert out.exit_code == 0, out
    assert {p["action"] for p in json.loads(out.stdout)} <= {"tag", "delete", "move"}
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    assert "wbgql cleanup apply" in readme and "[[rule]]" in readme


# ---------------------------------------------------------------------------- the key


def test_the_key_never_appears_in_ledgers_or_output(demo, tmp_path, isolated_env):
    key = demo.api_key
    args = ["--base-url", demo.base_url, "--api-key", key]
    ledger = tmp_path / "k.jsonl"
    runs = [run_process(*args, "-f", "jsonl", "runs", "delete", "demo/rl", "--state", "crashed", "--ledger",
                        str(ledger), "--yes", "-vv"),
            run_process(*args, "ledger", "show", str(ledger)),
            run_process(*args, "ledger", "list"),
            run_process(*args, "runs", "restore", "--ledger", str(ledger), "--yes", "-vv")]
    for proc in runs:
        assert proc.returncode == 0, proc.stderr
        assert key not in proc.stdout and key not in proc.stderr
    text = ledger.read_text()
    assert key not in text and '"--api-key","***"' in text.replace(", ", ",")


def test_progress_on_a_terminal_shows_done_failed_left(demo, caller, tmp_path):
    from .conftest import Terminal

    caller.faults(SLOW)
    env = {**os.environ, **env_for(demo), "TERM": "xterm"}
    with Terminal() as terminal, open(tmp_path / "out.jsonl", "w") as stdout:
        proc = subprocess.run([sys.executable, "-m", "wandb_gql.cli", "-f", "jsonl", "runs", "delete", "demo/vision",
                               "--state", "finished", "--yes"], env=env, stdout=stdout, stderr=terminal.fd,
                              timeout=180)
    assert proc.returncode == 0, terminal.text
    assert re.search(r"deleting 8\d\d run\(s\).*\d+/8\d\d\s+0 failed\s+\d+ left\s+\d+/s", terminal.text), terminal.text
    assert len(parse_jsonl((tmp_path / "out.jsonl").read_text())) > 800  # stdout: data only
