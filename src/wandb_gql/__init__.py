"""wandb-gql: an async, direct GraphQL client for Weights & Biases.

    from wandb_gql import Client
    async with Client() as client:
        async for run in client.runs("entity/project", where="state = finished", summary_keys=["loss"]):
            ...

Attributes are imported on first use, so `import wandb_gql` (and `wbgql --help`) stays fast.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "Client": "client", "UNSET": "client",
    "SyncClient": "sync",
    "Settings": "settings",
    "Run": "models", "Outcome": "models", "Project": "models", "Viewer": "models",
    "Artifact": "models", "Lineage": "models",
    "ProjectPath": "paths", "RunPath": "paths", "parse_project_path": "paths", "parse_run_path": "paths",
    "compile_where": "filters", "compile_order": "filters", "Compiled": "filters", "validate_filters": "filters",
    "lint": "filters", "Lint": "filters", "matches_every_run": "filters", "resolve_filters": "filters",
    "WandbGQLError": "errors", "UsageError": "errors", "ConfigError": "errors", "FilterError": "errors",
    "TransportError": "errors", "HTTPStatusError": "errors", "AuthError": "errors", "NotFoundError": "errors",
    "RateLimitError": "errors", "ServerError": "errors", "GraphQLResponseError": "errors", "PlanError": "errors",
    "ConnectError": "errors", "NotFetchedError": "errors", "PaginationError": "errors",
    "RetryPolicy": "transport", "READ": "transport", "IDEMPOTENT": "transport", "WRITE": "transport",
    "GraphQLTransport": "transport", "Transport": "transport",
}
__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'wandb_gql' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value
