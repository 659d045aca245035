"""Artifacts: versions of a project, their lineage, and the runs that logged or used them."""

from __future__ import annotations

from .projects import ProjectsMixin


class ArtifactsMixin(ProjectsMixin):
    pass
