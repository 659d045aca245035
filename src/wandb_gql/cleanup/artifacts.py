"""Pruning artifact versions by policy: plan -> ledger -> apply -> verify, and resume.

    plan = await plan_prune(client, "demo/vision", type="model", keep_last=10)
    with Ledger.create(path, server=plan.server, user=plan.user) as ledger:
        result = await apply_prune(client, plan, ledger=ledger)
    await resume(client, path)        # cleanup.apply.resume hands prune plans to resume_prune_plan

Bytes reclaimable are dedup-aware: W&B stores file bytes once per digest, so a version's bytes
are freed only when no kept version references them. The plan reads each version's files (md5,
size) and storageBytes (its distinct blobs, manifest included) for every version of the project,
because a kept version of another collection may share bytes too. When a version has more files
than one page the figure is an upper bound and the plan says so. Blobs shared with other
projects are not seen from here: the verify compares the project's storageBytes before/after.

The ledger names versions by their storage id where runs have their run id (backups, outcomes,
`sending` events), so `read_ledger`, `ledger show` and `resume` read a prune like any plan.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Sequence

from ..errors import GraphQLResponseError, HTTPStatusError, TransportError, UsageError
from ..models import Outcome
from ..transport import IDEMPOTENT
from .apply import BATCH, ApplyResult, Recorder

if TYPE_CHECKING:
    from ..client import Client
    from ..models import Artifact
    from .ledger import Ledger, PlanRecord

__all__ = ["ArtifactPlan", "PRUNE", "apply_prune", "plan_prune", "resume_prune_plan"]

PRUNE = "prune_artifacts"  # the plan's action in a ledger
FILES_PAGE = 1000  # the server's largest page; a version with more files makes the bytes an upper bound
# Deletions queued at the transport at once: enough to keep its (default 8) slots busy. Queuing
# all of them cost seconds of CPU: every finished request wakes each waiter (notify_all).
IN_FLIGHT = 16
DELETE_GROUP = 20  # deleteArtifact fields per request (queries/delete_artifact_batch.graphql)
CHECK_PAGE = 500  # versions per check request: pages of 1,000 with their files made slower answers
STATE_PAGE = 1000  # versions per request when only aliases and users are asked
_READ_ERRORS = (GraphQLResponseError, TransportError, HTTPStatusError)
OutcomeHook = Callable[[Outcome], object]


@dataclass
class ArtifactPlan:
    """Which versions of `path` a prune deletes, on `server` as `user`, and why the rest stay.
    `versions`: one dict per version to delete (id, collection, version, aliases, digest, size,
    created_at, used_by_count); `collections`: per collection, total / kept / to delete."""

    server: str
    user: str | None
    path: str
    options: dict[str, Any]
    collections: dict[str, dict[str, int]]
    versions: list[dict[str, Any]]
    bytes_reclaimable: int
    bytes_exact: bool
    delete_aliases: bool
    storage_bytes: int | None = None
    action: str = field(default=PRUNE)
    # What the plan read of each doomed version (files, storageBytes): a committed version's
    # files never change, so apply backs them up from here and only re-reads aliases and users.
    checks: dict[str, dict[str, Any]] = field(default_factory=dict, repr=False, compare=False)

    @property
    def ids(self) -> list[str]:
        return [v["id"] for v in self.versions]

    def details(self) -> list[str]:
        """The plan for people, one line each."""
        bound = "" if self.bytes_exact else " (upper bound: some versions have more files than one page)"
        lines = [f"server {self.server} as {self.user or '?'}; project {self.path}",
                 f"delete {len(self.versions):,} version(s); {self.bytes_reclaimable:,} bytes reclaimable{bound}"]
        if self.delete_aliases:
            lines.append("aliased versions are deleted too (deleteAliases)")
        for name, c in sorted(self.collections.items()):
            lines.append(f"  {name}: {c['versions']:,} version(s), keep {c['keep']:,}, delete {c['delete']:,}")
        return lines

    def to_dict(self) -> dict[str, Any]:
        return {"action": self.action, "server": self.server, "user": self.user, "path": self.path,
                "policy": self.options, "changes": {"delete_aliases": self.delete_aliases},
                "collections": self.collections, "versions": self.versions, "run_ids": self.ids,
                "run_count": len(self.versions), "bytes_reclaimable": self.bytes_reclaimable,
                "bytes_exact": self.bytes_exact, "storage_bytes": self.storage_bytes,
                "details": self.details()}


async def plan_prune(client: "Client", path: str, *, type: str | None = None, collection: str | None = None,
                     keep_last: int, keep_aliased: bool = True, keep_used: bool = False,
                     older_than: str | None = None) -> ArtifactPlan:
    """Per collection, newest first: keep the newest `keep_last`; never an aliased version unless
    keep_aliased=False; with keep_used never a version some run used; with older_than only
    versions created before then are deleted. Nothing is changed."""
    from .._time import ago, parse_duration

    if not isinstance(keep_last, int) or keep_last < 0:
        raise UsageError(f"--keep-last must be 0 or more, not {keep_last}", hint="e.g. --keep-last 10")
    options: dict[str, Any] = {"type": type, "collection": collection, "keep_last": keep_last,
                               "keep_aliased": keep_aliased, "keep_used": keep_used, "older_than": older_than}
    cutoff = None
    if older_than is not None:
        try:
            cutoff = options["created_before"] = ago(parse_duration(older_than))
        except ValueError as e:
            raise UsageError(f"--older-than: {e}", hint="e.g. --older-than 30d") from None
    entity, project = await client.project_path(path)
    viewer, everything = await asyncio.gather(client.viewer(), _collect(client, f"{entity}/{project}"))
    targets = [a for a in everything if (collection is None or a.collection == collection)
               and (type is None or a.type == type)]
    if collection is not None and not targets:
        await _collect(client, f"{entity}/{project}", collection)  # NotFoundError naming close names
    by_collection: dict[str, list["Artifact"]] = {}
    for a in targets:
        by_collection.setdefault(a.collection, []).append(a)
    doomed: list["Artifact"] = []
    counts: dict[str, dict[str, int]] = {}
    for name, versions in by_collection.items():
        versions.sort(key=lambda a: int(a.version[1:] or 0), reverse=True)
        delete = [a for a in versions[keep_last:]
                  if not (keep_aliased and a.aliases) and not (keep_used and (a.used_by_count or 0) > 0)
                  and not (cutoff is not None and (a.created_at or "") >= cutoff)]
        doomed += delete
        counts[name] = {"versions": len(versions), "keep": len(versions) - len(delete), "delete": len(delete)}
    checks, storage = await asyncio.gather(_checks(client, f"{entity}/{project}",
                                                   {a.id: a.collection for a in everything}),
                                           _storage(client, entity, project))
    reclaimable, exact = _reclaimable(checks, {a.id for a in doomed})
    rows = [{"id": a.id, "collection": a.collection, "version": a.version, "aliases": list(a.aliases),
                 "digest": a.digest, "size": a.size, "created_at": a.created_at,
                 "used_by_count": a.used_by_count or 0} for a in doomed]
    return ArtifactPlan(server=client.settings.base_url, user=viewer.username, path=f"{entity}/{project}",
                        options=options, collections=counts, versions=rows, bytes_reclaimable=reclaimable,
                        bytes_exact=exact, delete_aliases=any(v["aliases"] for v in rows),
                        storage_bytes=storage, checks={i: c for i, c in checks.items() if c is not None and i in doomed})


async def apply_prune(client: "Client", plan: ArtifactPlan, *, ledger: "Ledger",
                      on_outcome: OutcomeHook | None = None) -> ApplyResult:
    """The plan and one backup per version go to the ledger (synced) before the first deletion;
    then the drift check, deleteArtifact per version concurrently, verify, `done`."""
    data = plan.to_dict()
    index = ledger.add_plan(data, plan.options)
    ledger.sync()
    return await _Pruner(client, ledger, index, data, on_outcome, known=plan.checks).run(plan.ids, have=set(),
                                                                                        sent=set())


async def resume_prune_plan(client: "Client", ledger: "Ledger", record: "PlanRecord",
                            on_outcome: OutcomeHook | None) -> ApplyResult:
    """An interrupted prune: only its pending versions, nothing outside the plan, nothing twice.
    Versions a cut-off apply sent and that are gone now are reported deleted by this plan."""
    pending = record.pending()
    ledger.event(record.index, "resumed", pending=len(pending))
    ledger.sync()
    pruner = _Pruner(client, ledger, record.index, record.data, on_outcome)
    return await pruner.run(pending, have=set(record.backups), sent=record.sent() or set(), earlier=record.settled())


class _Pruner(Recorder):
    def __init__(self, client: "Client", ledger: "Ledger", index: int, plan: dict[str, Any],
                 on_outcome: OutcomeHook | None, known: dict[str, dict[str, Any]] | None = None) -> None:
        super().__init__(ledger, index, on_outcome)
        self.client, self.plan = client, plan
        self.known = known or {}
        self.planned = {v["id"]: v for v in plan.get("versions") or ()}

    async def run(self, ids: Sequence[str], *, have: set[str], sent: set[str],
                  earlier: dict[str, Outcome] | None = None) -> ApplyResult:
        entity, project = str(self.plan["path"]).split("/", 1)
        try:
            unread = any(i not in have and i not in self.known for i in ids)  # a resume: nothing known
            checks = await _checks(self.client, f"{entity}/{project}", {i: self.planned[i]["collection"] for i in ids},
                                   files=unread)
            self.ledger.backup(self.index, [{**self.planned[i], "name": i, "files": full["files"],
                                             "storage_bytes": full["storage_bytes"]}
                                            for i, c in checks.items() if c is not None and i not in have
                                            for full in [c if unread else self.known[i]]])
            self.ledger.sync()  # every backup on disk before the first deletion
            skipped, todo = self._drift(ids, checks, sent)
            self.ledger.sync()
            before = await _storage(self.client, entity, project)
            delete_aliases = bool((self.plan.get("changes") or {}).get("delete_aliases"))
            gate = asyncio.Semaphore(IN_FLIGHT)

            async def delete(i: str) -> Outcome:
                async with gate:
                    return await self.client.delete_artifact(i, delete_aliases=delete_aliases)

            async def group(ids: list[str]) -> list[Outcome]:
                """DELETE_GROUP versions in one request; a field that failed, or every one when the
                answer was lost, goes through delete_artifact, which tells refused from gone."""
                if len(ids) < DELETE_GROUP:
                    return list(await asyncio.gather(*(delete(i) for i in ids)))
                variables: dict[str, Any] = {f"id{k}": i for k, i in enumerate(ids)}
                variables["deleteAliases"] = delete_aliases
                lost = False
                async with gate:
                    try:
                        data = await self.client._execute("DeleteArtifactBatch", variables, IDEMPOTENT)
                    except GraphQLResponseError as error:
                        data, lost = error.data or {}, error.after_lost  # fields refused on a retry
                    except (TransportError, HTTPStatusError):
                        data, lost = {}, True
                done = {i for k, i in enumerate(ids) if data.get(f"d{k}") is not None}
                again = {o.run_id: o for o in await asyncio.gather(*(delete(i) for i in ids if i not in done))}
                # An answered field is authoritative; after a lost answer, gone means this request did it.
                return [Outcome(i, "deleted") if i in done or (lost and again[i].status == "unchanged") else again[i]
                        for i in ids]

            async def batch(chunk: list[str]) -> None:
                self.ledger.event(self.index, "sending", run_ids=chunk)
                self.ledger.sync()  # a resume must know these may have been deleted
                groups = await asyncio.gather(*(group(chunk[g:g + DELETE_GROUP])
                                                for g in range(0, len(chunk), DELETE_GROUP)))
                for outcome in (o for g in groups for o in g):
                    if outcome.status == "unchanged" and outcome.run_id in sent:
                        outcome = Outcome(outcome.run_id, "deleted")  # the interrupted apply did it
                    self.record(outcome)
                self.ledger.sync()

            await asyncio.gather(*(batch(todo[s:s + BATCH]) for s in range(0, len(todo), BATCH)))
            verify = await self._verify(entity, project, before, earlier or {})
        except asyncio.CancelledError:
            self.interrupted()
            raise
        self.ledger.done(self.index, verify=verify)
        self.ledger.sync()
        mine = [self.outcomes[i] for i in todo if i in self.outcomes]
        counts: dict[str, int] = {}
        for o in [*skipped, *mine]:
            counts[o.status] = counts.get(o.status, 0) + 1
        return ApplyResult(self.index, mine, skipped, verify, self.ledger.path, counts=counts)

    def _drift(self, ids: Sequence[str], checks: dict[str, dict[str, Any] | None],
               sent: set[str]) -> tuple[list[Outcome], list[str]]:
        """Gone, gained an alias, gained a use: skipped (gone after a cut-off send: deleted)."""
        skipped, todo = [], []
        for i in ids:
            now, then = checks.get(i), self.planned[i]
            if now is None:
                outcome = Outcome(i, "deleted") if i in sent else Outcome(i, "skipped", "gone since the plan")
            elif set(now["aliases"]) - set(then.get("aliases") or ()):
                gained = sorted(set(now["aliases"]) - set(then.get("aliases") or ()))
                outcome = Outcome(i, "skipped", f"gained alias(es) {', '.join(gained)} since the plan")
            elif now["used_by_count"] > (then.get("used_by_count") or 0):
                outcome = Outcome(i, "skipped", "used by a run since the plan")
            else:
                todo.append(i)
                continue
            self.record(outcome)
            if outcome.status == "skipped":
                skipped.append(outcome)
        return skipped, todo

    async def _verify(self, entity: str, project: str, before: int | None,
                      earlier: dict[str, Outcome]) -> dict[str, Any]:
        """Every planned version checked gone (those skipped by drift aside); project storage
        before/after against the plan's reclaimable bytes."""
        ids = list(self.planned)
        final = {**earlier, **self.outcomes}
        after_checks, after = await asyncio.gather(_checks(self.client, f"{entity}/{project}",
                                                           {i: self.planned[i]["collection"] for i in ids}, files=False),
                                                   _storage(self.client, entity, project))
        missing = [i for i in ids if i not in final]
        unknown = [i for i, o in final.items() if o.status == "unknown"]
        still_there = [i for i in ids if after_checks.get(i) is not None and final.get(i, Outcome(i, "")).status
                       in ("deleted", "unchanged")]
        counts: dict[str, int] = {}
        for o in final.values():
            counts[o.status] = counts.get(o.status, 0) + 1
        freed = None if before is None or after is None else before - after
        return {"pinned": len(ids), "checked": len(ids) - len(missing), "missing": missing[:20],
                "unknown": unknown[:20], "still_there": still_there[:20], "outcomes": counts,
                "storage_before": before, "storage_after": after, "bytes_freed": freed,
                "bytes_planned": self.plan.get("bytes_reclaimable"),
                "ok": not missing and not unknown and not still_there}


async def _collect(client: "Client", path: str, collection: str | None = None) -> list["Artifact"]:
    return [a async for a in client.artifacts(path, collection=collection)]


async def _checks(client: "Client", path: str, versions: dict[str, str],
                  files: bool = True) -> dict[str, dict[str, Any] | None]:
    """Each version (id -> its collection) as it is now, None when gone: aliases, users, and with
    `files` its storageBytes and files (md5, size). Read a page of a collection's versions per
    request, the collections concurrently: one request per version cost seconds at W&B's latency."""
    entity, project = path.split("/", 1)
    wanted: dict[str, set[str]] = {}
    for i, name in versions.items():
        wanted.setdefault(name, set()).add(i)

    async def collection(name: str, ids: set[str]) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        variables: dict[str, Any] = {"entity": entity, "project": project, "collection": name}
        variables.update({"first": CHECK_PAGE, "files": FILES_PAGE} if files else {"first": STATE_PAGE})
        while True:
            data = await client._execute("CollectionArtifactChecks" if files else "CollectionArtifactStates", variables)
            node = (data.get("project") or {}).get("artifactCollection")
            conn = (node or {}).get("artifacts") or {}
            for edge in conn.get("edges") or ():
                version = edge["node"]
                if version["id"] in ids:
                    found[version["id"]] = _check(version)
            page = conn.get("pageInfo") or {}
            if not page.get("hasNextPage") or len(found) == len(ids):
                return found
            variables["after"] = page.get("endCursor")

    seen: dict[str, dict[str, Any]] = {}
    for part in await asyncio.gather(*(collection(n, ids) for n, ids in wanted.items())):
        seen.update(part)
    return {i: seen.get(i) for i in versions}


def _check(node: dict[str, Any]) -> dict[str, Any]:
    check = {"aliases": [a["alias"] for a in node.get("aliases") or ()], "used_by_count": node.get("usedCount") or 0}
    if "files" in node:  # CollectionArtifactChecks, not the states-only read
        conn = node["files"] or {}
        check.update(storage_bytes=node.get("storageBytes") or 0, files=[e["node"] for e in conn.get("edges") or ()],
                     complete=not (conn.get("pageInfo") or {}).get("hasNextPage"))
    return check


def _reclaimable(checks: dict[str, dict[str, Any] | None], doomed: set[str]) -> tuple[int, bool]:
    """Bytes of the blobs only doomed versions reference, plus each doomed version's manifest
    (its storageBytes beyond its distinct files); exact unless a file listing was cut short."""
    sizes: dict[str, int] = {}
    kept: set[str] = set()
    gone: set[str] = set()
    extra, exact = 0, True
    for i, check in checks.items():
        if check is None:
            continue
        # A reference (no storagePath) is listed with its size, but its bytes live elsewhere.
        md5s = {f["md5"]: int(f.get("sizeBytes") or 0) for f in check["files"] if f.get("md5") and f.get("storagePath")}
        sizes.update(md5s)
        if i in doomed:
            gone |= set(md5s)
            extra += max(0, check["storage_bytes"] - sum(md5s.values()))
            if not check["complete"]:
                exact = False
                extra += check["storage_bytes"]
        else:
            kept |= set(md5s)
    return sum(sizes[m] for m in gone - kept) + extra, exact


async def _storage(client: "Client", entity: str, project: str) -> int | None:
    try:
        data = await client._execute("ProjectStorage", {"entity": entity, "project": project})
    except _READ_ERRORS:
        return None
    return int((data.get("project") or {}).get("storageBytes") or 0)
