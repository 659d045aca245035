"""Runs: list (streamed, projected), count, one, ids only; update, delete, restore by pinned ids.

Mutations never act on a bare filter: the ids are resolved first (ProjectRunIds), the calls act
on those, and every id ends with its own Outcome, so one failure never hides the others.
"""

from __future__ import annotations

import asyncio
from typing import Any, AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence

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
_ID_BATCH = 500      # ids per `name $in [...]` lookup
_RESTORE_BATCH = 100  # ids per undeleteRuns filter
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
        if data.get("project") is None:
            raise await self._missing_project(entity, project)
        node = data["project"]["run"]
        if node is None:
            raise NotFoundError(f"run {entity}/{project}/{name} not found", status=200,
                                hint="use the run id (the last part of its URL), not its display name")
        return Run.from_node(node, entity, project, self.settings.base_url)

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
    async def update_runs(self, path: str, ids: Iterable[str], *, name: Any = UNSET, notes: Any = UNSET,
                          group: Any = UNSET, job_type: Any = UNSET, add_tags: Sequence[str] = (),
                          remove_tags: Sequence[str] = (), config: Any = UNSET,
                          summary: Any = UNSET, on_outcome: OutcomeHook | None = None) -> list[Outcome]:
        """Change only the given fields of each run (UNSET: leave alone). config/summary are
        merged into what is there; one Outcome per id (updated | not_found | failed), each also
        handed to `on_outcome` as soon as it is known."""
        entity, project = await self.project_path(path)
        ids = list(dict.fromkeys(ids))
        for label, value in (("config", config), ("summary", summary)):
            if value is not UNSET and not isinstance(value, dict):
                raise UsageError(f"{label} must be a dict of keys to merge")
        plain = {"displayName": name, "notes": notes, "groupName": group, "jobType": job_type}
        plain = {k: v for k, v in plain.items() if v is not UNSET}
        if not plain and not add_tags and not remove_tags and config is UNSET and summary is UNSET:
            raise UsageError("nothing to update: give at least one field to change")

        live = await self._live(entity, project, ids)  # a missing project fails here, once

        @_reported(on_outcome)
        async def one(run_id: str) -> Outcome:
            if run_id not in live:
                return Outcome(run_id=run_id, status="not_found")
            try:
                run = await self.run(f"{entity}/{project}/{run_id}")
                fields: dict[str, Any] = {"id": run.id, **plain}
                if add_tags or remove_tags:
                    tags = [t for t in run.tags or [] if t not in remove_tags]
                    fields["tags"] = tags + [t for t in add_tags if t not in tags]
                if config is not UNSET:
                    stored = orjson.loads(run.config_json or "{}")
                    stored.update({k: {"value": v} for k, v in config.items()})
                    fields["config"] = _json(stored)
                if summary is not UNSET:
                    fields["summaryMetrics"] = _json({**run.summary, **summary})
                await self._execute("UpsertBucket", {"input": fields}, IDEMPOTENT)
                return Outcome(run_id=run_id, status="updated")
            except NotFoundError:
                return Outcome(run_id=run_id, status="not_found")
            except _MUTATION_ERRORS as e:
                return Outcome(run_id=run_id, status="failed", error=str(e))

        return list(await asyncio.gather(*(one(i) for i in ids)))

    async def delete_runs(self, path: str, ids: Iterable[str], *, delete_artifacts: bool = False,
                          on_outcome: OutcomeHook | None = None) -> list[Outcome]:
        """Soft-delete the given runs (restorable within the server's retention period); one
        Outcome per id (deleted | not_found | failed), each also handed to `on_outcome` as soon
        as it is known."""
        entity, project = await self.project_path(path)
        ids = list(dict.fromkeys(ids))
        live = await self._live(entity, project, ids)

        @_reported(on_outcome)
        async def one(run_id: str) -> Outcome:
            storage_id = live.get(run_id)
            if storage_id is None:
                return Outcome(run_id=run_id, status="not_found")
            try:
                await self._execute("DeleteRun", {"id": storage_id, "deleteArtifacts": delete_artifacts}, IDEMPOTENT)
                return Outcome(run_id=run_id, status="deleted")
            except _MUTATION_ERRORS as e:
                return Outcome(run_id=run_id, status="failed", error=str(e))

        return list(await asyncio.gather(*(one(i) for i in ids)))

    async def restore_runs(self, path: str, ids: Iterable[str] | None = None, *,
                           filters: Filters = None, where: str | None = None,
                           every: bool = False, on_outcome: OutcomeHook | None = None) -> list[Outcome]:
        """Undelete runs with W&B's undeleteRuns (it restores by filter only). Each Outcome is
        also handed to `on_outcome`.

        By ids (the safe way: the ids of a delete's outcomes or its ledger): the filter is pinned
        to those ids, batched, and each id ends restored, unchanged (was not deleted), not_found
        or failed. By filter (deleted runs cannot be listed, so they cannot be resolved first):
        the live runs matching it are compared before and after, and every run that appeared is
        reported restored. An empty filter restores every deleted run, so it needs every=True."""
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
        todo = [i for i in ids if i not in before]
        failed: dict[str, str] = {}

        async def batch(chunk: list[str]) -> None:
            try:
                await self._undelete(entity, project, {"name": {"$in": chunk}})
            except _MUTATION_ERRORS as e:
                failed.update({i: str(e) for i in chunk})

        await asyncio.gather(*(batch(todo[s:s + _RESTORE_BATCH]) for s in range(0, len(todo), _RESTORE_BATCH)))
        after = await self._live(entity, project, todo)
        outcomes = []
        for run_id in ids:
            if run_id in before:
                outcomes.append(Outcome(run_id=run_id, status="unchanged"))
            elif run_id in after:
                outcomes.append(Outcome(run_id=run_id, status="restored"))
            elif run_id in failed:
                outcomes.append(Outcome(run_id=run_id, status="failed", error=failed[run_id]))
            else:
                outcomes.append(Outcome(run_id=run_id, status="not_found"))
            if on_outcome is not None:
                on_outcome(outcomes[-1])
        return outcomes

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


OutcomeHook = Callable[[Outcome], object]
"""on_outcome(outcome): called once per run as soon as its outcome is known (progress, ledgers)."""


def _reported(hook: OutcomeHook | None) -> Callable[[Callable[[str], Awaitable[Outcome]]],
                                                   Callable[[str], Awaitable[Outcome]]]:
    def wrap(one: Callable[[str], Awaitable[Outcome]]) -> Callable[[str], Awaitable[Outcome]]:
        if hook is None:
            return one

        async def reported(run_id: str) -> Outcome:
            outcome = await one(run_id)
            hook(outcome)
            return outcome

        return reported

    return wrap


class _ProjectMissing(Exception):
    """Raised inside the paginator; turned into NotFoundError (with its hint) outside it."""


def _check_paging(per_page: int, limit: int | None) -> None:
    if not 1 <= per_page <= MAX_PAGE:
        raise UsageError(f"per_page must be between 1 and {MAX_PAGE}, not {per_page}")
    if limit is not None and limit < 0:
        raise UsageError(f"limit must be 0 or more, not {limit}")
