"""`wbgql cleanup plan|apply POLICY.toml`: retention policies as code (wandb_gql.cleanup.policies).

`plan` shows what the policy would do now and changes nothing; `apply` plans again, asks (or
takes --yes), and applies every plan into one ledger. Made for cron: exit 0 when everything went
well, 1 when some runs failed, 2 for a bad policy, 3 when a plan was refused or drifted.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from ._apply import name_skipped, resume_command, run_change, summarize, undo_command
from ._common import (Format, FormatOpt, YesOpt, confirm, dumps, errors, examples, new_app, note, out_format, run,
                      write)
from ._select import MaxDriftOpt

if TYPE_CHECKING:
    from ..cleanup.plan import Plan
    from ..client import Client

cleanup_app = new_app("Retention policies as code: plan, then apply, the rules of a POLICY.toml file.")

PolicyArg = Annotated[str, typer.Argument(metavar="POLICY.toml", show_default=False,
                                          help="A policy file (an example: examples/cleanup-policy.toml).")]


def _load(policy: str) -> Any:
    from ..cleanup.policies import load_policy

    return load_policy(Path(policy).expanduser())


async def _plans(client: "Client", policy: Any) -> list["Plan"]:
    from ..cleanup.policies import plan_policy

    from ._apply import ticking
    from ._common import STATUS

    STATUS.start("planning the policy", bar=False)
    ticker = ticking()
    try:
        plans = list(await plan_policy(client, policy))
    finally:
        ticker.cancel()
        STATUS.stop()
    for plan in plans:
        note("\n".join(plan.describe()))
    return plans


def _total(plans: list["Plan"]) -> int:
    return sum(len(p.run_ids or ()) for p in plans)


@cleanup_app.command("plan", epilog=examples("wbgql cleanup plan examples/cleanup-policy.toml",
                                             "wbgql cleanup plan POLICY.toml -f json > plan.json"))
def plan(policy: PolicyArg, fmt: FormatOpt = None) -> None:
    """What the policy would do now, rule by rule (server and user first); changes nothing.
    With -f json: every plan as JSON on stdout, run ids included."""
    with errors():
        rules = _load(policy)
        out = out_format(fmt)

        async def work(client: "Client") -> int:
            plans = await _plans(client, rules)
            if out in (Format.json, Format.jsonl):
                docs = [p.to_dict() for p in plans]
                if out == Format.json:
                    write(dumps(docs, pretty=True) + "\n")
                else:
                    write("".join(dumps(d) + "\n" for d in docs))
            note(f"{len(plans)} plan(s), {_total(plans):,} run(s): nothing changed (apply: wbgql cleanup apply {policy})")
            return 0

        run(work)


@cleanup_app.command("apply", epilog=examples("wbgql cleanup apply examples/cleanup-policy.toml",
                                              "wbgql cleanup apply POLICY.toml --yes -f json   (cron: exit 0/1/3)"))
def apply(
    policy: PolicyArg,
    ledger: Annotated[Optional[str], typer.Option(
        "--ledger", metavar="LEDGER", show_default=False,
        help="Write the ledger to this file [default: a new file in the ledger folder].")] = None,
    max_drift: MaxDriftOpt = 0,
    yes: YesOpt = False,
    fmt: FormatOpt = None,
) -> None:
    """Plan the policy, show it, ask (or --yes), then apply every plan into one ledger (its path
    printed first), verify, and summarise. Exit 0 ok, 1 some runs failed, 3 refused or drifted."""
    with errors():
        rules = _load(policy)
        out = out_format(fmt)

        async def work(client: "Client") -> int:
            from ..cleanup.ledger import Ledger, new_ledger_path
            from ..cleanup.policies import apply_policy
            from ..errors import PlanError

            plans = [p for p in await _plans(client, rules) if not p.empty]
            if not plans:
                note("nothing to do: no rule matches any run")
                if out == Format.json:
                    write(dumps({"ok": True, "ledger": None, "plans": []}, pretty=True) + "\n")
                return 0
            first = plans[0]
            confirm(f"apply {len(plans)} plan(s), {_total(plans):,} run(s), on {first.server}?", yes)
            path = Path(ledger).expanduser() if ledger else new_ledger_path("policy", Path(policy).stem)
            with Ledger.create(path, server=first.server, user=first.user, argv=sys.argv) as book:
                note(f"ledger: {book.path}")

                async def act(outcomes: Any) -> Any:
                    return await apply_policy(client, plans, ledger=book, max_drift=max_drift, on_outcome=outcomes)

                try:
                    results = await run_change(f"applying {len(plans)} plan(s)", _total(plans), out, book.path, act,
                                               resume=resume_command(book.path),
                                               undo=undo_command(book.path, [p.action for p in plans]))
                except PlanError:
                    name_skipped(book.path)
                    raise
            return summarize(results, out, plans, book.path)

        run(work)
