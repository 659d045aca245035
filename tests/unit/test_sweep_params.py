"""The server's sweep controller: grid order and size, draws within each distribution."""

from __future__ import annotations

import itertools
import json
import math

import pytest

from wandb_gql.server import sweep_params


def test_grid_walks_the_product_once_then_ends():
    config = {"method": "grid", "parameters": {"a": {"values": [1, 2, 3]}, "b": {"value": "k"},
                                               "c": {"distribution": "int_uniform", "min": 0, "max": 3}}}
    size = sweep_params.grid_size(config)
    got = [tuple(sweep_params.params("s", config, i).values()) for i in range(size)]
    assert got == list(itertools.product([1, 2, 3], ["k"], range(4)))
    assert sweep_params.params("s", config, size) is None
    capped = {**config, "run_cap": 5}
    assert sweep_params.expected_runs(capped) == 5 and sweep_params.params("s", capped, 5) is None


@pytest.mark.parametrize("spec, check", [
    ({"distribution": "uniform", "min": -1.0, "max": 2.0}, lambda v: -1 <= v <= 2),
    ({"distribution": "int_uniform", "min": 3, "max": 5}, lambda v: isinstance(v, int) and 3 <= v <= 5),
    ({"distribution": "q_uniform", "min": 0, "max": 100, "q": 10}, lambda v: 0 <= v <= 100 and v % 10 == 0),
    ({"distribution": "log_uniform_values", "min": 1e-5, "max": 1e-1}, lambda v: 1e-5 <= v <= 1e-1),
    ({"distribution": "inv_log_uniform_values", "min": 1e-5, "max": 1e-1}, lambda v: 1e-5 <= v <= 1e-1),
    ({"distribution": "log_uniform", "min": -3, "max": 0}, lambda v: math.exp(-3) <= v <= 1),
    ({"distribution": "inv_log_uniform", "min": 0, "max": 2}, lambda v: math.exp(-2) <= v <= 1),
    ({"distribution": "q_log_uniform_values", "min": 1, "max": 1000, "q": 1}, lambda v: 1 <= v <= 1000 and v == int(v)),
    ({"distribution": "normal", "mu": 0, "sigma": 1}, lambda v: -10 < v < 10),
    ({"distribution": "log_normal", "mu": 0, "sigma": 1}, lambda v: v > 0),
    ({"values": ["a", "b"], "probabilities": [0.0, 1.0]}, lambda v: v == "b"),
    ({"value": 7}, lambda v: v == 7),
])
def test_random_draws_stay_in_their_distribution(spec, check):
    config = {"method": "random", "parameters": {"p": spec}}
    assert sweep_params.parse(json.dumps(config)) == config  # 1e-05 stays a number
    draws = [sweep_params.params("sweep1", config, i)["p"] for i in range(200)]
    assert all(check(v) for v in draws), draws
    # Seeded by the sweep and the set's number: the same sweep hands out the same sets.
    assert draws == [sweep_params.params("sweep1", config, i)["p"] for i in range(200)]
