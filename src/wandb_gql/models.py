"""What the API returns, as plain classes, and the one declaration of a run's fields.

Each field of `Run` is declared once, below, with everything that hangs off it: its GraphQL
field (`wire`), W&B's filter/order key, the local server's column, whether a listing may leave
it out, and its kind. The `--where` fields, `--order`/`--fields` names, table and CSV headers,
JSON keys, ProjectRuns' `$with<Field>` flags and the server's field and filter maps are all
derived from `RUN_FIELDS`; the attribute name is the one name users see everywhere.

`Run` is a slotted dataclass, not a pydantic model: it is built once per listed run, and at
10,000 runs a page validation per run was most of the client's CPU. config/summary stay the raw
JSON strings the server sent until someone reads them.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass, field, fields, replace
from typing import Any, Mapping

from .errors import NotFetchedError


@dataclass(frozen=True)
class RunField:
    name: str            # the one name: Run attribute, --where/--order/--fields, headers, JSON keys
    wire: str            # the GraphQL field of Run
    filter: str | None   # W&B's filter and order key (None: W&B cannot filter on it)
    column: str | None   # the local server's `runs` column (None: computed)
    kind: str            # text | time | tags | int | user (user { username }) | id
    optional: bool       # a listing may leave it out (ProjectRuns' $with<Wire> flag)
    nullable: bool

    @property
    def flag(self) -> str:
        """ProjectRuns' include variable for this field, e.g. withDisplayName."""
        return "with" + self.wire[0].upper() + self.wire[1:]


def _spec(wire: str, *, filter: str | None = None, column: str | None = None, kind: str = "text",
          optional: bool = True, nullable: bool = True) -> Any:
    spec = RunField("", wire, filter, column, kind, optional, nullable)
    return field(default=None, metadata={"run_field": spec})


def _internal(repr: bool = False) -> Any:
    return field(default=None, repr=repr, compare=False)


class Fetched(dict[str, Any]):
    """config or summary of one run: a dict that knows which keys the query asked for, so a
    missing key that was never fetched says how to fetch it instead of looking absent."""

    __slots__ = ("what", "asked")

    def __init__(self, what: str, values: Mapping[str, Any], asked: tuple[str, ...] | None) -> None:
        dict.__init__(self, values)  # not super(): built once per run read, the lookup shows
        self.what = what      # "config" | "summary"
        self.asked = asked    # None: every key was fetched

    def __missing__(self, key: str) -> Any:
        if self.asked is not None and key not in self.asked:
            option = "config_keys" if self.what == "config" else "summary_keys"
            raise NotFetchedError(f"{self.what} key {key!r} was not fetched",
                                  hint=f"ask for it: {option}=[{key!r}, ...] (or {option}=True for every key)")
        raise KeyError(key)


@dataclass(eq=False, slots=True)
class Run:
    id: str | None = _spec("id", column=None, kind="id", optional=False, nullable=False)  # W&B's storage id
    name: str | None = _spec("name", filter="name", column="name", optional=False, nullable=False)  # the run id
    display_name: str | None = _spec("displayName", filter="displayName", column="display_name")
    state: str | None = _spec("state", filter="state", column="state", nullable=False)
    tags: list[str] | None = _spec("tags", filter="tags", column="tags", kind="tags", nullable=False)
    group: str | None = _spec("group", filter="group", column="group_name")
    job_type: str | None = _spec("jobType", filter="jobType", column="job_type")
    sweep: str | None = _spec("sweepName", filter="sweep", column="sweep_name")
    notes: str | None = _spec("notes", column="notes")
    description: str | None = _spec("description", column="description")
    created_at: str | None = _spec("createdAt", filter="createdAt", column="created_at", kind="time",
                                   nullable=False)
    heartbeat_at: str | None = _spec("heartbeatAt", filter="heartbeatAt", column="heartbeat_at", kind="time")
    updated_at: str | None = _spec("updatedAt", filter="updatedAt", column="updated_at", kind="time",
                                   nullable=False)
    history_line_count: int | None = _spec("historyLineCount", column="history_line_count", kind="int")
    user: str | None = _spec("user", filter="username", column="username", kind="user")
    # What the server sent for config/summary/systemMetrics, undecoded (None: not fetched).
    config_json: str | None = _internal()
    summary_json: str | None = _internal()
    system_metrics_json: str | None = _internal()
    entity: str = ""
    project: str = ""
    base_url: str = field(default="", repr=False)
    # Which config/summary keys were asked for (None: all); which fields came at all.
    config_keys: tuple[str, ...] | None = _internal()
    summary_keys: tuple[str, ...] | None = _internal()
    fetched: frozenset[str] = field(default=frozenset(), repr=False, compare=False)
    _config: Fetched | None = _internal()
    _summary: Fetched | None = _internal()

    @classmethod
    def from_node(cls, node: Mapping[str, Any], entity: str = "", project: str = "", base_url: str = "", *,
                  config_keys: tuple[str, ...] | None = None, summary_keys: tuple[str, ...] | None = None,
                  fetched: frozenset[str] | None = None) -> "Run":
        """A run from a GraphQL Run node (W&B's field names), as ProjectRuns/ProjectRun return it.
        `fetched`: the fields the query asked for, when the caller knows (a listing does: every
        node of it has the same shape); else read off the node."""
        # Positional, in declaration order, with no per-run dict: this runs once per listed run.
        get = node.get
        values: list[Any] | None = None
        if fetched is not None and len(fetched) == len(_WIRES):
            try:
                values = list(_EVERY_WIRE(node))  # every field asked, so every key is there: one C call
            except KeyError:  # a server that left one out after all
                pass
        if values is None:
            values = [get(wire) for wire in _WIRES]
        user = values[_USER]
        if user.__class__ is dict:
            values[_USER] = user.get("username")
        if fetched is None:
            fetched = frozenset(name for name, wire in _FROM_WIRE if wire in node)
        values += (get("config"), get("summaryMetrics"), get("systemMetrics"), entity, project, base_url,
                   config_keys, summary_keys, fetched)
        return cls(*values)

    @property
    def config(self) -> Fetched:
        """Config values, unwrapped from W&B's {"key": {"value": v}} storage."""
        if self._config is None:
            raw = _loads(self.config_json)
            self._config = Fetched("config", {k: (v["value"] if isinstance(v, dict) and "value" in v else v)
                                              for k, v in raw.items()},
                                   self.config_keys if self.config_json is not None else ())
        return self._config

    @property
    def summary(self) -> Fetched:
        summary = self._summary
        if summary is None:
            text = self.summary_json
            summary = self._summary = Fetched("summary", _loads(text), self.summary_keys if text is not None else ())
        return summary

    @property
    def system_metrics(self) -> dict[str, Any]:
        return _loads(self.system_metrics_json)

    @property
    def path(self) -> str:
        return f"{self.entity}/{self.project}/{self.name}"

    @property
    def url(self) -> str:
        app = self.base_url.replace("://api.", "://", 1) if "://api." in self.base_url else self.base_url
        return f"{app}/{self.entity}/{self.project}/runs/{self.name}"

    def to_dict(self) -> dict[str, Any]:
        """What was fetched, under the one vocabulary (snake_case names; config and summary
        nested), plus path: what `--format json` prints."""
        out: dict[str, Any] = {f.name: getattr(self, f.name) for f in RUN_FIELDS if f.name in self.fetched}
        out["path"] = self.path
        if self.config_json is not None:
            out["config"] = dict(self.config)
        if self.summary_json is not None:
            out["summary"] = dict(self.summary)
        if self.system_metrics_json is not None:
            out["system_metrics"] = self.system_metrics
        return out

    def value(self, column: str) -> Any:
        """A column by its one name: a field, 'path', 'url', 'config.<k>' or 'summary.<k>'
        (None where the run has no such key)."""
        head, _, key = column.partition(".")
        if key and head == "config":
            return self.config.get(key)
        if key and head == "summary":
            return self.summary.get(key)
        if column in _NAMES or column in ("path", "url", "entity", "project"):
            return getattr(self, column)
        raise KeyError(column)


_json_loads: Any = None  # orjson.loads, imported on first use: the CLI imports this module for --help


def _loads(text: str | None) -> dict[str, Any]:
    global _json_loads
    if not text:
        return {}
    if _json_loads is None:
        import orjson

        _json_loads = orjson.loads
    value = _json_loads(text)
    return value if value.__class__ is dict else {}


RUN_FIELDS: tuple[RunField, ...] = tuple(
    replace(f.metadata["run_field"], name=f.name) for f in fields(Run) if "run_field" in f.metadata)
_FROM_WIRE = tuple((f.name, f.wire) for f in RUN_FIELDS)
_WIRES = tuple(f.wire for f in RUN_FIELDS)
_EVERY_WIRE = operator.itemgetter(*_WIRES)
_USER = next(i for i, f in enumerate(RUN_FIELDS) if f.kind == "user")
# from_node passes the run fields positionally, then these, in this order.
assert [f.name for f in fields(Run)][:len(RUN_FIELDS) + 9] == [*(f.name for f in RUN_FIELDS),
    "config_json", "summary_json", "system_metrics_json", "entity", "project", "base_url", "config_keys",
    "summary_keys", "fetched"], "Run's field order changed: update Run.from_node"
_NAMES = frozenset(f.name for f in RUN_FIELDS)


def run_field(name: str) -> RunField:
    """The field called `name` (KeyError if there is none)."""
    for f in RUN_FIELDS:
        if f.name == name:
            return f
    raise KeyError(name)


FAILED_STATUSES = frozenset({"failed", "not_found", "unknown"})


@dataclass(frozen=True, slots=True)
class Outcome:
    """What happened to one run in a bulk operation; one failure never hides the others."""

    run_id: str
    # deleted | restored | updated | moved | unchanged (already in the target state: success) |
    # skipped (drift: left the selection, started running, gained a protected tag; error says why) |
    # not_found | failed | unknown (the response was lost and a re-check could not tell)
    status: str
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status not in FAILED_STATUSES


@dataclass(frozen=True, slots=True)
class Viewer:
    """Who the API key belongs to (what `wbgql whoami` shows)."""

    username: str
    entity: str | None  # the default entity: where `project` without an entity lives
    email: str | None = None
    teams: list[str] = field(default_factory=list)
    admin: bool = False

    @classmethod
    def from_node(cls, node: Mapping[str, Any]) -> "Viewer":
        edges = (node.get("teams") or {}).get("edges") or []
        teams = [e["node"]["name"] for e in edges if e and e.get("node")]
        return cls(username=node.get("username") or node.get("name") or "", entity=node.get("entity"),
                   email=node.get("email"), teams=teams, admin=bool(node.get("admin")))

    def to_dict(self) -> dict[str, Any]:
        return {"username": self.username, "entity": self.entity, "email": self.email,
                "teams": list(self.teams), "admin": self.admin}


@dataclass(frozen=True, slots=True)
class Project:
    """One project of an entity, as `projects list` shows it."""

    entity: str
    name: str
    run_count: int | None = None
    last_active: str | None = None  # W&B time (UTC, ISO 8601); None: no run ever
    created_at: str | None = None

    @classmethod
    def from_node(cls, node: Mapping[str, Any], entity: str = "") -> "Project":
        return cls(entity=node.get("entityName") or entity, name=node["name"], run_count=node.get("runCount"),
                   last_active=node.get("lastActive"), created_at=node.get("createdAt"))

    @property
    def path(self) -> str:
        return f"{self.entity}/{self.name}"

    def to_dict(self) -> dict[str, Any]:
        return {"entity": self.entity, "name": self.name, "path": self.path, "run_count": self.run_count,
                "last_active": self.last_active, "created_at": self.created_at}


# The one vocabulary of an artifact version: attribute names are `--fields` names, table and CSV
# headers and JSON keys.
ARTIFACT_FIELDS = ("entity", "project", "collection", "type", "version", "aliases", "size", "file_count",
                   "created_at", "state", "digest", "created_by", "used_by_count")


@dataclass(frozen=True, slots=True)
class Artifact:
    """One artifact version (COLLECTION:vN in ENTITY/PROJECT)."""

    entity: str
    project: str
    collection: str
    type: str
    version: str                 # "v3"
    aliases: list[str] = field(default_factory=list)
    size: int | None = None      # bytes of its files (shared bytes counted in every version)
    file_count: int | None = None
    created_at: str | None = None
    state: str | None = None
    digest: str | None = None
    created_by: str | None = None  # the producing run's id; None: logged by a user, not a run
    used_by_count: int | None = None
    id: str = field(default="", repr=False)  # W&B's storage id
    created_by_deleted: bool = field(default=False, repr=False)  # its producing run is deleted
    created_by_project: str = field(default="", repr=False)  # ENTITY/PROJECT of the producing run

    @classmethod
    def from_node(cls, node: Mapping[str, Any], entity: str, project: str, collection: str | None = None,
                  type: str | None = None) -> "Artifact":
        creator = node.get("createdBy") or {}
        run = creator.get("name") if creator.get("__typename", "Run") == "Run" else None
        where = creator.get("project") or {}
        sequence = node.get("artifactSequence") or {}
        home = sequence.get("project") or {}
        return cls(entity=home.get("entityName") or entity, project=home.get("name") or project,
                   collection=collection or sequence.get("name") or "",
                   type=type or (node.get("artifactType") or {}).get("name") or "",
                   version=f"v{node['versionIndex']}" if node.get("versionIndex") is not None else "",
                   aliases=[a["alias"] for a in node.get("aliases") or []], size=node.get("size"),
                   file_count=node.get("fileCount"), created_at=node.get("createdAt"), state=node.get("state"),
                   digest=node.get("digest"), created_by=run, used_by_count=node.get("usedCount"),
                   id=node.get("id") or "", created_by_deleted=bool(creator.get("deletedAt")),
                   created_by_project=f"{where['entityName']}/{where['name']}" if where else "")

    @property
    def name(self) -> str:
        """COLLECTION:vN"""
        return f"{self.collection}:{self.version}"

    @property
    def path(self) -> str:
        """ENTITY/PROJECT/COLLECTION:vN, what `artifact()` and `lineage()` take."""
        return f"{self.entity}/{self.project}/{self.name}"

    def value(self, column: str) -> Any:
        if column in ARTIFACT_FIELDS or column in ("name", "path"):
            return getattr(self, column)
        raise KeyError(column)

    def to_dict(self) -> dict[str, Any]:
        out = {name: getattr(self, name) for name in ARTIFACT_FIELDS}
        out["aliases"] = list(self.aliases)
        out["path"] = self.path
        return out


@dataclass(frozen=True, slots=True)
class Lineage:
    """An artifact version, the run that logged it, the runs that used it, and (to the depth
    asked) the lineage of each artifact its producing run used."""

    artifact: Artifact
    created_by: str | None       # run id
    used_by: list[str]           # run ids: at most the per-node limit lineage() was given
    upstream: list["Lineage"] = field(default_factory=list)
    used_by_count: int | None = None  # every run that used it (None: used_by is all of them)

    @property
    def used_by_omitted(self) -> int:
        """Consuming runs left out of used_by by the per-node limit (the tree's "… N more")."""
        return max(0, (self.used_by_count or 0) - len(self.used_by))

    def graph(self) -> dict[str, list[dict[str, Any]]]:
        """Nodes (artifacts and runs, each once) and edges (run -logged-> artifact,
        artifact -used-> run): what `artifacts lineage -f json` prints. An artifact node's
        `used_by_omitted` counts the consumers left out by the per-node limit."""
        nodes: dict[str, dict[str, Any]] = {}
        edges: list[dict[str, Any]] = []

        def walk(item: Lineage) -> None:
            art = item.artifact
            nodes.setdefault(art.path, {"id": art.path, "kind": "artifact", **art.to_dict(),
                                        "used_by_omitted": item.used_by_omitted})
            if item.created_by:
                run = f"{art.created_by_project or art.entity + '/' + art.project}/{item.created_by}"
                nodes.setdefault(run, {"id": run, "kind": "run", "name": item.created_by,
                                       "deleted": art.created_by_deleted})
                edges.append({"source": run, "target": art.path, "kind": "logged"})
            for consumer in item.used_by:
                run = f"{art.entity}/{art.project}/{consumer}"
                nodes.setdefault(run, {"id": run, "kind": "run", "name": consumer})
                edges.append({"source": art.path, "target": run, "kind": "used"})
            for parent in item.upstream:
                walk(parent)

        walk(self)
        # An edge reached along two paths is one edge.
        unique = list({(e["source"], e["target"], e["kind"]): e for e in edges}.values())
        return {"nodes": list(nodes.values()), "edges": unique}

    def to_dict(self) -> dict[str, Any]:
        return {"artifact": self.artifact.to_dict(), "created_by": self.created_by, "used_by": list(self.used_by),
                "used_by_omitted": self.used_by_omitted, "upstream": [u.to_dict() for u in self.upstream]}
