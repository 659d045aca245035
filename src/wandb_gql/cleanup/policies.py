"""Retention policies as code: a TOML file of rules, planned together, applied into one ledger.

    [defaults]                       # optional; every rule starts from these keys
    protect_tags = ["keep", "protected"]

    [[rule]]
    name = "old failures"            # errors and plans name the rule by it
    path = "demo/vision"             # ENTITY/PROJECT; `paths = [...]` for several
    states = ["crashed", "failed"]
    older_than = "30d"
    keep_best = 3
    by = "summary.val/acc"
    per = "sweep"
    action = "delete"                # delete | tag (add_tags/remove_tags) | move (to = "ENTITY/PROJECT")

A rule takes the selection options of `runs delete` under the same names (where, filters,
older_than, states, users, sweeps, keep_best/by/mode/per, keep_last, protect_tags,
include_running, max_runs, all) and the rails are the same. Everything that needs no server is
checked by load_policy (UsageError naming the rule and the key); plan_policy resolves each rule
on each of its projects to pinned ids; apply_policy applies those plans, in order, into one
ledger, so one `ledger undo` takes the whole run of the policy back.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

from ..errors import FilterError, PlanError, UsageError
from ..models import Outcome
from ..paths import parse_project_path
from .apply import ApplyResult, apply_plan
from .config import load_toml
from .plan import Plan, Selection, make_plan

if TYPE_CHECKING:
    from ..client import Client
    from .ledger import Ledger

__all__ = ["Policy", "Rule", "load_policy", "plan_policy", "apply_policy"]

ACTIONS = ("delete", "tag", "move")
# Rule key -> (type check, Selection.choose keyword). Types: str, [str], int, bool, table-or-str.
_SELECTION_KEYS: dict[str, tuple[str, str]] = {
    "where": ("str", "where"), "filters": ("filters", "filters"), "all": ("bool", "every"),
    "older_than": ("str", "older_than"), "states": ("strs", "states"), "users": ("strs", "users"),
    "sweeps": ("strs", "sweeps"), "keep_best": ("int", "keep_best"), "by": ("str", "by"),
    "mode": ("str", "mode"), "keep_last": ("int", "keep_last"), "per": ("str", "per"),
    "include_running": ("bool", "include_running"), "protect_tags": ("strs", "protect_tags"),
    "max_runs": ("int", "max_runs"),
}
_RULE_KEYS: dict[str, str] = {"name": "str", "path": "str", "paths": "strs", "action": "str",
                              "add_tags": "strs", "remove_tags": "strs", "to": "str",
                              **{k: t for k, (t, _) in _SELECTION_KEYS.items()}}
_TYPE_NAMES = {"str": "a string", "strs": "a list of strings", "int": "a whole number", "bool": "true or false",
               "filters": "a table or a JSON string"}


@dataclass(frozen=True)
class Rule:
    """One rule: which runs of which projects (`selection` on each of `paths`), and what to do."""

    name: str
    paths: tuple[str, ...]
    action: str
    selection: Selection
    add_tags: tuple[str, ...] = ()
    remove_tags: tuple[str, ...] = ()
    to: str | None = None

    def changes(self) -> dict[str, Any]:
        """What the plan records as its change (what apply acts by and undo reverses)."""
        out: dict[str, Any] = {"rule": self.name}
        if self.action == "tag":
            out.update(add_tags=list(self.add_tags), remove_tags=list(self.remove_tags))
        elif self.action == "move":
            out["to"] = self.to
        return out

    def details(self) -> list[str]:
        lines = [f"rule: {self.name}"]
        if self.add_tags:
            lines.append("add tags: " + ", ".join(self.add_tags))
        if self.remove_tags:
            lines.append("remove tags: " + ", ".join(self.remove_tags))
        if self.to:
            lines.append(f"move to: {self.to}")
        return lines


@dataclass(frozen=True)
class Policy:
    path: Path
    rules: tuple[Rule, ...] = field(default=())


def load_policy(path: str | Path) -> Policy:
    """Read and check a policy file; UsageError (exit 2, nothing sent) naming the rule and key."""
    path = Path(path).expanduser()
    try:
        doc = load_toml(path)
    except UsageError as e:
        raise UsageError(f"policy: {e.message}") from None
    where = f"policy {path}"
    unknown = sorted(set(doc) - {"defaults", "rule"})
    if unknown:
        raise UsageError(f"{where}: unknown top-level key {unknown[0]!r}",
                         hint="a policy holds [defaults] and [[rule]] tables")
    defaults = doc.get("defaults", {})
    if not isinstance(defaults, dict):
        raise UsageError(f"{where}: [defaults] must be a table")
    _check_keys(defaults, f"{where}: [defaults]", allowed=_SELECTION_KEYS)
    rules = doc.get("rule")
    if not isinstance(rules, list) or not rules or not all(isinstance(r, dict) for r in rules):
        raise UsageError(f"{where}: no rules", hint='add at least one [[rule]] table with path and action')
    names: set[str] = set()
    out = []
    for number, table in enumerate(rules, 1):
        name = table.get("name") if isinstance(table.get("name"), str) else f"#{number}"
        label = f"{where}: rule {name!r}"
        if name in names:
            raise UsageError(f"{label}: key 'name': another rule has this name", hint="give each rule its own name")
        names.add(name)
        out.append(_rule(name, {**defaults, **table}, label))
    return Policy(path, tuple(out))


def _check_keys(table: dict[str, Any], label: str, allowed: dict[str, Any]) -> None:
    for key, value in table.items():
        if key not in allowed:
            close = difflib.get_close_matches(key, list(allowed), n=1)
            raise UsageError(f"{label}: unknown key {key!r}",
                             hint=f"did you mean {close[0]!r}?" if close else f"keys: {', '.join(allowed)}")
        kind = _RULE_KEYS[key]
        if not _fits(kind, value):
            raise UsageError(f"{label}: key {key!r} must be {_TYPE_NAMES[kind]}, not {value!r}")


def _fits(kind: str, value: Any) -> bool:
    if kind == "str":
        return isinstance(value, str)
    if kind == "strs":
        return isinstance(value, list) and all(isinstance(v, str) for v in value)
    if kind == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "bool":
        return isinstance(value, bool)
    return isinstance(value, (dict, str))


def _rule(name: str, table: dict[str, Any], label: str) -> Rule:
    _check_keys(table, label, allowed=_RULE_KEYS)
    if "path" in table and "paths" in table:
        raise UsageError(f"{label}: key 'paths': give path or paths, not both")
    paths = [table["path"]] if "path" in table else list(table.get("paths") or [])
    if not paths:
        raise UsageError(f"{label}: key 'path' is missing", hint='path = "ENTITY/PROJECT" (or paths = [...])')
    for text in paths:
        _project(text, label, "path" if "path" in table else "paths")
    action = table.get("action")
    if action not in ACTIONS:
        raise UsageError(f"{label}: key 'action' must be one of {', '.join(ACTIONS)}, not {action!r}")
    add, remove, to = tuple(table.get("add_tags", ())), tuple(table.get("remove_tags", ())), table.get("to")
    if action == "tag" and not (add or remove):
        raise UsageError(f"{label}: key 'add_tags': a tag rule needs add_tags or remove_tags")
    if action != "tag" and (add or remove):
        raise UsageError(f"{label}: key {'add_tags' if add else 'remove_tags'!r} belongs to action = \"tag\" only")
    if action == "move":
        if not to:
            raise UsageError(f"{label}: key 'to' is missing", hint='a move rule needs to = "ENTITY/PROJECT"')
        _project(to, label, "to", entity=True)
        if to in paths:
            raise UsageError(f"{label}: key 'to': {to} is the rule's own project")
    elif to is not None:
        raise UsageError(f"{label}: key 'to' belongs to action = \"move\" only")
    options = {_SELECTION_KEYS[k][1]: v for k, v in table.items() if k in _SELECTION_KEYS}
    if isinstance(options.get("states"), list):
        options["states"] = [s.lower() for s in options["states"]]
    try:
        selection = Selection.choose(action=action, **options)
    except FilterError as e:
        key = "where" if "where" in table else "filters"
        raise UsageError(f"{label}: key {key!r}: {e.message}", hint=e.hint) from None
    except UsageError as e:
        raise UsageError(f"{label}: {_keys_for_flags(e.message)}",
                         hint=e.hint and _keys_for_flags(e.hint)) from None
    return Rule(name=name, paths=tuple(paths), action=action, selection=selection, add_tags=add,
                remove_tags=remove, to=to)


# The selection's messages name the CLI's options; a policy names its keys.
_FLAGS = {"--state": "states", "--user": "users", "--sweep": "sweeps", "--max": "max_runs", "--all": "all = true",
          "--protect-tag": "protect_tags", "--id": "(ids cannot be in a policy)",
          **{"--" + k.replace("_", "-"): k for k in _SELECTION_KEYS}}


def _keys_for_flags(text: str) -> str:
    return re.sub(r"--[a-z][a-z-]*", lambda m: _FLAGS.get(m.group(0), m.group(0)), text)


def _project(text: str, label: str, key: str, *, entity: bool = False) -> None:
    try:
        found = parse_project_path(text)
    except UsageError as e:
        raise UsageError(f"{label}: key {key!r}: {e.message}", hint=e.hint) from None
    if entity and found.entity is None:
        raise UsageError(f"{label}: key {key!r} must name the entity too: \"ENTITY/{text}\"")


async def plan_policy(client: "Client", policy: Policy) -> list[Plan]:
    """Each rule on each of its projects, resolved to pinned ids, in the policy's order. A rail
    that refuses a plan (every live run without all = true, more than max_runs) is a PlanError
    naming the rule."""
    plans = []
    for rule in policy.rules:
        for path in rule.paths:
            try:
                plans.append(await make_plan(client, path, rule.selection, rule.action, details=rule.details(),
                                             changes=rule.changes()))
            except PlanError as e:
                raise PlanError(f"rule {rule.name!r} on {path}: {e.message}", hint=e.hint) from None
    return plans


async def apply_policy(client: "Client", plans: Sequence[Plan], *, ledger: "Ledger", max_drift: int = 0,
                       on_outcome: Callable[[Outcome], object] | None = None) -> list[ApplyResult]:
    """Apply the plans in order into one ledger. Each plan is checked for drift just before it
    acts, so a PlanError on a later plan leaves the earlier ones applied (and in the ledger: one
    `ledger undo` takes them back)."""
    results = []
    for plan in plans:
        results.append(await apply_plan(client, plan, ledger=ledger, max_drift=max_drift, on_outcome=on_outcome,
                                        options={"rule": plan.changes.get("rule")}))
    return results
