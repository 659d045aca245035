"""Writing runs without the SDK: create_run, log (history), set_summary, finish, set_state.

    async with Client() as client:
        run = await client.create_run("team/proj", config={"lr": 0.1}, tags=["baseline"])
        await client.log(run, ({"loss": 1 / (i + 1), "_step": i} for i in range(1000)))
        await client.set_summary(run, {"loss": 0.001})
        await client.finish(run)

create_run and set_summary go through W&B's upsertBucket; log and finish through W&B's REST
file_stream, as the SDK's wandb-core sends them (see ../shared/reference/sdk-wire.md §5).

log is resumable: it starts at the run's stored history line count (file_stream's offset: the
server writes line N at index N, so a retried request changes nothing) and skips rows whose
explicit `_step` is at or below the last stored step. Re-running the same log(...) after a crash
adds no duplicate and leaves no gap; rows without `_step` are numbered after the last step and
never skipped. Summary is not derived from history: set it with set_summary.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import string
import time
from datetime import datetime, timezone
from typing import Any, AsyncIterable, Iterable, Mapping, Sequence

from ..errors import NotFoundError, UsageError
from ..models import Run
from ..transport import IDEMPOTENT
from .runs import RunsMixin

HISTORY_FILE = "wandb-history.jsonl"
STEP, RUNTIME, TIMESTAMP = "_step", "_runtime", "_timestamp"
_ID_CHARS = string.ascii_lowercase + string.digits  # what the SDK's generate_id draws from
_ID_FORBIDDEN = set("/\\#?%:") | set(string.whitespace)  # would break a run path or URL
# A request also ends at this many bytes of lines: wide rows in batches of 1,000 would otherwise
# make bodies of tens of MB, which W&B's file_stream (and proxies before it) refuse.
MAX_REQUEST_BYTES = 4 << 20


class RunExistsError(UsageError):
    """create_run of an id the project holds already, without resume=True."""


def wrap_config(values: Mapping[str, Any]) -> str:
    """W&B stores config as {"key": {"value": v}}; callers give the values."""
    return _dumps({k: {"value": v} for k, v in values.items()}, "config")


def new_run_id() -> str:
    return "".join(secrets.choice(_ID_CHARS) for _ in range(8))


def _plain(value: Any) -> Any:
    """json.dumps' fallback: numpy scalars and arrays become Python values; nothing else is JSON."""
    tolist = getattr(value, "tolist", None)
    if callable(tolist):
        return tolist()
    raise TypeError(f"{type(value).__name__} is not JSON")


# One encoder for every line: json.dumps with options builds a new one per call (~40% slower).
_ENCODE = json.JSONEncoder(allow_nan=True, separators=(",", ":"), default=_plain).encode


def _dumps(value: Any, what: str) -> str:
    """JSON as the SDK writes it: NaN and ±Infinity as bare NaN/Infinity/-Infinity (W&B's
    history and summary parsers accept them; orjson would turn them into null)."""
    try:
        return _ENCODE(value)
    except (TypeError, ValueError) as e:
        raise UsageError(f"{what} holds a value that is not JSON: {e}",
                         hint="use numbers, strings, booleans, None, lists and dicts with string keys") from None


def _check_keys(row: Mapping[str, Any], what: str) -> None:
    for key, value in row.items():
        if not isinstance(key, str) or not key:
            raise UsageError(f"{what} has a key {key!r} that is not a non-empty string",
                             hint="name every metric with a string")
        if isinstance(value, Mapping):
            _check_keys(value, f"{what}[{key!r}]")


def _step_of(row: Mapping[str, Any], index: int) -> int | None:
    step = row.get(STEP)
    if step is None:
        return None
    if isinstance(step, bool) or not isinstance(step, int) or step < 0:
        raise UsageError(f"row {index}: _step must be a non-negative integer, not {step!r}",
                         hint="leave _step out to number rows after the last stored step")
    return step


def _epoch(created_at: str | None) -> float | None:
    """W&B's createdAt (UTC, "Z" or no zone) as epoch seconds; None when unreadable."""
    if not created_at:
        return None
    try:
        when = datetime.fromisoformat(created_at.removesuffix("Z"))
    except ValueError:
        return None
    return (when if when.tzinfo else when.replace(tzinfo=timezone.utc)).timestamp()


def _json_field(value: Any) -> dict[str, Any]:
    """A JSON/JSONString field as a dict (servers send either the object or its text)."""
    if isinstance(value, (str, bytes)):
        value = json.loads(value) if value else None
    return value if isinstance(value, dict) else {}


class WriteMixin(RunsMixin):
    async def create_run(self, path: str, *, name: str | None = None, display_name: str | None = None,
                         config: Mapping[str, Any] | None = None, tags: Sequence[str] | None = None,
                         notes: str | None = None, group: str | None = None, job_type: str | None = None,
                         sweep: str | None = None, resume: bool = False) -> Run:
        """A new run in ENTITY/PROJECT (the project is made if missing), as read back: `name` is
        the run id (None: a new random 8-character id, as the SDK makes). An id the project holds
        already raises RunExistsError, unless resume=True: then the existing run comes back
        unchanged. config holds plain values (stored as W&B's {"key": {"value": v}}), plus the
        `_wandb` entry the SDK writes (wandb.Api hides it), so the SDK can resume the run."""
        entity, project = await self.project_path(path)
        if name is None:
            name = new_run_id()
        elif not isinstance(name, str) or not name or _ID_FORBIDDEN & set(name) or len(name) > 128:
            raise UsageError(f"cannot use {name!r} as a run id",
                             hint="at most 128 characters, none of / \\ # ? % : or spaces; or name=None for a new one")
        fields: dict[str, Any] = {"entityName": entity, "modelName": project, "name": name}
        for key, value, wire in (("display_name", display_name, "displayName"), ("notes", notes, "notes"),
                                 ("group", group, "groupName"), ("job_type", job_type, "jobType"),
                                 ("sweep", sweep, "sweep")):
            if value is not None:
                if not isinstance(value, str):
                    raise UsageError(f"{key} must be a string, not {type(value).__name__}")
                fields[wire] = value
        if tags is not None:
            if isinstance(tags, str) or not all(isinstance(t, str) and t for t in tags):
                raise UsageError(f"tags must be a list of non-empty strings, not {tags!r}",
                                 hint="e.g. tags=['baseline']")
            fields["tags"] = list(tags)
        if config is not None and not isinstance(config, Mapping):
            raise UsageError(f"config must be a mapping of names to values, not {type(config).__name__}")
        _check_keys(config or {}, "config")
        # `_wandb.t` (the SDK's telemetry, here empty) is how the SDK tells an initialized run:
        # without it, wandb.init(id=..., resume="must") calls the run missing.
        fields["config"] = wrap_config({"_wandb": {"t": {}}, **(config or {})})
        run_path = f"{entity}/{project}/{name}"
        try:
            existing: Run | None = await self.run(run_path)
        except NotFoundError:
            existing = None
        if existing is not None:
            if resume:
                return existing
            raise RunExistsError(f"run {run_path} exists already",
                                 hint="pass resume=True to continue it, or another name (None for a new id)")
        data = await self._execute("CreateRun", {"input": fields}, IDEMPOTENT)
        if not (data.get("upsertBucket") or {}).get("inserted", True) and not resume:
            raise RunExistsError(f"run {run_path} was created by someone else at the same time; its fields "
                                 "were set to these", hint="pass resume=True to continue it")
        return await self.run(run_path)

    async def log(self, run: Run | str, rows: Iterable[Mapping[str, Any]] | AsyncIterable[Mapping[str, Any]], *,
                  batch: int = 1000) -> int:
        """Append history rows to a run through file_stream, `batch` lines per request; returns
        the run's history line count afterwards. `_step` is kept when given, else the next step
        after the last one; `_runtime`/`_timestamp` are filled in when missing; nested dicts go
        nested (W&B flattens them to dotted keys). Resumable (see the module docstring): rows
        whose `_step` is at or below the last stored step are skipped. A bad row raises
        UsageError: rows given as a list or other sequence are all checked before any is sent;
        rows from an iterator are checked a batch at a time, so earlier batches stay written
        (and a re-run continues after them)."""
        if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
            raise UsageError(f"batch must be a positive integer, not {batch!r}")
        if isinstance(rows, Mapping) or isinstance(rows, (str, bytes)):
            raise UsageError("log takes an iterable of rows (mappings), not a single " + type(rows).__name__,
                             hint="wrap one row in a list: log(run, [row])")
        entity, project, name = await self._write_target(run)
        lock = self._write_lock(entity, project, name)
        async with lock:
            state = await self._write_state(entity, project, name)
            offset = int(state.get("historyLineCount") or 0)
            last_step = int(_json_field(state.get("historyKeys")).get("lastStep", -1))
            if last_step < 0 and offset:
                last_step = offset - 1  # no lastStep reported: the SDK numbers steps by line count
            created = _epoch(state.get("createdAt"))
            url = f"/files/{entity}/{project}/{name}/file_stream"

            async def send(lines: list[str]) -> None:
                nonlocal offset
                # The server writes line N at index N: a retry of this body changes nothing.
                await self.transport.post_json(url, {"files": {HISTORY_FILE: {"offset": offset, "content": lines}}},
                                               IDEMPOTENT)
                offset += len(lines)

            whole = isinstance(rows, Sequence)  # rows in memory already: all checked before any is sent
            pending: list[str] = []
            size = 0  # bytes of pending lines since the last request (streamed rows only)
            index = -1
            async for row in _each(rows):
                index += 1
                if not isinstance(row, Mapping):
                    raise UsageError(f"row {index} is a {type(row).__name__}, not a mapping of metric names to values",
                                     hint="log rows like {'loss': 0.5}")
                step = _step_of(row, index)
                if step is not None and step <= last_step:
                    continue  # written already (a re-run after a crash), or a step W&B would drop
                _check_keys(row, f"row {index}")
                out = dict(row)
                out[STEP] = step = last_step + 1 if step is None else step
                if TIMESTAMP not in out:
                    out[TIMESTAMP] = time.time()
                if RUNTIME not in out and created is not None and isinstance(out[TIMESTAMP], (int, float)):
                    out[RUNTIME] = max(0.0, out[TIMESTAMP] - created)
                line = _dumps(out, f"row {index}")
                pending.append(line)
                last_step = step
                size += len(line)
                if not whole and (len(pending) >= batch or size >= MAX_REQUEST_BYTES):
                    lines, pending, size = pending, [], 0
                    await send(lines)
            for lines in _chunks(pending, batch):
                await send(lines)
            return offset

    async def set_summary(self, run: Run | str, summary: Mapping[str, Any], *, replace: bool = False) -> None:
        """Merge `summary` into the run's stored summary (replace=True: make it exactly `summary`),
        through upsertBucket's summaryMetrics as W&B's public API does. NaN/±Infinity are kept."""
        if not isinstance(summary, Mapping):
            raise UsageError(f"summary must be a mapping of names to values, not {type(summary).__name__}")
        _check_keys(summary, "summary")
        _dumps(summary, "summary")  # refused before anything is sent
        entity, project, name = await self._write_target(run)
        async with self._write_lock(entity, project, name):
            state = await self._write_state(entity, project, name)
            merged = dict(summary) if replace else {**_json_field(state.get("summaryMetrics")), **summary}
            await self._execute("UpsertBucket", {"input": {"id": state["id"],
                                                           "summaryMetrics": _dumps(merged, "summary")}},
                                IDEMPOTENT)

    async def finish(self, run: Run | str, exit_code: int = 0) -> None:
        """Mark the run done through file_stream, as the SDK's run.finish() does: state becomes
        finished (exit_code 0) or failed (anything else)."""
        if isinstance(exit_code, bool) or not isinstance(exit_code, int):
            raise UsageError(f"exit_code must be an integer, not {exit_code!r}", hint="0 for finished, else failed")
        entity, project, name = await self._write_target(run)
        async with self._write_lock(entity, project, name):
            await self._write_state(entity, project, name)  # a missing run is NotFoundError with a hint
            await self.transport.post_json(f"/files/{entity}/{project}/{name}/file_stream",
                                           {"complete": True, "exitcode": exit_code}, IDEMPOTENT)

    async def set_state(self, run: Run | str, state: str) -> None:
        """Give the run a state through upsertBucket (crashed, killed, running, ...): for copies
        and repairs. A run ends as finished or failed with finish(), as the SDK ends it."""
        from ..filters import RUN_STATES

        if state not in RUN_STATES:
            raise UsageError(f"no run has the state {state!r}", hint=f"one of {', '.join(RUN_STATES)}")
        entity, project, name = await self._write_target(run)
        async with self._write_lock(entity, project, name):
            current = await self._write_state(entity, project, name)
            await self._execute("UpsertBucket", {"input": {"id": current["id"], "state": state}}, IDEMPOTENT)

    # -- helpers -------------------------------------------------------------------------------
    async def _write_target(self, run: Run | str) -> tuple[str, str, str]:
        if isinstance(run, Run):
            if not (run.entity and run.project and run.name):
                raise UsageError("this Run does not know its path (entity, project and run id)",
                                 hint="pass the path ENTITY/PROJECT/RUN_ID instead")
            return run.entity, run.project, run.name
        if not isinstance(run, str):
            raise UsageError(f"run must be a Run or a path ENTITY/PROJECT/RUN_ID, not {type(run).__name__}")
        return await self.run_path(run)

    def _write_lock(self, entity: str, project: str, name: str) -> asyncio.Lock:
        """One writer per run in this client: two concurrent logs would both start at one offset."""
        locks = self.__dict__.setdefault("_write_locks", {})
        return locks.setdefault((entity, project, name), asyncio.Lock())

    async def _write_state(self, entity: str, project: str, name: str) -> dict[str, Any]:
        data = await self._execute("RunWriteState", {"entity": entity, "project": project, "name": name})
        return await self._run_node(data, entity, project, name,
                                    "create it first with create_run(), or check the run id")


def _chunks(lines: list[str], batch: int) -> Iterable[list[str]]:
    """Requests of at most `batch` lines and about MAX_REQUEST_BYTES (a longer line goes alone)."""
    chunk: list[str] = []
    size = 0
    for line in lines:
        if chunk and (len(chunk) >= batch or size + len(line) > MAX_REQUEST_BYTES):
            yield chunk
            chunk, size = [], 0
        chunk.append(line)
        size += len(line)
    if chunk:
        yield chunk


async def _each(rows: Iterable[Mapping[str, Any]] | AsyncIterable[Mapping[str, Any]]) -> Any:
    if isinstance(rows, AsyncIterable):
        async for row in rows:
            yield row
    else:
        try:
            iterator = iter(rows)
        except TypeError:
            raise UsageError(f"rows must be an iterable of mappings, not {type(rows).__name__}") from None
        for row in iterator:
            yield row


__all__ = ["WriteMixin", "RunExistsError", "wrap_config", "new_run_id"]
