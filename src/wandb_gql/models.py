"""Pydantic models of what the API returns. Snake_case fields, W&B's names as aliases.

config/summary stay the raw JSON strings the server sent until someone reads them: listing
10,000 runs should not decode 10,000 configs nobody looks at.
"""

from __future__ import annotations

from typing import Any, Callable, Optional

import orjson
from pydantic import AliasPath, BaseModel, ConfigDict, Field


class lazy:
    """Computed on first read, then a plain attribute (functools.cached_property takes a lock
    per read on Python < 3.12, which shows when listing 10,000 runs)."""

    def __init__(self, fn: Callable[[Any], Any]) -> None:
        self.fn = fn
        self.name = fn.__name__
        self.__doc__ = fn.__doc__

    def __get__(self, obj: Any, owner: Any = None) -> Any:
        if obj is None:
            return self
        value = obj.__dict__[self.name] = self.fn(obj)
        return value


def parse_path(path: str, parts: int, what: str, default_entity: str | None = None) -> list[str]:
    """'entity/project[/run]' -> its parts; the entity may be left out when a default exists."""
    from .errors import UsageError

    pieces = [p for p in path.strip("/").split("/")]
    if len(pieces) == parts - 1 and default_entity and all(pieces):
        pieces = [default_entity, *pieces]
    if len(pieces) != parts or not all(pieces):
        shape = "ENTITY/PROJECT" + ("/RUN_ID" if parts == 3 else "")
        raise UsageError(f"invalid {what} path {path!r}: expected {shape}")
    return pieces


class Run(BaseModel):
    model_config = ConfigDict(populate_by_name=True, frozen=False, extra="ignore", ignored_types=(lazy,))

    id: str  # W&B's storage id (base64); `name` is the run id users see in URLs
    name: str
    display_name: Optional[str] = Field(None, alias="displayName")
    state: Optional[str] = None
    tags: Optional[list[str]] = None
    group: Optional[str] = None
    job_type: Optional[str] = Field(None, alias="jobType")
    sweep_name: Optional[str] = Field(None, alias="sweepName")
    notes: Optional[str] = None
    description: Optional[str] = None
    created_at: Optional[str] = Field(None, alias="createdAt")
    heartbeat_at: Optional[str] = Field(None, alias="heartbeatAt")
    updated_at: Optional[str] = Field(None, alias="updatedAt")
    history_line_count: Optional[int] = Field(None, alias="historyLineCount")
    user: Optional[str] = Field(None, validation_alias=AliasPath("user", "username"))
    config_json: Optional[str] = Field(None, alias="config", repr=False)
    summary_json: Optional[str] = Field(None, alias="summaryMetrics", repr=False)
    system_metrics_json: Optional[str] = Field(None, alias="systemMetrics", repr=False)
    entity: str = ""
    project: str = ""
    base_url: str = Field("", repr=False)

    @lazy
    def config(self) -> dict[str, Any]:
        """Config values, unwrapped from W&B's {"key": {"value": v}} storage."""
        raw = orjson.loads(self.config_json) if self.config_json else {}
        return {k: (v["value"] if isinstance(v, dict) and "value" in v else v) for k, v in raw.items()}

    @lazy
    def summary(self) -> dict[str, Any]:
        return orjson.loads(self.summary_json) if self.summary_json else {}

    @lazy
    def system_metrics(self) -> dict[str, Any]:
        return orjson.loads(self.system_metrics_json) if self.system_metrics_json else {}

    @property
    def path(self) -> str:
        return f"{self.entity}/{self.project}/{self.name}"

    @property
    def url(self) -> str:
        app = self.base_url.replace("://api.", "://", 1) if "://api." in self.base_url else self.base_url
        return f"{app}/{self.entity}/{self.project}/runs/{self.name}"

    def to_wire(self) -> dict[str, Any]:
        """The run as JSON with GraphQL's names (what --format json prints): what was fetched."""
        present = self.model_fields_set
        out = {wire: getattr(self, attr) for attr, wire in _WIRE_NAMES if attr in present}
        out["path"] = self.path
        if self.config_json is not None:
            out["config"] = self.config
        if self.summary_json is not None:
            out["summaryMetrics"] = self.summary
        if self.system_metrics_json is not None:
            out["systemMetrics"] = self.system_metrics
        return out


_WIRE_NAMES = [(name, field.alias or name) for name, field in Run.model_fields.items()
               if name not in ("config_json", "summary_json", "system_metrics_json", "entity", "project", "base_url")]


class Outcome(BaseModel):
    """What happened to one run in a bulk operation; one failure never hides the others."""

    run_id: str
    status: str  # "deleted" | "restored" | "updated" | "unchanged" | "not_found" | "failed"
    error: Optional[str] = None

    @property
    def ok(self) -> bool:
        return self.status not in ("failed", "not_found")
