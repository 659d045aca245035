"""run.alert(): the alerts a run's script raised (notifyScriptableRunAlert), kept per run."""

from __future__ import annotations

import sqlite3

from ..._time import now


def add(conn: sqlite3.Connection, run_id: int, title: str, text: str, severity: str) -> None:
    conn.execute("INSERT INTO run_alerts (run_id, title, text, severity, created_at) VALUES (?, ?, ?, ?, ?)",
                 (run_id, title, text, severity, now()))


def last_of_title(conn: sqlite3.Connection, run_id: int, title: str) -> str | None:
    """When the run last raised an alert with this title (waitDuration counts from it)."""
    row = conn.execute("SELECT max(created_at) FROM run_alerts WHERE run_id = ? AND title = ?",
                       (run_id, title)).fetchone()
    return row[0] if row else None


def of_run(conn: sqlite3.Connection, run_id: int) -> list[sqlite3.Row]:
    return conn.execute("SELECT title, text, severity, created_at FROM run_alerts WHERE run_id = ? ORDER BY id",
                        (run_id,)).fetchall()
