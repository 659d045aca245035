"""Artifacts: versions of a project, their lineage, and the runs that logged or used them.

A version is named as W&B names it: ENTITY/PROJECT/COLLECTION:vN or ENTITY/PROJECT/COLLECTION:ALIAS.
W&B's run filter cannot say "used this artifact", so runs_using/runs_logging answer from the
artifact's side (usedBy / createdBy) and callers pin the run ids they get.
"""

from __future__ import annotations

import difflib
import re
from typing import Any, AsyncIterator, Mapping

from ..errors import GraphQLResponseError, HTTPStatusError, NotFoundError, TransportError, UsageError, WandbGQLError
from ..models import Artifact, Lineage, Outcome
from ..transport import IDEMPOTENT
from ._base import MAX_PAGE
from ._paging import merge_sorted, paginate
from .projects import ProjectsMixin

COLLECTIONS_PAGE = 100
REF_FORMS = "ENTITY/PROJECT/COLLECTION:vN or ENTITY/PROJECT/COLLECTION:ALIAS (e.g. demo/vision/features:v1)"
_NAME = re.compile(r"^[A-Za-z0-9_.\-]+:[A-Za-z0-9_.\-]+$")


def parse_artifact_ref(ref: str) -> tuple[str | None, str, str]:
    """(entity or None, project, COLLECTION:ALIAS); UsageError (nothing sent) when it cannot be read."""
    parts = ref.strip().strip("/").split("/") if isinstance(ref, str) else []
    if len(parts) not in (2, 3) or not _NAME.match(parts[-1]) or not all(parts):
        hint = f"expected {REF_FORMS}"
        if parts and ":" not in parts[-1]:
            hint = f"name a version or alias: {parts[-1]}:v0, {parts[-1]}:latest ({REF_FORMS})"
        raise UsageError(f"cannot read artifact reference {ref!r}", hint=hint)
    return (parts[0] if len(parts) == 3 else None), parts[-2], parts[-1]


def check_artifact_name(name: str) -> str:
    """COLLECTION:vN or COLLECTION:ALIAS (a run listing's --uses/--logged), else UsageError."""
    if not isinstance(name, str) or not _NAME.match(name.strip()):
        raise UsageError(f"cannot read artifact name {name!r}",
                         hint="give COLLECTION:vN or COLLECTION:ALIAS, e.g. features:v1 or resnet-checkpoints:best")
    return name.strip()


class ArtifactsMixin(ProjectsMixin):
    async def artifact_ref(self, ref: str) -> tuple[str, str, str]:
        """(entity, project, COLLECTION:ALIAS) of a reference; the entity defaults as for paths."""
        entity, project, name = parse_artifact_ref(ref)
        return entity or await self._default_entity(), project, name

    async def artifacts(self, path: str, *, type: str | None = None, collection: str | None = None,
                        limit: int | None = None) -> AsyncIterator[Artifact]:
        """Every version of every collection in the project (or only those of `type` / of the
        `collection`), newest first across collections (created_at, then collection name, then
        version, all descending). Streamed: each collection's versions arrive newest first from
        its own pages and are merged as they come, so memory holds one page per collection,
        never every version."""
        if limit is not None and limit < 0:
            raise UsageError(f"limit must be 0 or more, not {limit}")
        if limit == 0:
            return
        entity, project = await self.project_path(path)
        if collection is not None:
            names = [collection]
        else:
            names = [c async for c, t in self._collections(entity, project) if type is None or t == type]
        streams = [_of_type(self._versions(entity, project, name, limit), type) for name in names]
        handed = 0
        async for artifact in merge_sorted(streams, key=_newest_key, reverse=True):
            yield artifact
            handed += 1
            if limit is not None and handed >= limit:
                return

    async def artifact_collections(self, path: str, *, type: str | None = None) -> AsyncIterator[str]:
        """The names of the project's artifact collections (of `type`), oldest first, versions
        or not: a collection whose versions were all deleted is still listed."""
        entity, project = await self.project_path(path)
        async for name, kind in self._collections(entity, project):
            if type is None or kind == type:
                yield name

    async def _collections(self, entity: str, project: str) -> AsyncIterator[tuple[str, str]]:
        async def fetch(after: str | None, first: int) -> Mapping[str, Any]:
            return await self._execute("ProjectArtifactCollections",
                                       {"entity": entity, "project": project, "first": first, "after": after})

        def connection(data: Mapping[str, Any]) -> Mapping[str, Any]:
            if data.get("project") is None:
                raise _Missing()
            return data["project"]["artifactCollections"]

        try:
            async for batch in paginate(fetch, connection, per_page=COLLECTIONS_PAGE,
                                        what="ProjectArtifactCollections"):
                for node in batch:
                    yield node["name"], (node.get("defaultArtifactType") or {}).get("name") or ""
        except _Missing:
            raise await self._missing_project(entity, project) from None

    async def _versions(self, entity: str, project: str, collection: str,
                        limit: int | None) -> AsyncIterator[Artifact]:
        meta: dict[str, str] = {}

        async def fetch(after: str | None, first: int) -> Mapping[str, Any]:
            return await self._execute("ArtifactCollectionVersions", {"entity": entity, "project": project,
                                       "collection": collection, "first": first, "after": after})

        def connection(data: Mapping[str, Any]) -> Mapping[str, Any]:
            if data.get("project") is None:
                raise _Missing()
            found = data["project"]["artifactCollection"]
            if found is None:
                raise _NoCollection()
            meta["type"] = (found.get("defaultArtifactType") or {}).get("name") or ""
            return found["artifacts"]

        try:
            async for batch in paginate(fetch, connection, per_page=MAX_PAGE, limit=limit,
                                        what="ArtifactCollectionVersions"):
                for node in batch:
                    yield Artifact.from_node(node, entity, project, collection, meta["type"])
        except _Missing:
            raise await self._missing_project(entity, project) from None
        except _NoCollection:
            raise await self._missing_artifact(entity, project, collection) from None

    async def artifact(self, ref: str) -> Artifact:
        """One version by ENTITY/PROJECT/COLLECTION:vN or :ALIAS (NotFoundError naming close names)."""
        entity, project, name = await self.artifact_ref(ref)
        data = await self._execute("ProjectArtifact", {"entity": entity, "project": project, "name": name})
        if data.get("project") is None:
            raise await self._missing_project(entity, project)
        node = data["project"]["artifact"]
        if node is None:
            raise await self._missing_artifact(entity, project, name)
        return Artifact.from_node(node, entity, project)

    async def _missing_artifact(self, entity: str, project: str, name: str) -> NotFoundError:
        collection, _, alias = name.partition(":")
        message = f"artifact {entity}/{project}/{name} not found"
        hint = f"list them: wbgql artifacts list {entity}/{project}"
        try:
            collections = [c async for c, _t in self._collections(entity, project)]
            if collection in collections and alias:
                versions = [a async for a in self._versions(entity, project, collection, None)]
                known = [a.version for a in versions] + sorted({x for a in versions for x in a.aliases})
                close = difflib.get_close_matches(alias, known, n=3, cutoff=0.5)
                hint = ("did you mean " + " or ".join(f"{collection}:{c}" for c in close) + "?" if close
                        else f"{collection} has {versions[-1].version}..{versions[0].version}" if versions
                        else f"{collection} has no versions left")
            else:
                close = difflib.get_close_matches(collection, collections, n=3, cutoff=0.5)
                if close:
                    hint = "did you mean " + " or ".join(f"{c}:{alias or 'latest'}" for c in close) + "?"
                elif collections:
                    hint = f"{entity}/{project} has: " + ", ".join(sorted(collections)[:8])
                else:
                    hint = f"{entity}/{project} has no artifacts"
        except WandbGQLError:
            pass  # the hint is a courtesy: the error itself is what matters
        return NotFoundError(message, status=200, hint=hint)

    async def runs_using(self, ref: str) -> list[str]:
        """The ids of the runs that used the version (W&B's usedBy), in the server's order."""
        return await self._used_by(await self.artifact(ref))

    async def runs_logging(self, ref: str) -> list[str]:
        """The id of the run that logged the version (W&B's createdBy): one, or none when a
        user logged it."""
        found = await self.artifact(ref)
        return [found.created_by] if found.created_by else []

    async def _used_by(self, artifact: Artifact, limit: int | None = None) -> list[str]:
        async def fetch(after: str | None, first: int) -> Mapping[str, Any]:
            return await self._execute("ArtifactUsedBy", {"id": artifact.id, "first": first, "after": after})

        def connection(data: Mapping[str, Any]) -> Mapping[str, Any]:
            if data.get("artifact") is None:
                raise NotFoundError(f"artifact {artifact.path} disappeared while being read", status=200)
            return data["artifact"]["usedBy"]

        return [node["name"] async for batch in paginate(fetch, connection, per_page=MAX_PAGE, limit=limit,
                                                         what="ArtifactUsedBy")
                for node in batch]

    async def delete_artifact(self, id: str, *, delete_aliases: bool = False) -> Outcome:
        """Delete one version by its id (Artifact.id). Exact outcome, never an exception for the
        server's answer: deleted; unchanged (already gone); failed (refused, e.g. aliased without
        delete_aliases); unknown (the answer was lost and the re-check could not tell)."""
        try:
            await self._execute("DeleteArtifact", {"id": id, "deleteAliases": delete_aliases}, IDEMPOTENT)
            return Outcome(id, "deleted")
        except (GraphQLResponseError, TransportError, HTTPStatusError) as error:
            try:
                gone = (await self._execute("ArtifactCheck", {"id": id, "first": 1})).get("artifact") is None
            except (GraphQLResponseError, TransportError, HTTPStatusError) as again:
                return Outcome(id, "unknown", f"{error}; re-check failed: {again}")
            if not gone:
                return Outcome(id, "failed", str(error))
            # Refused because it was already gone, or our lost request did it: the first is
            # `unchanged`; a lost answer (no GraphQL reply, or one before a retry) means this call deleted it.
            already = isinstance(error, GraphQLResponseError) and not error.after_lost
            return Outcome(id, "unchanged" if already else "deleted")

    async def lineage(self, ref: str, depth: int = 1, *, consumers: int | None = 100) -> Lineage:
        """The version, its producing run, its consuming runs, and the artifacts its producing run
        used, each with its own producer, consumers and upstream, `depth` levels up. At most
        `consumers` run ids per artifact (None: all); `Lineage.used_by_count` keeps the total, so a
        dataset used by 10,000 runs is a count, not 10,000 nodes. An upstream artifact's consumers
        always include the run being followed."""
        if depth < 0:
            raise UsageError(f"depth must be 0 or more, not {depth}")
        if consumers is not None and consumers < 0:
            raise UsageError(f"consumers must be 0 or more, not {consumers}")
        root = await self.artifact(ref)
        used = await self._used_by(root, consumers)
        return Lineage(root, root.created_by, used, await self._upstream(root, depth, consumers),
                       used_by_count=_total(root, used))

    async def _upstream(self, artifact: Artifact, depth: int, consumers: int | None) -> list[Lineage]:
        if depth <= 0 or not artifact.created_by:
            return []
        entity, _, project = (artifact.created_by_project or f"{artifact.entity}/{artifact.project}").partition("/")
        run = artifact.created_by

        async def fetch(after: str | None, first: int) -> Mapping[str, Any]:
            return await self._execute("RunInputArtifacts", {"entity": entity, "project": project, "run": run,
                                                             "first": first, "after": after})

        def connection(data: Mapping[str, Any]) -> Mapping[str, Any]:
            found = (data.get("project") or {}).get("run")
            return (found or {}).get("inputArtifacts") or _EMPTY

        inputs = [Artifact.from_node(node, entity, project)
                  async for batch in paginate(fetch, connection, per_page=MAX_PAGE, what="RunInputArtifacts")
                  for node in batch]
        found = []
        for a in inputs:
            # The followed run first, then others up to the limit (one more asked: it may be among them).
            others = [] if consumers == 0 else await self._used_by(a, None if consumers is None else consumers + 1)
            cap = None if consumers is None else max(consumers, 1)  # the edge followed is always kept
            used = ([run] + [r for r in others if r != run])[:cap]
            found.append(Lineage(a, a.created_by, used, await self._upstream(a, depth - 1, consumers),
                                 used_by_count=_total(a, used)))
        return found


def _total(artifact: Artifact, used: list[str]) -> int:
    return max(artifact.used_by_count or 0, len(used))


async def _of_type(versions: AsyncIterator[Artifact], type: str | None) -> AsyncIterator[Artifact]:
    async for artifact in versions:
        if type is not None and artifact.type != type:
            return  # a collection holds one type: none of its versions will match
        yield artifact


def _newest_key(artifact: Artifact) -> tuple[str, str, int]:
    index = artifact.version[1:]
    return artifact.created_at or "", artifact.collection, int(index) if index.isdigit() else -1


_EMPTY: Mapping[str, Any] = {"edges": [], "pageInfo": {"hasNextPage": False, "endCursor": None}}


class _Missing(Exception):
    """The project is missing: raised inside the paginator, turned into NotFoundError outside."""


class _NoCollection(Exception):
    """The collection is missing: raised inside the paginator, turned into NotFoundError outside."""
