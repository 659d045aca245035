"""Raw --filters JSON: what is accepted as is, and what is refused before anything is sent."""

from __future__ import annotations

import json

import pytest

from wandb_gql.errors import FilterError
from wandb_gql.filters import validate_filters

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
     """filters["name"]["$regex"]: invalid regex "(a": missing ): (a (W&B reads RE2 syntax: no backreferences or lookarounds)"""),
    ('{"name": {"$regex": "(a)\\\\1"}}',
     """filters["name"]["$regex"]: invalid regex "(a)\\\\1": invalid escape sequence: \\1 (W&B reads RE2 syntax: no backreferences or lookarounds)"""),
    ('{"name": {"$regex": "(?<=a)b"}}',
     """filters["name"]["$regex"]: invalid regex "(?<=a)b": invalid perl operator: (?<= (W&B reads RE2 syntax: no backreferences or lookarounds)"""),
    ('{"$and": [' * 21 + '{"state": "x"}' + ']}' * 21,
     "filters nest $and/$or/$nor more than 20 levels deep"),
    # deeper than Python's json parser can recurse: still one line, not a traceback
    ('{"$and": [' * 10_000 + '{"state": "x"}' + ']}' * 10_000,
     "filter JSON nests more than 20 levels deep"),
    ('{"name": {"$eq": 1, "x": 2}}',
     """filters["name"]["x"]: cannot mix operators and plain keys in one condition"""),
    ('{"name": {"$or": [{"a": 1}]}}',
     """filters["name"]["$or"]: '$or' combines whole filters and is not valid inside a field's """
     """condition: move it to the top level"""),
    ('{"": 1}', """filters[""]: expected a field name or an operator, found an empty key"""),
]


@pytest.mark.parametrize(("raw", "message"), BAD_FILTERS, ids=[r[:60] for r, _ in BAD_FILTERS])
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
