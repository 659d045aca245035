"""Fault injection for the GraphQL endpoint, so tests can prove the client survives W&B's bad days.

Set at start (`wbgql server --faults JSON`) or at run time (POST /_local/faults with the same
JSON, authenticated). file_stream is never faulted: the real SDK hangs on its 5xx.

    {"rate_limit": 5, "window": 1.0,     at most 5 requests per window, then 429 + headers
     "retry_after": 0.2,                 Retry-After sent with 429s (seconds)
     "error_rate": 0.1,                  fraction of requests answered 503
     "drop_rate": 0.05,                  fraction of connections closed without an answer
     "latency": 0.02,                    seconds added to every request
     "script": [429, 503, "drop"],       the next requests get exactly these, in order
     "seed": 1}                          makes the random fractions repeatable
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass, field
from typing import Any

_KNOWN = {"rate_limit", "window", "retry_after", "error_rate", "drop_rate", "latency", "script", "seed"}


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _kind(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}.get(type(value), repr(value))


def _show(bound: float) -> str:
    return f"{int(bound):,}" if float(bound).is_integer() else f"{bound:g}"


def _number(spec: dict[str, Any], name: str, low: float, high: float, *, integer: bool = False,
            optional: bool = False) -> None:
    if name not in spec or (optional and spec[name] is None):
        return
    value = spec[name]
    ok = _is_int(value) if integer else (_is_int(value) or isinstance(value, float))
    if not ok or not low <= value <= high:
        what = "an integer" if integer else "a number"
        raise ValueError(f"{name} must be {what} between {_show(low)} and {_show(high)}"
                         f"{' or null' if optional else ''}, not {value!r}")


@dataclass
class Faults:
    rate_limit: int | None = None
    window: float = 1.0
    retry_after: float | None = None
    error_rate: float = 0.0
    drop_rate: float = 0.0
    latency: float = 0.0
    script: list[Any] = field(default_factory=list)
    seed: int | None = None
    # What happened, so tests can assert bounded attempts.
    counts: dict[str, int] = field(default_factory=lambda: {"requests": 0, "429": 0, "5xx": 0, "drop": 0})
    _window_start: float = 0.0
    _window_used: int = 0
    _rng: random.Random = field(default_factory=random.Random)

    @classmethod
    def from_json(cls, spec: Any) -> "Faults":
        """Faults from their JSON; every setting is type-checked here, because a wrong type
        accepted now (`{"rate_limit": "5"}`) would fail every later request instead."""
        if not isinstance(spec, dict):
            raise ValueError(f'faults must be a JSON object such as {{"rate_limit": 5}}, not {_kind(spec)}')
        unknown = set(spec) - _KNOWN
        if unknown:
            raise ValueError(f"unknown fault setting(s) {sorted(unknown)}; known: {sorted(_KNOWN)}")
        _number(spec, "rate_limit", 0, 10**9, integer=True, optional=True)
        _number(spec, "window", 0.001, 86400)
        _number(spec, "retry_after", 0, 3600, optional=True)
        _number(spec, "error_rate", 0, 1)
        _number(spec, "drop_rate", 0, 1)
        _number(spec, "latency", 0, 60)
        _number(spec, "seed", -(2**63), 2**63 - 1, integer=True, optional=True)
        script = spec.get("script", [])
        if not isinstance(script, list):
            raise ValueError(f"script must be a list such as [429, 503, \"drop\"], not {_kind(script)}")
        for entry in script:
            if entry != "drop" and not (_is_int(entry) and 400 <= entry <= 599):
                raise ValueError(f"script entries are HTTP statuses 400-599 or \"drop\", not {entry!r}")
        settings: dict[str, Any] = {k: (list(v) if k == "script" else v) for k, v in spec.items()}
        faults = cls(**settings)
        faults._rng = random.Random(faults.seed)
        return faults

    def describe(self) -> dict[str, Any]:
        return {"rate_limit": self.rate_limit, "window": self.window, "retry_after": self.retry_after,
                "error_rate": self.error_rate, "drop_rate": self.drop_rate, "latency": self.latency,
                "script": list(self.script), "counts": dict(self.counts)}

    def decide(self) -> tuple[str, dict[str, str]] | None:
        """What to do with the next request: None (serve it), ("drop", {}), or (status, headers)."""
        self.counts["requests"] += 1
        if self.script:
            entry = self.script.pop(0)
            return self._answer(entry)
        if self.rate_limit is not None:
            now = time.monotonic()
            if now - self._window_start >= self.window:
                self._window_start, self._window_used = now, 0
            self._window_used += 1
            reset = max(0.0, self.window - (now - self._window_start))
            if self._window_used > self.rate_limit:
                return self._answer(429, reset)
        if self.drop_rate and self._rng.random() < self.drop_rate:
            return self._answer("drop")
        if self.error_rate and self._rng.random() < self.error_rate:
            return self._answer(503)
        return None

    def _answer(self, entry: Any, reset: float | None = None) -> tuple[str, dict[str, str]]:
        if entry == "drop":
            self.counts["drop"] += 1
            return "drop", {}
        status = int(entry)
        headers: dict[str, str] = {}
        if status == 429:
            self.counts["429"] += 1
            wait = self.retry_after if self.retry_after is not None else (reset if reset is not None else 1.0)
            headers = {
                "Retry-After": f"{wait:g}",
                "RateLimit-Limit": str(self.rate_limit or 0),
                "RateLimit-Remaining": "0",
                "RateLimit-Reset": str(max(1, math.ceil(reset if reset is not None else wait))),
            }
        elif status >= 500:
            self.counts["5xx"] += 1
        return str(status), headers
