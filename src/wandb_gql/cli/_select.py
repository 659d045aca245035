"""The options that choose runs for a change and govern how it is applied, declared once and
added to every changing command (`runs update|delete|archive|restore`) by `@selection_options`.

The decorated function receives them gathered in one `Choice` (keyword `choice`), which turns
them into a `cleanup.plan.Selection` and the options the ledger records. Stdlib and typer only
at import time (see _common).
"""

from __future__ import annotations

import functools
import inspect
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Annotated, Any, Callable, List, Optional, Sequence

import typer

if TYPE_CHECKING:
    from ..cleanup.plan import Selection

DEFAULT_MAX_RUNS = 10_000

MaxDriftOpt = Annotated[int, typer.Option(
    "--max-drift", metavar="N", min=0,
    help="Go on when at most N planned runs changed before acting (they are skipped); more: exit 3.")]

_OPTIONS: dict[str, tuple[Any, Any]] = {
    "older_than": (Annotated[Optional[str], typer.Option(
        "--older-than", metavar="AGE", show_default=False,
        help="Only runs created more than AGE ago: 30d, 12h, 2w.")], None),
    "states": (Annotated[Optional[List[str]], typer.Option(
        "--state", metavar="STATE,...", show_default=False,
        help="Only runs in these states, e.g. crashed,failed (repeatable).")], None),
    "users": (Annotated[Optional[List[str]], typer.Option(
        "--user", metavar="NAME", show_default=False, help="Only runs of this user (repeatable).")], None),
    "sweeps": (Annotated[Optional[List[str]], typer.Option(
        "--sweep", metavar="SWEEP_ID", show_default=False, help="Only runs of this sweep (repeatable).")], None),
    "keep_best": (Annotated[Optional[int], typer.Option(
        "--keep-best", metavar="K", min=0, show_default=False,
        help="Leave out the best K runs (of each --per group) by --by.")], None),
    "by": (Annotated[Optional[str], typer.Option(
        "--by", metavar="summary.METRIC", show_default=False,
        help="What --keep-best ranks by: summary.KEY or config.KEY.")], None),
    "mode": (Annotated[str, typer.Option(
        "--mode", metavar="max|min", help="Whether the best of --by is the highest (max) or lowest (min).")], "max"),
    "keep_last": (Annotated[Optional[int], typer.Option(
        "--keep-last", metavar="K", min=0, show_default=False,
        help="Leave out the newest K runs (of each --per group).")], None),
    "per": (Annotated[Optional[str], typer.Option(
        "--per", metavar="group|sweep|job_type", show_default=False,
        help="Keep the best/last K of each group, sweep or job type instead of K in all.")], None),
    "include_running": (Annotated[bool, typer.Option(
        "--include-running", help="Running runs too (they are left out unless this is given).")], False),
    "protect_tags": (Annotated[Optional[List[str]], typer.Option(
        "--protect-tag", metavar="TAG", show_default=False,
        help="Never touch runs with this tag, besides keep and protected (repeatable).")], None),
    "max_runs": (Annotated[int, typer.Option(
        "--max", metavar="N", min=1, help="Refuse a plan of more than N runs.")], DEFAULT_MAX_RUNS),
    "max_drift": (MaxDriftOpt, 0),
    "backup_history": (Annotated[bool, typer.Option(
        "--backup-history", help="Also keep each run's full history in the ledger (slower, bigger).")], False),
}


@dataclass(frozen=True)
class Choice:
    """The selection options as given on the command line."""

    older_than: Optional[str] = None
    states: Optional[List[str]] = None
    users: Optional[List[str]] = None
    sweeps: Optional[List[str]] = None
    keep_best: Optional[int] = None
    by: Optional[str] = None
    mode: str = "max"
    keep_last: Optional[int] = None
    per: Optional[str] = None
    include_running: bool = False
    protect_tags: Optional[List[str]] = None
    max_runs: int = DEFAULT_MAX_RUNS
    max_drift: int = 0
    backup_history: bool = False

    def selection(self, *, ids: Optional[Sequence[str]], filters: Optional[str], where: Optional[str],
                  every: bool, action: str) -> "Selection":
        """The checked Selection (UsageError, exit 2, before anything is sent)."""
        from ..cleanup.plan import Selection, protected_tags

        protect = None if not self.protect_tags else (*protected_tags(), *self.protect_tags)
        return Selection.choose(
            ids=ids, filters=filters, where=where, every=every, action=action,
            older_than=self.older_than, states=_split(self.states), users=_split(self.users),
            sweeps=_split(self.sweeps), keep_best=self.keep_best, by=self.by, mode=self.mode,
            keep_last=self.keep_last, per=self.per, include_running=self.include_running,
            protect_tags=protect, max_runs=self.max_runs)

    def options(self) -> dict[str, Any]:
        """What the ledger records beside the plan: every option that was given."""
        defaults = Choice()
        return {k: v for k, v in asdict(self).items() if v != getattr(defaults, k)}


def _split(values: Optional[Sequence[str]]) -> list[str]:
    """`--state crashed,failed --state killed` -> ['crashed', 'failed', 'killed']."""
    return list(dict.fromkeys(v.strip() for value in values or () for v in value.split(",") if v.strip()))


def selection_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """Add the selection options to a command; it receives them as `choice: Choice`."""
    signature = inspect.signature(func, eval_str=True)
    own = [p for p in signature.parameters.values() if p.name != "choice"]
    extra = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)
             for name, (annotation, default) in _OPTIONS.items()]

    @functools.wraps(func)
    def command(*args: Any, **kwargs: Any) -> Any:
        choice = Choice(**{name: kwargs.pop(name) for name in _OPTIONS})
        return func(*args, **kwargs, choice=choice)

    # typer reads the parameters from the signature and the annotations, not from `func`.
    # In the help, the selection options come before how to apply (--ledger, --yes, ...).
    names = [p.name for p in own]
    at = next((names.index(n) for n in ("ledger", "yes") if n in names), len(own))
    keyword = inspect.Parameter.KEYWORD_ONLY  # typer passes every value by name
    params = [p.replace(kind=keyword) for p in [*own[:at], *extra, *own[at:]]]
    command.__signature__ = signature.replace(parameters=params)  # type: ignore[attr-defined]
    command.__annotations__ = {p.name: p.annotation for p in params}
    del command.__wrapped__  # type: ignore[attr-defined]
    return command
