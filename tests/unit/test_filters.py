"""The --where language: golden compilations, error corpus, raw --filters validation, lint."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime, timedelta, timezone

import pytest

from wandb_gql.errors import FilterError, UsageError
from wandb_gql.filters import compile_where, lint, validate_filters

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
    ("created_at < 2w ago", {"createdAt": {"$lt": "2024-02-16T12:00:00"}}),
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
    assert compiled == expected
    assert json.loads(json.dumps(compiled)) == compiled  # plain JSON, nothing exotic
    assert validate_filters(compiled) == compiled


def test_golden_table_is_large_enough() -> None:
    assert len(GOLDEN) >= 40


def test_relative_time_resolves_once_against_now() -> None:
    naive = datetime(2024, 3, 1, 12, 0, 0)
    aware_elsewhere = datetime(2024, 3, 1, 14, 0, 0, tzinfo=timezone(timedelta(hours=2)))
    expected = {"createdAt": {"$lt": "2024-02-29T12:00:00"}}
    assert compile_where("created_at < 1d ago", now=naive) == expected
    assert compile_where("created_at < 1d ago", now=aware_elsewhere) == expected


def test_relative_time_defaults_to_current_utc_time() -> None:
    before = datetime.now(timezone.utc).replace(tzinfo=None, microsecond=0)
    got = compile_where("created_at > 0s ago")["createdAt"]["$gt"]
    after = datetime.now(timezone.utc).replace(tzinfo=None)
    assert before <= datetime.strptime(got, "%Y-%m-%dT%H:%M:%S") <= after


FIELD_LIST = ("name, display_name, state, tags, group, job_type, sweep, user, created_at, "
              "heartbeat_at, config.<key>, summary.<key>")

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
    ("name ~ '[a-'", "invalid regex '[a-': unterminated character set", 7),
    ("name ~ (a)", "expected a regex (quote it if it holds spaces or parentheses) after '~', "
                   "found '('", 7),
    ("created_at < 12x ago", "unknown time unit 'x' in '12x ago': expected s, m, h, d or w", 13),
    ("created_at < 30D ago", "unknown time unit 'D' in '30D ago': expected s, m, h, d or w", 13),
    ("created_at < 12 ago", "missing time unit in '12 ago': expected s, m, h, d or w", 13),
    ("created_at < x3d ago", "expected <n><unit> before 'ago' (e.g. 30d ago), found 'x3d'", 13),
    ("summary.loss < 3d ago", "relative time '3d ago' is only valid on created_at and "
                              "heartbeat_at, not summary.loss", 15),
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


@pytest.mark.parametrize(("expr", "message", "position"), ERRORS, ids=[e for e, _, _ in ERRORS])
def test_error_corpus(expr: str, message: str, position: int) -> None:
    with pytest.raises(FilterError) as info:
        compile_where(expr, now=NOW)
    err = info.value
    assert err.message == message
    assert "\n" not in err.message
    assert err.expression == expr
    assert err.position == position
    assert err.caret() == f"  {expr}\n  {' ' * position}^"
    assert isinstance(err, UsageError) and err.exit_code == 2


def test_error_corpus_is_large_enough() -> None:
    assert len(ERRORS) >= 20


@pytest.mark.parametrize(("expr", "hint"), [
    ("id = abc", "the run id is 'name'"),
    ("displayName = x", "did you mean 'display_name'?"),
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


# --------------------------------------------------------------------------- validate_filters

GOOD_FILTERS = [
    {},
    {"state": "finished"},
    {"tags": {"$in": ["a", "b"]}},
    {"$and": [{"createdAt": {"$lt": "2024-01-01T00:00:00"}}, {"state": {"$ne": "running"}}]},
    {"$or": [{"tags": None}, {"tags": {"$ne": "keep"}}]},
    {"$nor": [{"summary_metrics.loss": {"$exists": True}}]},
    {"config.lr.value": {"$gte": 0.1, "$lte": 1}},
    {"display_name": {"$regex": "^foo.*"}},
    {"config.opt": {"lr": 0.1}},  # equality with an embedded object
    {"name": {"$eq": "abc", "$nin": []}},
]


@pytest.mark.parametrize("filters", GOOD_FILTERS, ids=[json.dumps(f) for f in GOOD_FILTERS])
def test_validate_good(filters: dict) -> None:
    assert validate_filters(filters) is filters
    assert validate_filters(json.dumps(filters)) == filters


BAD_FILTERS: list[tuple[str, str]] = [
    ('{"state": ', "malformed filter JSON: Expecting value at line 1 column 11"),
    ("[1, 2]", "filter JSON must be an object, found [1, 2]"),
    ('"state"', 'filter JSON must be an object, found "state"'),
    ('{"$and": []}',
     """filters["$and"]: '$and' needs a non-empty list of filter objects, found []"""),
    ('{"$or": {"a": 1}}',
     """filters["$or"]: '$or' needs a non-empty list of filter objects, found {"a": 1}"""),
    ('{"$nor": [1]}',
     """filters["$nor"]: '$nor' needs a non-empty list of filter objects, found [1]"""),
    ('{"$and": [{"state": {"$not": {"$eq": 1}}}]}',
     """filters["$and"][0]["state"]["$not"]: unknown operator '$not': expected one of $and, $or, """
     """$nor, $eq, $ne, $gt, $gte, $lt, $lte, $in, $nin, $exists, $regex"""),
    ('{"$where": "1"}',
     """filters["$where"]: unknown operator '$where': expected one of $and, $or, $nor, $eq, """
     """$ne, $gt, $gte, $lt, $lte, $in, $nin, $exists, $regex"""),
    ('{"summary_metrics.x": {"$gt": Infinity}}',
     """filters["summary_metrics.x"]["$gt"]: expected a finite number, found inf"""),
    ('{"summary_metrics.x": [1, NaN]}',
     """filters["summary_metrics.x"]: expected a finite number, found nan"""),
    ('{"$gt": 1}', """filters["$gt"]: '$gt' needs a field: expected {"<field>": {"$gt": ...}}"""),
    ('{"tags": {"$in": "a"}}', """filters["tags"]["$in"]: '$in' needs a list, found "a\""""),
    ('{"tags": {"$nin": null}}', """filters["tags"]["$nin"]: '$nin' needs a list, found null"""),
    ('{"group": {"$exists": 1}}', """filters["group"]["$exists"]: '$exists' needs true or false, """
                                  """found 1"""),
    ('{"name": {"$regex": 5}}', """filters["name"]["$regex"]: '$regex' needs a string, found 5"""),
    ('{"name": {"$regex": "(a"}}',
     """filters["name"]["$regex"]: invalid regex "(a": missing ), unterminated subpattern"""),
    ('{"name": {"$eq": 1, "x": 2}}',
     """filters["name"]["x"]: cannot mix operators and plain keys in one condition"""),
    ('{"name": {"$or": [{"a": 1}]}}',
     """filters["name"]["$or"]: '$or' combines whole filters and is not valid inside a field's """
     """condition: move it to the top level"""),
    ('{"": 1}', """filters[""]: expected a field name or an operator, found an empty key"""),
]


@pytest.mark.parametrize(("raw", "message"), BAD_FILTERS, ids=[r for r, _ in BAD_FILTERS])
def test_validate_bad(raw: str, message: str) -> None:
    with pytest.raises(FilterError) as info:
        validate_filters(raw)
    assert info.value.message == message
    assert "\n" not in info.value.message


def test_validate_bad_dict_input() -> None:
    with pytest.raises(FilterError, match=r"unknown operator '\$size'"):
        validate_filters({"tags": {"$size": 2}})


def test_malformed_json_carets_one_line_input() -> None:
    with pytest.raises(FilterError) as info:
        validate_filters('{"state": "a",}')
    assert info.value.position == 14
    assert info.value.caret().endswith("\n  " + " " * 14 + "^")
    with pytest.raises(FilterError) as info:
        validate_filters('{\n"state": }')
    assert info.value.position is None and info.value.caret() == ""


# --------------------------------------------------------------------------- lint

ANCHOR = ("regex '{}' uses anchors (^ or $), and W&B's docs disagree on whether it supports "
          "them: check the count with 'wbgql runs explain', or drop them")
RE2 = ("regex '{}' uses {}, which RE2 (W&B's regex engine) does not support: rewrite the regex "
       "without them")

LINT: list[tuple[dict, list[str]]] = [
    ({"summary.acc": {"$gt": 0.9}},
     ["'summary.acc' matches nothing on W&B: summary keys are filtered as 'summary_metrics.acc'"]),
    ({"$and": [{"state": "finished"}, {"id": "abc"}]},
     ["'id' is not a W&B filter field: the run id is 'name'"]),
    ({"name": {"$regex": "^tmp-"}}, [ANCHOR.format("^tmp-")]),
    ({"name": {"$regex": "tmp$"}}, [ANCHOR.format("tmp$")]),
    ({"name": {"$regex": "foo(?=bar)"}}, [RE2.format("foo(?=bar)", "lookahead")]),
    ({"name": {"$regex": "foo(?!bar)"}}, [RE2.format("foo(?!bar)", "lookahead")]),
    ({"name": {"$regex": "(?<=a)b"}}, [RE2.format("(?<=a)b", "lookbehind")]),
    ({"name": {"$regex": "(?<!a)b"}}, [RE2.format("(?<!a)b", "lookbehind")]),
    ({"name": {"$regex": r"(a)\1"}}, [RE2.format(r"(a)\1", "backreferences")]),
    ({"name": {"$regex": "(?P<x>a)(?P=x)"}}, [RE2.format("(?P<x>a)(?P=x)", "backreferences")]),
    ({"name": {"$regex": "(?>ab)c"}}, [RE2.format("(?>ab)c", "atomic groups")]),
    ({"name": {"$regex": "a++b"}}, [RE2.format("a++b", "possessive quantifiers")]),
    ({"name": {"$regex": "^(a)\\1$"}},
     [ANCHOR.format("^(a)\\1$"), RE2.format("^(a)\\1$", "backreferences")]),
    ({"config.lr.value": "0.1"},
     ["'config.lr.value' is compared with the quoted number \"0.1\", which compares as a string: "
      "unquote it to compare numbers"]),
    ({"summary_metrics.epoch": {"$in": [1, "2"]}},
     ["'summary_metrics.epoch' is compared with the quoted number \"2\", which compares as a "
      "string: unquote it to compare numbers"]),
    ({"config.lr.value": {"$gt": "1e-3"}},
     ["'config.lr.value' is compared with the quoted number \"1e-3\", which compares as a "
      "string: unquote it to compare numbers"]),
    ({"state": "Finished"},
     ["state 'Finished' is never used by W&B, so it matches nothing: use one of running, "
      "finished, crashed, failed, killed, preempting, preempted, pending"]),
    ({"state": {"$in": ["failed", "error"]}},
     ["state 'error' is never used by W&B, so it matches nothing: use one of running, "
      "finished, crashed, failed, killed, preempting, preempted, pending"]),
    ({"createdAt": {"$lt": 1700000000}},
     ["'createdAt' is compared with the number 1700000000, which W&B rejects: use a UTC ISO "
      "string like \"2024-01-31T00:00:00\""]),
]


@pytest.mark.parametrize(("filters", "warnings"), LINT, ids=[json.dumps(f) for f, _ in LINT])
def test_lint(filters: dict, warnings: list[str]) -> None:
    assert lint(filters) == warnings
    assert lint(filters, destructive=True) == warnings  # none of these matches every run


CLEAN = [
    {"state": "finished"},
    {"state": {"$in": list(("running", "finished", "crashed", "failed", "killed", "preempting",
                            "preempted", "pending"))}},
    {"config.opt.lr.value": 0.1},  # nested config keys are fine
    {"config.name.value": "run-1"},
    {"name": "123"},  # root fields hold strings; a numeric run id is fine
    {"summary_metrics.loss": {"$lt": 0.5}},
    {"name": {"$regex": r"tmp-\d+[$^]"}},  # ^ and $ inside a class are not anchors
    {"name": {"$regex": r"a\$b\^c"}},
    {"name": {"$regex": "(?:ab)+c*?(?i)x"}},
    {"createdAt": {"$lt": "2024-01-31T00:00:00"}},
    compile_where("state in (crashed, failed) and created_at < 30d ago", now=NOW),
    compile_where("summary.val/acc >= 0.9 and config.lr = 0.001 and tags has baseline", now=NOW),
]


@pytest.mark.parametrize("filters", CLEAN, ids=[json.dumps(f) for f in CLEAN])
def test_lint_clean(filters: dict) -> None:
    assert lint(filters) == []
    assert lint(filters, destructive=True) == []


EVERY_RUN = "this filter matches every run ({}): narrow it before a destructive command, or " \
            "pass --all if every run is what you mean"


@pytest.mark.parametrize(("filters", "reason"), [
    ({}, "it is empty"),
    ({"$and": [{}]}, "it is empty"),
    ({"name": {"$exists": True}}, "every run has a name"),
    ({"$and": [{"state": {"$exists": True}}, {"name": {"$exists": True}}]},
     "every run has a state"),
    ({"$or": [{"config.x.value": 1}, {"$nor": [{"config.x.value": 1}]}]},
     'it is X or not X, with X = {"config.x.value": 1}'),
    (compile_where("not (config.x = 1) or config.x = 1"),
     'it is X or not X, with X = {"config.x.value": 1}'),
    (compile_where("group = a or not (group = a or state = failed) or state = failed"),
     'it is X or not X, with X = {"$or": [{"group": "a"}, {"state": "failed"}]}'),
    ({"$or": [{"state": "finished"}, {}]}, "it is empty"),
])
def test_lint_destructive_matches_every_run(filters: dict, reason: str) -> None:
    assert lint(filters, destructive=True) == [EVERY_RUN.format(reason)]
    assert lint(filters) == []


@pytest.mark.parametrize("filters", [
    {"$or": [{"config.x.value": 1}, {"$nor": [{"config.x.value": 2}]}]},
    {"$and": [{"name": {"$exists": True}}, {"state": "failed"}]},
    {"name": {"$exists": False}},
    {"tags": {"$exists": True}},
    {"$nor": [{}]},
    compile_where("not (group = a or state = failed) or group = a"),
])
def test_lint_destructive_narrow_filters_pass(filters: dict) -> None:
    assert lint(filters, destructive=True) == []


def test_lint_backticked_dotted_key_needs_the_expression() -> None:
    expr = "summary.`val.acc` > 0.5 and config.`a.b` = 1 and summary.plain.nested > 1"
    compiled = compile_where(expr, now=NOW)
    assert lint(compiled) == []
    assert lint(compiled, expression=expr) == [
        f"key '{key}' holds a dot inside backticks, but W&B reads every dot as nesting and "
        "cannot address that key: rename the key when logging, or filter on it client side"
        for key in ("summary_metrics.val.acc", "config.a.b.value")
    ]
    assert lint(compiled, expression="summary.`val_acc` > 0.5") == []


def test_lint_on_compiled_expression_catches_state_and_anchor() -> None:
    compiled = compile_where("state = done or name ~ '^tmp'", now=NOW)
    assert lint(compiled) == [
        "state 'done' is never used by W&B, so it matches nothing: use one of running, finished, "
        "crashed, failed, killed, preempting, preempted, pending",
        ANCHOR.format("^tmp"),
    ]


def test_lint_deduplicates() -> None:
    assert len(lint({"$or": [{"summary.a": 1}, {"summary.a": 2}]})) == 1


def test_module_imports_only_stdlib() -> None:
    code = ("import sys; import wandb_gql.filters; "
            "print(sorted(m for m in ('gql', 'aiohttp', 'pydantic', 'typer', 'rich', 'orjson') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
