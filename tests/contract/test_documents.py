"""Every document in queries/ is valid against schema.graphql and named after its file."""

from __future__ import annotations

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
