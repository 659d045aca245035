"""The user's cleanup settings: which tags protect a run when no command says otherwise.

    # ~/.config/wandb-gql/config.toml  ($WBGQL_CONFIG, else $XDG_CONFIG_HOME/wandb-gql/config.toml)
    [cleanup]
    protect_tags = ["keep", "protected", "paper"]

Without the file (or the key) the protected tags are DEFAULT_PROTECT_TAGS; `--protect-tag` and a
policy's `protect_tags` add to or replace what is read here.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from ..errors import UsageError

DEFAULT_PROTECT_TAGS = ("keep", "protected")


def config_path() -> Path:
    explicit = os.environ.get("WBGQL_CONFIG")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "wandb-gql" / "config.toml"


def load_toml(path: Path) -> dict[str, Any]:
    """A TOML file as a dict; a file that cannot be read or parsed is a UsageError naming it."""
    if sys.version_info >= (3, 11):
        import tomllib as toml
    else:  # the runtime dependency on Python 3.10
        import tomli as toml
    try:
        with open(path, "rb") as f:
            return toml.load(f)
    except OSError as e:
        raise UsageError(f"cannot read {path}: {e.strerror or e}") from None
    except toml.TOMLDecodeError as e:
        raise UsageError(f"{path} is not valid TOML: {e}") from None


def protected_tags() -> tuple[str, ...]:
    """The tags that keep a run out of every selection, from the config file if it says."""
    path = config_path()
    if not path.is_file():
        return DEFAULT_PROTECT_TAGS
    tags = load_toml(path).get("cleanup", {}).get("protect_tags", DEFAULT_PROTECT_TAGS)
    if not isinstance(tags, (list, tuple)) or not all(isinstance(t, str) and t for t in tags):
        raise UsageError(f"{path}: [cleanup] protect_tags must be a list of tag names, like [\"keep\", \"protected\"]")
    return tuple(dict.fromkeys(tags))
