"""Running the server: in the foreground (`wbgql server`) or in a background thread
(`wbgql --local`, tests, benchmarks) on a free loopback port."""

from __future__ import annotations

import asyncio
import os
import sys
import threading
from datetime import timedelta
from pathlib import Path
from typing import Callable

from aiohttp import web

from . import private
from . import seed as seeds
from .app import DEFAULT_STALE_AFTER, DEFAULT_WORKERS, Server, create_app
from .db import DEFAULT_BUSY_TIMEOUT
from .faults import Faults
from .store import Store, new_api_key


def default_db_path() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(base) / "wandb-gql" / "server.db"


def open_store(db: str | Path | None, seed: str | None = None, busy_timeout: float = DEFAULT_BUSY_TIMEOUT) -> Store:
    path = Path(db) if db else default_db_path()
    if str(path) != ":memory:":
        private.prepare_and_warn(path)  # 0600 database in a 0700 directory
    store = Store(path, busy_timeout=busy_timeout)
    if seed == "demo":
        seeds.demo(store)
    elif seed:
        raise ValueError(f"unknown seed {seed!r}: the only seed is 'demo'")
    return store


class LocalServer:
    """A server on 127.0.0.1 in a daemon thread; `with LocalServer(...) as s: s.base_url, s.api_key`."""

    def __init__(self, db: str | Path | None = ":memory:", *, seed: str | None = None,
                 retention: timedelta = timedelta(days=7), faults: Faults | None = None,
                 port: int = 0, workers: int = DEFAULT_WORKERS, busy_timeout: float = DEFAULT_BUSY_TIMEOUT,
                 stale_after: timedelta = DEFAULT_STALE_AFTER) -> None:
        self.api_key = new_api_key()  # lives only in this process, never stored
        self._store_args = (db, seed, busy_timeout)
        self._workers = workers
        self._retention, self._faults = retention, faults
        self._stale_after = stale_after
        self._port = port
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self.server: Server | None = None
        self.base_url = ""

    def start(self) -> "LocalServer":
        threading.Thread(target=self._run, name="wbgql-local-server", daemon=True).start()
        self._ready.wait(60)
        if self._error:
            raise self._error
        return self

    def _run(self) -> None:
        loop = self._loop = asyncio.new_event_loop()
        try:
            self.server = Server(open_store(*self._store_args), retention=self._retention, faults=self._faults,
                                 ephemeral_keys=(self.api_key,), workers=self._workers,
                                 stale_after=self._stale_after)
            self._runner = web.AppRunner(create_app(self.server), access_log=None)
            loop.run_until_complete(self._runner.setup())
            site = web.TCPSite(self._runner, "127.0.0.1", self._port)
            loop.run_until_complete(site.start())
            port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            self.base_url = f"http://127.0.0.1:{port}"
        except BaseException as e:  # reported to start()
            self._error = e
            self._ready.set()
            return
        self._ready.set()
        loop.run_forever()
        loop.run_until_complete(self._runner.cleanup())
        loop.close()
        self.server.close()

    def stop(self) -> None:
        if self._loop is not None and self._loop.is_running():
            self._loop.call_soon_threadsafe(self._loop.stop)

    def __enter__(self) -> "LocalServer":
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()


def serve(host: str, port: int, server: Server, on_ready: Callable[[], None] | None = None) -> None:
    """Run in the foreground until interrupted (the process is the server's: `wbgql server`)."""
    # A quick request hands the GIL back and forth a dozen times (event loop, pool thread, each
    # SQLite statement) while a large page holds it in between: CPython's default 5 ms switch
    # interval made each hand-over wait up to 5 ms (bench P10: viewer p95 16-20 ms with 1 ms and
    # one large page at a time, 39-63 ms before), at no cost to the pages' throughput.
    sys.setswitchinterval(0.001)

    async def main() -> None:
        runner = web.AppRunner(create_app(server), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        await site.start()
        if on_ready:
            on_ready()
        try:
            await asyncio.Event().wait()
        finally:
            await runner.cleanup()
            server.close()

    asyncio.run(main())
