"""schema.graphql is a faithful subset of W&B's API as recorded in ../shared/reference.

Rules (reference README): every type, field, argument and input field we declare exists there
with the same kind and type, nullability included. A `guess` or `differs` tag there makes a
mismatch a warning; `nn?`/`lit` accept either nullability; `# local extension` here is exempt.
"""

from __future__ import annotations

import re
import warnings

import pytest
from graphql import (GraphQLInputObjectType, GraphQLInterfaceType, GraphQLObjectType, build_schema,
                     parse)
from graphql.language import FieldDefinitionNode

from tests.conftest import REFERENCE
from wandb_gql import documents

pytestmark = pytest.mark.skipif(
    not (REFERENCE / "wandb-reference.graphql").is_file(),
    reason="../shared/reference/wandb-reference.graphql is absent here (CI has it)")


def _comments(text: str) -> dict[str, str]:
    """'Type', 'Type.field', 'Type.field(arg)' -> the comment on its defining line."""
    lines = text.splitlines()
    out: dict[str, str] = {}
    for definition in parse(text).definitions:
        name = getattr(definition, "name", None)
        if name is None:
            continue
        out[name.value] = _comment(lines, definition.loc.start_token.line)
        for field in getattr(definition, "fields", None) or []:
            key = f"{name.value}.{field.name.value}"
            # A field's type (and its comment) is on its last line when it has arguments.
            out[key] = _comment(lines, field.loc.end_token.line)
            if isinstance(field, FieldDefinitionNode):
                for arg in field.arguments or []:
                    out[f"{key}({arg.name.value})"] = _comment(lines, arg.loc.end_token.line)
    return out


def _comment(lines: list[str], line_no: int) -> str:
    line = lines[line_no - 1]
    return line.split("#", 1)[1] if "#" in line else ""


def _flags(comment: str) -> set[str]:
    return {f.strip().split(":")[0] for f in comment.split(";")[1:]}


def _strip_non_null(type_str: str) -> str:
    return type_str.replace("!", "")


def _check(key: str, ours: str, theirs: str | None, ref_comment: str, our_comment: str,
           failures: list[str], soft: list[str]) -> None:
    if "local extension" in our_comment:
        return
    if theirs is None:
        failures.append(f"{key}: not in the reference (mark it `# local extension` or remove it)")
        return
    if ours == theirs:
        return
    flags = _flags(ref_comment)
    if flags & {"nn?", "lit"} and _strip_non_null(ours) == _strip_non_null(theirs):
        return
    message = f"{key}: ours {ours}, reference {theirs}"
    (soft if flags & {"guess", "differs"} else failures).append(message)


def test_schema_is_a_faithful_subset_of_the_reference():
    ref_text = (REFERENCE / "wandb-reference.graphql").read_text()
    our_text = documents.schema_text()
    ref, ours = build_schema(ref_text), build_schema(our_text)
    ref_notes, our_notes = _comments(ref_text), _comments(our_text)
    failures: list[str] = []
    soft: list[str] = []
    for name, our_type in ours.type_map.items():
        if name.startswith("__") or name in ("String", "Int", "Float", "Boolean", "ID"):
            continue
        if "local extension" in our_notes.get(name, ""):
            continue
        ref_type = ref.type_map.get(name)
        if ref_type is None:
            failures.append(f"{name}: type not in the reference")
            continue
        if type(ref_type) is not type(our_type):
            failures.append(f"{name}: kind {type(our_type).__name__}, reference {type(ref_type).__name__}")
            continue
        if not isinstance(our_type, (GraphQLObjectType, GraphQLInputObjectType, GraphQLInterfaceType)):
            continue
        for fname, field in our_type.fields.items():
            key = f"{name}.{fname}"
            ref_field = ref_type.fields.get(fname)
            _check(key, str(field.type), str(ref_field.type) if ref_field else None,
                   ref_notes.get(key, ""), our_notes.get(key, ""), failures, soft)
            if ref_field is None or isinstance(our_type, GraphQLInputObjectType):
                continue
            for aname, arg in field.args.items():
                akey = f"{key}({aname})"
                ref_arg = ref_field.args.get(aname)
                _check(akey, str(arg.type), str(ref_arg.type) if ref_arg else None,
                       ref_notes.get(akey, ""), our_notes.get(akey, ""), failures, soft)
    for message in soft:
        warnings.warn(f"schema differs where the reference only guesses: {message}")
    assert not failures, "schema.graphql departs from W&B's API:\n" + "\n".join(failures)


def test_local_extensions_are_listed_in_the_readme():
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    marked = re.findall(r"^\s*(\w+).*# local extension", documents.schema_text(), re.M)
    assert "Local extensions" in text
    for name in marked:
        assert name in text, f"{name} is a local extension but README.md does not list it"
