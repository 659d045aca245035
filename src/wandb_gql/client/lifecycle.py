"""Moving runs between projects, and writing runs back from a ledger's backup.

A backup is one run in the one vocabulary (`Run.to_dict()`: name, display_name, state, tags,
group, job_type, sweep, notes, config and summary whole, created_at, user; `history` when the
ledger was asked to keep it). What W&B's API can set again is set again, history through
file_stream (Client.log); created_at and user cannot be (upsertBucket has no such inputs), so a
run re-created after a purge is new by them.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Iterable, Mapping, Sequence

import orjson

from ..errors import GraphQLResponseError, HTTPStatusError, NotFoundError, TransportError, UsageError
from ..export_history import decode_value
from ..models import Outcome, Run
from ..transport import IDEMPOTENT
from .projects import ProjectsMixin
from .runs import OutcomeHook, RunsMixin
from .write import WriteMixin, wrap_config

_MOVE_BATCH = 100           # ids per moveRuns filter
_MOVE_WAIT = 30.0           # seconds to wait for W&B's move task before calling a run unknown
_MUTATION_ERRORS = (GraphQLResponseError, TransportError, HTTPStatusError)

# Backup field (the one vocabulary) -> UpsertBucketInput field, for plain text fields.
_PLAIN = {"display_name": "displayName", "notes": "notes", "group": "groupName", "job_type": "jobType"}
_REVERTIBLE = (*_PLAIN, "tags", "config", "summary")


def _same(a: Any, b: Any) -> bool:
    # upsertBucket cannot send null to clear a text field: "" stands for it, so both mean "none".
    return (a or None) == (b or None) if isinstance(a, (str, type(None))) and isinstance(b, (str, type(None))) \
        else a == b


class LifecycleMixin(ProjectsMixin):
    # Client puts RunsMixin before this mixin, so it cannot be a base here: reach it through self.
    @property
    def _runs(self) -> RunsMixin:
        assert isinstance(self, RunsMixin), "LifecycleMixin is part of Client"
        return self

    @property
    def _writer(self) -> WriteMixin:
        assert isinstance(self, WriteMixin), "LifecycleMixin is part of Client"
        return self

    async def move_runs(self, path: str, ids: Iterable[str], to_path: str, *,
                        on_outcome: OutcomeHook | None = None) -> list[Outcome]:
        """Move the given runs to another project with W&B's moveRuns, pinned to their ids in
        batches, then check where each run is: moved | unchanged (already in the destination) |
        not_found | failed (still in the source; the error says why, e.g. the destination holds
        its id already) | unknown (W&B's move task had not finished within 30 s). Each Outcome is
        also handed to `on_outcome`."""
        entity, project = await self.project_path(path)
        to_entity, to_project = await self.project_path(to_path)
        if (entity, project) == (to_entity, to_project):
            raise UsageError(f"cannot move runs of {entity}/{project} to the same project",
                             hint="give another ENTITY/PROJECT to move them to")
        ids = list(dict.fromkeys(ids))
        source = await self._runs._live(entity, project, ids)
        dest_before = await self._live_anywhere(to_entity, to_project, ids)
        todo = [i for i in ids if i in source]
        errors: dict[str, str] = {}
        tasks: list[dict[str, Any]] = []

        async def batch(chunk: list[str]) -> None:
            variables = {"entity": entity, "project": project, "toEntity": to_entity, "toProject": to_project,
                         "filters": orjson.dumps({"name": {"$in": chunk}}).decode()}
            try:
                data = await self._execute("MoveRuns", variables, IDEMPOTENT)
            except _MUTATION_ERRORS as e:
                errors.update({i: str(e) for i in chunk})
                return
            task = (data.get("moveRuns") or {}).get("task") or {}
            tasks.append(task)
            if task.get("state") == "FAILED":
                errors.update({i: f"W&B's move task failed: {task.get('name') or 'no reason given'}" for i in chunk})

        await asyncio.gather(*(batch(todo[s:s + _MOVE_BATCH]) for s in range(0, len(todo), _MOVE_BATCH)))
        # W&B moves in a task of its own: wait until every run has left the source, or give up.
        deadline = time.monotonic() + _MOVE_WAIT
        delay = 0.2
        while True:
            still = await self._runs._live(entity, project, todo)
            waiting = [i for i in still if i not in errors]
            if not waiting or time.monotonic() >= deadline:
                break
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)
        arrived = await self._runs._live(to_entity, to_project, ids)
        outcomes: list[Outcome] = []
        for run_id in ids:
            if run_id not in source:
                status = "unchanged" if run_id in arrived else "not_found"
                outcome = Outcome(run_id, status)
            elif run_id in arrived and run_id not in still:
                outcome = Outcome(run_id, "moved")
            elif run_id in dest_before:
                outcome = Outcome(run_id, "failed", f"{to_entity}/{to_project} holds run id {run_id} already "
                                                    "(W&B never reuses a run id)")
            elif run_id in errors:
                outcome = Outcome(run_id, "failed", errors[run_id])
            else:
                outcome = Outcome(run_id, "unknown", f"still in {entity}/{project} after {_MOVE_WAIT:.0f} s: "
                                                     "W&B's move task may not have finished")
            outcomes.append(outcome)
            if on_outcome is not None:
                on_outcome(outcome)
        return outcomes

    async def _live_anywhere(self, entity: str, project: str, ids: Sequence[str]) -> dict[str, str]:
        """Live runs of a project that may not exist yet (a move creates it)."""
        try:
            return await self._runs._live(entity, project, ids)
        except NotFoundError:
            return {}

    async def recreate_run(self, path: str, backup: Mapping[str, Any]) -> Outcome:
        """Write a run from its backup record (see the module docstring) with upsertBucket by run
        id: a run gone for good is created again with its display name, state, config, summary,
        tags, notes, group, job type and sweep, and the backup's history rows are logged again
        (Client.log: steps already there are skipped, so a repeat adds nothing); then its state
        and summary are set once more, since file_stream marks a run running. `restored` when
        all of it was written, `failed` when the server refused (a soft-deleted run: restore it
        instead; W&B may refuse a purged id too) or the history could not be written (the error
        says which; running it again continues where it stopped)."""
        entity, project = await self.project_path(path)
        name = backup.get("name")
        if not name:
            raise UsageError("a backup without its run id (name) cannot be re-created")
        fields: dict[str, Any] = {"entityName": entity, "modelName": project, "name": name}
        for key, wire in (*_PLAIN.items(), ("state", "state"), ("sweep", "sweep")):
            if backup.get(key) is not None:
                fields[wire] = backup[key]
        if backup.get("tags") is not None:
            fields["tags"] = list(backup["tags"])
        if backup.get("config") is not None:
            fields["config"] = wrap_config(backup["config"])
        if backup.get("summary") is not None:
            fields["summaryMetrics"] = orjson.dumps(backup["summary"]).decode()
        try:
            await self._execute("RecreateRun", {"input": fields}, IDEMPOTENT)
        except _MUTATION_ERRORS as e:
            return Outcome(name, "failed", f"not re-created: {e}")
        history = backup.get("history")
        if history:
            # Backups hold rows as W&B serves them: NaN/±Infinity as strings, logged again as floats.
            rows = ({k: decode_value(v) for k, v in row.items()} if isinstance(row, Mapping) else row
                    for row in history)
            after = {k: fields[k] for k in ("state", "summaryMetrics") if k in fields}
            try:
                await self._writer.log(f"{entity}/{project}/{name}", rows)
                if after:
                    keys = {k: fields[k] for k in ("entityName", "modelName", "name")}
                    await self._execute("RecreateRun", {"input": {**keys, **after}}, IDEMPOTENT)
            except (*_MUTATION_ERRORS, NotFoundError, UsageError) as e:
                return Outcome(name, "failed", f"re-created, but its history ({len(history)} rows in the backup) "
                                               f"was not all written: {e}; run the restore again to continue")
        return Outcome(name, "restored")

    async def revert_run(self, path: str, backup: Mapping[str, Any], *,
                         fields: Sequence[str] | None = None) -> Outcome:
        """Put fields of a live run back to the values in its backup: `fields` names them
        (display_name, notes, group, job_type, tags, config, summary; `config.<key>` and
        `summary.<key>` for one key, removed when the backup lacks it; `tag:<name>` for one
        tag's presence; None: all of them). Read back afterwards: updated | unchanged (already
        so) | not_found | failed (the error names what did not take)."""
        entity, project = await self.project_path(path)
        name = backup.get("name")
        if not name:
            raise UsageError("a backup without its run id (name) cannot be put back")
        wanted = list(fields) if fields is not None else list(_REVERTIBLE)
        run_path = f"{entity}/{project}/{name}"
        try:
            current = await self._runs.run(run_path)
        except NotFoundError:
            return Outcome(name, "not_found")
        except _MUTATION_ERRORS as e:
            return Outcome(name, "failed", str(e))
        target = _target(current, backup, wanted)
        if not _differs(current, target):
            return Outcome(name, "unchanged")
        update: dict[str, Any] = {"id": current.id}
        for key, wire in _PLAIN.items():
            if key in target:
                update[wire] = target[key] if target[key] is not None else ""
        if "tags" in target:
            update["tags"] = target["tags"]
        if "config" in target:
            # Keys the change left alone keep their stored form (descriptions, _wandb).
            stored = orjson.loads(current.config_json or "{}")
            update["config"] = orjson.dumps({k: stored[k] if k in stored and current.config.get(k) == v
                                             else {"value": v} for k, v in target["config"].items()}).decode()
        if "summary" in target:
            update["summaryMetrics"] = orjson.dumps(target["summary"]).decode()
        try:
            await self._execute("UpsertBucket", {"input": update}, IDEMPOTENT)
            after = await self._runs.run(run_path)
        except NotFoundError:
            return Outcome(name, "not_found")
        except _MUTATION_ERRORS as e:
            return Outcome(name, "failed", str(e))
        missed = _differs(after, target)
        if missed:
            return Outcome(name, "failed", f"{', '.join(missed)} did not take the backup's value")
        return Outcome(name, "updated")


def _target(current: Run, backup: Mapping[str, Any], wanted: Sequence[str]) -> dict[str, Any]:
    """The values the named fields must have: the backup's, applied onto the current run."""
    target: dict[str, Any] = {}
    tags = list(current.tags or [])
    config, summary = dict(current.config), dict(current.summary)
    for spec in wanted:
        head, sep, key = spec.partition(".") if not spec.startswith("tag:") else ("tag", ":", spec[4:])
        if spec in _PLAIN:
            target[spec] = backup.get(spec)
        elif spec == "tags":
            tags = list(backup.get("tags") or [])
            target["tags"] = tags
        elif head == "tag" and sep and key:
            had = key in (backup.get("tags") or [])
            tags = [t for t in tags if t != key] + ([key] if had else [])
            target["tags"] = tags
        elif spec in ("config", "summary"):
            target[spec] = dict(backup.get(spec) or {})
            if spec == "config":
                config = target[spec]
            else:
                summary = target[spec]
        elif head in ("config", "summary") and sep and key:
            values, saved = (config, backup.get("config")) if head == "config" else (summary, backup.get("summary"))
            saved = saved or {}
            if key in saved:
                values[key] = saved[key]
            else:
                values.pop(key, None)
            target[head] = values
        else:
            raise UsageError(f"cannot put back {spec!r}: name one of {', '.join(_REVERTIBLE)}, "
                             "config.<key>, summary.<key> or tag:<name>")
    return target


def _differs(run: Run, target: Mapping[str, Any]) -> list[str]:
    """The fields of target the run does not hold (tags compared as sets)."""
    out = []
    for key, value in target.items():
        if key == "tags":
            if set(run.tags or []) != set(value):
                out.append(key)
        elif key in ("config", "summary"):
            have = dict(run.config if key == "config" else run.summary)
            out += [f"{key}.{k}" for k in sorted(set(have) | set(value)) if have.get(k) != value.get(k)]
        elif not _same(getattr(run, key), value):
            out.append(key)
    return out
