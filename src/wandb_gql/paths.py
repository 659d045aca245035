"""Reading the paths people paste: `entity/project`, `project`, `entity/project/run`,
`entity/project/runs/run`, and W&B URLs copied from the browser
(`https://wandb.ai/entity/project/runs/id?nw=...`, `.../workspace`, trailing slashes).

Parsing is pure: a part left out (the entity) comes back as None and the client fills in the
default entity. Anything that cannot be read is a UsageError naming the accepted forms, before
any request is sent.
"""

from __future__ import annotations

from typing import NamedTuple
from urllib.parse import urlsplit

from .errors import UsageError

PROJECT_FORMS = "ENTITY/PROJECT, PROJECT (default entity) or a W&B URL such as https://wandb.ai/ENTITY/PROJECT"
RUN_FORMS = ("ENTITY/PROJECT/RUN_ID, ENTITY/PROJECT/runs/RUN_ID, PROJECT/RUN_ID (default entity) "
             "or a W&B URL such as https://wandb.ai/ENTITY/PROJECT/runs/RUN_ID")

# Tabs of the web app that follow a project or run in a URL; they do not change what is meant.
_PROJECT_TABS = frozenset({"workspace", "overview", "table", "runs"})
_RUN_TABS = frozenset({"overview", "workspace", "logs", "files", "artifacts", "system", "charts", "code",
                       "model"})
# Hosts written without a scheme are still URLs, not an entity called "wandb.ai".
_WANDB_HOSTS = frozenset({"wandb.ai", "www.wandb.ai", "api.wandb.ai"})


class ProjectPath(NamedTuple):
    entity: str | None  # None: the default entity
    project: str

    def __str__(self) -> str:
        return f"{self.entity}/{self.project}" if self.entity else self.project


class RunPath(NamedTuple):
    entity: str | None  # None: the default entity
    project: str
    run: str  # the run id (its `name`), not the display name

    def __str__(self) -> str:
        return "/".join(p for p in (self.entity, self.project, self.run) if p)


def _parts(text: object, what: str, forms: str) -> tuple[list[str], bool]:
    """The path's segments, and whether it came as a URL."""
    if not isinstance(text, str) or not text.strip():
        raise UsageError(f"empty {what} path", hint=f"expected {forms}")
    text = text.strip()
    if text.split("/", 1)[0] in _WANDB_HOSTS:
        text = "https://" + text
    is_url = "://" in text
    if is_url:
        parsed = urlsplit(text)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise UsageError(f"cannot read {what} path {text!r}", hint=f"expected {forms}")
        # Browsers add slashes and query strings (?nw=...); neither is part of the path.
        parts = parsed.path.strip("/").split("/") if parsed.path.strip("/") else []
    else:
        parts = text.split("/")
    if not parts or not all(parts):
        raise UsageError(f"cannot read {what} path {text!r}", hint=f"expected {forms}")
    return parts, is_url


def parse_project_path(text: str) -> ProjectPath:
    """`entity/project`, `project`, or a project URL (any web-app tab after it)."""
    parts, is_url = _parts(text, "project", PROJECT_FORMS)
    if is_url:
        if len(parts) == 3 and parts[2] in _PROJECT_TABS:
            parts = parts[:2]
        if len(parts) == 2:
            return ProjectPath(parts[0], parts[1])
    elif len(parts) == 1:
        return ProjectPath(None, parts[0])
    elif len(parts) == 2:
        return ProjectPath(parts[0], parts[1])
    raise UsageError(f"cannot read project path {text!r}", hint=f"expected {PROJECT_FORMS}")


def parse_run_path(text: str) -> RunPath:
    """`entity/project/run`, `entity/project/runs/run`, `project/run`, or a run URL."""
    parts, is_url = _parts(text, "run", RUN_FORMS)
    if is_url:
        if len(parts) == 5 and parts[2] == "runs" and parts[4] in _RUN_TABS:
            parts = parts[:4]
        if len(parts) == 4 and parts[2] == "runs":
            return RunPath(parts[0], parts[1], parts[3])
    elif len(parts) == 2:
        return RunPath(None, parts[0], parts[1])
    elif len(parts) == 3:
        return RunPath(*parts)
    elif len(parts) == 4 and parts[2] == "runs":
        return RunPath(parts[0], parts[1], parts[3])
    raise UsageError(f"cannot read run path {text!r}", hint=f"expected {RUN_FORMS}")


__all__ = ["ProjectPath", "RunPath", "parse_project_path", "parse_run_path", "PROJECT_FORMS", "RUN_FORMS"]
