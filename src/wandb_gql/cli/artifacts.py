"""`wbgql artifacts list|lineage|orphans|prune`: the versions of a project, where one came from and
went, and what is left behind when runs are deleted; prune old versions by policy."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated, Optional, TypeVar

import typer

from ..models import ARTIFACT_FIELDS
from ._common import (EXIT_FAILURE, STDOUT, Format, FormatOpt, PathArg, confirm, dumps, errors, examples,
                      new_app, note, out_format, run, stdout_is_terminal, warn)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from ..cleanup.artifacts import ArtifactPlan
    from ..client import Client
    from ..models import Lineage

T = TypeVar("T")
artifacts_app = new_app("List artifact versions, follow their lineage, find orphans, prune by policy.")

COLUMNS = ("collection", "version", "aliases", "size", "created_at", "created_by", "used_by_count")
TypeOpt = Annotated[Optional[str], typer.Option("--type", metavar="TYPE", show_default=False,
                                                help="Only collections of this artifact type, e.g. model, dataset.")]
CollectionOpt = Annotated[Optional[str], typer.Option("--collection", metavar="NAME", show_default=False,
                                                      help="Only the versions of this collection.")]
RefArg = Annotated[str, typer.Argument(
    metavar="ENTITY/PROJECT/COLLECTION:VERSION", show_default=False,
    help="The version: ENTITY/PROJECT/COLLECTION:vN or ENTITY/PROJECT/COLLECTION:ALIAS.")]


ARTIFACT_COLUMNS = (*ARTIFACT_FIELDS, "name", "path")


def fields_option(every: tuple[str, ...]) -> typer.models.OptionInfo:
    """--fields for a listing whose records have exactly `every` (names of the one vocabulary)."""
    return typer.Option("--fields", metavar="FIELD,...", show_default=False,
                        help=f"Columns (table, tsv, csv) or keys (json, jsonl), from: {', '.join(every)}.")


ArtifactFieldsOpt = Annotated[Optional[str], fields_option(ARTIFACT_COLUMNS)]


def columns_of(fields: Optional[str], default: tuple[str, ...], every: tuple[str, ...], what: str) -> list[str]:
    """--fields read against the names a record has (UsageError naming them, nothing sent)."""
    if fields is None:
        return list(default)
    from ..errors import UsageError

    chosen = [c.strip() for c in fields.split(",") if c.strip()]
    unknown = [c for c in chosen if c not in every]
    if unknown or not chosen:
        raise UsageError(f"--fields: unknown field(s) {', '.join(unknown) or '(none given)'}",
                         hint=f"{what} fields: {', '.join(every)}")
    return chosen


@artifacts_app.command("list", epilog=examples(
    "wbgql --local artifacts list demo/vision",
    "wbgql artifacts list ENTITY/PROJECT --type model -f csv > versions.csv",
    "wbgql artifacts list demo/vision --collection resnet-checkpoints --fields version,aliases,size -f jsonl"))
def list_artifacts(path: PathArg, type: TypeOpt = None, collection: CollectionOpt = None,
                   fields: ArtifactFieldsOpt = None,
                   limit: Annotated[Optional[int], typer.Option("--limit", "-n", metavar="N", min=0, show_default=False,
                                                                help="At most N versions (the newest).")] = None,
                   fmt: FormatOpt = None) -> None:
    """Every artifact version, newest first: collection, version, aliases, size (bytes),
    created_at, created_by (the producing run) and used_by_count (runs that used it)."""
    from .runs import make_writer

    with errors():
        out = out_format(fmt)
        every = ARTIFACT_COLUMNS
        columns = columns_of(fields, COLUMNS if out == Format.table else every, every, "artifact")

        async def work(client: "Client") -> None:
            writer = make_writer(out, columns)
            # The library merges the collections newest first as their pages arrive: rows stream.
            async for artifact in client.artifacts(path, type=type, collection=collection, limit=limit):
                writer.write({**artifact.to_dict(), "name": artifact.name})
            writer.close()

        run(work)


@artifacts_app.command("lineage", epilog=examples(
    "wbgql --local artifacts lineage demo/vision/features:v1",
    "wbgql --local artifacts lineage demo/vision/features:v1 --depth 2 --consumers 3",
    "wbgql artifacts lineage ENTITY/PROJECT/model:best -f json | jq '.edges[]'",
    "wbgql artifacts lineage ENTITY/PROJECT/dataset:v0 -f csv > edges.csv"))
def lineage(ref: RefArg,
            depth: Annotated[int, typer.Option("--depth", metavar="LEVELS", min=0,
                                               help="Levels of upstream artifacts to follow.")] = 1,
            consumers: Annotated[int, typer.Option(
                "--consumers", metavar="COUNT", min=0,
                help="Consuming runs listed per artifact; the rest are counted (\"… N more\").")] = 10,
            fmt: FormatOpt = None) -> None:
    """Where a version came from and where it went: the run that logged it, the runs that used
    it, and the artifacts its producing run used (to --depth levels) with the runs that used
    those. A tree; -f json prints the graph (nodes and edges; an artifact node's
    used_by_omitted counts the consumers beyond --consumers); -f csv/tsv its edges (source,
    kind, target)."""
    from ..client.artifacts import parse_artifact_ref

    with errors():
        parse_artifact_ref(ref)  # a bad reference is refused before anything is sent
        out = out_format(fmt)

        async def work(client: "Client") -> None:
            found = await client.lineage(ref, depth, consumers=consumers)
            if out in (Format.json, Format.jsonl):
                STDOUT.write(dumps(found.graph(), pretty=out == Format.json) + "\n")
            elif out in (Format.csv, Format.tsv):
                from .runs import make_writer

                writer = make_writer(out, list(EDGE_COLUMNS))  # a tree does not fit rows: its edges do
                for edge in found.graph()["edges"]:
                    writer.write(edge)
                writer.close()
            else:
                STDOUT.write("\n".join(tree_lines(found, fancy=stdout_is_terminal())) + "\n")

        run(work)


EDGE_COLUMNS = ("source", "kind", "target")


def tree_lines(item: "Lineage", fancy: bool) -> list[str]:
    """The lineage as an indented tree: box drawing on a terminal, plain indentation when piped.
    Each artifact lists the consumers lineage() kept and counts the rest ("… N more")."""
    def node(entry: "Lineage") -> list[str]:
        children: list[tuple[str, list[str]]] = []
        if entry.created_by:
            deleted = " (deleted)" if entry.artifact.created_by_deleted else ""
            upstream = [(f"used {u.artifact.name}", node(u)[1:]) for u in entry.upstream]
            children.append((f"logged by run {entry.created_by}{deleted}", _flatten(upstream, fancy)))
        else:
            children.append(("logged by a user (no run)", []))
        total = entry.used_by_count if entry.used_by_count is not None else len(entry.used_by)
        head = ", ".join(entry.used_by)
        more = f" … {entry.used_by_omitted:,} more" if entry.used_by_omitted else ""
        children.append((f"used by {total:,} run(s)" + (f": {head}" if head else "") + more, []))
        a = entry.artifact
        aliases = ", " + ", ".join(a.aliases) if a.aliases else ""
        return [f"{a.path}  ({a.type}, {a.size} bytes{aliases})", *_flatten(children, fancy)]

    return node(item)


def _flatten(children: list[tuple[str, list[str]]], fancy: bool) -> list[str]:
    tee, last, bar, gap = ("├─ ", "└─ ", "│  ", "   ") if fancy else ("  ", "  ", "  ", "  ")
    lines: list[str] = []
    for i, (text, sub) in enumerate(children):
        end = i == len(children) - 1
        lines.append((last if end else tee) + text)
        lines += [(gap if end else bar) + s for s in sub]
    return lines


ORPHAN_COLUMNS = ("kind", "collection", "version", "created_by", "reason")


@artifacts_app.command("orphans", epilog=examples(
    "wbgql --local artifacts orphans demo/vision",
    "wbgql artifacts orphans ENTITY/PROJECT -f json",
    "wbgql artifacts orphans ENTITY/PROJECT --fields collection,version -f csv"))
def orphans(path: PathArg, fields: Annotated[Optional[str], fields_option(ORPHAN_COLUMNS)] = None,
            fmt: FormatOpt = None) -> None:
    """What deleted runs left behind: versions whose producing run is deleted, and collections
    with no versions left."""
    from .runs import make_writer

    with errors():
        out = out_format(fmt)
        columns = columns_of(fields, ORPHAN_COLUMNS, ORPHAN_COLUMNS, "orphan")

        async def work(client: "Client") -> None:
            import asyncio

            # Versions stream (one page per collection in memory); only collection names are kept.
            listing = asyncio.ensure_future(collect(client.artifact_collections(path)))
            writer = make_writer(out, columns)
            kept: set[str] = set()
            try:
                async for a in client.artifacts(path):
                    kept.add(a.collection)
                    if a.created_by_deleted:
                        writer.write({"kind": "version", "collection": a.collection, "version": a.version,
                                      "created_by": a.created_by, "reason": "its producing run is deleted"})
                names = await listing
            finally:
                listing.cancel()
            for name in names:
                if name not in kept:
                    writer.write({"kind": "collection", "collection": name, "version": None, "created_by": None,
                                  "reason": "no versions left"})
            writer.close()

        run(work)


async def collect(items: "AsyncIterator[T]") -> list[T]:
    """An async listing as a list (to gather two listings at once)."""
    return [item async for item in items]


@artifacts_app.command("prune", epilog=examples(
    "wbgql --local artifacts prune demo/vision --collection resnet-checkpoints --keep-last 10 --dry-run",
    "wbgql artifacts prune ENTITY/PROJECT --type model --keep-last 5 --older-than 30d --yes -f jsonl",
    "wbgql artifacts prune ENTITY/PROJECT --keep-last 3 --keep-used --dry-run -f json"))
def prune(path: PathArg, type: TypeOpt = None, collection: CollectionOpt = None,
          keep_last: Annotated[int, typer.Option("--keep-last", metavar="N", show_default=False,
                                                 help="Versions kept per collection, newest first (required).")] = -1,
          keep_aliased: Annotated[bool, typer.Option("--keep-aliased/--no-keep-aliased",
                                                     help="Never delete a version with an alias.")] = True,
          keep_used: Annotated[bool, typer.Option("--keep-used", help="Never delete a version some run used.")] = False,
          older_than: Annotated[Optional[str], typer.Option("--older-than", metavar="AGE", show_default=False,
                                                            help="Only delete versions created before then, e.g. 30d.")] = None,
          ledger: Annotated[Optional[str], typer.Option("--ledger", metavar="PATH", show_default=False,
                                                        help="Write the ledger here (default: the ledger folder).")] = None,
          yes: Annotated[bool, typer.Option("--yes", "-y", help="Do it without asking.")] = False,
          dry_run: Annotated[bool, typer.Option("--dry-run", help="Show the plan (-f json: on stdout); change nothing.")] = False,
          fmt: FormatOpt = None) -> None:
    """Delete old artifact versions by policy: keep the newest N per collection, never an aliased
    one (unless --no-keep-aliased) nor, with --keep-used, one a run used. The plan shows the bytes
    reclaimable; the ledger records every version (with its file list) before anything is deleted;
    `wbgql ledger resume LEDGER` goes on after an interruption."""
    from ..errors import UsageError

    with errors():
        if keep_last < 0:
            raise UsageError("--keep-last N is required (versions kept per collection)", hint="e.g. --keep-last 10")
        if yes and dry_run:
            raise UsageError("--dry-run and --yes contradict each other", hint="choose one")
        out = out_format(fmt)

        async def work(client: "Client") -> int:
            from ..cleanup.artifacts import plan_prune

            plan = await plan_prune(client, path, type=type, collection=collection, keep_last=keep_last,
                                    keep_aliased=keep_aliased, keep_used=keep_used, older_than=older_than)
            note("\n".join(plan.details()))
            if dry_run:
                if out in (Format.json, Format.jsonl):
                    STDOUT.write(dumps(plan.to_dict(), pretty=out == Format.json) + "\n")
                note("dry run: nothing changed")
                return 0
            if not plan.versions:
                note("nothing to do: no version matches the policy")
                return 0
            confirm(f"delete {len(plan.versions):,} artifact version(s) in {plan.path} on {plan.server}?", yes)
            return await _apply_prune(client, plan, out, ledger)

        run(work)


async def _apply_prune(client: "Client", plan: "ArtifactPlan", out: Format, where: Optional[str]) -> int:
    from pathlib import Path

    from ..cleanup.artifacts import apply_prune
    from ..cleanup.ledger import Ledger, new_ledger_path
    from ._apply import describe_verify, resume_command, run_change

    target = Path(where).expanduser() if where else new_ledger_path("prune", plan.path)
    with Ledger.create(target, server=plan.server, user=plan.user, argv=sys.argv) as book:
        note(f"ledger: {book.path}")
        result = await run_change(f"deleting {len(plan.versions):,} version(s)", len(plan.versions), out, book.path,
                                  lambda outcomes: apply_prune(client, plan, ledger=book, on_outcome=outcomes),
                                  resume=resume_command(book.path), undo=None)
    counts = ", ".join(f"{k} {v:,}" for k, v in result.counts.items()) or "nothing"
    for o in [*result.skipped, *(o for o in result.outcomes if not o.ok)]:
        warn(f"{o.status} {o.run_id}: {o.error or ''}")
    note(f"prune: {counts}")
    note(describe_verify(result.verify))
    if out == Format.json:
        STDOUT.write(dumps({"ok": result.ok, "ledger": str(book.path), "counts": result.counts,
                            "verify": result.verify}, pretty=True) + "\n")
    note(f"ledger: {book.path}")
    return 0 if result.ok else EXIT_FAILURE
