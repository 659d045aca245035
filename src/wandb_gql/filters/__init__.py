"""Run filters: the ``--where`` language, raw ``--filters`` JSON, and lint of W&B's traps.

    where.py     compile_where(expr) -> Compiled (filters, keys), compile_order(name) -> W&B key
    validate.py  validate_filters(raw JSON) -> dict
    lint.py      lint(filters) -> [Lint(code, message)], matches_every_run(filters) -> reason | None

Stdlib only at import time: the CLI imports this for ``--help``.
"""

from __future__ import annotations

from typing import Any

from .lint import RUN_STATES, Lint, lint, matches_every_run
from .validate import validate_filters
from .where import FIELDS, Compiled, compile_order, compile_where

__all__ = ["FIELDS", "RUN_STATES", "Compiled", "Lint", "compile_order", "compile_where", "lint",
           "matches_every_run", "resolve_filters", "validate_filters"]


def resolve_filters(filters: dict[str, Any] | str | Compiled | None = None, where: str | None = None) -> Compiled:
    """What to send (`.filters`): compiled from `where`, or checked raw `filters` (no keys, no
    expression), or {}; lint reads the same result. An already compiled filter passes through."""
    from ..errors import UsageError

    if filters is not None and where is not None:
        raise UsageError("give either filters (JSON, --filters) or where (an expression, --where), not both")
    if isinstance(filters, Compiled):
        return filters
    if where is not None:
        return compile_where(where)
    return Compiled(filters=validate_filters(filters) if filters is not None else {}, keys=(), expression=None)
