"""History of many runs at once: `history(path, where=..., keys=[...])` streams `(run, rows)`.

The runs are resolved with the filter first (ids and the asked-for fields only), then at most
`concurrency` of them are read at a time, and their rows are handed out as each page arrives,
in completion order. A bounded queue between the readers and the caller keeps memory flat: a
slow caller stalls the readers instead of piling pages up.

- samples mode (the default, W&B's 500): one `sampledHistory` spec per run, keys + `_step`;
  like W&B, only rows that hold every key come back, at most `samples` of them. With keys, the
  runs of one project go in batches: one request lists a batch by name with each run's
  sampledHistory (ProjectRunsSampledHistory), so the server's fixed cost of a request is paid
  once per batch rather than once per run; `concurrency` counts batches in flight.
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
from ..transport import holds_nonfinite
from .runs import Filters, RunsMixin

DEFAULT_SAMPLES = 500  # what W&B's run.history() samples when not told
STEP = "_step"
# Runs per ProjectRunsSampledHistory request. 10 pays the server's fixed cost of a request (1-2 ms,
# as much as one run's sampling) once per 10 runs, and still spreads 200 runs over 20 requests, so
# `concurrency` of them stay in flight while the client parses the ones already answered
# (bench/p2_history.py, 200 runs x 2,000 rows: 0.95 s one run a request, 0.47-0.59 s at 10 and 15,
# 0.66-0.77 s at 25 and 50). The value budget keeps one answer a few MB (~20 bytes a value) however
# many samples and keys are asked for: large specs fall back to smaller batches.
BATCH_RUNS = 10
BATCH_VALUES = 200_000

HistoryChunk = tuple[Run, list[dict[str, Any]]]


def _project(row: dict[str, Any], keys: Sequence[str] | None) -> dict[str, Any]:
    if keys is None:
        return {k: decode_value(v) for k, v in row.items()}
    out = {STEP: row.get(STEP)}
    for key in keys:
        if key in row:
            out[key] = decode_value(row[key])
    return out


def _decoded(rows: list[dict[str, Any]], nonfinite: bool) -> list[dict[str, Any]]:
    """Rows the server projected, with W&B's NaN/Infinity strings as floats. Most answers hold
    none (`nonfinite` false: the transport saw none in their body): their rows pass untouched."""
    if not nonfinite:
        return rows
    return [{k: decode_value(v) for k, v in row.items()} for row in rows]


def _whole_rows(node: dict[str, Any]) -> list[dict[str, Any]]:
    """A run node's `history` (rows as JSON strings), decoded."""
    return [_project(orjson.loads(t) if isinstance(t, str) else t, None) for t in node.get("history") or []]


def _spec(keys: list[str], samples: int, min_step: int | None, max_step: int | None) -> dict[str, Any]:
    """A sampledHistory spec for `_step` and the keys; `max_step` exclusive, as everywhere here."""
    spec: dict[str, Any] = {"keys": [STEP, *keys], "samples": samples}
    if min_step is not None:
        spec["minStep"] = min_step
    if max_step is not None:
        spec["maxStep"] = max_step - 1  # sampledHistory's maxStep is inclusive
    return spec


def _filters_json(names: list[str]) -> str:
    return orjson.dumps({"name": {"$in": names}}).decode()


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

        spec = None if full or keys is None else _spec(keys, samples or DEFAULT_SAMPLES, min_step, max_step)
        batch_size = 1 if spec is None else max(1, min(BATCH_RUNS, BATCH_VALUES // (spec["samples"] * len(spec["keys"]))))

        def read(batch: list[Run]) -> AsyncIterator[HistoryChunk]:
            if spec is not None:
                return self._sampled_batch(batch, spec)
            return self._one_run(batch[0], keys, full, samples or DEFAULT_SAMPLES, min_step, max_step, page_size)

        queue: asyncio.Queue[HistoryChunk | BaseException | None] = asyncio.Queue(maxsize=2 * concurrency)
        slots = asyncio.Semaphore(concurrency)

        async def one(batch: list[Run]) -> None:
            try:
                async for chunk in read(batch):
                    await queue.put(chunk)
            except Exception as e:  # handed to the caller, who stops everything
                await queue.put(e)
            finally:
                slots.release()

        async def feed() -> None:
            tasks: set[asyncio.Task[None]] = set()
            # a batch is one request: runs listed elsewhere may come from several projects
            pending: dict[tuple[str, str], list[Run]] = {}

            async def start(batch: list[Run]) -> None:
                await slots.acquire()
                task = asyncio.create_task(one(batch))
                tasks.add(task)
                task.add_done_callback(tasks.discard)  # only runs in flight are held

            async def add(run: Run) -> None:
                batch = pending.setdefault((run.entity, run.project), [])
                batch.append(run)
                if len(batch) >= batch_size:
                    del pending[(run.entity, run.project)]
                    await start(batch)
            try:
                if isinstance(runs, AsyncIterable):
                    async for run in runs:
                        await add(run)
                else:
                    for run in runs:
                        await add(run)
                for batch in list(pending.values()):
                    await start(batch)
                pending.clear()
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

    async def _history_run(self, run: Run, operation: str, variables: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        """The run's node in the answer, and whether the answer may hold NaN/Infinity strings."""
        data = await self._execute(operation, {"entity": run.entity, "project": run.project, "name": run.name,
                                               **variables})
        node = (data.get("project") or {}).get("run")
        if node is None:
            raise NotFoundError(f"run {run.path} not found (deleted while its history was read?)")
        return dict(node), holds_nonfinite(data)

    async def _one_run(self, run: Run, keys: list[str] | None, full: bool, samples: int, min_step: int | None,
                       max_step: int | None, page_size: int) -> AsyncIterator[HistoryChunk]:
        if full:
            pages = self._history_pages(run, keys, min_step, max_step, page_size)
        else:
            pages = self._unkeyed_sample(run, samples, min_step, max_step)
        async for rows in pages:
            yield run, rows
        yield run, []

    async def _unkeyed_sample(self, run: Run, samples: int, min_step: int | None,
                              max_step: int | None) -> AsyncIterator[list[dict[str, Any]]]:
        node, _ = await self._history_run(run, "RunHistory", {"minStep": min_step, "maxStep": max_step,
                                                           "samples": samples})
        every = _whole_rows(node)
        if every:
            yield every

    async def _sampled_batch(self, batch: list[Run], spec: dict[str, Any]) -> AsyncIterator[HistoryChunk]:
        """One request for the sampled rows of a batch of one project's runs."""
        names = list(dict.fromkeys(run.name for run in batch if run.name is not None))
        data = await self._execute("ProjectRunsSampledHistory", {
            "entity": batch[0].entity, "project": batch[0].project, "filters": _filters_json(names),
            "first": len(names), "specs": [orjson.dumps(spec).decode()]})
        edges = (((data.get("project") or {}).get("runs") or {}).get("edges")) or []
        found = {edge["node"]["name"]: edge["node"] for edge in edges if edge.get("node")}
        for run in batch:
            if run.name not in found:
                raise NotFoundError(f"run {run.path} not found (deleted while its history was read?)")
        nonfinite = holds_nonfinite(data)
        for run in batch:
            # As the SDK's run.history(keys) does, rows are taken as the server projected them.
            rows = _decoded((found[run.name].get("sampledHistory") or [[]])[0], nonfinite)
            if rows:
                yield run, rows
            yield run, []

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
                node, _ = await self._history_run(run, "RunHistoryPage", {"minStep": low, "maxStep": high,
                                                                        "samples": page_size})
                rows = _whole_rows(node)
            else:
                # The server tests and projects the keys (reading only theirs, not whole rows).
                spec = _spec(keys, page_size, low, high)
                node, nonfinite = await self._history_run(run, "RunSampledHistoryPage",
                                                          {"specs": [orjson.dumps(spec).decode()]})
                rows = _decoded((node.get("sampledHistory") or [[]])[0], nonfinite)
            info = node.get("historyKeys") or {}
            if isinstance(info, str):
                info = orjson.loads(info)
            last = int(info.get("lastStep", -1))
            if rows:
                yield rows
            low = high
