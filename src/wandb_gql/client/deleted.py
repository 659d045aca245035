"""Soft-deleted runs, where the server can list them (the local server can; W&B cannot).

W&B's deletion hides a run until its retention period purges it, and its API has no way to list
what is hidden. The local server answers `Project.deletedRuns` and `Run.purgeAt` (local
extensions of the schema); against a server without them the listing says so instead of
pretending there is nothing deleted.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, AsyncIterator, Mapping

import orjson

from ..errors import GraphQLResponseError, HTTPStatusError, UsageError
from ..filters import resolve_filters
from ._base import MAX_PAGE
from ._paging import paginate
from .projects import ProjectsMixin
from .runs import Filters

OPERATION = "ProjectDeletedRuns"


@dataclass(frozen=True, slots=True)
class DeletedRun:
    """One soft-deleted run: restorable with undeleteRuns until `purge_at` (W&B time, UTC)."""

    name: str  # the run id
    display_name: str | None
    state: str | None
    deleted_at: str
    purge_at: str | None  # from then on the server's purge may remove it for good
    created_at: str | None = None

    @classmethod
    def from_node(cls, node: Mapping[str, Any]) -> "DeletedRun":
        return cls(name=node["name"], display_name=node.get("displayName"), state=node.get("state"),
                   deleted_at=node["deletedAt"], purge_at=node.get("purgeAt"), created_at=node.get("createdAt"))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class _ProjectMissing(Exception):
    """Raised inside the paginator; turned into NotFoundError (with its hint) outside it."""


def _lacks_extension(error: HTTPStatusError | GraphQLResponseError) -> bool:
    messages = [str(e.get("message", "")) if isinstance(e, dict) else str(e) for e in error.errors]
    return any("Cannot query field" in m and ("deletedRuns" in m or "purgeAt" in m)
               for m in messages or [error.message])


class DeletedRunsMixin(ProjectsMixin):
    async def deleted_runs(self, path: str, *, filters: Filters = None, where: str | None = None,
                           limit: int | None = None) -> AsyncIterator[DeletedRun]:
        """The soft-deleted runs of a project, the most recently deleted first, with when each
        was deleted and when the purge may remove it (`filters`/`where` narrow them as for
        runs()). Only servers that can list deleted runs answer; for W&B this raises UsageError."""
        if limit is not None and limit < 0:
            raise UsageError(f"limit must be 0 or more, not {limit}")
        query = resolve_filters(filters, where).filters
        entity, project = await self.project_path(path)
        variables = {"entity": entity, "project": project, "filters": orjson.dumps(query).decode()}

        async def fetch(after: str | None, first: int) -> Mapping[str, Any]:
            return await self._execute(OPERATION, {**variables, "first": first, "after": after})

        def connection(data: Mapping[str, Any]) -> Mapping[str, Any]:
            if data.get("project") is None:
                raise _ProjectMissing()
            return data["project"]["deletedRuns"]

        try:
            async for batch in paginate(fetch, connection, per_page=MAX_PAGE, limit=limit, what=OPERATION):
                for node in batch:
                    yield DeletedRun.from_node(node)
        except _ProjectMissing:
            raise await self._missing_project(entity, project) from None
        except (HTTPStatusError, GraphQLResponseError) as e:
            if not _lacks_extension(e):
                raise
            raise UsageError(
                f"this server cannot list deleted runs (W&B cannot): {self.settings.base_url} has no"
                " Project.deletedRuns", hint="W&B restores by filter only (wbgql runs restore PATH --where ...);"
                " runs deleted by wbgql come back exactly with wbgql runs restore --ledger LEDGER") from None
