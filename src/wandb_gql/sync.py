"""SyncClient: every public Client method, synchronously, with the same parameters.

The async Client runs on an event loop of its own in a background thread, so this works the
same in a plain script and in Jupyter, where the main thread's loop is already running.
Listings stream: `runs()` returns an iterator that pulls batches from the background loop as it
is read (the next page is already on its way), and stopping early closes the listing cleanly.

    with SyncClient() as client:
        for run in client.runs("demo/vision", where="state = crashed", summary_keys=["loss"]):
            ...

Parity with Client is tested: a new Client method needs its twin here.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any, AsyncIterable, AsyncIterator, Coroutine, Iterable, Iterator, Mapping, Sequence, TypeVar

from .client import MAX_PAGE, UNSET, Client
from .client.deleted import DeletedRun
from .client.history import HistoryChunk
from .client.runs import Filters, OutcomeHook
from .client.sweeps import Sweep
from .models import Artifact, Lineage, Outcome, Project, Run, Viewer
from .settings import Settings
from .transport import GraphQLTransport, RetryHook

T = TypeVar("T")
# Items handed across threads per hop: one hop per item would cost more than parsing the run.
_CHUNK = 100


class SyncClient:
    def __init__(self, base_url: str | None = None, api_key: str | None = None, entity: str | None = None, *,
                 timeout: float | None = None, insecure: bool = False, concurrency: int = 8,
                 settings: Settings | None = None, transport: GraphQLTransport | None = None,
                 on_retry: RetryHook | None = None) -> None:
        self._client = Client(base_url, api_key, entity, timeout=timeout, insecure=insecure,
                              concurrency=concurrency, settings=settings, transport=transport, on_retry=on_retry)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="wbgql-sync", daemon=True)
        self._thread.start()
        try:
            self._call(self._client.__aenter__())
        except BaseException:
            self._stop()
            raise

    @property
    def settings(self) -> Settings:
        return self._client.settings

    @property
    def client(self) -> Client:
        """The async Client underneath (its loop is the background thread's)."""
        return self._client

    def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        if not self._loop.is_running():
            coro.close()
            raise RuntimeError("this SyncClient is closed")
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    def _iterate(self, items: AsyncIterator[T]) -> Iterator[T]:
        async def take() -> list[T]:
            chunk: list[T] = []
            async for item in items:
                chunk.append(item)
                if len(chunk) >= _CHUNK:
                    break
            return chunk

        def generate() -> Iterator[T]:
            try:
                while True:
                    chunk = self._call(take())
                    yield from chunk
                    if len(chunk) < _CHUNK:
                        return
            finally:
                # Stopped early (break, error, garbage collection): cancel the prefetch on the loop.
                aclose = getattr(items, "aclose", None)  # async generators have it; plain iterators need none
                if aclose is not None and self._loop.is_running():
                    self._call(aclose())

        return generate()

    def _stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        if not self._thread.is_alive():
            self._loop.close()

    def close(self) -> None:
        if self._loop.is_running():
            try:
                self._call(self._client.__aexit__(None, None, None))
            finally:
                self._stop()

    def __enter__(self) -> "SyncClient":
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # -- the twins of Client's methods, same parameters ----------------------------------------
    def viewer(self) -> Viewer:
        return self._call(self._client.viewer())

    def project_path(self, path: str) -> tuple[str, str]:
        return self._call(self._client.project_path(path))

    def run_path(self, path: str) -> tuple[str, str, str]:
        return self._call(self._client.run_path(path))

    def projects(self, entity: str | None = None) -> Iterator[Project]:
        return self._iterate(self._client.projects(entity))

    def sweeps(self, path: str, *, best_run: bool = False) -> Iterator[Sweep]:
        return self._iterate(self._client.sweeps(path, best_run=best_run))

    def runs(self, path: str, filters: Filters = None, where: str | None = None,
             order: str = "+created_at", config_keys: Sequence[str] | str | bool | None = None,
             summary_keys: Sequence[str] | str | bool | None = None,
             fields: Iterable[str] | None = None, per_page: int = MAX_PAGE,
             limit: int | None = None) -> Iterator[Run]:
        return self._iterate(self._client.runs(path, filters, where, order, config_keys, summary_keys, fields,
                                               per_page, limit))

    def run_ids(self, path: str, filters: Filters = None, where: str | None = None,
                order: str = "+created_at", per_page: int = MAX_PAGE,
                limit: int | None = None) -> Iterator[str]:
        return self._iterate(self._client.run_ids(path, filters, where, order, per_page, limit))

    def history(self, path_or_runs: str | Iterable[Run] | AsyncIterable[Run], *, where: str | None = None,
                filters: Filters = None, keys: Sequence[str] | None, samples: int | None = None,
                full: bool = False, min_step: int | None = None, max_step: int | None = None,
                page_size: int = 1000, concurrency: int = 8,
                fields: Iterable[str] | None = ()) -> Iterator[HistoryChunk]:
        return self._iterate(self._client.history(path_or_runs, where=where, filters=filters, keys=keys,
                                                  samples=samples, full=full, min_step=min_step,
                                                  max_step=max_step, page_size=page_size,
                                                  concurrency=concurrency, fields=fields))

    def count_runs(self, path: str, filters: Filters = None,
                   where: str | None = None) -> int:
        return self._call(self._client.count_runs(path, filters, where))

    def run(self, path: str) -> Run:
        return self._call(self._client.run(path))

    def deleted_runs(self, path: str, *, filters: Filters = None, where: str | None = None,
                     limit: int | None = None) -> Iterator[DeletedRun]:
        return self._iterate(self._client.deleted_runs(path, filters=filters, where=where, limit=limit))

    def update_runs(self, path: str, ids: Iterable[str], *, name: Any = UNSET, notes: Any = UNSET,
                    group: Any = UNSET, job_type: Any = UNSET, add_tags: Sequence[str] = (),
                    remove_tags: Sequence[str] = (), config: Any = UNSET,
                    summary: Any = UNSET, on_outcome: OutcomeHook | None = None) -> list[Outcome]:
        return self._call(self._client.update_runs(path, ids, name=name, notes=notes, group=group,
                                                   job_type=job_type, add_tags=add_tags, remove_tags=remove_tags,
                                                   config=config, summary=summary, on_outcome=on_outcome))

    def delete_runs(self, path: str, ids: Iterable[str], *, delete_artifacts: bool = False,
                    on_outcome: OutcomeHook | None = None) -> list[Outcome]:
        return self._call(self._client.delete_runs(path, ids, delete_artifacts=delete_artifacts,
                                                   on_outcome=on_outcome))

    def restore_runs(self, path: str, ids: Iterable[str] | None = None, *,
                     filters: Filters = None, where: str | None = None,
                     every: bool = False, on_outcome: OutcomeHook | None = None) -> list[Outcome]:
        return self._call(self._client.restore_runs(path, ids, filters=filters, where=where, every=every,
                                                    on_outcome=on_outcome))

    def move_runs(self, path: str, ids: Iterable[str], to_path: str, *,
                  on_outcome: OutcomeHook | None = None) -> list[Outcome]:
        return self._call(self._client.move_runs(path, ids, to_path, on_outcome=on_outcome))

    def recreate_run(self, path: str, backup: Mapping[str, Any]) -> Outcome:
        return self._call(self._client.recreate_run(path, backup))

    def revert_run(self, path: str, backup: Mapping[str, Any], *,
                   fields: Sequence[str] | None = None) -> Outcome:
        return self._call(self._client.revert_run(path, backup, fields=fields))

    def create_run(self, path: str, *, name: str | None = None, display_name: str | None = None,
                   config: Mapping[str, Any] | None = None, tags: Sequence[str] | None = None,
                   notes: str | None = None, group: str | None = None, job_type: str | None = None,
                   sweep: str | None = None, resume: bool = False) -> Run:
        return self._call(self._client.create_run(path, name=name, display_name=display_name, config=config,
                                                  tags=tags, notes=notes, group=group, job_type=job_type,
                                                  sweep=sweep, resume=resume))

    def log(self, run: Run | str, rows: Iterable[Mapping[str, Any]] | AsyncIterable[Mapping[str, Any]], *,
            batch: int = 1000) -> int:
        return self._call(self._client.log(run, rows, batch=batch))

    def set_summary(self, run: Run | str, summary: Mapping[str, Any], *, replace: bool = False) -> None:
        return self._call(self._client.set_summary(run, summary, replace=replace))

    def finish(self, run: Run | str, exit_code: int = 0) -> None:
        return self._call(self._client.finish(run, exit_code))

    def set_state(self, run: Run | str, state: str) -> None:
        return self._call(self._client.set_state(run, state))

    def artifact_ref(self, ref: str) -> tuple[str, str, str]:
        return self._call(self._client.artifact_ref(ref))

    def artifacts(self, path: str, *, type: str | None = None, collection: str | None = None,
                  limit: int | None = None) -> Iterator[Artifact]:
        return self._iterate(self._client.artifacts(path, type=type, collection=collection, limit=limit))

    def artifact_collections(self, path: str, *, type: str | None = None) -> Iterator[str]:
        return self._iterate(self._client.artifact_collections(path, type=type))

    def artifact(self, ref: str) -> Artifact:
        return self._call(self._client.artifact(ref))

    def delete_artifact(self, id: str, *, delete_aliases: bool = False) -> Outcome:
        return self._call(self._client.delete_artifact(id, delete_aliases=delete_aliases))

    def lineage(self, ref: str, depth: int = 1, *, consumers: int | None = 100) -> Lineage:
        return self._call(self._client.lineage(ref, depth, consumers=consumers))

    def runs_using(self, ref: str) -> list[str]:
        return self._call(self._client.runs_using(ref))

    def runs_logging(self, ref: str) -> list[str]:
        return self._call(self._client.runs_logging(ref))
