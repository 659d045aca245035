"""Acting on a plan: ledger first, drift check, pinned batches, exact outcomes, verify; resume.

    with Ledger.create(path, server=..., user=...) as ledger:
        result = await apply_plan(client, plan, ledger=ledger)     # PlanError (exit 3) on drift
    results = await resume(client, path)                            # after Ctrl-C, kill -9, lost network

Order of a ledger, which is what makes it trustworthy after any interruption:
plan -> one backup per run (fsync) -> drift skips -> per batch: `sending` event (fsync), the bulk
mutation, one outcome per id as its re-check tells (fsync) -> `done` with the verify result.
A run whose batch was sent but whose outcome never reached the ledger (the process died in
between) is found in its target state by the resume, which knows from the `sending` event that
this plan did it: it is reported as done by the plan, not as `unchanged`.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

from ..errors import GraphQLResponseError, HTTPStatusError, PlanError, TransportError
from ..models import Outcome
from .ledger import Ledger, PlanRecord, read_ledger

if TYPE_CHECKING:
    from ..client import Client
    from .plan import Plan

__all__ = ["ApplyResult", "apply_plan", "resume", "BATCH"]

BATCH = 500  # ids per bulk mutation, and per ledger sync
READ_BATCH = 1000  # ids per backup or drift lookup: the server's largest page
# What each action's success is called; an id found already there is `unchanged`.
DONE = {"delete": "deleted", "restore": "restored", "update": "updated", "tag": "updated", "move": "moved"}
_READ_ERRORS = (GraphQLResponseError, TransportError, HTTPStatusError)

OutcomeHook = Callable[[Outcome], object]


@dataclass
class ApplyResult:
    """One plan applied: its index in the ledger, the outcomes of the ids acted on (this session),
    the runs skipped by the drift check, the verify result, and the ledger's path."""

    plan_index: int
    outcomes: list[Outcome]
    skipped: list[Outcome]
    verify: dict[str, Any]
    ledger: Path
    interrupted: bool = False
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.interrupted and all(o.ok for o in self.outcomes) and bool(self.verify.get("ok", True))


async def apply_plan(client: "Client", plan: "Plan", *, ledger: Ledger, options: dict[str, Any] | None = None,
                     max_drift: int = 0, backup_history: bool = False,
                     on_outcome: OutcomeHook | None = None) -> ApplyResult:
    """Apply a plan on exactly its pinned ids, recording everything in `ledger` as it happens.

    Before the first mutation: the plan and one backup per run are written and synced. Then the
    drift check: runs that left the selection, started running or gained a protected tag are
    skipped; more of them than `max_drift` raises PlanError (exit 3) with nothing changed. Each
    outcome goes to the ledger and to `on_outcome` as soon as it is known. Cancelling (Ctrl-C)
    records an `interrupted` event and re-raises; `resume()` goes on from there."""
    index = ledger.add_plan(plan.to_dict(), {**(options or {}), "max_drift": max_drift,
                                             "backup_history": backup_history})
    ledger.sync()
    applier = _Applier(client, ledger, index, plan.to_dict(), on_outcome)
    try:
        if plan.run_ids is None:
            return await applier.restore_by_filter()
        ids = list(plan.run_ids)
        current = await applier.backup(ids, backup_history, have=set())
        skipped = await applier.drift(ids, current)
        if len(skipped) > max_drift:
            detail = "; ".join(f"{o.run_id}: {o.error}" for o in skipped[:5])
            ledger.event(index, "drift", skipped=[{"run_id": o.run_id, "why": o.error} for o in skipped],
                         max_drift=max_drift)
            ledger.done(index, verify={"ok": False, "refused": f"drift {len(skipped)} > --max-drift {max_drift}"})
            ledger.sync()
            raise PlanError(f"{len(skipped)} planned run(s) changed since the plan (more than --max-drift "
                            f"{max_drift}); nothing was changed: {detail}",
                            hint="plan again, or allow it with --max-drift N (the drifted runs are skipped)")
        for outcome in skipped:
            applier.record(outcome)
        ledger.sync()
        todo = [i for i in ids if i not in {o.run_id for o in skipped}]
        return await applier.act(todo, skipped, sent=set())
    except asyncio.CancelledError:
        applier.interrupted()
        raise


async def resume(client: "Client", ledger_path: str | Path, *,
                 on_outcome: OutcomeHook | None = None) -> list[ApplyResult]:
    """Go on with every plan of a ledger that has no `done` record: only its pending ids (no
    final outcome yet, or `unknown`), nothing outside the plan, nothing twice. Runs that drifted
    meanwhile are skipped. Appends to the same ledger."""
    state = read_ledger(ledger_path)
    results = []
    with Ledger.append_to(Path(ledger_path)) as ledger:
        for record in state.plans:
            if record.done is not None:
                continue
            if record.action == "prune_artifacts":  # versions, not runs: their own applier
                from .artifacts import resume_prune_plan

                results.append(await resume_prune_plan(client, ledger, record, on_outcome))
                continue
            results.append(await _resume_plan(client, ledger, record, on_outcome))
    return results


async def _resume_plan(client: "Client", ledger: Ledger, record: PlanRecord,
                       on_outcome: OutcomeHook | None) -> ApplyResult:
    applier = _Applier(client, ledger, record.index, record.data, on_outcome)
    pending = record.pending()
    ledger.event(record.index, "resumed", pending=len(pending))
    ledger.sync()
    try:
        if record.data.get("run_ids") is None:
            verify = {"ok": False, "note": "a restore by filter cannot be resumed by id: run it again"}
            ledger.done(record.index, verify=verify)
            ledger.sync()
            return ApplyResult(record.index, [], [], verify, ledger.path)
        if record.action not in DONE:
            # An undo's revert plan: undo compares each run with its backup, so running it again
            # is the safe way on, not replaying its per-field writes here.
            verify = {"ok": False, "note": "an interrupted undo is finished by running 'wbgql ledger undo' again"}
            ledger.done(record.index, verify=verify)
            ledger.sync()
            return ApplyResult(record.index, [], [], verify, ledger.path)
        options = record.data.get("options") or {}
        current = await applier.backup(pending, bool(options.get("backup_history")), have=set(record.backups))
        skipped = await applier.drift(pending, current)
        for outcome in skipped:
            applier.record(outcome)
        ledger.sync()
        todo = [i for i in pending if i not in {o.run_id for o in skipped}]
        return await applier.act(todo, skipped, sent=record.sent() or set(), earlier=record.settled())
    except asyncio.CancelledError:
        applier.interrupted()
        raise


class Recorder:
    """Outcomes of one ledger plan as they come: into the ledger, to `on_outcome`, and kept."""

    def __init__(self, ledger: Ledger, index: int, on_outcome: OutcomeHook | None) -> None:
        self.ledger, self.index, self.on_outcome = ledger, index, on_outcome
        self.outcomes: dict[str, Outcome] = {}

    def record(self, outcome: Outcome) -> None:
        self.outcomes[outcome.run_id] = outcome
        self.ledger.outcome(self.index, outcome)
        if self.on_outcome is not None:
            self.on_outcome(outcome)

    def interrupted(self) -> None:
        self.ledger.event(self.index, "interrupted", outcomes=len(self.outcomes))
        self.ledger.sync()


class _Applier(Recorder):
    """One plan being applied (or resumed): where it writes, how it acts, what it has seen."""

    def __init__(self, client: "Client", ledger: Ledger, index: int, plan: dict[str, Any],
                 on_outcome: OutcomeHook | None) -> None:
        super().__init__(ledger, index, on_outcome)
        self.client = client
        self.action: str = plan["action"]
        self.path: str = plan["path"]
        self.changes: dict[str, Any] = plan.get("changes") or {}
        self.selection: dict[str, Any] = plan.get("selection") or {}
        self.run_ids: list[str] = list(plan.get("run_ids") or ())

    # -- before acting ---------------------------------------------------------------------------
    async def backup(self, ids: Sequence[str], history: bool, have: set[str]) -> dict[str, Any]:
        """Write a backup of every live run among ids not backed up yet (the one vocabulary,
        config and summary whole, history if asked), then sync. Returns the live runs by id,
        which the drift check reads. A restore has nothing to back up: its runs are deleted."""
        if self.action == "restore":
            return {}
        chunks = [list(ids[s:s + READ_BATCH]) for s in range(0, len(ids), READ_BATCH)]

        async def fetch(chunk: list[str]) -> list[Any]:
            return [run async for run in self.client.runs(self.path, filters={"name": {"$in": chunk}},
                                                          config_keys=True, summary_keys=True)]

        live = {run.name: run for part in await asyncio.gather(*(fetch(c) for c in chunks)) for run in part}
        todo = [live[i] for i in ids if i in live and i not in have]
        records = [run.to_dict() for run in todo]
        if history:
            rows = await asyncio.gather(*(self._history(run) for run in todo))
            for rec, hist in zip(records, rows):
                rec["history"] = hist
        self.ledger.backup(self.index, records)
        self.ledger.sync()
        return live

    async def _history(self, run: Any) -> list[Any]:
        import orjson

        entity, project = self.path.split("/", 1)
        data = await self.client._execute("RunHistory", {"entity": entity, "project": project, "name": run.name})
        node = (data.get("project") or {}).get("run") or {}
        return [orjson.loads(row) for row in node.get("history") or ()]

    async def drift(self, ids: Sequence[str], live: dict[str, Any]) -> list[Outcome]:
        """The pinned runs that no longer belong: left the selection, started running, gained a
        protected tag. Runs that are gone are not drift: their outcome says what they are."""
        if self.action == "restore":
            return []
        include_running = bool(self.selection.get("include_running"))
        protect = set(self.selection.get("protect_tags") or ())
        matching = await self._still_matching([i for i in ids if i in live])
        skipped = []
        for run_id in ids:
            run = live.get(run_id)
            if run is None:
                continue
            if matching is not None and run_id not in matching:
                why = "left the selection (no longer matches the filter)"
            elif run.state == "running" and not include_running:
                why = "started running"
            elif protect & set(run.tags or ()):
                why = f"gained a protected tag ({', '.join(sorted(protect & set(run.tags or ())))})"
            else:
                continue
            skipped.append(Outcome(run_id=run_id, status="skipped", error=why))
        return skipped

    async def _still_matching(self, ids: list[str]) -> set[str] | None:
        if self.selection.get("kind") != "filter" or not ids:
            return None
        query = self.selection.get("filters") or {}
        chunks = [ids[s:s + READ_BATCH] for s in range(0, len(ids), READ_BATCH)]

        async def chunk_ids(chunk: list[str]) -> list[str]:
            return [i async for i in self.client.run_ids(self.path, filters={"$and": [query, {"name": {"$in": chunk}}]})]

        return {i for part in await asyncio.gather(*(chunk_ids(c) for c in chunks)) for i in part}

    # -- acting ----------------------------------------------------------------------------------
    async def act(self, ids: list[str], skipped: list[Outcome], *, sent: set[str],
                  earlier: dict[str, Outcome] | None = None) -> ApplyResult:
        """Pinned batches, concurrently (the client's adaptive limit bounds the requests), then
        verify and `done`. `sent`: ids a previous, interrupted apply already sent; found in the
        target state they are this plan's doing."""
        done_status = DONE[self.action]
        acted = 0
        before = await self._live_count()

        def reported(outcome: Outcome) -> None:
            nonlocal acted
            if outcome.status == "unchanged" and outcome.run_id in sent:
                outcome = Outcome(outcome.run_id, done_status)  # done by the interrupted apply
            elif outcome.status == done_status:
                acted += 1
            self.record(outcome)

        async def batch(chunk: list[str]) -> None:
            self.ledger.event(self.index, "sending", run_ids=chunk)
            self.ledger.sync()  # durable before the mutation: a resume must know it may have happened
            await self._mutate(chunk, reported)
            self.ledger.sync()

        await asyncio.gather(*(batch(ids[s:s + BATCH]) for s in range(0, len(ids), BATCH)))
        after = await self._live_count()
        verify = self._verify(before, after, acted, earlier or {})
        self.ledger.done(self.index, verify=verify)
        self.ledger.sync()
        mine = [self.outcomes[i] for i in ids if i in self.outcomes]
        counts: dict[str, int] = {}
        for o in [*skipped, *mine]:
            counts[o.status] = counts.get(o.status, 0) + 1
        return ApplyResult(self.index, mine, skipped, verify, self.ledger.path, counts=counts)

    async def _mutate(self, chunk: list[str], hook: OutcomeHook) -> None:
        c, changes = self.client, self.changes
        if self.action == "delete":
            await c.delete_runs(self.path, chunk, delete_artifacts=bool(changes.get("delete_artifacts")),
                                on_outcome=hook)
        elif self.action == "restore":
            await c.restore_runs(self.path, chunk, on_outcome=hook)
        elif self.action in ("update", "tag"):
            await c.update_runs(self.path, chunk, on_outcome=hook, **_update_kwargs(changes))
        elif self.action == "move":
            move = getattr(c, "move_runs", None)
            if move is None:
                raise PlanError("this client cannot move runs (client.move_runs is missing)")
            await move(self.path, chunk, changes["to"], on_outcome=hook)
        else:
            raise PlanError(f"unknown action {self.action!r} in the plan")

    async def restore_by_filter(self) -> ApplyResult:
        """W&B restores by filter only and cannot list deleted runs: the runs that came back are
        reported restored; nothing else can be checked."""
        before = await self._live_count()
        query = self.selection.get("filters") or {}
        outcomes = await self.client.restore_runs(self.path, filters=query, every=bool(self.selection.get("every")),
                                                  on_outcome=self.record)
        after = await self._live_count()
        verify = self._verify(before, after, len(outcomes), {})
        self.ledger.done(self.index, verify=verify)
        self.ledger.sync()
        return ApplyResult(self.index, outcomes, [], verify, self.ledger.path)

    async def _live_count(self) -> int | None:
        try:
            return await self.client.count_runs(self.path)
        except _READ_ERRORS:
            return None

    def _verify(self, before: int | None, after: int | None, acted: int,
                earlier: dict[str, Outcome]) -> dict[str, Any]:
        """Every pinned id has a final outcome, none unknown; the live count moved by exactly the
        number this session acted on (others changing the project meanwhile shows here too)."""
        final = {**earlier, **self.outcomes}
        unknown = sorted(i for i, o in final.items() if o.status == "unknown")
        missing = [i for i in self.run_ids if i not in final]
        sign = {"delete": -1, "move": -1, "restore": 1}.get(self.action, 0)
        expected = sign * acted
        moved = None if before is None or after is None else after - before
        counts: dict[str, int] = {}
        for o in final.values():
            counts[o.status] = counts.get(o.status, 0) + 1
        verify: dict[str, Any] = {"pinned": len(self.run_ids), "checked": len(self.run_ids) - len(missing),
                                  "missing": missing[:20], "unknown": unknown[:20], "outcomes": counts,
                                  "live_before": before, "live_after": after, "expected_change": expected,
                                  "count_ok": moved == expected}
        verify["ok"] = not missing and not unknown and verify["count_ok"]
        return verify


def _update_kwargs(changes: dict[str, Any]) -> dict[str, Any]:
    """A plan's `changes` (the one vocabulary) as update_runs' keyword arguments."""
    names = {"display_name": "name", "name": "name", "notes": "notes", "group": "group", "job_type": "job_type",
             "add_tags": "add_tags", "remove_tags": "remove_tags", "config": "config", "summary": "summary"}
    return {names[k]: v for k, v in changes.items() if k in names}
