"""Every document in queries/ is valid against schema.graphql and named after its file."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from graphql import build_schema, parse, validate

from wandb_gql import documents


def test_every_document_validates_against_the_schema():
    schema = build_schema(documents.schema_text())
    docs = documents.documents()
    assert docs, "queries/ holds no documents"
    for name, text in docs.items():
        errors = validate(schema, parse(text))
        assert not errors, f"{name}: {[e.message for e in errors]}"


def test_file_names_are_snake_case_of_the_operation():
    for path in sorted((documents.data_dir() / "queries").glob("*.graphql")):
        text = path.read_text()
        op = parse(text).definitions
        assert len(op) == 1, f"{path.name}: one operation per file"
        assert documents.snake_case(op[0].name.value) == path.stem


def test_server_schema_has_a_resolver_for_every_run_field():
    from wandb_gql.server.resolvers import executable_schema

    schema = executable_schema()
    for type_name in ("Query", "Mutation", "Run"):
        for fname, field in schema.type_map[type_name].fields.items():
            assert field.resolve is not None, f"{type_name}.{fname} has no resolver"


def test_an_installed_package_carries_its_graphql():
    """From a wheel (CI installs one), schema.graphql and queries/ come from inside the package."""
    import wandb_gql

    package = Path(wandb_gql.__file__).resolve().parent
    repo_src = Path(__file__).resolve().parents[2] / "src"
    if repo_src in package.parents:
        # Editable install: build the wheel and look inside it instead.
        with tempfile.TemporaryDirectory() as out:
            subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                            "-w", out, str(repo_src.parent)], check=True)
            wheel = next(Path(out).glob("wandb_gql-*.whl"))
            names = set(zipfile.ZipFile(wheel).namelist())
        assert "wandb_gql/_graphql/schema.graphql" in names
        assert "wandb_gql/py.typed" in names
        assert {f"wandb_gql/_graphql/queries/{documents.snake_case(op)}.graphql"
                for op in documents.documents()} <= names
    else:
        assert documents.data_dir() == package / "_graphql"
        assert (package / "py.typed").is_file()
        assert set(documents.documents()) >= {"ProjectRuns", "DeleteRun", "UndeleteRuns"}
