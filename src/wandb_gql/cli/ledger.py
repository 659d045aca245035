"""`wbgql ledger list|show|resume|undo`, and `runs restore --ledger` (which reads a ledger too).

A ledger records the server it was written against: commands that act on one talk to that
server unless --base-url/--local say otherwise, and refuse a --base-url that names another.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from ._apply import VERBS, restore_command, resume_command, run_change, summarize, undo_command
from ._common import (GLOBAL, DryRunOpt, Format, FormatOpt, YesOpt, confirm, dumps, errors, examples, new_app,
                      note, out_format, run, write)

if TYPE_CHECKING:
    from ..cleanup.ledger import LedgerState, PlanRecord
    from ..client import Client

ledger_app = new_app("The ledgers of past changes: list, show, resume an interrupted one, undo one.")

LedgerArg = Annotated[str, typer.Argument(metavar="LEDGER", show_default=False,
                                          help="A ledger file (see: wbgql ledger list).")]

LIST_COLUMNS = ["path", "created", "server", "user", "actions", "runs", "state"]


# ---------------------------------------------------------------------------- reading


@ledger_app.command("list", epilog=examples("wbgql ledger list", "wbgql ledger list -f json"))
def list_ledgers(fmt: FormatOpt = None) -> None:
    """The ledgers in the ledger folder, newest first: where, who, what, how many runs, and
    whether each finished (done) or stopped midway (interrupted: `wbgql ledger resume LEDGER`)."""
    from ..cleanup.ledger import ledger_dir, list_ledgers as found, read_ledger
    from ..errors import UsageError

    with errors():
        out = out_format(fmt)
        rows = []
        for path in found():
            try:
                state = read_ledger(path)
            except UsageError as e:
                rows.append({"path": str(path), "state": f"unreadable: {e.message}"})
                continue
            rows.append(_row(state))
        from .runs import make_writer

        make_writer(out, LIST_COLUMNS).write_all(rows).close()
        if not rows:
            note(f"no ledgers in {ledger_dir()}")


def _row(state: "LedgerState") -> dict[str, Any]:
    header = state.header
    counted = [len(p.run_ids) for p in state.plans if p.data.get("run_ids") is not None]
    return {"path": str(state.path), "created": header.get("created_at"), "server": header.get("server"),
            "user": header.get("user"), "actions": ",".join(dict.fromkeys(p.action for p in state.plans)),
            "runs": sum(counted), "state": _state(state)}


def _state(state: "LedgerState") -> str:
    if not state.plans:
        return "empty"
    return "done" if state.complete else "interrupted"


@ledger_app.command("show", epilog=examples("wbgql ledger show LEDGER", "wbgql ledger show LEDGER -f json"))
def show(ledger: LedgerArg, fmt: FormatOpt = None) -> None:
    """A ledger's header (server, user, command, time), its plans, outcome counts by status,
    and what is still pending."""
    from ..cleanup.ledger import read_ledger

    with errors():
        state = read_ledger(Path(ledger).expanduser())
        out = out_format(fmt)
        plans = [_plan_summary(p) for p in state.plans]
        if out in (Format.json, Format.jsonl):
            doc = {"path": str(state.path), "header": state.header, "state": _state(state), "torn": state.torn,
                   "plans": plans}
            write(dumps(doc, pretty=out == Format.json) + "\n")
            return
        if out in (Format.csv, Format.tsv):
            from .runs import make_writer

            rows = [{"plan": p["index"], "action": p["action"], "path": p["path"], "status": status, "runs": n}
                    for p in plans for status, n in {**p["counts"], "pending": p["pending_count"]}.items()]
            make_writer(out, ["plan", "action", "path", "status", "runs"]).write_all(rows).close()
            return
        header = state.header
        lines = [f"ledger: {state.path}",
                 f"server: {header.get('server')}" + (f" as {header.get('user')}" if header.get("user") else ""),
                 f"created: {header.get('created_at')} by {header.get('tool')}",
                 f"command: {' '.join(header.get('argv') or [])}",
                 f"state: {_state(state)}" + (" (its last line was cut off: ignored)" if state.torn else "")]
        for p in plans:
            lines.append(f"plan {p['index']}: {p['action']} {p['run_count'] if p['run_count'] is not None else 'the matching'}"
                         f" run(s) in {p['path']} ({p['selection']})")
            counts = ", ".join(f"{k.replace('_', ' ')} {v:,}" for k, v in p["counts"].items()) or "no outcomes yet"
            lines.append(f"  outcomes: {counts}; pending {p['pending_count']:,}")
            if p["pending"]:
                more = f", ... (+{p['pending_count'] - len(p['pending']):,} more)" if p["pending_count"] > len(p["pending"]) else ""
                lines.append(f"  pending: {', '.join(p['pending'])}{more}")
            lines.append("  " + ("done: " + _verify_text(p["verify"]) if p["done"] else "not done"))
        if not state.complete and state.plans:
            lines.append(f"resume: {resume_command(state.path)}")
        undo_with = undo_command(state.path, [p.action for p in state.plans])
        if undo_with:
            lines.append(f"undo: {undo_with}")
        write("\n".join(lines) + "\n")


def _plan_summary(plan: "PlanRecord") -> dict[str, Any]:
    counts: dict[str, int] = {}
    for outcome in plan.outcomes.values():
        counts[outcome.status] = counts.get(outcome.status, 0) + 1
    pending = plan.pending() if plan.done is None else []
    selection = plan.data.get("selection") or {}
    if selection.get("kind") == "ids":
        chosen = "given ids"
    elif selection.get("where") is not None:
        chosen = f"where {selection['where']}"
    else:
        chosen = f"filter {dumps(selection.get('filters'))}" if selection else "-"
    run_ids = plan.data.get("run_ids")
    return {"index": plan.index, "action": plan.action, "path": plan.path, "selection": chosen,
            "run_count": None if run_ids is None else len(run_ids), "counts": counts,
            "pending_count": len(pending), "pending": pending[:10], "done": plan.done is not None,
            "verify": (plan.done or {}).get("verify")}


def _verify_text(verify: Any) -> str:
    from ._apply import describe_verify

    return describe_verify(verify).removeprefix("verify: ")


# ---------------------------------------------------------------------------- acting on a ledger


def read_for_action(ledger: str) -> "LedgerState":
    """Read a ledger about to be acted on, and aim the command at the server it was written
    against (unless --local or --base-url says otherwise; a different --base-url is refused)."""
    from ..cleanup.ledger import read_ledger
    from ..errors import UsageError

    state = read_ledger(Path(ledger).expanduser())
    server = str(state.header.get("server") or "")
    given = GLOBAL.get("base_url")
    if GLOBAL.get("local") or not server:
        return state
    if given and given.rstrip("/") != server.rstrip("/"):
        raise UsageError(f"{state.path} was written against {server}, not {given}",
                         hint=f"drop --base-url (the ledger's server is used) or pass --base-url {server}")
    GLOBAL["base_url"] = server
    return state


def _on_the_server(client: "Client", state: "LedgerState") -> None:
    """The client talks to the ledger's server (the key may have come from elsewhere)."""
    from ..errors import UsageError

    server = str(state.header.get("server") or "")
    if not GLOBAL.get("local") and server and client.settings.base_url.rstrip("/") != server.rstrip("/"):
        raise UsageError(f"{state.path} was written against {server}, not {client.settings.base_url}",
                         hint=f"pass --base-url {server}")


def _describe(state: "LedgerState", what: str, plans: list["PlanRecord"], counts: list[int]) -> None:
    header = state.header
    lines = [f"server: {header.get('server')}" + (f" as {header.get('user')}" if header.get("user") else ""),
             f"ledger: {state.path}"]
    for plan, n in zip(plans, counts):
        lines.append(f"  plan {plan.index}: {what} {n:,} run(s) of its {plan.action} in {plan.path}")
    note("\n".join(lines))


@ledger_app.command("resume", epilog=examples("wbgql ledger resume LEDGER", "wbgql ledger resume LEDGER --yes -f jsonl"))
def resume(ledger: LedgerArg, yes: YesOpt = False, fmt: FormatOpt = None) -> None:
    """Go on with an interrupted change (Ctrl-C, kill -9, lost network): only the planned runs
    that have no outcome yet are acted on, nothing already done is repeated, nothing outside
    the plan is touched; the outcomes are added to the same ledger."""
    with errors():
        state = read_for_action(ledger)
        out = out_format(fmt)
        open_plans = [p for p in state.plans if p.done is None]
        if not open_plans:
            note(f"nothing to resume: every plan of {state.path} is done")
            return
        pending = [len(p.pending()) for p in open_plans]
        _describe(state, "resume", open_plans, pending)

        async def work(client: "Client") -> int:
            from ..cleanup.apply import resume as resume_ledger

            _on_the_server(client, state)
            confirm(f"resume {sum(pending):,} pending run(s) on {state.header.get('server')}?", yes)

            async def act(outcomes: Any) -> Any:
                return await resume_ledger(client, state.path, on_outcome=outcomes)

            results = await run_change(f"resuming {sum(pending):,} run(s)", sum(pending), out, state.path, act,
                                       resume=resume_command(state.path),
                                       undo=undo_command(state.path, [p.action for p in state.plans]))
            return summarize(results, out, state.plans, state.path)

        run(work)


@ledger_app.command("undo", epilog=examples("wbgql ledger undo LEDGER", "wbgql ledger undo LEDGER --yes -f json"))
def undo(ledger: LedgerArg, yes: YesOpt = False, dry_run: DryRunOpt = False, fmt: FormatOpt = None) -> None:
    """Put back what a ledger changed: updated runs get their previous values from the ledger's
    backups, deleted runs are restored (as `runs restore --ledger LEDGER`)."""
    with errors():
        state = read_for_action(ledger)
        out = out_format(fmt)
        changed = [p for p in state.plans if p.action != "restore"]
        counts = [sum(1 for o in p.outcomes.values() if o.status not in ("unchanged", "skipped", "not_found", "failed"))
                  for p in changed]
        _describe(state, "undo", changed, counts)
        if dry_run:
            note("dry run: nothing changed")
            return

        async def work(client: "Client") -> int:
            from ..cleanup.restore import undo as undo_ledger

            _on_the_server(client, state)
            confirm(f"undo {sum(counts):,} change(s) on {state.header.get('server')}?", yes)

            async def act(outcomes: Any) -> Any:
                return await undo_ledger(client, state.path, on_outcome=outcomes)

            result = await run_change(f"{VERBS['undo']} {sum(counts):,} change(s)", sum(counts), out, state.path,
                                      act, resume=f"{_undo_again(state)} (again: what is already undone stays so)",
                                      undo=None)
            return summarize([result], out, [{"action": "undo", "path": ", ".join(p.path for p in changed)}],
                             state.path)

        run(work)


def restore_from_ledger(ledger: str, path: Optional[str], *, recreate: bool, yes: bool, dry_run: bool,
                        fmt: Format) -> None:
    """`runs restore --ledger LEDGER`: exactly the runs that ledger deleted come back."""
    from ..errors import UsageError

    state = read_for_action(ledger)
    deletes = [p for p in state.plans if p.action == "delete"]
    if not deletes:
        raise UsageError(f"{state.path} deleted nothing: no delete plan in it",
                         hint=f"to put back updates: wbgql ledger undo {state.path}")
    if path is not None and all(not _same_project(path, p.path) for p in deletes):
        raise UsageError(f"{state.path} deleted runs of {', '.join(p.path for p in deletes)}, not {path}",
                         hint="leave out ENTITY/PROJECT: the ledger says where")
    counts = [sum(1 for o in p.outcomes.values() if o.status in ("deleted", "unknown")) for p in deletes]
    _describe(state, "restore", deletes, counts)
    if recreate:
        note("  runs already purged are re-created from the ledger's backup (--recreate)")
    if dry_run:
        note("dry run: nothing changed")
        return

    async def work(client: "Client") -> int:
        from ..cleanup.restore import restore_from_ledger as restore

        _on_the_server(client, state)
        confirm(f"restore {sum(counts):,} run(s) on {state.header.get('server')}?", yes)

        async def act(outcomes: Any) -> Any:
            return await restore(client, state.path, recreate=recreate, on_outcome=outcomes)

        result = await run_change(f"restoring {sum(counts):,} run(s)", sum(counts), fmt, state.path, act,
                                  resume=f"{restore_command(state.path)} (again: runs already back stay so)",
                                  undo=None)
        return summarize([result], fmt, [{"action": "restore", "path": ", ".join(p.path for p in deletes)}],
                         state.path)

    run(work)


def _undo_again(state: "LedgerState") -> str:
    return str(undo_command(state.path, [p.action for p in state.plans]))


def _same_project(given: str, recorded: str) -> bool:
    """'demo/vision' or 'vision' (default entity) against the ledger's ENTITY/PROJECT."""
    given = given.strip("/")
    return given == recorded or ("/" not in given and recorded.split("/", 1)[-1] == given)
