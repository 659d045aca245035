"""Sweeps and their agents. A run belongs to a sweep by runs.sweep_name (what upsertBucket's
`sweep` sets), so runs written before their sweep existed, moved or imported, count too.

Plain functions over a connection, called inside the request's transaction; the caller has
checked the project is the viewer's (resolvers/_context.py).
"""

from __future__ import annotations

import secrets
import sqlite3
import string
from typing import Any

import orjson

from ..._time import now

# W&B's sweep states; FINISHED and CANCELED are final (W&B's `wandb sweep --resume` refuses them).
STATES = ("RUNNING", "PAUSED", "FINISHED", "CANCELED")
FINAL = ("FINISHED", "CANCELED")
_ALPHABET = string.ascii_lowercase + string.digits


def new_name() -> str:
    """A sweep or agent id as W&B makes them: 8 lowercase letters and digits."""
    return "".join(secrets.choice(_ALPHABET) for _ in range(8))


def get(conn: sqlite3.Connection, project_id: int, name: str) -> sqlite3.Row | None:
    return conn.execute("SELECT * FROM sweeps WHERE project_id = ? AND name = ?", (project_id, name)).fetchone()


def by_id(conn: sqlite3.Connection, sweep_id: int) -> sqlite3.Row | None:
    return conn.execute("SELECT * FROM sweeps WHERE id = ?", (sweep_id,)).fetchone()


def create(conn: sqlite3.Connection, project_id: int, config_text: str, method: str, *, state: str = "RUNNING",
           user_id: int | None = None, description: str | None = None, display_name: str | None = None,
           name: str | None = None, created_at: str | None = None, updated_at: str | None = None,
           issued: int = 0) -> sqlite3.Row:
    stamp = created_at or now()
    name = name or new_name()
    while get(conn, project_id, name) is not None:
        name = new_name()
    conn.execute("INSERT INTO sweeps (project_id, name, display_name, description, config, method, state,"
                 " user_id, created_at, updated_at, heartbeat_at, issued) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                 (project_id, name, display_name, description, config_text, method, state, user_id, stamp,
                  updated_at or stamp, updated_at, issued))
    row = get(conn, project_id, name)
    assert row is not None  # inserted just above
    return row


def update(conn: sqlite3.Connection, sweep: sqlite3.Row, **columns: Any) -> sqlite3.Row:
    """Set columns (state, description, display_name, issued, heartbeat_at) and updated_at."""
    allowed = {"state", "description", "display_name", "issued", "heartbeat_at"}
    assert set(columns) <= allowed, columns
    sets = ", ".join(f"{c} = ?" for c in columns)
    conn.execute(f"UPDATE sweeps SET {sets}, updated_at = ? WHERE id = ?", (*columns.values(), now(), sweep["id"]))
    row = by_id(conn, sweep["id"])
    assert row is not None
    return row


def page(conn: sqlite3.Connection, project_id: int, first: int, after_id: int) -> tuple[list[sqlite3.Row], bool]:
    """A project's sweeps, newest first (as W&B lists them); `after_id` 0 starts at the top."""
    sql = "SELECT * FROM sweeps WHERE project_id = ?" + (" AND id < ?" if after_id else "")
    params: tuple[Any, ...] = (project_id, after_id) if after_id else (project_id,)
    rows = conn.execute(sql + " ORDER BY id DESC LIMIT ?", (*params, first + 1)).fetchall()
    return rows[:first], len(rows) > first


def count(conn: sqlite3.Connection, project_id: int) -> int:
    return int(conn.execute("SELECT count(*) FROM sweeps WHERE project_id = ?", (project_id,)).fetchone()[0])


def run_count(conn: sqlite3.Connection, sweep: sqlite3.Row) -> int:
    return int(conn.execute("SELECT count(*) FROM runs WHERE project_id = ? AND sweep_name = ?"
                            " AND deleted_at IS NULL", (sweep["project_id"], sweep["name"])).fetchone()[0])


def best_value(conn: sqlite3.Connection, sweep: sqlite3.Row, metric: str, maximize: bool) -> float | None:
    """The best numeric summary value of `metric` over the sweep's live runs."""
    path = "$." + orjson.dumps(metric).decode()  # quoted: names like val/acc hold path characters
    row = conn.execute(
        f"SELECT {'max' if maximize else 'min'}(v) FROM (SELECT json_extract(summary, ?) AS v FROM runs"
        " WHERE project_id = ? AND sweep_name = ? AND deleted_at IS NULL AND json_valid(summary))"
        " WHERE typeof(v) IN ('integer', 'real')", (path, sweep["project_id"], sweep["name"])).fetchone()
    return None if row[0] is None else float(row[0])


def adopt_runs(conn: sqlite3.Connection, sweep: sqlite3.Row, run_ids: list[int]) -> int:
    """priorRunsFilters: existing runs join the sweep."""
    conn.executemany("UPDATE runs SET sweep_name = ? WHERE id = ?", [(sweep["name"], i) for i in run_ids])
    return len(run_ids)


def named_without_row(conn: sqlite3.Connection, project_id: int) -> list[sqlite3.Row]:
    """Sweep names runs carry with no sweep row (seeded or imported runs): name, first created_at,
    last updated_at, how many runs, and whether the newest of them is still running."""
    return conn.execute(
        "SELECT sweep_name AS name, min(created_at) AS created_at, max(updated_at) AS updated_at,"
        " count(*) AS runs, (SELECT n.state = 'running' FROM runs n WHERE n.project_id = r.project_id"
        "  AND n.sweep_name = r.sweep_name ORDER BY n.created_at DESC, n.id DESC LIMIT 1) AS running"
        " FROM runs r WHERE project_id = ? AND sweep_name IS NOT NULL"
        " AND NOT EXISTS (SELECT 1 FROM sweeps s WHERE s.project_id = r.project_id AND s.name = r.sweep_name)"
        " GROUP BY sweep_name ORDER BY sweep_name", (project_id,)).fetchall()


# -- agents --------------------------------------------------------------------------------
def create_agent(conn: sqlite3.Connection, sweep: sqlite3.Row, host: str) -> sqlite3.Row:
    stamp = now()
    cursor = conn.execute("INSERT INTO sweep_agents (sweep_id, name, host, created_at, heartbeat_at)"
                          " VALUES (?, ?, ?, ?, ?)", (sweep["id"], new_name(), host, stamp, stamp))
    row = agent(conn, int(cursor.lastrowid or 0))
    assert row is not None
    return row


def agents(conn: sqlite3.Connection, sweep_id: int) -> list[sqlite3.Row]:
    return conn.execute("SELECT * FROM sweep_agents WHERE sweep_id = ? ORDER BY id", (sweep_id,)).fetchall()


def agent_named(conn: sqlite3.Connection, sweep_id: int, name: str) -> sqlite3.Row | None:
    return conn.execute("SELECT * FROM sweep_agents WHERE sweep_id = ? AND name = ?", (sweep_id, name)).fetchone()


def agent(conn: sqlite3.Connection, agent_id: int) -> sqlite3.Row | None:
    return conn.execute("SELECT * FROM sweep_agents WHERE id = ?", (agent_id,)).fetchone()


def agent_heartbeat(conn: sqlite3.Connection, agent_row: sqlite3.Row, *, state: str | None = None,
                    started_run: bool = False) -> sqlite3.Row:
    conn.execute("UPDATE sweep_agents SET heartbeat_at = ?, state = coalesce(?, state), runs = runs + ?"
                 " WHERE id = ?", (now(), state, int(started_run), agent_row["id"]))
    row = agent(conn, agent_row["id"])
    assert row is not None
    return row
