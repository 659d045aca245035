"""`wbgql projects list [ENTITY]`: an entity's projects with their run counts and last activity;
`wbgql projects usage ENTITY/PROJECT`: artifact bytes by type and by collection."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Optional

import typer

from ._common import FieldsOpt, Format, FormatOpt, PathArg, errors, examples, new_app, out_format, run

if TYPE_CHECKING:
    from ..client import Client

projects_app = new_app("List an entity's projects; show a project's artifact storage.")

COLUMNS = ("name", "run_count", "last_active")
ALL = ("entity", "name", "run_count", "last_active", "created_at", "path")


@projects_app.command("list", epilog=examples("wbgql projects list", "wbgql --local projects list demo -f json",
                                              "wbgql projects list my-team --fields name,run_count -f csv"))
def list_projects(
    entity: Annotated[Optional[str], typer.Argument(
        metavar="ENTITY", show_default=False, help="A user or team [default: your default entity].")] = None,
    fields: FieldsOpt = None,
    fmt: FormatOpt = None,
) -> None:
    """Projects of an entity: name, run count, last activity."""
    from .runs import make_writer

    with errors():
        out = out_format(fmt)
        columns = list(COLUMNS if out == Format.table else ALL)
        if fields is not None:
            from ..errors import UsageError

            columns = [c.strip() for c in fields.split(",") if c.strip()]
            unknown = [c for c in columns if c not in ALL]
            if unknown or not columns:
                raise UsageError(f"--fields: unknown field(s) {', '.join(unknown) or '(none given)'}",
                                 hint=f"project fields: {', '.join(ALL)}")

        async def work(client: "Client") -> None:
            writer = make_writer(out, columns)
            async for project in client.projects(entity):
                writer.write({"entity": project.entity, "name": project.name, "run_count": project.run_count,
                              "last_active": project.last_active, "created_at": project.created_at,
                              "path": f"{project.entity}/{project.name}"})
            writer.close()

        run(work)


USAGE_COLUMNS = ["type", "collection", "versions", "bytes"]


@projects_app.command("usage", epilog=examples("wbgql --local projects usage demo/vision",
                                               "wbgql projects usage ENTITY/PROJECT -f json"))
def usage(path: PathArg, fmt: FormatOpt = None) -> None:
    """Artifact bytes of a project by type and by collection: one row per collection, then one
    per type (collection "*"), then the total (type "*"), summed from the versions' sizes.
    Bytes shared between versions (the same file in v1 and v2) are counted once per version,
    so this is what the versions hold, not what deleting one would free."""
    from .runs import make_writer

    with errors():
        out = out_format(fmt)

        async def work(client: "Client") -> None:
            totals: dict[tuple[str, str], list[int]] = {}
            async for artifact in client.artifacts(path):
                for key in ((artifact.type, artifact.collection), (artifact.type, "*"), ("*", "*")):
                    row = totals.setdefault(key, [0, 0])
                    row[0] += 1
                    row[1] += artifact.size or 0
            writer = make_writer(out, USAGE_COLUMNS)
            # Collections first, then each type's subtotal, then the total: "*" sorts after names.
            for (kind, collection), (versions, size) in sorted(totals.items(), key=lambda kv: (
                    kv[0][0] == "*", kv[0][1] == "*", kv[0])):
                writer.write({"type": kind, "collection": collection, "versions": versions, "bytes": size})
            writer.close()

        run(work)
