"""Copying runs between servers (or projects): `export_runs` streams runs out as JSON lines,
`import_runs` writes such lines into another project through the write path.

    async with Client(base_url=A) as a:
        with open("runs.jsonl", "wb") as out:
            async for record in export_runs(a, "team/project", where="state = finished", with_history=True):
                out.write(dump_line(record))
    async with Client(base_url=B) as b:
        result = await import_runs(b, "runs.jsonl", "team/copy")

A line is one run in the one vocabulary: exactly `Run.to_dict()` (name, display_name, state,
tags, group, job_type, sweep, notes, config and summary whole, created_at, user, ...), plus
`history` (every row with every key) when asked, NaN and ±Infinity as W&B's strings "NaN",
"Infinity", "-Infinity": the shape of a run's backup in a ledger, so either can be imported.

Import, line by line: the run is created in DEST under its id, or under a new id when DEST holds
that id already (old -> new is reported); its history is logged, its summary set to exactly the
source's, then it is finished (state finished: exit code 0; failed: 1) or given the source's
state (crashed, killed, running) with upsertBucket. What cannot be copied: created_at, heartbeat
and updated times, the user (the importing key's user owns the copies), files, artifacts,
system metrics and console logs.

The file is checked whole before anything is sent (streaming: memory does not grow with it).
Progress is kept in a sidecar beside the file, `FILE.import-DEST.jsonl`: a `started` line
(old -> new, on disk) before a run is created, `done` after it is finished, `failed` with the
reason. `resume=True` skips the done runs and carries on with the others under the id they were
given (create_run(resume=True); log skips the steps already stored), so an import killed at any
point and resumed writes each run once, its history without duplicates or gaps; failed runs are
tried again. An import that ends with every run done removes its sidecar: importing the same
file again makes new copies, and `resume=True` without a sidecar is refused for that reason.
"""

from __future__ import annotations

import asyncio
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, AsyncIterator, Callable, Iterator, Mapping, Sequence

import orjson

from ._time import now
from .errors import AuthError, GraphQLResponseError, NotFoundError, UsageError, WandbGQLError
from .export_history import decode_value, encode_value
from .filters import resolve_filters
from .models import Run
from .paths import parse_project_path

if TYPE_CHECKING:
    from .client import Client

__all__ = ["export_runs", "run_record", "dump_line", "check_export", "import_runs", "ImportResult",
           "sidecar_path", "keep_complete_lines", "prepare_import"]

_FORMAT_HINT = "one run per line, as `wbgql runs export` writes (a JSON object with at least its run id, name)"
# Source states that file_stream's exit code sets; any other (crashed, killed, running, ...) is
# given to upsertBucket as it is.
_EXIT_CODES = {"finished": 0, "failed": 1}
_TAKEN = re.compile(r"deleted|exists|already|taken|reuse", re.IGNORECASE)


# ---------------------------------------------------------------------------- export


def run_record(run: Run, history: Sequence[Mapping[str, Any]] | None = None) -> dict[str, Any]:
    """One export line's object: `run.to_dict()`, plus `history` with non-finite floats as
    W&B's strings (JSON has no NaN)."""
    record = run.to_dict()
    if history is not None:
        record["history"] = [{k: encode_value(v) for k, v in row.items()} for row in history]
    return record


def dump_line(record: Mapping[str, Any]) -> bytes:
    return orjson.dumps(record, option=orjson.OPT_NON_STR_KEYS) + b"\n"


async def export_runs(client: "Client", path: str, *, where: str | None = None,
                      filters: dict[str, Any] | str | None = None, ids: Sequence[str] | None = None,
                      with_history: bool = False, concurrency: int = 8,
                      skip: frozenset[str] | set[str] = frozenset()) -> AsyncIterator[dict[str, Any]]:
    """The matching runs of `path` (and only `ids` when given), each as `run_record`, every
    field, config and summary whole; `with_history`: every history row too (runs read
    `concurrency` at a time, handed out as each completes; one run's rows are held until
    its last page). `skip`: run ids to leave out (already exported)."""
    query = resolve_filters(filters, where).filters
    if ids is not None:
        pinned = {"name": {"$in": list(dict.fromkeys(ids))}}
        query = {"$and": [query, pinned]} if query else pinned

    async def listing() -> AsyncIterator[Run]:
        async for run in client.runs(path, filters=query, config_keys=True, summary_keys=True):
            if run.name not in skip:
                yield run

    if not with_history:
        async for run in listing():
            yield run_record(run)
        return
    held: dict[str | None, list[dict[str, Any]]] = {}
    async for run, rows in client.history(listing(), keys=None, full=True, concurrency=concurrency):
        if rows:
            held.setdefault(run.name, []).extend(rows)
        else:  # the mark that every row of this run was handed out
            yield run_record(run, held.pop(run.name, []))


def keep_complete_lines(out: Path) -> set[str]:
    """An interrupted export file cut back to its complete lines; the run ids they hold. Lines
    are written whole and JSON escapes newlines, so only the text after the last newline can be
    a run cut off."""
    if not out.exists():
        return set()
    with open(out, "r+b") as f:
        size = f.seek(0, os.SEEK_END)
        end = size
        while end > 0:
            step = min(65536, end)
            f.seek(end - step)
            chunk = f.read(step)
            at = chunk.rfind(b"\n")
            if at >= 0:
                end = end - step + at + 1
                break
            end -= step
        if end != size:
            f.truncate(end)
    return {record["name"] for _, record in _records(out)}


# ---------------------------------------------------------------------------- reading an export file


def _problem(record: Any) -> str | None:
    """What makes a line unusable, or None."""
    if not isinstance(record, dict):
        return "not a JSON object"
    name = record.get("name")
    if not isinstance(name, str) or not name.strip():
        return "no run id (name)"
    for key in ("config", "summary"):
        if record.get(key) is not None and not isinstance(record[key], dict):
            return f"{key} is not an object"
    tags = record.get("tags")
    if tags is not None and not (isinstance(tags, list) and all(isinstance(t, str) for t in tags)):
        return "tags is not a list of strings"
    for key in ("display_name", "state", "group", "job_type", "sweep", "notes"):
        if record.get(key) is not None and not isinstance(record[key], str):
            return f"{key} is not a string"
    history = record.get("history")
    if history is None:
        return None
    if not isinstance(history, list):
        return "history is not a list of rows"
    for i, row in enumerate(history):
        if not isinstance(row, dict):
            return f"history row {i} is not an object"
        step = row.get("_step")
        if step is not None and (not isinstance(step, int) or isinstance(step, bool) or step < 0):
            return f"history row {i} has _step {step!r} (a step is a whole number >= 0)"
    return None


def _records(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, run) for each non-blank line, one at a time; UsageError at the first bad one."""
    try:
        f = open(path, "rb")
    except OSError as e:
        raise UsageError(f"cannot read {path}: {e.strerror or e}") from None
    with f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                record = orjson.loads(line)
            except orjson.JSONDecodeError as e:
                raise UsageError(f"{path} line {number} is not JSON ({e.msg} at column {e.colno})",
                                 hint=_FORMAT_HINT) from None
            problem = _problem(record)
            if problem:
                raise UsageError(f"{path} line {number}: {problem}", hint=_FORMAT_HINT)
            yield number, record


def check_export(path: str | Path) -> tuple[int, int]:
    """Read the whole file once, as an import will, keeping nothing but the run ids: (runs, rows).
    UsageError naming the line for a line that is not a run, a run twice, or no run at all."""
    path = Path(path)
    first_line: dict[str, int] = {}
    rows = 0
    for number, record in _records(path):
        name = record["name"]
        if name in first_line:
            raise UsageError(f"{path} line {number}: run {name} again (first on line {first_line[name]})",
                             hint="each run once: export it again, or remove the repeated line")
        first_line[name] = number
        rows += len(record.get("history") or ())
    if not first_line:
        raise UsageError(f"{path} holds no runs", hint=_FORMAT_HINT)
    return len(first_line), rows


# ---------------------------------------------------------------------------- import


def sidecar_path(file: str | Path, dest: str) -> Path:
    """Where an import of `file` into `dest` keeps its progress: beside the file."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", dest.strip()).strip("_") or "dest"
    return Path(f"{file}.import-{slug}.jsonl")


@dataclass
class _Entry:
    new: str
    status: str  # started | done | failed
    error: str | None = None


class _Sidecar:
    """The progress of one import, one JSON line per event, each on disk before the next step."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.entries: dict[str, _Entry] = {}
        if path.exists():
            for line in path.read_bytes().splitlines():
                try:
                    event = orjson.loads(line)
                except orjson.JSONDecodeError:  # the last line, cut off by a kill
                    continue
                if isinstance(event, dict) and event.get("old") and event.get("new"):
                    self.entries[event["old"]] = _Entry(event["new"], event.get("event", "started"),
                                                        event.get("error"))
        fresh = not path.exists()
        self._file = open(path, "ab")
        if not fresh:
            self._file.write(b"\n")  # a line cut off by a kill ends here, not inside the next
        os.chmod(path, 0o600)

    def write(self, event: str, old: str, new: str, **extra: Any) -> None:
        self.entries[old] = _Entry(new, event, extra.get("error"))
        self._file.write(dump_line({"event": event, "old": old, "new": new, "at": now(), **extra}))
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        self._file.close()


@dataclass
class ImportResult:
    """What an import did. `imported`: runs written this time; `already_done`: runs a resumed
    import found done; `renamed`: old id -> new id for every run that could not keep its id;
    `failed`: old id -> why; `interrupted`: stopped before the end (the sidecar stays)."""

    dest: str
    imported: list[str] = field(default_factory=list)
    already_done: int = 0
    renamed: dict[str, str] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    rows: int = 0
    sidecar: str | None = None
    interrupted: bool = False

    @property
    def ok(self) -> bool:
        return not self.failed and not self.interrupted

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "dest": self.dest, "imported": len(self.imported), "already_done": self.already_done,
                "rows": self.rows, "renamed": dict(self.renamed), "failed": dict(self.failed),
                "sidecar": self.sidecar}


async def _exists(client: "Client", dest: str, run_id: str) -> bool:
    try:
        await client.run(f"{dest}/{run_id}")
    except NotFoundError:
        return False
    return True


async def _settle(client: "Client", run: Run, state: str | None) -> None:
    """Give the copy the source's state: finish it when the source finished or failed, else set
    the state as upsertBucket can (a crashed or killed run is not finished again)."""
    if state in _EXIT_CODES:
        await client.finish(run, exit_code=_EXIT_CODES[state])
    elif state:
        await client.set_state(run, state)


def _id_taken(error: Exception) -> bool:
    """Whether create_run failed because DEST holds the id: taken since the check, or held by a
    deleted run, which W&B never reuses (the server says so in words; any other refusal is the
    run's failure, not a reason to give it another id)."""
    from .client.write import RunExistsError

    return isinstance(error, RunExistsError) or bool(_TAKEN.search(str(error)))


def _create_fields(record: Mapping[str, Any]) -> dict[str, Any]:
    return {"display_name": record.get("display_name"), "config": record.get("config"),
            "tags": record.get("tags"), "notes": record.get("notes"), "group": record.get("group"),
            "job_type": record.get("job_type"), "sweep": record.get("sweep")}


def prepare_import(file: str | Path, dest: str, *, resume: bool = False) -> tuple[int, int]:
    """Everything an import checks before it sends anything: DEST reads as a project path, FILE
    is a file of runs (read whole, streaming), and no sidecar of an unfinished import is in the
    way (unless resuming). Returns (runs, history rows) in FILE."""
    parse_project_path(dest)
    file = Path(file)
    if str(file) == "-" or file.is_dir():
        raise UsageError(f"cannot import from {file}: give the file `wbgql runs export` wrote",
                         hint="the file is read twice (checked first), so it cannot be stdin")
    sidecar = sidecar_path(file, dest)
    if sidecar.exists() and not resume:
        raise UsageError(f"{sidecar} exists: an earlier import of {file} into {dest} did not finish",
                         hint=f"use --resume to continue it, or remove {sidecar} to start over")
    if resume and not sidecar.exists():  # resuming a finished import would copy every run again
        raise UsageError(f"nothing to resume: no {sidecar} (that import finished, or never started)",
                         hint="leave out --resume to import the file (again: the copies get new ids)")
    return check_export(file)


async def import_runs(client: "Client", file: str | Path, dest: str, *, resume: bool = False,
                      concurrency: int = 8, on_start: Callable[[int, int], None] | None = None,
                      on_run: Callable[[str, str, int], None] | None = None,
                      checked: tuple[int, int] | None = None) -> ImportResult:
    """Write every run of an export file into the project `dest` (see the module docstring).
    `on_start(runs, rows)` once the file is checked; `on_run(old, new, rows)` as each run is
    done. Bad input (the file, `dest`, a sidecar left by an earlier import without `resume`) is
    a UsageError before anything is sent. A run that fails is reported in `failed` and the others
    go on; a rejected key stops everything (AuthError). `checked`: what `prepare_import` said,
    when the caller ran it already."""
    from .client.write import RunExistsError, new_run_id

    file = Path(file)
    if concurrency < 1:
        raise UsageError(f"concurrency must be at least 1, not {concurrency}")
    runs, rows = checked if checked is not None else prepare_import(file, dest, resume=resume)
    if on_start is not None:
        on_start(runs, rows)
    sidecar = sidecar_path(file, dest)
    entity, project = await client.project_path(dest)
    dest = f"{entity}/{project}"
    try:
        await client.count_runs(dest)
        clashes_possible = True
    except NotFoundError:  # a new project: no id of the file can be taken in it
        clashes_possible = False
        # Only the viewer's own entity and teams take new projects: say so once, not per run.
        viewer = await client.viewer()
        if entity not in {viewer.entity, *viewer.teams}:
            raise UsageError(f"cannot import into {dest}: entity {entity!r} is not {viewer.username}'s "
                             "and not one of their teams",
                             hint=f"import into {', '.join(sorted(filter(None, {viewer.entity, *viewer.teams})))} "
                                  "(ENTITY/PROJECT)")
    log = _Sidecar(sidecar)
    result = ImportResult(dest=dest, sidecar=str(sidecar))

    async def one(record: dict[str, Any]) -> None:
        old = record["name"]
        prior = log.entries.get(old)
        if prior is not None and prior.status == "done":
            result.already_done += 1
            return
        fields = _create_fields(record)
        new = prior.new if prior is not None else None
        history = [{k: decode_value(v) for k, v in row.items()} for row in record.get("history") or ()]
        try:
            if new is not None:  # started before: carry on under the id it was given
                run = await client.create_run(dest, name=new, resume=True, **fields)
            else:
                new = new_run_id() if clashes_possible and await _exists(client, dest, old) else old
                log.write("started", old, new)
                try:
                    run = await client.create_run(dest, name=new, **fields)
                except (RunExistsError, GraphQLResponseError) as e:
                    if not _id_taken(e):
                        raise
                    new = new_run_id()
                    log.write("started", old, new)
                    run = await client.create_run(dest, name=new, **fields)
            if history:
                await client.log(run, history)
            if record.get("summary") is not None:  # "NaN" back to a float: W&B stores the number, not the text
                summary = {k: decode_value(v) for k, v in record["summary"].items()}
                await client.set_summary(run, summary, replace=True)
            await _settle(client, run, record.get("state"))
        except AuthError:
            raise
        except WandbGQLError as e:
            result.failed[old] = e.message
            if new is not None:
                log.write("failed", old, new, error=e.message)
            return
        log.write("done", old, new, rows=len(history))
        result.imported.append(old)
        result.rows += len(history)
        if on_run is not None:
            on_run(old, new, len(history))

    # At most `concurrency` runs in flight, each holding its one line: memory does not grow with
    # the file. A rejected key (or anything unexpected) stops reading; the runs in flight finish.
    slots = asyncio.Semaphore(concurrency)
    tasks: set[asyncio.Task[None]] = set()
    stop: list[BaseException] = []

    async def guarded(record: dict[str, Any]) -> None:
        try:
            await one(record)
        except Exception as e:
            stop.append(e)
        finally:
            slots.release()

    try:
        for _, record in _records(file):
            await slots.acquire()
            if stop:
                slots.release()
                break
            task = asyncio.create_task(guarded(record))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        await asyncio.gather(*tasks)
        if stop:
            raise stop[0]
    except BaseException:
        result.interrupted = True
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
    finally:
        log.close()
        result.renamed = {old: e.new for old, e in log.entries.items() if e.new != old}
        if result.ok:
            sidecar.unlink(missing_ok=True)
            result.sidecar = None
    return result
