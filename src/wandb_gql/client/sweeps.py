"""A project's sweeps: state, method, metric, run counts and the best run by the sweep's metric.

The sweep config arrives as the YAML text W&B stores; it is read with PyYAML when installed
(the wandb SDK brings it) and as JSON otherwise, so without PyYAML a YAML config's method and
metric come from the server's `method` field only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import Any, AsyncIterator, Mapping

from ._paging import paginate
from .projects import ProjectsMixin

SWEEPS_PAGE = 100


@dataclass(frozen=True)
class Sweep:
    entity: str
    project: str
    id: str  # the sweep's name, as in wandb.agent(sweep_id) and runs' sweep field
    display_name: str | None
    state: str
    method: str
    metric: str | None
    goal: str | None  # minimize | maximize
    run_count: int
    expected_run_count: int | None
    best_value: float | None  # the best value of the metric (W&B's bestLoss)
    created_at: str | None
    updated_at: str | None
    config: dict[str, Any] = field(default_factory=dict, repr=False)
    best_run: str | None = None  # filled by sweeps(best_run=True): see SweepsMixin._best_run

    @property
    def path(self) -> str:
        return f"{self.entity}/{self.project}/{self.id}"


def read_config(text: str | None) -> dict[str, Any]:
    if not text:
        return {}
    try:  # JSON first: PyYAML (YAML 1.1) reads JSON's 1e-05 as a string
        loaded = json.loads(text)
    except ValueError:
        try:
            import yaml
        except ImportError:
            return {}
        try:
            loaded = yaml.safe_load(text)
        except yaml.YAMLError:
            return {}
    return loaded if isinstance(loaded, dict) else {}


def _sweep(node: Mapping[str, Any], entity: str, project: str) -> Sweep:
    config = read_config(node.get("config"))
    found = config.get("metric")
    metric: dict[str, Any] = found if isinstance(found, dict) else {}
    return Sweep(entity=entity, project=project, id=node["name"], display_name=node.get("displayName"),
                 state=node["state"], method=node.get("method") or config.get("method", ""),
                 metric=metric.get("name"), goal=metric.get("goal", "minimize") if metric.get("name") else None,
                 run_count=node.get("runCount") or 0, expected_run_count=node.get("runCountExpected"),
                 best_value=node.get("bestLoss"), created_at=node.get("createdAt"),
                 updated_at=node.get("updatedAt"), config=config)


class SweepsMixin(ProjectsMixin):
    async def sweeps(self, path: str, *, best_run: bool = False) -> AsyncIterator[Sweep]:
        """Every sweep of a project (ENTITY/PROJECT), newest first; with `best_run`, each carries
        the name of its best run by its metric (one more request per sweep with runs)."""
        entity, project = await self.project_path(path)

        async def fetch(after: str | None, first: int) -> Mapping[str, Any]:
            data = await self._execute("ProjectSweeps", {"entity": entity, "project": project,
                                                         "first": first, "after": after})
            if data.get("project") is None:
                raise await self._missing_project(entity, project)
            return data

        def connection(data: Mapping[str, Any]) -> Mapping[str, Any]:
            found: Mapping[str, Any] = data["project"]["sweeps"]
            return found

        async for batch in paginate(fetch, connection, per_page=SWEEPS_PAGE, what="ProjectSweeps"):
            for node in batch:
                sweep = _sweep(node, entity, project)
                if best_run and sweep.run_count:
                    sweep = replace(sweep, best_run=await self._best_run(sweep))
                yield sweep

    async def _best_run(self, sweep: Sweep) -> str | None:
        """The first run whose metric equals the sweep's best value; without a metric, the newest
        run. Not an ascending order by the metric (wandb's Sweep.best_run): runs that never logged
        it would come first."""
        filters: dict[str, Any] = {"sweep": sweep.id}
        if sweep.metric:
            if sweep.best_value is None:
                return None
            filters = {"$and": [filters, {f"summary_metrics.{sweep.metric}": sweep.best_value}]}
        order = "+created_at" if sweep.metric else "-created_at"
        data = await self._execute("SweepBestRun", {
            "entity": sweep.entity, "project": sweep.project, "order": order, "filters": json.dumps(filters)})
        edges = (data.get("project") or {}).get("runs", {}).get("edges") or []
        return edges[0]["node"]["name"] if edges else None
