"""Sweeps: Project.sweep(s), Run.sweep, Sweep and Agent fields, and the mutations wandb.sweep and
wandb.agent send (upsertSweep, createAgent, agentHeartbeat).

Sweep and Agent objects are dicts; fields that cost a query are callables, which graphql-core's
default resolver calls only when the field is selected.

The agent protocol (the SDK's wandb/agents/pyagent.py): the agent heartbeats with the runs it
still has queued or running; the answer is a list of commands, the first of which it acts on:
{"type": "run", "run_id", "args": {name: {"value": v}}} starts a run with those parameters,
{"type": "stop", "run_id"} stops one, {"type": "exit"} ends the agent. One run at a time per
agent, as W&B's controller hands them out.
"""

from __future__ import annotations

import sqlite3
from typing import Any, Callable

import orjson

from ..._time import now
from .. import sweep_params
from ..store import BadInput, json_object_text, page_size, storage_id
from ..store import sweeps as store_sweeps
from ..store._common import decode_storage_id
from . import _connection
from ._context import Context, ctx
from .user import user_node

_RUNS_PAGE = 1000  # Sweep.runs takes no arguments (as on W&B): the first 1,000 runs


def _config(row: sqlite3.Row) -> dict[str, Any]:
    # Stored configs passed sweep_params.parse once; seeded ones are JSON.
    return sweep_params.parse(row["config"])


def sweep_node(context: Context, row: sqlite3.Row) -> dict[str, Any]:
    project = context.project(row["project_id"])
    try:
        config = _config(row)
    except BadInput:  # a config this server's rules no longer accept still reads back as it is
        config = {}
    metric = config.get("metric") or {}

    def best_loss(_info: Any) -> float | None:
        if not metric:
            return None
        return store_sweeps.best_value(context.store.conn, row, metric["name"], metric.get("goal") == "maximize")

    def runs(info: Any) -> dict[str, Any]:
        from .project import PROJECT_FIELDS  # project.py lists this module's fields

        filters = orjson.dumps({"sweep": row["name"]}).decode()
        return PROJECT_FIELDS["runs"](project, info, filters=filters, order="+created_at", first=_RUNS_PAGE)

    return {
        "id": storage_id("Sweep", row["name"], project["name"], project["entity_name"]),
        "name": row["name"],
        "displayName": row["display_name"] or config.get("name"),
        "description": row["description"] if row["description"] is not None else config.get("description"),
        "method": row["method"],
        "state": row["state"],
        "config": row["config"],
        "controller": None,
        "scheduler": None,
        "earlyStopJobRunning": False,
        "createdAt": row["created_at"],
        "updatedAt": row["updated_at"],
        "heartbeatAt": row["heartbeat_at"] or row["updated_at"],
        "runCountExpected": sweep_params.expected_runs(config) if config else None,
        "runCount": lambda _info: store_sweeps.run_count(context.store.conn, row),
        "bestLoss": best_loss,
        "runs": runs,
        "project": lambda _info: project,
        "agents": lambda _info: _agents(context, row),
        "agent": lambda _info, agentName: _agent_named(context, row, agentName),
        "user": lambda _info: user_node(context.store, context.store.username(row["user_id"])),
    }


def _agent_node(context: Context, row: sqlite3.Row, sweep: sqlite3.Row) -> dict[str, Any]:
    return {
        "id": storage_id("Agent", str(row["id"])), "name": row["name"], "host": row["host"],
        "state": row["state"], "createdAt": row["created_at"], "heartbeatAt": row["heartbeat_at"],
        "totalRuns": row["runs"], "sweep": lambda _info: sweep_node(context, sweep),
    }


def _agents(context: Context, sweep: sqlite3.Row) -> dict[str, Any]:
    # W&B's Sweep.agents takes no arguments: every agent of the sweep, in one page.
    rows = store_sweeps.agents(context.store.conn, sweep["id"])
    return _connection.connection(rows, more=False, after=None,
                                  cursor=lambda row: _connection.opaque("Agent", row["id"]),
                                  node=lambda row: _agent_node(context, row, sweep))


def _agent_named(context: Context, sweep: sqlite3.Row, name: str) -> dict[str, Any] | None:
    row = store_sweeps.agent_named(context.store.conn, sweep["id"], name)
    return None if row is None else _agent_node(context, row, sweep)


# -- Project and Run fields ------------------------------------------------------------------
def _project_sweep(project: sqlite3.Row, info: Any, sweepName: str) -> dict[str, Any] | None:
    context = ctx(info)
    row = store_sweeps.get(context.store.conn, project["id"], sweepName)
    return None if row is None else sweep_node(context, row)


def _project_sweeps(project: sqlite3.Row, info: Any, after: str | None = None, first: int | None = None,
                    filters: Any = None) -> dict[str, Any]:
    context = ctx(info)
    if filters not in (None, "", "{}", {}):
        raise BadInput("Project.sweeps filters are not supported by the local server; pass {} or omit them")
    rows, more = store_sweeps.page(context.store.conn, project["id"], page_size(first),
                                   _connection.from_opaque("Sweep", after))
    return _connection.connection(rows, more=more, after=after,
                                  cursor=lambda row: _connection.opaque("Sweep", row["id"]),
                                  node=lambda row: sweep_node(context, row))


def _run_sweep(run: sqlite3.Row, info: Any) -> dict[str, Any] | None:
    if not run["sweep_name"]:
        return None
    context = ctx(info)
    row = store_sweeps.get(context.store.conn, run["project_id"], run["sweep_name"])
    return None if row is None else sweep_node(context, row)


SWEEP_PROJECT_FIELDS: dict[str, Callable[..., Any]] = {
    "sweep": _project_sweep,
    "sweeps": _project_sweeps,
    "totalSweeps": lambda p, i: store_sweeps.count(ctx(i).store.conn, p["id"]),
}
SWEEP_RUN_FIELDS: dict[str, Callable[..., Any]] = {"sweep": _run_sweep}


# -- mutations ---------------------------------------------------------------------------------
def _sweep_by_id(context: Context, value: str) -> sqlite3.Row:
    parts = decode_storage_id(value, "Sweep")
    if len(parts) != 3:
        raise BadInput(f"invalid Sweep id {value!r}: expected a base64 Sweep id")
    name, project_name, entity = parts
    project = context.find_project(entity, project_name)
    row = None if project is None else store_sweeps.get(context.store.conn, project["id"], name)
    if row is None:
        raise BadInput(f"sweep {entity}/{project_name}/{name} not found")
    return row


def upsert_sweep(_root: Any, info: Any, input: dict[str, Any]) -> dict[str, Any]:
    """Create a sweep (no id), or change its state, description or display name (id)."""
    context = ctx(info)
    conn = context.store.conn
    state = input.get("state")
    if state is not None and state not in store_sweeps.STATES:
        raise BadInput(f"sweep state {state!r} is not one of {', '.join(store_sweeps.STATES)}")
    warnings: list[str] = []
    if input.get("id"):
        row = _sweep_by_id(context, input["id"])
        if input.get("config") is not None and input["config"] != row["config"]:
            raise BadInput("changing a sweep's config is not supported by the local server; create a new sweep")
        changes: dict[str, Any] = {}
        if state is not None and state != row["state"]:
            if row["state"] in store_sweeps.FINAL:
                raise BadInput(f"sweep {row['name']} is {row['state'].lower()}; a finished or canceled sweep "
                               "cannot change state (create a new sweep)")
            changes["state"] = state
        for key, column in (("description", "description"), ("displayName", "display_name")):
            if input.get(key) is not None:
                changes[column] = input[key]
        if changes:
            row = store_sweeps.update(conn, row, **changes)
        inserted = False
    else:
        config = sweep_params.parse(input.get("config") or "")
        project = context.ensure_project(input.get("entityName"), input.get("projectName") or "uncategorized")
        row = store_sweeps.create(conn, project["id"], input["config"], config["method"],
                                  state=state or "RUNNING", user_id=context.viewer.id,
                                  description=input.get("description"), display_name=input.get("displayName"))
        inserted = True
        if input.get("priorRunsFilters"):
            prior = context.store.all_runs(project["id"], input["priorRunsFilters"])
            store_sweeps.adopt_runs(conn, row, [r["id"] for r in prior])
        for key in ("controller", "scheduler", "launchScheduler"):
            if input.get(key) not in (None, "null"):
                warnings.append(f"{key} is ignored by the local server: it runs the sweep itself")
    return {"sweep": sweep_node(context, row), "inserted": inserted, "configValidationWarnings": warnings,
            "clientMutationId": input.get("clientMutationId")}


def create_agent(_root: Any, info: Any, input: dict[str, Any]) -> dict[str, Any]:
    context = ctx(info)
    project = context.find_project(input.get("entityName"), input.get("projectName") or "uncategorized")
    sweep = None if project is None else store_sweeps.get(context.store.conn, project["id"], input["sweep"])
    if sweep is None:
        where = f"{input.get('entityName') or context.viewer.entity}/{input.get('projectName') or 'uncategorized'}"
        raise BadInput(f"sweep {where}/{input['sweep']} not found")
    if sweep["state"] in store_sweeps.FINAL:
        raise BadInput(f"sweep {sweep['name']} is {sweep['state'].lower()}: it takes no new agents")
    agent = store_sweeps.create_agent(context.store.conn, sweep, input["host"])
    return {"agent": _agent_node(context, agent, sweep), "clientMutationId": input.get("clientMutationId")}


def agent_heartbeat(_root: Any, info: Any, input: dict[str, Any]) -> dict[str, Any]:
    context = ctx(info)
    conn = context.store.conn
    parts = decode_storage_id(input["id"], "Agent")
    agent = store_sweeps.agent(conn, int(parts[0])) if parts[0].isdigit() else None
    sweep = None if agent is None else store_sweeps.by_id(conn, agent["sweep_id"])
    if agent is None or sweep is None or not context.visible(sweep["project_id"]):
        raise BadInput(f"agent {input['id']!r} not found")
    active = [run for run, alive in _json_object(input.get("runState"), "runState").items() if alive]
    commands, started = _commands(conn, sweep, active)
    state = "FINISHED" if commands and commands[0]["type"] == "exit" else None
    agent = store_sweeps.agent_heartbeat(conn, agent, state=state, started_run=started)
    store_sweeps.update(conn, sweep, heartbeat_at=now())
    return {"agent": _agent_node(context, agent, sweep), "commands": orjson.dumps(commands).decode(),
            "clientMutationId": input.get("clientMutationId")}


def _commands(conn: sqlite3.Connection, sweep: sqlite3.Row, active: list[str]) -> tuple[list[dict[str, Any]], bool]:
    """What the agent does next, and whether that is a new run."""
    state = sweep["state"]
    if state == "CANCELED":  # as W&B: canceling stops the runs in flight, then the agents
        return ([{"type": "stop", "run_id": run} for run in active] or [{"type": "exit"}]), False
    if active or state == "PAUSED":
        return [], False  # wait: one run at a time; a paused sweep hands out nothing until resumed
    if state == "FINISHED":
        return [{"type": "exit"}], False
    config = _config(sweep)
    values = sweep_params.params(sweep["name"], config, sweep["issued"])
    if values is None:  # the grid is done or run_cap reached
        store_sweeps.update(conn, sweep, state="FINISHED")
        return [{"type": "exit"}], False
    store_sweeps.update(conn, sweep, issued=sweep["issued"] + 1)
    command = {"type": "run", "run_id": store_sweeps.new_name(),
               "args": {name: {"value": value} for name, value in values.items()}}
    if config.get("program"):
        command["program"] = config["program"]
    return [command], True


def _json_object(value: Any, what: str) -> dict[str, Any]:
    """A JSONString object argument the SDK may also send empty or as null."""
    if value in (None, "", "null"):
        return {}
    parsed: dict[str, Any] = orjson.loads(json_object_text(value, what))
    return parsed


SWEEP_MUTATIONS: dict[str, Callable[..., Any]] = {
    "upsertSweep": upsert_sweep,
    "createAgent": create_agent,
    "agentHeartbeat": agent_heartbeat,
}
