"""Run history, system events and console lines: file_stream writes, GraphQL reads, bulk loads.

Writes are offset-idempotent (line N is written at index N), so a retried file_stream request
changes nothing. historyKeys is kept incrementally, counting only lines past the old end. Every
write keeps the per-key copy in history_columns (history_columns.py) in step with the rows;
sampledHistory reads that copy, whole-row reads the rows.
"""

from __future__ import annotations

import sqlite3
from typing import Any, Iterable, Sequence

import orjson

from ..jsonutil import loads_lenient
from . import history_columns as columns
from ._common import BadInput

_TYPE_NAMES = {bool: "boolean", int: "number", float: "number", str: "string", dict: "map", list: "list"}


def _type_name(value: Any) -> str:
    if value is None:
        return "nil"
    if isinstance(value, str) and value in ("NaN", "Infinity", "-Infinity"):
        return "number"
    return _TYPE_NAMES.get(type(value), "unknown")


def flatten(row: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """W&B's history keys: nested dicts become dotted keys ({"a": {"b": 1}} -> {"a.b": 1}).
    Media values (dicts with a "_type", e.g. a table-file) and empty dicts are values, kept whole."""
    out: dict[str, Any] = {}
    for key, value in row.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value and "_type" not in value:
            out.update(flatten(value, name + "."))
        else:
            out[name] = value
    return out


def _rows(content: list[Any], *, flat: bool = False) -> list[dict[str, Any]]:
    rows = []
    for line in content:
        try:
            row = loads_lenient(line) if isinstance(line, (str, bytes)) else line
        except ValueError:
            row = None
        if not isinstance(row, dict):
            row = {"_invalid": str(line)[:200]}
        rows.append(flatten(row) if flat else row)
    return rows


def _step(row: dict[str, Any]) -> int | None:
    """The row's step: an int `_step` (true/false are JSON booleans, not steps)."""
    step = row.get("_step")
    return step if type(step) is int else None


def append_history(conn: sqlite3.Connection, run: sqlite3.Row, offset: int, content: list[Any]) -> None:
    # Flattened at ingest, so rows, historyKeys, sampledHistory and scans all see the dotted keys.
    rows = _rows(content, flat=True)
    texts = [orjson.dumps(r).decode() for r in rows]
    steps = [_step(r) for r in rows]
    end = conn.execute("SELECT coalesce(max(line) + 1, 0) FROM history WHERE run_id = ?", (run["id"],)).fetchone()[0]
    # Lines sent again as they are (a retried request) change nothing; any other rewrite of a
    # stored line, or a gap filled, rebuilds the run's columns from the rows.
    rewritten = offset < end and [
        text for (text,) in conn.execute("SELECT row FROM history WHERE run_id = ? AND line >= ? AND line < ?"
                                         " ORDER BY line", (run["id"], offset, min(end, offset + len(rows))))
    ] != texts[:end - offset]
    conn.executemany("INSERT OR REPLACE INTO history (run_id, line, step, row) VALUES (?, ?, ?, ?)",
                     [(run["id"], offset + i, steps[i], text) for i, text in enumerate(texts)])
    if rewritten:
        columns.rebuild(conn, run["id"])
    else:
        new = max(end - offset, 0)
        columns.append(conn, run["id"], columns.collect(
            (offset + i, steps[i], rows[i]) for i in range(new, len(rows))))
    old_count = run["history_line_count"]
    keys = orjson.loads(run["history_keys"] or "{}")
    known = keys.setdefault("keys", {})
    last_step = keys.get("lastStep", -1)
    for i, row in enumerate(rows):
        if offset + i < old_count:
            continue  # a replayed line: already counted
        for key, value in row.items():
            entry_of_key = known.setdefault(key, {"typeCounts": []})
            entry_of_key["previousValue"] = value  # W&B's last value of the key (wandb verify reads it)
            counts = entry_of_key["typeCounts"]
            kind = _type_name(value)
            for entry in counts:
                if entry["type"] == kind:
                    entry["count"] += 1
                    break
            else:
                counts.append({"type": kind, "count": 1})
        if _step(row) is not None:
            last_step = max(last_step, row["_step"])
    keys["lastStep"] = last_step
    conn.execute("UPDATE runs SET history_line_count = max(history_line_count, ?), history_keys = ? WHERE id = ?",
                 (offset + len(rows), orjson.dumps(keys).decode(), run["id"]))


def append_events(conn: sqlite3.Connection, run: sqlite3.Row, offset: int, content: list[Any]) -> None:
    rows = _rows(content)
    conn.executemany("INSERT OR REPLACE INTO events (run_id, line, row) VALUES (?, ?, ?)",
                     [(run["id"], offset + i, orjson.dumps(r).decode()) for i, r in enumerate(rows)])
    last = rows[-1] if rows else {}
    system = {k: v for k, v in last.items() if k.startswith("system.")}
    conn.execute("UPDATE runs SET events_line_count = max(events_line_count, ?),"
                 " system_metrics = CASE WHEN ? = '{}' THEN system_metrics ELSE ? END WHERE id = ?",
                 (offset + len(rows), orjson.dumps(system).decode(), orjson.dumps(system).decode(), run["id"]))


def write_log(conn: sqlite3.Connection, run: sqlite3.Row, offset: int, content: list[Any]) -> None:
    # Console lines may overwrite earlier indices (terminal \r emulation): replace at index.
    conn.executemany("INSERT OR REPLACE INTO logs (run_id, line, content) VALUES (?, ?, ?)",
                     [(run["id"], offset + i, str(line)) for i, line in enumerate(content)])
    conn.execute("UPDATE runs SET log_line_count = max(log_line_count, ?) WHERE id = ?",
                 (offset + len(content), run["id"]))


def insert(conn: sqlite3.Connection, histories: Iterable[tuple[int, list[dict[str, Any]]]]) -> None:
    """Whole histories of new runs at once, (run id, rows with an int _step); the caller keeps
    the runs' historyLineCount and historyKeys in step."""
    for run_id, rows in histories:
        flat = [flatten(row) for row in rows]
        conn.executemany("INSERT INTO history (run_id, line, step, row) VALUES (?, ?, ?, ?)",
                         [(run_id, line, row["_step"], orjson.dumps(row).decode()) for line, row in enumerate(flat)])
        columns.replace(conn, run_id, columns.collect((line, row["_step"], row) for line, row in enumerate(flat)))


def _sampled(n: int, samples: int | None) -> Sequence[int]:
    """Which of n rows a sample keeps: evenly spaced, the first and last always, deterministic."""
    if samples is None or samples <= 0 or n <= samples:
        return range(n)
    if samples == 1:
        return [n - 1]
    step = (n - 1) / (samples - 1)
    return [round(i * step) for i in range(samples)]


def _sample(rows: list[Any], samples: int | None) -> list[Any]:
    return [rows[i] for i in _sampled(len(rows), samples)]


def _step_range(run_id: int, min_step: Any, max_step: Any, max_inclusive: bool) -> tuple[str, list[Any]]:
    where, params = "run_id = ?", [run_id]
    if min_step is not None:
        where += " AND step >= ?"
        params.append(_int(min_step, "minStep"))
    if max_step is not None:
        where += " AND step <= ?" if max_inclusive else " AND step < ?"
        params.append(_int(max_step, "maxStep"))
    # Without a range every line counts (a row without an int _step too); with one, only stepped rows.
    order = "step, line" if (min_step, max_step) != (None, None) else "line"
    return f"FROM history WHERE {where} ORDER BY {order}", params


def _int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadInput(f"{name} must be an integer step, got {value!r}")
    return value


def history(conn: sqlite3.Connection, run_id: int, min_step: int | None, max_step: int | None,
            samples: int | None) -> list[str]:
    """Run.history: rows as JSON strings in step order; minStep inclusive, maxStep exclusive."""
    tail, params = _step_range(run_id, min_step, max_step, max_inclusive=False)
    return _rows_sampled(conn, run_id, tail, params, samples)


def sampled_history(conn: sqlite3.Connection, run_id: int, spec: dict[str, Any]) -> str:
    """One sampledHistory spec, as the JSON text of its list of rows: rows that hold every
    requested key, projected to them, at most `samples` (first and last kept). minStep and
    maxStep are both inclusive here (scan_history depends on it)."""
    keys = spec.get("keys") or []
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise BadInput('sampledHistory "keys" must be a list of strings, e.g. {"keys": ["_step", "loss"]}')
    keys = list(dict.fromkeys(keys))
    samples = spec.get("samples")
    if samples is not None:
        samples = _int(samples, "samples")
    lo, hi = spec.get("minStep"), spec.get("maxStep")
    tail, params = _step_range(run_id, lo, hi, max_inclusive=True)
    if not keys:  # whole rows
        return "[" + ",".join(_rows_sampled(conn, run_id, tail, params, samples)) + "]"
    # From the asked keys' columns: the other keys of the rows are never read or parsed.
    _, values = columns.rows_with(columns.read(conn, run_id, keys, lo, hi), by_step=(lo, hi) != (None, None))
    chosen = _sampled(len(values[0]), samples)
    if not isinstance(chosen, range):
        values = [[v[i] for i in chosen] for v in values]
    return _rows_text(keys, values)


def _rows_text(keys: list[str], values: list[list[str]]) -> str:
    """The JSON text of rows {key: value} from each key's value texts, nothing parsed: the
    pieces of all rows laid out in one list (separators repeated, values dropped into every
    other slot by slice assignment) and joined once."""
    if not values[0]:
        return "[]"
    names = [orjson.dumps(k).decode() + ":" for k in keys]
    pattern: list[str] = []
    for j, name in enumerate(names):
        pattern += [("},{" if j == 0 else ",") + name, ""]
    pieces = pattern * len(values[0])
    for j, texts in enumerate(values):
        pieces[2 * j + 1::2 * len(keys)] = texts
    pieces[0] = "[{" + names[0]
    return "".join(pieces) + "}]"


def _rows_sampled(conn: sqlite3.Connection, run_id: int, tail: str, params: list[Any],
                  samples: int | None) -> list[str]:
    if samples is None or samples <= 0:
        return [r[0] for r in conn.execute("SELECT row " + tail, params)]
    # A page that fits in `samples` (a pager's usual request): its rows, read once.
    rows = [r[0] for r in conn.execute(f"SELECT row {tail} LIMIT ?", [*params, samples + 1])]
    if len(rows) <= samples:
        return rows
    # Sample the line numbers from the index, then read only the chosen rows.
    return _read_lines(conn, run_id, _sample([r[0] for r in conn.execute("SELECT line " + tail, params)], samples))


def _read_lines(conn: sqlite3.Connection, run_id: int, lines: list[int]) -> list[str]:
    rows = dict(conn.execute(
        "SELECT line, row FROM history WHERE run_id = ? AND line IN (SELECT value FROM json_each(?))",
        (run_id, orjson.dumps(lines).decode())).fetchall())
    return [rows[line] for line in lines]


def events(conn: sqlite3.Connection, run_id: int, samples: int | None) -> list[str]:
    rows = [r[0] for r in conn.execute("SELECT row FROM events WHERE run_id = ? ORDER BY line", (run_id,))]
    return _sample(rows, samples)


def tail(conn: sqlite3.Connection, table: str, run_id: int, n: int = 10) -> str:
    """historyTail / eventsTail: a JSONString of the last rows, each a JSON-encoded string."""
    assert table in ("history", "events")
    rows = [r[0] for r in conn.execute(
        f"SELECT row FROM {table} WHERE run_id = ? ORDER BY line DESC LIMIT ?", (run_id, n))]
    return orjson.dumps(rows[::-1]).decode()
