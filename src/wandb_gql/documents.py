"""The GraphQL documents in queries/ and schema.graphql, loaded once, by operation name.

An installed wheel carries them in wandb_gql/_graphql/; a source checkout (editable install)
has them at the repository top level. Documents are sent as loaded text: no AST round trip.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

_OPERATION = re.compile(r"^\s*(query|mutation|subscription)\s+([A-Za-z_][A-Za-z0-9_]*)", re.M)


def data_dir() -> Path:
    here = Path(__file__).resolve().parent
    for candidate in (here / "_graphql", here.parent.parent):
        if (candidate / "schema.graphql").is_file() and (candidate / "queries").is_dir():
            return candidate
    raise FileNotFoundError("wandb_gql cannot find schema.graphql and queries/ (broken install?)")


def schema_text() -> str:
    return (data_dir() / "schema.graphql").read_text(encoding="utf-8")


def snake_case(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()


@lru_cache(maxsize=1)
def documents() -> dict[str, str]:
    """Operation name -> document text, for every queries/*.graphql (one operation per file)."""
    found: dict[str, str] = {}
    for path in sorted((data_dir() / "queries").glob("*.graphql")):
        text = path.read_text(encoding="utf-8")
        names = [m.group(2) for m in _OPERATION.finditer(text)]
        if len(names) != 1 or snake_case(names[0]) != path.stem:
            raise ValueError(f"{path.name}: expected exactly one operation named after the file, found {names}")
        found[names[0]] = text
    return found


def document(name: str) -> str:
    return documents()[name]
