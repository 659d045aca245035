"""`wbgql sweeps list ENTITY/PROJECT`: a project's sweeps with their state, method, metric, run
count and best run (by the sweep's metric, as wandb's Sweep.best_run() picks it)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Optional

from ._common import Format, FormatOpt, PathArg, errors, examples, new_app, out_format, run
from .artifacts import columns_of, fields_option

if TYPE_CHECKING:
    from ..client import Client

sweeps_app = new_app("List a project's sweeps.")

COLUMNS = ("id", "state", "method", "metric", "run_count", "best_run")
ALL = ("entity", "project", "id", "display_name", "state", "method", "metric", "goal", "run_count",
       "expected_run_count", "best_value", "best_run", "created_at", "updated_at", "path")


@sweeps_app.command("list", epilog=examples("wbgql --local sweeps list demo/vision",
                                            "wbgql sweeps list ENTITY/PROJECT -f json",
                                            "wbgql sweeps list ENTITY/PROJECT --fields id,state,best_value -f csv"))
def list_sweeps(path: PathArg, fields: Annotated[Optional[str], fields_option(ALL)] = None,
                fmt: FormatOpt = None) -> None:
    """Sweeps of a project, newest first: id, state, method, metric (and its goal), run count
    and best run. Their runs: wbgql runs list PATH --sweep ID."""
    from .runs import make_writer

    with errors():
        out = out_format(fmt)
        columns = columns_of(fields, COLUMNS if out == Format.table else ALL, ALL, "sweep")

        async def work(client: "Client") -> None:
            writer = make_writer(out, columns)
            async for sweep in client.sweeps(path, best_run="best_run" in columns):
                metric = sweep.metric
                if metric and out == Format.table:
                    metric += " (max)" if sweep.goal == "maximize" else " (min)"
                writer.write({"entity": sweep.entity, "project": sweep.project, "id": sweep.id,
                              "display_name": sweep.display_name, "state": sweep.state, "method": sweep.method,
                              "metric": metric, "goal": sweep.goal, "run_count": sweep.run_count,
                              "expected_run_count": sweep.expected_run_count, "best_value": sweep.best_value,
                              "best_run": sweep.best_run, "created_at": sweep.created_at,
                              "updated_at": sweep.updated_at, "path": sweep.path})
            writer.close()

        run(work)
