"""Shared fixtures: a real local server on loopback (seeded with the demo data) and a small
synchronous GraphQL caller that shows status, body and headers exactly as the server sent them."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from wandb_gql.server.local import LocalServer

REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference"


@dataclass
class Reply:
    status: int
    body: Any
    headers: dict[str, str]

    @property
    def data(self) -> Any:
        return self.body.get("data")

    @property
    def errors(self) -> list[dict[str, Any]]:
        return self.body.get("errors") or []


def basic(key: str) -> str:
    return "Basic " + base64.b64encode(f"api:{key}".encode()).decode()


class Caller:
    def __init__(self, server: LocalServer) -> None:
        self.server = server
        self.base_url = server.base_url
        self.key = server.api_key

    def post(self, path: str, body: Any, *, auth: str | None = "default", raw: bytes | None = None,
             headers: dict[str, str] | None = None) -> Reply:
        hdrs = {"Content-Type": "application/json", **(headers or {})}
        if auth == "default":
            hdrs["Authorization"] = basic(self.key)
        elif auth is not None:
            hdrs["Authorization"] = auth
        data = raw if raw is not None else json.dumps(body).encode()
        req = urllib.request.Request(self.base_url + path, data=data, headers=hdrs, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return Reply(r.status, _json(r.read()), dict(r.headers))
        except urllib.error.HTTPError as e:
            return Reply(e.code, _json(e.read()), dict(e.headers))

    def gql(self, query: str, variables: dict[str, Any] | None = None, **kw: Any) -> Reply:
        body: dict[str, Any] = {"query": query}
        if variables is not None:
            body["variables"] = variables
        body.update(kw.pop("extra", {}))
        return self.post("/graphql", body, **kw)

    def ok(self, query: str, variables: dict[str, Any] | None = None) -> Any:
        reply = self.gql(query, variables)
        assert reply.status == 200 and not reply.errors, reply.body
        return reply.data

    def faults(self, spec: dict[str, Any]) -> dict[str, Any]:
        reply = self.post("/_local/faults", spec)
        assert reply.status == 200, reply.body
        return reply.body


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return raw.decode(errors="replace")


@pytest.fixture(scope="session")
def server():
    with LocalServer(":memory:", seed="demo") as s:
        yield s


@pytest.fixture(scope="session")
def api(server) -> Caller:
    return Caller(server)


@pytest.fixture
def fresh_server(tmp_path):
    """A server of its own, for tests that change faults, retention or data wholesale."""
    with LocalServer(tmp_path / "server.db") as s:
        yield s


@pytest.fixture
def fresh_api(fresh_server) -> Caller:
    return Caller(fresh_server)
