"""What the SDK reports about a run's machine, written in bulk (the demo seed): the latest system
metrics and host (its wandb-metadata.json is a run file: files.insert_uploaded)."""

from __future__ import annotations

import sqlite3
from typing import Iterable


def set_machine(conn: sqlite3.Connection, runs: Iterable[tuple[int, str, str]]) -> None:
    """(run id, system metrics JSON text, host) for each run."""
    conn.executemany("UPDATE runs SET system_metrics = ?, host = ? WHERE id = ?",
                     [(metrics, host, run_id) for run_id, metrics, host in runs])

