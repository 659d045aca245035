"""What every part of Client shares: settings, the transport (the seam), the lifecycle."""

from __future__ import annotations

import enum
from typing import Any, TypeVar

from ..errors import UsageError
from ..settings import DEFAULT_BASE_URL, DEFAULT_TIMEOUT, Settings
from ..transport import READ, GraphQLTransport, RetryHook, RetryPolicy, Transport


class _Unset(enum.Enum):
    UNSET = "UNSET"

    def __repr__(self) -> str:
        return "UNSET"


UNSET = _Unset.UNSET  # "leave this field alone", distinct from None
MAX_PAGE = 1000
_C = TypeVar("_C", bound="ClientBase")


class ClientBase:
    settings: Settings
    transport: GraphQLTransport

    def __init__(self, base_url: str | None = None, api_key: str | None = None, entity: str | None = None, *,
                 timeout: float | None = None, insecure: bool = False, concurrency: int = 8,
                 settings: Settings | None = None, transport: GraphQLTransport | None = None,
                 on_retry: RetryHook | None = None) -> None:
        if concurrency < 1:
            raise UsageError(f"concurrency must be at least 1, not {concurrency}")
        if transport is not None:
            if on_retry is not None:
                raise UsageError("on_retry belongs to the transport when one is given")
            # The transport carries its own auth: no key is needed, only names for run URLs.
            self.settings = settings or Settings(base_url=(base_url or DEFAULT_BASE_URL).rstrip("/"), entity=entity,
                                                 timeout=timeout or DEFAULT_TIMEOUT, insecure=insecure)
            self.transport = transport
        else:
            self.settings = settings or Settings.resolve(base_url, api_key, entity, timeout, insecure)
            self.transport = Transport(self.settings, concurrency=concurrency, on_retry=on_retry)
        self._entity: str | None = self.settings.entity

    async def __aenter__(self: _C) -> _C:
        await self.transport.__aenter__()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.transport.__aexit__(*exc)

    async def _execute(self, operation: str, variables: dict[str, Any] | None = None,
                       policy: RetryPolicy = READ) -> dict[str, Any]:
        return await self.transport.execute(operation, variables, policy)
