"""JSON in, strict JSON out.

The SDK writes NaN/Infinity into history and summary lines ("extended JSON"), but wandb-core
fails on a bare NaN in a response, so non-finite floats are stored as the strings W&B uses.
"""

from __future__ import annotations

import json
import math
from typing import Any

import orjson

_NON_FINITE = {"NaN": "NaN", "Infinity": "Infinity", "-Infinity": "-Infinity"}


def _constant(name: str) -> str:
    return _NON_FINITE[name]


def _float(text: str) -> float | str:
    value = float(text)
    if math.isfinite(value):
        return value
    return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")


def loads_lenient(text: str | bytes) -> Any:
    """Parse JSON that may hold NaN/Infinity; those become the strings "NaN"/"Infinity"/"-Infinity"."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text, parse_constant=_constant, parse_float=_float)
