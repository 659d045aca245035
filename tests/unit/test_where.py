"""The --where language: golden compilations, the names an expression touched, error corpus,
and --order names."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import FrozenInstanceError
from datetime import datetime, timedelta, timezone

import pytest

from wandb_gql.errors import FilterError, UsageError
from wandb_gql.filters import FIELDS, Compiled, compile_order, compile_where, resolve_filters, validate_filters
from wandb_gql.models import RUN_FIELDS

NOW = datetime(2024, 3, 1, 12, 0, 0, tzinfo=timezone.utc)

GOLDEN: list[tuple[str, dict]] = [
    # DESIGN.md's three example lines
    ("state in (crashed, failed) and created_at < 30d ago",
     {"$and": [{"state": {"$in": ["crashed", "failed"]}},
               {"createdAt": {"$lt": "2024-01-31T12:00:00"}}]}),
    ("summary.val/acc >= 0.9 and config.lr = 0.001 and tags has baseline",
     {"$and": [{"summary_metrics.val/acc": {"$gte": 0.9}}, {"config.lr.value": 0.001},
               {"tags": "baseline"}]}),
    ('not (group = "ablation" or name ~ "^tmp-")  and  summary.loss exists',
     {"$and": [{"$nor": [{"$or": [{"group": "ablation"}, {"name": {"$regex": "^tmp-"}}]}]},
               {"summary_metrics.loss": {"$exists": True}}]}),
    # every field
    ("name = abc123", {"name": "abc123"}),
    ("display_name = 'my run'", {"displayName": "my run"}),
    ("state = finished", {"state": "finished"}),
    ("tags has baseline", {"tags": "baseline"}),
    ("group = ablation-1", {"group": "ablation-1"}),
    ("job_type = train", {"jobType": "train"}),
    ("sweep = abc12345", {"sweep": "abc12345"}),
    ("user = alice", {"username": "alice"}),
    ("created_at >= 2024-01-31", {"createdAt": {"$gte": "2024-01-31T00:00:00"}}),
    ("heartbeat_at < 2024-01-31T12:30:00Z", {"heartbeatAt": {"$lt": "2024-01-31T12:30:00"}}),
    ("updated_at > 2024-01-31", {"updatedAt": {"$gt": "2024-01-31T00:00:00"}}),
    ("config.batch_size = 64", {"config.batch_size.value": 64}),
    ("summary.loss < 0.5", {"summary_metrics.loss": {"$lt": 0.5}}),
    # every operator
    ("summary.acc != 1", {"summary_metrics.acc": {"$ne": 1}}),
    ("summary.acc < 1", {"summary_metrics.acc": {"$lt": 1}}),
    ("summary.acc <= 1", {"summary_metrics.acc": {"$lte": 1}}),
    ("summary.acc > 1", {"summary_metrics.acc": {"$gt": 1}}),
    ("summary.acc>=1", {"summary_metrics.acc": {"$gte": 1}}),
    ("name in (a, b, c)", {"name": {"$in": ["a", "b", "c"]}}),
    ("state not in (running,pending)", {"state": {"$nin": ["running", "pending"]}}),
    ("display_name ~ 'exp-[0-9]+'", {"displayName": {"$regex": "exp-[0-9]+"}}),
    ("name ~ ^tmp-", {"name": {"$regex": "^tmp-"}}),
    ("tags = baseline", {"tags": "baseline"}),
    ("tags != baseline", {"tags": {"$ne": "baseline"}}),
    ("tags in (a, b)", {"tags": {"$in": ["a", "b"]}}),
    ("group exists", {"group": {"$exists": True}}),
    ("summary.loss not exists", {"summary_metrics.loss": {"$exists": False}}),
    ("tags not exists", {"tags": {"$exists": False}}),
    # keywords are case-insensitive
    ("state IN (failed) AND NOT tags HAS keep",
     {"$and": [{"state": {"$in": ["failed"]}}, {"$nor": [{"tags": "keep"}]}]}),
    ("summary.loss NOT EXISTS Or group Exists",
     {"$or": [{"summary_metrics.loss": {"$exists": False}}, {"group": {"$exists": True}}]}),
    # value kinds
    ("config.epochs = 10", {"config.epochs.value": 10}),
    ("config.lr = 1e-3", {"config.lr.value": 0.001}),
    ("config.lr = 2.5E+2", {"config.lr.value": 250.0}),
    ("config.shift = -3", {"config.shift.value": -3}),
    ("config.shift > -0.25", {"config.shift.value": {"$gt": -0.25}}),
    ("config.x = .5", {"config.x.value": 0.5}),
    ('config.opt = "adam"', {"config.opt.value": "adam"}),
    ("config.opt = 'adam'", {"config.opt.value": "adam"}),
    ('display_name = "say \\"hi\\""', {"displayName": 'say "hi"'}),
    ("display_name = 'it\\'s'", {"displayName": "it's"}),
    ("display_name = 'a\\\\b\\tc'", {"displayName": "a\\b\tc"}),
    ('name ~ "^run-\\d+$"', {"name": {"$regex": "^run-\\d+$"}}),
    ("config.optimizer = adam", {"config.optimizer.value": "adam"}),
    ("config.amp = true", {"config.amp.value": True}),
    ("config.amp = FALSE", {"config.amp.value": False}),
    ("group = null", {"group": None}),
    ("config.seed != null", {"config.seed.value": {"$ne": None}}),
    ('config.seed = "42"', {"config.seed.value": "42"}),
    ("name = 0012", {"name": "0012"}),  # root fields hold strings
    ("group = true", {"group": "true"}),
    ("config.date = 2024-01-31", {"config.date.value": "2024-01-31"}),
    ("created_at > '2024-01-31 08:00:00'", {"createdAt": {"$gt": "2024-01-31T08:00:00"}}),
    ("created_at > 2024-01-31T12:00:00+02:00", {"createdAt": {"$gt": "2024-01-31T10:00:00"}}),
    ("created_at > 2024-01-31T12:00:00.250-0130", {"createdAt": {"$gt": "2024-01-31T13:30:00"}}),
    ("created_at = null", {"createdAt": None}),
    ("created_at in (2024-01-01, 2024-01-02)",
     {"createdAt": {"$in": ["2024-01-01T00:00:00", "2024-01-02T00:00:00"]}}),
    ("created_at > 90s ago", {"createdAt": {"$gt": "2024-03-01T11:58:30"}}),
    ("created_at > 15m ago", {"createdAt": {"$gt": "2024-03-01T11:45:00"}}),
    ("heartbeat_at < 12h ago", {"heartbeatAt": {"$lt": "2024-03-01T00:00:00"}}),
    ("updated_at < 1d ago", {"updatedAt": {"$lt": "2024-02-29T12:00:00"}}),
    ("created_at < 2w ago", {"createdAt": {"$lt": "2024-02-16T12:00:00"}}),
    ("created_at < 1y ago", {"createdAt": {"$lt": "2023-03-02T12:00:00"}}),  # 365 days (2024 is a leap year)
    ("created_at < 30d AGO", {"createdAt": {"$lt": "2024-01-31T12:00:00"}}),
    # precedence, grouping, flattening, not
    ("state = a or state = b and group = c",
     {"$or": [{"state": "a"}, {"$and": [{"state": "b"}, {"group": "c"}]}]}),
    ("(state = a or state = b) and group = c",
     {"$and": [{"$or": [{"state": "a"}, {"state": "b"}]}, {"group": "c"}]}),
    ("state = a and (group = b and user = c)",
     {"$and": [{"state": "a"}, {"group": "b"}, {"username": "c"}]}),
    ("(state = a or group = b) or (user = c or name = d)",
     {"$or": [{"state": "a"}, {"group": "b"}, {"username": "c"}, {"name": "d"}]}),
    ("((state = finished))", {"state": "finished"}),
    ("not state = finished", {"$nor": [{"state": "finished"}]}),
    ("not state = a and group = b", {"$and": [{"$nor": [{"state": "a"}]}, {"group": "b"}]}),
    ("not not group exists", {"$nor": [{"$nor": [{"group": {"$exists": True}}]}]}),
    ("not (state = a and group = b)", {"$nor": [{"$and": [{"state": "a"}, {"group": "b"}]}]}),
    # keys: slashes, dashes, dots, digits, backticks
    ("summary.train/loss-ema < 1", {"summary_metrics.train/loss-ema": {"$lt": 1}}),
    ("config.opt.lr = 0.1", {"config.opt.value.lr": 0.1}),
    ("summary.layer3.grad_norm > 10", {"summary_metrics.layer3.grad_norm": {"$gt": 10}}),
    ("summary.`val.acc` > 0.5", {"summary_metrics.val.acc": {"$gt": 0.5}}),
    ("summary.`loss (val)` < 1", {"summary_metrics.loss (val)": {"$lt": 1}}),
    ("config.`a=b`.c = 1", {"config.a=b.value.c": 1}),
    ("Summary.Acc > 1", {"summary_metrics.Acc": {"$gt": 1}}),
    ("STATE = finished", {"state": "finished"}),
    ("summary.loss ~ 'x'", {"summary_metrics.loss": {"$regex": "x"}}),
]


@pytest.mark.parametrize(("expr", "expected"), GOLDEN, ids=[e for e, _ in GOLDEN])
def test_golden(expr: str, expected: dict) -> None:
    compiled = compile_where(expr, now=NOW)
    assert compiled.filters == expected
    assert compiled.expression == expr
    assert json.loads(json.dumps(compiled.filters)) == compiled.filters  # plain JSON, nothing exotic
    assert validate_filters(compiled.filters) == compiled.filters


def test_golden_table_is_large_enough() -> None:
    assert len(GOLDEN) >= 40


def test_relative_time_resolves_once_against_now() -> None:
    naive = datetime(2024, 3, 1, 12, 0, 0)
    aware_elsewhere = datetime(2024, 3, 1, 14, 0, 0, tzinfo=timezone(timedelta(hours=2)))
    expected = {"createdAt": {"$lt": "2024-02-29T12:00:00"}}
    assert compile_where("created_at < 1d ago", now=naive).filters == expected
    assert compile_where("created_at < 1d ago", now=aware_elsewhere).filters == expected


def test_relative_time_defaults_to_current_utc_time() -> None:
    before = datetime.now(timezone.utc).replace(tzinfo=None, microsecond=0)
    got = compile_where("created_at > 0s ago").filters["createdAt"]["$gt"]
    after = datetime.now(timezone.utc).replace(tzinfo=None)
    assert before <= datetime.strptime(got, "%Y-%m-%dT%H:%M:%S") <= after


FIELD_LIST = ("name, display_name, state, tags, group, job_type, sweep, created_at, heartbeat_at, "
              "updated_at, user, config.<key>, summary.<key>")

RE2 = " (W&B reads RE2 syntax: no backreferences or lookarounds)"
ERRORS: list[tuple[str, str, int]] = [
    ("", "empty expression: expected a filter such as 'state = finished'", 0),
    ("   ", "empty expression: expected a filter such as 'state = finished'", 0),
    ("summary.acc >= ", "expected a value after '>=' at end of expression", 15),
    ("foo = 1", f"unknown field 'foo': expected one of {FIELD_LIST}", 0),
    ("state = a and bar.baz = 1", f"unknown field 'bar.baz': expected one of {FIELD_LIST}", 14),
    ("config = 1", f"unknown field 'config': expected one of {FIELD_LIST}", 0),
    ("state.x = 1", f"unknown field 'state.x': expected one of {FIELD_LIST}", 0),
    ("summary.a..b = 1", "empty key part in 'summary.a..b': expected summary.<key>", 0),
    ("config. = 1", "empty key part in 'config.': expected config.<key>", 0),
    ("(state = finished", "unclosed '(': expected ')' before end of expression", 0),
    ("state = a and (group = b or (user = c)",
     "unclosed '(': expected ')' before end of expression", 14),
    ("state = finished)", "unmatched ')': no '(' before it", 16),
    ("(state = a group = b)", "expected 'and', 'or' or ')' after 'a', found 'group'", 11),
    ("state in finished", "expected '(' after 'in', found 'finished'", 9),
    ("state not in finished", "expected '(' after 'in', found 'finished'", 13),
    ("state in (a b)", "expected ',' or ')' after 'a', found 'b'", 12),
    ("state in (a, b", "expected ',' or ')' after 'b' at end of expression", 14),
    ("state in ()", "expected a value after '(', found ')'", 10),
    ("state in (a,)", "expected a value after ',', found ')'", 12),
    ("name ~ '[a-'", "invalid regex '[a-': missing ]: [a-" + RE2, 7),
    ("name ~ '(a)\\1'", "invalid regex '(a)\\1': invalid escape sequence: \\1" + RE2, 7),
    ("name ~ '(?!tmp)'", "invalid regex '(?!tmp)': invalid perl operator: (?!" + RE2, 7),
    ("(" * 21 + "state = x" + ")" * 21, "more than 20 nested parentheses or 'not's", 20),
    ("not " * 21 + "state = x", "more than 20 nested parentheses or 'not's", 80),
    ("(" * 5000 + "state = x" + ")" * 5000, "more than 20 nested parentheses or 'not's", 20),
    ("name ~ (a)", "expected a regex (quote it if it holds spaces or parentheses) after '~', "
                   "found '('", 7),
    ("created_at < 12x ago", "unknown time unit 'x' in '12x ago': expected s, m, h, d, w or y", 13),
    ("created_at < 30D ago", "unknown time unit 'D' in '30D ago': expected s, m, h, d, w or y", 13),
    ("created_at < 12 ago", "missing time unit in '12 ago': expected s, m, h, d, w or y", 13),
    ("created_at < x3d ago", "expected <n><unit> before 'ago' (e.g. 30d ago), found 'x3d'", 13),
    ("summary.loss < 3d ago", "relative time '3d ago' is only valid on created_at, "
                              "heartbeat_at and updated_at, not summary.loss", 15),
    ("updated_at ~ x", "'~' is not supported on updated_at: updated_at supports only =, "
                       "!=, <, <=, >, >=, in, not in, exists, not exists", 11),
    ("created_at < 1700000000", "expected a date, datetime or relative time after '<' for "
                                "created_at, found '1700000000'", 13),
    ("created_at < 30d", "expected a date, datetime or relative time after '<' for "
                         "created_at, found '30d'", 13),
    ("summary.x > 1e400", "number '1e400' is out of range", 12),
    ("created_at > 2024-02-30", "invalid date '2024-02-30': day is out of range for month", 13),
    ("created_at ~ 2024", "'~' is not supported on created_at: created_at supports only =, "
                          "!=, <, <=, >, >=, in, not in, exists, not exists", 11),
    ("tags > 3", "'>' is not supported on tags: tags supports only has, =, !=, in, not in, ~, "
                 "exists, not exists", 5),
    ("state has finished", "'has' is only for tags, not state: use '=' to compare a value", 6),
    ("config.x has 1", "'has' is only for tags, not config.x: use '=' to compare a value", 9),
    ("state = finished foo", "expected 'and', 'or' or end of expression after 'finished', "
                             "found 'foo'", 17),
    ("state = finished and", "expected a field name or '(' after 'and' at end of expression", 20),
    ("state = a or or", "expected a field name or '(' after 'or', found 'or'", 13),
    ("= finished", "expected a field name or '(', found '='", 0),
    ("not", "expected a field name or '(' after 'not' at end of expression", 3),
    ("state finished", "expected an operator (=, !=, <, <=, >, >=, ~, in, not in, has, exists, "
                       "not exists) after 'state', found 'finished'", 6),
    ("state", "expected an operator (=, !=, <, <=, >, >=, ~, in, not in, has, exists, "
              "not exists) after 'state' at end of expression", 5),
    ("state not finished", "expected 'in' or 'exists' after 'not', found 'finished'", 10),
    ("state == finished", "expected a value after '=', found '='", 7),
    ("state = and", "expected a value after '=', found 'and'", 8),
    ("state ! finished", "unexpected '!': expected '!=' or the keyword 'not'", 6),
    ("name = 'abc", "unterminated string: expected a closing '", 7),
    ('name = "abc', 'unterminated string: expected a closing "', 7),
    ("summary.`val.acc > 1", "unterminated backtick: expected a closing `", 8),
]


@pytest.mark.parametrize(("expr", "message", "position"), ERRORS, ids=[e[:60] for e, _, _ in ERRORS])
def test_error_corpus(expr: str, message: str, position: int) -> None:
    with pytest.raises(FilterError) as info:
        compile_where(expr, now=NOW)
    err = info.value
    assert err.message == message
    assert "\n" not in err.message
    assert err.expression == expr
    assert err.position == position
    if len(expr) <= 80:
        assert err.caret() == f"  {expr}\n  {' ' * position}^"
    else:  # a window of the expression, the caret still under the offending character
        shown, caret = err.caret().split("\n")
        assert len(shown) <= 2 + 82 and caret.endswith("^")
        assert shown[len(caret) - 1] == expr[position]
    assert isinstance(err, UsageError) and err.exit_code == 2


def test_caret_window_at_both_ends_of_a_long_expression() -> None:
    expr = "state = finished and " * 10 + "bogus = 1"
    with pytest.raises(FilterError) as info:
        compile_where(expr, now=NOW)
    shown, caret = info.value.caret().split("\n")
    assert shown.startswith("  …") and not shown.endswith("…") and shown.endswith("bogus = 1")
    assert shown[len(caret) - 1] == "b"
    with pytest.raises(FilterError) as info:
        compile_where("bogus = 1 and " + "state = finished and " * 10 + "state = x", now=NOW)
    shown, caret = info.value.caret().split("\n")
    assert shown.endswith("…") and not shown.startswith("  …") and caret == "  ^"


def test_error_corpus_is_large_enough() -> None:
    assert len(ERRORS) >= 20


@pytest.mark.parametrize(("expr", "hint"), [
    ("id = abc", "the run id is 'name'"),
    ("displayName = x", "did you mean 'display_name'?"),
    ("updatedAt > 1d ago", "did you mean 'updated_at'?"),
    ("username = alice", "did you mean 'user'?"),
    ("sweepName = s1", "did you mean 'sweep'?"),
    ("summary_metrics.acc > 1", "write summary.<key>"),
    ("state = and", "to use it as a string, quote it: 'and'"),
    ("state == x", "use a single '=' for equality"),
    ("created_at < 30d", "write '30d ago'"),
    ("created_at < 5", "e.g. 2024-01-31, 2024-01-31T12:00:00Z or 30d ago"),
])
def test_error_hints(expr: str, hint: str) -> None:
    with pytest.raises(FilterError) as info:
        compile_where(expr, now=NOW)
    assert info.value.hint == hint
    assert str(info.value).endswith(f"({hint})")


# --------------------------------------------------------------------------- Compiled: the names touched


@pytest.mark.parametrize(("expr", "keys"), [
    ("state = finished and summary.val/acc > 0.9 and config.lr = 0.001",
     ("state", "summary.val/acc", "config.lr")),
    # in order of first use, once each, whatever the operator or nesting
    ("not (config.lr > 1 or state in (a, b)) and config.lr exists and tags has x and state != c",
     ("config.lr", "state", "tags")),
    # one vocabulary: W&B's keys never show here, field names are lowercased, key case is kept
    ("STATE = a and Summary.Acc > 1 and user = u and created_at < 1d ago",
     ("state", "summary.Acc", "user", "created_at")),
    ("config.opt.lr = 0.1 and summary.layer3.grad_norm > 1", ("config.opt.lr", "summary.layer3.grad_norm")),
    # a key part holding a dot keeps its backticks, so the name is not read as nesting
    ("summary.`val.acc` > 0.5 and summary.`loss (val)` < 1 and config.`a.b`.c = 1",
     ("summary.`val.acc`", "summary.loss (val)", "config.`a.b`.c")),
])
def test_compiled_keys(expr: str, keys: tuple[str, ...]) -> None:
    assert compile_where(expr, now=NOW).keys == keys


def test_compiled_is_a_frozen_result_with_the_expression() -> None:
    expr = "summary.`val.acc` > 0.5 and config.`a.b` = 1 and summary.plain.nested > 1 and summary.`val.acc` < 1"
    compiled = compile_where(expr, now=NOW)
    assert isinstance(compiled, Compiled) and compiled.expression == expr
    # what lint needs from parsing: the compiled keys whose backticked part holds a dot
    assert compiled.dotted_keys == ("summary_metrics.val.acc", "config.a.b.value")
    assert compile_where("summary.`val_acc` > 0.5").dotted_keys == ()
    with pytest.raises(FrozenInstanceError):
        compiled.keys = ()  # type: ignore[misc]


def test_fields_come_from_the_run_declaration() -> None:
    assert FIELDS == {f.name: f.filter for f in RUN_FIELDS if f.filter is not None}
    assert FIELDS["sweep"] == "sweep" and FIELDS["user"] == "username" and FIELDS["updated_at"] == "updatedAt"
    assert "id" not in FIELDS  # W&B's storage id cannot be filtered on


def test_resolve_filters() -> None:
    assert resolve_filters() == Compiled(filters={}, keys=(), expression=None)
    compiled = resolve_filters(where="state = finished")
    assert compiled.filters == {"state": "finished"} and compiled.keys == ("state",)
    assert resolve_filters(filters=compiled) is compiled  # compiled once, passed along as it is
    assert resolve_filters(filters='{"state": "failed"}').filters == {"state": "failed"}
    raw = resolve_filters(filters={"state": "failed"})
    assert raw.filters == {"state": "failed"} and raw.expression is None
    with pytest.raises(UsageError, match="not both"):
        resolve_filters('{"state": "failed"}', "state = finished")
    with pytest.raises(FilterError):
        resolve_filters(where="state ==")


# --------------------------------------------------------------------------- compile_order

ORDER_FIELDS = {f.name: f.filter for f in RUN_FIELDS if f.filter is not None}


@pytest.mark.parametrize("name", sorted(ORDER_FIELDS))
def test_order_every_field(name: str) -> None:
    key = ORDER_FIELDS[name]
    assert compile_order(name) == f"+{key}"  # no sign: ascending
    assert compile_order(f"+{name}") == f"+{key}"
    assert compile_order(f"-{name}") == f"-{key}"
    assert compile_order(f"  - {name} ") == f"-{key}"


@pytest.mark.parametrize(("order", "key"), [
    ("created_at", "+createdAt"),
    ("-created_at", "-createdAt"),
    ("+created_at", "+createdAt"),  # the SDK's spelling is a vocabulary name: same order on W&B
    ("display_name", "+displayName"),
    ("heartbeat_at", "+heartbeatAt"),
    ("-summary.val/acc", "-summary_metrics.val/acc"),
    ("+config.lr", "+config.lr.value"),
    ("config.opt.lr", "+config.opt.value.lr"),
    ("-summary.`val.acc`", "-summary_metrics.val.acc"),
    ("-Summary.Loss", "-summary_metrics.Loss"),
    ("-STATE", "-state"),
])
def test_order_vocabulary(order: str, key: str) -> None:
    assert compile_order(order) == key


@pytest.mark.parametrize("order", [
    "-createdAt", "+createdAt", "createdAt", "heartbeatAt", "-updatedAt", "+displayName", "jobType", "-username",
    "-config.seed.value", "config.lr.value", "+config.opt.value.lr",
    "summary_metrics.loss", "-summary_metrics.val/acc", "+summary_metrics.a.b",
])
def test_order_raw_wandb_keys_pass_through(order: str) -> None:
    assert compile_order(order) == order
    spaced = f" {order[0]} {order[1:]} " if order[0] in "+-" else f"  {order} "
    assert compile_order(spaced) == order  # only blanks are trimmed


@pytest.mark.parametrize(("order", "message", "position"), [
    ("foo", f"unknown field 'foo': expected one of {FIELD_LIST}", 0),
    ("-foo", f"unknown field 'foo': expected one of {FIELD_LIST}", 1),
    ("id", f"unknown field 'id': expected one of {FIELD_LIST}", 0),
    ("summary", f"unknown field 'summary': expected one of {FIELD_LIST}", 0),
    ("", "empty order: expected a field name such as -created_at", 0),
    ("-", "empty order: expected a field name such as -created_at", 1),
    ("-summary.", "empty key part in 'summary.': expected summary.<key>", 1),
    ("created_at desc", "expected one field name in the order, found 'desc'", 11),
    ("-(state)", "expected one field name in the order, found '('", 1),
])
def test_order_errors(order: str, message: str, position: int) -> None:
    with pytest.raises(FilterError) as info:
        compile_order(order)
    assert info.value.message == message
    assert info.value.expression == order and info.value.position == position


def test_order_error_hints() -> None:
    with pytest.raises(FilterError) as info:
        compile_order("-createdat")
    assert info.value.hint == "did you mean 'created_at'?"
    with pytest.raises(FilterError) as info:
        compile_order("run_id")
    assert info.value.hint == "the run id is 'name'"


def test_package_imports_only_stdlib() -> None:
    code = ("import sys; import wandb_gql.filters; "
            "print(sorted(m for m in ('gql', 'aiohttp', 'pydantic', 'typer', 'rich', 'orjson', 'json') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
