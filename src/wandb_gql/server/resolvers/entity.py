"""Entity fields beyond the node itself (user.entity_node builds that)."""

from __future__ import annotations

from typing import Any, Callable

from .project import projects
from .storage import storage_tree

ENTITY_FIELDS: dict[str, Callable[..., Any]] = {
    "projects": lambda e, i, after=None, first=None, **_: projects(i, e["name"], after, first),
    "user": lambda _e, _i: None,
    "storageTree": storage_tree,
}
