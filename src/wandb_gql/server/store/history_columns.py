"""Run history by key (table history_columns): reading 3 of a run's keys touches those 3 keys,
instead of SQLite parsing every whole row to test and project them (~8 ms a 2,000-row run).

Each key a run logged is a column of entries (line, step, value) in line order, cut into chunks
of at most CHUNK entries, one table row each: `vals` the values as the row holds them (flattened,
NaN/Infinity as W&B's strings), `lines` and `steps` JSON arrays, NULL in the usual case (lines
consecutive from first_line; every step equal to its line) so that case costs nothing to read.
min_step/max_step let a step range skip chunks. The row table `history` stays the source of
truth: appends extend the last chunk of each key they hold, and whatever rewrites lines already
stored rebuilds the run's columns from it (`rebuild`).
"""

from __future__ import annotations

import functools
import sqlite3
from typing import Any, Iterable, Sequence

import orjson

CHUNK = 1000

# One key's entries: lines (ascending), steps (int, or None for a row without an int _step), values;
# as written (Entries) and as read (Column: values as JSON texts, lines/steps a range when consecutive).
Entries = tuple[list[int], list[Any], list[Any]]
Column = tuple[Sequence[int], Sequence[Any], list[str]]


def collect(entries: Iterable[tuple[int, Any, dict[str, Any]]]) -> dict[str, Entries]:
    """The columns of (line, step, flattened row) entries given in line order."""
    columns: dict[str, Entries] = {}
    for line, step, row in entries:
        for key, value in row.items():
            column = columns.get(key)
            if column is None:
                column = columns[key] = ([], [], [])
            column[0].append(line)
            column[1].append(step)
            column[2].append(value)
    return columns


def _chunk_record(run_id: int, key: str, chunk: int, lines: list[int], steps: list[Any],
                  vals: list[Any]) -> tuple[Any, ...]:
    stepped = [s for s in steps if s is not None]
    dense = lines[-1] - lines[0] == len(lines) - 1  # lines ascend, so this means consecutive
    return (run_id, key, chunk, lines[0], len(lines), min(stepped, default=None), max(stepped, default=None),
            None if dense else orjson.dumps(lines).decode(),
            None if steps == lines else orjson.dumps(steps).decode(), orjson.dumps(vals).decode())


def _records(run_id: int, key: str, first_chunk: int, column: Entries) -> list[tuple[Any, ...]]:
    lines, steps, vals = column
    return [_chunk_record(run_id, key, first_chunk + i // CHUNK, lines[i:i + CHUNK], steps[i:i + CHUNK],
                          vals[i:i + CHUNK]) for i in range(0, len(lines), CHUNK)]


_INSERT = ("INSERT OR REPLACE INTO history_columns (run_id, key, chunk, first_line, n, min_step, max_step,"
           " lines, steps, vals) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")


def _value_texts(vals: str) -> list[str]:
    """Each value of a chunk as JSON text. Numbers, null and booleans hold no comma, so an array
    of nothing else splits at its commas (the usual chunk: no value parsed or re-encoded); one
    with a string, list or object is parsed."""
    if '"' not in vals and "[" not in vals[1:] and "{" not in vals:
        return vals[1:-1].split(",") if len(vals) > 2 else []
    return [orjson.dumps(v).decode() for v in orjson.loads(vals)]


@functools.lru_cache(maxsize=128)
def _step_texts(first: int, n: int) -> tuple[str, tuple[str, ...]]:
    """The chunk text of `_step` values first..first+n-1 and each value's text: what a `_step`
    column holds when every step is its line (the SDK's way), so reading it needs no split."""
    texts = tuple(map(str, range(first, first + n)))
    return "[" + ",".join(texts) + "]", texts


def _extended(last: sqlite3.Row, lines: list[int], steps: list[Any], vals: list[Any]) -> tuple[Any, ...]:
    """The last chunk with entries added after it, by appending to its texts (nothing parsed)."""
    def joined(text: str, more: list[Any]) -> str:
        return text[:-1] + "," + orjson.dumps(more).decode()[1:]

    first, n = last["first_line"], last["n"]
    dense = last["lines"] is None and lines == list(range(first + n, first + n + len(lines)))
    if dense:
        lines_text = None
    else:
        old_lines = last["lines"] or orjson.dumps(list(range(first, first + n))).decode()
        lines_text = joined(old_lines, lines)
    if last["steps"] is None and steps == lines:
        steps_text = None
    else:  # NULL steps are the lines: their text is the lines' text
        old_steps = last["steps"] or last["lines"] or orjson.dumps(list(range(first, first + n))).decode()
        steps_text = joined(old_steps, steps)
    stepped = [s for s in (last["min_step"], last["max_step"], *steps) if s is not None]
    return (last["run_id"], last["key"], last["chunk"], first, n + len(lines), min(stepped, default=None),
            max(stepped, default=None), lines_text, steps_text, joined(last["vals"], vals))


def append(conn: sqlite3.Connection, run_id: int, columns: dict[str, Entries]) -> None:
    """Add entries whose lines all come after every line the run's columns hold: the last chunk
    of each key is extended while it has room (rewritten, never parsed), then new chunks follow."""
    records = []
    for key, (lines, steps, vals) in columns.items():
        last = conn.execute("SELECT * FROM history_columns WHERE run_id = ? AND key = ? ORDER BY chunk DESC LIMIT 1",
                            (run_id, key)).fetchone()
        chunk = 0
        if last is not None:
            chunk = last["chunk"] + 1
            room = CHUNK - last["n"]
            if room > 0:
                records.append(_extended(last, lines[:room], steps[:room], vals[:room]))
                lines, steps, vals = lines[room:], steps[room:], vals[room:]
        if lines:
            records += _records(run_id, key, chunk, (lines, steps, vals))
    conn.executemany(_INSERT, records)


def replace(conn: sqlite3.Connection, run_id: int, columns: dict[str, Entries]) -> None:
    conn.execute("DELETE FROM history_columns WHERE run_id = ?", (run_id,))
    conn.executemany(_INSERT, [r for key, column in columns.items() for r in _records(run_id, key, 0, column)])


def rebuild(conn: sqlite3.Connection, run_id: int) -> None:
    """The run's columns again from its rows."""
    rows = conn.execute("SELECT line, step, row FROM history WHERE run_id = ? ORDER BY line", (run_id,))
    replace(conn, run_id, collect((line, step, orjson.loads(text)) for line, step, text in rows))


def _joined(parts: list[Sequence[Any]]) -> Sequence[Any]:
    """Consecutive ranges stay one range (compared and sorted-checked in O(1)); else a list."""
    ranges = [p for p in parts if isinstance(p, range)]
    if len(ranges) == len(parts) and all(a.stop == b.start for a, b in zip(ranges, ranges[1:])):
        return range(ranges[0].start, ranges[-1].stop) if ranges else range(0)
    return [x for p in parts for x in p]


def read(conn: sqlite3.Connection, run_id: int, keys: list[str], lo: int | None, hi: int | None) -> list[Column]:
    """Each key's entries (one query for all of them), each value as its JSON text: all of them
    in line order, or with a range (both ends inclusive) only those with an int step inside it,
    still in line order."""
    sql = (f"SELECT key, first_line, n, lines, steps, vals, min_step, max_step FROM history_columns"
           f" WHERE run_id = ? AND key IN ({', '.join('?' * len(keys))})")
    params: list[Any] = [run_id, *keys]
    if lo is not None:
        sql += " AND max_step >= ?"
        params.append(lo)
    if hi is not None:
        sql += " AND min_step <= ?"
        params.append(hi)
    columns = {key: _Reader(key, lo, hi) for key in keys}
    for row in conn.execute(sql + " ORDER BY key, chunk", params):
        columns[row[0]].add(*row[1:])
    return [columns[key].column() for key in keys]


class _Reader:
    """One key's chunks as they are read, in chunk order, gathered into its Column."""

    def __init__(self, key: str, lo: int | None, hi: int | None) -> None:
        self.key, self.lo, self.hi = key, lo, hi
        self.line_parts: list[Sequence[int]] = []
        self.step_parts: list[Sequence[Any]] = []
        self.vals: list[str] = []
        self.same = True  # every step is its line

    def add(self, first_line: int, n: int, lines_text: str | None, steps_text: str | None, vals_text: str,
            min_step: int | None, max_step: int | None) -> None:
        lo, hi = self.lo, self.hi
        lines: Sequence[int] = range(first_line, first_line + n) if lines_text is None else orjson.loads(lines_text)
        steps: Sequence[Any] = lines if steps_text is None else orjson.loads(steps_text)
        if self.key == "_step" and lines_text is None and steps_text is None:
            text, cached = _step_texts(first_line, n)
            texts = list(cached) if text == vals_text else _value_texts(vals_text)
        else:
            texts = _value_texts(vals_text)
        inside = (lo is None or min_step >= lo) and (hi is None or max_step <= hi)  # type: ignore[operator]
        if (lo is not None or hi is not None) and not (inside and (steps_text is None or None not in steps)):
            keep = [i for i, s in enumerate(steps)
                    if s is not None and (lo is None or s >= lo) and (hi is None or s <= hi)]
            lines, steps, texts = [lines[i] for i in keep], [steps[i] for i in keep], [texts[i] for i in keep]
        self.same = self.same and steps is lines
        self.line_parts.append(lines)
        self.step_parts.append(steps)
        self.vals += texts

    def column(self) -> Column:
        all_lines = _joined(self.line_parts)
        return all_lines, all_lines if self.same else _joined(self.step_parts), self.vals


def rows_with(columns: list[Column], *, by_step: bool) -> tuple[Sequence[Any], list[list[str]]]:
    """The lines where every column has an entry: their steps and each column's values there,
    in line order, or in (step, line) order when `by_step`."""
    base = min(columns, key=lambda c: len(c[0]))
    lines, steps = base[0], base[1]
    if all(c[0] == lines for c in columns):
        values = [c[2] for c in columns]
    else:  # a key missing from some rows: keep the lines every key has
        common = set(lines)
        for column in columns:
            if column is not base:
                common.intersection_update(column[0])
        keep = [i for i, line in enumerate(lines) if line in common]
        lines, steps = [lines[i] for i in keep], [steps[i] for i in keep]
        values = []
        for column in columns:
            if column[0] == lines:
                values.append(column[2])
            else:
                at = dict(zip(column[0], column[2]))
                values.append([at[line] for line in lines])
    if by_step and not isinstance(steps, range) and sorted(steps) != list(steps):
        # steps logged out of order: W&B's order is (step, line)
        order = sorted(range(len(lines)), key=lambda i: (steps[i], lines[i]))
        steps = [steps[i] for i in order]
        values = [[v[i] for i in order] for v in values]
    return steps, values
