"""Driving the cleanup engine from the command line: show a plan, ask, open the ledger (its path
printed before anything changes), apply, stream outcomes, report the summary and the verify
result; on Ctrl-C say what was done and the exact command that resumes or undoes it.

Used by `runs update|delete|archive|restore`, `ledger resume|undo` and `cleanup apply`. Stdlib
and typer only at import time (see _common); the engine is imported inside the functions.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Iterable, Optional, Sequence

from ._common import EXIT_FAILURE, GLOBAL, STATUS, Format, dumps, note, warn, write

if TYPE_CHECKING:
    from ..cleanup.apply import ApplyResult
    from ..cleanup.ledger import Ledger
    from ..cleanup.plan import Plan
    from ..client import Client
    from ..models import Outcome

VERBS = {"update": "updating", "delete": "deleting", "restore": "restoring", "tag": "tagging",
         "move": "moving", "undo": "undoing"}


# ---------------------------------------------------------------------------- commands to print


def command_prefix() -> str:
    """`wbgql`, with --local when this command used the embedded server. No --base-url: a ledger
    names its server and the ledger commands go there; never the key."""
    return "wbgql --local" if GLOBAL.get("local") else "wbgql"


def resume_command(ledger: Path) -> str:
    return f"{command_prefix()} ledger resume {shlex.quote(str(ledger))}"


def restore_command(ledger: Path) -> str:
    return f"{command_prefix()} runs restore --ledger {shlex.quote(str(ledger))}"


def undo_command(ledger: Path, actions: Iterable[str]) -> Optional[str]:
    """Deletes come back with `runs restore --ledger`; other changes with `ledger undo`; a
    restore or an undo is not undone, and pruned artifact versions cannot come back (None)."""
    changes = set(actions) - {"restore", "undo", "prune_artifacts"}
    if not changes:
        return None
    if changes == {"delete"}:
        return restore_command(ledger)
    return f"{command_prefix()} ledger undo {shlex.quote(str(ledger))}"


# ---------------------------------------------------------------------------- outcomes as they come


class Outcomes:
    """The `on_outcome` hook: each outcome as a JSON line on stdout (with -f jsonl) the moment it
    is known, the status bar advanced, and a tally for the interrupted and final reports."""

    def __init__(self, fmt: Format) -> None:
        self.fmt = fmt
        self.counts: dict[str, int] = {}
        self.failed = 0
        self.streamed: set[tuple[str, str]] = set()

    def __call__(self, outcome: "Outcome") -> None:
        self.counts[outcome.status] = self.counts.get(outcome.status, 0) + 1
        if not outcome.ok:
            self.failed += 1
        STATUS.advance(failed=not outcome.ok)
        self.stream(outcome)

    def stream(self, outcome: "Outcome") -> None:
        if self.fmt != Format.jsonl or (outcome.run_id, outcome.status) in self.streamed:
            return
        self.streamed.add((outcome.run_id, outcome.status))
        write(dumps({"run_id": outcome.run_id, "status": outcome.status, "error": outcome.error}) + "\n")

    @property
    def done(self) -> int:
        return sum(self.counts.values())


# ---------------------------------------------------------------------------- running a change


async def run_change(label: str, total: Optional[int], fmt: Format, ledger: Path, act: Callable[[Outcomes], Awaitable[Any]],
                     *, resume: str, undo: Optional[str]) -> Any:
    """Run `act(outcomes)` with the status bar; on Ctrl-C (the task cancelled) say what was done
    and the commands that go on (`resume`) or back (`undo`), then let the interruption end the
    command (exit 130)."""
    import asyncio

    outcomes = Outcomes(fmt)
    STATUS.start(label, total=total, outcomes=True)
    ticker = ticking()
    try:
        return await act(outcomes)
    except (asyncio.CancelledError, KeyboardInterrupt):
        STATUS.stop()
        done = ", ".join(f"{k.replace('_', ' ')} {v:,}" for k, v in outcomes.counts.items()) or "nothing yet"
        left = f"; {max(total - outcomes.done, 0):,} not done" if total is not None else ""
        note(f"interrupted: {done}{left}")
        note(f"ledger: {ledger}")
        note(f"resume: {resume}")
        if undo:
            note(f"undo:   {undo}")
        raise
    finally:
        ticker.cancel()
        STATUS.stop()


def ticking() -> Any:
    """Redraws the status line every 0.25 s, so it stays alive while a slow request is awaited."""
    import asyncio

    async def tick() -> None:
        while True:
            await asyncio.sleep(0.25)
            STATUS.advance(0)

    return asyncio.ensure_future(tick())


def open_ledger(where: Optional[str], plan: "Plan", name: Optional[str] = None) -> "Ledger":
    """A new ledger (--ledger PATH, else the default folder), its path printed before acting."""
    from ..cleanup.ledger import Ledger, new_ledger_path

    path = Path(where).expanduser() if where else new_ledger_path(name or plan.action, plan.path)
    ledger = Ledger.create(path, server=plan.server, user=plan.user, argv=sys.argv)
    note(f"ledger: {ledger.path}")
    return ledger


async def apply_one(client: "Client", plan: "Plan", fmt: Format, *, ledger_path: Optional[str], max_drift: int,
                    backup_history: bool, options: dict[str, Any]) -> int:
    """Apply one confirmed plan through the engine, with its ledger; returns the exit code."""
    from ..cleanup.apply import apply_plan
    from ..errors import PlanError

    count = len(plan.run_ids) if plan.run_ids is not None else None
    with open_ledger(ledger_path, plan) as ledger:
        async def act(outcomes: Outcomes) -> "ApplyResult":
            return await apply_plan(client, plan, ledger=ledger, options=options, max_drift=max_drift,
                                    backup_history=backup_history, on_outcome=outcomes)

        label = f"{VERBS.get(plan.action, plan.action)} " + (f"{count:,} run(s)" if count is not None else "runs")
        try:
            result = await run_change(label, count, fmt, ledger.path, act, resume=resume_command(ledger.path),
                                      undo=undo_command(ledger.path, [plan.action]))
        except PlanError:
            name_skipped(ledger.path)
            raise
    return summarize([result], fmt, [plan], ledger.path)


def name_skipped(ledger: Path) -> None:
    """After a refused drift: every run that changed since the plan, and why (from the ledger)."""
    from ..cleanup.ledger import read_ledger

    try:
        state = read_ledger(ledger)
    except Exception:  # the error report still stands; this only adds names to it
        return
    for plan in state.plans:
        for event in plan.events:
            for skipped in event.get("skipped") or () if event.get("kind") == "drift" else ():
                warn(f"{plan.path}/{skipped.get('run_id')} changed since the plan: {skipped.get('why') or 'drift'}")
    note(f"nothing changed; ledger: {ledger}")


# ---------------------------------------------------------------------------- the summary


def summarize(results: Sequence["ApplyResult"], fmt: Format, plans: Sequence[Any], ledger: Path) -> int:
    """The final report: counts by status (table/tsv/csv), or one JSON summary; the verify
    result and how to undo on stderr. Exit 0 when every outcome is ok and verify passed, else 1."""
    from ..cleanup.plan import tally

    rows: list[dict[str, Any]] = []
    ok = True
    for result in results:
        everything = [*result.outcomes, *result.skipped]
        counts, all_ok = tally(everything)
        verified = _verified(result.verify)
        ok = ok and result.ok and all_ok and verified is not False
        plan = _plan_for(result, plans)
        rows.append({"plan": result.plan_index, "action": _get(plan, "action"), "path": _get(plan, "path"),
                     "counts": counts, "ok": result.ok and all_ok, "verify": result.verify,
                     "interrupted": result.interrupted,
                     "not_ok": [_outcome(o) for o in result.outcomes if not o.ok],
                     "skipped": [_outcome(o) for o in result.skipped]})
        for o in result.skipped:
            warn(f"skipped {o.run_id}: {o.error or 'changed since the plan'}")
        for o in result.outcomes:
            if not o.ok:
                warn(f"{o.status} {o.run_id}" + (f": {o.error}" if o.error else ""))
        summary = ", ".join(f"{k.replace('_', ' ')} {v:,}" for k, v in counts.items()) or "nothing"
        note(f"{_get(plan, 'action') or 'plan'}: {summary}")
        note(describe_verify(result.verify))
    undo = undo_command(ledger, [str(r["action"]) for r in rows if r["action"]])
    if fmt == Format.json:
        write(dumps({"ok": ok, "ledger": str(ledger), "plans": rows,
                     "undo": undo}, pretty=True) + "\n")
    elif fmt != Format.jsonl:
        from .runs import make_writer

        table = [{"plan": r["plan"], "action": r["action"], "path": r["path"], "status": status, "runs": n}
                 for r in rows for status, n in r["counts"].items()]
        make_writer(fmt, ["plan", "action", "path", "status", "runs"] if len(rows) > 1
                    else ["status", "runs"]).write_all(table).close()
    note(f"ledger: {ledger}")
    if undo:
        note(f"undo: {undo}")
    return 0 if ok else EXIT_FAILURE


def describe_verify(verify: Any) -> str:
    """The engine's verify record in one line for people: the verdict, how many pinned runs were
    checked, how the project's live count moved against what was expected, and what is amiss."""
    if not verify:
        return "verify: not done"
    verdict = _verified(verify)
    parts = []
    if "pinned" in verify:
        parts.append(f"{verify.get('checked', 0):,} of {verify['pinned']:,} pinned run(s) checked")
    if verify.get("live_before") is not None and verify.get("live_after") is not None:
        parts.append(f"live runs {verify['live_before']:,} -> {verify['live_after']:,} "
                     f"(expected {verify.get('expected_change', 0):+,})")
    known = {"ok", "pinned", "checked", "live_before", "live_after", "expected_change", "count_ok", "outcomes"}
    parts += [f"{k.replace('_', ' ')}: {_short(v)}" for k, v in verify.items() if k not in known and v not in ([], {}, None)]
    head = "verify: " + ("ok" if verdict else "FAILED" if verdict is False else "done")
    return head + (f" ({'; '.join(parts)})" if parts else "")


def _verified(verify: Any) -> Optional[bool]:
    if isinstance(verify, dict) and isinstance(verify.get("ok"), bool):
        return bool(verify["ok"])
    return None


def _short(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        shown = ", ".join(str(v) for v in value[:5])
        return f"[{shown}{', ...' if len(value) > 5 else ''}]"
    return str(value)


def _plan_for(result: "ApplyResult", plans: Sequence[Any]) -> Any:
    for plan in plans:
        if getattr(plan, "index", None) == result.plan_index:
            return plan
    index = result.plan_index
    return plans[index] if 0 <= index < len(plans) else (plans[0] if len(plans) == 1 else None)


def _get(plan: Any, key: str) -> Any:
    if plan is None:
        return None
    if isinstance(plan, dict):
        return plan.get(key)
    value = getattr(plan, key, None)
    return value() if callable(value) else value


def _outcome(o: "Outcome") -> dict[str, Any]:
    return {"run_id": o.run_id, "status": o.status, "error": o.error}
