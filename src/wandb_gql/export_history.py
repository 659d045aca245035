"""History exports: one row per (run, step), streamed from `Client.history` chunks.

    with history_writer("out.csv", keys=["loss"], run_columns=["name"]) as out:
        async for run, rows in client.history("demo/vision", keys=["loss"]):
            out.write(run, rows)

Columns: the run columns (the one vocabulary of `Run.value`: name, display_name, state,
config.lr, summary.loss, ...; default name), then `_step`, then the keys. NaN and ±Infinity are
written as W&B writes them, "NaN", "Infinity", "-Infinity" (CSV and JSONL; `read_rows` turns
them back into floats); Parquet stores real floats.

CSV and JSONL write each chunk as it comes; Parquet buffers at most `ROW_GROUP` rows. Parquet
needs pyarrow (`pip install 'wandb-gql[parquet]'`), DataFrames pandas or polars (the extras of
the same names).
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence, TextIO

import orjson

from .errors import UsageError
from .models import Run

__all__ = ["HISTORY_FORMATS", "HistoryWriter", "history_writer", "format_of", "read_rows", "history_frame",
           "encode_value", "decode_value"]

HISTORY_FORMATS = ("csv", "jsonl", "parquet")
ROW_GROUP = 50_000
STEP = "_step"
_SPECIAL = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def encode_value(value: Any) -> Any:
    """Floats JSON cannot carry, as W&B's strings."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    return value


def decode_value(value: Any) -> Any:
    """W&B's strings for the floats JSON cannot carry, back into floats."""
    if isinstance(value, str):
        return _SPECIAL.get(value, value)
    return value


def format_of(path: str | Path) -> str:
    suffix = Path(path).suffix.lower().lstrip(".")
    if suffix not in HISTORY_FORMATS:
        raise UsageError(f"cannot tell the format of {str(path)!r}",
                         hint="name the output FILE.csv, FILE.jsonl or FILE.parquet")
    return suffix


def _need(module: str, extra: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise UsageError(f"{module} is not installed", hint=f"pip install 'wandb-gql[{extra}]'") from None


class HistoryWriter:
    """Writes (run, rows) chunks to a file; `close()` (or the `with` block) finishes it."""

    def __init__(self, path: str | Path, keys: Sequence[str], run_columns: Sequence[str] = ("name",), *,
                 append: bool = False) -> None:
        self.path = Path(path)
        self.format = format_of(path)
        self.keys = [k for k in keys if k != STEP]
        self.run_columns = list(run_columns)
        self.columns = [*self.run_columns, STEP, *self.keys]
        if len(set(self.columns)) != len(self.columns):
            raise UsageError(f"a column is named twice in {self.columns}", hint="rename the run column or the key")
        self.rows = 0
        self._file: TextIO | None = None
        self._csv: Any = None
        self._parquet: Any = None
        self._buffer: list[list[Any]] = []
        if self.format == "parquet":
            if append:
                raise UsageError("a Parquet file cannot be appended to", hint="resume a .csv or .jsonl export")
            self._pa = _need("pyarrow", "parquet")
            self._pq = _need("pyarrow.parquet", "parquet")
            return
        fresh = not append or not self.path.exists() or self.path.stat().st_size == 0
        self._file = open(self.path, "a" if append else "w", encoding="utf-8", newline="")
        if self.format == "csv":
            self._csv = csv.writer(self._file)
            if fresh:
                self._csv.writerow(self.columns)

    def __enter__(self) -> "HistoryWriter":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _run_values(self, run: Run) -> list[Any]:
        return [run.value(c) for c in self.run_columns]

    def write(self, run: Run, rows: Sequence[dict[str, Any]]) -> None:
        if not rows:
            return
        head = self._run_values(run)
        self.rows += len(rows)
        if self.format == "csv":
            self._csv.writerows([*(_cell(v) for v in head), row.get(STEP),
                                 *(_cell(row.get(k)) for k in self.keys)] for row in rows)
        elif self.format == "jsonl":
            assert self._file is not None
            names = self.columns
            out = io.StringIO()
            for row in rows:
                values = [*head, row.get(STEP), *(encode_value(row.get(k)) for k in self.keys)]
                out.write(orjson.dumps(dict(zip(names, values)), default=str).decode())
                out.write("\n")
            self._file.write(out.getvalue())
        else:
            self._buffer.extend([*head, row.get(STEP), *(row.get(k) for k in self.keys)] for row in rows)
            if len(self._buffer) >= ROW_GROUP:
                self._flush_parquet()

    def flush(self) -> None:
        """Everything written so far is in the file (a run's end mark may follow)."""
        if self._file is not None:
            self._file.flush()
            import os

            os.fsync(self._file.fileno())

    def _flush_parquet(self) -> None:
        """One row group. Column types are decided by the first: a column of numbers only is
        float64 (later non-numbers in it become null), anything else string (JSON for
        nested values); `_step` is int64."""
        if not self._buffer:
            return
        pa = self._pa
        columns = list(zip(*self._buffer))
        self._buffer = []
        if self._parquet is None:
            types = [pa.int64() if name == STEP else pa.float64() if all(_numeric(v) for v in values)
                     else pa.string() for name, values in zip(self.columns, columns)]
            self._parquet = self._pq.ParquetWriter(str(self.path), pa.schema(list(zip(self.columns, types))))
        schema = self._parquet.schema
        arrays = []
        for name, values in zip(self.columns, columns):
            kind = schema.field(name).type
            cells: list[Any] = list(values)
            if kind == pa.float64():
                cells = [float(v) if _numeric(v) and v is not None else None for v in values]
            elif kind == pa.string():
                cells = [None if v is None else v if isinstance(v, str) else
                         orjson.dumps(v, default=str).decode() for v in values]
            arrays.append(pa.array(cells, type=kind))
        self._parquet.write_table(pa.Table.from_arrays(arrays, schema=schema))

    def close(self) -> None:
        if self.format == "parquet":
            self._flush_parquet()
            if self._parquet is None:  # no rows at all: still a valid, empty file
                pa = self._pa
                types = [pa.int64() if c == STEP else pa.float64() if c in self.keys else pa.string()
                         for c in self.columns]
                self._parquet = self._pq.ParquetWriter(str(self.path), pa.schema(list(zip(self.columns, types))))
            self._parquet.close()
        elif self._file is not None and not self._file.closed:
            self._file.close()


def _numeric(value: Any) -> bool:
    return value is None or (isinstance(value, (int, float)) and not isinstance(value, bool))


def _cell(value: Any) -> Any:
    value = encode_value(value)
    if isinstance(value, (dict, list)):
        return orjson.dumps(value, default=str).decode()
    return "" if value is None else value


def history_writer(path: str | Path, keys: Sequence[str], run_columns: Sequence[str] = ("name",), *,
                   append: bool = False) -> HistoryWriter:
    return HistoryWriter(path, keys, run_columns, append=append)


def read_rows(path: str | Path) -> Iterator[dict[str, Any]]:
    """The rows of a CSV or JSONL history export, NaN/Infinity as floats and CSV numbers as
    numbers (an empty CSV cell: the row had no such key)."""
    fmt = format_of(path)
    with open(path, encoding="utf-8", newline="") as f:
        if fmt == "jsonl":
            for line in f:
                if line.strip():
                    yield {k: decode_value(v) for k, v in orjson.loads(line).items()}
        elif fmt == "csv":
            for row in csv.DictReader(f):
                yield {k: _number(v) for k, v in row.items() if v != ""}
        else:
            raise UsageError("read Parquet with pyarrow or pandas", hint="pyarrow.parquet.read_table(path)")


def _number(text: str) -> Any:
    if text in _SPECIAL:
        return _SPECIAL[text]
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def history_frame(chunks: Iterable[tuple[Run, Sequence[dict[str, Any]]]], keys: Sequence[str],
                  run_columns: Sequence[str] = ("name",), *, backend: str = "pandas") -> Any:
    """A pandas or polars DataFrame of (run, rows) chunks (e.g. SyncClient.history): one row per
    (run, step), NaN and ±Infinity as floats."""
    if backend not in ("pandas", "polars"):
        raise UsageError(f"unknown DataFrame backend {backend!r}", hint="pandas or polars")
    library = _need(backend, backend)
    keys = [k for k in keys if k != STEP]
    names = [*run_columns, STEP, *keys]
    columns: dict[str, list[Any]] = {n: [] for n in names}
    for run, rows in chunks:
        head = [run.value(c) for c in run_columns]
        for row in rows:
            for name, value in zip(names, [*head, row.get(STEP), *(decode_value(row.get(k)) for k in keys)]):
                columns[name].append(value)
    if backend == "polars":
        return library.DataFrame(columns, strict=False)
    return library.DataFrame(columns)
