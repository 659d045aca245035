"""Client: one async method per operation family, each backed by documents in queries/.

    async with Client() as client:                      # settings: flag > env > netrc
        async for run in client.runs("demo/vision", where="state = crashed", summary_keys=["loss"]):
            print(run.name, run.summary["loss"])

Mutations act on explicit run ids, resolved first; bulk calls return one Outcome per id.
"""

from __future__ import annotations

import asyncio
import enum
from typing import Any, AsyncIterator, Iterable, Sequence

import orjson

from .filters import resolve_filters
from .errors import GraphQLResponseError, HTTPStatusError, NotFoundError, TransportError, UsageError
from .models import RUN_FIELDS, Outcome, Run, parse_path
from .settings import Settings
from .transport import IDEMPOTENT, READ, Transport


class _Unset(enum.Enum):
    UNSET = "UNSET"

    def __repr__(self) -> str:
        return "UNSET"


UNSET = _Unset.UNSET  # "leave this field alone", distinct from None
MAX_PAGE = 1000
_ID_BATCH = 500
# Run fields a listing may leave out (ProjectRuns' $with<Field> flags); id and name always come.
OPTIONAL_FIELDS = {f.name: f.flag for f in RUN_FIELDS if f.optional}


def _field_flags(fields: Iterable[str] | None) -> dict[str, bool]:
    """ProjectRuns' include flags for the requested Run fields (None = all of them)."""
    if fields is None:
        return {}
    wanted = set(fields) - {"id", "name"}
    unknown = wanted - set(OPTIONAL_FIELDS)
    if unknown:
        raise UsageError(f"unknown run field(s) {sorted(unknown)}: choose from id, name, "
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


class Client:
    def __init__(self, base_url: str | None = None, api_key: str | None = None, entity: str | None = None, *,
                 timeout: float | None = None, insecure: bool = False, concurrency: int = 8,
                 settings: Settings | None = None) -> None:
        self.settings = settings or Settings.resolve(base_url, api_key, entity, timeout, insecure)
        if concurrency < 1:
            raise UsageError(f"concurrency must be at least 1, not {concurrency}")
        self.transport = Transport(self.settings, concurrency=concurrency)
        self._entity: str | None = self.settings.entity

    async def __aenter__(self) -> "Client":
        await self.transport.__aenter__()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.transport.__aexit__(*exc)

    # -- who and where -----------------------------------------------------------------------
    async def viewer(self) -> dict[str, Any]:
        viewer = (await self.transport.execute("Viewer"))["viewer"]
        if viewer is None:
            raise NotFoundError("the server knows no user for this API key", status=200)
        return viewer

    async def project_path(self, path: str) -> tuple[str, str]:
        """(entity, project) of "entity/project" or "project" (entity: the setting, else the viewer's)."""
        if self._entity is None and path.strip("/").count("/") == 0:
            self._entity = (await self.viewer())["entity"]
        entity, project = parse_path(path, 2, "project", self._entity)
        return entity, project

    @staticmethod
    def _missing_project(entity: str, project: str) -> NotFoundError:
        return NotFoundError(f"project {entity}/{project} not found", status=200,
                             hint="check the entity and project names (wbgql runs list ENTITY/PROJECT)")

    # -- reading -----------------------------------------------------------------------------
    async def runs(self, path: str, filters: dict[str, Any] | str | None = None, where: str | None = None,
                   order: str = "+created_at", config_keys: Sequence[str] | str | bool | None = None,
                   summary_keys: Sequence[str] | str | bool | None = None,
                   fields: Iterable[str] | None = None, per_page: int = MAX_PAGE,
                   limit: int | None = None) -> AsyncIterator[Run]:
        """Every run matching the filter, in order, fetched in large pages (the next page is
        requested while the current one is consumed). Only what is asked travels: config and
        summary keys by `config_keys`/`summary_keys` (None: none, True: all), the other fields by
        `fields` (snake_case Run field names; None: all). Duplicate ids are dropped; a cursor that
        does not advance is an error, not an endless loop."""
        query = resolve_filters(filters, where)
        flags = _field_flags(fields)
        if not 1 <= per_page <= MAX_PAGE:
            raise UsageError(f"per_page must be between 1 and {MAX_PAGE}, not {per_page}")
        if limit is not None and limit < 0:
            raise UsageError(f"limit must be 0 or more, not {limit}")
        entity, project = await self.project_path(path)
        with_config, config = _keys(config_keys)
        with_summary, summary = _keys(summary_keys)
        variables = {"entity": entity, "project": project, "filters": orjson.dumps(query).decode(),
                     "order": order, "withConfig": with_config, "configKeys": config,
                     "withSummary": with_summary, "summaryKeys": summary, **flags}
        remaining = limit

        def fetch(after: str | None) -> asyncio.Task:
            first = per_page if remaining is None else max(1, min(per_page, remaining))
            return asyncio.ensure_future(
                self.transport.execute("ProjectRuns", {**variables, "first": first, "after": after}, READ))

        seen: set[str] = set()
        pending = fetch(None) if remaining != 0 else None
        after: str | None = None
        try:
            while pending is not None:
                data = await pending
                pending = None
                if data.get("project") is None:
                    raise self._missing_project(entity, project)
                page = data["project"]["runs"]
                info = page["pageInfo"]
                if info["hasNextPage"]:
                    if not page["edges"] or info["endCursor"] in (None, after):
                        raise TransportError("the server's cursor did not advance; stopping instead of looping")
                    after = info["endCursor"]
                    left = None if remaining is None else remaining - len(page["edges"])
                    if left is None or left > 0:
                        remaining = left
                        pending = fetch(after)
                base_url = self.settings.base_url
                for i, edge in enumerate(page["edges"]):
                    if i % 50 == 0:
                        # Yielding runs gives the event loop no turn: give it one now and then, so
                        # the next page's request goes out and the server works while we parse.
                        await asyncio.sleep(0)
                    node = edge["node"]
                    if node["id"] in seen:
                        continue
                    seen.add(node["id"])
                    yield Run.from_node(node, entity, project, base_url,
                                        config_keys=None if config is None else tuple(config),
                                        summary_keys=None if summary is None else tuple(summary))
                    if limit is not None and len(seen) >= limit:
                        return
        finally:
            if pending is not None:
                pending.cancel()

    async def count_runs(self, path: str, filters: dict[str, Any] | str | None = None,
                         where: str | None = None) -> int:
        query = resolve_filters(filters, where)
        entity, project = await self.project_path(path)
        data = await self.transport.execute("ProjectRunCount", {
            "entity": entity, "project": project, "filters": orjson.dumps(query).decode()})
        if data.get("project") is None:
            raise self._missing_project(entity, project)
        return data["project"]["runCount"]

    async def run(self, path: str) -> Run:
        """One run by 'entity/project/run_id' (the id, not the display name)."""
        if self._entity is None and path.strip("/").count("/") == 1:
            self._entity = (await self.viewer())["entity"]
        entity, project, name = parse_path(path, 3, "run", self._entity)
        data = await self.transport.execute("ProjectRun", {"entity": entity, "project": project, "name": name})
        if data.get("project") is None:
            raise self._missing_project(entity, project)
        node = data["project"]["run"]
        if node is None:
            raise NotFoundError(f"run {entity}/{project}/{name} not found", status=200,
                                hint="use the run id (the last part of its URL), not its display name")
        return Run.from_node(node, entity, project, self.settings.base_url)

    async def _live(self, entity: str, project: str, ids: Sequence[str]) -> dict[str, Run]:
        """The live runs among ids, by id: how mutations pin what they act on."""
        found: dict[str, Run] = {}
        for start in range(0, len(ids), _ID_BATCH):
            batch = list(ids[start:start + _ID_BATCH])
            async for run in self.runs(f"{entity}/{project}", filters={"name": {"$in": batch}}, fields=()):
                found[run.name] = run
        return found

    # -- writing -----------------------------------------------------------------------------
    async def update_runs(self, path: str, ids: Iterable[str], *, name: Any = UNSET, notes: Any = UNSET,
                          group: Any = UNSET, job_type: Any = UNSET, add_tags: Sequence[str] = (),
                          remove_tags: Sequence[str] = (), config: Any = UNSET,
                          summary: Any = UNSET) -> list[Outcome]:
        """Change only the given fields of each run. config/summary are merged into what is there."""
        entity, project = await self.project_path(path)
        ids = list(dict.fromkeys(ids))
        for label, value in (("config", config), ("summary", summary)):
            if value is not UNSET and not isinstance(value, dict):
                raise UsageError(f"{label} must be a dict of keys to merge")
        plain = {"displayName": name, "notes": notes, "groupName": group, "jobType": job_type}
        plain = {k: v for k, v in plain.items() if v is not UNSET}
        if not plain and not add_tags and not remove_tags and config is UNSET and summary is UNSET:
            raise UsageError("nothing to update: give at least one field to change")

        async def one(run_id: str) -> Outcome:
            try:
                run = await self.run(f"{entity}/{project}/{run_id}")
                fields: dict[str, Any] = {"id": run.id, **plain}
                if add_tags or remove_tags:
                    tags = [t for t in run.tags or [] if t not in remove_tags]
                    fields["tags"] = tags + [t for t in add_tags if t not in tags]
                if config is not UNSET:
                    stored = orjson.loads(run.config_json or "{}")
                    stored.update({k: {"value": v} for k, v in config.items()})
                    fields["config"] = orjson.dumps(stored).decode()
                if summary is not UNSET:
                    fields["summaryMetrics"] = orjson.dumps({**run.summary, **summary}).decode()
                await self.transport.execute("UpsertBucket", {"input": fields}, IDEMPOTENT)
                return Outcome(run_id=run_id, status="updated")
            except NotFoundError:
                return Outcome(run_id=run_id, status="not_found")
            except (GraphQLResponseError, TransportError, HTTPStatusError) as e:
                return Outcome(run_id=run_id, status="failed", error=str(e))

        return list(await asyncio.gather(*(one(i) for i in ids)))

    async def delete_runs(self, path: str, ids: Iterable[str], *, delete_artifacts: bool = False) -> list[Outcome]:
        """Soft-delete the given runs (restorable within the server's retention period)."""
        entity, project = await self.project_path(path)
        ids = list(dict.fromkeys(ids))
        live = await self._live(entity, project, ids)

        async def one(run_id: str) -> Outcome:
            run = live.get(run_id)
            if run is None:
                return Outcome(run_id=run_id, status="not_found")
            try:
                await self.transport.execute("DeleteRun", {"id": run.id, "deleteArtifacts": delete_artifacts},
                                             IDEMPOTENT)
                return Outcome(run_id=run_id, status="deleted")
            except (GraphQLResponseError, TransportError, HTTPStatusError) as e:
                return Outcome(run_id=run_id, status="failed", error=str(e))

        return list(await asyncio.gather(*(one(i) for i in ids)))

    async def restore_runs(self, path: str, ids: Iterable[str] | None = None, *,
                           filters: dict[str, Any] | str | None = None, where: str | None = None,
                           every: bool = False) -> list[Outcome]:
        """Undelete runs with W&B's undeleteRuns (it restores by filter only).

        By ids (the safe way: the ids of a delete's outcomes or its ledger): the filter is pinned
        to those ids, batched, and each id ends restored, unchanged (was not deleted), not_found
        or failed. By filter (deleted runs cannot be listed, so they cannot be resolved first):
        the live runs matching it are compared before and after, and every run that appeared is
        reported restored. An empty filter restores every deleted run, so it needs every=True."""
        entity, project = await self.project_path(path)
        if ids is None:
            return await self._restore_matching(entity, project, resolve_filters(filters, where), every)
        if filters is not None or where is not None:
            raise UsageError("restore either ids or a filter, not both")
        ids = list(dict.fromkeys(ids))
        before = await self._live(entity, project, ids)
        todo = [i for i in ids if i not in before]
        failed: dict[str, str] = {}

        async def batch(chunk: list[str]) -> None:
            try:
                await self._undelete(entity, project, {"name": {"$in": chunk}})
            except (GraphQLResponseError, TransportError, HTTPStatusError) as e:
                failed.update({i: str(e) for i in chunk})

        await asyncio.gather(*(batch(todo[s:s + 100]) for s in range(0, len(todo), 100)))
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
        return outcomes

    async def _restore_matching(self, entity: str, project: str, query: dict[str, Any],
                                every: bool) -> list[Outcome]:
        if not query and not every:
            raise UsageError("restoring by an empty filter would restore every deleted run",
                             hint="give a filter, or every=True (--all) if that is what you mean")

        async def live() -> set[str]:
            return {run.name async for run in self.runs(f"{entity}/{project}", filters=query, fields=())}

        before = await live()
        await self._undelete(entity, project, query)
        return [Outcome(run_id=name, status="restored") for name in sorted(await live() - before)]

    async def _undelete(self, entity: str, project: str, query: dict[str, Any]) -> None:
        await self.transport.execute("UndeleteRuns", {
            "entity": entity, "project": project, "filters": orjson.dumps(query).decode()}, IDEMPOTENT)


__all__ = ["Client", "UNSET", "OPTIONAL_FIELDS"]
