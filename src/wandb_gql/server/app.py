"""The aiohttp application: /graphql, file_stream, presigned storage, admin endpoints, faults.

Bad input gets a GraphQL-style error body, never a 500 and never SQL; unexpected failures are
logged with their traceback and answered with a generic message.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import logging
import sqlite3
from collections import OrderedDict
from datetime import timedelta
from typing import Any, AsyncIterator

import orjson
from aiohttp import web
from graphql import DocumentNode, ExecutionResult, GraphQLError, execute, parse, validate
from graphql.error import GraphQLSyntaxError

from .db import transaction
from .executor import executor_options
from . import tokens
from .faults import Faults
from .jsonutil import loads_lenient
from .resolvers import Context, executable_schema
from .store import BadInput, Store, Viewer
from .store.blobs import md5_b64 as blobs_md5

log = logging.getLogger("wandb_gql.server")
_EXECUTOR = executor_options()

SERVER: web.AppKey["Server"] = web.AppKey("server", object)  # type: ignore[arg-type]
VIEWER: web.RequestKey[Viewer] = web.RequestKey("viewer", Viewer)


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, content_type="application/json",
                        headers=headers)


def _error(message: str, status: int, headers: dict[str, str] | None = None) -> web.Response:
    return _json({"errors": [{"message": message}]}, status, headers)


class Server:
    """Everything one running server holds: storage, the executable schema, faults, retention."""

    def __init__(self, store: Store, *, retention: timedelta = timedelta(days=7),
                 faults: Faults | None = None, ephemeral_keys: tuple[str, ...] = (),
                 url_ttl: float = tokens.DEFAULT_TTL) -> None:
        self.store = store
        self.url_ttl = url_ttl
        self.retention = retention
        self.faults = faults or Faults()
        self.schema = executable_schema()
        self._check_documents()
        self._ephemeral = {k: store.default_user for k in ephemeral_keys}
        self._documents: OrderedDict[str, tuple[DocumentNode | None, list[GraphQLError]]] = OrderedDict()

    def _check_documents(self) -> None:
        """The client's documents must be valid here: checked once at start, never per request."""
        from .. import documents

        for name, text in documents.documents().items():
            errors = validate(self.schema, parse(text))
            if errors:
                raise RuntimeError(f"queries/ document {name} does not fit schema.graphql: {errors[0].message}")

    def viewer_for(self, request: web.Request) -> Viewer | None:
        header = request.headers.get("Authorization", "")
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic" or not encoded:
            return None
        try:
            user, _, key = base64.b64decode(encoded.strip(), validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None
        if not key:
            return None
        for known, viewer in self._ephemeral.items():
            if len(known) == len(key) and hashlib.sha256(known.encode()).digest() == \
                    hashlib.sha256(key.encode()).digest():
                return viewer
        return self.store.authenticate(key)

    def document(self, query: str) -> tuple[DocumentNode | None, list[GraphQLError]]:
        """Parse and validate once per distinct query text; the SDK repeats the same few."""
        cached = self._documents.get(query)
        if cached is None:
            try:
                doc = parse(query)
                cached = (doc, validate(self.schema, doc))
            except GraphQLSyntaxError as e:
                cached = (None, [e])
            self._documents[query] = cached
            if len(self._documents) > 512:
                self._documents.popitem(last=False)
        else:
            self._documents.move_to_end(query)
        return cached

    def purge(self) -> int:
        with transaction(self.store.conn):
            purged = self.store.purge(self.retention)
            expired, freed = self.store.purge_expired_artifacts()
        if purged:
            log.info("purged %d run(s) deleted more than %s ago", purged, self.retention)
        if expired:
            log.info("deleted %d artifact version(s) past their TTL, %d bytes freed", expired, freed)
        return purged


def _format_error(error: GraphQLError) -> dict[str, Any]:
    original = error.original_error
    if original is not None and not isinstance(original, (BadInput, GraphQLError, ValueError)):
        log.error("resolver failed", exc_info=original)
        return {"message": "internal server error (details are in the server log)", "path": error.path}
    out: dict[str, Any] = {"message": error.message}
    if error.path:
        out["path"] = error.path
    if error.locations:
        out["locations"] = [{"line": loc.line, "column": loc.column} for loc in error.locations]
    return out


async def graphql_handler(request: web.Request) -> web.Response:
    server: Server = request.app[SERVER]
    try:
        payload = orjson.loads(await request.read())
    except orjson.JSONDecodeError:
        return _error('request body must be JSON: {"query": "...", "variables": {...}}', 400)
    if not isinstance(payload, dict) or not isinstance(payload.get("query"), str):
        return _error('request body must be a JSON object with a "query" string (batches are not supported)', 400)
    variables = payload.get("variables") or {}
    if not isinstance(variables, dict):
        return _error('"variables" must be a JSON object', 400)
    doc, errors = server.document(payload["query"])
    if doc is None or errors:
        return _json({"errors": [_format_error(e) for e in errors]}, 400)
    ctx = Context(server.store, request[VIEWER], f"{request.scheme}://{request.host}", server.retention,
                  server.url_ttl)
    # operationName "" means none: the SDK's wandb-core sends it that way.
    operation = payload.get("operationName") or None
    with transaction(server.store.conn):
        result = execute(server.schema, doc, context_value=ctx, variable_values=variables,
                         operation_name=operation, **_EXECUTOR)
    assert isinstance(result, ExecutionResult)  # every resolver here is synchronous
    body: dict[str, Any] = {"data": result.data}
    if result.errors:
        body["errors"] = [_format_error(e) for e in result.errors]
    return _json(body, 400 if result.data is None and result.errors else 200)


async def file_stream_handler(request: web.Request) -> web.Response:
    """W&B's file_stream: never answers 5xx (the SDK would retry and hang finish())."""
    server: Server = request.app[SERVER]
    store = server.store
    try:
        payload = loads_lenient(await request.read() or b"{}")
    except ValueError:
        return _json({"error": "body must be a JSON object"}, 400)
    if not isinstance(payload, dict):
        return _json({"error": "body must be a JSON object"}, 400)
    m = request.match_info
    project = store.project(m["entity"], m["project"])
    run = store.run(project["id"], m["run"], deleted=True) if project else None
    if run is None:
        return _json({"error": f"run {m['entity']}/{m['project']}/{m['run']} not found"}, 404)
    if run["deleted_at"] is not None:
        return _json({"stopped": True})
    try:
        with transaction(store.conn):
            _apply_file_stream(store, run, payload)
    except (BadInput, ValueError, TypeError, KeyError) as e:
        return _json({"error": f"malformed file_stream request: {e}"}, 400)
    except Exception:
        log.exception("file_stream failed")
        return _json({"error": "internal error (details are in the server log)"}, 400)
    return _json({"exitcode": None, "limits": {}})


def _apply_file_stream(store: Store, run: sqlite3.Row, payload: dict[str, Any]) -> None:
    files = payload.get("files") or {}
    if not isinstance(files, dict):
        raise BadInput('"files" must be an object')
    for name, chunk in files.items():
        offset, content = int(chunk.get("offset") or 0), chunk.get("content") or []
        if not isinstance(content, list):
            raise BadInput(f'{name}: "content" must be a list of lines')
        if name == "wandb-history.jsonl":
            store.append_history(run, offset, content)
        elif name == "wandb-events.jsonl":
            store.append_events(run, offset, content)
        elif name == "output.log":
            store.write_log(run, offset, content)
        elif name == "wandb-summary.json" and content:
            # The whole current summary, replacing the stored one.
            store.replace_summary(run["id"], content[-1])
    store.record_uploaded_files(run["id"], [str(name) for name in payload.get("uploaded") or []])
    if payload.get("complete"):
        store.finish_run(run["id"], payload.get("exitcode"))
    else:
        store.heartbeat(run["id"], "preempting" if payload.get("preempting") else "running")


async def storage_handler(request: web.Request) -> web.Response:
    """Presigned-style blob URLs: the token is the credential, as the SDK expects (tokens.py)."""
    store: Store = request.app[SERVER].store
    grant = tokens.check(store.secret, request.match_info["token"])
    if isinstance(grant, str):
        return _error(grant, 403 if "expired" in grant else 404)
    data = await request.read() if request.method == "PUT" else b""  # nothing awaits inside a transaction
    with transaction(store.conn):
        refused = _storage_refusal(store, grant, data if request.method == "PUT" else None)
        if refused:
            return _error(refused, 404 if "no longer" in refused else 400)
        if request.method == "PUT":
            if grant.kind == tokens.PART:  # the SDK completes the upload with each part's ETag
                upload_id, _, part = grant.target.partition(":")
                return web.Response(status=200, headers={"ETag": store.put_multipart_part(upload_id, int(part), data)})
            _store_upload(store, grant, data)
            return web.Response(status=200)
        content = _stored_content(store, grant)
    if content is None:
        return _error("nothing uploaded to this URL yet", 404)
    return web.Response(body=content, content_type="application/octet-stream")


def _storage_refusal(store: Store, grant: tokens.Grant, upload: bytes | None) -> str | None:
    """Why this URL no longer works (its run or artifact was deleted), or why an upload is refused."""
    if grant.kind == tokens.RUN_FILE:
        return None if store.file_owner(int(grant.target)) == grant.owner else \
            "this run file no longer exists (its run was deleted)"
    artifact = store.artifact(grant.owner)
    if artifact is None:
        return "this artifact no longer exists (it or its run was deleted)"
    if upload is None:
        return None
    if artifact["state"] != "PENDING":
        return "the artifact is committed: its files cannot change"
    if grant.kind == tokens.ARTIFACT_FILE and blobs_md5(upload) != grant.target:
        return "uploaded bytes do not match the md5 announced in createArtifactFiles"
    if grant.kind == tokens.PART:
        upload_id, _, part = grant.target.partition(":")
        return store.multipart_part_refusal(grant.owner, upload_id, int(part), upload)
    return None


def _store_upload(store: Store, grant: tokens.Grant, data: bytes) -> None:
    if grant.kind == tokens.RUN_FILE:
        store.put_file_data(int(grant.target), data)
    elif grant.kind == tokens.MANIFEST:
        store.put_artifact_manifest(grant.owner, data)
    else:
        store.put_blob(data)


def _stored_content(store: Store, grant: tokens.Grant) -> bytes | None:
    if grant.kind == tokens.RUN_FILE:
        return store.file_data(int(grant.target))
    if grant.kind == tokens.MANIFEST:
        artifact = store.artifact(grant.owner)
        return store.blob(artifact["manifest_md5"]) if artifact and artifact["manifest_md5"] else None
    if grant.kind == tokens.PART:
        return None  # parts are write-only; the joined file is read through its own URL
    if not store.artifact_has_file(grant.owner, grant.target):
        return None
    return store.blob(grant.target)


async def faults_handler(request: web.Request) -> web.Response:
    server: Server = request.app[SERVER]
    if request.method == "POST":
        try:
            server.faults = Faults.from_json(orjson.loads(await request.read() or b"{}"))
        except (ValueError, TypeError) as e:
            return _error(f"invalid faults: {e}", 400)
    return _json(server.faults.describe())


async def purge_handler(request: web.Request) -> web.Response:
    return _json({"purged": request.app[SERVER].purge()})


async def healthz(_request: web.Request) -> web.Response:
    return _json({"ok": True})


async def not_found(_request: web.Request) -> web.Response:
    # 404 on the SDK's telemetry probe makes it stop sending telemetry.
    return _error("not found", 404)


_PUBLIC = ("/storage/", "/sdk/", "/healthz")


@web.middleware
async def auth_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    if request.path.startswith(_PUBLIC):
        return await handler(request)
    viewer = request.app[SERVER].viewer_for(request)
    if viewer is None:
        return _error("invalid or missing API key: send Authorization: Basic base64(\"api:\" + key)", 401)
    request[VIEWER] = viewer
    return await handler(request)


@web.middleware
async def faults_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    if request.path != "/graphql":
        return await handler(request)
    faults: Faults = request.app[SERVER].faults
    if faults.latency:
        await asyncio.sleep(faults.latency)
    decision = faults.decide()
    if decision is None:
        return await handler(request)
    action, headers = decision
    if action == "drop":
        if request.transport is not None:
            request.transport.close()
        raise asyncio.CancelledError  # the connection is gone; write nothing
    status = int(action)
    message = "rate limit exceeded, retry later" if status == 429 else "injected server error"
    return _error(message, status, headers)


async def _purge_loop(app: web.Application) -> AsyncIterator[None]:
    server: Server = app[SERVER]
    interval = min(3600.0, max(1.0, server.retention.total_seconds() / 10))

    async def loop() -> None:
        while True:
            try:
                server.purge()
            except Exception:
                log.exception("purge failed")
            await asyncio.sleep(interval)

    task = asyncio.get_running_loop().create_task(loop())
    yield
    task.cancel()


def create_app(server: Server) -> web.Application:
    app = web.Application(middlewares=[faults_middleware, auth_middleware], client_max_size=64 * 1024 ** 2)
    app[SERVER] = server
    app.router.add_post("/graphql", graphql_handler)
    app.router.add_post("/files/{entity}/{project}/{run}/file_stream", file_stream_handler)
    app.router.add_route("PUT", "/storage/{token}", storage_handler)
    app.router.add_get("/storage/{token}", storage_handler)
    app.router.add_route("*", "/_local/faults", faults_handler)
    app.router.add_post("/_local/purge", purge_handler)
    app.router.add_get("/healthz", healthz)
    app.router.add_route("*", "/sdk/{tail:.*}", not_found)
    app.cleanup_ctx.append(_purge_loop)
    return app
