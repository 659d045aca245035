"""The exception tree of wandb-gql. Nothing from gql or aiohttp escapes the library.

    WandbGQLError                  root; ``exit_code`` is what the CLI exits with
    ├── UsageError                 bad input the client can tell is bad (exit 2), nothing sent
    │   ├── ConfigError            settings: no key, key over plain http, bad base URL
    │   ├── FilterError            --where / --filters that cannot compile (has ``expression``, ``position``)
    │   └── NotFetchedError        a config/summary key read that the query did not ask for (also a KeyError)
    ├── TransportError             no answer: connection reset/dropped, timeouts
    │   └── ConnectError           the server cannot be reached at all (refused, DNS, TLS); names the URL
    ├── HTTPStatusError            an answer with a non-2xx status (``status`` survives a GraphQL ``errors`` body)
    │   ├── AuthError              401 / 403 (exit 4)
    │   ├── NotFoundError          404, or an entity/project/run that does not exist (``status`` 200)
    │   ├── RateLimitError         429 (``retry_after`` seconds, when the server said)
    │   └── ServerError            5xx
    ├── GraphQLResponseError       a 200 whose body holds ``errors`` (``errors``, partial ``data``)
    ├── PaginationError            the server's cursor did not move: paging stops instead of looping
    └── PlanError                  a destructive plan refused or drifted (exit 3)

Transport and HTTP-status errors are siblings (as in httpx): what is retried is decided by
class, never by the order of ``except`` clauses.

The API key never appears in a message: ``redact()`` scrubs any text that might carry it.
"""

from __future__ import annotations

from typing import Any


class WandbGQLError(Exception):
    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class UsageError(WandbGQLError):
    exit_code = 2


class ConfigError(UsageError):
    pass


_CARET_SPAN = 40  # characters shown either side of a filter error's position


class FilterError(UsageError):
    def __init__(
        self,
        message: str,
        *,
        expression: str | None = None,
        position: int | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.expression = expression
        self.position = position

    def caret(self) -> str:
        """The expression with a caret under the offending position (empty if unknown)."""
        if self.expression is None or self.position is None:
            return ""
        text, at = self.expression, self.position
        if len(text) > 2 * _CARET_SPAN:  # a window around the position, not a screenful of input
            start = max(0, min(at - _CARET_SPAN, len(text) - 2 * _CARET_SPAN))
            end = start + 2 * _CARET_SPAN
            left = "…" if start else ""
            text, at = left + text[start:end] + ("…" if end < len(text) else ""), at - start + len(left)
        return f"  {text}\n  {' ' * at}^"


class TransportError(WandbGQLError):
    pass


class ConnectError(TransportError):
    """Nothing answered at the URL: retried only briefly, since waiting rarely brings a server up."""


class NotFetchedError(UsageError, KeyError):
    """Reading run.config[k] / run.summary[k] for a key the query did not fetch."""

    def __str__(self) -> str:  # KeyError would print the repr of the message
        return WandbGQLError.__str__(self)


class HTTPStatusError(WandbGQLError):
    def __init__(self, message: str, *, status: int, errors: list[dict[str, Any]] | None = None,
                 hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.status = status
        self.errors = errors or []


class AuthError(HTTPStatusError):
    exit_code = 4


class NotFoundError(HTTPStatusError):
    def __init__(self, message: str, *, status: int = 404, **kw: Any) -> None:
        super().__init__(message, status=status, **kw)


class RateLimitError(HTTPStatusError):
    def __init__(self, message: str, *, retry_after: float | None = None, **kw: Any) -> None:
        kw.setdefault("status", 429)
        super().__init__(message, **kw)
        self.retry_after = retry_after


class ServerError(HTTPStatusError):
    pass


class GraphQLResponseError(WandbGQLError):
    def __init__(self, message: str, *, errors: list[dict[str, Any]] | None = None,
                 data: Any = None, status: int = 200) -> None:
        super().__init__(message)
        self.errors = errors or []
        self.data = data
        self.status = status
        # An earlier attempt of the same request may have been carried out (its answer was
        # lost, or the server failed after committing): "already gone" may be this request's doing.
        self.after_lost = False


class PaginationError(WandbGQLError):
    pass


class PlanError(WandbGQLError):
    exit_code = 3


def redact(text: str, secret: str | None) -> str:
    """Remove a secret (and its Basic-auth encoding) from text meant for humans or logs."""
    if not secret:
        return text
    import base64

    basic = base64.b64encode(f"api:{secret}".encode()).decode()
    return text.replace(basic, "***").replace(secret, "***")
