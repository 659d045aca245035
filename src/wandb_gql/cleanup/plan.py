"""What a change will act on, decided before anything changes.

    selection = Selection.choose(where="state = crashed", action="delete")   # checked, nothing sent
    plan = await make_plan(client, "demo/vision", selection, "delete", details=[...])
    ...show plan.describe(), ask...
    outcomes = await client.delete_runs(plan.path, plan.run_ids)

A `Selection` is how runs are chosen: explicit ids, a filter, or every run (only when asked for
in so many words). A `Plan` pins the chosen runs to ids, with who acts where, so the change acts
on exactly what was shown. Restoring by filter is the exception: W&B cannot list deleted runs,
so such a plan has no ids and says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterable, Sequence

from ..errors import UsageError
from ..models import Outcome

if TYPE_CHECKING:
    from ..client import Client

__all__ = ["Selection", "Plan", "make_plan", "tally", "read_ids"]

ACTIONS = ("update", "delete", "restore")


@dataclass(frozen=True)
class Selection:
    """How the runs are chosen: `kind` "ids" (those run ids), "filter" (W&B filter JSON, from
    `expression` when it was --where text) or "all" (every run, asked for explicitly)."""

    kind: str
    ids: tuple[str, ...] = ()
    filters: dict[str, Any] = field(default_factory=dict, hash=False)
    expression: str | None = None
    every: bool = False  # the filter may match every run: the caller said so (--all)
    warnings: tuple[str, ...] = ()  # lint of the filter: W&B traps, each naming its fix

    @classmethod
    def choose(cls, *, ids: Iterable[str] | None = None, filters: dict[str, Any] | str | None = None,
               where: str | None = None, every: bool = False, action: str = "change") -> "Selection":
        """Check a selection before anything is sent (UsageError, exit 2): ids or a filter, not
        both; nothing at all is refused; so is a filter that matches every run, unless `every`."""
        from ..filters import lint, matches_every_run, resolve_filters

        chosen = list(dict.fromkeys(i.strip() for i in ids or () if i.strip()))
        if chosen and (filters is not None or where is not None or every):
            raise UsageError(f"give either run ids (--id/--ids-from) or a filter (--where/--filters/--all) "
                             f"to {action}, not both")
        if chosen:
            return cls("ids", ids=tuple(chosen))
        if filters is None and where is None and not every:
            raise UsageError(f"refusing to {action} without --id, --ids-from, --where or --filters",
                             hint="pass --all if every run of the project is what you mean")
        compiled = resolve_filters(filters, where)
        query = compiled.filters
        if not query:
            if not every:
                raise UsageError(f"refusing to {action} by an empty filter: it matches every run",
                                 hint="narrow the filter, or pass --all if every run is what you mean")
            return cls("all", every=True)
        if not every:
            reason = matches_every_run(query)
            if reason:
                raise UsageError(f"refusing to {action} by a filter that matches every run ({reason})",
                                 hint="narrow the filter, or pass --all if every run is what you mean")
        warnings = tuple(w.message for w in lint(compiled))
        return cls("filter", filters=query, expression=where, every=every, warnings=warnings)

    def describe(self) -> str:
        if self.kind == "ids":
            return "given ids"
        if self.kind == "all":
            return "--all: every run"
        from ..export import dumps

        text = f"where {self.expression}" if self.expression is not None else f"filter {dumps(self.filters)}"
        return text + (" (--all)" if self.every else "")

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind}
        if self.kind == "ids":
            out["ids"] = list(self.ids)
        else:
            out["filters"] = self.filters
            if self.expression is not None:
                out["where"] = self.expression
            out["every"] = self.every
        return out


@dataclass(frozen=True)
class Plan:
    """One change, pinned: on `server` as `user`, `action` the runs `run_ids` of `path`
    (ENTITY/PROJECT), chosen by `selection`. `details` say what changes, for people; `changes`
    the same for programs. `run_ids` is None only when restoring by filter."""

    action: str
    server: str
    user: str | None
    path: str
    selection: Selection
    run_ids: tuple[str, ...] | None
    details: tuple[str, ...] = ()
    changes: dict[str, Any] = field(default_factory=dict, hash=False)

    @property
    def empty(self) -> bool:
        return self.run_ids is not None and not self.run_ids

    def describe(self, shown: int = 10) -> list[str]:
        """The plan as lines for people: where and as whom first, then what and which runs."""
        lines = [f"server: {self.server}" + (f" as {self.user}" if self.user else "")]
        if self.run_ids is None:
            lines.append(f"plan: {self.action} the deleted runs in {self.path} matching "
                         f"{self.selection.describe()}")
            lines.append("  (W&B restores by filter: which runs came back is listed afterwards)")
        else:
            ids = self.run_ids
            more = f", ... (+{len(ids) - shown:,} more)" if len(ids) > shown else ""
            lines.append(f"plan: {self.action} {len(ids):,} run(s) in {self.path} ({self.selection.describe()})")
            lines += [f"  {d}" for d in self.details]
            lines.append(f"  runs: {', '.join(ids[:shown])}{more}")
            return lines
        lines += [f"  {d}" for d in self.details]
        return lines

    def to_dict(self) -> dict[str, Any]:
        return {"action": self.action, "server": self.server, "user": self.user, "path": self.path,
                "selection": self.selection.to_dict(), "changes": self.changes,
                "run_count": None if self.run_ids is None else len(self.run_ids),
                "run_ids": None if self.run_ids is None else list(self.run_ids)}


async def make_plan(client: "Client", path: str, selection: Selection, action: str, *,
                    details: Sequence[str] = (), changes: dict[str, Any] | None = None) -> Plan:
    """Resolve the selection to run ids now (ids as given; a filter through the server's id-only
    listing), with the server and user the change will run as."""
    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r}: one of {', '.join(ACTIONS)}")
    entity, project = await client.project_path(path)
    full = f"{entity}/{project}"
    viewer = await client.viewer()
    if selection.kind == "ids":
        ids: tuple[str, ...] | None = selection.ids
    elif action == "restore":
        ids = None  # deleted runs cannot be listed: the filter goes to W&B's undeleteRuns as is
    else:
        ids = tuple([run_id async for run_id in client.run_ids(full, filters=selection.filters)])
    return Plan(action=action, server=client.settings.base_url, user=viewer.username, path=full,
                selection=selection, run_ids=ids, details=tuple(details), changes=dict(changes or {}))


def tally(outcomes: Iterable[Outcome]) -> tuple[dict[str, int], bool]:
    """(status -> how many, whether every outcome is ok)."""
    counts: dict[str, int] = {}
    ok = True
    for outcome in outcomes:
        counts[outcome.status] = counts.get(outcome.status, 0) + 1
        ok = ok and outcome.ok
    return counts, ok


def read_ids(lines: Iterable[str]) -> list[str]:
    """Run ids from text, one per line: blank lines and `#` comments are skipped, duplicates
    dropped (first one kept)."""
    ids: dict[str, None] = {}
    for line in lines:
        text = line.split("#", 1)[0].strip()
        if text:
            ids[text] = None
    return list(ids)
