"""A small synchronous facade for scripts and notebooks.

The async Client runs on an event loop of its own in a background thread, so this works the
same in a plain script and in Jupyter, where the main thread's loop is already running.

    with SyncClient() as client:
        runs = client.runs("demo/vision", where="state = crashed", summary_keys=["loss"])
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any, Coroutine, TypeVar

from .client import Client
from .models import Outcome, Run

T = TypeVar("T")


class SyncClient:
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="wbgql-sync", daemon=True)
        self._thread.start()
        self._client = Client(*args, **kwargs)
        self._call(self._client.__aenter__())

    def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    def close(self) -> None:
        if self._loop.is_running():
            self._call(self._client.__aexit__(None, None, None))
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)

    def __enter__(self) -> "SyncClient":
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def runs(self, path: str, **kwargs: Any) -> list[Run]:
        async def collect() -> list[Run]:
            return [run async for run in self._client.runs(path, **kwargs)]

        return self._call(collect())

    def count_runs(self, path: str, **kwargs: Any) -> int:
        return self._call(self._client.count_runs(path, **kwargs))

    def run(self, path: str) -> Run:
        return self._call(self._client.run(path))

    def update_runs(self, path: str, ids: list[str], **kwargs: Any) -> list[Outcome]:
        return self._call(self._client.update_runs(path, ids, **kwargs))

    def delete_runs(self, path: str, ids: list[str], **kwargs: Any) -> list[Outcome]:
        return self._call(self._client.delete_runs(path, ids, **kwargs))

    def restore_runs(self, path: str, ids: list[str]) -> list[Outcome]:
        return self._call(self._client.restore_runs(path, ids))
