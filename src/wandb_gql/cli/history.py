"""`wbgql history export`: the metrics of many runs into one CSV, JSONL or Parquet file.

Resuming: beside the output, `OUT.done` lists the runs whose rows are all in the file, one run
id a line, appended only after that run's rows were flushed to disk. `--resume` keeps the rows
of those runs, drops any rows of a run that was cut off (they are read again), and appends the
runs not done yet: no duplicates, no gaps. Parquet files cannot be appended to, so they do not
resume.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from ._common import STATUS, FiltersOpt, PathArg, WhereOpt, examples, new_app, note, run, split_keys

if TYPE_CHECKING:
    from ..client import Client

history_app = new_app("Export the history (metrics) of many runs.")


def done_path(out: Path) -> Path:
    return out.with_name(out.name + ".done")


@history_app.command("export", epilog=examples(
    "wbgql --local history export demo/vision --keys loss --out loss.csv",
    "wbgql history export ENTITY/PROJECT --where 'state = finished' --keys loss,val/acc --full --out h.jsonl",
    "wbgql history export ENTITY/PROJECT --keys loss --samples 100 --run-columns name,config.lr --out h.parquet",
    "wbgql history export ENTITY/PROJECT --keys loss --full --out h.csv --resume   # after an interruption"))
def export(
    path: PathArg,
    keys: Annotated[str, typer.Option("--keys", "-k", metavar="A,B,...", show_default=False,
                                      help="History keys to export, e.g. loss,val/acc.")],
    out: Annotated[Path, typer.Option("--out", "-o", metavar="FILE", show_default=False,
                                      help="Output file: .csv, .jsonl or .parquet (one row per run and step).")],
    where: WhereOpt = None,
    filters: FiltersOpt = None,
    samples: Annotated[Optional[int], typer.Option(
        "--samples", metavar="N", min=1, show_default=False,
        help="At most N rows per run, first and last kept, only rows with every key [default: 500].")] = None,
    full: Annotated[bool, typer.Option("--full", help="Every row, paged by step range.")] = False,
    run_columns: Annotated[str, typer.Option(
        "--run-columns", metavar="A,B,...", help="Run columns before _step and the keys (name,state,config.lr,...).")]
    = "name",
    concurrency: Annotated[int, typer.Option("--concurrency", "-c", metavar="N", min=1, max=64,
                                             help="Runs read at once.")] = 8,
    resume: Annotated[bool, typer.Option(
        "--resume", help="Continue an interrupted export into the same file: skip the runs already done.")] = False,
) -> None:
    """Write the history of the matching runs to FILE, one row per run and step, streaming;
    progress on stderr. FILE.done lists the runs whose rows are complete: --resume keeps those,
    drops the rows of a run that was cut off, and exports the rest (no duplicates, no gaps)."""
    from ..errors import UsageError
    from ._common import errors
    from .runs import compile_filter

    with errors():
        key_list = split_keys(keys, "--keys")
        columns = split_keys(run_columns, "--run-columns")
        if not isinstance(key_list, list) or not key_list:
            raise UsageError("--keys needs named keys", hint="e.g. --keys loss,val/acc")
        if not isinstance(columns, list) or not columns:
            raise UsageError("--run-columns needs named columns", hint="e.g. --run-columns name,state")
        if samples is not None and full:
            raise UsageError("--samples and --full exclude each other", hint="give one of them")
        if resume and "name" not in columns:
            raise UsageError("--resume needs the name column to tell runs apart", hint="add name to --run-columns")
        from ..export_history import HistoryWriter, format_of

        fmt = format_of(out)
        if resume and fmt == "parquet":
            raise UsageError("a Parquet export cannot resume", hint="export to .csv or .jsonl to resume")
        query = compile_filter(filters, where)
        fields, config_keys, summary_keys = _projection(columns)
        marks = done_path(out)
        done = _keep_done(out, marks, columns.index("name"), fmt) if resume else set()
        if not resume:
            marks.unlink(missing_ok=True)
        writer = HistoryWriter(out, key_list, columns, append=resume)

    async def work(client: "Client") -> int:
        project = path
        total = await client.count_runs(project, filters=query)
        STATUS.start("history", total - len(done) if total >= len(done) else None)
        runs_done = 0

        async def todo() -> Any:
            async for r in client.runs(project, filters=query, fields=fields, config_keys=config_keys,
                                       summary_keys=summary_keys):
                if r.name not in done:
                    yield r

        with writer, open(marks, "a", encoding="utf-8") as mark:
            async for r, rows in client.history(todo(), keys=key_list, samples=samples, full=full,
                                                concurrency=concurrency):
                if rows:
                    writer.write(r, rows)
                    STATUS.label = f"history ({writer.rows:,} rows)"
                    continue
                if fmt != "parquet":  # the run's rows are on disk before its mark
                    writer.flush()
                mark.write(f"{r.name}\n")
                mark.flush()
                runs_done += 1
                STATUS.advance()
        note(f"{runs_done:,} runs, {writer.rows:,} rows written to {out}"
             + (f" ({len(done):,} runs were already done)" if done else ""))
        return 0

    run(work)


def _projection(columns: list[str]) -> tuple[list[str], Any, Any]:
    """What runs() must fetch for the run columns."""
    config = [c.split(".", 1)[1] for c in columns if c.startswith("config.")]
    summary = [c.split(".", 1)[1] for c in columns if c.startswith("summary.")]
    fields = [c for c in columns if not c.startswith(("config.", "summary."))]
    return fields, config or None, summary or None


def _keep_done(out: Path, marks: Path, name_at: int, fmt: str) -> set[str]:
    """The runs marked done; the output rewritten to hold only their rows (a run cut off mid-way
    is dropped and read again). Rows are streamed through a temporary file, then swapped in."""
    if not out.exists():
        marks.unlink(missing_ok=True)
        return set()
    done = set(marks.read_text(encoding="utf-8").split()) if marks.exists() else set()
    keep = out.with_name(out.name + ".resume-tmp")
    with open(out, encoding="utf-8", newline="") as src, open(keep, "w", encoding="utf-8", newline="") as dst:
        if fmt == "csv":
            import csv

            reader, writer = csv.reader(src), csv.writer(dst)
            header = next(reader, None)
            if header is not None:
                writer.writerow(header)
                writer.writerows(row for row in reader if len(row) == len(header) and row[name_at] in done)
        else:
            import orjson

            for line in src:
                try:
                    row = orjson.loads(line)
                except orjson.JSONDecodeError:  # a line cut off by the interruption
                    continue
                if row.get("name") in done:
                    dst.write(line if line.endswith("\n") else line + "\n")
    os.replace(keep, out)
    return done
