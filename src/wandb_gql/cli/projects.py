"""`wbgql projects list [ENTITY]`: an entity's projects with their run counts and last activity."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Optional

import typer

from ._common import FieldsOpt, Format, FormatOpt, errors, examples, new_app, out_format, run

if TYPE_CHECKING:
    from ..client import Client

projects_app = new_app("List an entity's projects.")

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
