"""The local server's run filters and orders: a corpus of filters over five fixed runs."""

from __future__ import annotations

import json

import pytest

from wandb_gql.server import db
from wandb_gql.server.sqlfilter import FilterSyntaxError, order_sql, parse_filters, where_sql

# name, state, display_name, group, job_type, sweep, username, host, tags, created_at, heartbeat_at, config, summary
RUNS = [
    ("alpha", "finished", "Alpha", "g1", "train", "s1", "ann", "h1", ["baseline", "v1"],
     "2024-01-01T00:00:00", "2024-01-01T01:00:00",
     {"lr": 0.001, "opt": {"name": "adam", "beta": 0.9}, "epochs": 10, "flag": True},
     {"loss": 0.5, "val/acc": 0.9, "eval": {"top1": 0.7}, "note": "ok"}),
    ("beta", "crashed", "Beta", None, "eval", None, "bob", "h2", ["v2"],
     "2024-01-02T12:30:00", None,
     {"lr": 0.01, "epochs": "10", "flag": 1},
     {"loss": 1, "val/acc": 0.5, "note": 42}),
    ("gamma", "failed", None, "g1", None, None, None, None, [],
     "2024-01-03T00:00:00", "2024-01-03T05:00:00",
     {"lr": None, "epochs": 10.0, "flag": False, "opt": {"name": "sgd"}},
     {"loss": "nan", "val/acc": None, "eval": {"top1": 0.9}, "list": [1, 2]}),
    ("delta", "finished", "Delta run", "g2", "train", None, "ann", None, ["baseline"],
     "2024-01-03T00:00:00", None,
     {},
     {}),
    ("eps", "running", "Eps", None, None, None, "carol", None, ["v1", "v2"],
     "2024-02-01T00:00:00", "2024-02-01T00:10:00",
     {"lr": 0.001, "a/b": "x y", "my key-1": 3},
     {"loss": 0.25, "val/acc": 0.95, "flag": True}),
]
ALL = {r[0] for r in RUNS}


@pytest.fixture(scope="module")
def conn():
    c = db.connect(":memory:")
    c.execute("INSERT INTO entities (id, name, created_at) VALUES (1, 'e', '2024-01-01T00:00:00')")
    c.execute("INSERT INTO projects (id, entity_id, name, created_at) VALUES (1, 1, 'p', '2024-01-01T00:00:00')")
    for (name, state, display, group, job, sweep, user, host, tags, created, heartbeat, config, summary) in RUNS:
        c.execute(
            "INSERT INTO runs (project_id, name, state, display_name, group_name, job_type, sweep_name,"
            " username, host, tags, created_at, updated_at, heartbeat_at, config, summary)"
            " VALUES (1, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (name, state, display, group, job, sweep, user, host, json.dumps(tags), created, created,
             heartbeat, json.dumps({k: {"value": v} for k, v in config.items()}), json.dumps(summary)),
        )
    yield c
    c.close()


def matching(conn, filters) -> set[str]:
    sql, params = where_sql(parse_filters(filters))
    return {row[0] for row in conn.execute(f"SELECT r.name FROM runs r WHERE {sql}", params)}


CASES = [
    # columns
    ({}, ALL),
    ({"state": "finished"}, {"alpha", "delta"}),
    ({"state": {"$eq": "finished"}}, {"alpha", "delta"}),
    ({"state": {"$ne": "finished"}}, {"beta", "gamma", "eps"}),
    ({"state": {"$in": ["crashed", "failed"]}}, {"beta", "gamma"}),
    ({"state": {"$nin": ["crashed", "failed"]}}, {"alpha", "delta", "eps"}),
    ({"state": {"$in": []}}, set()),
    # An unknown field matches nothing, as on W&B, whatever the operator; a negation around it matches all.
    ({"bogus": 1}, set()),
    ({"State": "finished"}, set()),
    ({"summary.loss": 1}, set()),
    ({"summaryMetrics.loss": {"$ne": 1}}, set()),
    ({"foo": {"$exists": False}}, set()),
    ({"$or": [{"foo": 1}, {"state": "running"}]}, {"eps"}),
    ({"$nor": [{"foo": 1}]}, ALL),
    ({"state": {"$nin": []}}, ALL),
    ({"state": {"$gt": "crashed"}}, {"alpha", "gamma", "delta", "eps"}),
    ({"state": {"$gte": "finished", "$lt": "running"}}, {"alpha", "delta"}),
    ({"state": 1}, set()),  # type-strict: a number never equals a text column
    ({"state": {"$ne": 1}}, ALL),
    ({"state": {"$gt": 0}}, set()),
    ({"name": "beta"}, {"beta"}),
    ({"name": {"$in": ["alpha", "eps", "nope"]}}, {"alpha", "eps"}),
    ({"displayName": "Alpha"}, {"alpha"}),
    ({"display_name": {"$regex": "^[AB]"}}, {"alpha", "beta"}),
    ({"display_name": {"$regex": "run"}}, {"delta"}),  # unanchored search
    ({"display_name": {"$regex": "^a", "$options": "i"}}, {"alpha"}),
    ({"display_name": None}, {"gamma"}),
    ({"display_name": {"$ne": None}}, {"alpha", "beta", "delta", "eps"}),
    ({"display_name": {"$exists": False}}, {"gamma"}),
    ({"display_name": {"$gte": None}}, {"gamma"}),
    ({"display_name": {"$gt": None}}, set()),
    ({"group": "g1"}, {"alpha", "gamma"}),
    ({"group": {"$ne": "g1"}}, {"beta", "delta", "eps"}),  # $ne matches runs without a group
    ({"group": {"$in": ["g2", None]}}, {"beta", "delta", "eps"}),
    ({"group": {"$nin": ["g2", None]}}, {"alpha", "gamma"}),
    ({"jobType": "train"}, {"alpha", "delta"}),
    ({"job_type": {"$exists": True}}, {"alpha", "beta", "delta"}),
    ({"sweep": "s1"}, {"alpha"}),
    ({"sweepName": {"$ne": "s1"}}, ALL - {"alpha"}),
    ({"username": "ann"}, {"alpha", "delta"}),
    ({"user": "bob"}, {"beta"}),
    ({"host": {"$exists": True}}, {"alpha", "beta"}),
    ({"host": {"$lt": "h2"}}, {"alpha"}),
    # tags
    ({"tags": "baseline"}, {"alpha", "delta"}),
    ({"tags": {"$eq": "v1"}}, {"alpha", "eps"}),
    ({"tags": {"$ne": "baseline"}}, {"beta", "gamma", "eps"}),
    ({"tags": {"$in": ["v2", "baseline"]}}, {"alpha", "beta", "delta", "eps"}),
    ({"tags": {"$nin": ["v2", "baseline"]}}, {"gamma"}),
    ({"tags": {"$regex": "^v"}}, {"alpha", "beta", "eps"}),
    ({"tags": {"$gt": "v1"}}, {"beta", "eps"}),  # any element
    ({"tags": {"$exists": True}}, ALL),
    ({"tags": {"$exists": False}}, set()),
    ({"tags": None}, set()),
    ({"tags": 1}, set()),
    ({"$or": [{"tags": None}, {"tags": {"$ne": "v1"}}]}, {"beta", "gamma", "delta"}),  # reports' "not tagged"
    # timestamps
    ({"created_at": {"$lt": "2024-01-03"}}, {"alpha", "beta"}),
    ({"createdAt": {"$gte": "2024-01-03T00:00:00Z"}}, {"gamma", "delta", "eps"}),
    ({"created_at": "2024-01-02T13:30:00+01:00"}, {"beta"}),
    ({"created_at": "2024-01-02T07:30:00-05:00"}, {"beta"}),
    ({"created_at": {"$gt": "2024-01-02T12:30:00.999"}}, {"gamma", "delta", "eps"}),
    ({"created_at": {"$gte": "2024-01-02T12"}}, {"beta", "gamma", "delta", "eps"}),
    ({"created_at": "2024-01-02T13:30:00,25+01"}, {"beta"}),  # ISO's comma decimal, hour-only offset
    ({"$and": [{"created_at": {"$gt": "2024-01-01T00:00:00", "$lt": "2024-01-31"}}]}, {"beta", "gamma", "delta"}),
    ({"created_at": {"$in": ["2024-01-03", "2024-02-01T00:00:00Z"]}}, {"gamma", "delta", "eps"}),
    ({"created_at": {"$regex": "^2024-02"}}, {"eps"}),
    ({"heartbeat_at": None}, {"beta", "delta"}),
    ({"heartbeatAt": {"$gt": "2024-01-02"}}, {"gamma", "eps"}),
    ({"updated_at": {"$exists": True}}, ALL),
    ({"updatedAt": {"$lte": "2024-01-01T00:00:00"}}, {"alpha"}),
    # config: both forms, type strictness, missing keys, nesting
    ({"config.lr": 0.001}, {"alpha", "eps"}),
    ({"config.lr.value": 0.001}, {"alpha", "eps"}),
    ({"config.lr": {"$gt": 0.005}}, {"beta"}),
    ({"config.lr": {"$lte": 0.01}}, {"alpha", "beta", "eps"}),
    ({"config.lr": {"$gte": 0.001, "$lt": 0.01}}, {"alpha", "eps"}),
    ({"config.lr": None}, {"gamma", "delta"}),
    ({"config.lr": {"$ne": None}}, {"alpha", "beta", "eps"}),
    ({"config.lr": {"$exists": True}}, {"alpha", "beta", "gamma", "eps"}),  # present even though null
    ({"config.lr.value": {"$exists": False}}, {"delta"}),
    ({"config.lr": {"$regex": "0"}}, set()),  # regex only matches strings
    ({"config.epochs": 10}, {"alpha", "gamma"}),  # 10 == 10.0, not "10"
    ({"config.epochs": 10.0}, {"alpha", "gamma"}),
    ({"config.epochs": "10"}, {"beta"}),
    ({"config.epochs": {"$in": [10, "x"]}}, {"alpha", "gamma"}),
    ({"config.epochs": {"$in": ["10"]}}, {"beta"}),
    ({"config.epochs": {"$in": [None, "10"]}}, {"beta", "delta", "eps"}),
    ({"config.epochs": {"$nin": [10]}}, {"beta", "delta", "eps"}),
    ({"config.epochs": {"$gt": 5}}, {"alpha", "gamma"}),
    ({"config.epochs": {"$gt": "1"}}, {"beta"}),
    ({"config.flag": True}, {"alpha"}),  # not beta's 1
    ({"config.flag": 1}, {"beta"}),  # not alpha's true
    ({"config.flag": False}, {"gamma"}),
    ({"config.flag": 0}, set()),
    ({"config.flag": {"$gt": False}}, {"alpha"}),
    ({"config.flag": {"$gte": False}}, {"alpha", "gamma"}),
    ({"config.flag": {"$in": [True, 1]}}, {"alpha", "beta"}),
    ({"config.opt.name": "adam"}, {"alpha"}),
    ({"config.opt.value.name": "sgd"}, {"gamma"}),
    ({"config.opt.beta": {"$gte": 0.9}}, {"alpha"}),
    ({"config.opt": "adam"}, set()),  # an object never equals a scalar
    ({"config.opt": {"$ne": "adam"}}, ALL),
    ({"config.opt": {"$exists": True}}, {"alpha", "gamma"}),
    ({"config.a/b": "x y"}, {"eps"}),
    ({"config.a/b.value": {"$regex": "^x "}}, {"eps"}),
    ({"config.my key-1": 3}, {"eps"}),
    # summary
    ({"summary_metrics.loss": {"$lt": 0.6}}, {"alpha", "eps"}),
    ({"summary_metrics.loss": {"$gte": 0.5}}, {"alpha", "beta"}),
    ({"summary_metrics.loss": {"$gt": "a"}}, {"gamma"}),
    ({"summary_metrics.loss": "nan"}, {"gamma"}),
    ({"summary_metrics.val/acc": {"$gte": 0.9}}, {"alpha", "eps"}),
    ({"summary_metrics.val/acc": None}, {"gamma", "delta"}),
    ({"summary_metrics.val/acc": {"$gte": None}}, {"gamma", "delta"}),
    ({"summary_metrics.val/acc": {"$lt": None}}, set()),
    ({"summary_metrics.eval.top1": {"$gt": 0.8}}, {"gamma"}),
    ({"summary_metrics.note": {"$regex": "o"}}, {"alpha"}),
    ({"summary_metrics.note": 42}, {"beta"}),
    ({"summary_metrics.note": "42"}, set()),
    ({"summary_metrics.list": 1}, set()),  # no array-element matching outside tags
    ({"summary_metrics.list": {"$exists": True}}, {"gamma"}),
    ({"summary_metrics.flag": True}, {"eps"}),
    # logic
    ({"$or": [{"state": "crashed"}, {"tags": "v1"}]}, {"alpha", "beta", "eps"}),
    ({"$and": [{"state": "finished"}, {"tags": "baseline"}, {"config.lr": {"$exists": False}}]}, {"delta"}),
    ({"$nor": [{"state": "finished"}, {"tags": "v2"}]}, {"gamma"}),
    ({"$nor": [{"group": {"$gt": "g1"}}]}, {"alpha", "beta", "gamma", "eps"}),  # NULL group stays "not >"
    ({"$nor": [{"config.flag": {"$lt": True}}]}, {"alpha", "beta", "delta", "eps"}),
    ({"state": "finished", "tags": "v1"}, {"alpha"}),
    ({"$or": [{"$and": [{"group": "g1"}, {"state": {"$ne": "failed"}}]},
              {"$nor": [{"config.lr": {"$exists": True}}]}]}, {"alpha", "delta"}),
    ({"$and": [{}]}, ALL),
    # hostile strings are just values
    ({"name": "alpha' OR 1=1 --"}, set()),
    ({"config.x') OR 1=1 --": 1}, set()),
]


@pytest.mark.parametrize(("filters", "expected"), CASES, ids=[json.dumps(c[0])[:60] for c in CASES])
def test_filter_corpus(conn, filters, expected):
    assert matching(conn, filters) == expected
    assert matching(conn, json.dumps(filters)) == expected  # the JSONString form


def test_user_text_never_reaches_sql():
    sql, params = where_sql({"name": "x'; DROP TABLE runs; --", "config.a') --": {"$regex": "y'"}})
    assert "DROP" not in sql and "--" not in sql and "y'" not in sql
    assert "x'; DROP TABLE runs; --" in params and '$."a\') --"."value"' in params


def test_empty_and_none_filters():
    assert parse_filters(None) == {}
    assert parse_filters("") == {}
    assert parse_filters("{}") == {}
    assert parse_filters({"state": "x"}) == {"state": "x"}
    assert where_sql({}) == ("1", [])


BAD = [
    ("{bad", "not valid JSON"),
    ('{"a": NaN}', "not valid JSON"),
    ("[1, 2]", "must be a JSON object"),
    ('"finished"', "must be a JSON object"),
    ({"state": {"$foo": 1}}, 'unknown operator "$foo"'),
    ({"state": {"$not": {"$eq": "x"}}}, "valid operators: $eq $ne"),
    ({"$not": [{"state": "x"}]}, 'unknown operator "$not"'),
    ({"$eq": "x"}, "valid there: $and $or $nor"),
    ({"config": 1}, 'write "config.<key>"'),
    ({"config.a..b": 1}, "empty key segment"),
    ({'config.a"b': 1}, "quotes"),
    ({"summary_metrics.a\\b": 1}, "backslashes"),
    ({"display_name": {"$regex": "("}}, "invalid regular expression"),
    ({"display_name": {"$regex": 5}}, "expected a string pattern"),
    ({"display_name": {"$regex": "a", "$options": "q"}}, "$options"),
    ({"display_name": {"$options": "i"}}, "only valid next to $regex"),
    ({"name": {"$in": "alpha"}}, "expected a list"),
    ({"name": {"$nin": {"a": 1}}}, "expected a list"),
    ({"config.lr": {"$exists": 1}}, "expected true or false"),
    ({"created_at": {"$gt": 1704067200.0}}, 'timestamps must be ISO strings like "2024-01-31T00:00:00"'),
    ({"created_at": "yesterday"}, "timestamps must be ISO strings"),
    ({"heartbeat_at": {"$in": ["2024-13-01"]}}, "timestamps must be ISO strings"),
    ({"created_at": {"$gt": "0001-01-01T00:00:00+01:00"}}, "timestamps must be ISO strings"),  # before year 1
    ({"$and": []}, "non-empty list"),
    ({"$or": {"state": "x"}}, "non-empty list"),
    ({"$nor": ["state"]}, "must be a JSON object"),
    ({"config.lr": {"$eq": {"x": 1}}}, "expected a string, number, boolean or null"),
    ({"config.opt": {"name": "adam"}}, "config.opt.lr"),
    ({"config.lr": {"$gt": [1]}}, "an array"),
    ({"tags": ["a", "b"]}, "an array"),
    ({"state": {}}, "empty object"),
    ({"state": {"$eq": "x", "y": 1}}, "mixes operators"),
    ({"bogus": {"$foo": 1}}, 'unknown operator "$foo"'),  # an unknown field still has its operators checked
    ({"$and": []}, "needs a non-empty list"),  # W&B's answer is not known: the stricter one (README)
    ({"tags": {"$all": ["a"]}}, 'unknown operator "$all"'),
]


@pytest.mark.parametrize(("raw", "phrase"), BAD, ids=[json.dumps(b[0])[:50] for b in BAD])
def test_bad_filters(raw, phrase):
    with pytest.raises(FilterSyntaxError) as info:
        where_sql(parse_filters(raw))
    message = str(info.value)
    assert phrase in message
    assert "\n" not in message
    assert "SELECT" not in message and "json_extract" not in message and "json_type" not in message


def test_too_deep_and_too_large():
    deep: dict = {"state": "x"}
    for _ in range(30):
        deep = {"$and": [deep]}
    with pytest.raises(FilterSyntaxError, match="levels deep"):
        where_sql(deep)
    with pytest.raises(FilterSyntaxError, match="too large"):
        where_sql({"$or": [{"config.lr": i} for i in range(20000)]})


def test_long_lists_stay_within_sqlite_limits(conn):
    names = [f"run{i}" for i in range(50000)] + ["beta"]
    assert matching(conn, {"name": {"$in": names}}) == {"beta"}
    assert matching(conn, {"config.epochs": {"$in": list(range(11, 40000)) + [10]}}) == {"alpha", "gamma"}
    assert matching(conn, {"$or": [{"state": f"s{i}"} for i in range(5000)] + [{"state": "failed"}]}) == {"gamma"}


# ----------------------------------------------------------------------------------------------
# order


def ordered(conn, order, where=("1", [])) -> list[str]:
    spec = order_sql(order)
    ob, ob_params = spec.order_by()
    rows = conn.execute(f"SELECT r.name FROM runs r WHERE {where[0]} ORDER BY {ob}", [*where[1], *ob_params])
    return [row[0] for row in rows]


ORDERS = [
    (None, ["alpha", "beta", "gamma", "delta", "eps"]),  # default +created_at, tie broken by id
    ("", ["alpha", "beta", "gamma", "delta", "eps"]),
    ("+created_at", ["alpha", "beta", "gamma", "delta", "eps"]),
    ("created_at", ["alpha", "beta", "gamma", "delta", "eps"]),
    ("-created_at", ["eps", "delta", "gamma", "beta", "alpha"]),
    ("-createdAt", ["eps", "delta", "gamma", "beta", "alpha"]),
    ("+summary_metrics.loss", ["delta", "eps", "alpha", "beta", "gamma"]),  # missing < numbers < strings
    ("-summary_metrics.loss", ["gamma", "beta", "alpha", "eps", "delta"]),
    ("summary_metrics.val/acc", ["gamma", "delta", "beta", "alpha", "eps"]),  # null ties missing
    ("config.lr.value", ["gamma", "delta", "alpha", "eps", "beta"]),
    ("-config.lr", ["beta", "eps", "alpha", "delta", "gamma"]),
    ("+config.flag", ["delta", "eps", "beta", "gamma", "alpha"]),  # numbers < booleans, false < true
    ("config.epochs", ["delta", "eps", "alpha", "gamma", "beta"]),
    ("summary_metrics.eval", ["beta", "delta", "eps", "alpha", "gamma"]),  # objects after scalars
    ("summary_metrics.eval.top1", ["beta", "delta", "eps", "alpha", "gamma"]),
    ("group", ["beta", "eps", "alpha", "gamma", "delta"]),
    ("-display_name", ["eps", "delta", "beta", "alpha", "gamma"]),
    ("name", ["alpha", "beta", "delta", "eps", "gamma"]),
    ("-heartbeatAt", ["eps", "gamma", "alpha", "delta", "beta"]),
    ("username", ["gamma", "alpha", "delta", "beta", "eps"]),
]


@pytest.mark.parametrize(("order", "expected"), ORDERS)
def test_order(conn, order, expected):
    assert ordered(conn, order) == expected


@pytest.mark.parametrize(("order", "expected"), ORDERS)
def test_keyset_pagination(conn, order, expected):
    spec = order_sql(order)
    sel, sel_params = spec.select()
    ob, ob_params = spec.order_by()
    seen: list[str] = []
    cursor = None
    for _ in range(10):
        after, after_params = spec.after(*cursor) if cursor else ("1", [])
        page = conn.execute(
            f"SELECT r.name, r.id, {sel} FROM runs r WHERE {after} ORDER BY {ob} LIMIT 2",
            [*sel_params, *after_params, *ob_params],
        ).fetchall()
        if not page:
            break
        seen += [row["name"] for row in page]
        last = page[-1]
        # the cursor survives a JSON round trip, as it would inside a GraphQL cursor string
        cursor = json.loads(json.dumps([last["order_rank"], last["order_value"], last["id"]]))
    assert seen == expected


def test_keyset_with_a_filter(conn):
    spec = order_sql("-summary_metrics.loss")
    where, where_params = where_sql({"state": {"$ne": "crashed"}})
    after, after_params = spec.after(1, 0.5, 1)  # strictly after alpha
    ob, ob_params = spec.order_by()
    rows = conn.execute(
        f"SELECT r.name FROM runs r WHERE ({where}) AND {after} ORDER BY {ob}",
        [*where_params, *after_params, *ob_params],
    )
    assert [r[0] for r in rows] == ["eps", "delta"]


def test_order_spec_shape():
    spec = order_sql("-summary_metrics.loss")
    assert spec.descending and spec.key[2] == "r.id"
    assert spec.params and all(p == '$."loss"' for p in spec.params)
    assert spec.after(1, 0.5, 3)[0].endswith("< (?, ?, ?)")
    assert order_sql("+summary_metrics.loss").after(1, 0.5, 3)[0].endswith("> (?, ?, ?)")
    assert order_sql("config.lr").params == order_sql("config.lr.value").params
    ob, params = order_sql(None).order_by()
    assert (ob, params) == ("r.created_at ASC, r.id ASC", [])


@pytest.mark.parametrize(
    ("order", "phrase"),
    [
        ("summary.loss", 'summary keys are "summary_metrics.loss"'),
        ("-bogus", 'unknown field "bogus"'),
        ("tags", 'cannot order by "tags"'),
        ("-", "names no field"),
        ("config.", "needs a key"),
        ("summary_metrics.a..b", "empty key segment"),
    ],
)
def test_bad_orders(order, phrase):
    with pytest.raises(FilterSyntaxError) as info:
        order_sql(order)
    assert phrase in str(info.value)
    assert "SELECT" not in str(info.value)


def test_bad_cursor():
    with pytest.raises(FilterSyntaxError, match="invalid cursor"):
        order_sql(None).after(2, None, 1)
    with pytest.raises(FilterSyntaxError, match="invalid cursor"):
        order_sql(None).after("2", "x", 1)


def test_keyset_on_a_constant_rank_column():
    # created_at is NOT NULL: rank is always 2, so it is left out of the row-value comparison
    assert order_sql("+created_at").after(2, "2024-01-02T00:00:00", 7) == (
        "(r.created_at, r.id) > (?, ?)", ["2024-01-02T00:00:00", 7])
    assert order_sql("+created_at").after(0, 0, 99) == ("1", [])  # a lower rank: every row is after it
    assert order_sql("+created_at").after(3, 0, 1) == ("0", [])
    assert order_sql("-created_at").after(0, 0, 99) == ("0", [])
