"""Runs: list (streamed, projected), count, one, ids only; update, delete, restore by pinned ids.

Mutations never act on a bare filter: the ids are resolved first (ProjectRunIds), the calls act
on those, and every id ends with its own Outcome, so one failure never hides the others.
"""

from __future__ import annotations

import asyncio
from typing import Any, AsyncIterator, Callable, Iterable, Mapping, Sequence

import orjson

from ..errors import GraphQLResponseError, HTTPStatusError, NotFoundError, TransportError, UsageError
from ..filters import Compiled, compile_order, resolve_filters
from ..models import RUN_FIELDS, Outcome, Run
from ..transport import IDEMPOTENT
from ._base import MAX_PAGE, UNSET
from ._paging import paginate
from .projects import ProjectsMixin

Filters = dict[str, Any] | str | Compiled | None
"""W&B filter JSON (a dict or its text), or a compiled --where (`compile_where`)."""

# Run fields a listing may leave out (ProjectRuns' $with<Wire> flags); id and name always come.
OPTIONAL_FIELDS = {f.name: f.flag for f in RUN_FIELDS if f.optional}
_ALWAYS = frozenset(f.name for f in RUN_FIELDS if not f.optional)
# Names of the one vocabulary that need no field of their own (derived from entity/project/name).
_DERIVED = frozenset({"path", "url", "entity", "project"})
_ID_BATCH = 1000     # ids per `name $in [...]` lookup: the server's largest page
_BULK_BATCH = 500  # ids per bulk mutation (deleteRuns/undeleteRuns filter, modifyRuns ids)
_MUTATION_ERRORS = (GraphQLResponseError, TransportError, HTTPStatusError)
_EVERY_FIELD = frozenset(f.name for f in RUN_FIELDS)


def _fetched(flags: Mapping[str, bool]) -> frozenset[str]:
    """The Run fields a ProjectRuns page holds, given its flags (none given: all of them)."""
    if not flags:
        return _EVERY_FIELD
    return _ALWAYS | {name for name, flag in OPTIONAL_FIELDS.items() if flags[flag]}


def _field_flags(fields: Iterable[str] | None) -> dict[str, bool]:
    """ProjectRuns' include flags for the requested Run fields (None = all of them)."""
    if fields is None:
        return {}
    if isinstance(fields, str):
        fields = [f for f in fields.split(",") if f]
    wanted = {f.strip() for f in fields} - _ALWAYS - _DERIVED
    unknown = wanted - set(OPTIONAL_FIELDS)
    if unknown:
        raise UsageError(f"unknown run field(s) {sorted(unknown)}: choose from {', '.join(sorted(_ALWAYS))}, "
                         f"{', '.join(OPTIONAL_FIELDS)} (config and summary: use config_keys/summary_keys)")
    return {flag: name in wanted for name, flag in OPTIONAL_FIELDS.items()}


def _keys(keys: Sequence[str] | str | bool | None) -> tuple[bool, list[str] | None]:
    """Projection: (ask for it at all, which keys; None = all of them)."""
    if keys is None or keys is False:
        return False, None
    if keys is True or keys == "*" or list(keys) == ["*"]:
        return True, None
    if isinstance(keys, str):
        keys = [k for k in keys.split(",") if k]
    return True, list(keys)


def _json(query: Mapping[str, Any]) -> str:
    return orjson.dumps(query).decode()


class RunsMixin(ProjectsMixin):
    # -- reading -----------------------------------------------------------------------------
    async def runs(self, path: str, filters: Filters = None, where: str | None = None,
                   order: str = "+created_at", config_keys: Sequence[str] | str | bool | None = None,
                   summary_keys: Sequence[str] | str | bool | None = None,
                   fields: Iterable[str] | None = None, per_page: int = MAX_PAGE,
                   limit: int | None = None) -> AsyncIterator[Run]:
        """Every run matching the filter, in `order`, streamed from large pages (the next page is
        requested while the current one is consumed). Only what is asked travels: config and
        summary keys by `config_keys`/`summary_keys` (None: none, True: all), the other fields by
        `fields` (Run field names: state, tags, sweep, user, ...; None: all). `order` takes the
        same names (`-summary.val/acc`, `created_at`)."""
        query = resolve_filters(filters, where).filters
        flags = _field_flags(fields)
        _check_paging(per_page, limit)
        wire_order = compile_order(order)
        entity, project = await self.project_path(path)
        with_config, config = _keys(config_keys)
        with_summary, summary = _keys(summary_keys)
        variables = {"entity": entity, "project": project, "filters": _json(query), "order": wire_order,
                     "withConfig": with_config, "configKeys": config,
                     "withSummary": with_summary, "summaryKeys": summary, **flags}
        config_t = None if config is None else tuple(config)
        summary_t = None if summary is None else tuple(summary)
        base_url = self.settings.base_url
        fetched = _fetched(flags)
        from_node = Run.from_node
        async for batch in self._run_pages("ProjectRuns", variables, entity, project, per_page, limit):
            for node in batch:
                yield from_node(node, entity, project, base_url, config_keys=config_t, summary_keys=summary_t,
                                fetched=fetched)

    async def run_ids(self, path: str, filters: Filters = None, where: str | None = None,
                      order: str = "+created_at", per_page: int = MAX_PAGE,
                      limit: int | None = None) -> AsyncIterator[str]:
        """The run ids (names) matching the filter, asking the server for nothing else."""
        query = resolve_filters(filters, where).filters
        _check_paging(per_page, limit)
        entity, project = await self.project_path(path)
        variables = {"entity": entity, "project": project, "filters": _json(query), "order": compile_order(order)}
        async for batch in self._run_pages("ProjectRunIds", variables, entity, project, per_page, limit):
            for node in batch:
                yield node["name"]

    def _run_pages(self, operation: str, variables: dict[str, Any], entity: str, project: str,
                   per_page: int, limit: int | None) -> AsyncIterator[list[dict[str, Any]]]:
        async def fetch(after: str | None, first: int) -> Mapping[str, Any]:
            return await self._execute(operation, {**variables, "first": first, "after": after})

        def connection(data: Mapping[str, Any]) -> Mapping[str, Any]:
            if data.get("project") is None:
                raise _ProjectMissing()
            return data["project"]["runs"]

        async def pages() -> AsyncIterator[list[dict[str, Any]]]:
            try:
                async for batch in paginate(fetch, connection, per_page=per_page, limit=limit, what=operation):
                    yield batch
            except _ProjectMissing:
                raise await self._missing_project(entity, project) from None

        return pages()

    async def count_runs(self, path: str, filters: Filters = None,
                         where: str | None = None) -> int:
        query = resolve_filters(filters, where).filters
        entity, project = await self.project_path(path)
        data = await self._execute("ProjectRunCount", {"entity": entity, "project": project, "filters": _json(query)})
        if data.get("project") is None:
            raise await self._missing_project(entity, project)
        return int(data["project"]["runCount"])

    async def run(self, path: str) -> Run:
        """One run, everything about it, by any run path or URL (the run id, not the display name)."""
        entity, project, name = await self.run_path(path)
        data = await self._execute("ProjectRun", {"entity": entity, "project": project, "name": name})
        node = await self._run_node(data, entity, project, name,
                                    "use the run id (the last part of its URL), not its display name")
        return Run.from_node(node, entity, project, self.settings.base_url)

    async def _run_node(self, data: dict[str, Any], entity: str, project: str, name: str,
                        hint: str) -> dict[str, Any]:
        """`project { run }` of an answer; a missing project or run is NotFoundError (with `hint`)."""
        if data.get("project") is None:
            raise await self._missing_project(entity, project)
        node = data["project"]["run"]
        if node is None:
            raise NotFoundError(f"run {entity}/{project}/{name} not found", status=200, hint=hint)
        return dict(node)

    async def _live(self, entity: str, project: str, ids: Sequence[str]) -> dict[str, str]:
        """Run id -> storage id of the live runs among ids: how mutations pin what they act on."""
        async def batch(chunk: list[str]) -> list[dict[str, Any]]:
            variables = {"entity": entity, "project": project, "filters": _json({"name": {"$in": chunk}}),
                         "order": "+created_at"}
            return [node async for page in self._run_pages("ProjectRunIds", variables, entity, project,
                                                           MAX_PAGE, None) for node in page]

        chunks = [list(ids[s:s + _ID_BATCH]) for s in range(0, len(ids), _ID_BATCH)]
        found: dict[str, str] = {}
        for nodes in await asyncio.gather(*(batch(c) for c in chunks)):
            found.update((node["name"], node["id"]) for node in nodes)
        return found

    # -- writing -----------------------------------------------------------------------------
    # Outcomes are exact: what was already in the target state is `unchanged`; a request whose
    # answer was lost (the server may have committed) is re-checked before it is reported; only
    # what the re-check itself cannot see is `unknown`.

    async def update_runs(self, path: str, ids: Iterable[str], *, name: Any = UNSET, notes: Any = UNSET,
                          group: Any = UNSET, job_type: Any = UNSET, add_tags: Sequence[str] = (),
                          remove_tags: Sequence[str] = (), config: Any = UNSET,
                          summary: Any = UNSET, on_outcome: OutcomeHook | None = None) -> list[Outcome]:
        """Change only the given fields of each run (UNSET: leave alone). config/summary are
        merged into what is there; one Outcome per id (updated | unchanged | not_found | failed |
        unknown), each also handed to `on_outcome` as soon as it is known. A change of tags only
        goes through W&B's bulk modifyRuns."""
        entity, project = await self.project_path(path)
        ids = list(dict.fromkeys(ids))
        for label, value in (("config", config), ("summary", summary)):
            if value is not UNSET and not isinstance(value, dict):
                raise UsageError(f"{label} must be a dict of keys to merge")
        plain = {"displayName": name, "notes": notes, "groupName": group, "jobType": job_type}
        plain = {k: v for k, v in plain.items() if v is not UNSET}
        if not plain and not add_tags and not remove_tags and config is UNSET and summary is UNSET:
            raise UsageError("nothing to update: give at least one field to change")
        target = _Target(plain, tuple(add_tags), tuple(remove_tags),
                         None if config is UNSET else config, None if summary is UNSET else summary)

        live = await self._live(entity, project, ids)  # a missing project fails here, once
        report = _Report(ids, on_outcome)
        for run_id in ids:
            if run_id not in live:
                report(Outcome(run_id=run_id, status="not_found"))
        todo = [i for i in ids if i in live]
        if target.tags_only:
            await asyncio.gather(*(self._tag_batch(entity, project, chunk, live, target, report)
                                   for chunk in _chunks(todo, _BULK_BATCH)))
        else:
            await asyncio.gather(*(self._update_one(entity, project, run_id, target, report) for run_id in todo))
        return report.in_order()

    async def _update_one(self, entity: str, project: str, run_id: str, target: "_Target",
                          report: "_Report") -> None:
        path = f"{entity}/{project}/{run_id}"
        try:
            run = await self.run(path)
        except NotFoundError:
            return report(Outcome(run_id=run_id, status="not_found"))
        except _MUTATION_ERRORS as e:
            return report(Outcome(run_id=run_id, status="failed", error=str(e)))
        if target.reached(run):
            return report(Outcome(run_id=run_id, status="unchanged"))
        try:
            # Absolute values computed from what was read: sending them twice is harmless.
            await self._execute("UpsertBucket", {"input": target.fields(run)}, IDEMPOTENT)
            return report(Outcome(run_id=run_id, status="updated"))
        except GraphQLResponseError as e:
            return report(Outcome(run_id=run_id, status="failed", error=str(e)))
        except (TransportError, HTTPStatusError) as e:
            lost = e
        try:
            again = await self.run(path)
        except _MUTATION_ERRORS as e:
            return report(Outcome(run_id=run_id, status="unknown", error=f"{lost}; re-check failed: {e}"))
        if target.reached(again):
            return report(Outcome(run_id=run_id, status="updated"))
        return report(Outcome(run_id=run_id, status="failed", error=str(lost)))

    async def _tag_batch(self, entity: str, project: str, chunk: list[str], live: Mapping[str, str],
                         target: "_Target", report: "_Report") -> None:
        try:
            before = await self._tags(entity, project, chunk)
        except _MUTATION_ERRORS as e:
            for run_id in chunk:
                report(Outcome(run_id=run_id, status="failed", error=str(e)))
            return
        todo = []
        for run_id in chunk:
            if run_id not in before:
                report(Outcome(run_id=run_id, status="not_found"))
            elif target.tags_reached(before[run_id]):
                report(Outcome(run_id=run_id, status="unchanged"))
            else:
                todo.append(run_id)
        if not todo:
            return
        lost: Exception | None = None
        try:
            await self._execute("ModifyRuns", {"entity": entity, "project": project,
                                               "ids": [live[i] for i in todo], "addTags": list(target.add_tags),
                                               "removeTags": list(target.remove_tags)}, IDEMPOTENT)
        except GraphQLResponseError as e:
            if _lacks(e, "modifyRuns"):  # a server without the bulk mutation: one upsert per run
                await asyncio.gather(*(self._update_one(entity, project, i, target, report) for i in todo))
                return
            lost = e
        except (TransportError, HTTPStatusError) as e:
            lost = e
        try:
            after = await self._tags(entity, project, todo)
        except _MUTATION_ERRORS as e:
            status = "updated" if lost is None else "unknown"  # the server said yes; else nobody knows
            for run_id in todo:
                report(Outcome(run_id=run_id, status=status,
                               error=None if lost is None else f"{lost}; re-check failed: {e}"))
            return
        for run_id in todo:
            if run_id in after and target.tags_reached(after[run_id]):
                report(Outcome(run_id=run_id, status="updated"))
            elif run_id not in after:
                report(Outcome(run_id=run_id, status="not_found", error="gone before its tags changed"))
            else:
                report(Outcome(run_id=run_id, status="failed",
                               error=str(lost) if lost else "modifyRuns answered, but the tags did not change"))

    async def _tags(self, entity: str, project: str, ids: Sequence[str]) -> dict[str, list[str]]:
        return {run.name or "": list(run.tags or []) async for run in
                self.runs(f"{entity}/{project}", filters={"name": {"$in": list(ids)}}, fields=["tags"])}

    async def delete_runs(self, path: str, ids: Iterable[str], *, delete_artifacts: bool = False,
                          on_outcome: OutcomeHook | None = None) -> list[Outcome]:
        """Soft-delete the given runs (restorable within the server's retention period) with W&B's
        deleteRuns pinned to batches of the ids; one Outcome per id: deleted, unchanged (it was
        already deleted), not_found, failed, or unknown (the answer was lost and the re-check
        failed too), each also handed to `on_outcome` as soon as it is known."""
        entity, project = await self.project_path(path)
        ids = list(dict.fromkeys(ids))
        live = await self._live(entity, project, ids)
        report = _Report(ids, on_outcome)
        todo = [i for i in ids if i in live]
        await asyncio.gather(self._absent(entity, project, [i for i in ids if i not in live], report),
                             *(self._delete_batch(entity, project, chunk, live, delete_artifacts, report)
                               for chunk in _chunks(todo, _BULK_BATCH)))
        return report.in_order()

    async def _delete_batch(self, entity: str, project: str, chunk: list[str], live: Mapping[str, str],
                            delete_artifacts: bool, report: "_Report") -> None:
        lost: Exception | None = None
        try:
            await self._execute("DeleteRuns", {"entity": entity, "project": project, "deleteArtifacts": delete_artifacts,
                                               "filters": _json({"name": {"$in": chunk}})}, IDEMPOTENT)
        except GraphQLResponseError as e:
            if not _lacks(e, "deleteRuns"):
                lost = e
            else:  # a server without the bulk mutation: one deleteRun per run
                errors = await asyncio.gather(*(self._delete_one(live[i], delete_artifacts) for i in chunk))
                lost = next((x for x in errors if x is not None), None)
        except (TransportError, HTTPStatusError) as e:
            lost = e
        try:
            still = await self._live(entity, project, chunk)
        except _MUTATION_ERRORS as e:
            for run_id in chunk:
                if lost is None:  # the server said it deleted them
                    report(Outcome(run_id=run_id, status="deleted"))
                else:
                    report(Outcome(run_id=run_id, status="unknown", error=f"{lost}; re-check failed: {e}"))
            return
        for run_id in chunk:
            if run_id not in still:
                report(Outcome(run_id=run_id, status="deleted"))
            else:
                report(Outcome(run_id=run_id, status="failed",
                               error=str(lost) if lost else "deleteRuns answered, but the run is still there"))

    async def _delete_one(self, storage_id: str, delete_artifacts: bool) -> Exception | None:
        try:
            await self._execute("DeleteRun", {"id": storage_id, "deleteArtifacts": delete_artifacts}, IDEMPOTENT)
            return None
        except _MUTATION_ERRORS as e:
            return e

    async def _absent(self, entity: str, project: str, ids: Sequence[str], report: "_Report") -> None:
        """Runs that are not live: already deleted (unchanged) or never there / purged (not_found).
        W&B cannot list deleted runs, but deleteRun by a run's storage id succeeds on a deleted run
        (changing nothing) and fails on one that does not exist."""
        async def one(run_id: str) -> None:
            error = await self._delete_one(_storage_id(entity, project, run_id), False)
            if error is None:
                report(Outcome(run_id=run_id, status="unchanged"))
            elif isinstance(error, GraphQLResponseError):  # the server answered: no such run
                report(Outcome(run_id=run_id, status="not_found", error="no such run (or it was purged)"))
            else:  # no answer: whether it exists cannot be told
                report(Outcome(run_id=run_id, status="unknown", error=f"not live; checking it failed: {error}"))

        await asyncio.gather(*(one(i) for i in ids))

    async def restore_runs(self, path: str, ids: Iterable[str] | None = None, *,
                           filters: Filters = None, where: str | None = None,
                           every: bool = False, on_outcome: OutcomeHook | None = None) -> list[Outcome]:
        """Undelete runs with W&B's undeleteRuns (it restores by filter only). Each Outcome is
        also handed to `on_outcome`.

        By ids (the safe way: the ids of a delete's outcomes or its ledger): the filter is pinned
        to those ids, batched, and each id ends restored, unchanged (was not deleted), not_found,
        failed, or unknown (the answer was lost and the re-check failed too). By filter (deleted
        runs cannot be listed, so they cannot be resolved first): the live runs matching it are
        compared before and after, and every run that appeared is reported restored. An empty
        filter restores every deleted run, so it needs every=True."""
        entity, project = await self.project_path(path)
        if ids is None:
            outcomes = await self._restore_matching(entity, project, resolve_filters(filters, where).filters, every)
            for outcome in outcomes:
                if on_outcome is not None:
                    on_outcome(outcome)
            return outcomes
        if filters is not None or where is not None:
            raise UsageError("restore either ids or a filter, not both")
        ids = list(dict.fromkeys(ids))
        before = await self._live(entity, project, ids)
        report = _Report(ids, on_outcome)
        for run_id in ids:
            if run_id in before:
                report(Outcome(run_id=run_id, status="unchanged"))

        async def batch(chunk: list[str]) -> None:
            lost: Exception | None = None
            try:
                await self._undelete(entity, project, {"name": {"$in": chunk}})
            except _MUTATION_ERRORS as e:
                lost = e
            try:
                after = await self._live(entity, project, chunk)
            except _MUTATION_ERRORS as e:
                for run_id in chunk:
                    report(Outcome(run_id=run_id, status="unknown",
                                   error=f"{lost or 'undeleteRuns answered'}; re-check failed: {e}"))
                return
            for run_id in chunk:
                if run_id in after:
                    report(Outcome(run_id=run_id, status="restored"))
                elif lost is not None:
                    report(Outcome(run_id=run_id, status="failed", error=str(lost)))
                else:
                    report(Outcome(run_id=run_id, status="not_found"))

        todo = [i for i in ids if i not in before]
        await asyncio.gather(*(batch(chunk) for chunk in _chunks(todo, _BULK_BATCH)))
        return report.in_order()

    async def _restore_matching(self, entity: str, project: str, query: dict[str, Any],
                                every: bool) -> list[Outcome]:
        if not query and not every:
            raise UsageError("restoring by an empty filter would restore every deleted run",
                             hint="give a filter, or every=True (--all) if that is what you mean")
        path = f"{entity}/{project}"
        before = {name async for name in self.run_ids(path, filters=query)}
        await self._undelete(entity, project, query)
        after = {name async for name in self.run_ids(path, filters=query)}
        return [Outcome(run_id=name, status="restored") for name in sorted(after - before)]

    async def _undelete(self, entity: str, project: str, query: dict[str, Any]) -> None:
        await self._execute("UndeleteRuns", {"entity": entity, "project": project, "filters": _json(query)},
                            IDEMPOTENT)


class _Target:
    """What an update asks for, and whether a run already shows it."""

    def __init__(self, plain: dict[str, Any], add_tags: tuple[str, ...], remove_tags: tuple[str, ...],
                 config: dict[str, Any] | None, summary: dict[str, Any] | None) -> None:
        self.plain, self.add_tags, self.remove_tags = plain, add_tags, remove_tags
        self.config, self.summary = config, summary

    @property
    def tags_only(self) -> bool:
        return not self.plain and self.config is None and self.summary is None

    def tags_reached(self, tags: Sequence[str]) -> bool:
        return all(t in tags for t in self.add_tags) and not any(t in tags for t in self.remove_tags)

    def reached(self, run: Run) -> bool:
        if any(getattr(run, _PLAIN_ATTRS[k]) != v for k, v in self.plain.items()):
            return False
        if not self.tags_reached(run.tags or []):
            return False
        if self.config is not None and any(k not in run.config or run.config[k] != v for k, v in self.config.items()):
            return False
        return self.summary is None or all(k in run.summary and run.summary[k] == v for k, v in self.summary.items())

    def fields(self, run: Run) -> dict[str, Any]:
        """UpsertBucketInput for `run`: the plain fields, and whole tags/config/summary merged."""
        fields: dict[str, Any] = {"id": run.id, **self.plain}
        if self.add_tags or self.remove_tags:
            tags = [t for t in run.tags or [] if t not in self.remove_tags]
            fields["tags"] = tags + [t for t in self.add_tags if t not in tags]
        if self.config is not None:
            stored = orjson.loads(run.config_json or "{}")
            stored.update({k: {"value": v} for k, v in self.config.items()})
            fields["config"] = _json(stored)
        if self.summary is not None:
            fields["summaryMetrics"] = _json({**run.summary, **self.summary})
        return fields


_PLAIN_ATTRS = {"displayName": "display_name", "notes": "notes", "groupName": "group", "jobType": "job_type"}


class _Report:
    """Collects one Outcome per id and hands each to the hook the moment it is known."""

    def __init__(self, ids: Sequence[str], hook: "OutcomeHook | None") -> None:
        self._ids = ids
        self._hook = hook
        self._outcomes: dict[str, Outcome] = {}

    def __call__(self, outcome: Outcome) -> None:
        self._outcomes[outcome.run_id] = outcome
        if self._hook is not None:
            self._hook(outcome)

    def in_order(self) -> list[Outcome]:
        return [self._outcomes[i] for i in self._ids]


def _chunks(ids: Sequence[str], size: int) -> list[list[str]]:
    return [list(ids[s:s + size]) for s in range(0, len(ids), size)]


def _lacks(error: GraphQLResponseError, field_name: str) -> bool:
    """The server does not know the mutation at all (an older W&B server): fall back."""
    text = str(error)
    return field_name in text and "Cannot query field" in text


def _storage_id(entity: str, project: str, name: str) -> str:
    """W&B's storage id of a run (base64 of "Run:v1:<name>:<project>:<entity>")."""
    import base64

    return base64.b64encode(f"Run:v1:{name}:{project}:{entity}".encode()).decode()


OutcomeHook = Callable[[Outcome], object]
"""on_outcome(outcome): called once per run as soon as its outcome is known (progress, ledgers)."""


class _ProjectMissing(Exception):
    """Raised inside the paginator; turned into NotFoundError (with its hint) outside it."""


def _check_paging(per_page: int, limit: int | None) -> None:
    if not 1 <= per_page <= MAX_PAGE:
        raise UsageError(f"per_page must be between 1 and {MAX_PAGE}, not {per_page}")
    if limit is not None and limit < 0:
        raise UsageError(f"limit must be 0 or more, not {limit}")
