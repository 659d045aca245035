"""History of many runs at once: `history(path, where=..., keys=[...])` streams `(run, rows)`.

The runs are resolved with the filter first (ids and the asked-for fields only), then at most
`concurrency` of them are read at a time, and their rows are handed out as each page arrives,
in completion order. A bounded queue between the readers and the caller keeps memory flat: a
slow caller stalls the readers instead of piling pages up.

- samples mode (the default, W&B's 500): one `sampledHistory` spec per run, keys + `_step`;
  like W&B, only rows that hold every key come back, at most `samples` of them.
- `full=True`: every row, paged by step range up to the run's `historyKeys.lastStep`; with keys,
  as W&B's `scan_history(keys)`: `sampledHistory` pages ({"keys", "minStep", "maxStep"}, both
  inclusive), only rows holding every key, projected to `_step` and the keys by the server.
  Without keys, `history(minStep, maxStep)` pages (maxStep exclusive) of whole rows.
- `keys=None`: every key. Full mode keeps every row whole (what a copy of a run needs); samples
  mode sends W&B's unkeyed `history(samples)`, as `run.history()` without keys does.

Every run ends with one empty chunk `(run, [])`: the mark that all its rows were handed out
(exports write a completion marker on it, so an interrupted one can resume).
NaN and ±Infinity travel as the strings "NaN", "Infinity", "-Infinity" and come out as floats.
"""

from __future__ import annotations

import asyncio
from typing import Any, AsyncIterable, AsyncIterator, Iterable, Sequence

import orjson

from ..errors import NotFoundError, UsageError
from ..export_history import decode_value
from ..models import Run
from .runs import Filters, RunsMixin

DEFAULT_SAMPLES = 500  # what W&B's run.history() samples when not told
STEP = "_step"

HistoryChunk = tuple[Run, list[dict[str, Any]]]


def _project(row: dict[str, Any], keys: Sequence[str] | None) -> dict[str, Any]:
    if keys is None:
        return {k: decode_value(v) for k, v in row.items()}
    out = {STEP: row.get(STEP)}
    for key in keys:
        if key in row:
            out[key] = decode_value(row[key])
    return out


def _decoded(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows the server projected, with W&B's NaN/Infinity strings as floats. Most pages hold
    none: one look at their JSON text (C speed) spares a Python pass over every value."""
    text = orjson.dumps(rows)
    if b'"NaN"' not in text and b'Infinity"' not in text:
        return rows
    return [{k: decode_value(v) for k, v in row.items()} for row in rows]


class HistoryMixin(RunsMixin):
    async def history(self, path_or_runs: str | Iterable[Run] | AsyncIterable[Run], *, where: str | None = None,
                      filters: Filters = None, keys: Sequence[str] | None, samples: int | None = None,
                      full: bool = False, min_step: int | None = None, max_step: int | None = None,
                      page_size: int = 1000, concurrency: int = 8,
                      fields: Iterable[str] | None = ()) -> AsyncIterator[HistoryChunk]:
        """`(run, rows)` chunks of the matching runs' history, in completion order; each run's
        chunks come in step order and end with `(run, [])`. `path_or_runs`: a project path
        (filtered by `where`/`filters`) or runs already listed (an iterable or async iterable;
        e.g. a `runs()` listing with the config/summary keys a caller needs). `fields`: the Run fields to
        fetch with the runs (id and name always). `max_step` is exclusive. `keys=None`: every key."""
        if keys is not None:
            keys = [k for k in ([keys] if isinstance(keys, str) else keys) if k and k != STEP]
            if not keys:
                raise UsageError("history needs at least one key, or keys=None for all of them",
                                 hint="e.g. keys=['loss']")
        if full and samples is not None:
            raise UsageError("give samples or full=True, not both")
        if samples is not None and samples < 1:
            raise UsageError(f"samples must be at least 1, not {samples}")
        if page_size < 1 or concurrency < 1:
            raise UsageError("page_size and concurrency must be at least 1")
        if isinstance(path_or_runs, str):
            runs: AsyncIterable[Run] | Iterable[Run] = self.runs(path_or_runs, filters, where, fields=fields)
        else:
            if where is not None or filters is not None:
                raise UsageError("filter a project path, not runs already listed")
            runs = path_or_runs

        def read(run: Run) -> AsyncIterator[list[dict[str, Any]]]:
            if full:
                return self._history_pages(run, keys, min_step, max_step, page_size)
            return self._sampled(run, keys, samples or DEFAULT_SAMPLES, min_step, max_step)

        queue: asyncio.Queue[HistoryChunk | BaseException | None] = asyncio.Queue(maxsize=2 * concurrency)
        slots = asyncio.Semaphore(concurrency)

        async def one(run: Run) -> None:
            try:
                async for rows in read(run):
                    await queue.put((run, rows))
                await queue.put((run, []))
            except Exception as e:  # handed to the caller, who stops everything
                await queue.put(e)
            finally:
                slots.release()

        async def feed() -> None:
            tasks: set[asyncio.Task[None]] = set()

            async def start(run: Run) -> None:
                await slots.acquire()
                task = asyncio.create_task(one(run))
                tasks.add(task)
                task.add_done_callback(tasks.discard)  # only runs in flight are held
            try:
                if isinstance(runs, AsyncIterable):
                    async for run in runs:
                        await start(run)
                else:
                    for run in runs:
                        await start(run)
                await asyncio.gather(*tasks)
                await queue.put(None)
            except BaseException as e:
                for task in tasks:
                    task.cancel()
                # the readers are gone before the caller hears of it: none is left pending
                await asyncio.gather(*tasks, return_exceptions=True)
                if not isinstance(e, asyncio.CancelledError):
                    await queue.put(e)
                raise

        feeder = asyncio.create_task(feed())
        try:
            while True:
                item = await queue.get()
                if item is None:
                    break
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            if not feeder.done():
                feeder.cancel()
                await asyncio.gather(feeder, return_exceptions=True)

    async def _history_run(self, run: Run, operation: str, variables: dict[str, Any]) -> dict[str, Any]:
        data = await self._execute(operation, {"entity": run.entity, "project": run.project, "name": run.name,
                                               **variables})
        node = (data.get("project") or {}).get("run")
        if node is None:
            raise NotFoundError(f"run {run.path} not found (deleted while its history was read?)")
        return dict(node)

    async def _sampled(self, run: Run, keys: list[str] | None, samples: int, min_step: int | None,
                       max_step: int | None) -> AsyncIterator[list[dict[str, Any]]]:
        if keys is None:
            node = await self._history_run(run, "RunHistory", {"minStep": min_step, "maxStep": max_step,
                                                               "samples": samples})
            every = [_project(orjson.loads(t) if isinstance(t, str) else t, None) for t in node.get("history") or []]
            if every:
                yield every
            return
        spec: dict[str, Any] = {"keys": [STEP, *keys], "samples": samples}
        if min_step is not None:
            spec["minStep"] = min_step
        if max_step is not None:
            spec["maxStep"] = max_step - 1  # sampledHistory's maxStep is inclusive
        node = await self._history_run(run, "RunSampledHistory", {"specs": [orjson.dumps(spec).decode()]})
        # As the SDK's run.history(keys) does, rows are taken as the server projected them.
        rows = _decoded((node.get("sampledHistory") or [[]])[0])
        if rows:
            yield rows

    async def _history_pages(self, run: Run, keys: list[str] | None, min_step: int | None, max_step: int | None,
                             page_size: int) -> AsyncIterator[list[dict[str, Any]]]:
        low = 0 if min_step is None else min_step
        last: int | None = None
        while last is None or low <= last:
            high = low + page_size
            if max_step is not None:
                high = min(high, max_step)
            if high <= low:
                return
            if keys is None:
                node = await self._history_run(run, "RunHistoryPage", {"minStep": low, "maxStep": high,
                                                                        "samples": page_size})
                rows = [_project(orjson.loads(t) if isinstance(t, str) else t, None) for t in node.get("history") or []]
            else:
                # The server tests and projects the keys (reading only theirs, not whole rows).
                spec = {"keys": [STEP, *keys], "minStep": low, "maxStep": high - 1, "samples": page_size}
                node = await self._history_run(run, "RunSampledHistoryPage", {"specs": [orjson.dumps(spec).decode()]})
                rows = _decoded((node.get("sampledHistory") or [[]])[0])
            info = node.get("historyKeys") or {}
            if isinstance(info, str):
                info = orjson.loads(info)
            last = int(info.get("lastStep", -1))
            if rows:
                yield rows
            low = high
