"""Restore and undo, by ledger: put back exactly what one ledger changed, and nothing else.

    result = await restore_from_ledger(client, "~/.local/share/wandb-gql/ledgers/....jsonl")
    result = await undo(client, ledger_path)     # deletes restored, updates/tags reverted, moves moved back

W&B restores deleted runs by filter only, so a filter would also bring back runs someone else
deleted. Here the ids come from the ledger (the runs it reported deleted, or may have deleted
before it was cut off), undeleteRuns is pinned to those ids, and each id is checked afterwards.
Runs already purged (past the retention period: neither live nor restorable) are re-created
from their backup with `recreate=True`. Updates are undone from the backups, which hold each
run as it was before the change; only the fields the change touched are put back.

Each source plan gets a new plan in the same ledger ("restore" for deletions, "revert" for
updates and tags, "move" back for moves; options.undo_of names the source plan), with its outcomes and a `done` record holding the
verification, so the ledger tells the whole story and a later undo does not undo an undo.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Sequence

from ..errors import NotFoundError, UsageError
from ..models import Outcome
from .apply import ApplyResult
from .ledger import Ledger, LedgerState, PlanRecord, read_ledger

if TYPE_CHECKING:
    from ..client import Client

__all__ = ["restore_from_ledger", "undo"]

OutcomeHook = Callable[[Outcome], object]
_ACTED = ("deleted", "updated", "moved", "unknown")  # outcomes after which the run may have changed
_LOOKUP = 500  # ids per visibility check


async def restore_from_ledger(client: "Client", ledger_path: str | Path, *, recreate: bool = False,
                              on_outcome: OutcomeHook | None = None) -> ApplyResult:
    """Bring back exactly the runs the ledger deleted (undeleteRuns pinned to their ids, in
    batches) and check each is visible again; `recreate=True` re-creates from the backup the
    runs that are gone for good. Appends a "restore" plan per delete plan to the same ledger."""
    state = _read(client, ledger_path)
    work = [(p, _acted_on(p)) for p in state.plans if p.action == "delete" and not _is_undo(p)]
    work = [(p, ids) for p, ids in work if ids]
    if not work:
        raise UsageError(f"ledger {state.path} deleted no runs: nothing to restore",
                         hint=f"wbgql ledger show {state.path} says what it did")
    return await _run(client, state, [_restorer(p, ids, recreate) for p, ids in work], on_outcome)


async def undo(client: "Client", ledger_path: str | Path, *,
               on_outcome: OutcomeHook | None = None) -> ApplyResult:
    """Undo what the ledger did, newest plan first: deletions are restored (as
    restore_from_ledger), updates and tags put back to the backups' values (only the fields
    the change touched), moves moved back. Plans that are themselves restores or undos are left."""
    state = _read(client, ledger_path)
    steps: list[_Step] = []
    for plan in reversed(state.plans):
        if _is_undo(plan) or plan.action == "restore":
            continue
        ids = _acted_on(plan)
        if not ids:
            continue
        if plan.action == "delete":
            steps.append(_restorer(plan, ids, False))
        elif plan.action in ("update", "tag"):
            steps.append(_reverter(plan, ids))
        elif plan.action == "move":
            steps.append(_mover(plan, ids))
        else:
            raise UsageError(f"ledger {state.path}: plan {plan.index} ({plan.action}) cannot be undone")
    if not steps:
        raise UsageError(f"ledger {state.path} changed no runs: nothing to undo",
                         hint=f"wbgql ledger show {state.path} says what it did")
    return await _run(client, state, steps, on_outcome)


# -- what a source plan did ----------------------------------------------------------------------
def _acted_on(plan: PlanRecord) -> list[str]:
    """The ids the plan changed or may have changed: those with an outcome saying so, and, when
    the apply never finished, those with no outcome at all (it may have acted before it could
    write one). Never an id outside the plan."""
    unfinished = plan.done is None
    # Only ids announced by a `sending` event can have been acted on without an outcome; a
    # ledger without such events: every pending id.
    sent = plan.sent()
    out = []
    for run_id in plan.run_ids:
        outcome = plan.outcomes.get(run_id)
        if outcome is None:
            if unfinished and (sent is None or run_id in sent):
                out.append(run_id)
        elif outcome.status in _ACTED:
            out.append(run_id)
    return out


def _is_undo(plan: PlanRecord) -> bool:
    return (plan.data.get("options") or {}).get("undo_of") is not None


def _fields_changed(plan: PlanRecord) -> list[str] | None:
    """What an update/tag plan changed, as revert_run's field names (None: unknown, all)."""
    changes = plan.data.get("changes") or {}
    fields: list[str] = []
    for key, value in changes.items():
        if key in ("display_name", "notes", "group", "job_type"):
            fields.append(key)
        elif key in ("add_tags", "remove_tags"):
            fields += [f"tag:{t}" for t in value or ()]
        elif key in ("config", "summary") and isinstance(value, dict):
            fields += [f"{key}.{k}" for k in value]
        elif key == "tags":
            fields.append("tags")
    return fields or None


# -- one step: a new plan in the ledger, acting on the source plan's ids ---------------------------
class _Step:
    """A new plan derived from one source plan: its record, and how to act and verify."""

    def __init__(self, source: PlanRecord, ids: list[str], action: str, options: dict[str, Any],
                 act: Callable[["Client", Callable[[Outcome], None]], Awaitable[None]], *,
                 path: str | None = None, changes: dict[str, Any] | None = None) -> None:
        self.source, self.ids, self.action, self.options, self.act = source, ids, action, options, act
        self.path = path or source.path
        self.changes = changes or {}  # what `ledger resume` acts by if this step is cut off


def _restorer(source: PlanRecord, ids: list[str], recreate: bool) -> _Step:
    async def act(client: "Client", record: Callable[[Outcome], None]) -> None:
        try:
            outcomes = await client.restore_runs(source.path, ids)
        except NotFoundError:
            if not recreate:
                raise
            outcomes = [Outcome(i, "not_found") for i in ids]  # the project itself is gone
        gone = []
        for outcome in outcomes:
            if outcome.status != "not_found":
                record(outcome)
            elif recreate:
                gone.append(outcome.run_id)
            else:
                record(Outcome(outcome.run_id, "not_found",
                               "gone for good (purged after the retention period, or never deleted here); "
                               "restore with recreate (--recreate) re-creates it from the ledger's backup"))
        for outcome in await asyncio.gather(*(_recreate(client, source, i) for i in gone)):
            record(outcome)

    options = {"undo_of": source.index, "recreate": recreate}
    return _Step(source, ids, "restore", options, act)


async def _recreate(client: "Client", source: PlanRecord, run_id: str) -> Outcome:
    backup = source.backups.get(run_id)
    if backup is None:
        return Outcome(run_id, "not_found", "gone for good, and the ledger holds no backup of it")
    return await client.recreate_run(source.path, backup)


def _reverter(source: PlanRecord, ids: list[str]) -> _Step:
    fields = _fields_changed(source)

    async def act(client: "Client", record: Callable[[Outcome], None]) -> None:
        async def one(run_id: str) -> None:
            backup = source.backups.get(run_id)
            if backup is None:
                record(Outcome(run_id, "failed", "the ledger holds no backup of this run: nothing to put back"))
            else:
                record(await client.revert_run(source.path, backup, fields=fields))

        await asyncio.gather(*(one(i) for i in ids))

    # Its own action name: put back from backups, which a resume cannot do as an update.
    return _Step(source, ids, "revert", {"undo_of": source.index}, act, changes={"fields": fields})


def _mover(source: PlanRecord, ids: list[str]) -> _Step:
    to = (source.data.get("changes") or {}).get("to")
    if not to:
        raise UsageError(f"ledger plan {source.index} (move) does not say where the runs went: cannot move them back")

    async def act(client: "Client", record: Callable[[Outcome], None]) -> None:
        await client.move_runs(str(to), ids, source.path, on_outcome=record)

    return _Step(source, ids, "move", {"undo_of": source.index}, act, path=str(to), changes={"to": source.path})


# -- running steps into the ledger ---------------------------------------------------------------
async def _run(client: "Client", state: LedgerState, steps: Sequence[_Step],
               on_outcome: OutcomeHook | None) -> ApplyResult:
    viewer = await client.viewer()
    results = []
    with Ledger.append_to(state.path) as ledger:
        for step in steps:
            results.append(await _run_step(client, ledger, step, viewer.username, on_outcome))
    if len(results) == 1:
        return results[0]
    # Several plans (a policy's ledger): one result, each plan's verify kept under its index.
    outcomes = [o for r in results for o in r.outcomes]
    return ApplyResult(plan_index=results[0].plan_index, outcomes=outcomes,
                       skipped=[o for r in results for o in r.skipped],
                       verify={"ok": all(r.verify.get("ok") for r in results),
                               "plans": {r.plan_index: r.verify for r in results}},
                       ledger=state.path, counts=_counts(outcomes))


async def _run_step(client: "Client", ledger: Ledger, step: _Step, user: str,
                    on_outcome: OutcomeHook | None) -> ApplyResult:
    # A move back is counted where the runs return to: the source plan's project.
    counted = step.source.path
    live_before = await client.count_runs(counted)
    plan = {"action": step.action, "server": client.settings.base_url, "user": user, "path": step.path,
            "selection": {"kind": "ids", "ids": step.ids}, "changes": step.changes, "run_count": len(step.ids),
            "run_ids": step.ids, "live_count": live_before}
    index = ledger.add_plan(plan, options=step.options)
    ledger.sync()  # the plan is on disk before the first mutation
    outcomes: list[Outcome] = []

    def record(outcome: Outcome) -> None:
        outcomes.append(outcome)
        ledger.outcome(index, outcome)
        if on_outcome is not None:
            on_outcome(outcome)

    try:
        await step.act(client, record)
        ledger.sync()
        verify = await _verify(client, counted, step, outcomes, live_before)
    except asyncio.CancelledError:
        ledger.event(index, "interrupted", done=len(outcomes), remaining=len(step.ids) - len(outcomes))
        ledger.sync()
        raise
    ledger.done(index, verify=verify)
    ledger.sync()
    return ApplyResult(plan_index=index, outcomes=outcomes, skipped=[], verify=verify, ledger=ledger.path,
                       counts=_counts(outcomes))


async def _verify(client: "Client", path: str, step: _Step, outcomes: list[Outcome],
                  live_before: int) -> dict[str, Any]:
    """Every id checked where it should be live now; the live count moved by exactly the number
    brought back (restores and moves back) or not at all (reverts)."""
    ids = step.ids
    visible: set[str] = set()
    for s in range(0, len(ids), _LOOKUP):
        chunk = ids[s:s + _LOOKUP]
        visible.update([i async for i in client.run_ids(path, filters={"name": {"$in": chunk}})])
    live_after = await client.count_runs(path)
    final = {o.run_id: o for o in outcomes}
    missing = [i for i in ids if i not in final]  # no outcome at all
    unknown = [i for i, o in final.items() if o.status == "unknown"]
    not_visible = [i for i, o in final.items() if o.ok and i not in visible]
    brought = sum(1 for o in outcomes if o.status in ("restored", "moved"))
    count_ok = live_after - live_before == brought
    return {"pinned": len(ids), "checked": len(ids) - len(missing), "missing": missing[:20],
            "unknown": unknown[:20], "not_visible": not_visible[:20], "outcomes": _counts(outcomes),
            "live_before": live_before, "live_after": live_after, "expected_change": brought,
            "count_ok": count_ok, "ok": not missing and not unknown and not not_visible and count_ok}


def _counts(outcomes: Sequence[Outcome]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for o in outcomes:
        counts[o.status] = counts.get(o.status, 0) + 1
    return counts


def _read(client: "Client", ledger_path: str | Path) -> LedgerState:
    state = read_ledger(Path(ledger_path).expanduser())
    wrote = str(state.header.get("server") or "").rstrip("/")
    here = client.settings.base_url.rstrip("/")
    if wrote and wrote != here:
        raise UsageError(f"ledger {state.path} was written against {wrote}, not {here}",
                         hint=f"point the client at {wrote} (--base-url) to restore or undo it")
    return state
