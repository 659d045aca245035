"""Global CLI state shared by the noun modules, and the one way they report errors."""

from __future__ import annotations

import enum
import sys
from typing import Any, NoReturn


class Format(str, enum.Enum):
    table = "table"
    json = "json"
    jsonl = "jsonl"
    csv = "csv"


GLOBAL: dict[str, Any] = {"format": Format.table, "verbose": 0}


def fail(message: str, code: int = 2) -> NoReturn:
    """One line on stderr, then the exit code (2 usage, 1 failure, 3 refused, 4 auth)."""
    sys.stderr.write(f"error: {message}\n")
    raise SystemExit(code)
