"""Shared test helpers: a fake transport for the unit layer (no server).

FakeTransport stands where the real Transport stands (`Client(transport=FakeTransport(...))`).
Every call is checked as the server would check it: the operation must be a document of
queries/, every variable sent must be declared by that document, and the values must coerce
against schema.graphql (graphql-core's own variable coercion). Calls are recorded; answers come
from a handler: a callable (call -> data, or an exception to raise), or FakeWandb below, a small
in-memory W&B that pages, filters by `name $in`, deletes and restores.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Callable

import orjson
from graphql import GraphQLSchema, OperationDefinitionNode, build_schema, parse
from graphql.execution.values import get_variable_values

from wandb_gql import documents
from wandb_gql.transport import READ, RetryPolicy


@lru_cache(maxsize=1)
def schema() -> GraphQLSchema:
    return build_schema(documents.schema_text())


@lru_cache(maxsize=None)
def operation(name: str) -> OperationDefinitionNode:
    definition = parse(documents.document(name)).definitions[0]
    assert isinstance(definition, OperationDefinitionNode)
    return definition


def check_variables(name: str, variables: dict[str, Any]) -> dict[str, Any]:
    """The coerced variables of a call, or AssertionError saying what the server would refuse."""
    assert name in documents.documents(), f"{name} is not an operation of queries/"
    definitions = operation(name).variable_definitions or ()
    declared = {d.variable.name.value for d in definitions}
    undeclared = set(variables) - declared
    assert not undeclared, f"{name}: variables {sorted(undeclared)} are not declared by the document"
    result = get_variable_values(schema(), definitions, variables)
    if isinstance(result, list):
        raise AssertionError(f"{name}: {[e.message for e in result]}")
    return dict(result.coerced)


@dataclass
class Call:
    operation: str
    variables: dict[str, Any]
    policy: RetryPolicy


Handler = Callable[[Call], Any]


class FakeTransport:
    """A GraphQLTransport for tests: checks, records, answers."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.calls: list[Call] = []
        self.open = False

    async def __aenter__(self) -> "FakeTransport":
        self.open = True
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.open = False

    async def execute(self, operation: str, variables: dict[str, Any] | None = None,
                      policy: RetryPolicy = READ) -> dict[str, Any]:
        assert self.open, "used outside 'async with'"
        variables = dict(variables or {})
        check_variables(operation, variables)
        call = Call(operation, variables, policy)
        self.calls.append(call)
        answer = self.handler(call)
        if inspect.isawaitable(answer):
            answer = await answer
        if isinstance(answer, BaseException):
            raise answer
        return answer

    async def post_json(self, path: str, body: dict[str, Any], policy: RetryPolicy = READ) -> dict[str, Any]:
        """A REST call (file_stream): recorded as a Call whose operation is the path, body as variables."""
        assert self.open, "used outside 'async with'"
        assert path.startswith("/"), path
        call = Call(path, orjson.loads(orjson.dumps(body)), policy)  # as on the wire: JSON, copied
        self.calls.append(call)
        answer = self.handler(call)
        if inspect.isawaitable(answer):
            answer = await answer
        if isinstance(answer, BaseException):
            raise answer
        return answer if answer is not None else {}

    def ops(self) -> list[str]:
        return [c.operation for c in self.calls]

    def of(self, operation: str) -> list[dict[str, Any]]:
        """The variables of every call of one operation."""
        return [c.variables for c in self.calls if c.operation == operation]


def page(nodes: list[dict[str, Any]], end_cursor: str | None, has_next: bool) -> dict[str, Any]:
    """A connection, as every listing returns it."""
    return {"edges": [{"cursor": n.get("id", ""), "node": n} for n in nodes],
            "pageInfo": {"endCursor": end_cursor, "hasNextPage": has_next}}


def run_node(name: str, **wire: Any) -> dict[str, Any]:
    return {"id": f"id-{name}", "name": name, **wire}


@dataclass
class FakeWandb:
    """An in-memory W&B behind FakeTransport: projects of runs (wire-shaped nodes), offset cursors,
    `{"name": {"$in": [...]}}` filters, soft delete and restore. `fail` maps an operation to an
    exception raised for calls whose variables satisfy the paired predicate."""

    projects: dict[tuple[str, str], list[dict[str, Any]]] = field(default_factory=dict)
    viewer: dict[str, Any] | None = field(default_factory=lambda: {
        "id": "u1", "username": "ada", "entity": "ada", "email": "ada@example.com", "admin": False,
        "teams": {"edges": [{"cursor": "c", "node": {"name": "ada"}}, {"cursor": "d", "node": {"name": "lab"}}]}})
    deleted: set[str] = field(default_factory=set)
    fail: dict[str, tuple[Callable[[dict[str, Any]], bool], BaseException]] = field(default_factory=dict)

    def __call__(self, call: Call) -> Any:
        v = call.variables
        rule = self.fail.get(call.operation)
        if rule and rule[0](v):
            return rule[1]
        return getattr(self, "_" + documents.snake_case(call.operation))(v)

    # -- helpers -------------------------------------------------------------------------------
    def _runs(self, v: dict[str, Any]) -> list[dict[str, Any]] | None:
        runs = self.projects.get((v["entity"], v["project"]))
        if runs is None:
            return None
        live = [r for r in runs if r["id"] not in self.deleted]
        query = orjson.loads(v.get("filters") or "{}")
        if query:
            names = set(query["name"]["$in"])
            live = [r for r in live if r["name"] in names]
        return live

    def _paged(self, nodes: list[dict[str, Any]], v: dict[str, Any]) -> dict[str, Any]:
        start = int(v.get("after") or 0)
        first = v.get("first") or 50
        chunk = nodes[start:start + first]
        return page(chunk, str(start + len(chunk)), start + len(chunk) < len(nodes))

    def _project_runs(self, v: dict[str, Any]) -> dict[str, Any]:
        runs = self._runs(v)
        return {"project": None if runs is None else {"runs": self._paged(runs, v)}}

    _project_run_ids = _project_runs

    def _project_run_count(self, v: dict[str, Any]) -> dict[str, Any]:
        runs = self._runs(v)
        return {"project": None if runs is None else {"runCount": len(runs)}}

    def _project_run(self, v: dict[str, Any]) -> dict[str, Any]:
        runs = self._runs({**v, "filters": None})
        if runs is None:
            return {"project": None}
        return {"project": {"run": next((r for r in runs if r["name"] == v["name"]), None)}}

    def _viewer(self, v: dict[str, Any]) -> dict[str, Any]:
        return {"viewer": self.viewer}

    def _entity_projects(self, v: dict[str, Any]) -> dict[str, Any]:
        names = sorted(p for e, p in self.projects if e == v["entity"])
        if not names:
            return {"entity": None}
        nodes = [{"id": f"p-{n}", "name": n, "entityName": v["entity"], "createdAt": "2026-01-01T00:00:00",
                  "lastActive": None, "runCount": len(self.projects[(v["entity"], n)])} for n in names]
        return {"entity": {"projects": self._paged(nodes, v)}}

    def _delete_run(self, v: dict[str, Any]) -> dict[str, Any]:
        self.deleted.add(v["id"])
        return {"deleteRun": {"clientMutationId": None}}

    def _undelete_runs(self, v: dict[str, Any]) -> dict[str, Any]:
        names = set(orjson.loads(v["filters"]).get("name", {}).get("$in", []))
        for runs in self.projects.values():
            self.deleted -= {r["id"] for r in runs if not names or r["name"] in names}
        return {"undeleteRuns": {"clientMutationId": None}}

    def _upsert_bucket(self, v: dict[str, Any]) -> dict[str, Any]:
        fields = v["input"]
        for runs in self.projects.values():
            for run in runs:
                if run["id"] == fields["id"]:
                    run.update({k: val for k, val in fields.items() if k != "id"})
        return {"upsertBucket": {"bucket": {"id": fields["id"], "name": ""}}}


def kill_after_first_outcome(args: list[str], ledger, cwd, timeout: float) -> None:
    """Run `python -c ARGS...` and SIGKILL it as soon as its ledger holds an outcome: an apply
    cut off midway, with no chance to write anything more. Fails if it ended on its own first."""
    import os
    import signal
    import subprocess
    import sys
    import time

    proc = subprocess.Popen([sys.executable, "-c", *args], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        if ledger.exists() and b'"type":"outcome"' in ledger.read_bytes():
            break
        time.sleep(0.002)
    assert proc.poll() is None, proc.communicate()
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()



def sdk_history_row(i: int, steps: int, seed: int = 0) -> dict[str, Any]:
    """Row `i` of a history as real scripts log one: nested dicts (dotted keys on the server), NaN
    and ±Infinity every so often, and a `val` group logged on every 10th step only."""
    row: dict[str, Any] = {"loss": 1.0 / (i + 1 + seed), "train": {"acc": (i % 97) / 97}}
    if i % 50 == 7:
        row["loss"] = float("nan")
    elif i % 50 == 9:
        row["loss"] = float("inf") if i % 100 == 9 else float("-inf")
    if i % 10 == 0:
        row["val"] = {"acc": i / steps, "loss": float("nan") if i % 200 == 0 else 0.5}
    return row


def same_numbers(value: Any) -> Any:
    """`value` with non-finite numbers as text, whether they came as W&B's strings ("NaN") or as
    floats, so two readings compare equal (NaN != NaN)."""
    import math

    if isinstance(value, str) and value in ("NaN", "Infinity", "-Infinity"):
        value = float(value)
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    if isinstance(value, dict):
        return {k: same_numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [same_numbers(v) for v in value]
    return value
