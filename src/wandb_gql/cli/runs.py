"""`wbgql runs list|count|get|explain|update|delete|restore`.

A thin skin over `Client`: parse and check the input (filters compile here, before anything is
sent), run one coroutine, write data to stdout and everything else (plan, warnings, progress,
errors) to stderr. Heavy modules (the client, orjson, rich) are imported inside the commands.
"""

from __future__ import annotations

import contextlib
import sys
from typing import Any, Awaitable, Callable, Iterator, List, Optional

import typer

from . import options
from .options import Format

runs_app = typer.Typer(help="List, count, inspect, update, delete and restore runs.", no_args_is_help=True)

# Options shared by several commands (typer reads them as defaults; they hold no state).
_PATH_HELP = "ENTITY/PROJECT, or PROJECT with --entity / $WANDB_ENTITY / the key's default entity."
_FILTERS = typer.Option(None, "--filters", metavar="JSON",
                        help="W&B filter JSON, passed through (checked first). Not with --where.")
_WHERE = typer.Option(None, "--where", "-w", metavar="EXPR",
                      help="Readable filter, e.g. 'state in (crashed, failed) and created_at < 30d ago'.")
_FORMAT = typer.Option(None, "--format", "-f", help="Output format (overrides the global --format).")
_YES = typer.Option(False, "--yes", "-y", help="Do it without asking.")
_DRY = typer.Option(False, "--dry-run", help="Show the plan and change nothing.")
_IDS = typer.Option(None, "--id", metavar="RUN_ID", help="A run id (repeatable).")

# The columns of a run in csv, in to_dict() order (config/summary keys follow as config.<k>, summary.<k>).
WIRE_COLUMNS = ["id", "name", "display_name", "state", "tags", "group", "job_type", "sweep", "notes", "description",
                "created_at", "heartbeat_at", "updated_at", "history_line_count", "user", "path"]
TABLE_COLUMNS = ["name", "display_name", "state", "created_at", "tags"]


# ---------------------------------------------------------------------------- plumbing


def _fmt(override: Optional[Format]) -> Format:
    return override or options.GLOBAL.get("format") or Format.table


@contextlib.contextmanager
def _errors() -> Iterator[None]:
    """The library's errors as one line (+ caret for filters, + hint) and the right exit code."""
    from ..errors import FilterError, WandbGQLError

    try:
        yield
    except FilterError as e:
        sys.stderr.write(f"error: {e.message}\n")
        caret = e.caret()
        if caret:
            sys.stderr.write(caret + "\n")
        if e.hint:
            sys.stderr.write(f"hint: {e.hint}\n")
        raise SystemExit(e.exit_code) from None
    except WandbGQLError as e:
        sys.stderr.write(f"error: {e.message}\n")
        if e.hint:
            sys.stderr.write(f"hint: {e.hint}\n")
        raise SystemExit(e.exit_code) from None


def _run(work: Callable[[Any], Awaitable[Optional[int]]]) -> None:
    """Run `work(client)` against the configured (or --local) server; exit with what it returns."""
    import asyncio

    from ..client import Client

    async def main(kwargs: dict[str, Any]) -> Optional[int]:
        async with Client(**kwargs) as client:
            return await work(client)

    with options.connection() as kwargs:
        code = asyncio.run(main(kwargs))
    if code:
        raise SystemExit(code)


def _filter(filters: Optional[str], where: Optional[str], *, destructive: bool = False,
            all_runs: bool = False) -> dict[str, Any]:
    """Compile/check the filter before anything is sent; print lint warnings on stderr."""
    from ..errors import UsageError
    from ..filters import lint, resolve_filters

    query = resolve_filters(filters, where)
    if query or not destructive:
        warnings = lint(query, destructive=destructive and not all_runs, expression=where)
        for warning in warnings:
            sys.stderr.write(f"warning: {warning}\n")
        if destructive and not all_runs:
            matches_all = set(warnings) - set(lint(query, expression=where))
            if matches_all:
                raise UsageError("refusing a destructive command on a filter that matches every run",
                                 hint="narrow the filter, or pass --all if every run is what you mean")
    return query


def _keys(text: Optional[str]) -> Any:
    """'a,b' -> ['a', 'b']; '*' -> True (every key); None -> None (none at all)."""
    if text is None:
        return None
    keys = [k.strip() for k in text.split(",") if k.strip()]
    if keys == ["*"]:
        return True
    if "*" in keys:
        from ..errors import UsageError

        raise UsageError("'*' (every key) cannot be mixed with named keys")
    return keys


def _dumps(value: Any, pretty: bool = False) -> str:
    import orjson

    option = orjson.OPT_NON_STR_KEYS | (orjson.OPT_INDENT_2 if pretty else 0)
    return orjson.dumps(value, option=option, default=str).decode()


def _cell(value: Any) -> str:
    """A value as text in csv: strings as they are, everything else as JSON."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return _dumps(value)


def _human(value: Any) -> str:
    """A value as text in a table."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return ", ".join(value)
    if isinstance(value, (dict, list)):
        return _dumps(value)
    return str(value)


def _console(stderr: bool = False) -> Any:
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    terminal = stream.isatty()
    # Not a terminal (a pipe, a file): no colour, and no width limit so nothing is cut off.
    return Console(file=stream, width=None if terminal else 100_000, no_color=not terminal,
                   highlight=False, soft_wrap=False)


def _table(*columns: str) -> Any:
    from rich import box
    from rich.table import Table

    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    for column in columns:
        table.add_column(column, overflow="fold")
    return table


@contextlib.contextmanager
def _progress(description: str, total: Optional[int] = None) -> Iterator[Callable[[int], None]]:
    """A transient progress line on stderr when stderr is a terminal; a no-op otherwise."""
    if not sys.stderr.isatty():
        yield lambda n=1: None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    columns = [SpinnerColumn(), TextColumn("{task.description}")]
    columns += [BarColumn(), MofNCompleteColumn()] if total else [TextColumn("{task.completed}")]
    # redirect_stdout=False: rich would otherwise route stdout writes (the data) to its console,
    # i.e. to stderr, whenever stderr is a terminal and stdout is not.
    with Progress(*columns, TimeElapsedColumn(), console=_console(stderr=True), transient=True,
                  redirect_stdout=False, redirect_stderr=False) as bar:
        task = bar.add_task(description, total=total)
        yield lambda n=1: bar.advance(task, n)


def _write(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


# ---------------------------------------------------------------------------- run output


class _RunWriter:
    """Writes runs as they arrive (json, jsonl, csv) or at the end (table, and csv with '*' keys)."""

    def __init__(self, fmt: Format, config_keys: Any, summary_keys: Any) -> None:
        self.fmt = fmt
        self.config_keys = config_keys
        self.summary_keys = summary_keys
        self.buffer: list[Any] = []
        self.count = 0
        self.csv: Any = None
        self.streaming = fmt in (Format.json, Format.jsonl) or (
            fmt == Format.csv and config_keys is not True and summary_keys is not True)

    def _columns(self, runs: list[Any]) -> tuple[list[str], list[str]]:
        def keys(asked: Any, attr: str) -> list[str]:
            if asked is True:  # every key: the union over the runs, in first-seen order
                return list(dict.fromkeys(k for run in runs for k in getattr(run, attr)))
            return list(asked or [])

        return keys(self.config_keys, "config"), keys(self.summary_keys, "summary")

    def add(self, run: Any) -> None:
        self.count += 1
        if not self.streaming:
            self.buffer.append(run)
        elif self.fmt == Format.jsonl:
            _write(_dumps(run.to_dict()) + "\n")
        elif self.fmt == Format.json:
            _write(("[\n" if self.count == 1 else ",\n") + _dumps(run.to_dict()))
        else:
            self._csv_row(run)

    def _csv_row(self, run: Any) -> None:
        if self.csv is None:
            self._csv_start([])
        wire = run.to_dict()
        row = [_cell(wire.get(c)) for c in WIRE_COLUMNS]
        row += [_cell(run.config.get(k)) for k in self.cols[0]]
        row += [_cell(run.summary.get(k)) for k in self.cols[1]]
        self.csv.writerow(row)
        sys.stdout.flush()

    def _csv_start(self, runs: list[Any]) -> None:
        import csv

        self.cols = self._columns(runs)
        self.csv = csv.writer(sys.stdout, lineterminator="\n")
        self.csv.writerow(WIRE_COLUMNS + [f"config.{k}" for k in self.cols[0]]
                          + [f"summary.{k}" for k in self.cols[1]])

    def close(self) -> None:
        if self.fmt == Format.json:
            _write("[]\n" if self.count == 0 else "\n]\n")
        elif self.fmt == Format.csv:
            if self.csv is None:
                self._csv_start(self.buffer)
            for run in self.buffer:
                self._csv_row(run)
            sys.stdout.flush()
        elif self.fmt == Format.table:
            config, summary = self._columns(self.buffer)
            table = _table(*TABLE_COLUMNS, *[f"config.{k}" for k in config], *[f"summary.{k}" for k in summary])
            for run in self.buffer:
                wire = run.to_dict()
                table.add_row(*[_human(wire.get(c)) for c in TABLE_COLUMNS],
                              *[_human(run.config.get(k)) for k in config],
                              *[_human(run.summary.get(k)) for k in summary])
            _console().print(table)


# ---------------------------------------------------------------------------- reading


@runs_app.command("list")
def list_runs(
    path: str = typer.Argument(..., metavar="PATH", help=_PATH_HELP),
    filters: Optional[str] = _FILTERS,
    where: Optional[str] = _WHERE,
    order: str = typer.Option("+created_at", "--order", help="Sort key, '+' ascending or '-' descending."),
    config_keys: Optional[str] = typer.Option(None, "--config-keys", metavar="A,B",
                                              help="Config keys to fetch and show ('*' for all)."),
    summary_keys: Optional[str] = typer.Option(None, "--summary-keys", metavar="A,B",
                                               help="Summary keys to fetch and show ('*' for all)."),
    limit: Optional[int] = typer.Option(None, "--limit", "-n", min=0, help="At most this many runs."),
    per_page: int = typer.Option(1000, "--per-page", min=1, max=1000, help="Runs per request."),
    fmt: Optional[Format] = _FORMAT,
) -> None:
    """List runs: a table, or JSON / JSON lines / CSV streamed as pages arrive."""
    with _errors():
        query = _filter(filters, where)
        config, summary = _keys(config_keys), _keys(summary_keys)
        writer = _RunWriter(_fmt(fmt), config, summary)

        async def work(client: Any) -> None:
            with _progress("fetching runs", total=limit) as tick:
                async for run in client.runs(path, filters=query, order=order, config_keys=config,
                                             summary_keys=summary, per_page=per_page, limit=limit):
                    writer.add(run)
                    tick(1)
            writer.close()

        _run(work)


@runs_app.command("count")
def count_runs(
    path: str = typer.Argument(..., metavar="PATH", help=_PATH_HELP),
    filters: Optional[str] = _FILTERS,
    where: Optional[str] = _WHERE,
    fmt: Optional[Format] = _FORMAT,
) -> None:
    """How many runs match (counted by the server)."""
    with _errors():
        query = _filter(filters, where)
        out = _fmt(fmt)

        async def work(client: Any) -> None:
            n = await client.count_runs(path, filters=query)
            if out in (Format.json, Format.jsonl):
                _write(_dumps({"count": n}) + "\n")
            elif out == Format.csv:
                _write(f"count\n{n}\n")
            else:
                _write(f"{n}\n")

        _run(work)


@runs_app.command("get")
def get_run(
    path: str = typer.Argument(..., metavar="PATH/RUN_ID", help="ENTITY/PROJECT/RUN_ID (the id, not the display name)."),
    fmt: Optional[Format] = _FORMAT,
) -> None:
    """One run, everything about it."""
    with _errors():
        out = _fmt(fmt)

        async def work(client: Any) -> None:
            run = await client.run(path)
            wire = run.to_dict()
            if out == Format.json:
                _write(_dumps(wire, pretty=True) + "\n")
            elif out == Format.jsonl:
                _write(_dumps(wire) + "\n")
            elif out == Format.csv:
                writer = _RunWriter(Format.csv, True, True)
                writer.add(run)
                writer.close()
            else:
                table = _table("key", "value")
                for key, value in wire.items():
                    if key not in ("config", "summary", "system_metrics"):
                        table.add_row(key, _human(value))
                table.add_row("url", run.url)
                for prefix, values in (("config", run.config), ("summary", run.summary),
                                       ("systemMetrics", run.system_metrics)):
                    for key, value in values.items():
                        table.add_row(f"{prefix}.{key}", _human(value))
                _console().print(table)

        _run(work)


@runs_app.command("explain")
def explain(
    path: str = typer.Argument(..., metavar="PATH", help=_PATH_HELP),
    filters: Optional[str] = _FILTERS,
    where: Optional[str] = _WHERE,
    destructive: bool = typer.Option(False, "--destructive", help="Also warn as a delete would (matches every run)."),
    fmt: Optional[Format] = _FORMAT,
) -> None:
    """Show the filter JSON that will be sent, its lint warnings, and how many runs it matches."""
    from ..filters import lint, resolve_filters

    with _errors():
        query = resolve_filters(filters, where)
        warnings = lint(query, destructive=destructive, expression=where)
        out = _fmt(fmt)

        async def work(client: Any) -> None:
            from ..errors import WandbGQLError

            if out == Format.table:  # what will be sent and its traps first, even if the count fails
                lines = ["filters:", _dumps(query, pretty=True), "warnings:"]
                lines += [f"  - {w}" for w in warnings] or ["  (none)"]
                _write("\n".join(lines) + "\n")
            try:
                n = await client.count_runs(path, filters=query)
            except WandbGQLError:
                if out != Format.table:
                    sys.stderr.write("".join(f"warning: {w}\n" for w in warnings))
                raise
            if out == Format.table:
                _write(f"runCount: {n}\n")
            elif out == Format.csv:
                import csv

                writer = csv.writer(sys.stdout, lineterminator="\n")
                writer.writerow(["filters", "warnings", "runCount"])
                writer.writerow([_dumps(query), _dumps(warnings), n])
            else:
                report = {"filters": query, "warnings": warnings, "runCount": n}
                _write(_dumps(report, pretty=out == Format.json) + "\n")

        _run(work)


# ---------------------------------------------------------------------------- writing


def _confirm(question: str, yes: bool) -> None:
    """Ask on stderr (stdout stays data only); no answer or 'no' refuses with exit 3."""
    if yes:
        return
    sys.stderr.write(f"{question} [y/N]: ")
    sys.stderr.flush()
    answer = sys.stdin.readline()
    if not answer or not sys.stdin.isatty():
        sys.stderr.write("\n")  # the answer was not echoed by a terminal: end the prompt's line
    if not answer:
        options.fail("no answer (stdin closed): nothing changed; pass --yes to confirm non-interactively", 3)
    if answer.strip().lower() not in ("y", "yes"):
        options.fail("not confirmed: nothing changed", 3)


def _plan(verb: str, path: str, ids: list[str], how: str, details: list[str]) -> None:
    shown = ", ".join(ids[:10]) + (f", ... (+{len(ids) - 10} more)" if len(ids) > 10 else "")
    lines = [f"plan: {verb} {len(ids)} run(s) in {path} ({how})", *[f"  {d}" for d in details],
             f"  runs: {shown}"]
    sys.stderr.write("\n".join(lines) + "\n")


def _outcomes(results: list[Any], fmt: Format, verb: str) -> int:
    rows = [{"runId": o.run_id, "status": o.status, "error": o.error} for o in results]
    if fmt == Format.json:
        _write(_dumps(rows, pretty=True) + "\n")
    elif fmt == Format.jsonl:
        _write("".join(_dumps(r) + "\n" for r in rows))
    elif fmt == Format.csv:
        import csv

        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(["runId", "status", "error"])
        writer.writerows([r["runId"], r["status"], r["error"] or ""] for r in rows)
        sys.stdout.flush()
    elif rows:
        table = _table("run", "status", "error")
        for r in rows:
            table.add_row(r["runId"], r["status"], r["error"] or "")
        _console().print(table)
    tally: dict[str, int] = {}
    for o in results:
        tally[o.status] = tally.get(o.status, 0) + 1
    summary = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in tally.items()) or "nothing"
    sys.stderr.write(f"{verb}: {summary}\n")
    return 0 if all(o.ok for o in results) else 1


def _empty(fmt: Format, message: str) -> None:
    sys.stderr.write(message + "\n")
    if fmt == Format.json:
        _write("[]\n")
    elif fmt == Format.csv:
        _write("runId,status,error\n")


async def _targets(client: Any, path: str, ids: Optional[List[str]],
                   query: dict[str, Any]) -> tuple[str, list[str], str]:
    """(ENTITY/PROJECT, the run ids to act on, how they were chosen): explicit ids, or the
    filter resolved to ids now, so the mutation acts on exactly what the plan showed."""
    entity, project = await client.project_path(path)
    full = f"{entity}/{project}"
    if ids:
        return full, list(dict.fromkeys(ids)), "given ids"
    found: list[str] = []
    with _progress("resolving the filter to run ids") as tick:
        async for run in client.runs(full, filters=query, fields=()):
            found.append(run.name)
            tick(1)
    how = f"filter {_dumps(query)}" if query else "--all: every run"
    return full, found, how


def _selection(ids: Optional[List[str]], filters: Optional[str], where: Optional[str], all_runs: bool,
               verb: str) -> dict[str, Any]:
    from ..errors import UsageError

    if ids and (filters is not None or where is not None or all_runs):
        raise UsageError(f"give either --id or a filter (--where/--filters/--all) to {verb}, not both")
    if not ids and filters is None and where is None and not all_runs:
        raise UsageError(f"refusing to {verb} without --id, --where or --filters",
                         hint="pass --all if every run of the project is what you mean")
    return {} if ids else _filter(filters, where, destructive=True, all_runs=all_runs)


def _assignments(pairs: Optional[List[str]], option: str) -> Any:
    """--config k=v (repeatable): v is parsed as JSON when it is JSON, else kept as a string."""
    from ..client import UNSET
    from ..errors import UsageError

    if not pairs:
        return UNSET
    import orjson

    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"{option} {pair!r}: expected KEY=VALUE (VALUE as JSON, e.g. lr=0.01 or tag='\"x\"')")
        try:
            out[key.strip()] = orjson.loads(raw)
        except orjson.JSONDecodeError:
            out[key.strip()] = raw
    return out


@runs_app.command("update")
def update_runs(
    path: str = typer.Argument(..., metavar="PATH", help=_PATH_HELP),
    ids: Optional[List[str]] = _IDS,
    filters: Optional[str] = _FILTERS,
    where: Optional[str] = _WHERE,
    all_runs: bool = typer.Option(False, "--all", help="Every run of the project (when no filter or id is given)."),
    name: Optional[str] = typer.Option(None, "--name", help="New display name."),
    notes: Optional[str] = typer.Option(None, "--notes", help="New notes."),
    group: Optional[str] = typer.Option(None, "--group", help="New group."),
    job_type: Optional[str] = typer.Option(None, "--job-type", help="New job type."),
    add_tags: Optional[List[str]] = typer.Option(None, "--add-tag", metavar="TAG", help="Add a tag (repeatable)."),
    remove_tags: Optional[List[str]] = typer.Option(None, "--remove-tag", metavar="TAG", help="Remove a tag (repeatable)."),
    config: Optional[List[str]] = typer.Option(None, "--config", metavar="KEY=JSON", help="Merge a config value (repeatable)."),
    summary: Optional[List[str]] = typer.Option(None, "--summary", metavar="KEY=JSON", help="Merge a summary value (repeatable)."),
    yes: bool = _YES,
    dry_run: bool = _DRY,
    fmt: Optional[Format] = _FORMAT,
) -> None:
    """Change fields of runs chosen by --id or by a filter; only the given fields change."""
    from ..client import UNSET
    from ..errors import UsageError

    with _errors():
        fields: dict[str, Any] = {"name": UNSET if name is None else name,
                                  "notes": UNSET if notes is None else notes,
                                  "group": UNSET if group is None else group,
                                  "job_type": UNSET if job_type is None else job_type,
                                  "add_tags": tuple(add_tags or ()), "remove_tags": tuple(remove_tags or ()),
                                  "config": _assignments(config, "--config"),
                                  "summary": _assignments(summary, "--summary")}
        details = [f"set {label}: {fields[key]!r}" for key, label in
                   (("name", "displayName"), ("notes", "notes"), ("group", "group"), ("job_type", "jobType"))
                   if fields[key] is not UNSET]
        if add_tags:
            details.append("add tags: " + ", ".join(add_tags))
        if remove_tags:
            details.append("remove tags: " + ", ".join(remove_tags))
        for key in ("config", "summary"):
            if fields[key] is not UNSET:
                details.append(f"merge {key}: " + ", ".join(f"{k}={_dumps(v)}" for k, v in fields[key].items()))
        if not details:
            raise UsageError("nothing to update: give at least one of --name --notes --group --job-type "
                             "--add-tag --remove-tag --config --summary")
        query = _selection(ids, filters, where, all_runs, "update")
        out = _fmt(fmt)

        async def work(client: Any) -> int:
            full, targets, how = await _targets(client, path, ids, query)
            if not targets:
                _empty(out, "nothing to do: the filter matches no runs")
                return 0
            _plan("update", full, targets, how, details)
            if dry_run:
                sys.stderr.write("dry run: nothing changed\n")
                return 0
            _confirm(f"update {len(targets)} run(s)?", yes)
            with _progress(f"updating {len(targets)} run(s)"):
                results = await client.update_runs(full, targets, **fields)
            return _outcomes(results, out, "update")

        _run(work)


@runs_app.command("delete")
def delete_runs(
    path: str = typer.Argument(..., metavar="PATH", help=_PATH_HELP),
    ids: Optional[List[str]] = _IDS,
    filters: Optional[str] = _FILTERS,
    where: Optional[str] = _WHERE,
    all_runs: bool = typer.Option(False, "--all", help="Allow deleting every run of the project "
                                                      "(or a filter that matches every run)."),
    delete_artifacts: bool = typer.Option(False, "--delete-artifacts", help="Also delete the runs' artifacts."),
    yes: bool = _YES,
    dry_run: bool = _DRY,
    fmt: Optional[Format] = _FORMAT,
) -> None:
    """Soft-delete runs chosen by --id or by a filter (restorable with `runs restore`)."""
    with _errors():
        query = _selection(ids, filters, where, all_runs, "delete")
        out = _fmt(fmt)

        async def work(client: Any) -> int:
            full, targets, how = await _targets(client, path, ids, query)
            if not targets:
                _empty(out, "nothing to do: the filter matches no runs")
                return 0
            details = ["soft delete (restorable with 'wbgql runs restore' until the retention period ends)"]
            if delete_artifacts:
                details.append("and delete their artifacts PERMANENTLY (restoring the runs will not bring them back)")
            _plan("delete", full, targets, how, details)
            if dry_run:
                sys.stderr.write("dry run: nothing changed\n")
                return 0
            _confirm(f"delete {len(targets)} run(s)?", yes)
            with _progress(f"deleting {len(targets)} run(s)"):
                results = await client.delete_runs(full, targets, delete_artifacts=delete_artifacts)
            return _outcomes(results, out, "delete")

        _run(work)


@runs_app.command("restore")
def restore_runs(
    path: str = typer.Argument(..., metavar="PATH", help=_PATH_HELP),
    ids: Optional[List[str]] = typer.Option(None, "--id", metavar="RUN_ID",
                                            help="A deleted run's id (repeatable): the precise way."),
    filters: Optional[str] = _FILTERS,
    where: Optional[str] = _WHERE,
    all_runs: bool = typer.Option(False, "--all", help="Restore every deleted run of the project."),
    yes: bool = _YES,
    dry_run: bool = _DRY,
    fmt: Optional[Format] = _FORMAT,
) -> None:
    """Restore soft-deleted runs, by id or by filter (W&B's undeleteRuns)."""
    with _errors():
        out = _fmt(fmt)
        query = _selection(ids, filters, where, all_runs, "restore")

        async def work(client: Any) -> int:
            if ids:
                full, targets, how = await _targets(client, path, ids, {})
                _plan("restore", full, targets, how, [])
            else:
                entity, project = await client.project_path(path)
                full = f"{entity}/{project}"
                how = f"filter {_dumps(query)}" if query else "--all: every deleted run"
                # Deleted runs cannot be listed: which ones come back is known only afterwards.
                sys.stderr.write(f"plan: restore the deleted runs in {full} matching {how}\n"
                                 "  (W&B restores by filter; the restored ids are listed afterwards)\n")
            if dry_run:
                sys.stderr.write("dry run: nothing changed\n")
                return 0
            _confirm(f"restore {len(targets)} run(s)?" if ids else "restore the matching deleted runs?", yes)
            with _progress("restoring"):
                if ids:
                    results = await client.restore_runs(full, targets)
                else:
                    results = await client.restore_runs(full, filters=query, every=all_runs)
            return _outcomes(results, out, "restore")

        _run(work)
