"""CLI fixtures: run `wbgql` in-process (typer's CliRunner) or as a real subprocess, with an
isolated environment (no real key, netrc or home data), against the session's demo server."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from wandb_gql.cli import app, global_options_first
from wandb_gql.server.local import LocalServer

_ISOLATED = ("WANDB_BASE_URL", "WANDB_API_KEY", "WANDB_ENTITY", "WANDB_HTTP_TIMEOUT")


@pytest.fixture(autouse=True)
def isolated_env(tmp_path, monkeypatch):
    """No key, base URL, entity or netrc from the machine; --local data under tmp."""
    for name in _ISOLATED:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("WBGQL_CONFIG", str(tmp_path / "no-config.toml"))
    monkeypatch.setenv("COLUMNS", "200")
    return tmp_path


@dataclass
class Out:
    exit_code: int
    stdout: str
    stderr: str

    def __repr__(self) -> str:  # what pytest shows when an assertion fails
        return f"Out(exit_code={self.exit_code}, stdout={self.stdout[:2000]!r}, stderr={self.stderr[:2000]!r})"


class Wbgql:
    """`wbgql(*args, input=None)` in-process, with global options moved in front as `main()`
    does; `.remote(server, *args)` adds --base-url/--api-key."""

    def __init__(self) -> None:
        self.runner = CliRunner()

    def __call__(self, *args: str, input: str | None = None) -> Out:
        result = self.runner.invoke(app, global_options_first(args), input=input, catch_exceptions=False)
        return Out(result.exit_code, result.stdout, result.stderr)

    def remote(self, server: LocalServer, *args: str, input: str | None = None) -> Out:
        return self("--base-url", server.base_url, "--api-key", server.api_key, *args, input=input)


@pytest.fixture
def wbgql() -> Wbgql:
    return Wbgql()


def run_process(*args: str, env: dict[str, str] | None = None, module: bool = True,
                timeout: float = 120) -> subprocess.CompletedProcess:
    """A real process: `python -m wandb_gql.cli ARGS` (module) or the `wbgql` entry point."""
    command = [sys.executable, "-m", "wandb_gql.cli"] if module else [str(Path(sys.executable).with_name("wbgql"))]
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([*command, *args], capture_output=True, text=True, env=full_env, timeout=timeout)


@pytest.fixture(scope="module")
def mutable_server(tmp_path_factory):
    """A demo-seeded server of this module's own, for commands that change runs."""
    with LocalServer(tmp_path_factory.mktemp("mutable") / "server.db", seed="demo") as s:
        yield s


@pytest.fixture
def closed_port() -> int:
    """A loopback port nothing listens on: any request sent there fails to connect."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def requests_seen(server: LocalServer) -> int:
    assert server.server is not None
    return server.server.faults.counts["requests"]


def rest_of(proc: subprocess.Popen, timeout: float = 60) -> tuple[str, str]:
    """The rest of a child's stdout and stderr once it ends. stdout is read through the same
    buffered pipe as an earlier readline(): communicate() reads the raw fd and would lose what
    readline() already pulled in (on a busy machine, several KB cut mid-line). stderr is drained
    in a thread so a chatty child cannot block on it meanwhile."""
    import threading

    assert proc.stdout is not None and proc.stderr is not None
    err: list[str] = []
    drain = threading.Thread(target=lambda: err.append(proc.stderr.read()), daemon=True)
    drain.start()
    out = proc.stdout.read()
    proc.wait(timeout)
    drain.join(timeout)
    return out, "".join(err)


def parse_jsonl(text: str) -> list[Any]:
    import json

    return [json.loads(line) for line in text.splitlines() if line.strip()]


class Terminal:
    """A pseudo-terminal for a child process: give it `fd` as stdout/stderr; after the `with`
    block, `text` is everything the terminal showed."""

    def __init__(self) -> None:
        import pty
        import threading

        self.master, self.fd = pty.openpty()
        self._chunks: list[bytes] = []
        self._reader = threading.Thread(target=self._drain, daemon=True)
        self._reader.start()
        self.text = ""

    def _drain(self) -> None:
        while True:
            try:
                data = os.read(self.master, 65536)
            except OSError:
                return
            if not data:
                return
            self._chunks.append(data)

    def __enter__(self) -> "Terminal":
        return self

    def __exit__(self, *_exc: object) -> None:
        os.close(self.fd)
        self._reader.join(5)
        os.close(self.master)
        self.text = b"".join(self._chunks).decode(errors="replace")

