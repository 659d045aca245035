"""`wbgql runs list|count|get|explain|update|delete|archive|restore`.

Parse and check the input here (filters compile before anything is sent), run one coroutine,
write data to stdout through `wandb_gql.export`, and everything else (plan, warnings, progress,
errors) to stderr. Choosing, pinning and changing runs is `wandb_gql.cleanup`'s job; this
module renders the plan and asks, and `_apply` drives the engine.
"""

from __future__ import annotations

import contextlib
import enum
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Awaitable, Callable, List, Optional

import typer

from ._apply import apply_one, ticking
from ._common import (PATH_FORMS, STATUS, STDOUT, AllOpt, AllRowsOpt, ConfigKeysOpt, DryRunOpt, FieldsOpt,
                      FiltersOpt, Format, FormatOpt, IdsFromOpt, IdsOpt, LimitOpt, OrderOpt, PathArg, PerPageOpt,
                      RunPathArg, SummaryKeysOpt, WhereOpt, YesOpt, confirm, dumps, errors, examples, new_app,
                      note, out_format, read_ids, run, split_keys, stdout_is_terminal, stderr_is_terminal,
                      terminal_width, use_color, warn, write)
from ._select import Choice, selection_options
from .ledger import restore_from_ledger

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from ..cleanup.plan import Plan, Selection
    from ..client import Client
    from ..export import Writer

runs_app = new_app("List, count, inspect, update, delete and restore runs.")

DEFAULT_LIMIT = 50  # a table on a terminal: what fits a screen or two; --all lifts it


# ---------------------------------------------------------------------------- shared pieces


def compile_filter(filters: Optional[str], where: Optional[str]) -> dict[str, Any]:
    """Compile/check the filter before anything is sent; its lint warnings go to stderr."""
    from ..filters import lint, resolve_filters

    compiled = resolve_filters(filters, where)
    for warning in lint(compiled):
        warn(warning.message)
    return compiled.filters


@dataclass
class View:
    """What to show (columns in the one vocabulary; None: everything fetched, for JSON) and
    what to ask the server for, so only what is shown travels."""

    columns: Optional[list[str]]
    fields: Optional[list[str]]
    config_keys: Any
    summary_keys: Any

    @property
    def fetch(self) -> dict[str, Any]:
        return {"fields": self.fields, "config_keys": self.config_keys, "summary_keys": self.summary_keys}


def _parse_fields(text: str) -> list[str]:
    from ..errors import UsageError
    from ..export import column_names

    known = column_names()
    columns = [c.strip() for c in text.split(",") if c.strip()]
    if not columns:
        raise UsageError("--fields: name at least one field", hint="e.g. --fields name,state,summary.loss")
    for column in columns:
        head, dot, key = column.partition(".")
        if column in known or (dot and key and head in ("config", "summary")):
            continue
        import difflib

        close = difflib.get_close_matches(column, [*known, "config.<key>", "summary.<key>"], n=1)
        raise UsageError(f"--fields: unknown field {column!r}",
                         hint=(f"did you mean {close[0]!r}? " if close else "")
                         + f"fields: {', '.join(known)}, config.<key>, summary.<key> (config.* / summary.*: every key)")
    return list(dict.fromkeys(columns))


def _merge_keys(asked: Any, from_columns: list[str], every: bool) -> Any:
    if asked is True or every:
        return True
    keys = list(dict.fromkeys([*(asked or []), *from_columns]))
    return keys or None


def view(fmt: Format, fields: Optional[str], config_keys: Optional[str], summary_keys: Optional[str],
         *, vertical: bool = False) -> View:
    """Columns and projection from --fields / --config-keys / --summary-keys for `fmt`."""
    from ..export import ALL_COLUMNS, TABLE_COLUMNS
    from ..models import RUN_FIELDS

    config, summary = split_keys(config_keys, "--config-keys"), split_keys(summary_keys, "--summary-keys")
    extra = ([f"config.{k}" for k in config] if isinstance(config, list) else ["config.*"] if config else [])
    extra += ([f"summary.{k}" for k in summary] if isinstance(summary, list) else ["summary.*"] if summary else [])
    if fields is not None:
        columns = _parse_fields(fields)
        columns += [c for c in extra if c not in columns]
        names = {f.name for f in RUN_FIELDS}
        return View(columns=columns, fields=[c for c in columns if c in names],
                    config_keys=_merge_keys(config, [c[7:] for c in columns if c.startswith("config.")
                                                     and c != "config.*"], "config.*" in columns),
                    summary_keys=_merge_keys(summary, [c[8:] for c in columns if c.startswith("summary.")
                                                       and c != "summary.*"], "summary.*" in columns))
    if vertical:
        return View(columns=[*ALL_COLUMNS, "url", "config.*", "summary.*"], fields=None,
                    config_keys=config, summary_keys=summary)
    if fmt in (Format.json, Format.jsonl):
        return View(columns=None, fields=None, config_keys=config, summary_keys=summary)
    if fmt == Format.table:
        return View(columns=[*TABLE_COLUMNS, *extra], fields=list(TABLE_COLUMNS), config_keys=config,
                    summary_keys=summary)
    return View(columns=[*ALL_COLUMNS, *extra], fields=None, config_keys=config, summary_keys=summary)


def make_writer(fmt: Format, columns: Optional[list[str]]) -> "Writer":
    from ..export import writer

    terminal = stdout_is_terminal()
    return writer(fmt.value, STDOUT, columns, terminal=terminal, width=terminal_width() if terminal else 80,
                  color=use_color())


def _late_keys_warning(late: dict[str, list[str]]) -> None:
    for head, keys in late.items():
        shown = ", ".join(keys[:8]) + (", ..." if len(keys) > 8 else "")
        option = "--config-keys" if head == "config" else "--summary-keys"
        warn(f"{head} keys first seen after the first runs are not in the columns: {shown}; "
             f"name them with {option} or --fields to include them")


class ListFormat(str, enum.Enum):
    """`runs list`'s formats: the shared ones plus Parquet, which only a file (--out) can take."""

    table = "table"
    tsv = "tsv"
    csv = "csv"
    json = "json"
    jsonl = "jsonl"
    parquet = "parquet"


ListFormatOpt = Annotated[Optional[ListFormat], typer.Option(
    "--format", "-f", metavar="[table|tsv|csv|json|jsonl|parquet]", show_default=False, case_sensitive=False,
    help="Output format [default: table, or what --out's suffix names]. parquet needs --out; its columns are "
         "csv's; types: tags list<string>, history_line_count int64, other run fields strings (times as ISO "
         "text); a config/summary key whose values in the first 10,000 runs are all numbers is float64 "
         "(NaN/Infinity kept), all booleans bool, else string (JSON text for lists and dicts). Needs "
         "pip install 'wandb-gql[parquet]'.")]
OutOpt = Annotated[Optional[Path], typer.Option(
    "--out", "-o", metavar="FILE", show_default=False,
    help="Write to FILE instead of stdout (.csv, .tsv, .json, .jsonl or .parquet: the suffix names the format "
         "when -f is not given; '-' is stdout); FILE appears only once complete.")]


def _output(fmt: Optional[ListFormat], out_file: Optional[Path]) -> str:
    """The format: -f, else --out's suffix, else the global --format, else table."""
    from ..errors import UsageError
    from ..export import FILE_FORMATS, format_of_file

    named = fmt.value if fmt is not None else None
    if named == "parquet" or (named is None and out_file is not None and format_of_file(out_file) == "parquet"):
        from ..export_history import _need

        _need("pyarrow", "parquet")  # before anything is sent
    if out_file is None:
        if named == "parquet":
            raise UsageError("Parquet needs --out FILE", hint="e.g. -f parquet --out runs.parquet")
        return out_format(Format(named) if named else None).value
    suffixed = format_of_file(out_file)
    if named is None:
        if suffixed is None:
            raise UsageError(f"cannot tell the format of {str(out_file)!r}",
                             hint=f"name it FILE.{', .'.join(FILE_FORMATS)}, or give -f")
        return suffixed
    if suffixed is not None and suffixed != named:
        raise UsageError(f"-f {named} but --out names a .{suffixed} file", hint="make them agree, or leave out -f")
    return named


class _OutFile:
    """--out FILE: written as FILE.part, renamed to FILE once complete, removed if anything fails,
    so FILE is never a half-written export."""

    def __init__(self, path: Path) -> None:
        from ..errors import UsageError

        self.path = path
        self.part = path.with_name(path.name + ".part")
        try:
            self.text = open(self.part, "w", encoding="utf-8", newline="")
        except OSError as e:
            raise UsageError(f"cannot write {str(path)!r}: {e.strerror}", hint="choose a writable path") from None

    def __enter__(self) -> "_OutFile":
        return self

    def __exit__(self, exc_type: Any, *_rest: Any) -> None:
        import os

        self.text.close()
        if exc_type is None:
            os.replace(self.part, self.path)
        else:
            with contextlib.suppress(OSError):
                os.unlink(self.part)


def _file_writer(name: str, target: _OutFile, columns: Optional[list[str]]) -> "Writer":
    from ..export import parquet_writer, writer

    if name == "parquet":
        return parquet_writer(target.part, columns)
    return writer(name, target.text, columns)


def _misfits_warning(writer: "Writer") -> None:
    from ..export import ROW_GROUP

    misfits: dict[str, int] = getattr(writer, "misfits", {})
    if misfits:
        shown = ", ".join(f"{column} ({n:,})" for column, n in list(misfits.items())[:8])
        warn(f"values that did not fit their column's type (decided by the first {ROW_GROUP:,} runs) were left "
             f"empty: {shown}; -f jsonl keeps every value as it is")


# ---------------------------------------------------------------------------- reading


@runs_app.command("list", epilog=examples(
    "wbgql runs list demo/vision --where 'state = crashed' --summary-keys loss",
    "wbgql runs list demo/vision --order -summary.val/acc -n 10 --fields name,summary.val/acc",
    "wbgql runs list https://wandb.ai/ENTITY/PROJECT -f jsonl --all > runs.jsonl",
    "wbgql runs list ENTITY/PROJECT --summary-keys loss,val/acc --out runs.parquet",
    "wbgql --local runs list demo/vision --deleted",
    "wbgql --local runs list demo/vision --uses features:v1 --where 'state = finished'"))
def list_runs(
    path: PathArg,
    where: WhereOpt = None,
    filters: FiltersOpt = None,
    order: OrderOpt = "-created_at",
    fields: FieldsOpt = None,
    config_keys: ConfigKeysOpt = None,
    summary_keys: SummaryKeysOpt = None,
    limit: LimitOpt = None,
    all_rows: AllRowsOpt = False,
    per_page: PerPageOpt = 1000,
    deleted: Annotated[bool, typer.Option(
        "--deleted", help="The soft-deleted runs instead, with when they were deleted and when they will be purged "
                          "(a server that can list them: the local server can, W&B cannot).")] = False,
    uses: Annotated[Optional[str], typer.Option(
        "--uses", metavar="COLLECTION:VERSION", show_default=False,
        help="Only the runs that used this artifact version, e.g. features:v1 or model:best, resolved through its lineage "
             "and combined with --where.")] = None,
    logged: Annotated[Optional[str], typer.Option(
        "--logged", metavar="COLLECTION:VERSION", show_default=False,
        help="Only the run that logged this artifact version, e.g. features:v1 or model:best, combined with --where.")] = None,
    fmt: ListFormatOpt = None,
    out_file: OutOpt = None,
) -> None:
    """List runs, newest first: a table, or tsv/csv/json/jsonl streamed as pages arrive (or Parquet
    to a file, a row group at a time)."""
    from ..errors import UsageError

    with errors():
        if out_file is not None and str(out_file) == "-":
            out_file = None  # `--out -`: stdout (as `--ids-from -` is stdin)
        name = _output(fmt, out_file)
        if limit is not None and all_rows:
            raise UsageError("give either --limit N or --all, not both")
        artifact_runs = _artifact_runs(path, uses, logged)
        if artifact_runs is not None and deleted:
            raise UsageError("--uses/--logged list live runs: not with --deleted")
        if deleted:
            others = [name for name, given in (("--fields", fields is not None), ("--config-keys", config_keys),
                                               ("--summary-keys", summary_keys),
                                               ("--order", order != "-created_at")) if given]
            if out_file is not None:
                others.append("--out")
            if others:
                raise UsageError(f"--deleted shows name, display name, state, deleted and purge dates, the most "
                                 f"recently deleted first: not with {', '.join(others)}")
            _list_deleted(path, compile_filter(filters, where), limit, all_rows, Format(name))
            return
        query = compile_filter(filters, where)
        # Parquet has csv's columns; a file gets a table as a person reads it, unpadded.
        out = Format.csv if name == "parquet" else Format(name)
        shown = view(out, fields, config_keys, summary_keys)
        capped = limit is None and not all_rows and out == Format.table and stdout_is_terminal() and out_file is None
        cap = DEFAULT_LIMIT if capped else limit
        # A bar only where the rows are not already on the screen.
        bar = stderr_is_terminal() and (out_file is not None or not stdout_is_terminal())
        target = _OutFile(out_file) if out_file is not None else None
        written: list[int] = []

        async def work(client: "Client") -> None:
            import asyncio

            queries = [query] if artifact_runs is None else await artifact_runs(client, query)
            counting = asyncio.ensure_future(_count_all(client, path, queries)) if capped or bar else None
            if counting is not None:
                def counted(task: "asyncio.Future[int]") -> None:
                    if not task.cancelled() and task.exception() is None:
                        STATUS.set_total(task.result() if cap is None else min(cap, task.result()))

                counting.add_done_callback(counted)
            STATUS.start("fetching runs", total=cap, bar=bar)
            writer = make_writer(out, shown.columns) if target is None else _file_writer(name, target, shown.columns)
            try:
                async for item in _runs_of(client, path, queries, order, per_page, cap, shown.fetch):
                    writer.write(item)
                    STATUS.advance()
                writer.close()
                STATUS.stop()
                _late_keys_warning(writer.late_keys)
                _misfits_warning(writer)
                written.append(writer.count)
                if capped and counting is not None:
                    try:
                        total = await counting
                    except Exception:
                        total = None  # the footer is a courtesy; the listing itself succeeded
                    if total is not None and total > writer.count:
                        note(f"showing {writer.count:,} of {total:,}: --limit N or --all")
            finally:
                if counting is not None and not counting.done():
                    counting.cancel()

        if target is None:
            run(work)
            return
        with target:
            run(work)
        note(f"{sum(written):,} runs written to {target.path}")


# The server's largest page, and so the most ids one `name $in` asks for: a dataset used by
# 10,000 runs becomes ten filters whose streams are merged back into one order.
PIN_BATCH = 1000


def _artifact_runs(path: str, uses: Optional[str], logged: Optional[str]) -> Optional[
        Callable[["Client", dict[str, Any]], Awaitable[list[dict[str, Any]]]]]:
    """--uses/--logged, checked before anything is sent: W&B's run filter cannot say "used this
    artifact", so the run ids come from the artifact's side and the filter is pinned to them,
    PIN_BATCH ids per filter."""
    if uses is None and logged is None:
        return None
    from ..client.artifacts import check_artifact_name

    wanted = [(check_artifact_name(n), which) for n, which in ((uses, "uses"), (logged, "logged")) if n is not None]

    async def pin(client: "Client", query: dict[str, Any]) -> list[dict[str, Any]]:
        entity, project = await client.project_path(path)
        ids: Optional[set[str]] = None
        for name, which in wanted:
            ref = f"{entity}/{project}/{name}"
            found = set(await (client.runs_using(ref) if which == "uses" else client.runs_logging(ref)))
            ids = found if ids is None else ids & found
        every = sorted(ids or ())
        pinned = [{"name": {"$in": every[i:i + PIN_BATCH]}} for i in range(0, max(len(every), 1), PIN_BATCH)]
        return [{"$and": [query, p]} if query else p for p in pinned]

    return pin


async def _count_all(client: "Client", path: str, queries: list[dict[str, Any]]) -> int:
    import asyncio

    return sum(await asyncio.gather(*(client.count_runs(path, filters=q) for q in queries)))


def _order_key(order: str) -> tuple[Optional[str], bool]:
    """The Run field `order` sorts on (None: one the rows may not carry, a config or summary key
    or a W&B key) and whether it is descending."""
    from ..filters.where import FIELDS

    name = order.strip()
    descending = name.startswith("-")
    name = name.lstrip("+-").strip()
    return (name if name in FIELDS and "." not in name else None), descending


async def _runs_of(client: "Client", path: str, queries: list[dict[str, Any]], order: str, per_page: int,
                   limit: Optional[int], fetch: dict[str, Any]) -> "AsyncIterator[Any]":
    """The runs of every query in `order`, as one stream: the server orders each batch; the
    batches are merged on the order's field, holding one page per batch. Ordered on a config or
    summary key, rows keep their order within each batch of PIN_BATCH ids, batch after batch
    (the merge would need a value the rows may not carry): a note says so."""
    if len(queries) == 1:
        async for item in client.runs(path, filters=queries[0], order=order, per_page=per_page, limit=limit,
                                      **fetch):
            yield item
        return
    from ..client._paging import merge_sorted

    field, descending = _order_key(order)
    if field is not None and fetch.get("fields") is not None and field not in fetch["fields"]:
        fetch = {**fetch, "fields": [*fetch["fields"], field]}  # the merge reads it; the columns stay as asked
    streams = [client.runs(path, filters=q, order=order, per_page=per_page, limit=limit, **fetch) for q in queries]
    if field is None:
        note(f"{len(queries)} batches of up to {PIN_BATCH:,} runs: ordered by {order.strip()} within each batch")
    merged = (merge_sorted(streams, key=lambda run: _sortable(run.value(field)), reverse=descending)
              if field is not None else _chain(streams))
    handed = 0
    async for item in merged:
        yield item
        handed += 1
        if limit is not None and handed >= limit:
            return


def _sortable(value: Any) -> tuple[bool, Any]:
    # Missing values sort as the server sorts NULLs: below every value.
    return (value is not None, value)


async def _chain(streams: "list[AsyncIterator[Any]]") -> "AsyncIterator[Any]":
    for stream in streams:
        async for item in stream:
            yield item


DELETED_COLUMNS = ["name", "display_name", "state", "deleted_at", "purge_at"]


def _list_deleted(path: str, query: dict[str, Any], limit: Optional[int], all_rows: bool, out: Format) -> None:
    capped = limit is None and not all_rows and out == Format.table and stdout_is_terminal()
    cap = DEFAULT_LIMIT if capped else limit

    async def work(client: "Client") -> None:
        STATUS.start("fetching deleted runs", bar=False)
        writer = make_writer(out, DELETED_COLUMNS)
        more = False
        async for item in client.deleted_runs(path, filters=query, limit=None if cap is None else cap + 1):
            if cap is not None and writer.count >= cap:
                more = True
                break
            writer.write({column: getattr(item, column, None) for column in DELETED_COLUMNS})
        writer.close()
        STATUS.stop()
        if more and capped:
            note(f"showing the first {cap:,}: --limit N or --all")

    run(work)


@runs_app.command("count", epilog=examples("wbgql runs count demo/vision --where 'state in (crashed, failed)'"))
def count_runs(path: PathArg, where: WhereOpt = None, filters: FiltersOpt = None, fmt: FormatOpt = None) -> None:
    """How many runs match (counted by the server)."""
    with errors():
        query = compile_filter(filters, where)
        out = out_format(fmt)

        async def work(client: "Client") -> None:
            n = await client.count_runs(path, filters=query)
            if out in (Format.json, Format.jsonl):
                write(dumps({"count": n}) + "\n")
            elif out in (Format.csv, Format.tsv):
                write(f"count\n{n}\n")
            else:
                write(f"{n}\n")

        run(work)


@runs_app.command("get", epilog=examples("wbgql runs get demo/vision/vi000001",
                                         "wbgql runs get https://wandb.ai/ENTITY/PROJECT/runs/RUN_ID -f json",
                                         "wbgql runs get demo/rl/rl000001 --fields name,state,config.lr"))
def get_run(path: RunPathArg, fields: FieldsOpt = None, fmt: FormatOpt = None) -> None:
    """One run, everything about it (a table shows it as a key/value list)."""
    with errors():
        out = out_format(fmt)
        shown = view(out, fields, None, None, vertical=out == Format.table)

        async def work(client: "Client") -> None:
            from ..export import json_record, write_vertical

            item = await client.run(path)
            if out == Format.json:
                write(dumps(json_record(item, shown.columns), pretty=True) + "\n")
            elif out == Format.table:
                terminal = stdout_is_terminal()
                write_vertical(item, shown.columns or [], STDOUT, terminal=terminal,
                               width=terminal_width() if terminal else 80, color=use_color())
            else:
                columns = shown.columns
                if out != Format.jsonl and fields is None:
                    columns = [*(columns or []), "url", "config.*", "summary.*"]
                make_writer(out, columns).write_all([item]).close()

        run(work)


@runs_app.command("explain", epilog=examples("wbgql runs explain demo/vision --where 'summary.val/acc >= 0.9'",
                                             "wbgql runs explain demo/vision --filters '{\"summary.loss\": 1}'"))
def explain(
    path: PathArg,
    where: WhereOpt = None,
    filters: FiltersOpt = None,
    destructive: Annotated[bool, typer.Option("--destructive", help="Also warn as a delete would (a filter that matches every run).")] = False,
    fmt: FormatOpt = None,
) -> None:
    """Show the filter JSON that will be sent, its lint warnings (W&B traps), and how many runs match."""
    from ..filters import Lint, lint, matches_every_run, resolve_filters

    with errors():
        compiled = resolve_filters(filters, where)
        query = compiled.filters
        warnings = lint(compiled)
        reason = matches_every_run(query) if destructive else None
        if reason:
            warnings.append(Lint("matches-every-run", f"this filter matches every run ({reason}): a delete "
                                 "would refuse it without --all"))
        out = out_format(fmt)

        async def work(client: "Client") -> None:
            from ..errors import WandbGQLError

            if out == Format.table:  # what will be sent and its traps first, even if the count fails
                lines = ["filters:", dumps(query, pretty=True), "warnings:"]
                lines += [f"  - {w.message} [{w.code}]" for w in warnings] or ["  (none)"]
                write("\n".join(lines) + "\n")
            try:
                n = await client.count_runs(path, filters=query)
            except WandbGQLError:
                if out != Format.table:
                    for w in warnings:
                        warn(w.message)
                raise
            report = {"filters": query, "warnings": [{"code": w.code, "message": w.message} for w in warnings],
                      "run_count": n}
            if out == Format.table:
                write(f"run_count: {n}\n")
            elif out in (Format.csv, Format.tsv):
                make_writer(out, ["filters", "warnings", "run_count"]).write_all([report]).close()
            else:
                write(dumps(report, pretty=out == Format.json) + "\n")

        run(work)


# ---------------------------------------------------------------------------- changing


def _selection(choice: Choice, ids: Optional[List[str]], ids_from: Optional[str], filters: Optional[str],
               where: Optional[str], all_runs: bool, action: str, yes: bool, dry_run: bool) -> "Selection":
    from ..errors import UsageError

    if ids_from == "-" and not yes and not dry_run:
        raise UsageError("--ids-from - reads the ids from stdin, so it cannot also read your answer",
                         hint="pass --yes (or --dry-run to see the plan first)")
    selection = choice.selection(ids=read_ids(ids, ids_from), filters=filters, where=where, every=all_runs,
                                 action=action)
    for warning in selection.warnings:
        warn(warning)
    return selection


async def _change(client: "Client", path: str, selection: "Selection", action: str, fmt: Format, choice: Choice, *,
                  yes: bool, dry_run: bool, ledger: Optional[str], details: List[str],
                  changes: dict[str, Any]) -> int:
    """Plan (pin the ids), show the plan, ask, then apply exactly that plan through the engine
    with its ledger, and report."""
    from ..cleanup.plan import make_plan

    STATUS.start("resolving the runs to change", bar=False)
    ticker = ticking()
    try:
        plan: Plan = await make_plan(client, path, selection, action, details=details, changes=changes)
    finally:
        ticker.cancel()
        STATUS.stop()
    note("\n".join(plan.describe()))
    if dry_run:
        if fmt in (Format.json, Format.jsonl):
            write(dumps(plan.to_dict(), pretty=fmt == Format.json) + "\n")
        note("nothing to do: no runs match" if plan.empty else "dry run: nothing changed")
        return 0
    if plan.empty:  # the summary of doing nothing, in the shape of a real one
        if fmt == Format.json:
            write(dumps({"ok": True, "ledger": None, "plans": [], "undo": None}, pretty=True) + "\n")
        elif fmt != Format.jsonl:
            make_writer(fmt, ["status", "runs"]).close()
        note("nothing to do: no runs match")
        return 0
    count = "the matching deleted runs" if plan.run_ids is None else f"{len(plan.run_ids):,} run(s)"
    confirm(f"{action} {count} in {plan.path} on {plan.server}?", yes)
    return await apply_one(client, plan, fmt, ledger_path=ledger, max_drift=choice.max_drift,
                           backup_history=choice.backup_history, options=choice.options())


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


LedgerOutOpt = Annotated[Optional[str], typer.Option(
    "--ledger", metavar="LEDGER", show_default=False,
    help="Write the ledger (plan, a backup of every run, each outcome) to this file "
         "[default: a new file in the ledger folder, see: wbgql ledger list].")]


@runs_app.command("update", epilog=examples(
    "wbgql runs update demo/rl --id rl000010 --name best --add-tag keep",
    "wbgql runs update demo/rl --state killed --older-than 7d --add-tag was-killed --dry-run",
    "wbgql runs list demo/rl -f tsv --fields name --where 'tags has tmp' | tail -n +2 | "
    "wbgql runs update demo/rl --ids-from - --remove-tag tmp --yes",
    "wbgql ledger undo LEDGER    (puts the previous values back)"))
@selection_options
def update_runs(
    path: PathArg,
    ids: IdsOpt = None,
    ids_from: IdsFromOpt = None,
    where: WhereOpt = None,
    filters: FiltersOpt = None,
    all_runs: AllOpt = False,
    name: Annotated[Optional[str], typer.Option("--name", metavar="NAME", show_default=False, help="New display name.")] = None,
    notes: Annotated[Optional[str], typer.Option("--notes", metavar="TEXT", show_default=False, help="New notes.")] = None,
    group: Annotated[Optional[str], typer.Option("--group", metavar="GROUP", show_default=False, help="New group.")] = None,
    job_type: Annotated[Optional[str], typer.Option("--job-type", metavar="TYPE", show_default=False, help="New job type.")] = None,
    add_tags: Annotated[Optional[List[str]], typer.Option("--add-tag", metavar="TAG", show_default=False, help="Add a tag (repeatable).")] = None,
    remove_tags: Annotated[Optional[List[str]], typer.Option("--remove-tag", metavar="TAG", show_default=False, help="Remove a tag (repeatable).")] = None,
    config: Annotated[Optional[List[str]], typer.Option("--config", metavar="KEY=JSON", show_default=False, help="Merge a config value (repeatable).")] = None,
    summary: Annotated[Optional[List[str]], typer.Option("--summary", metavar="KEY=JSON", show_default=False, help="Merge a summary value (repeatable).")] = None,
    ledger: LedgerOutOpt = None,
    yes: YesOpt = False,
    dry_run: DryRunOpt = False,
    fmt: FormatOpt = None,
    choice: Choice = Choice(),
) -> None:
    """Change fields of runs chosen by --id/--ids-from or by a filter; only the given fields change.
    The previous values go to the ledger, so `wbgql ledger undo LEDGER` puts them back."""
    from ..client import UNSET
    from ..errors import UsageError

    with errors():
        values: dict[str, Any] = {"name": UNSET if name is None else name,
                                  "notes": UNSET if notes is None else notes,
                                  "group": UNSET if group is None else group,
                                  "job_type": UNSET if job_type is None else job_type,
                                  "add_tags": tuple(add_tags or ()), "remove_tags": tuple(remove_tags or ()),
                                  "config": _assignments(config, "--config"),
                                  "summary": _assignments(summary, "--summary")}
        changes: dict[str, Any] = {("display_name" if k == "name" else k): (list(v) if isinstance(v, tuple) else v)
                   for k, v in values.items() if v is not UNSET and v != ()}
        details = [f"set {key}: {changes[key]!r}" for key in ("display_name", "notes", "group", "job_type")
                   if key in changes]
        if add_tags:
            details.append("add tags: " + ", ".join(add_tags))
        if remove_tags:
            details.append("remove tags: " + ", ".join(remove_tags))
        for key in ("config", "summary"):
            merged: dict[str, Any] = changes.get(key) or {}
            if merged:
                details.append(f"merge {key}: " + ", ".join(f"{k}={dumps(v)}" for k, v in merged.items()))
        if not details:
            raise UsageError("nothing to update: give at least one of --name --notes --group --job-type "
                             "--add-tag --remove-tag --config --summary")
        selection = _selection(choice, ids, ids_from, filters, where, all_runs, "update", yes, dry_run)
        out = out_format(fmt)

        async def work(client: "Client") -> int:
            return await _change(client, path, selection, "update", out, choice, yes=yes, dry_run=dry_run,
                                 ledger=ledger, details=details, changes=changes)

        run(work)


SOFT_DELETE = ("W&B's deletion is a soft delete: the runs are hidden and no longer counted, and can be "
               "restored (wbgql runs restore --ledger LEDGER) until the server's retention period purges them.")


@selection_options
def delete_runs(
    path: PathArg,
    ids: IdsOpt = None,
    ids_from: IdsFromOpt = None,
    where: WhereOpt = None,
    filters: FiltersOpt = None,
    all_runs: AllOpt = False,
    delete_artifacts: Annotated[bool, typer.Option("--delete-artifacts", help="Also delete the runs' artifacts, permanently.")] = False,
    ledger: LedgerOutOpt = None,
    yes: YesOpt = False,
    dry_run: DryRunOpt = False,
    fmt: FormatOpt = None,
    choice: Choice = Choice(),
) -> None:
    with errors():
        selection = _selection(choice, ids, ids_from, filters, where, all_runs, "delete", yes, dry_run)
        out = out_format(fmt)
        details = ["soft delete (restorable with 'wbgql runs restore --ledger LEDGER' until the retention "
                   "period ends)"]
        if delete_artifacts:
            details.append("and delete their artifacts PERMANENTLY (restoring the runs will not bring them back)")

        async def work(client: "Client") -> int:
            return await _change(client, path, selection, "delete", out, choice, yes=yes, dry_run=dry_run,
                                 ledger=ledger, details=details, changes={"delete_artifacts": delete_artifacts})

        run(work)


_DELETE_EXAMPLES = (
    "wbgql runs {verb} demo/vision --state crashed,failed --older-than 30d --dry-run",
    "wbgql runs {verb} demo/vision --keep-best 5 --by summary.val/acc --per sweep --yes",
    "wbgql runs {verb} demo/vision --id vi000001 --id vi000002 --ledger cleanup.jsonl --yes",
    "wbgql runs {verb} demo/vision --where 'tags has tmp' -f jsonl --yes > outcomes.jsonl",
    "wbgql runs restore --ledger LEDGER    (brings back exactly those runs)")
runs_app.command("delete", epilog=examples(*(e.format(verb="delete") for e in _DELETE_EXAMPLES)), help=(
    "Delete runs chosen by --id/--ids-from, a filter and the selection options: plan, ledger, then act on "
    "exactly the planned runs. " + SOFT_DELETE))(delete_runs)
runs_app.command("archive", epilog=examples(*(e.format(verb="archive") for e in _DELETE_EXAMPLES)), help=(
    "Archive runs: the same as `runs delete`. " + SOFT_DELETE))(delete_runs)


@runs_app.command("restore", epilog=examples(
    "wbgql runs restore --ledger LEDGER",
    "wbgql runs restore --ledger LEDGER --recreate --yes",
    "wbgql runs restore demo/vision --id vi000001 --yes",
    "wbgql runs restore demo/vision --where 'state = crashed' --dry-run"))
@selection_options
def restore_runs(
    path: Annotated[Optional[str], typer.Argument(metavar="ENTITY/PROJECT", show_default=False,
                                                  help=f"The project: {PATH_FORMS} (not with --ledger).")] = None,
    ids: IdsOpt = None,
    ids_from: IdsFromOpt = None,
    where: WhereOpt = None,
    filters: FiltersOpt = None,
    all_runs: AllOpt = False,
    ledger: Annotated[Optional[str], typer.Option(
        "--ledger", metavar="LEDGER", show_default=False,
        help="Restore exactly the runs this ledger deleted (the restore is added to the same ledger).")] = None,
    recreate: Annotated[bool, typer.Option(
        "--recreate", help="With --ledger: re-create from the ledger's backup the runs already purged.")] = False,
    yes: YesOpt = False,
    dry_run: DryRunOpt = False,
    fmt: FormatOpt = None,
    choice: Choice = Choice(),
) -> None:
    """Restore soft-deleted runs: those a ledger deleted (the precise way), by id, or by filter
    (W&B's undeleteRuns, which also brings back runs deleted by others)."""
    from ..errors import UsageError

    with errors():
        out = out_format(fmt)
        if ledger is not None:
            if ids or ids_from or where is not None or filters is not None or all_runs:
                raise UsageError("give either --ledger LEDGER or a selection (--id/--ids-from/--where/--filters), "
                                 "not both")
            restore_from_ledger(ledger, path, recreate=recreate, yes=yes, dry_run=dry_run, fmt=out)
            return
        if recreate:
            raise UsageError("--recreate re-creates runs from a ledger's backup: it needs --ledger LEDGER")
        if path is None:
            raise UsageError("name the project (ENTITY/PROJECT), or give --ledger LEDGER",
                             hint="e.g. wbgql runs restore --ledger LEDGER (see: wbgql ledger list)")
        selection = _selection(choice, ids, ids_from, filters, where, all_runs, "restore", yes, dry_run)

        async def work(client: "Client") -> int:
            return await _change(client, path, selection, "restore", out, choice, yes=yes, dry_run=dry_run,
                                 ledger=None, details=[], changes={})

        run(work)
