"""What a change will act on, decided before anything changes.

    selection = Selection.choose(where="state = crashed", older_than="30d")   # checked, nothing sent
    plan = await make_plan(client, "demo/vision", selection, "delete")     # pinned ids, counted
    ...show plan.describe(), ask...
    result = await apply_plan(client, plan, ledger=ledger)                 # cleanup.apply

A `Selection` is how runs are chosen: explicit ids, a filter, or every run (only when asked for
in so many words), narrowed by the selection options (older than, states, users, sweeps, all
but the best or newest K per group) and bounded by the rails: running runs and runs with a
protected tag are never chosen unless asked, a selection that is every live run of the project
(decided by counting, whatever the filter) needs `every`, and more than `max_runs` is refused.
A `Plan` pins the chosen runs to ids, with who acts where and what they look like, so the change
acts on exactly what was shown. Restoring by filter is the exception: W&B cannot list deleted
runs, so such a plan has no ids and says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterable, Sequence

from ..errors import PlanError, UsageError
from ..models import Outcome
from .config import DEFAULT_PROTECT_TAGS, protected_tags

if TYPE_CHECKING:
    from ..client import Client
    from ..models import Run

__all__ = ["Selection", "Plan", "make_plan", "tally", "read_ids", "DEFAULT_PROTECT_TAGS", "protected_tags", "ACTIONS"]

ACTIONS = ("update", "delete", "restore", "tag", "move")
PER = ("group", "sweep", "job_type")
MODES = ("min", "max")
SAMPLE = 10
_LOOKUP_BATCH = 500  # ids per `name $in [...]` when explicit ids are resolved
# What a plan shows of each run; the selection options may need more (see Selection.fields).
_PLAN_FIELDS = ("display_name", "state", "tags", "group", "created_at")


@dataclass(frozen=True)
class Selection:
    """How the runs are chosen: `kind` "ids" (those run ids), "filter" (W&B filter JSON, from
    `expression` when it was --where text, with the selection options and-ed on) or "all" (every
    run, asked for explicitly). The rest are the options and rails, kept for the plan."""

    kind: str
    ids: tuple[str, ...] = ()
    filters: dict[str, Any] = field(default_factory=dict, hash=False)
    expression: str | None = None
    every: bool = False  # the filter may match every run: the caller said so (--all)
    warnings: tuple[str, ...] = ()  # lint of the filter: W&B traps, each naming its fix
    options: dict[str, Any] = field(default_factory=dict, hash=False)  # older_than, states, users, sweeps
    keep_best: int | None = None
    by: str | None = None
    mode: str = "max"
    keep_last: int | None = None
    per: str | None = None
    include_running: bool = False
    protect_tags: tuple[str, ...] = DEFAULT_PROTECT_TAGS
    max_runs: int | None = 10_000

    @classmethod
    def choose(cls, *, ids: Iterable[str] | None = None, filters: dict[str, Any] | str | None = None,
               where: str | None = None, every: bool = False, action: str = "change",
               older_than: str | None = None, states: Sequence[str] = (), users: Sequence[str] = (),
               sweeps: Sequence[str] = (), keep_best: int | None = None, by: str | None = None,
               mode: str = "max", keep_last: int | None = None, per: str | None = None,
               include_running: bool = False, protect_tags: Sequence[str] | None = None,
               max_runs: int | None = 10_000) -> "Selection":
        """Check a selection before anything is sent (UsageError, exit 2): ids or a filter, not
        both; nothing at all is refused; so is a filter that matches every run, unless `every`;
        and every option that is malformed, naming the fix."""
        from ..filters import lint, matches_every_run, resolve_filters

        rails = _rails(keep_best=keep_best, by=by, mode=mode, keep_last=keep_last, per=per,
                       include_running=include_running, protect_tags=protect_tags, max_runs=max_runs)
        options = _options(older_than, states, users, sweeps)
        chosen = list(dict.fromkeys(i.strip() for i in ids or () if i.strip()))
        if chosen and (filters is not None or where is not None or every):
            raise UsageError(f"give either run ids (--id/--ids-from) or a filter (--where/--filters/--all) "
                             f"to {action}, not both")
        if chosen:
            if options:
                raise UsageError(f"give either run ids or selection options ({', '.join(options)}) to {action}, "
                                 "not both", hint="the options narrow a filter; ids are taken as they are")
            return cls("ids", ids=tuple(chosen), **rails)
        if filters is None and where is None and not every and not options:
            raise UsageError(f"refusing to {action} without --id, --ids-from, --where or --filters",
                             hint="pass --all if every run of the project is what you mean")
        compiled = resolve_filters(filters, where)
        query = _and([compiled.filters, *_option_filters(options)])
        if not query:
            if not every:
                raise UsageError(f"refusing to {action} by an empty filter: it matches every run",
                                 hint="narrow the filter, or pass --all if every run is what you mean")
            return cls("all", every=True, **rails)
        if not every:
            reason = matches_every_run(query)
            if reason:
                raise UsageError(f"refusing to {action} by a filter that matches every run ({reason})",
                                 hint="narrow the filter, or pass --all if every run is what you mean")
        warnings = tuple(w.message for w in lint(compiled)) if compiled.filters else ()
        return cls("filter", filters=query, expression=where, every=every, warnings=warnings, options=options,
                   **rails)

    @property
    def metric(self) -> tuple[str, str] | None:
        """keep_best's ("summary" | "config", key)."""
        if self.by is None:
            return None
        head, _, key = self.by.partition(".")
        return head, key

    def fields(self) -> tuple[list[str], list[str] | None, list[str] | None]:
        """What resolving needs from the server: Run fields, config keys, summary keys."""
        wanted = list(_PLAN_FIELDS)
        if self.per in ("sweep", "job_type"):
            wanted.append(self.per)
        metric = self.metric
        config = [metric[1]] if metric and metric[0] == "config" else None
        summary = [metric[1]] if metric and metric[0] == "summary" else None
        return wanted, config, summary

    def describe(self) -> str:
        if self.kind == "ids":
            text = "given ids"
        elif self.kind == "all":
            text = "--all: every run"
        else:
            from ..export import dumps

            text = f"where {self.expression}" if self.expression is not None else f"filter {dumps(self.filters)}"
            text += "".join(f", {k.replace('_', ' ')} {_shown(v)}" for k, v in self.options.items())
            text += " (--all)" if self.every else ""
        for label, value in (("keep best", self.keep_best), ("keep last", self.keep_last)):
            if value is not None:
                by = f" by {self.by} ({self.mode})" if label == "keep best" else ""
                text += f", {label} {value}{by}" + (f" per {self.per}" if self.per else "")
        return text

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind}
        if self.kind == "ids":
            out["ids"] = list(self.ids)
        else:
            out["filters"] = self.filters
            if self.expression is not None:
                out["where"] = self.expression
            out["every"] = self.every
            if self.options:
                out["options"] = self.options
        out.update(keep_best=self.keep_best, by=self.by, mode=self.mode, keep_last=self.keep_last, per=self.per,
                   include_running=self.include_running, protect_tags=list(self.protect_tags),
                   max_runs=self.max_runs)
        return out

    def excludes(self, run: "Run") -> str | None:
        """Why a rail keeps this run out ("running" | "protected"), or None."""
        if not self.include_running and run.state == "running":
            return "running"
        if any(t in self.protect_tags for t in run.tags or ()):
            return "protected"
        return None


def _rails(*, keep_best: int | None, by: str | None, mode: str, keep_last: int | None, per: str | None,
           include_running: bool, protect_tags: Sequence[str] | None, max_runs: int | None) -> dict[str, Any]:
    if keep_best is not None:
        if keep_best < 0:
            raise UsageError(f"--keep-best must be 0 or more, not {keep_best}")
        if not by:
            raise UsageError("--keep-best needs --by summary.<metric> (or config.<key>)",
                             hint="e.g. --keep-best 3 --by summary.val/acc --mode max")
    if by is not None:
        head, _, key = by.partition(".")
        if head not in ("summary", "config") or not key:
            raise UsageError(f"--by {by!r}: expected summary.<metric> or config.<key>", hint="e.g. --by summary.val/acc")
        if keep_best is None:
            raise UsageError("--by only ranks runs for --keep-best: give --keep-best K too")
    if mode not in MODES:
        raise UsageError(f"--mode {mode!r}: expected min or max")
    if keep_last is not None and keep_last < 0:
        raise UsageError(f"--keep-last must be 0 or more, not {keep_last}")
    if per is not None:
        if per not in PER:
            raise UsageError(f"--per {per!r}: expected one of {', '.join(PER)}")
        if keep_best is None and keep_last is None:
            raise UsageError("--per groups runs for --keep-best or --keep-last: give one of them too")
    if max_runs is not None and max_runs < 1:
        raise UsageError(f"--max must be at least 1, not {max_runs}")
    tags = protected_tags() if protect_tags is None else tuple(dict.fromkeys(t for t in protect_tags if t))
    return {"keep_best": keep_best, "by": by, "mode": mode, "keep_last": keep_last, "per": per,
            "include_running": include_running, "protect_tags": tags, "max_runs": max_runs}


def _options(older_than: str | None, states: Sequence[str], users: Sequence[str],
             sweeps: Sequence[str]) -> dict[str, Any]:
    from .._time import ago, parse_duration
    from ..filters import RUN_STATES

    options: dict[str, Any] = {}
    if older_than is not None:
        try:
            options["older_than"] = older_than
            options["created_before"] = ago(parse_duration(older_than))  # pinned now, as --where's "ago" is
        except ValueError as e:
            raise UsageError(f"--older-than: {e}") from None
    unknown = [s for s in states if s not in RUN_STATES]
    if unknown:
        raise UsageError(f"--state {', '.join(unknown)}: no run has that state; choose from {', '.join(RUN_STATES)}")
    for name, values in (("states", states), ("users", users), ("sweeps", sweeps)):
        if values:
            options[name] = list(dict.fromkeys(values))
    return options


def _option_filters(options: dict[str, Any]) -> list[dict[str, Any]]:
    keys = {"states": "state", "users": "username", "sweeps": "sweep"}
    out: list[dict[str, Any]] = []
    if "created_before" in options:
        out.append({"createdAt": {"$lt": options["created_before"]}})
    out += [{keys[k]: {"$in": v}} for k, v in options.items() if k in keys]
    return out


def _and(parts: list[dict[str, Any]]) -> dict[str, Any]:
    parts = [p for p in parts if p]
    if len(parts) <= 1:
        return parts[0] if parts else {}
    return {"$and": parts}


def _shown(value: Any) -> str:
    return ",".join(map(str, value)) if isinstance(value, list) else str(value)


@dataclass(frozen=True)
class Plan:
    """One change, pinned: on `server` as `user`, `action` the runs `run_ids` of `path`
    (ENTITY/PROJECT), chosen by `selection`. `details` say what changes, for people; `changes`
    the same for programs. `run_ids` is None only when restoring by filter. The rest is what the
    selection looked like when it was resolved: the project's live runs, the chosen runs by state
    and group, the oldest and newest, a sample, and what the rails kept out."""

    action: str
    server: str
    user: str | None
    path: str
    selection: Selection
    run_ids: tuple[str, ...] | None
    details: tuple[str, ...] = ()
    changes: dict[str, Any] = field(default_factory=dict, hash=False)
    live_count: int | None = None
    by_state: dict[str, int] = field(default_factory=dict, hash=False)
    by_group: dict[str, int] = field(default_factory=dict, hash=False)
    oldest: str | None = None
    newest: str | None = None
    sample: tuple[dict[str, Any], ...] = ()
    excluded: dict[str, int] = field(default_factory=dict, hash=False)

    @property
    def empty(self) -> bool:
        return self.run_ids is not None and not self.run_ids

    def describe(self, shown: int = SAMPLE) -> list[str]:
        """The plan as lines for people: where and as whom first, then what and which runs."""
        from ..export import dumps

        lines = [f"server: {self.server}" + (f" as {self.user}" if self.user else "")]
        if self.run_ids is None:
            lines.append(f"plan: {self.action} the deleted runs in {self.path} matching "
                         f"{self.selection.describe()}")
            lines.append("  (W&B restores by filter: which runs came back is listed afterwards)")
            lines += [f"  {d}" for d in self.details]
            return lines
        ids = self.run_ids
        lines.append(f"plan: {self.action} {len(ids):,} run(s) in {self.path} ({self.selection.describe()})")
        if self.live_count is not None:
            lines.append(f"  project: {self.live_count:,} live run(s)")
        if self.selection.kind == "filter":
            lines.append(f"  filter: {dumps(self.selection.filters)}")
        if self.by_state:
            lines.append("  by state: " + ", ".join(f"{k} {v:,}" for k, v in _largest(self.by_state)))
        if self.by_group:
            lines.append("  by group: " + ", ".join(f"{k} {v:,}" for k, v in _largest(self.by_group)))
        if self.oldest:
            lines.append(f"  created: oldest {self.oldest}, newest {self.newest}")
        if self.excluded:
            lines.append("  left out: " + ", ".join(f"{k.replace('_', ' ')} {v:,}" for k, v in self.excluded.items()))
        for run in self.sample[:shown]:
            lines.append("  - " + "  ".join(str(run.get(k) or "-") for k in ("name", "display_name", "state",
                                                                              "group", "created_at")))
        if len(ids) > len(self.sample[:shown]) and self.sample:
            lines.append(f"  ... (+{len(ids) - len(self.sample[:shown]):,} more)")
        elif not self.sample and ids:
            more = f", ... (+{len(ids) - shown:,} more)" if len(ids) > shown else ""
            lines.append(f"  runs: {', '.join(ids[:shown])}{more}")
        lines += [f"  {d}" for d in self.details]
        lines.append(f"action: {self.action} {len(ids):,} run(s)")
        return lines

    def to_dict(self) -> dict[str, Any]:
        return {"action": self.action, "server": self.server, "user": self.user, "path": self.path,
                "selection": self.selection.to_dict(), "changes": self.changes, "details": list(self.details),
                "live_count": self.live_count, "by_state": self.by_state, "by_group": self.by_group,
                "oldest": self.oldest, "newest": self.newest, "sample": list(self.sample),
                "excluded": self.excluded,
                "run_count": None if self.run_ids is None else len(self.run_ids),
                "run_ids": None if self.run_ids is None else list(self.run_ids)}


def _largest(counts: dict[str, int], most: int = 8) -> list[tuple[str, int]]:
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    if len(ranked) > most:
        rest = sum(v for _, v in ranked[most - 1:])
        ranked = ranked[:most - 1] + [(f"{len(ranked) - most + 1} more", rest)]
    return ranked


async def make_plan(client: "Client", path: str, selection: Selection, action: str, *,
                    details: Sequence[str] = (), changes: dict[str, Any] | None = None) -> Plan:
    """Resolve the selection to run ids now, asking only for the fields the plan and the options
    need, with the server and user the change will run as. Refuses (PlanError, exit 3) a
    selection that is every live run of the project without `every`, and one above max_runs."""
    import asyncio

    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r}: one of {', '.join(ACTIONS)}")
    entity, project = await client.project_path(path)
    full = f"{entity}/{project}"
    # Who acts is asked while the runs are resolved: one round trip less before the plan shows.
    viewer_task = asyncio.ensure_future(client.viewer())
    try:
        if action != "restore":
            runs, live = await _resolve(client, full, selection)
        viewer = await viewer_task
    finally:
        if not viewer_task.done():
            viewer_task.cancel()
    base: dict[str, Any] = {"action": action, "server": client.settings.base_url, "user": viewer.username, "path": full,
            "selection": selection, "details": tuple(details), "changes": dict(changes or {})}
    if action == "restore":
        # Deleted runs cannot be listed: ids are taken as given, a filter goes to undeleteRuns as is.
        ids = selection.ids if selection.kind == "ids" else None
        if ids is not None:
            _check_max(selection, len(ids), full)
        return Plan(run_ids=ids, **base)
    if live and sum(1 for r in runs if r.id is not None) >= live and not selection.every:
        raise PlanError(f"refusing to {action} every live run of {full} ({live:,}) without --all",
                        hint="the selection matches every run, whatever it looks like: narrow it, "
                             "or pass --all if that is what you mean")
    excluded: dict[str, int] = {}
    chosen = []
    for run in runs:
        why = selection.excludes(run)
        if why:
            excluded[why] = excluded.get(why, 0) + 1
        else:
            chosen.append(run)
    chosen = _keep(selection, chosen, excluded)
    _check_max(selection, len(chosen), full)
    return Plan(run_ids=tuple(r.name or "" for r in chosen), live_count=live, excluded=excluded,
                **base, **_summary(chosen))


def _check_max(selection: Selection, count: int, path: str) -> None:
    if selection.max_runs is not None and count > selection.max_runs:
        raise PlanError(f"the plan holds {count:,} runs of {path}, more than --max {selection.max_runs:,}",
                        hint="narrow the selection, or raise --max if that many is what you mean")


async def _resolve(client: "Client", path: str, selection: Selection) -> tuple[list["Run"], int]:
    """The runs the selection names (with the fields the plan needs) and the project's live count."""
    import asyncio

    fields, config, summary = selection.fields()

    async def listing(filters: dict[str, Any]) -> list["Run"]:
        return [run async for run in client.runs(path, filters=filters, fields=fields, config_keys=config,
                                                 summary_keys=summary)]

    if selection.kind == "ids":
        ids = list(selection.ids)
        chunks = [ids[s:s + _LOOKUP_BATCH] for s in range(0, len(ids), _LOOKUP_BATCH)]
        found, live = await asyncio.gather(asyncio.gather(*(listing({"name": {"$in": c}}) for c in chunks)),
                                           client.count_runs(path))
        by_name = {run.name: run for part in found for run in part}
        # An id that is not live stays in the plan as given: its outcome will say (already deleted
        # is `unchanged`, never there is `not_found`).
        return [by_name.get(i) or _absent(i) for i in ids], live
    runs, live = await asyncio.gather(listing(selection.filters), client.count_runs(path))
    return runs, live


def _absent(name: str) -> "Run":
    from ..models import Run

    return Run(name=name)


def _keep(selection: Selection, runs: list["Run"], excluded: dict[str, int]) -> list["Run"]:
    """Drop the best K (keep_best) and the newest K (keep_last) of each group from the selection."""
    if selection.keep_best is None and selection.keep_last is None:
        return runs
    groups: dict[Any, list["Run"]] = {}
    for run in runs:
        groups.setdefault(getattr(run, selection.per) if selection.per else None, []).append(run)
    kept: set[int] = set()
    for members in groups.values():
        if selection.keep_best:
            metric = selection.metric
            assert metric is not None  # choose() requires --by with --keep-best
            ranked = [r for r in members if _number(r.value(selection.by or "")) is not None]
            ranked.sort(key=lambda r: _number(r.value(selection.by or "")) or 0.0,
                        reverse=selection.mode == "max")
            best = {id(r) for r in ranked[:selection.keep_best]}
            excluded["kept_best"] = excluded.get("kept_best", 0) + len(best - kept)
            kept |= best
        if selection.keep_last:
            newest = sorted(members, key=lambda r: r.created_at or "", reverse=True)[:selection.keep_last]
            last = {id(r) for r in newest} - kept
            excluded["kept_last"] = excluded.get("kept_last", 0) + len(last)
            kept |= last
    return [r for r in runs if id(r) not in kept]


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if value == value else None  # NaN ranks nowhere


def _summary(runs: list["Run"]) -> dict[str, Any]:
    by_state: dict[str, int] = {}
    by_group: dict[str, int] = {}
    for run in runs:
        by_state[run.state or "-"] = by_state.get(run.state or "-", 0) + 1
        by_group[run.group or "(none)"] = by_group.get(run.group or "(none)", 0) + 1
    times = [r.created_at for r in runs if r.created_at]
    sample = tuple({"name": r.name, "display_name": r.display_name, "state": r.state, "group": r.group,
                    "created_at": r.created_at} for r in runs[:SAMPLE])
    return {"by_state": by_state, "by_group": by_group, "oldest": min(times) if times else None,
            "newest": max(times) if times else None, "sample": sample}


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
