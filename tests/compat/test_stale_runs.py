"""Runs whose heartbeats stop turn crashed (or preempted), as on W&B: a real SDK run in a child
process is SIGKILLed mid-run and the server's periodic sweep marks it, seen through wandb.Api.
The server here has --stale-after 2 s so the test waits seconds, not W&B's 5 minutes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from datetime import timedelta
from typing import Any, Iterator

import pytest

from wandb_gql.server.local import LocalServer

STALE = timedelta(seconds=2)

# The child logs, says "ready" and then hangs, like a training loop, until it is killed.
CHILD = textwrap.dedent("""
    import sys, time, wandb
    project, run_id, preempt = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
    run = wandb.init(project=project, id=run_id, settings=wandb.Settings(x_file_stream_transmit_interval=0.5))
    run.log({"loss": 1.0})
    if preempt:
        run.mark_preempting()
    print("ready", flush=True)
    step = 0
    while True:
        step += 1
        run.log({"loss": 1.0 / step})
        time.sleep(0.3)
""")


@pytest.fixture(scope="module")
def server() -> Iterator[LocalServer]:
    """Its own server (the session's has the 5-minute default), seeded with the demo data."""
    with LocalServer(seed="demo", stale_after=STALE) as s:
        yield s


def _state(wb: Any, path: str) -> str:
    return wb.Api(timeout=20, overrides={"base_url": os.environ["WANDB_BASE_URL"]}).run(path).state


def _wait_for(wb: Any, path: str, states: set[str], timeout: float = 15.0) -> str:
    deadline = time.monotonic() + timeout
    state = ""
    while time.monotonic() < deadline:
        try:
            state = _state(wb, path)
        except Exception:  # the run may not be visible yet
            state = ""
        if state in states:
            return state
        time.sleep(0.3)
    raise AssertionError(f"{path} stayed {state!r}, never became one of {sorted(states)}")


def _start(project: str, run_id: str, preempt: bool) -> subprocess.Popen[str]:
    child = subprocess.Popen([sys.executable, "-c", CHILD, project, run_id, "1" if preempt else "0"],
                             stdout=subprocess.PIPE, text=True, env=os.environ.copy())
    assert child.stdout is not None
    line = child.stdout.readline()  # blocks until the run is up (or the child died)
    assert line.strip() == "ready", f"child exited {child.poll()} before starting its run"
    return child


def _kill(child: subprocess.Popen[str]) -> None:
    child.send_signal(signal.SIGKILL)
    child.wait(10)


def _new_run(wb, server) -> tuple[str, str, str]:
    """A fresh project and run id, and the run's path in the viewer's entity."""
    project, run_id = f"stale-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex[:8]
    entity = wb.Api(overrides={"base_url": server.base_url}).default_entity
    return project, run_id, f"{entity}/{project}/{run_id}"


def test_sigkilled_run_turns_crashed(wb, server) -> None:
    project, run_id, path = _new_run(wb, server)
    child = _start(project, run_id, preempt=False)
    try:
        assert _state(wb, path) in ("running", "crashed")
    finally:
        _kill(child)
    assert _wait_for(wb, path, {"crashed", "finished", "failed"}) == "crashed"


def test_preempting_run_turns_preempted(wb, server) -> None:
    project, run_id, path = _new_run(wb, server)
    child = _start(project, run_id, preempt=True)
    try:
        # The preempting flag arrives with the next file_stream request.
        _wait_for(wb, path, {"preempting", "preempted"})
    finally:
        _kill(child)
    assert _wait_for(wb, path, {"preempted", "crashed", "finished", "failed"}) == "preempted"


def test_demo_running_runs_are_not_swept(wb, server) -> None:
    """The seed's running runs never streamed here: they stay running however long ago they began."""
    time.sleep(STALE.total_seconds() * 2)  # a few sweeps have passed
    api = wb.Api(overrides={"base_url": server.base_url})
    running = list(api.runs("demo/vision", filters={"state": "running"}))
    assert running, "the demo seed has running runs in demo/vision"
    assert all(r.state == "running" for r in running)
