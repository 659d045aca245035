"""`wbgql server` as a user runs it: a real subprocess on a free loopback port."""

from __future__ import annotations

import base64
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

WBGQL = [sys.executable, "-m", "wandb_gql.cli"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(args: list[str], env: dict[str, str]) -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen([*WBGQL, "server", "--port", str(port), *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url + "/healthz", timeout=1)
            return proc, url
        except OSError:
            if proc.poll() is not None:
                raise AssertionError(proc.stderr.read())
            time.sleep(0.1)
    proc.kill()
    raise AssertionError("server did not start")


def stop(proc: subprocess.Popen) -> tuple[str, str]:
    proc.terminate()
    out, err = proc.communicate(timeout=10)
    return out, err


def viewer(url: str, key: str) -> int:
    req = urllib.request.Request(url + "/graphql", data=b'{"query": "{ viewer { username } }"}', headers={
        "Content-Type": "application/json",
        "Authorization": "Basic " + base64.b64encode(f"api:{key}".encode()).decode()})
    try:
        with urllib.request.urlopen(req) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


@pytest.fixture
def env(tmp_path):
    return {**os.environ, "XDG_DATA_HOME": str(tmp_path / "data")}


def test_first_start_generates_a_key_prints_it_once_and_stores_only_its_hash(env, tmp_path):
    proc, url = start(["--seed", "demo"], env)
    out, err = stop(proc)
    key = re.search(r"export WANDB_API_KEY=(\S+)", out).group(1)
    assert f"export WANDB_BASE_URL={url}" in out and key.startswith("local-") and len(key) >= 46
    db = tmp_path / "data" / "wandb-gql" / "server.db"
    assert db.is_file() and key.encode() not in db.read_bytes()
    proc, url = start([], env)  # second start: same db, key still valid, not printed again
    try:
        assert viewer(url, key) == 200
        assert viewer(url, "local-" + "n" * 40) == 401
    finally:
        out, err = stop(proc)
    assert "WANDB_API_KEY" not in out and key not in err


def test_given_keys_are_accepted_and_nothing_is_generated(env, tmp_path):
    key = "local-" + "g" * 42
    proc, url = start(["--api-key", key, "--db", str(tmp_path / "x.db")], env)
    try:
        assert viewer(url, key) == 200
    finally:
        out, _ = stop(proc)
    assert "WANDB_API_KEY" not in out


@pytest.mark.parametrize("args,phrase", [
    (["--api-key", "short"], "--api-key"),
    (["--retention", "7 days"], "--retention"),
    (["--stale-after", "soon"], "--stale-after"),
    (["--stale-after", "0s"], "--stale-after"),
    (["--seed", "huge"], "--seed"),
    (["--faults", '{"nope": 1}'], "--faults"),
    (["--faults", "[]"], "--faults"),
    (["--faults", "{not json"], "--faults"),
    (["--faults", '{"script": ["x"]}'], "--faults"),
    (["--port", "70000"], "--port"),
    (["--port", "many"], "--port"),
    (["--db", "{tmp}"], "is a directory"),
    (["--db", "{tmp}/notes.txt"], "not a SQLite database"),
    (["--nope"], "--nope"),
])
def test_bad_options_exit_2_with_one_line(env, tmp_path, args, phrase):
    (tmp_path / "notes.txt").write_text("just some text, not a database\n")
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    port = [] if "--port" in args else ["--port", str(free_port())]
    proc = subprocess.run([*WBGQL, "server", *port, *args], env=env, capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2, proc.stderr
    assert phrase in proc.stderr and proc.stderr.startswith("error: "), proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert (tmp_path / "notes.txt").read_text() == "just some text, not a database\n"


def test_faults_from_the_command_line(env, tmp_path):
    key = "local-" + "f" * 42
    proc, url = start(["--api-key", key, "--db", str(tmp_path / "f.db"), "--faults", '{"script": [429]}'], env)
    try:
        assert viewer(url, key) == 429
        assert viewer(url, key) == 200
    finally:
        stop(proc)
