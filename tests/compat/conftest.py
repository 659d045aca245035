"""Fixtures for the real-SDK compatibility tests: an isolated wandb environment per module.

The `wandb` SDK reads its settings from the environment and keeps a process-wide singleton
(with the session's credentials and the wandb-core service). Each module gets a clean slate:
every WANDB_* variable of the caller is removed, ours point at the session's local server and
at temporary directories, the singleton is torn down before and after, and the environment is
restored afterwards. `import wandb` is slow-ish, so it happens here and not at collection time.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any, Iterator

import pytest


@pytest.fixture(scope="module")
def wb(server, tmp_path_factory) -> Iterator[Any]:
    """The `wandb` module, configured for the local server (WANDB_MODE=online)."""
    base: Path = tmp_path_factory.mktemp("wandb-sdk")
    dirs = {name: base / name for name in ("dir", "cache", "config", "data")}
    for path in dirs.values():
        path.mkdir()
    with pytest.MonkeyPatch.context() as mp:
        for key in list(os.environ):
            if key.startswith("WANDB_"):
                mp.delenv(key)
        env = {
            "WANDB_BASE_URL": server.base_url,
            "WANDB_API_KEY": server.api_key,
            "WANDB_DIR": str(dirs["dir"]),
            "WANDB_CACHE_DIR": str(dirs["cache"]),
            "WANDB_CONFIG_DIR": str(dirs["config"]),
            "WANDB_DATA_DIR": str(dirs["data"]),
            "WANDB_SILENT": "true",
            "WANDB_ERROR_REPORTING": "false",
            "WANDB_CONSOLE": "off",
            "WANDB_MODE": "online",
            "WANDB_DISABLE_GIT": "true",
            # A login with an explicit key may write a netrc file: never the user's own.
            "NETRC": str(base / "netrc"),
        }
        for key, value in env.items():
            mp.setenv(key, value)
        import wandb

        wandb.teardown()
        try:
            yield wandb
        finally:
            wandb.teardown()


@pytest.fixture
def project_name() -> str:
    """A project of the test's own, so tests never see each other's runs."""
    return f"compat-{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="module")
def viewer_entity(api) -> str:
    return api.ok("{ viewer { entity } }")["viewer"]["entity"]
