"""Moving runs between projects and re-creating runs from a ledger's backup."""

from __future__ import annotations

from .projects import ProjectsMixin


class LifecycleMixin(ProjectsMixin):
    pass
