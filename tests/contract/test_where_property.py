"""--where end to end: random expressions over random runs on a real local server; what the
server returns for the compiled filter equals a plain Python evaluation of the expression, and
the compiled result names exactly the fields the expression used."""

from __future__ import annotations

import json
import random
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import Caller
from wandb_gql import SyncClient, compile_where
from wandb_gql.server.local import LocalServer

STATES = ["finished", "crashed", "failed", "running"]
TAGS = ["a", "b", "c"]
GROUPS = ["g1", "g2", None]


def make_runs(seed: int = 7, n: int = 60) -> list[dict]:
    rng = random.Random(seed)
    runs = []
    for i in range(n):
        config, summary = {}, {}
        if rng.random() < 0.8:
            config["lr"] = rng.choice([0.1, 0.01, 0.001, 1, 2, "0.1"])
        if rng.random() < 0.7:
            config["opt"] = {"name": rng.choice(["adam", "sgd"]), "m": rng.choice([0, 0.9])}
        if rng.random() < 0.8:
            summary["loss"] = rng.choice([0.1, 0.5, 1.0, 2, "NaN"])
        if rng.random() < 0.6:
            summary["val/acc"] = rng.choice([0.2, 0.8, 0.95, True])
        runs.append({"name": f"run{i:03d}", "state": rng.choice(STATES), "group": rng.choice(GROUPS),
                     "tags": sorted(rng.sample(TAGS, rng.randint(0, 2))), "config": config, "summary": summary})
    return runs


RUNS = make_runs()
MISSING = object()


def lookup(run: dict, field: str):
    if field.startswith("config."):
        value = run["config"]
        for part in field.split(".")[1:]:
            value = value.get(part, MISSING) if isinstance(value, dict) else MISSING
        return value
    if field.startswith("summary."):
        return run["summary"].get(field[len("summary."):], MISSING)
    value = run[field]
    return MISSING if value is None else value


def same_type(a, b) -> bool:
    num = (int, float)
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool)
    return (isinstance(a, num) and isinstance(b, num)) or type(a) is type(b)


def equal(a, b) -> bool:
    return a is not MISSING and same_type(a, b) and a == b


def holds(run: dict, node) -> bool:
    kind = node[0]
    if kind == "and":
        return holds(run, node[1]) and holds(run, node[2])
    if kind == "or":
        return holds(run, node[1]) or holds(run, node[2])
    if kind == "not":
        return not holds(run, node[1])
    _, field, op, value = node
    actual = lookup(run, field)
    if field == "tags":
        if op in ("has", "="):
            return value in actual
        if op == "!=":
            return value not in actual
        if op == "in":
            return any(v in actual for v in value)
        if op == "not in":
            return not any(v in actual for v in value)
        if op == "~":
            return any(re.search(value, t) for t in actual)
    if op == "exists":
        return actual is not MISSING
    if op == "not exists":
        return actual is MISSING
    if op == "=":
        return equal(actual, value)
    if op == "!=":
        return not equal(actual, value)
    if op == "in":
        return any(equal(actual, v) for v in value)
    if op == "not in":
        return not any(equal(actual, v) for v in value)
    if op == "~":
        return isinstance(actual, str) and re.search(value, actual) is not None
    if actual is MISSING or not same_type(actual, value):
        return False
    return {"<": actual < value, "<=": actual <= value, ">": actual > value, ">=": actual >= value}[op]


def render_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return json.dumps(v)
    return repr(v)


def render(node) -> str:
    kind = node[0]
    if kind in ("and", "or"):
        return f"({render(node[1])} {kind} {render(node[2])})"
    if kind == "not":
        return f"not ({render(node[1])})"
    _, field, op, value = node
    if op in ("exists", "not exists"):
        return f"{field} {op}"
    if op in ("in", "not in"):
        return f"{field} {op} ({', '.join(render_value(v) for v in value)})"
    return f"{field} {op} {render_value(value)}"


SCALARS = {
    "state": st.sampled_from(STATES + ["killed"]),
    "group": st.sampled_from(["g1", "g2", "g3"]),
    "name": st.sampled_from(["run001", "run010", "run059", "nope"]),
    "config.lr": st.sampled_from([0.1, 0.01, 0.001, 1, 2, "0.1", 1.5]),
    "config.opt.name": st.sampled_from(["adam", "sgd", "x"]),
    "config.opt.m": st.sampled_from([0, 0.9, 0.5]),
    "summary.loss": st.sampled_from([0.1, 0.5, 1.0, 2, "NaN", 0.3]),
    "summary.val/acc": st.sampled_from([0.2, 0.8, 0.95, True, False]),
}
REGEX = st.sampled_from(["^run0", "9$", "un0[12]", "a", "^s", "x"])


@st.composite
def leaf(draw):
    field = draw(st.sampled_from([*SCALARS, "tags"]))
    if field == "tags":
        op = draw(st.sampled_from(["has", "=", "!=", "in", "not in", "~", "exists"]))
        tag = st.sampled_from(TAGS + ["z"])
        value = draw(st.lists(tag, min_size=1, max_size=3)) if op in ("in", "not in") else \
            draw(REGEX) if op == "~" else draw(tag)
        return ("cmp", field, op, value)
    ops = ["=", "!=", "<", "<=", ">", ">=", "in", "not in", "exists", "not exists"]
    if field in ("state", "group", "name", "config.opt.name"):
        ops.append("~")
    op = draw(st.sampled_from(ops))
    if op in ("in", "not in"):
        value = draw(st.lists(SCALARS[field], min_size=1, max_size=3))
    elif op == "~":
        value = draw(REGEX)
    else:
        value = draw(SCALARS[field])
    return ("cmp", field, op, value)


expressions = st.recursive(
    leaf(),
    lambda inner: st.one_of(st.tuples(st.just("and"), inner, inner), st.tuples(st.just("or"), inner, inner),
                            st.tuples(st.just("not"), inner)),
    max_leaves=6)


@pytest.fixture(scope="module")
def populated():
    with LocalServer(":memory:") as server:
        api = Caller(server)
        for run in RUNS:
            api.ok("mutation U($i: UpsertBucketInput!) { upsertBucket(input: $i) { inserted } }", {"i": {
                "modelName": "prop", "name": run["name"], "groupName": run["group"], "state": run["state"],
                "tags": run["tags"], "config": json.dumps({k: {"value": v} for k, v in run["config"].items()}),
                "summaryMetrics": json.dumps(run["summary"])}})
        with SyncClient(server.base_url, server.api_key) as client:
            yield client


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(expressions)
def test_server_result_equals_python_evaluation(populated, node):
    expression = render(node)
    got = sorted(r.name for r in populated.runs("local/prop", where=expression))
    want = sorted(run["name"] for run in RUNS if holds(run, node))
    assert got == want, expression


def fields_used(node) -> list[str]:
    if node[0] in ("and", "or"):
        return fields_used(node[1]) + fields_used(node[2])
    if node[0] == "not":
        return fields_used(node[1])
    return [node[1]]


@settings(max_examples=150, deadline=None)
@given(expressions)
def test_compiled_keys_are_the_fields_used_in_order(node):
    compiled = compile_where(render(node))
    assert compiled.keys == tuple(dict.fromkeys(fields_used(node)))
    assert compiled.expression == render(node) and compiled.dotted_keys == ()
