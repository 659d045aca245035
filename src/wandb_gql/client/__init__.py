"""Client: one async method per operation family, each backed by documents in queries/.

    async with Client() as client:      # settings: flag > env > wandb's settings file > default
        async for run in client.runs("demo/vision", where="state = crashed", summary_keys=["loss"]):
            print(run.name, run.summary["loss"])

The parts: `_base` (settings, transport seam, lifecycle), `_paging` (the one paginator),
`projects` (viewer, paths, projects), `runs` (runs and their mutations), `deleted` (soft-deleted
runs, where the server can list them), `lifecycle` (moving runs, re-creating them from a backup),
`artifacts` (versions, lineage), `history` (the metrics of many runs, streamed), `write`
(create_run, log, set_summary, finish: runs written without the SDK), `sweeps` (a project's
sweeps and their best runs). Mutations act on explicit
run ids, resolved first; bulk calls return one Outcome per id.
"""

from __future__ import annotations

from ._base import MAX_PAGE, UNSET
from .artifacts import ArtifactsMixin
from .deleted import DeletedRunsMixin
from .history import HistoryMixin
from .lifecycle import LifecycleMixin
from .runs import OPTIONAL_FIELDS, RunsMixin
from .sweeps import Sweep, SweepsMixin
from .write import RunExistsError, WriteMixin


class Client(HistoryMixin, WriteMixin, RunsMixin, DeletedRunsMixin, LifecycleMixin, ArtifactsMixin, SweepsMixin):
    """The async client. `Client(transport=...)` takes any GraphQLTransport (a fake in tests);
    `on_retry(operation, error, delay)` is called before each wait between attempts."""


__all__ = ["Client", "UNSET", "MAX_PAGE", "OPTIONAL_FIELDS", "RunExistsError", "Sweep"]
