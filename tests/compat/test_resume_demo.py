"""Resuming a seeded demo run with the real SDK continues it, as resuming a W&B run does: the
steps go on after the seeded history and the config is kept."""

from __future__ import annotations

from typing import Iterator

import pytest

from wandb_gql.server.local import LocalServer


@pytest.fixture(scope="module")
def server() -> Iterator[LocalServer]:
    """Its own demo server: resuming changes the run, which the session's demo must not see."""
    with LocalServer(seed="demo") as s:
        yield s


def test_resume_must_continues_a_demo_run(wb, server) -> None:
    api = wb.Api(overrides={"base_url": server.base_url})
    before = next(r for r in api.runs("demo/vision", filters={"state": "finished"}, per_page=5))
    steps = before.lastHistoryStep
    assert steps > 0
    lr = before.config["lr"]

    run = wb.init(entity="demo", project="vision", id=before.id, resume="must")
    assert run.resumed
    assert run.config["lr"] == lr  # the seeded config came back with the resume
    run.log({"loss": 0.001})
    run.log({"loss": 0.0005})
    run.finish()

    after = wb.Api(overrides={"base_url": server.base_url}).run(f"demo/vision/{before.id}")
    assert after.lastHistoryStep == steps + 2
    rows = list(after.scan_history(keys=["_step", "loss"]))
    assert [r["_step"] for r in rows] == list(range(steps + 3))
    assert [r["loss"] for r in rows[-2:]] == [0.001, 0.0005]
    assert after.config["lr"] == lr and after.config["batch_size"] == before.config["batch_size"]
    assert after.state == "finished"
