"""A sweep's configuration and the parameters the server hands to agents (W&B's sweep controller).

`grid` walks every combination once (then the sweep is finished); `random` draws each parameter
from its distribution with a generator seeded by the sweep's name and the set's number, so a
sweep hands out the same sets after a restart. `bayes` needs a model of past results, which the
local server does not have (W&B's own controller is not a maintained library): it is refused.
"""

from __future__ import annotations

import json
import math
import random
from typing import Any

from .store import BadInput

METHODS = ("grid", "random")
DISTRIBUTIONS = ("constant", "categorical", "int_uniform", "uniform", "log_uniform", "log_uniform_values",
                 "inv_log_uniform", "inv_log_uniform_values", "q_uniform", "q_log_uniform",
                 "q_log_uniform_values", "normal", "q_normal", "log_normal", "q_log_normal")


def parse(text: str) -> dict[str, Any]:
    """The sweep config the SDK sent (YAML; JSON is YAML too), checked: a dict with a known method
    and parameters each of a known distribution."""
    if not isinstance(text, str) or not text.strip():
        raise BadInput("upsertSweep needs config: the sweep configuration as YAML or JSON text")
    config = _load(text)
    if not isinstance(config, dict):
        raise BadInput("sweep config must be a mapping with method and parameters, e.g. "
                       "{method: grid, parameters: {lr: {values: [0.1, 0.01]}}}")
    method = config.get("method")
    if method == "bayes":
        raise BadInput("sweep method 'bayes' is not available on the local server (it needs W&B's "
                       "sweep controller); use method grid or random")
    if method not in METHODS:
        raise BadInput(f"sweep config: unknown method {method!r}; use one of grid, random")
    parameters = config.get("parameters")
    if not isinstance(parameters, dict) or not parameters:
        raise BadInput("sweep config needs parameters: a mapping of name -> {values: [...]} or a distribution")
    for name, spec in parameters.items():
        _distribution(name, spec)
        if method == "grid":
            _grid_values(name, spec)
    metric = config.get("metric")
    if metric is not None and not (isinstance(metric, dict) and isinstance(metric.get("name"), str)
                                   and metric.get("goal", "minimize") in ("minimize", "maximize")):
        raise BadInput("sweep config: metric must be {name: <summary key>, goal: minimize|maximize}")
    cap = config.get("run_cap")
    if cap is not None and (not isinstance(cap, int) or isinstance(cap, bool) or cap < 1):
        raise BadInput("sweep config: run_cap must be a positive integer")
    return config


def _load(text: str) -> Any:
    try:  # JSON first: PyYAML (YAML 1.1) reads JSON's 1e-05 as a string
        return json.loads(text)
    except ValueError:
        pass
    import yaml  # lazily: only sweeps need it

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise BadInput(f"sweep config is not valid YAML{where}; send the configuration as YAML or JSON text") from None


def _distribution(name: str, spec: Any) -> str:
    if not isinstance(spec, dict):
        raise BadInput(f"sweep parameter {name!r} must be a mapping like {{values: [...]}} or {{min: 0, max: 1}}")
    if "parameters" in spec:
        raise BadInput(f"sweep parameter {name!r}: nested parameters are not supported by the local server")
    kind = spec.get("distribution")
    if kind is None:
        if "value" in spec:
            kind = "constant"
        elif "values" in spec:
            kind = "categorical"
        elif isinstance(spec.get("min"), int) and isinstance(spec.get("max"), int):
            kind = "int_uniform"
        elif "min" in spec and "max" in spec:
            kind = "uniform"
        else:
            raise BadInput(f"sweep parameter {name!r} needs value, values, or min and max")
    if kind not in DISTRIBUTIONS:
        raise BadInput(f"sweep parameter {name!r}: unknown distribution {kind!r}; use one of {', '.join(DISTRIBUTIONS)}")
    needs = {"constant": ("value",), "categorical": ("values",)}.get(
        kind, ("mu", "sigma") if "normal" in kind else ("min", "max"))
    missing = [k for k in needs if k not in spec]
    if missing:
        raise BadInput(f"sweep parameter {name!r} ({kind}) needs {' and '.join(missing)}")
    if kind == "categorical" and (not isinstance(spec["values"], list) or not spec["values"]):
        raise BadInput(f"sweep parameter {name!r}: values must be a non-empty list")
    for key in needs:
        if kind not in ("constant", "categorical") and not _number(spec[key]):
            raise BadInput(f"sweep parameter {name!r}: {key} must be a number")
    if needs == ("min", "max") and spec["min"] > spec["max"]:
        raise BadInput(f"sweep parameter {name!r}: min is above max")
    if kind.endswith("_values") and spec["min"] <= 0:
        raise BadInput(f"sweep parameter {name!r} ({kind}): min and max must be positive")
    return str(kind)


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _grid_values(name: str, spec: dict[str, Any]) -> list[Any]:
    kind = _distribution(name, spec)
    if kind == "constant":
        return [spec["value"]]
    if kind == "categorical":
        return list(spec["values"])
    if kind == "int_uniform":
        return list(range(int(spec["min"]), int(spec["max"]) + 1))
    raise BadInput(f"grid sweep parameter {name!r}: a {kind} distribution has no finite set of values; "
                   "use values, value or int_uniform")


def grid_size(config: dict[str, Any]) -> int:
    return math.prod(len(_grid_values(n, s)) for n, s in config["parameters"].items())


def expected_runs(config: dict[str, Any]) -> int | None:
    """How many runs the sweep will hand out: the grid, capped by run_cap; None for no end."""
    cap = config.get("run_cap")
    total = grid_size(config) if config["method"] == "grid" else None
    if total is None:
        return int(cap) if cap is not None else None
    return min(total, int(cap)) if cap is not None else total


def params(sweep_name: str, config: dict[str, Any], index: int) -> dict[str, Any] | None:
    """The `index`-th parameter set of the sweep ({name: value}), or None when there is no more."""
    expected = expected_runs(config)
    if expected is not None and index >= expected:
        return None
    specs = config["parameters"]
    if config["method"] == "grid":
        # The index-th combination in itertools.product order (the last parameter varies fastest),
        # decoded digit by digit rather than walked to: a grid of millions stays O(parameters).
        chosen: dict[str, Any] = {}
        for name in reversed(list(specs)):
            values = _grid_values(name, specs[name])
            index, digit = divmod(index, len(values))
            chosen[name] = values[digit]
        return {name: chosen[name] for name in specs}
    rng = random.Random(f"{sweep_name}:{index}")
    return {name: _draw(rng, _distribution(name, spec), spec) for name, spec in specs.items()}


def _draw(rng: random.Random, kind: str, spec: dict[str, Any]) -> Any:
    if kind == "constant":
        return spec["value"]
    if kind == "categorical":
        weights = spec.get("probabilities")
        return rng.choices(spec["values"], weights=weights)[0] if weights else rng.choice(spec["values"])
    if kind == "int_uniform":
        return rng.randint(int(spec["min"]), int(spec["max"]))
    if "normal" in kind:
        value = rng.gauss(spec["mu"], spec["sigma"])
        value = math.exp(value) if "log" in kind else value
    else:
        low, high = float(spec["min"]), float(spec["max"])
        if kind.endswith("_values"):  # bounds are values; drawn uniformly in log space
            low, high = math.log(low), math.log(high)
        value = rng.uniform(low, high)
        if "log_uniform" in kind:
            value = math.exp(value)
        if kind == "inv_log_uniform":  # with values as bounds, 1/x of a log-uniform x is log-uniform
            value = 1 / value
    if kind.startswith("q_"):
        q = spec.get("q", 1)
        value = round(value / q) * q
        value = min(max(value, spec["min"]), spec["max"]) if "min" in spec and "log" not in kind else value
        return int(value) if isinstance(q, int) and float(value).is_integer() else value
    return value
