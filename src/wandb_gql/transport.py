"""The wire: one gql client over one aiohttp session, retries as named policies, adaptive concurrency.

Documents go out as the text loaded from queries/ (gql's default would re-print the AST on every
call), bodies are orjson both ways, the HTTP status and rate-limit headers of every response are
kept (gql drops them when the body holds GraphQL errors), and no gql/aiohttp exception escapes.

`GraphQLTransport` is the seam: Client talks to anything with that shape (tests pass a fake that
checks each call against schema.graphql). `on_retry(operation, error, delay)` is told before each
wait, so a CLI can show "rate limited, waiting 3 s" instead of going quiet.
"""

from __future__ import annotations

import asyncio
import logging
import random
import socket
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any, Awaitable, Callable, Mapping, Protocol, TypeVar

import aiohttp
import orjson
from gql import Client as GQLClient
from gql import GraphQLRequest
from gql.transport.aiohttp import AIOHTTPTransport
from gql.transport.exceptions import TransportQueryError
from graphql import ExecutionResult, parse

from . import __version__, documents
from .errors import (AuthError, ConnectError, GraphQLResponseError, HTTPStatusError, NotFoundError, RateLimitError,
                     ServerError, TransportError, WandbGQLError, redact)
from .settings import Settings

log = logging.getLogger("wandb_gql")
_T = TypeVar("_T")


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try: attempts and total time are both bounded."""

    name: str
    attempts: int = 6
    base_delay: float = 0.25
    max_delay: float = 20.0
    max_elapsed: float = 120.0
    retry_connection_errors: bool = True
    # Nothing listening is rarely fixed by waiting: a refused connection gets a short, separate
    # budget, so a wrong --base-url fails in seconds rather than minutes.
    connect_attempts: int = 3
    connect_max_elapsed: float = 3.0
    # False: retry only answers that say nothing was done (429, a refused connection, the
    # local server's 503 DATABASE_BUSY), never one that may have been carried out.
    repeat_after_done: bool = True


READ = RetryPolicy("read")
# Safe to repeat: deleting a deleted run is success, restoring a restored run changes nothing.
IDEMPOTENT = RetryPolicy("idempotent")
# Not safe to repeat blindly: retried only when the server said it did nothing; a dropped
# connection or a 5xx is reported, not retried.
WRITE = RetryPolicy("write", retry_connection_errors=False, repeat_after_done=False)

_RETRYABLE = (RateLimitError, ServerError)

RetryHook = Callable[[str, WandbGQLError, float], object]
"""on_retry(operation, error, delay_seconds): called before each wait between attempts."""


class GraphQLTransport(Protocol):
    """What Client needs from a transport: run an operation of queries/ by name and return its
    `data`, raising the library's errors; usable as an async context manager."""

    async def execute(self, operation: str, variables: dict[str, Any] | None = None,
                      policy: RetryPolicy = ...) -> dict[str, Any]: ...

    async def post_json(self, path: str, body: dict[str, Any], policy: RetryPolicy = ...) -> dict[str, Any]:
        """POST a JSON body to a REST path of the server (W&B's file_stream), same auth and errors."""
        ...

    async def __aenter__(self) -> Any: ...

    async def __aexit__(self, *exc: object) -> Any: ...


class AdaptiveLimit:
    """At most `limit` requests in flight; halves on 429, creeps back up while requests succeed.
    A 429's Retry-After pauses every request, not only the one that was refused: the quota is
    shared, so the others would only burn their attempts on more 429s."""

    def __init__(self, maximum: int) -> None:
        self.maximum = self.limit = max(1, maximum)
        self._active = 0
        self._streak = 0
        self._resume_at = 0.0
        self._cond = asyncio.Condition()

    async def __aenter__(self) -> None:
        async with self._cond:
            await self._cond.wait_for(lambda: self._active < self.limit)
            self._active += 1
        pause = self._resume_at - time.monotonic()
        if pause > 0:
            await asyncio.sleep(pause)

    async def __aexit__(self, *_exc: object) -> None:
        async with self._cond:
            self._active -= 1
            # Wake only as many waiters as there are free slots: waking all of them on every
            # release costs O(n^2) when thousands of requests are queued (a 2,000-version prune).
            self._cond.notify(max(1, self.limit - self._active))

    def throttled(self, retry_after: float | None) -> None:
        self.limit = max(1, self.limit // 2)
        self._streak = 0
        if retry_after:
            self._resume_at = max(self._resume_at, time.monotonic() + retry_after)

    def succeeded(self) -> None:
        self._streak += 1
        if self.limit < self.maximum and self._streak >= 2 * self.limit:
            self.limit += 1
            self._streak = 0


def _retry_after(headers: Mapping[str, str]) -> float | None:
    value = headers.get("Retry-After")
    if value:
        try:
            return max(0.0, float(value))
        except ValueError:
            try:
                return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
            except (TypeError, ValueError):
                pass
    reset = headers.get("RateLimit-Reset")
    if reset:
        try:
            return max(0.0, float(reset))
        except ValueError:
            return None
    return None


def _messages(errors: list[Any]) -> str:
    """The first few GraphQL error messages, on one line."""
    return "; ".join(str(e.get("message", e)) if isinstance(e, dict) else str(e) for e in errors[:3])


def _status_error(status: int, body: Any, headers: Mapping[str, str], secret: str) -> HTTPStatusError:
    errors = body.get("errors") if isinstance(body, dict) else None
    errors = errors if isinstance(errors, list) else []
    detail = _messages(errors)
    if not detail and isinstance(body, dict) and isinstance(body.get("error"), str):
        detail = body["error"]  # REST endpoints (file_stream) answer {"error": "..."}
    detail = redact(detail or (body if isinstance(body, str) else "")[:200], secret)
    message = f"HTTP {status}" + (f": {detail}" if detail else "")
    if status in (401, 403):
        return AuthError(message, status=status, errors=errors,
                         hint="check the API key (--api-key, WANDB_API_KEY or netrc) and its access")
    if status == 404:
        return NotFoundError(message, status=status, errors=errors)
    if status == 429:
        return RateLimitError(message, retry_after=_retry_after(headers), errors=errors)
    if status >= 500:
        return ServerError(message, status=status, errors=errors)
    return HTTPStatusError(message, status=status, errors=errors)


def _busy(error: WandbGQLError) -> bool:
    """The local server's 503 for a database another writer held: the request was rolled back."""
    return isinstance(error, ServerError) and any(
        isinstance(e, dict) and (e.get("extensions") or {}).get("code") == "DATABASE_BUSY" for e in error.errors or ())


def _cause(error: aiohttp.ClientConnectorError) -> str:
    """Why a connection could not be made, in words."""
    os_error = error.os_error
    if isinstance(os_error, ConnectionRefusedError):
        return "connection refused"
    if isinstance(error, aiohttp.ClientConnectorCertificateError):
        return f"TLS certificate not accepted ({error.certificate_error})"
    if isinstance(os_error, socket.gaierror):
        return f"host not found ({os_error.strerror})"
    return os_error.strerror or str(os_error) or type(os_error).__name__


class _WireTransport(AIOHTTPTransport):
    """gql's aiohttp transport, sending loaded text and keeping status + headers per response."""

    def __init__(self, settings: Settings, max_connections: int) -> None:
        import base64

        token = base64.b64encode(f"api:{settings.api_key}".encode()).decode()
        super().__init__(
            url=settings.graphql_url,
            # Use-Admin-Privileges: as W&B's own public client sends; the backend gates
            # admin-wide access (other users' runs) on it.
            headers={"Authorization": f"Basic {token}", "Content-Type": "application/json",
                     "User-Agent": f"wandb-gql/{__version__}", "Use-Admin-Privileges": "true"},
            json_serialize=lambda v: orjson.dumps(v).decode(),
            json_deserialize=orjson.loads,
            client_session_args={
                # A host that drops SYNs should not hold a request for the whole timeout.
                "timeout": aiohttp.ClientTimeout(total=settings.timeout, sock_connect=min(settings.timeout, 10.0)),
                "connector": aiohttp.TCPConnector(limit=max_connections),
                "auto_decompress": True,
            },
        )
        self._secret = settings.api_key

    async def execute(self, request: GraphQLRequest, *, extra_args: Any = None,
                      upload_files: bool = False) -> ExecutionResult:
        assert self.session is not None, "transport used outside its client"
        loc = request.document.loc
        assert loc is not None, "documents are parsed with locations"
        text = loc.source.body  # the document as loaded, not re-printed
        body: dict[str, Any] = {"query": text, "operationName": request.operation_name}
        if request.variable_values:
            body["variables"] = request.variable_values
        status, payload, raw = await self.post(self.url, orjson.dumps(body))
        if not isinstance(payload, dict) or not ("data" in payload or "errors" in payload):
            raise TransportError(f"not a GraphQL response (HTTP {status}): {str(payload)[:200]!r}")
        data = payload.get("data")
        if isinstance(data, dict):
            data = Data(data)
            data.nonfinite = b'"NaN"' in raw or b'Infinity"' in raw
        return ExecutionResult(data=data, errors=payload.get("errors"))

    async def post(self, url: str, data: bytes) -> tuple[int, Any, bytes]:
        """One POST on the session (its auth headers, timeouts, TLS): status, the decoded body and
        the raw one; any non-2xx raised as the library's error."""
        assert self.session is not None, "transport used outside its client"
        try:
            async with self.session.post(url, data=data, ssl=self.ssl) as resp:
                raw = await resp.read()
                status, headers = resp.status, resp.headers
        except aiohttp.ConnectionTimeoutError:
            raise ConnectError(f"cannot reach {url}: no answer to the connection attempt",
                               hint="check --base-url (WANDB_BASE_URL or wandb's settings file), the network "
                                    "and that the server is running") from None
        except asyncio.TimeoutError:
            raise TransportError(f"request to {url} timed out after {self.session.timeout.total:g} s",
                                 hint="raise WANDB_HTTP_TIMEOUT or ask for less per page") from None
        except aiohttp.ClientConnectorError as e:
            raise ConnectError(f"cannot reach {url}: {_cause(e)}",
                               hint="check --base-url (WANDB_BASE_URL or wandb's settings file) "
                                    "and that the server is running") from None
        except aiohttp.ClientError as e:
            raise TransportError(redact(f"connection to {url} failed: {type(e).__name__}: {e}",
                                        self._secret)) from None
        try:
            payload = orjson.loads(raw) if raw else None
        except orjson.JSONDecodeError:
            payload = raw[:200].decode(errors="replace")
        if not 200 <= status < 300:
            raise _status_error(status, payload, headers, self._secret)
        return status, payload, raw


class Data(dict[str, Any]):
    """A response's `data`, knowing whether its body held W&B's strings for NaN and ±Infinity
    anywhere (one byte search of the body, done anyway by C code): readers of logged values
    skip their pass that turns those strings back into floats when it did not."""

    nonfinite = True


def holds_nonfinite(data: dict[str, Any]) -> bool:
    """Whether `data` (an execute() answer) may hold W&B's NaN/Infinity strings: yes unless its
    body was seen to have none."""
    return getattr(data, "nonfinite", True)


class Transport:
    """Executes operations from queries/ by name: `await transport.execute("ProjectRuns", {...})`."""

    def __init__(self, settings: Settings, *, concurrency: int = 8, on_retry: RetryHook | None = None) -> None:
        self.settings = settings
        self.on_retry = on_retry
        self.limit = AdaptiveLimit(concurrency)
        self._concurrency = concurrency
        self._gql: GQLClient | None = None
        self._session: Any = None
        self._requests: dict[str, GraphQLRequest] = {}
        self.attempts = 0  # every HTTP attempt, for tests and progress

    async def __aenter__(self) -> "Transport":
        # Built here: aiohttp's connector belongs to the running loop.
        self._gql = GQLClient(transport=_WireTransport(self.settings, self._concurrency),
                              fetch_schema_from_transport=False, execute_timeout=None, parse_results=False)
        self._session = await self._gql.connect_async(reconnecting=False)
        return self

    async def __aexit__(self, *_exc: object) -> None:
        if self._gql is not None:
            await self._gql.close_async()
        self._gql = self._session = None

    def _request(self, operation: str) -> GraphQLRequest:
        request = self._requests.get(operation)
        if request is None:
            # Parsed once, only so gql has a document; the text itself is what goes out.
            request = self._requests[operation] = GraphQLRequest(parse(documents.document(operation)))
        return request

    async def execute(self, operation: str, variables: dict[str, Any] | None = None,
                      policy: RetryPolicy = READ) -> dict[str, Any]:
        session = self._session
        if session is None:
            raise WandbGQLError("use the client inside 'async with Client(...) as client:'")
        request = GraphQLRequest(self._request(operation), variable_values=variables, operation_name=operation)

        async def once() -> Any:  # an ExecutionResult whose errors are the server's dicts
            try:
                return await session.execute(request, get_execution_result=True)
            except TransportQueryError as e:
                # gql raises this for any 200 whose body holds `errors` (even when asked for the
                # execution result): a GraphQL error with partial data, not a transport failure.
                return ExecutionResult(data=e.data, errors=e.errors or [{"message": str(e)}])

        result, maybe_done = await self._attempts(operation, policy, once)
        if result.errors:
            failure = GraphQLResponseError(f"{operation}: {redact(_messages(result.errors), self.settings.api_key)}",
                                           errors=list(result.errors), data=result.data)
            failure.after_lost = maybe_done
            raise failure
        return result.data or {}

    async def post_json(self, path: str, body: dict[str, Any], policy: RetryPolicy = READ) -> dict[str, Any]:
        """POST `body` to `base_url + path` (W&B's REST endpoints, e.g. file_stream) with the same
        session, auth, retries and errors as execute(); the answer's JSON object ({} if none)."""
        if self._gql is None or self._session is None:
            raise WandbGQLError("use the client inside 'async with Client(...) as client:'")
        wire = self._gql.transport
        assert isinstance(wire, _WireTransport)
        url, data = self.settings.base_url + path, orjson.dumps(body)

        async def once() -> Any:
            return (await wire.post(url, data))[1]

        payload, _ = await self._attempts(path, policy, once)
        return payload if isinstance(payload, dict) else {}

    async def _attempts(self, label: str, policy: RetryPolicy, once: Callable[[], Awaitable[_T]]) -> tuple[_T, bool]:
        """once() until it answers, as the policy allows; also whether an attempt before the
        answer may have been carried out by the server (not a 429 or a refused connection)."""
        started = time.monotonic()
        attempt = 0
        maybe_done = False
        while True:
            attempt += 1
            self.attempts += 1
            try:
                async with self.limit:
                    result = await once()
                self.limit.succeeded()
                break
            except RateLimitError as e:
                self.limit.throttled(e.retry_after)
                error: WandbGQLError = e
            except _RETRYABLE as e:
                error = e
            except HTTPStatusError:
                raise  # 400/401/403/404: asking again will not change the answer
            except ConnectError as e:
                if not policy.retry_connection_errors or attempt >= policy.connect_attempts:
                    raise
                error = e
            except TransportError as e:
                if not policy.retry_connection_errors:
                    raise
                error = e
            except WandbGQLError:
                raise
            except Exception as e:  # gql internals: never let them escape
                raise TransportError(redact(f"{type(e).__name__}: {e}", self.settings.api_key)) from None
            done = not (isinstance(error, (RateLimitError, ConnectError)) or _busy(error))
            if done and not policy.repeat_after_done:
                raise error
            maybe_done = maybe_done or done
            delay = self._delay(attempt, error, policy)
            budget = policy.connect_max_elapsed if isinstance(error, ConnectError) else policy.max_elapsed
            if attempt >= policy.attempts or time.monotonic() - started + delay > budget:
                raise error
            log.info("%s: %s; retry %d/%d in %.2f s", label, error, attempt, policy.attempts - 1, delay)
            if self.on_retry is not None:
                try:
                    self.on_retry(label, error, delay)
                except Exception:  # a broken progress display must not fail the request
                    log.debug("on_retry hook failed", exc_info=True)
            await asyncio.sleep(delay)
        log.debug("%s: ok after %d attempt(s) in %.3f s", label, attempt, time.monotonic() - started)
        return result, maybe_done

    @staticmethod
    def _delay(attempt: int, error: WandbGQLError, policy: RetryPolicy) -> float:
        backoff = random.uniform(0, min(policy.max_delay, policy.base_delay * 2 ** (attempt - 1)))
        told = getattr(error, "retry_after", None)
        if told is not None:
            return min(policy.max_delay, told) + random.uniform(0, 0.1 * max(told, 0.1))
        return backoff
