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


def add_team(server: LocalServer, name: str) -> None:
    """A team the fixture's key (the admin) belongs to, as `wbgql server teams add` makes one:
    upsertBucket creates projects only in entities that exist."""
    store = server.server.store
    with store.writing():
        store.add_member(name, store.default_user.id)


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


class Recorder:
    """A loopback reverse proxy in front of a server: records every GraphQL (and file_stream) request body and
    the size of each answer, and can fail chosen requests, so tests see what the client sent."""

    def __init__(self, target: str) -> None:
        import asyncio
        import threading

        self.target = target
        self.requests: list[dict[str, Any]] = []
        self.response_bytes: list[int] = []
        # callable(body) -> what to answer instead of forwarding: an HTTP status, or (status,
        # [error messages]) as a GraphQL server would answer; None forwards
        self.fail_when: Any = None
        # callable(body) -> True: forward the request, let the server commit, then drop the
        # connection instead of answering (a proxy that loses responses)
        self.drop_after: Any = None
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        threading.Thread(target=self._run, daemon=True).start()
        self._ready.wait(10)

    def _run(self) -> None:
        import aiohttp
        from aiohttp import web

        import asyncio

        async def handle(request: web.Request) -> web.Response:
            raw = await request.read()
            body = json.loads(raw)
            self.requests.append(body)
            answer = self.fail_when(body) if self.fail_when else None
            if answer:
                status, messages = answer if isinstance(answer, tuple) else (answer, ["injected by test proxy"])
                return web.json_response({"errors": [{"message": m} for m in messages]}, status=status)
            async with self._session.post(self.target + request.path, data=raw,
                                          headers={"Authorization": request.headers.get("Authorization", ""),
                                                   "Content-Type": "application/json"}) as resp:
                payload = await resp.read()
                self.response_bytes.append(len(payload))
                if self.drop_after is not None and self.drop_after(body):
                    if request.transport is not None:
                        request.transport.close()
                    raise asyncio.CancelledError  # the answer is lost; the server has committed
                return web.Response(body=payload, status=resp.status, content_type="application/json",
                                    headers={k: v for k, v in resp.headers.items()
                                             if k.lower() in ("retry-after", "ratelimit-reset")})

        async def start() -> None:
            self._session = aiohttp.ClientSession()
            app = web.Application()
            app.router.add_post("/graphql", handle)
            app.router.add_post("/files/{entity}/{project}/{run}/file_stream", handle)  # the write path's REST
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            self.base_url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"

        self._loop.run_until_complete(start())
        self._ready.set()
        self._loop.run_forever()

    def ops(self) -> list[str]:
        return [r.get("operationName") for r in self.requests]


@pytest.fixture
def recorder(server) -> Recorder:
    return Recorder(server.base_url)
