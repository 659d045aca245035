"""Streaming writers: runs (or plain records) as a table, tsv, csv, json, jsonl or Parquet.

    with writer("csv", sys.stdout, ["name", "state", "summary.val/acc"]) as out:
        async for run in client.runs("demo/vision", summary_keys=["val/acc"]):
            out.write(run)

Columns are named in the one vocabulary of `models.RUN_FIELDS` (`created_at`, `config.lr`,
`summary.val/acc`, `path`, `url`); those names are the table/csv/tsv headers and the JSON keys,
where config and summary stay nested as `Run.to_dict()` has them. `config.*` / `summary.*`
stand for every key: the columns are decided from a bounded first chunk of records
(`SAMPLE`), and keys first seen later are collected in `late_keys` for the caller to report.

No writer holds every record: json/jsonl/csv/tsv write each record as it comes; a table holds
back at most its first chunk, to size its columns. Records are `Run`s or plain mappings (a
mapping's `a.b` column is its key `a.b`, else key `b` of its nested mapping `a`).

Parquet (`parquet_writer(path, columns)`, pyarrow from the `[parquet]` extra) has the csv
writer's columns and writes a row group every `ROW_GROUP` records, holding only that many rows.
Column types come from the field for run fields (tags: list<string>,
history_line_count: int64, the rest strings, times as W&B's ISO text) and, for config/summary
keys, from the values of the first row group: only numbers -> float64 (W&B's "NaN",
"Infinity", "-Infinity" strings become those floats), only booleans -> bool, anything else ->
string (strings as they are, other values as JSON text, as in csv). A later value that does
not fit its column's type is written as null and counted in `misfits`.
"""

from __future__ import annotations

import io
import math
import time
from array import array
from itertools import accumulate
import unicodedata
from collections.abc import Mapping
from typing import Any, Callable, Iterable, Sequence, TextIO

import orjson

from .models import RUN_FIELDS, Run

__all__ = ["FILE_FORMATS", "ROW_GROUP", "format_of_file", "parquet_writer",
           "FORMATS", "SAMPLE", "TABLE_COLUMNS", "ALL_COLUMNS", "Writer", "writer", "json_record",
           "dumps", "write_vertical", "column_names", "is_wildcard"]

FORMATS = ("table", "tsv", "csv", "json", "jsonl")
FILE_FORMATS = ("tsv", "csv", "json", "jsonl", "parquet")  # what a file's suffix can name
ROW_GROUP = 10_000     # records per Parquet row group: what the Parquet writer holds at most
SAMPLE = 1000          # records held back at most, to decide `*` columns
TABLE_SAMPLE = 100     # records a terminal table holds back to size its columns
TABLE_COLUMNS = ("name", "display_name", "state", "created_at", "tags")
ALL_COLUMNS = tuple(f.name for f in RUN_FIELDS) + ("path",)
_NESTED = ("config", "summary")
_FLUSH_EVERY = 0.2     # seconds: a slow stream still reaches a pipe reader promptly


def column_names() -> tuple[str, ...]:
    """Every column a run has besides `config.<key>` / `summary.<key>`."""
    return ALL_COLUMNS + ("url",)


def is_wildcard(column: str) -> bool:
    return column in ("config.*", "summary.*")


def dumps(value: Any, pretty: bool = False) -> str:
    option = orjson.OPT_NON_STR_KEYS | (orjson.OPT_INDENT_2 if pretty else 0)
    return orjson.dumps(value, option=option, default=str).decode()


# ---------------------------------------------------------------------------- reading records


def _mapping(record: Any, head: str) -> Mapping[str, Any] | None:
    if isinstance(record, Run):
        if head == "config":
            return record.config
        if head == "summary":
            return record.summary
        return None
    nested = record.get(head) if isinstance(record, Mapping) else None
    return nested if isinstance(nested, Mapping) else None


def _value(record: Any, column: str) -> Any:
    if isinstance(record, Run):
        return record.value(column)
    if column in record:
        return record[column]
    head, _, key = column.partition(".")
    nested = _mapping(record, head) if key else None
    return nested.get(key) if nested is not None else None


def json_record(record: Any, columns: Sequence[str] | None) -> dict[str, Any]:
    """The record as JSON keys: everything (`Run.to_dict()`) or just `columns`, with
    `config.k` / `summary.k` nested under config / summary as to_dict() nests them."""
    if columns is None:
        return record.to_dict() if isinstance(record, Run) else dict(record)
    out: dict[str, Any] = {}
    for column in columns:
        head, _, key = column.partition(".")
        nested = _mapping(record, head) if key else None
        if nested is None or (isinstance(record, Mapping) and column in record):
            out[column] = _value(record, column)
        elif key == "*":
            out.setdefault(head, {}).update(nested)
        else:
            part = out.setdefault(head, {})
            if key in nested:
                part[key] = nested[key]
    return out


# ---------------------------------------------------------------------------- cells


def _csv_cell(value: Any) -> str:
    """csv/tsv: strings as they are, everything else as JSON (lists, dicts, true, 0.001)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return dumps(value)


_TSV_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _tsv_cell(value: Any) -> str:
    return _csv_cell(value).translate(_TSV_ESCAPES)


_CONTROL = str.maketrans({c: " " for c in "\t\n\r\x0b\x0c"})


def _human(value: Any) -> str:
    """A value for people: short floats, tags as a list, one line always."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return ", ".join(value)
    if isinstance(value, (dict, list)):
        return dumps(value)
    return str(value).translate(_CONTROL)


def _width(text: str) -> int:
    """Terminal cells a string takes (wide East Asian characters take two, combining marks none)."""
    if text.isascii():
        return len(text)
    return sum(0 if unicodedata.combining(c) else 2 if unicodedata.east_asian_width(c) in "WF" else 1
               for c in text)


def _fit(text: str, width: int) -> str:
    """Cut to `width` cells, ending in '…' when something was cut."""
    if _width(text) <= width:
        return text
    if width <= 0:
        return ""
    if text.isascii():
        return text[:width - 1] + "…"
    out, used = [], 0
    for c in text:
        w = _width(c)
        if used + w > width - 1:
            break
        out.append(c)
        used += w
    return "".join(out) + "…"


def _pad(text: str, width: int) -> str:
    return text + " " * (width - _width(text))


def _widths(natural: list[int], minimum: list[int], total: int, gap: int) -> list[int]:
    """Column widths that fit `total` cells: the widest columns give way first, down to their
    minimum (a cap found by bisection, so narrow columns keep their full width)."""
    room = total - gap * (len(natural) - 1)
    if sum(natural) <= room:
        return natural
    lo, hi = 0, max(natural)
    while lo < hi:
        cap = (lo + hi + 1) // 2
        if sum(max(m, min(n, cap)) for n, m in zip(natural, minimum)) <= room:
            lo = cap
        else:
            hi = cap - 1
    return [max(m, min(n, lo)) for n, m in zip(natural, minimum)]


_STATE_COLORS = {"finished": "32", "running": "34", "crashed": "31", "failed": "31", "killed": "33",
                 "preempted": "33", "preempting": "33", "pending": "36"}


# ---------------------------------------------------------------------------- writers


class Writer:
    """Takes records one by one (`write`), then `close()`; usable as a context manager.
    `count` is how many records were written; `late_keys` ({'config': [...], 'summary': [...]})
    the `*` keys first seen after the columns were decided (not shown)."""

    def __init__(self, out: TextIO, columns: Sequence[str] | None) -> None:
        self.out = out
        self.columns: list[str] | None = None if columns is None else list(columns)
        self.count = 0
        self.late_keys: dict[str, list[str]] = {}
        self._flushed = time.monotonic()

    def __enter__(self) -> "Writer":
        return self

    def __exit__(self, exc_type: Any, *_rest: Any) -> None:
        if exc_type is None:
            self.close()

    def write(self, record: Any) -> None:
        self.count += 1
        self._write(record)
        if self.count % 64 == 0:
            now = time.monotonic()
            if now - self._flushed >= _FLUSH_EVERY:
                self.out.flush()
                self._flushed = now

    def write_all(self, records: Iterable[Any]) -> "Writer":
        for record in records:
            self.write(record)
        return self

    def close(self) -> None:
        self.out.flush()

    def _write(self, record: Any) -> None:
        raise NotImplementedError


class _JSONLines(Writer):
    def _write(self, record: Any) -> None:
        self.out.write(dumps(json_record(record, self.columns)) + "\n")


class _JSONArray(Writer):
    def _write(self, record: Any) -> None:
        self.out.write(("[\n" if self.count == 1 else ",\n") + dumps(json_record(record, self.columns)))

    def close(self) -> None:
        self.out.write("[]\n" if self.count == 0 else "\n]\n")
        super().close()


class _Tabular(Writer):
    """Rows of cells under a header. Holds back the first records only while it must: to
    expand `config.*`/`summary.*` into keys (up to SAMPLE records) or to size a terminal table."""

    hold = 0  # records a subclass wants before its first line

    def __init__(self, out: TextIO, columns: Sequence[str] | None, sample: int = SAMPLE) -> None:
        super().__init__(out, list(columns) if columns is not None else list(ALL_COLUMNS))
        assert self.columns is not None
        self.wild = [c.partition(".")[0] for c in self.columns if is_wildcard(c)]
        self.known: dict[str, set[str]] = {}
        self.pending: list[Any] | None = []
        self.limit = max(sample if self.wild else 0, self.hold)
        self.header: list[str] = []

    def _write(self, record: Any) -> None:
        if self.pending is None:
            if self.wild:
                self._note_late(record)
            self._row(record)
            return
        self.pending.append(record)
        if len(self.pending) >= max(self.limit, 1):
            self._start()

    def _start(self) -> None:
        pending, self.pending = self.pending or [], None
        header: list[str] = []
        for column in self.columns or []:
            if is_wildcard(column):
                head = column.partition(".")[0]
                keys = list(dict.fromkeys(k for r in pending for k in (_mapping(r, head) or ())))
                self.known[head] = set(keys)
                header += [f"{head}.{k}" for k in keys]
            else:
                header.append(column)
        self.header = list(dict.fromkeys(header))  # `config.*` next to a named `config.k`
        self._begin(pending)
        for record in pending:
            self._row(record)

    def _note_late(self, record: Any) -> None:
        for head in self.wild:
            keys = _mapping(record, head) or ()
            known = self.known[head]
            for key in keys:
                if key not in known:
                    known.add(key)
                    late = self.late_keys.setdefault(head, [])
                    if len(late) < 100:  # enough to name them; bounded whatever comes
                        late.append(key)

    def close(self) -> None:
        if self.pending is not None:
            self._start()
        super().close()

    def _begin(self, sample: list[Any]) -> None:
        raise NotImplementedError

    def _row(self, record: Any) -> None:
        raise NotImplementedError


class _CSV(_Tabular):
    def _begin(self, sample: list[Any]) -> None:
        import csv

        self.csv = csv.writer(self.out, lineterminator="\n")
        self.csv.writerow(self.header)

    def _row(self, record: Any) -> None:
        self.csv.writerow([_csv_cell(_value(record, c)) for c in self.header])


class _TSV(_Tabular):
    cell: Callable[[Any], str] = staticmethod(_tsv_cell)

    def _begin(self, sample: list[Any]) -> None:
        self.out.write("\t".join(self.header) + "\n")

    def _row(self, record: Any) -> None:
        cell = self.cell
        self.out.write("\t".join([cell(_value(record, c)) for c in self.header]) + "\n")


class _PlainTable(_TSV):
    """A table that is not going to a terminal: tab-separated, no padding, no rules, values as
    a person reads them (a pipe to grep/cut/column -t)."""

    cell = staticmethod(lambda value: _human(value).replace("\t", " "))


class _TerminalTable(_Tabular):
    """Aligned columns that fit the terminal: widths from the first rows, cells cut with '…'
    (a row is never folded onto a second line); colour only when asked for."""

    hold = TABLE_SAMPLE
    gap = 2

    def __init__(self, out: TextIO, columns: Sequence[str] | None, *, width: int, color: bool,
                 sample: int = SAMPLE) -> None:
        super().__init__(out, columns, sample)
        self.total = max(width, 20)
        self.color = color

    def _begin(self, sample: list[Any]) -> None:
        rows = [[_human(_value(r, c)) for c in self.header] for r in sample]
        natural = [max([_width(h)] + [_width(row[i]) for row in rows]) for i, h in enumerate(self.header)]
        minimum = [min(n, max(4, min(_width(h), 12))) for n, h in zip(natural, self.header)]
        if minimum:
            minimum[0] = min(natural[0], 40)  # the first column says which row it is: keep it whole
        self.widths = _widths(natural, minimum, self.total, self.gap)
        state = self.header.index("state") if "state" in self.header else -1
        self.state = state
        head = self._line(self.header)
        rule = self._line(["─" * w for w in self.widths])
        if self.color:
            head, rule = f"\x1b[1m{head}\x1b[0m", f"\x1b[2m{rule}\x1b[0m"
        self.out.write(head + "\n" + rule + "\n")

    def _line(self, cells: list[str], colors: dict[int, str] | None = None) -> str:
        parts = []
        last = len(cells) - 1
        for i, (cell, width) in enumerate(zip(cells, self.widths)):
            text = _fit(cell, width)
            text = text if i == last else _pad(text, width)
            if colors and i in colors:
                text = f"\x1b[{colors[i]}m{text}\x1b[0m"
            parts.append(text)
        line = (" " * self.gap).join(parts).rstrip()
        # More columns than fit even at their minimum: cut the line, never let it fold.
        return line if colors or _width(line) <= self.total else _fit(line, self.total)

    def _row(self, record: Any) -> None:
        cells = [_human(_value(record, c)) for c in self.header]
        colors = None
        if self.color and self.state >= 0:
            code = _STATE_COLORS.get(cells[self.state])
            colors = {self.state: code} if code else None
        if colors and _width(self._line(cells)) > self.total:
            colors = None  # a line cut at the terminal edge loses its colour, not its reset code
        self.out.write(self._line(cells, colors) + "\n")


def writer(fmt: str, out: TextIO, columns: Sequence[str] | None = None, *, terminal: bool = False,
           width: int = 80, color: bool = False, sample: int = SAMPLE) -> Writer:
    """A streaming writer for `fmt` (one of FORMATS). `columns`: the vocabulary names to show
    (None: every field for csv/tsv, everything fetched for json/jsonl, TABLE_COLUMNS for a
    table). `terminal`: a table is aligned to `width` cells (else tab-separated); `color`:
    ANSI colour in a terminal table."""
    if fmt == "jsonl":
        return _JSONLines(out, columns)
    if fmt == "json":
        return _JSONArray(out, columns)
    if fmt == "csv":
        return _CSV(out, columns, sample)
    if fmt == "tsv":
        return _TSV(out, columns, sample)
    if fmt == "table":
        columns = TABLE_COLUMNS if columns is None else columns
        if terminal:
            return _TerminalTable(out, columns, width=width, color=color, sample=sample)
        return _PlainTable(out, columns, sample)
    raise ValueError(f"unknown format {fmt!r}: choose one of {', '.join(FORMATS)}")


def format_of_file(path: Any) -> str | None:
    """The format a file's suffix names (one of FILE_FORMATS), or None."""
    from pathlib import Path

    suffix = Path(path).suffix.lower().lstrip(".")
    return suffix if suffix in FILE_FORMATS else None


# ---------------------------------------------------------------------------- Parquet

_KINDS = {f.name: f.kind for f in RUN_FIELDS}
_SPECIAL_FLOATS = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def _is_number(value: Any) -> bool:
    return (value.__class__ in (int, float)) or (isinstance(value, str) and value in _SPECIAL_FLOATS)


def _parquet_kind(column: str, values: Sequence[Any]) -> str:
    """float | bool | int | tags | text: by the field, or by a config/summary key's values."""
    kind = _KINDS.get(column)
    if kind in ("tags", "int"):
        return kind
    head, dot, _ = column.partition(".")
    if kind is not None or not dot or head not in _NESTED:
        return "text"
    present = [v for v in values if v is not None]
    if present and all(v.__class__ is bool for v in present):
        return "bool"
    if present and all(_is_number(v) for v in present):
        return "float"
    return "text"


_MISFIT = object()


def _to_float(value: Any) -> Any:
    if value.__class__ in (int, float):
        return float(value)
    if isinstance(value, str) and value in _SPECIAL_FLOATS:
        return _SPECIAL_FLOATS[value]
    return _MISFIT


def _to_text(value: Any) -> Any:
    return value if isinstance(value, str) else dumps(value)


def _to_tags(value: Any) -> Any:
    return value if isinstance(value, list) and all(isinstance(t, str) for t in value) else _MISFIT


_CONVERT: dict[str, Callable[[Any], Any]] = {
    "float": _to_float,
    "bool": lambda v: v if v.__class__ is bool else _MISFIT,
    "int": lambda v: v if v.__class__ is int else _MISFIT,
    "tags": _to_tags,
    "text": _to_text,
}


def _arrow_array(pa: Any, kind: str, cells: list[Any], arrow_type: Any) -> Any:
    """One column as an Arrow array, built from its buffers (stdlib `array`: pyarrow does not
    need numpy): `pa.array(list)` would import pandas, when installed, to ask whether the list
    is array-like: +50 MB for every export."""
    n = len(cells)
    validity = None if None not in cells else pa.py_buffer(_bitmap([c is not None for c in cells]))
    if kind == "float":
        return pa.Array.from_buffers(arrow_type, n, [validity, pa.py_buffer(
            array("d", [0.0 if c is None else c for c in cells]))])
    if kind == "int":
        return pa.Array.from_buffers(arrow_type, n, [validity, pa.py_buffer(
            array("q", [0 if c is None else c for c in cells]))])
    if kind == "bool":
        return pa.Array.from_buffers(arrow_type, n, [validity, pa.py_buffer(_bitmap([c is True for c in cells]))])
    if kind == "tags":
        child = _arrow_strings(pa, [t for c in cells if c is not None for t in c], arrow_type.value_type)
        offsets = _offsets([0 if c is None else len(c) for c in cells])
        return pa.Array.from_buffers(arrow_type, n, [validity, pa.py_buffer(offsets)], children=[child])
    return _arrow_strings(pa, cells, arrow_type, validity)


def _bitmap(flags: list[bool]) -> bytes:
    """Arrow's bit-packed booleans: flag i is bit i % 8 of byte i // 8."""
    if not flags:
        return b""
    bits = "".join(["1" if f else "0" for f in reversed(flags)])
    return int(bits, 2).to_bytes((len(flags) + 7) // 8, "little")


def _offsets(lengths: list[int]) -> array:
    offsets = array("i", [0])
    offsets.extend(accumulate(lengths))
    return offsets


def _arrow_strings(pa: Any, cells: list[Any], arrow_type: Any, validity: Any = None) -> Any:
    encoded = [b"" if c is None else c.encode() for c in cells]
    lengths = [len(e) for e in encoded]
    if sum(lengths) >= 2 ** 31:
        raise ValueError("more than 2 GB of text in one Parquet row group: write fewer runs per group")
    return pa.Array.from_buffers(arrow_type, len(cells), [validity, pa.py_buffer(_offsets(lengths)),
                                                          pa.py_buffer(b"".join(encoded))])


class _Parquet(_Tabular):
    """Rows buffered up to `row_group`, then written as one row group; the first decides the
    column types (see the module docstring)."""

    def __init__(self, path: Any, columns: Sequence[str] | None, sample: int = SAMPLE,
                 row_group: int = ROW_GROUP) -> None:
        from .export_history import _need

        self._pa = _need("pyarrow", "parquet")
        self._pq = _need("pyarrow.parquet", "parquet")
        # The base class flushes a text stream now and then; a Parquet file has none.
        super().__init__(io.StringIO(), columns, sample)
        self.path = path
        self.row_group = max(1, row_group)
        self.misfits: dict[str, int] = {}
        self._rows: list[list[Any]] = []
        self._file: Any = None
        self._kinds: list[str] = []

    def _begin(self, sample: list[Any]) -> None:
        pass

    def _row(self, record: Any) -> None:
        self._rows.append([_value(record, c) for c in self.header])
        if len(self._rows) >= self.row_group:
            self._flush()

    def _flush(self) -> None:
        pa = self._pa
        rows, self._rows = self._rows, []
        columns = list(zip(*rows)) if rows else [() for _ in self.header]
        if self._file is None:
            self._kinds = [_parquet_kind(name, values) for name, values in zip(self.header, columns)]
            types = {"float": pa.float64(), "bool": pa.bool_(), "int": pa.int64(), "tags": pa.list_(pa.string()),
                     "text": pa.string()}
            schema = pa.schema([(name, types[kind]) for name, kind in zip(self.header, self._kinds)])
            self._file = self._pq.ParquetWriter(str(self.path), schema)
        if not rows:
            return
        schema = self._file.schema
        arrays = []
        for name, kind, values, field in zip(self.header, self._kinds, columns, schema):
            convert = _CONVERT[kind]
            cells = [None if v is None else convert(v) for v in values]
            if any(c is _MISFIT for c in cells):
                self.misfits[name] = self.misfits.get(name, 0) + sum(c is _MISFIT for c in cells)
                cells = [None if c is _MISFIT else c for c in cells]
            arrays.append(_arrow_array(pa, kind, cells, field.type))
        self._file.write_table(pa.Table.from_arrays(arrays, schema=schema))

    def close(self) -> None:
        if self.pending is not None:
            self._start()
        if self._rows or self._file is None:  # no records at all: still a valid file with the columns
            self._flush()
        self._file.close()


def parquet_writer(path: Any, columns: Sequence[str] | None = None, *, sample: int = SAMPLE,
                   row_group: int = ROW_GROUP) -> Writer:
    """A streaming Parquet writer to `path` (needs pyarrow: the `[parquet]` extra); `columns` as
    for csv (None: every field). `.misfits` counts, per column, values that did not fit its type."""
    return _Parquet(path, columns, sample, row_group)


def write_vertical(record: Any, columns: Sequence[str], out: TextIO, *, terminal: bool = False,
                   width: int = 80, color: bool = False) -> None:
    """One record as `key  value` lines (`runs get`): aligned and cut to `width` on a terminal,
    `key<TAB>value` otherwise. `config.*`/`summary.*` expand to every key the record has."""
    pairs: list[tuple[str, str]] = []
    for column in columns:
        if is_wildcard(column):
            head = column.partition(".")[0]
            pairs += [(f"{head}.{k}", _human(v)) for k, v in (_mapping(record, head) or {}).items()]
        else:
            pairs.append((column, _human(_value(record, column))))
    pairs = list(dict.fromkeys(pairs))
    if not terminal:
        out.write("".join(f"{k}\t{v}\n" for k, v in pairs))
        return
    keys = min(max((_width(k) for k, _ in pairs), default=0), max(width // 2, 8))
    room = max(width - keys - 2, 8)
    for key, value in pairs:
        label = _pad(_fit(key, keys), keys)
        if color:
            label = f"\x1b[1m{label}\x1b[0m"
        out.write(f"{label}  {_fit(value, room)}".rstrip() + "\n")
