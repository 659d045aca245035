"""wandb.init(fork_from="id?_step=N") with the real SDK: the new run starts with the parent's
history up to step N and the parent's summary, as W&B documents; resume_from (rewindRun) is
refused by name, not turned into a blank run."""

from __future__ import annotations


def _six_steps(wb, project_name):
    """A finished run with loss 1, 1/2, ... 1/6 at steps 0..5."""
    run = wb.init(project=project_name)
    for i in range(6):
        run.log({"loss": 1.0 / (i + 1)})
    run.finish()
    return run


def _read_back(wb, server, path):
    """The run through wandb.Api, and its (_step, loss) rows."""
    run = wb.Api(overrides={"base_url": server.base_url}).run(path)
    return run, list(run.scan_history(keys=["_step", "loss"]))


def test_fork_copies_history_up_to_the_step(wb, server, project_name) -> None:
    parent = _six_steps(wb, project_name)

    child = wb.init(project=project_name, fork_from=f"{parent.id}?_step=3")
    child.log({"loss": 0.01})
    child.finish()

    forked, rows = _read_back(wb, server, f"{parent.entity}/{project_name}/{child.id}")
    assert [r["_step"] for r in rows] == [0, 1, 2, 3, 4]
    assert [r["loss"] for r in rows] == [1.0, 0.5, 1 / 3, 0.25, 0.01]
    assert forked.summary["loss"] == 0.01
    untouched, _ = _read_back(wb, server, f"{parent.entity}/{project_name}/{parent.id}")
    assert untouched.lastHistoryStep == 5  # parent untouched


def test_resume_from_rewinds_the_run(wb, server, project_name) -> None:
    first = _six_steps(wb, project_name)

    again = wb.init(project=project_name, resume_from=f"{first.id}?_step=2")
    again.log({"loss": 0.02})
    again.finish()

    rewound, rows = _read_back(wb, server, f"{first.entity}/{project_name}/{first.id}")
    assert [r["_step"] for r in rows] == [0, 1, 2, 3]
    assert [r["loss"] for r in rows] == [1.0, 0.5, 1 / 3, 0.02]
    assert rewound.summary["loss"] == 0.02


def test_rewind_to_another_metric_is_refused_by_name(api, project_name) -> None:
    api.ok('mutation($p: String!) { upsertBucket(input: {name: "r1", modelName: $p}) { bucket { id } } }',
           {"p": project_name})
    errors = api.gql('mutation($p: String!) { rewindRun(input: {runName: "r1", projectName: $p,'
                        ' metricName: "epoch", metricValue: 1}) { rewoundRun { id } } }', {"p": project_name}).errors
    assert "only the _step metric" in errors[0]["message"]


def test_fork_from_a_missing_run_is_an_error_not_a_blank_run(api, project_name) -> None:
    config = '{"_wandb": {"value": {"branch_point": {"run_id": "nosuchrun", "step": 3}}}}'
    reply = api.gql('mutation($p: String!, $c: JSONString) { upsertBucket(input: {name: "child", modelName: $p,'
                    ' config: $c}) { bucket { id } } }', {"p": project_name, "c": config})
    assert "fork_from: run 'nosuchrun' not found" in reply.errors[0]["message"]
    count = api.ok('query($p: String!) { project(name: $p) { runCount } }', {"p": project_name})["project"]
    assert count is None or count["runCount"] == 0  # nothing was created (the mutation rolled back)
