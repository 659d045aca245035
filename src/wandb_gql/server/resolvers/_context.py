"""What every resolver reads from `info.context`: the store, who asks, and per-request caches."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from .. import tokens
from ..store import Store, Viewer
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
