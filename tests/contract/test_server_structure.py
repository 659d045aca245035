"""The server's shape holds: run fields come from models.RUN_FIELDS, SQL stays in store/ and
db.py, and the demo seed is one transaction."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from graphql import GraphQLObjectType

import wandb_gql.server
from wandb_gql.models import RUN_FIELDS
from wandb_gql.server import sqlfilter
from wandb_gql.server.resolvers import executable_schema
from wandb_gql.server.resolvers.run import COMPUTED
from wandb_gql.server.seed import demo
from wandb_gql.server.store import Store

SERVER = Path(wandb_gql.server.__file__).parent
PLAIN = [f for f in RUN_FIELDS if f.column and f.kind in ("text", "time", "int") and f.wire not in COMPUTED]


def test_every_plain_declared_run_field_is_resolved_from_its_column():
    run = executable_schema().type_map["Run"]
    assert isinstance(run, GraphQLObjectType)
    assert {f.wire for f in PLAIN} >= {"name", "state", "createdAt", "heartbeatAt", "historyLineCount"}
    for f in PLAIN:
        assert f.wire in run.fields, f"{f.wire} is declared in RUN_FIELDS but not in schema.graphql"
        row = {f.column: f"value of {f.column}"}
        assert run.fields[f.wire].resolve(row, None) == row[f.column], f.wire


def test_display_name_is_computed_from_name_when_unset():
    row = {"display_name": None, "name": "abc"}
    assert COMPUTED["displayName"](row, None) == "abc"
    assert COMPUTED["displayName"]({**row, "display_name": "shown"}, None) == "shown"


def test_filter_columns_come_from_run_fields():
    for f in RUN_FIELDS:
        if f.filter and f.column and f.kind != "tags":
            expected = (f"r.{f.column}", f.nullable, f.kind == "time")
            assert sqlfilter._COLUMN_FIELDS[f.filter] == expected, f.filter
            assert sqlfilter._COLUMN_FIELDS[f.name] == expected, f.name
    assert sqlfilter._COLUMN_FIELDS["sweepName"] == sqlfilter._COLUMN_FIELDS["sweep"]
    assert sqlfilter._COLUMN_FIELDS["host"] == ("r.host", True, False)


# sqlfilter.py compiles filters into SQL fragments: that is SQL by design, as are store/ and db.py.
_SQL_HOMES = ("store", "db.py", "sqlfilter.py")
_SQL_TEXT = re.compile(r"\b(SELECT|INSERT|UPDATE|DELETE|CREATE|BEGIN|COMMIT|ROLLBACK|PRAGMA)\b")


def _outside_sql_homes() -> list[Path]:
    return [p for p in SERVER.rglob("*.py") if p.relative_to(SERVER).parts[0] not in _SQL_HOMES]


@pytest.mark.parametrize("path", _outside_sql_homes(), ids=lambda p: str(p.relative_to(SERVER)))
def test_no_sql_outside_store_and_db(path):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            assert not _SQL_TEXT.search(node.value), f"{path.name}:{node.lineno}: SQL text {node.value[:60]!r}"
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            assert node.func.attr not in ("execute", "executemany", "executescript"), \
                f"{path.name}:{node.lineno}: runs SQL itself"


def test_demo_seed_is_one_transaction(tmp_path, monkeypatch):
    store = Store(tmp_path / "seed.db")
    calls = []

    def failing(histories):
        calls.append(1)
        if len(calls) == 2:  # the second project's history
            raise RuntimeError("disk full")
        Store.insert_history(store, histories)

    monkeypatch.setattr(store, "insert_history", failing)
    with pytest.raises(RuntimeError):
        demo(store)
    # Nothing of the first project, its runs or the demo users survives the failure.
    assert store.project("demo", "vision") is None
    assert store.user_row("alice") is None
    assert not store.conn.in_transaction
    monkeypatch.undo()
    assert demo(store) == 2000
    assert demo(store) == 0
