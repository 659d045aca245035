"""`wbgql projects list [ENTITY]`: an entity's projects with their run counts and last activity;
`wbgql projects usage ENTITY/PROJECT`: artifact bytes by type and by collection."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Optional

import typer

from ._common import FieldsOpt, Format, FormatOpt, PathArg, errors, examples, new_app, out_format, run
from .artifacts import columns_of, fields_option

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


# The one vocabulary: `size` is bytes as in `artifacts list`; a subtotal names what it sums in
# words (no artifact name has a space, so they never read as a collection or type).
USAGE_COLUMNS = ("type", "collection", "version_count", "size")
ALL_TYPES, ALL_COLLECTIONS = "all types", "all collections"


@projects_app.command("usage", epilog=examples("wbgql --local projects usage demo/vision",
                                               "wbgql projects usage ENTITY/PROJECT -f json",
                                               "wbgql projects usage ENTITY/PROJECT --fields collection,size -f csv"))
def usage(path: PathArg, fields: Annotated[Optional[str], fields_option(USAGE_COLUMNS)] = None,
          fmt: FormatOpt = None) -> None:
    """Artifact bytes of a project by type and by collection: one row per collection, then one
    per type (collection "all collections"), then the total (type "all types"), summed from the
    versions' sizes. Bytes shared between versions (the same file in v1 and v2) are counted once
    per version, so this is what the versions hold, not what deleting one would free."""
    from .runs import make_writer

    with errors():
        out = out_format(fmt)
        columns = columns_of(fields, USAGE_COLUMNS, USAGE_COLUMNS, "usage")

        async def work(client: "Client") -> None:
            totals: dict[tuple[str, str], list[int]] = {}
            async for artifact in client.artifacts(path):
                for key in ((artifact.type, artifact.collection), (artifact.type, ALL_COLLECTIONS),
                            (ALL_TYPES, ALL_COLLECTIONS)):
                    row = totals.setdefault(key, [0, 0])
                    row[0] += 1
                    row[1] += artifact.size or 0
            writer = make_writer(out, columns)
            # Collections first, then each type's subtotal, then the total.
            for (kind, collection), (versions, size) in sorted(totals.items(), key=lambda kv: (
                    kv[0][0] == ALL_TYPES, kv[0][1] == ALL_COLLECTIONS, kv[0])):
                writer.write({"type": kind, "collection": collection, "version_count": versions, "size": size})
            writer.close()

        run(work)
