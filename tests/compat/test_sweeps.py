"""Sweeps with the real `wandb` SDK: wandb.sweep creates one on the local server, wandb.agent runs
the parameter sets the server chooses, and wandb.Api() reads the sweep, its runs and its best run.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator

import pytest

pytestmark = pytest.mark.compat

SET_STATE = """
mutation SetState($id: ID, $state: String) { upsertSweep(input: {id: $id, state: $state}) { sweep { state } } }
"""
SWEEP_ID = """
query SweepId($entity: String, $project: String, $name: String!) {
  project(entityName: $entity, name: $project) { sweep(sweepName: $name) { id state runCount } }
}
"""


@pytest.fixture
def quick_agent(wb) -> Iterator[None]:
    """The agent heartbeats every 5 s; the SDK lets tests make it 0 (pyagent.py says so)."""
    from wandb.agents import pyagent

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(pyagent.Agent, "HEARTBEAT_SLEEP_SECONDS", 0.05)
        yield


def _train(wb: Any, seen: list[dict[str, Any]]) -> Any:
    def train() -> None:
        run = wb.init()
        config = dict(run.config)
        seen.append(config)
        loss = config["lr"] * 10 + config.get("batch", 0) / 1000
        run.log({"loss": loss})
        run.summary["loss"] = loss
        run.finish()
    return train


def test_grid_sweep_runs_three_combinations_and_finds_the_best(wb, quick_agent, project_name, viewer_entity):
    config = {"method": "grid", "metric": {"name": "loss", "goal": "minimize"},
              "parameters": {"lr": {"values": [0.3, 0.1, 0.2]}, "batch": {"value": 16}}}
    sweep_id = wb.sweep(config, entity=viewer_entity, project=project_name)
    seen: list[dict[str, Any]] = []
    wb.agent(sweep_id, function=_train(wb, seen), entity=viewer_entity, project=project_name, count=3)

    assert sorted(c["lr"] for c in seen) == [0.1, 0.2, 0.3]
    assert all(c["batch"] == 16 for c in seen)
    sweep = wb.Api().sweep(f"{viewer_entity}/{project_name}/{sweep_id}")
    runs = list(sweep.runs)
    assert len(runs) == 3 and all(r.sweep_name == sweep_id for r in runs)
    assert sorted(r.config["lr"] for r in runs) == [0.1, 0.2, 0.3]
    assert all(r.state == "finished" for r in runs)
    best = sweep.best_run()
    assert best.config["lr"] == 0.1
    assert sweep.best_loss == pytest.approx(0.1 * 10 + 0.016)
    assert sweep.config["method"] == "grid" and sweep.expected_run_count == 3
    # All three combinations handed out: the next agent is told to exit, and the sweep is finished.
    more: list[dict[str, Any]] = []
    wb.agent(sweep_id, function=_train(wb, more), entity=viewer_entity, project=project_name, count=2)
    assert more == []
    assert wb.Api().sweep(f"{viewer_entity}/{project_name}/{sweep_id}").state == "FINISHED"
    assert runs[0].sweep is not None and runs[0].sweep.id == sweep_id
    agents = wb.Api().sweep(f"{viewer_entity}/{project_name}/{sweep_id}").agents()
    assert [a.totalRuns for a in agents] == [3, 0] and agents[1].state == "FINISHED"
    assert sweep.agent(agents[0].name).totalRuns == 3


def test_random_sweep_draws_within_the_distributions(wb, quick_agent, project_name, viewer_entity):
    config = {"method": "random", "metric": {"name": "loss", "goal": "minimize"},
              "parameters": {"lr": {"distribution": "log_uniform_values", "min": 1e-4, "max": 1e-1},
                             "batch": {"distribution": "int_uniform", "min": 8, "max": 64},
                             "drop": {"distribution": "uniform", "min": 0.1, "max": 0.5},
                             "opt": {"values": ["adam", "sgd"]},
                             "width": {"distribution": "q_uniform", "min": 32, "max": 256, "q": 32}}}
    sweep_id = wb.sweep(config, entity=viewer_entity, project=project_name)
    seen: list[dict[str, Any]] = []
    wb.agent(sweep_id, function=_train(wb, seen), entity=viewer_entity, project=project_name, count=4)
    assert len(seen) == 4
    for c in seen:
        assert 1e-4 <= c["lr"] <= 1e-1
        assert isinstance(c["batch"], int) and 8 <= c["batch"] <= 64
        assert 0.1 <= c["drop"] <= 0.5
        assert c["opt"] in ("adam", "sgd")
        assert 32 <= c["width"] <= 256 and c["width"] % 32 == 0
    assert len({c["lr"] for c in seen}) == 4  # drawn, not repeated
    sweep = wb.Api().sweep(f"{viewer_entity}/{project_name}/{sweep_id}")
    assert sweep.expected_run_count is None and sweep.state == "RUNNING"
    assert len(list(sweep.runs)) == 4
    assert math.isclose(sweep.best_loss, min(c["lr"] * 10 + c["batch"] / 1000 for c in seen))


def test_stopping_the_sweep_stops_the_agent(wb, api, quick_agent, project_name, viewer_entity):
    config = {"method": "random", "parameters": {"lr": {"min": 0.0, "max": 1.0}}}
    sweep_id = wb.sweep(config, entity=viewer_entity, project=project_name)
    found = api.ok(SWEEP_ID, {"entity": viewer_entity, "project": project_name, "name": sweep_id})
    storage_id = found["project"]["sweep"]["id"]
    seen: list[dict[str, Any]] = []
    train = _train(wb, seen)

    def train_then_stop() -> None:
        train()
        if len(seen) == 2:  # W&B's "stop": runs in flight finish, no new ones start
            api.ok(SET_STATE, {"id": storage_id, "state": "FINISHED"})

    wb.agent(sweep_id, function=train_then_stop, entity=viewer_entity, project=project_name, count=10)
    assert len(seen) == 2
    sweep = wb.Api().sweep(f"{viewer_entity}/{project_name}/{sweep_id}")
    assert sweep.state == "FINISHED" and len(list(sweep.runs)) == 2


def test_project_sweeps_lists_them(wb, quick_agent, project_name, viewer_entity):
    made = [wb.sweep({"method": "grid", "name": f"s{i}", "parameters": {"x": {"values": [i]}}},
                     entity=viewer_entity, project=project_name) for i in range(3)]
    listed = wb.Api().project(project_name, entity=viewer_entity).sweeps()
    assert len(listed) == 3
    assert {s.id for s in listed} == set(made)
    assert {s.name for s in listed} == {"s0", "s1", "s2"}


def test_bayes_is_refused_with_a_clear_error(wb, project_name, viewer_entity):
    with pytest.raises(Exception, match="bayes"):
        wb.sweep({"method": "bayes", "metric": {"name": "loss"}, "parameters": {"x": {"min": 0.0, "max": 1.0}}},
                 entity=viewer_entity, project=project_name)


def test_demo_runs_belong_to_real_sweeps(wb):
    api = wb.Api()
    sweeps = api.project("vision", entity="demo").sweeps()
    assert len(sweeps) == 4
    sweep = sweeps[0]
    runs = list(sweep.runs) if sweep.runs else list(api.sweep(f"demo/vision/{sweep.id}").runs)
    assert runs and all(r.sweep_name == sweep.id for r in runs)
    full = api.sweep(f"demo/vision/{sweep.id}")
    assert full.config["method"] == "random" and full.best_run() is not None


@pytest.mark.parametrize("flag, state", [("--pause", "PAUSED"), ("--stop", "FINISHED"), ("--cancel", "CANCELED")])
def test_the_wandb_cli_changes_a_sweep_s_state(wb, project_name, viewer_entity, flag, state):
    sweep_id = wb.sweep({"method": "grid", "parameters": {"x": {"values": [1, 2]}}},
                        entity=viewer_entity, project=project_name)
    wandb_cli = str(Path(sys.executable).with_name("wandb"))
    done = subprocess.run([wandb_cli, "sweep", flag, f"{viewer_entity}/{project_name}/{sweep_id}"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert wb.Api().sweep(f"{viewer_entity}/{project_name}/{sweep_id}").state == state


def test_the_wandb_agent_cli_runs_the_sweep_program(wb, project_name, viewer_entity, tmp_path, monkeypatch):
    """`wandb agent` (a process) runs the config's `program` with the parameters as --name=value."""
    (tmp_path / "train.py").write_text(
        "import wandb\nrun = wandb.init()\nrun.summary['score'] = run.config['x'] * 10\nrun.finish()\n")
    config = {"method": "grid", "program": "train.py", "metric": {"name": "score", "goal": "maximize"},
              "parameters": {"x": {"values": [1, 2]}}}
    sweep_id = wb.sweep(config, entity=viewer_entity, project=project_name)
    monkeypatch.setenv("WANDB_AGENT_REPORT_INTERVAL", "1")
    monkeypatch.setenv("WANDB_AGENT_MAX_INITIAL_FAILURES", "1")
    wandb_cli = str(Path(sys.executable).with_name("wandb"))
    # The agent starts `python train.py`: the venv's python, with wandb.
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    done = subprocess.run([wandb_cli, "agent", "--count", "2", f"{viewer_entity}/{project_name}/{sweep_id}"],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    sweep = wb.Api().sweep(f"{viewer_entity}/{project_name}/{sweep_id}")
    runs = list(sweep.runs)
    assert sorted(r.config["x"] for r in runs) == [1, 2]
    assert sweep.best_run().summary["score"] == 20 and sweep.best_loss == 20
