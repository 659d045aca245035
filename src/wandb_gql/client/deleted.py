"""Soft-deleted runs, where the server can list them (the local server can; W&B cannot)."""

from __future__ import annotations

from .projects import ProjectsMixin


class DeletedRunsMixin(ProjectsMixin):
    pass
