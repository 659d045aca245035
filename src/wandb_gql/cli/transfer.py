"""`wbgql runs export` and `wbgql runs import`: copy runs from one server (or project) to another.

They are separate commands, so each talks to the server its global options name: export from
W&B, import into `--local` (or another `--base-url`). The library side is `wandb_gql.transfer`.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ._common import (STATUS, FiltersOpt, Format, IdsFromOpt, IdsOpt, PathArg, WhereOpt, dumps, errors, examples,
                      note, out_format, read_ids, run, write)
from .runs import compile_filter, runs_app

if TYPE_CHECKING:
    from ..client import Client
    from ..transfer import ImportResult

ConcurrencyOpt = Annotated[int, typer.Option("--concurrency", "-c", metavar="N", min=1, max=64,
                                             help="Runs read or written at once.")]

_NOT_COPIED = ("created_at, heartbeat and update times, the user (the copies belong to the importing key's "
               "user), files, artifacts, system metrics and console logs")


@runs_app.command("export", epilog=examples(
    "wbgql --local runs export demo/vision --where 'state = crashed' --with-history --out crashed.jsonl",
    "wbgql runs export ENTITY/PROJECT --id abc123 --id def456 --out two.jsonl",
    "wbgql runs export ENTITY/PROJECT --with-history --out runs.jsonl --resume   # after an interruption",
    "wbgql runs export ENTITY/PROJECT --out - | head -1"))
def export_runs(
    path: PathArg,
    out: Annotated[str, typer.Option("--out", "-o", metavar="FILE.jsonl", show_default=False,
                                     help="Where to write the runs, one JSON object a line ('-' for stdout).")],
    where: WhereOpt = None,
    filters: FiltersOpt = None,
    ids: IdsOpt = None,
    ids_from: IdsFromOpt = None,
    with_history: Annotated[bool, typer.Option(
        "--with-history", help="Every history row of each run too (every key; slower, bigger).")] = False,
    concurrency: ConcurrencyOpt = 8,
    resume: Annotated[bool, typer.Option(
        "--resume", help="Continue an interrupted export into the same FILE: skip the runs already in it.")] = False,
) -> None:
    """Write the matching runs (all of the project's live runs when no filter is given) to FILE,
    one run a line in the one vocabulary (the keys of `runs list -f json`: name, display_name,
    state, tags, group, job_type, sweep, notes, config and summary whole, created_at, user, ...),
    plus `history` with --with-history (NaN and Infinity as W&B's strings "NaN", "Infinity").
    Runs stream: memory stays flat however many there are. Progress (runs done/total, rows) on
    stderr. `wbgql runs import FILE DEST` writes them into another project or server."""
    from ..errors import UsageError

    with errors():
        query = compile_filter(filters, where)
        pinned = read_ids(ids, ids_from)
        to_stdout = out == "-"
        if resume and to_stdout:
            raise UsageError("--resume needs a FILE to continue, not stdout", hint="give --out FILE.jsonl")
        target = Path(out)
        if not to_stdout and target.is_dir():
            raise UsageError(f"--out {out} is a directory", hint="give a file, e.g. --out runs.jsonl")
        if not to_stdout and not resume and target.exists() and target.stat().st_size:
            raise UsageError(f"{out} exists already", hint="pass --resume to continue that export, or remove it")
        from ..transfer import keep_complete_lines

        done = keep_complete_lines(target) if resume else set()

    async def work(client: "Client") -> int:
        from ..transfer import dump_line, export_runs as export

        if pinned is not None:
            total = None if query else len(pinned)
        else:
            total = max(await client.count_runs(path, filters=query) - len(done), 0)
        STATUS.start("export", total)
        runs = rows = 0
        sink = sys.stdout.buffer if to_stdout else open(target, "ab")
        try:
            async for record in export(client, path, filters=query, ids=pinned, with_history=with_history,
                                       concurrency=concurrency, skip=done):
                if to_stdout:
                    STATUS.hide()
                sink.write(dump_line(record))
                if not to_stdout:
                    sink.flush()  # a run on disk is a run a resume skips
                runs += 1
                rows += len(record.get("history") or ())
                if with_history:
                    STATUS.label = f"export ({rows:,} rows)"
                STATUS.advance()
        except BaseException:  # Ctrl-C, or an error that ends the export: say how to go on
            if not to_stdout:
                STATUS.stop()
                note(f"stopped after {runs:,} runs; the same command with --resume continues into {out}")
            raise
        finally:
            if to_stdout:
                sink.flush()
            else:
                sink.close()
        where_to = "stdout" if to_stdout else out
        note(f"{runs:,} runs" + (f", {rows:,} history rows" if with_history else "") + f" written to {where_to}"
             + (f" ({len(done):,} runs were already there)" if done else ""))
        return 0

    run(work)


@runs_app.command("import", epilog=examples(
    "wbgql runs import runs.jsonl ENTITY/PROJECT-copy",
    "wbgql --local runs import runs.jsonl demo/rehearsal --json",
    "wbgql --local runs import runs.jsonl demo/rehearsal --resume   # after Ctrl-C or kill -9"),
    help="Write the runs of FILE (as `wbgql runs export` writes it) into DEST_PATH through the write path: "
         "each run is created under its id, or under a new id when DEST holds that id already (the mapping "
         "old -> new is reported); its history is logged, its summary set to exactly the source's, and its "
         "state copied (finished and failed runs are finished with exit code 0 or 1; crashed, killed and "
         f"running are set as they are). Not copied: {_NOT_COPIED}. FILE is checked whole before anything is "
         "sent. Progress is kept in FILE.import-DEST.jsonl: after an interruption, --resume skips the runs "
         "done and continues the others (no run twice, no history row twice or missing); a complete import "
         "removes it, so importing FILE again makes new copies.")
def import_runs(
    file: Annotated[Path, typer.Argument(metavar="FILE.jsonl", show_default=False,
                                         help="An export file: one run a line.")],
    dest: Annotated[str, typer.Argument(metavar="DEST_PATH", show_default=False,
                                        help="The project to write into: ENTITY/PROJECT (made if missing), "
                                             "PROJECT or a W&B URL.")],
    resume: Annotated[bool, typer.Option(
        "--resume", help="Continue an interrupted import (from FILE.import-DEST.jsonl): skip the runs done, "
                         "finish the ones started, retry the ones that failed.")] = False,
    concurrency: ConcurrencyOpt = 8,
    as_json: Annotated[bool, typer.Option(
        "--json", help="Print a JSON summary on stdout (imported, renamed {old: new}, failed {old: reason}).")]
    = False,
) -> None:
    from ..transfer import prepare_import, sidecar_path

    with errors():
        total_runs, total_rows = prepare_import(file, dest, resume=resume)
    sidecar = sidecar_path(file, dest)
    as_json = as_json or out_format(None) == Format.json

    async def work(client: "Client") -> int:
        from ..transfer import import_runs as import_

        rows = 0

        def started(runs: int, _rows: int) -> None:
            STATUS.start("import", runs)

        def one_done(old: str, new: str, n: int) -> None:
            nonlocal rows
            rows += n
            STATUS.label = f"import ({rows:,}/{total_rows:,} rows)" if total_rows else "import"
            STATUS.advance()

        try:
            result = await import_(client, file, dest, resume=resume, concurrency=concurrency,
                                   on_start=started, on_run=one_done, checked=(total_runs, total_rows))
        except BaseException:  # Ctrl-C, or an error that stops every run (a rejected key)
            STATUS.stop()
            if sidecar.exists():
                note(f"interrupted: progress is in {sidecar}")
                note(f"resume: wbgql runs import {file} {dest} --resume")
            raise
        STATUS.stop()
        _report(result, as_json, f"wbgql runs import {file} {dest} --resume")
        return 0 if result.ok else 1

    run(work)


def _report(result: "ImportResult", as_json: bool, again: str) -> None:
    if as_json:
        write(dumps(result.to_dict(), pretty=True) + "\n")
    done = f"{len(result.imported):,} runs ({result.rows:,} history rows) imported into {result.dest}"
    if result.already_done:
        done += f"; {result.already_done:,} were done before"
    note(done)
    if result.renamed:
        note(f"{len(result.renamed):,} runs got new ids (DEST held theirs): "
             + ", ".join(f"{old} -> {new}" for old, new in sorted(result.renamed.items())[:20])
             + (", ..." if len(result.renamed) > 20 else "") + ("" if as_json else " (--json lists them all)"))
    for old, reason in list(result.failed.items())[:20]:
        note(f"failed: {old}: {reason}")
    if result.failed:
        note(f"{len(result.failed):,} runs failed; this tries them again: {again}")

