"""Known W&B traps in a filter, each a ``Lint`` with a stable code and a message naming the fix.

    code            trap
    summary-prefix  ``summary.<key>`` in raw JSON: W&B filters summaries as ``summary_metrics.<key>``
                    and silently matches nothing
    id-field        ``id`` is not a filter field: the run id is ``name``
    quoted-number   a config/summary value compared with a quoted number compares as a string
    numeric-time    a time field compared with a number (W&B wants a UTC ISO string)
    unknown-state   a state W&B never uses: ``=``/``in`` match nothing, ``!=`` matches every run,
                    ``not in`` excludes no run
    regex-anchors   ``^``/``$`` in a regex: W&B's docs disagree on whether they work
    regex-re2       lookaround, backreferences, atomic groups, possessive quantifiers: RE2 lacks them
    dotted-key      a backticked key holding a dot: W&B reads every dot as nesting

Whether a filter matches every run is not a lint but ``matches_every_run(filters)`` (the reason,
or None): callers guard destructive commands with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..models import RUN_FIELDS
from .validate import LOGICAL, dumps
from .where import _FLOAT, Compiled

__all__ = ["RUN_STATES", "Lint", "lint", "matches_every_run"]

RUN_STATES = ("running", "finished", "crashed", "failed", "killed", "preempting", "preempted",
              "pending")
_STATE_LIST = ", ".join(RUN_STATES)
_NUMBER_PREFIXES = ("config.", "summary_metrics.", "summary.")
# Raw JSON may spell a time field either way; both are W&B's.
_TIME_KEYS = frozenset(k for f in RUN_FIELDS if f.kind == "time" and f.filter is not None
                       for k in (f.name, f.filter))
# Fields every run has, so `<field> exists` matches every run.
_ALWAYS_SET = ("name", "state")


@dataclass(frozen=True)
class Lint:
    code: str     # stable: tests and scripts compare codes, never messages
    message: str  # one line, naming the fix

    def __str__(self) -> str:
        return self.message


def lint(filters: dict[str, Any] | Compiled) -> list[Lint]:
    """Warnings for known W&B traps in a filter (a ``Compiled`` or raw filter JSON), deduplicated.

    A ``Compiled`` also yields ``dotted-key`` warnings (backticked keys holding a dot), which the
    JSON alone cannot show. Whether a filter matches every run is not a lint: callers that
    guard destructive work ask ``matches_every_run``.
    """
    if isinstance(filters, Compiled):
        query, dotted = filters.filters, filters.dotted_keys
    else:
        query, dotted = filters, ()
    out: list[Lint] = []
    _lint_node(query, out)
    for key in dotted:
        out.append(Lint("dotted-key", f"key '{key}' holds a dot inside backticks, but W&B reads every "
                        "dot as nesting and cannot address that key: rename the key when logging, or "
                        "filter on it client side"))
    return list(dict.fromkeys(out))


def _lint_node(node: Any, out: list[Lint]) -> None:
    if not isinstance(node, dict):
        return
    for key, cond in node.items():
        if key in LOGICAL and isinstance(cond, list):
            for item in cond:
                _lint_node(item, out)
        elif isinstance(key, str) and not key.startswith("$"):
            _lint_field(key, cond, out)


def _conditions(cond: Any) -> list[tuple[str, Any]]:
    """A field's condition as (operator, argument) pairs; a plain value is $eq."""
    if isinstance(cond, dict) and any(str(k).startswith("$") for k in cond):
        return list(cond.items())
    return [("$eq", cond)]


def _lint_field(key: str, cond: Any, out: list[Lint]) -> None:
    if key.startswith("summary."):
        out.append(Lint("summary-prefix", f"'{key}' matches nothing on W&B: summary keys are filtered "
                        f"as 'summary_metrics.{key[len('summary.'):]}'"))
    if key == "id":
        out.append(Lint("id-field", "'id' is not a W&B filter field: the run id is 'name'"))
    for op, arg in _conditions(cond):
        if op == "$regex":
            if isinstance(arg, str):
                out.extend(_lint_regex(arg))
            continue
        if op == "$exists":
            continue
        values = arg if op in ("$in", "$nin") and isinstance(arg, list) else [arg]
        for v in values:
            if key.startswith(_NUMBER_PREFIXES) and isinstance(v, str) and _FLOAT.fullmatch(v):
                out.append(Lint("quoted-number", f"'{key}' is compared with the quoted number \"{v}\", "
                                "which compares as a string: unquote it to compare numbers"))
            if key in _TIME_KEYS and isinstance(v, (int, float)) and not isinstance(v, bool):
                out.append(Lint("numeric-time", f"'{key}' is compared with the number {v}, which W&B "
                                "rejects: use a UTC ISO string like \"2024-01-31T00:00:00\""))
            if key == "state" and isinstance(v, str) and v not in RUN_STATES:
                effect = _UNKNOWN_STATE_EFFECT.get(op)
                if effect:
                    out.append(Lint("unknown-state", f"state '{v}' is never used by W&B, so "
                                    f"{effect.format(v=v)}: use one of {_STATE_LIST}"))


# What comparing with a state no run has does; ordering operators compare strings and say
# nothing useful either way.
_UNKNOWN_STATE_EFFECT = {
    "$eq": "it matches nothing",
    "$in": "it matches nothing",
    "$ne": "\"state != '{v}'\" matches every run",
    "$nin": "leaving it out excludes no run",
}


def _lint_regex(pattern: str) -> list[Lint]:
    anchors, features = False, []
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == "\\":
            if i + 1 < n and pattern[i + 1] in "123456789":
                features.append("backreferences")
            i += 2
            continue
        if c == "[":  # skip a character class: ^ and $ inside are not anchors
            j = i + 1
            j += pattern.startswith("^", j)
            j += pattern.startswith("]", j)
            while j < n and pattern[j] != "]":
                j += 2 if pattern[j] == "\\" else 1
            i = j + 1
            continue
        if c in "^$":
            anchors = True
        elif c == "(" and pattern.startswith("?", i + 1):
            rest = pattern[i + 2:i + 4]
            if rest[:1] in ("=", "!"):
                features.append("lookahead")
            elif rest in ("<=", "<!"):
                features.append("lookbehind")
            elif rest[:1] == ">":
                features.append("atomic groups")
            elif rest == "P=":
                features.append("backreferences")
            i += 2
            continue
        elif c in "*+?}" and pattern.startswith("+", i + 1):
            features.append("possessive quantifiers")
            i += 2
            continue
        i += 1
    out = []
    if anchors:
        out.append(Lint("regex-anchors", f"regex '{pattern}' uses anchors (^ or $), and W&B's docs "
                        "disagree on whether it supports them: check the count with 'wbgql runs "
                        "explain', or drop them"))
    if features:
        out.append(Lint("regex-re2", f"regex '{pattern}' uses {', '.join(dict.fromkeys(features))}, "
                        "which RE2 (W&B's regex engine) does not support: rewrite the regex without them"))
    return out


# ---------------------------------------------------------------------------- every run / no run


def matches_every_run(filters: dict[str, Any] | Compiled) -> str | None:
    """Why this filter matches every run, or None if (as far as a static look can tell) it does not.

    Catches the empty filter, ``name exists``, ``X or not X``, ``$and`` of parts that all match
    every run, ``state != <a state W&B never uses>`` and ``not`` of a part that matches nothing.
    Meant for the destructive guard: a None is no proof that the filter is narrow.
    """
    return _every(filters.filters if isinstance(filters, Compiled) else filters)


def _every(node: Any) -> str | None:
    if not isinstance(node, dict):
        return None
    if not node:
        return "it is empty"
    reasons = []
    for key, arg in node.items():  # the keys of one object are and-ed: each must match every run
        if key == "$and" and isinstance(arg, list) and arg:
            sub = [_every(x) for x in arg]
            if not all(sub):
                return None
            reasons.append(sub[0])
        elif key == "$or" and isinstance(arg, list):
            reason = next((r for r in map(_every, arg) if r), None) or _x_or_not_x(arg)
            if reason is None:
                return None
            reasons.append(reason)
        elif key == "$nor" and isinstance(arg, list) and arg:
            sub = [_none(x) for x in arg]
            if not all(sub):
                return None
            reasons.append(f"it is not X, and X matches nothing: {sub[0]}")
        elif isinstance(key, str) and not key.startswith("$"):
            reason = _field_every(key, arg)
            if reason is None:
                return None
            reasons.append(reason)
        else:
            return None
    return reasons[0]


def _x_or_not_x(alternatives: list[Any]) -> str | None:
    def covered(x: Any) -> bool:  # x is one of the alternatives, or an $or of them
        alts = x.get("$or") if isinstance(x, dict) and len(x) == 1 else None
        return x in alternatives or (isinstance(alts, list) and all(map(covered, alts)))

    for item in alternatives:
        negated = item.get("$nor") if isinstance(item, dict) and len(item) == 1 else None
        if isinstance(negated, list) and negated and all(map(covered, negated)):
            return f"it is X or not X, with X = {dumps(negated[0])}"
    return None


def _unknown_states(values: Any) -> list[str] | None:
    """The values, if every one is a string no run has as its state; else None."""
    if not isinstance(values, list) or not values:
        return None
    if all(isinstance(v, str) and v not in RUN_STATES for v in values):
        return values
    return None


def _field_every(key: str, cond: Any) -> str | None:
    reasons = []
    for op, arg in _conditions(cond):  # all of a field's operators must match every run
        if op == "$exists" and arg is True and key in _ALWAYS_SET:
            reasons.append(f"every run has a {key}")
        elif key == "state" and op in ("$ne", "$nin") and \
                _unknown_states(arg if op == "$nin" else [arg]):
            shown = ", ".join(f"'{v}'" for v in (arg if op == "$nin" else [arg]))
            reasons.append(f"no run has the state {shown}")
        else:
            return None
    return reasons[0] if reasons else None


def _none(node: Any) -> str | None:
    """Why this filter matches no run, or None."""
    if not isinstance(node, dict) or not node:
        return None
    for key, arg in node.items():  # and-ed: one part that matches nothing is enough
        if key == "$and" and isinstance(arg, list):
            reason = next((r for r in map(_none, arg) if r), None)
        elif key == "$or" and isinstance(arg, list) and arg:
            sub = [_none(x) for x in arg]
            reason = sub[0] if all(sub) else None
        elif key == "$nor" and isinstance(arg, list):
            reason = next((r for r in map(_every, arg) if r), None)
        elif isinstance(key, str) and not key.startswith("$"):
            reason = _field_none(key, arg)
        else:
            reason = None
        if reason:
            return reason
    return None


def _field_none(key: str, cond: Any) -> str | None:
    for op, arg in _conditions(cond):  # and-ed: one operator that matches nothing is enough
        if op == "$exists" and arg is False and key in _ALWAYS_SET:
            return f"every run has a {key}"
        if key == "state" and op in ("$eq", "$in") and _unknown_states(arg if op == "$in" else [arg]):
            shown = ", ".join(f"'{v}'" for v in (arg if op == "$in" else [arg]))
            return f"no run has the state {shown}"
    return None
