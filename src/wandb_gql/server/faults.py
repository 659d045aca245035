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
    def from_json(cls, spec: dict[str, Any]) -> "Faults":
        unknown = set(spec) - _KNOWN
        if unknown:
            raise ValueError(f"unknown fault setting(s) {sorted(unknown)}; known: {sorted(_KNOWN)}")
        faults = cls(**{k: v for k, v in spec.items()})
        for name in ("error_rate", "drop_rate"):
            if not 0.0 <= getattr(faults, name) <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1")
        for entry in faults.script:
            if entry != "drop" and not (isinstance(entry, int) and 400 <= entry <= 599):
                raise ValueError(f"script entries are HTTP statuses 400-599 or \"drop\", not {entry!r}")
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
