"""What every resolver reads from `info.context`: the store, who asks, and per-request caches.

Access control lives here, once: a key's user reads and writes only its entities (its own and its
teams'). Lookups by entity name go through `find_project` / `require_project` / `ensure_project`,
lookups by id (runs, artifacts) through `visible`; an entity the user is not in answers exactly as
one that does not exist (null, or "entity 'x' not found"), as W&B does not reveal other entities.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from .. import tokens
from ..store import BadInput, Store, Viewer
from .user import user_node


@dataclass
class Context:
    store: Store
    viewer: Viewer
    base_url: str
    retention: timedelta = timedelta(days=7)  # how long a deleted run stays before the purge
    url_ttl: float = tokens.DEFAULT_TTL  # seconds a storage URL handed out stays valid
    _projects: dict[int, sqlite3.Row] = field(default_factory=dict)
    _users: dict[str | None, dict[str, Any] | None] = field(default_factory=dict)
    _entities: frozenset[str] | None = None

    @property
    def entities(self) -> frozenset[str]:
        """The entities the viewer reads and writes (looked up once per request)."""
        if self._entities is None:
            self._entities = self.store.member_entities(self.viewer.id)
        return self._entities

    def require_entity(self, entity: str | None) -> str:
        name = entity or self.viewer.entity
        if name not in self.entities:
            raise BadInput(f"entity {name!r} not found: user {self.viewer.username!r} can use "
                           f"{', '.join(sorted(self.entities))}")
        return name

    def find_project(self, entity: str | None, name: str) -> sqlite3.Row | None:
        entity = entity or self.viewer.entity
        return self.store.project(entity, name) if entity in self.entities else None

    def require_project(self, entity: str | None, name: str | None) -> sqlite3.Row:
        if entity and name:
            self.require_entity(entity)
        return self.store.require_project(entity, name)

    def ensure_project(self, entity: str | None, name: str) -> sqlite3.Row:
        """A project of the viewer's entity (its default if None), created on first use."""
        return self.store.ensure_project(self.require_entity(entity), name, self.viewer.id)

    def visible(self, project_id: int) -> bool:
        project = self.project(project_id)
        return project is not None and project["entity_name"] in self.entities

    def run_by_storage_id(self, value: str) -> sqlite3.Row | None:
        row = self.store.run_by_storage_id(value)
        return row if row is not None and self.visible(row["project_id"]) else None

    def artifact(self, artifact_id: int) -> sqlite3.Row | None:
        row = self.store.artifact(artifact_id)
        return row if row is not None and self.visible(row["project_id"]) else None

    def project(self, project_id: int) -> sqlite3.Row:
        row = self._projects.get(project_id)
        if row is None:
            row = self._projects[project_id] = self.store.project_by_id(project_id)
        return row

    def user(self, username: str | None) -> dict[str, Any] | None:
        # A page of 1000 runs has a handful of distinct users: look each up once per request.
        if username not in self._users:
            self._users[username] = user_node(self.store, username)
        return self._users[username]


def ctx(info: Any) -> Context:
    context: Context = info.context
    return context
