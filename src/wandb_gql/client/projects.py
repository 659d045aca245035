"""Who and where: the viewer, the default entity, paths, an entity's projects, and the hint
that names the closest existing project when one is not found."""

from __future__ import annotations

import difflib
from typing import Any, AsyncIterator, Mapping

from ..errors import NotFoundError, WandbGQLError
from ..models import Project, Viewer
from ..paths import parse_project_path, parse_run_path
from ._base import ClientBase
from ._paging import paginate

PROJECTS_PAGE = 100


class ProjectsMixin(ClientBase):
    async def viewer(self) -> Viewer:
        """The user the API key belongs to, with their default entity and teams."""
        node = (await self._execute("Viewer"))["viewer"]
        if node is None:
            raise NotFoundError("the server knows no user for this API key", status=200)
        viewer = Viewer.from_node(node)
        if self._entity is None:
            self._entity = viewer.entity
        return viewer

    async def _default_entity(self) -> str:
        if self._entity is None:
            await self.viewer()
        if not self._entity:
            raise NotFoundError("this user has no default entity", status=200,
                                hint="give the entity in the path (ENTITY/PROJECT) or set --entity / WANDB_ENTITY")
        return self._entity

    async def project_path(self, path: str) -> tuple[str, str]:
        """(entity, project) of any project path or URL; the entity defaults to the setting,
        else the viewer's. UsageError (nothing sent) when the path cannot be read."""
        entity, project = parse_project_path(path)
        return entity or await self._default_entity(), project

    async def run_path(self, path: str) -> tuple[str, str, str]:
        """(entity, project, run id) of any run path or URL, with the same default entity."""
        entity, project, run = parse_run_path(path)
        return entity or await self._default_entity(), project, run

    async def projects(self, entity: str | None = None) -> AsyncIterator[Project]:
        """Every project of `entity` (default: the default entity), with its run count and
        last activity, paged like every listing."""
        name = entity or await self._default_entity()

        async def fetch(after: str | None, first: int) -> Mapping[str, Any]:
            return await self._execute("EntityProjects", {"entity": name, "first": first, "after": after})

        def connection(data: Mapping[str, Any]) -> Mapping[str, Any]:
            if data.get("entity") is None:
                raise NotFoundError(f"entity {name} not found", status=200,
                                    hint="check the name (a user or team; wbgql whoami lists yours)")
            projects = data["entity"]["projects"]
            if projects is None:
                raise NotFoundError(f"entity {name} has no projects to list", status=200)
            return projects

        async for batch in paginate(fetch, connection, per_page=PROJECTS_PAGE, what="EntityProjects"):
            for node in batch:
                yield Project.from_node(node, name)

    async def _missing_project(self, entity: str, project: str) -> NotFoundError:
        """NotFoundError for entity/project, naming the closest projects that do exist."""
        hint = "check the entity and project names (wbgql projects list ENTITY)"
        try:
            names = [p.name async for p in self.projects(entity)]
        except NotFoundError:
            hint = f"no entity named {entity}: check it, or pass ENTITY/PROJECT"
        except WandbGQLError:
            pass  # the hint is a courtesy: the error itself is what matters
        else:
            close = difflib.get_close_matches(project, names, n=3, cutoff=0.6)
            if close:
                hint = "did you mean " + " or ".join(f"{entity}/{c}" for c in close) + "?"
            elif names:
                shown = ", ".join(sorted(names)[:8]) + (", ..." if len(names) > 8 else "")
                hint = f"{entity} has: {shown}"
            else:
                hint = f"{entity} has no projects yet"
        return NotFoundError(f"project {entity}/{project} not found", status=200, hint=hint)
