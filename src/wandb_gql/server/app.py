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
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any, AsyncIterator, Callable, ContextManager, TypeVar

import orjson
from aiohttp import web
from graphql import (DocumentNode, ExecutionResult, GraphQLError, OperationDefinitionNode, OperationType, execute,
                     parse, validate)
from graphql.error import GraphQLSyntaxError

from .db import Busy, Deadline, is_busy, time_limit
from .executor import DEADLINE, executor_options
from . import cors, tokens
from .faults import Faults
from .limits import LimitExceeded, Limits, Shape, check_cost, check_shape, cost, measure
from .bodies import ClientGone, read_body, refuse_unread
from .file_stream import apply_file_stream, checked_file_stream
from .jsonutil import loads_lenient
from .resolvers import Context, executable_schema
from .store import BadInput, Store, Viewer
from .store import runs as store_runs
from .._time import ago
from .store.blobs import md5_b64 as blobs_md5

log = logging.getLogger("wandb_gql.server")
_EXECUTOR = executor_options()
_T = TypeVar("_T")
# Threads doing database work: reads run in parallel (SQLite WAL), writers take turns.
DEFAULT_WORKERS = 8
DEFAULT_STALE_AFTER = timedelta(minutes=5)  # W&B's: a run with no heartbeat for 5 minutes is crashed
# Queries that may return more rows than this run one at a time on a thread of their own (Server.large).
LARGE_ROWS = 200
BUSY_RETRY_AFTER = "1"  # seconds; a writer holds the lock for milliseconds, rarely longer

SERVER: web.AppKey["Server"] = web.AppKey("server", object)  # type: ignore[arg-type]
VIEWER: web.RequestKey[Viewer] = web.RequestKey("viewer", Viewer)


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, content_type="application/json",
                        headers=headers)


def _error(message: str, status: int, headers: dict[str, str] | None = None) -> web.Response:
    return _json({"errors": [{"message": message}]}, status, headers)


def _refused(e: LimitExceeded) -> web.Response:
    return _json({"errors": [{"message": e.message, "extensions": {"code": e.code}}]}, e.status)


class Prepared:
    """A query text parsed, validated and measured once: what the document cache holds."""

    __slots__ = ("doc", "errors", "shapes", "size")

    def __init__(self, doc: DocumentNode | None, errors: list[GraphQLError],
                 shapes: dict[str | None, Shape], size: int) -> None:
        self.doc, self.errors, self.shapes, self.size = doc, errors, shapes, size

    def shape(self, operation: str | None) -> Shape | None:
        if operation is None and len(self.shapes) == 1:
            return next(iter(self.shapes.values()))
        return self.shapes.get(operation)


class Server:
    """Everything one running server holds: storage, the executable schema, faults, retention."""

    def __init__(self, store: Store, *, retention: timedelta = timedelta(days=7),
                 faults: Faults | None = None, ephemeral_keys: tuple[str, ...] = (),
                 url_ttl: float = tokens.DEFAULT_TTL, limits: Limits | None = None,
                 workers: int = DEFAULT_WORKERS, stale_after: timedelta = DEFAULT_STALE_AFTER) -> None:
        self.store = store
        self.stale_after = stale_after
        # Database work runs here, off the event loop, so one slow request never holds the others.
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="wbgql-db")
        # Large requests run one at a time, on a thread of their own. They are mostly Python work,
        # which one interpreter runs one thread at a time: a second one at once adds no throughput
        # and doubles the threads a quick query waits behind for the GIL (bench P10: viewer p95
        # 25-36 ms with one, 39-63 ms with two); in turn, each client gets its answer (and parses
        # it) sooner; and on their own thread they never hold the quick requests' pool, even with
        # --workers 1.
        self.large = ThreadPoolExecutor(max_workers=1, thread_name_prefix="wbgql-large")
        self._limits = limits or Limits()
        self.url_ttl = url_ttl
        self.retention = retention
        self.faults = faults or Faults()
        self.schema = executable_schema()
        self._check_documents()
        self._ephemeral = {k: store.default_user for k in ephemeral_keys}
        self._documents: OrderedDict[str, Prepared] = OrderedDict()
        self._documents_bytes = 0

    @property
    def limits(self) -> Limits:
        return self._limits

    @limits.setter
    def limits(self, limits: Limits) -> None:
        """New limits (tests and benchmarks change them on a running server): documents judged
        under the old ones are judged again."""
        self._limits = limits
        self._documents.clear()
        self._documents_bytes = 0

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

    def document(self, query: str) -> Prepared:
        """Parse, validate and measure once per distinct query text; the SDK repeats the same few.
        Over-limit documents are refused before graphql-core's validation, some of whose rules
        (overlapping fields) grow with the square of the field count."""
        cached = self._documents.get(query)
        if cached is not None:
            self._documents.move_to_end(query)
            return cached
        limits = self.limits
        try:
            doc = parse(query, max_tokens=limits.max_tokens)
        except GraphQLSyntaxError as syntax:
            e: GraphQLError = syntax
            if "Parsing aborted" in e.message:  # graphql-core's words for max_tokens
                e = LimitExceeded("QUERY_TOO_LONG", f"query has more than {limits.max_tokens:,} tokens (the "
                                  "server's limit); split it into several requests").error()
            cached = Prepared(None, [e], {}, len(query))
        except RecursionError:
            cached = Prepared(None, [LimitExceeded("QUERY_TOO_DEEP", "query is nested too deeply to parse").error()],
                              {}, len(query))
        else:
            shapes = measure(self.schema, doc, limits.max_depth)
            try:
                for shape in shapes.values():
                    check_shape(shape, limits)
            except LimitExceeded as e:
                cached = Prepared(None, [e.error()], {}, len(query))
            else:
                cached = Prepared(doc, validate(self.schema, doc), shapes, len(query))
        self._remember(query, cached)
        return cached

    def _remember(self, query: str, prepared: Prepared) -> None:
        """Keep the cache within its count and its bytes of query text (a parsed document takes
        tens of times its text); a text too large for the cache is simply not kept."""
        limits = self.limits
        if prepared.size > limits.cache_bytes // 8:
            return
        self._documents[query] = prepared
        self._documents_bytes += prepared.size
        while len(self._documents) > limits.cache_entries or self._documents_bytes > limits.cache_bytes:
            _, dropped = self._documents.popitem(last=False)
            self._documents_bytes -= dropped.size

    async def run(self, work: Callable[..., _T], *args: Any, large: bool = False) -> _T:
        """`work(*args)` on the database pool (`large`: the large requests' thread). Context
        variables are not carried over: work that needs DEADLINE sets it itself."""
        return await asyncio.get_running_loop().run_in_executor(self.large if large else self.pool, work, *args)

    def close(self) -> None:
        self.large.shutdown(wait=True, cancel_futures=True)
        self.pool.shutdown(wait=True, cancel_futures=True)
        self.store.close()

    def purge(self) -> int:
        with self.store.writing():
            purged = self.store.purge(self.retention)
            expired, freed = self.store.purge_expired_artifacts()
        if purged:
            log.info("purged %d run(s) deleted more than %s ago", purged, self.retention)
        if expired:
            log.info("deleted %d artifact version(s) past their TTL, %d bytes freed", expired, freed)
        return purged

    def sweep_stale(self) -> int:
        """Live runs silent for stale_after turn crashed (or preempted)."""
        cutoff = ago(self.stale_after)
        if not store_runs.any_stale(self.store.conn, cutoff):
            return 0
        with self.store.writing():
            swept = store_runs.sweep_stale(self.store.conn, cutoff)
        if swept:
            log.info("marked %d run(s) with no heartbeat for %s crashed/preempted", swept, self.stale_after)
        return swept


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
    if error.extensions:
        out["extensions"] = error.extensions
    return out


async def graphql_handler(request: web.Request) -> web.StreamResponse:
    server: Server = request.app[SERVER]
    limits = server.limits
    try:
        raw = await read_body(request, limits.max_body)
    except LimitExceeded as e:
        return await refuse_unread(request, _refused(e))
    try:
        payload = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return _error('request body must be JSON: {"query": "...", "variables": {...}}', 400)
    if not isinstance(payload, dict) or not isinstance(payload.get("query"), str):
        return _error('request body must be a JSON object with a "query" string (batches are not supported)', 400)
    variables = payload.get("variables") or {}
    if not isinstance(variables, dict):
        return _error('"variables" must be a JSON object', 400)
    prepared = server.document(payload["query"])
    if prepared.doc is None or prepared.errors:
        return _json({"errors": [_format_error(e) for e in prepared.errors]}, 400)
    # operationName "" means none: the SDK's wandb-core sends it that way.
    operation = payload.get("operationName") or None
    shape = prepared.shape(operation)
    if shape is not None:  # None: an unknown operation, which graphql-core reports
        try:
            check_cost(shape, variables, limits)
        except LimitExceeded as e:
            return _refused(e)
    ctx = Context(server.store, request[VIEWER], f"{request.scheme}://{request.host}", server.retention,
                  server.url_ttl)
    large = shape is not None and cost(shape.plan, variables) > LARGE_ROWS
    with ClientGone(request) as gone:
        try:
            return await server.run(_execute, server, prepared.doc, operation, variables, ctx,
                                    Deadline(limits.time_limit, gone), large=large)
        except LimitExceeded as e:
            log.warning("request stopped (over the %g s time limit, or its client left): %s", limits.time_limit,
                        (operation or payload["query"][:80]).replace("\n", " "))
            return _refused(e)


def _execute(server: Server, doc: DocumentNode, operation: str | None, variables: dict[str, Any], ctx: Context,
             deadline: Deadline) -> web.Response:
    """One GraphQL request on a worker thread, as one transaction: a mutation holds the write
    lock from its start, a query reads one snapshot beside the writers. DEADLINE is set here:
    the event loop's context variables do not follow the work into the pool."""
    token = DEADLINE.set(deadline)
    try:
        with _transaction(server.store, _is_mutation(doc, operation)) as conn, time_limit(conn, deadline):
            result = execute(server.schema, doc, context_value=ctx, variable_values=variables,
                             operation_name=operation, **_EXECUTOR)
            assert isinstance(result, ExecutionResult)  # every resolver here is synchronous
            if deadline.hit:
                raise _timed_out(server.limits)  # rolls back whatever part of a mutation ran
            if any(e.original_error is not None and is_busy(e.original_error) for e in result.errors or ()):
                raise Busy("a statement found the database locked")  # rolls back; the client sends it again
    finally:
        DEADLINE.reset(token)
    body: dict[str, Any] = {"data": result.data}
    if result.errors:
        body["errors"] = [_format_error(e) for e in result.errors]
    return _json(body, 400 if result.data is None and result.errors else 200)


def _is_mutation(doc: DocumentNode, operation: str | None) -> bool:
    for definition in doc.definitions:
        if isinstance(definition, OperationDefinitionNode) and (
                operation is None or (definition.name is not None and definition.name.value == operation)):
            return definition.operation == OperationType.MUTATION
    return False


def _transaction(store: Store, write: bool) -> ContextManager[sqlite3.Connection]:
    return store.writing() if write else store.reading()


def _timed_out(limits: Limits) -> LimitExceeded:
    return LimitExceeded("QUERY_TIMEOUT", f"query took longer than {limits.time_limit:g} s (the server's "
                         "--time-limit) and was stopped; ask for less per request (smaller pages, fewer runs)")


async def file_stream_handler(request: web.Request) -> web.StreamResponse:
    """W&B's file_stream: a bad request is a 4xx, never 5xx (the SDK would retry it forever and
    hang in finish()); the one 5xx is 503 while another writer holds the database, which a retry fixes."""
    server: Server = request.app[SERVER]
    store = server.store
    try:
        raw = await read_body(request, server.limits.max_stream_body, "--max-stream-body")
    except LimitExceeded as e:
        return await refuse_unread(request, _json({"error": e.message}, e.status))
    try:
        payload = loads_lenient(raw or b"{}")
    except (ValueError, RecursionError):  # RecursionError: e.g. 200,000 "[" in a row
        return _json({"error": "body must be a JSON object (it is not valid JSON)"}, 400)
    if not isinstance(payload, dict):
        return _json({"error": "body must be a JSON object"}, 400)
    try:
        payload = checked_file_stream(payload)
    except BadInput as e:
        return _json({"error": f"malformed file_stream request: {e}"}, 400)
    lines = sum(len(content) for _, content in payload["files"].values())
    if lines > server.limits.max_stream_lines:
        return _json({"error": f"file_stream request has {lines:,} lines, more than the server's limit of "
                               f"{server.limits.max_stream_lines:,}; send fewer per request"}, 413)
    m = request.match_info
    return await server.run(_file_stream, store, m["entity"], m["project"], m["run"], payload)


def _file_stream(store: Store, entity: str, project_name: str, run_name: str, payload: dict[str, Any]) -> web.Response:
    try:
        with store.writing():
            project = store.project(entity, project_name)
            run = store.run(project["id"], run_name, deleted=True) if project else None
            if run is None:
                return _json({"error": f"run {entity}/{project_name}/{run_name} not found"}, 404)
            if run["deleted_at"] is not None:
                return _json({"stopped": True})
            apply_file_stream(store, run, payload)
    except (BadInput, ValueError, TypeError, KeyError, RecursionError) as e:
        return _json({"error": f"malformed file_stream request: {e}"}, 400)
    except Exception as e:
        if is_busy(e):
            raise  # 503: the SDK sends it again
        log.exception("file_stream failed")
        return _json({"error": "internal error (details are in the server log)"}, 400)
    return _json({"exitcode": None, "limits": {}})


async def storage_handler(request: web.Request) -> web.Response:
    """Presigned-style blob URLs: the token is the credential, as the SDK expects (tokens.py)."""
    store: Store = request.app[SERVER].store
    grant = tokens.check(store.secret, request.match_info["token"])
    if isinstance(grant, str):
        return _error(grant, 403 if "expired" in grant else 404)
    data = await request.read() if request.method == "PUT" else b""  # nothing awaits inside a transaction
    return await request.app[SERVER].run(_storage, store, grant, request.method == "PUT", data)


def _storage(store: Store, grant: tokens.Grant, put: bool, data: bytes) -> web.Response:
    with store.writing() if put else store.reading():
        refused = _storage_refusal(store, grant, data if put else None)
        if refused:
            return _error(refused, 404 if "no longer" in refused else 400)
        if put:
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
    if grant.kind == tokens.RUN_FILE:  # the binding refuses a file id reused after a purge
        found = store.file_identity(int(grant.target))
        if found is None or found[0] != grant.owner or tokens.run_file_binding(*found[1:]) != grant.bound:
            return "this run file no longer exists (its run was deleted)"
        return None
    artifact = store.artifact(grant.owner)
    if artifact is None or tokens.artifact_binding(artifact["collection_id"], artifact["created_at"]) != grant.bound:
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


async def faults_handler(request: web.Request) -> web.StreamResponse:
    server: Server = request.app[SERVER]
    if request.method == "POST":
        try:
            spec = orjson.loads(await read_body(request, server.limits.max_body) or b"{}")
            server.faults = Faults.from_json(spec)
        except LimitExceeded as e:
            return await refuse_unread(request, _refused(e))
        except ValueError as e:  # orjson.JSONDecodeError is one
            return _error(f"invalid faults: {e}", 400)
    return _json(server.faults.describe())


async def purge_handler(request: web.Request) -> web.Response:
    server: Server = request.app[SERVER]
    return _json({"purged": await server.run(server.purge)})


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
    server: Server = request.app[SERVER]
    viewer = server.viewer_for(request)
    if viewer is None:
        # Checked before a byte of the body is read (or inflated).
        return await refuse_unread(
            request, _error("invalid or missing API key: send Authorization: Basic base64(\"api:\" + key)", 401))
    if request.path.startswith("/_local/") and not viewer.admin:
        return await refuse_unread(request, _error("only the server's admin user may use /_local/", 403))
    # file_stream names its entity in the URL: another user's entity answers as a missing run.
    entity = request.match_info.get("entity")
    if entity is not None and entity not in server.store.member_entities(viewer.id):
        m = request.match_info
        return await refuse_unread(request, _json({"error": f"run {entity}/{m['project']}/{m['run']} not found"}, 404))
    request[VIEWER] = viewer
    return await handler(request)


def _busy() -> web.Response:
    return _json({"errors": [{"message": "the database is busy with another writer (another request or another "
                                         "server on the same file); nothing was written, send the request again",
                              "extensions": {"code": "DATABASE_BUSY"}}]}, 503, {"Retry-After": BUSY_RETRY_AFTER})


@web.middleware
async def busy_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    """SQLite's "database is locked", wherever it surfaces, is a 503 the client retries, never a
    200 or 500 whose write may or may not have happened: the transaction was rolled back."""
    try:
        return await handler(request)
    except Exception as e:
        if not is_busy(e):
            raise
        log.warning("%s %s: %s; answered 503", request.method, request.path, e)
        return _busy()


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


def _every(what: str, interval: Callable[[Server], float], job: Callable[[Server], Callable[[], Any]], *,
           at_start: bool) -> Callable[[web.Application], AsyncIterator[None]]:
    """A cleanup context running `job(server)` on the pool every `interval(server)` seconds
    (first at start, or after one interval) for the app's life. A busy database skips a round:
    the next one does it."""

    async def context(app: web.Application) -> AsyncIterator[None]:
        server: Server = app[SERVER]
        period = interval(server)

        async def loop() -> None:
            if not at_start:
                await asyncio.sleep(period)
            while True:
                try:
                    await server.run(job(server))
                except Exception as e:
                    if not is_busy(e):
                        log.exception("%s failed", what)
                await asyncio.sleep(period)

        task = asyncio.get_running_loop().create_task(loop())
        yield
        task.cancel()

    return context


_purge_loop = _every("purge", lambda s: min(3600.0, max(1.0, s.retention.total_seconds() / 10)),
                     lambda s: s.purge, at_start=True)
# A tenth of the period: a run turns crashed at most 10% late; a minute at most, 1 s at least.
_stale_loop = _every("stale-run sweep", lambda s: min(60.0, max(1.0, s.stale_after.total_seconds() / 10)),
                     lambda s: s.sweep_stale, at_start=False)


def create_app(server: Server) -> web.Application:
    app = web.Application(middlewares=[busy_middleware, faults_middleware, auth_middleware], client_max_size=64 * 1024 ** 2)
    app[SERVER] = server
    app.router.add_post("/graphql", graphql_handler)
    app.router.add_post("/files/{entity}/{project}/{run}/file_stream", file_stream_handler)
    app.router.add_route("PUT", "/storage/{token}", storage_handler)
    app.router.add_get("/storage/{token}", storage_handler)
    app.router.add_route("OPTIONS", "/storage/{token}", cors.preflight)  # storage only: cors.py
    app.on_response_prepare.append(cors.on_response_prepare)
    app.router.add_route("*", "/_local/faults", faults_handler)
    app.router.add_post("/_local/purge", purge_handler)
    app.router.add_get("/healthz", healthz)
    app.router.add_route("*", "/sdk/{tail:.*}", not_found)
    app.cleanup_ctx.append(_purge_loop)
    app.cleanup_ctx.append(_stale_loop)
    return app
