"""The local server's run index at scale, for correctness (timings are bench/p9_server_scale.py's):
listings ordered by a config/summary key page exactly like one full sort, even while runs come
and go between pages; config/summary filters answered from run_keys agree with json_extract
over the stored JSON; run_keys follows every write path; the query plans seek indexes; an older
database is migrated on open."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.conftest import Caller
from tests.unit import test_server_filters_property as model
from wandb_gql.server import db, sqlfilter
from wandb_gql.server.local import LocalServer
from wandb_gql.server.store import runs as store_runs

UPSERT = """mutation U($input: UpsertBucketInput!) { upsertBucket(input: $input) { bucket { id name } } }"""
COUNT_QUERY = '{ project(name: "p", entityName: "local") { runCount } }'
PAGE = """query P($f: JSONString, $o: String, $a: String, $n: Int) { project(name: "p", entityName: "local") {
  runCount(filters: $f) runs(filters: $f, order: $o, after: $a, first: $n) {
    edges { node { name } } pageInfo { endCursor hasNextPage } } } }"""

# Values as W&B users log them: numbers (ties, int == real), text, booleans, null, nested
# objects, arrays (histograms), and nothing at all.
VALUES: list[Any] = [3, 1.5, 1, 1.0, -2, 0, 1e308, -0.5, 3, "b", "a", "", "B", "é", True, False, True, None,
                     {"x": 1}, {"x": 2}, [1, 2], [], "NaN"]
MISSING = object()


def upsert(api: Caller, name: str, **fields: Any) -> dict[str, Any]:
    return api.ok(UPSERT, {"input": {"modelName": "p", "entityName": "local", "name": name, **fields}})[
        "upsertBucket"]["bucket"]


def stream_summary(api: Caller, name: str, summary: dict[str, Any], project: str = "p") -> None:
    body = {"files": {"wandb-summary.json": {"offset": 0, "content": [json.dumps(summary)]}}}
    assert api.post(f"/files/local/{project}/{name}/file_stream", body).status == 200


def listing(api: Caller, order: str | None, filters: Any = None, per_page: int = 4) -> list[str]:
    names: list[str] = []
    after = None
    while True:
        variables = {"o": order, "a": after, "n": per_page, "f": json.dumps(filters) if filters else None}
        runs = api.ok(PAGE, variables)["project"]["runs"]
        names += [e["node"]["name"] for e in runs["edges"]]
        if not runs["pageInfo"]["hasNextPage"]:
            return names
        after = runs["pageInfo"]["endCursor"]


def sort_key(value: Any) -> tuple[int, Any]:
    """MongoDB's bracket order, restated: missing/null < numbers < text < objects < arrays < booleans."""
    if value is MISSING or value is None:
        return 0, 0
    if isinstance(value, bool):
        return 5, int(value)
    if isinstance(value, (int, float)):
        return 1, value
    if isinstance(value, str):
        return 2, value.encode()  # SQLite compares text as UTF-8 bytes
    return (3, 0) if isinstance(value, dict) else (4, 0)


def expected_order(values: dict[str, Any], created: list[str], descending: bool) -> list[str]:
    keyed = sorted(created, key=lambda n: (*sort_key(values[n]), created.index(n)))
    return keyed[::-1] if descending else keyed


@pytest.fixture
def populated(fresh_api: Caller) -> tuple[Caller, list[str], dict[str, Any], dict[str, Any]]:
    """Runs whose summary `loss` and config `lr` take every kind of value (some through
    file_stream), a few lacking them; returns (api, names in creation order, loss by run, lr by run)."""
    created, loss, lr = [], {}, {}
    for i, value in enumerate(VALUES + [MISSING, MISSING]):
        name = f"r{i:02d}"
        other = VALUES[(i * 7) % len(VALUES)]
        summary = {} if value is MISSING else {"loss": value}
        summary["val/acc"] = i
        config = {"lr": {"desc": None, "value": other}} if i % 5 else {"other": {"value": 1}}
        if i % 3 == 0:  # the SDK's way: the summary arrives through file_stream
            upsert(fresh_api, name, config=json.dumps(config))
            stream_summary(fresh_api, name, summary)
        else:
            upsert(fresh_api, name, config=json.dumps(config), summaryMetrics=json.dumps(summary))
        created.append(name)
        loss[name] = value
        lr[name] = config["lr"]["value"] if "lr" in config else MISSING
    return fresh_api, created, loss, lr


@pytest.mark.parametrize("per_page", [1, 4, 50])
def test_ordered_by_a_key_pages_equal_one_full_sort(populated, per_page):
    api, created, loss, lr = populated
    for field, values in (("summary_metrics.loss", loss), ("config.lr", lr), ("config.lr.value", lr)):
        for sign in ("+", "-"):
            got = listing(api, sign + field, per_page=per_page)
            assert got == expected_order(values, created, sign == "-"), (sign + field, per_page)
    # unsigned is ascending; a key no run has leaves creation order (all tie, broken by id)
    assert listing(api, "summary_metrics.loss") == expected_order(loss, created, False)
    assert listing(api, "-summary_metrics.nothing") == created[::-1]
    assert listing(api, "+summary_metrics.nothing") == created


def test_ordered_listing_with_a_filter_and_the_index_agree_with_json_extract(populated):
    api, created, loss, _ = populated
    filters = {"summary_metrics.val/acc": {"$gte": 5}}
    got = listing(api, "-summary_metrics.loss", filters, per_page=3)
    assert got == [n for n in expected_order(loss, created, True) if int(n[1:]) >= 5]


def test_paging_while_runs_come_and_go_has_no_duplicates_or_gaps(fresh_api):
    for i in range(30):
        upsert(fresh_api, f"s{i:02d}", summaryMetrics=json.dumps({"loss": i % 10} if i % 4 else {}))
    for order in ("-summary_metrics.loss", "+summary_metrics.loss"):
        seen: list[str] = []
        deleted: set[str] = set()
        added: list[str] = []
        after = None
        step = 0
        while True:
            page = fresh_api.ok(PAGE, {"o": order, "a": after, "n": 4})["project"]["runs"]
            seen += [e["node"]["name"] for e in page["edges"]]
            if not page["pageInfo"]["hasNextPage"]:
                break
            after = page["pageInfo"]["endCursor"]
            step += 1
            # between pages: a run not yet seen is deleted, new runs land before and after the cursor
            unseen = sorted({f"s{i:02d}" for i in range(30)} - set(seen) - deleted)
            if unseen:
                victim = unseen[step % len(unseen)]
                fresh_api.ok('mutation M($f: JSONString!) { deleteRuns(input: {entityName: "local",'
                             ' projectName: "p", filters: $f}) { errors } }', {"f": json.dumps({"name": victim})})
                deleted.add(victim)
            for value in (-1, 99, None):
                name = f"n{order[0]}{step}{value}"
                upsert(fresh_api, name, summaryMetrics=json.dumps({} if value is None else {"loss": value}))
                added.append(name)
        assert len(seen) == len(set(seen)), order
        assert not deleted & set(seen), order
        # every run present throughout is listed exactly once
        assert {f"s{i:02d}" for i in range(30)} - deleted <= set(seen), order
        fresh_api.ok('mutation { undeleteRuns(input: {entityName: "local", projectName: "p",'
                     ' filters: "{}"}) { clientMutationId } }')
        fresh_api.ok('mutation M($f: JSONString!) { deleteRuns(input: {entityName: "local", projectName: "p",'
                     ' filters: $f}) { errors } }', {"f": json.dumps({"name": {"$in": added}})})


FILTERS: list[dict[str, Any]] = [
    {"summary_metrics.loss": 1}, {"summary_metrics.loss": 1.0}, {"summary_metrics.loss": 3},
    {"summary_metrics.loss": "a"}, {"summary_metrics.loss": True}, {"summary_metrics.loss": False},
    {"summary_metrics.loss": None}, {"summary_metrics.loss": {"$ne": None}}, {"summary_metrics.loss": {"$ne": 3}},
    {"summary_metrics.loss": {"$gt": 0}}, {"summary_metrics.loss": {"$lte": 1}}, {"summary_metrics.loss": {"$lt": "b"}},
    {"summary_metrics.loss": {"$gte": False}}, {"summary_metrics.loss": {"$gt": None}},
    {"summary_metrics.loss": {"$gte": None}}, {"summary_metrics.loss": {"$in": [1, "a", None, True]}},
    {"summary_metrics.loss": {"$nin": [3, "b"]}}, {"summary_metrics.loss": {"$exists": True}},
    {"summary_metrics.loss": {"$exists": False}}, {"summary_metrics.loss": {"$regex": "^[a-z]$"}},
    {"summary_metrics.loss.x": 2}, {"summary_metrics.loss.x": {"$exists": True}},
    {"summary_metrics.val/acc": {"$gte": 10, "$lt": 15}}, {"config.lr": 1}, {"config.lr.value": {"$lt": 2}},
    {"config.lr": None}, {"config.other": 1}, {"config.lr.x": {"$gt": 1}},
    {"$or": [{"config.lr": "a"}, {"summary_metrics.loss": {"$gt": 2}}]},
    {"$nor": [{"summary_metrics.loss": {"$exists": True}}]},
    {"$and": [{"summary_metrics.loss": {"$ne": None}}, {"name": {"$in": ["r01", "r02", "r03"]}}]},
]


@pytest.mark.parametrize("filters", FILTERS, ids=[json.dumps(f) for f in FILTERS])
def test_filters_from_run_keys_agree_with_json_extract(populated, filters):
    api, created, _, _ = populated
    indexed = sqlfilter.where_sql(filters, 1)[0]
    assert "run_keys" in indexed or indexed in ("0", "1")  # the index is used unless the answer is fixed
    with sqlite3.connect(_db_file(api)) as conn:
        project_id = conn.execute("SELECT id FROM projects WHERE name = 'p'").fetchone()[0]
        where, params = sqlfilter.where_sql(filters)  # json_extract over the stored JSON
        conn.create_function("regexp", 2, db._regexp, deterministic=True)
        expected = [row[0] for row in conn.execute(
            f"SELECT r.name FROM runs r WHERE r.project_id = ? AND r.deleted_at IS NULL AND ({where}) ORDER BY r.id",
            (project_id, *params))]
    assert listing(api, None, filters, per_page=7) == expected
    assert api.ok(PAGE, {"f": json.dumps(filters), "n": 0})["project"]["runCount"] == len(expected)


def _db_file(api: Caller) -> str:
    return str(api.server._store_args[0])


# -- run_keys after every write path -------------------------------------------------------------

def _model_nodes(value: Any, path: str) -> list[tuple[str, int, Any]]:
    """(path, rank, value) of a JSON value and its object members, as run_keys should hold them."""
    rank, key = sort_key(value)
    nodes = [(path, rank, value if rank in (1, 2) else key)]
    if isinstance(value, dict):
        for label, child in value.items():
            if "[" not in label:
                nodes += _model_nodes(child, path + sqlfilter._fullkey([label])[1:])
    return nodes


def _expected_keys(conn: sqlite3.Connection) -> set[tuple[Any, ...]]:
    out: set[tuple[Any, ...]] = set()
    for run_id, project_id, config, summary in conn.execute("SELECT id, project_id, config, summary FROM runs"):
        for label, entry in orjson.loads(config).items():
            if label != "_wandb" and isinstance(entry, dict) and "value" in entry:
                for node in _model_nodes(entry["value"], sqlfilter._fullkey([label, "value"])):
                    out.add((run_id, project_id, 0, *node))
        for label, value in orjson.loads(summary).items():
            for node in _model_nodes(value, sqlfilter._fullkey([label])):
                out.add((run_id, project_id, 1, *node))
    return out


def _actual_keys(conn: sqlite3.Connection) -> set[tuple[Any, ...]]:
    return {tuple(row) for row in conn.execute(
        "SELECT k.run_id, p.project_id, k.source, p.path, k.rank, k.value FROM run_keys k"
        " JOIN run_key_paths p ON p.id = k.path_id")}


def assert_keys_consistent(api: Caller) -> None:
    with sqlite3.connect(_db_file(api)) as conn:
        expected, actual = _expected_keys(conn), _actual_keys(conn)
    assert actual == expected, (sorted(actual - expected)[:5], sorted(expected - actual)[:5])
    with sqlite3.connect(_db_file(api)) as conn:
        counted = dict(conn.execute("SELECT project_id, count(*) FROM runs WHERE deleted_at IS NULL GROUP BY 1"))
        kept = {p: n for p, n in conn.execute("SELECT project_id, live FROM project_run_counts") if n}
    assert kept == counted


def test_run_keys_follow_every_write_path(fresh_api):
    api = fresh_api
    made = upsert(api, "w1", config=json.dumps({"lr": {"value": 0.1}, "opt": {"value": {"b/c": [1], "n": None}},
                                                "_wandb": {"value": {"t": 1}}, "é": {"value": "ü"}}),
                  summaryMetrics=json.dumps({"loss": 1, "h": {"_type": "histogram", "values": [1, {"a": 2}]}}))
    upsert(api, "w2", summaryMetrics=json.dumps({"loss": "x"}))
    assert_keys_consistent(api)
    upsert(api, "w1", config=json.dumps({"lr": {"value": 0.2}}))  # config replaced
    upsert(api, "w1", summaryMetrics=json.dumps({"loss": 2, "new": True}))  # summary replaced
    assert_keys_consistent(api)
    # only changed rows are rewritten: a key changing type, one unchanged, one gone, one new
    upsert(api, "w1", summaryMetrics=json.dumps({"loss": 2.0, "new": "True", "more": {"a": None}}))
    assert_keys_consistent(api)
    assert listing(api, None, {"summary_metrics.new": True}) == []
    assert listing(api, None, {"summary_metrics.more.a": {"$exists": True}, "summary_metrics.loss": 2}) == ["w1"]
    stream_summary(api, "w2", {"loss": 0.5, "acc": {"top1": 0.9}})  # file_stream summary
    assert_keys_consistent(api)
    api.ok('mutation M($ids: [String]) { modifyRuns(input: {ids: $ids, addTags: ["t"]}) { runs { name } } }',
           {"ids": [made["id"]]})
    api.ok('mutation { deleteRuns(input: {entityName: "local", projectName: "p", filters: "{\\"name\\": \\"w2\\"}"})'
           ' { errors } }')
    assert listing(api, None, {"summary_metrics.loss": 0.5}) == []  # deleted runs are not found
    api.ok('mutation { undeleteRuns(input: {entityName: "local", projectName: "p", filters: "{}"})'
           ' { clientMutationId } }')
    assert listing(api, None, {"summary_metrics.loss": 0.5}) == ["w2"]
    assert_keys_consistent(api)
    moved = api.ok('mutation { moveRuns(input: {sourceEntityName: "local", sourceProjectName: "p",'
                   ' destinationEntityName: "local", destinationProjectName: "q",'
                   ' filters: "{\\"name\\": \\"w2\\"}"}) { task { state } } }')
    assert moved["moveRuns"]["task"]["state"] == "FINISHED"
    assert_keys_consistent(api)
    assert listing(api, None, {"summary_metrics.loss": 0.5}) == []
    q = api.ok('{ project(name: "q", entityName: "local") { runs(filters: "{\\"summary_metrics.loss\\": 0.5}",'
               ' order: "-summary_metrics.acc.top1") { edges { node { name } } } } }')
    assert [e["node"]["name"] for e in q["project"]["runs"]["edges"]] == ["w2"]
    # purge: a hard-deleted run leaves no rows behind
    api.ok('mutation { deleteRuns(input: {entityName: "local", projectName: "p", filters: "{}"}) { errors } }')
    with sqlite3.connect(_db_file(api)) as conn:
        conn.execute("UPDATE runs SET deleted_at = '2000-01-01T00:00:00' WHERE deleted_at IS NOT NULL")
    assert api.post("/_local/purge", {}).body["purged"] == 1
    assert_keys_consistent(api)
    with sqlite3.connect(_db_file(api)) as conn:
        assert conn.execute("SELECT count(*) FROM run_keys WHERE run_id NOT IN (SELECT id FROM runs)").fetchone()[0] == 0


# -- query plans ---------------------------------------------------------------------------------

def _plans(path: str, call: Any) -> list[str]:
    """EXPLAIN QUERY PLAN of every statement `call(conn, project_id)` runs (values inlined by SQLite)."""
    conn = db.connect(path)
    statements: list[str] = []
    conn.set_trace_callback(statements.append)
    project_id = conn.execute("SELECT id FROM projects WHERE name = 'p'").fetchone()[0]
    call(conn, project_id)
    conn.set_trace_callback(None)
    out = []
    for sql in statements:
        if sql.lstrip().upper().startswith("SELECT"):
            out.append(" | ".join(row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + sql)))
    conn.close()
    return out


def test_query_plans_seek_indexes(populated):
    api, created, _, _ = populated
    path = _db_file(api)
    count = _plans(path, lambda c, p: store_runs.count(c, p, None))
    assert "SEARCH project_run_counts USING INTEGER PRIMARY KEY (rowid=?)" in count, count
    by_name = _plans(path, lambda c, p: store_runs.page(c, p, {"name": {"$in": created[:100]}},
                                                        store_runs.order(None), 50, None))
    assert any("sqlite_autoindex_runs_1 (project_id=? AND name=?)" in plan for plan in by_name), by_name
    selective = _plans(path, lambda c, p: store_runs.page(c, p, {"config.lr": "a"}, store_runs.order(None), 50, None))
    plan = next(plan for plan in selective if "run_keys" in plan)
    assert "INTEGER PRIMARY KEY (rowid=?)" in plan and "run_keys_value (path_id=? AND rank=? AND value=?)" in plan
    ordered = _plans(path, lambda c, p: store_runs.page(c, p, None, store_runs.order("-summary_metrics.loss"),
                                                        5, None))
    walk = next(plan for plan in ordered if "run_keys_value" in plan)
    assert "TEMP B-TREE" not in walk, walk  # the index gives the order: no sort of every run


# -- an older database ---------------------------------------------------------------------------

def test_an_old_database_is_migrated_on_open(tmp_path):
    path = tmp_path / "old.db"
    with LocalServer(path) as server:
        api = Caller(server)
        for i, value in enumerate([2, None, 1, "x"]):
            upsert(api, f"o{i}", summaryMetrics=json.dumps({"loss": value}), config=json.dumps({"lr": {"value": i}}))
        body = {"files": {"wandb-history.jsonl": {"offset": 0, "content": ['{"_step": 0}', '{"_step": 1}']}}}
        assert api.post("/files/local/p/o0/file_stream", body).status == 200
    # as a database written before run_keys and the bounded offsets: no index, no triggers, no
    # markers, and line counts past GraphQL's Int
    with sqlite3.connect(path) as conn:
        for trigger in [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")]:
            conn.execute(f"DROP TRIGGER {trigger}")
        conn.execute("DROP TABLE run_keys")
        # schema 3-4 named its update triggers so (they rewrote every row of a changed summary)
        conn.execute("CREATE TRIGGER run_keys_summary AFTER UPDATE OF summary ON runs BEGIN SELECT 1; END")
        conn.execute("DROP TABLE run_key_paths")
        conn.execute("DROP INDEX runs_live")
        conn.execute("DROP TABLE project_run_counts")
        conn.execute("DELETE FROM meta WHERE key IN ('schema', 'run_keys')")
        conn.execute("DELETE FROM sqlite_stat1")
        conn.execute("UPDATE runs SET history_line_count = 3000000000, events_line_count = 2147483648,"
                     " log_line_count = 5000000000 WHERE name = 'o0'")
    with LocalServer(path) as server:
        api = Caller(server)
        got = api.ok('{ project(name: "p", entityName: "local") { runs(order: "-summary_metrics.loss") {'
                      ' edges { node { name historyLineCount eventsLineCount logLineCount } } } } }')
        nodes = [e["node"] for e in got["project"]["runs"]["edges"]]
        assert [n["name"] for n in nodes] == ["o3", "o0", "o2", "o1"]
        assert nodes[1] == {"name": "o0", "historyLineCount": 2, "eventsLineCount": 0, "logLineCount": 0}
        assert listing(api, None, {"config.lr": {"$gte": 2}}) == ["o2", "o3"]
        assert api.ok(COUNT_QUERY)["project"]["runCount"] == 4
        assert_keys_consistent(api)
        with sqlite3.connect(path) as conn:
            assert db.meta(conn, "schema") == db._SCHEMA
            triggers = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")}
            assert "run_keys_summary" not in triggers and "run_keys_summary_changes" in triggers
            assert conn.execute("SELECT count(*) FROM sqlite_stat1 WHERE idx = 'runs_live'").fetchone()[0] == 1


# -- the filter and order models of tests/unit, against run_keys ---------------------------------


@model.FAST
@given(rs=model.runs(), flts=st.lists(model.filters, min_size=2, max_size=8))
def test_run_keys_filters_match_the_model(rs, flts):
    model.load(rs)
    for flt in flts:
        sql, params = sqlfilter.where_sql(flt, 1)
        got = {row[0] for row in model.CONN.execute(f"SELECT r.name FROM runs r WHERE {sql}", params)}
        assert got == {r["name"] for r in rs if model.m_match(r, flt)}, (flt, sql)


@model.FAST
@given(rs=model.runs(), sign=st.sampled_from(["+", "-", ""]), field=st.sampled_from(model.ORDER_FIELDS),
       page=st.integers(1, 3))
def test_keyed_pages_match_the_model(rs, sign, field, page):
    ids = model.load(rs)
    want = [r["name"] for r in sorted(rs, key=lambda r: model.sort_key(r, field, ids), reverse=sign == "-")]
    spec = store_runs.order(sign + field)
    got: list[str] = []
    after = None
    while True:
        rows, more = store_runs.page(model.CONN, 1, None, spec, page, after)
        got += [row["name"] for row in rows]
        if not more:
            break
        # through JSON, as a cursor carries it
        after = tuple(json.loads(json.dumps(list(store_runs.position(rows[-1])))))  # type: ignore[assignment]
    assert got == want


def test_runs_lacking_the_key_are_found_however_few(fresh_api):
    """The rank-0 part (key missing or null) is skipped only when every live run holds a value:
    deleted runs holding one must not hide a live run lacking it."""
    for i in range(6):
        upsert(fresh_api, f"k{i}", summaryMetrics=json.dumps({"loss": i}))
    fresh_api.ok('mutation { deleteRuns(input: {entityName: "local", projectName: "p", filters: '
                 '"{\\"name\\": {\\"$in\\": [\\"k1\\", \\"k2\\"]}}"}) { errors } }')
    assert listing(fresh_api, "-summary_metrics.loss", per_page=4) == ["k5", "k4", "k3", "k0"]
    upsert(fresh_api, "none", summaryMetrics=json.dumps({"loss": None}))
    upsert(fresh_api, "bare")
    assert listing(fresh_api, "-summary_metrics.loss", per_page=4) == ["k5", "k4", "k3", "k0", "bare", "none"]
    assert listing(fresh_api, "+summary_metrics.loss", per_page=1) == ["none", "bare", "k0", "k3", "k4", "k5"]
