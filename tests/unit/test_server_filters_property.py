"""Property tests: the SQL translation of filters and orders agrees with a plain Python model.

The evaluator below restates MongoDB semantics independently of filters.py (only the field
names are shared knowledge), so a disagreement points at one side or the other.
"""

from __future__ import annotations

import json
import operator
import re
from datetime import datetime, timedelta, timezone

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wandb_gql.server import db
from wandb_gql.server.sqlfilter import order_sql, where_sql

NAMES = ["r0", "r1", "r2", "r3", "r4", "r5"]
STATES = ["running", "finished", "crashed"]
TAGS = ["a", "b", "c"]
DISPLAY = ["x", "y", "Xz"]
GROUPS = ["g1", "g2"]
CREATED = ["2024-01-01T00:00:00", "2024-01-01T12:00:00", "2024-03-05T08:30:15"]
STRINGS = ["a", "b", "ab", "A", ""]
MISSING = object()

# W&B field name -> run column in the model (restated, not imported)
COLUMNS = {
    "name": "name", "state": "state", "display_name": "display_name", "displayName": "display_name",
    "group": "group", "created_at": "created_at", "createdAt": "created_at",
}
JSON_FIELDS = [
    "config.lr", "config.lr.value", "config.a/b", "config.opt", "config.opt.x", "config.opt.value.x",
    "summary_metrics.lr", "summary_metrics.a/b", "summary_metrics.opt", "summary_metrics.opt.x",
]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(0, 2),
    st.sampled_from([1.0, 1.5, 0.5]),  # 1 == 1.0 across int/real
    st.sampled_from(STRINGS),
)
maybe = st.one_of(st.just(MISSING), scalars, scalars)
opts = st.one_of(st.just(MISSING), scalars, st.builds(lambda x: {} if x is MISSING else {"x": x}, maybe))
states = st.sampled_from(STATES)
displays = st.one_of(st.none(), st.sampled_from(DISPLAY))
groups = st.one_of(st.none(), st.sampled_from(GROUPS))
tag_lists = st.lists(st.sampled_from(TAGS), unique=True, max_size=3)
created = st.sampled_from(CREATED)
run_counts = st.integers(3, len(NAMES))
name_orders = st.permutations(NAMES)


@st.composite
def json_values(draw) -> dict:
    out = {}
    for key in ("lr", "a/b"):
        v = draw(maybe)
        if v is not MISSING:
            out[key] = v
    opt = draw(opts)
    if opt is not MISSING:
        out["opt"] = opt
    return out


JSON_VALUES = json_values()


@st.composite
def runs(draw) -> list[dict]:
    n = draw(run_counts)
    return [
        {
            "name": name,
            "state": draw(states),
            "display_name": draw(displays),
            "group": draw(groups),
            "tags": draw(tag_lists),
            "created_at": draw(created),
            "config": draw(JSON_VALUES),
            "summary": draw(JSON_VALUES),
        }
        for name in draw(name_orders)[:n]
    ]


def _render(dt: datetime, form: str) -> str:
    if form == "z":
        return dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    if form == "offset":
        return dt.replace(tzinfo=timezone.utc).astimezone(timezone(timedelta(hours=2))).isoformat()
    if form == "date":
        return dt.strftime("%Y-%m-%d")
    return dt.strftime("%Y-%m-%dT%H:%M:%S")


rendered = st.builds(
    _render,
    st.sampled_from([datetime.fromisoformat(t) for t in [*CREATED, "2024-01-01T06:00:00", "2023-12-31T23:59:59"]]),
    st.sampled_from(["plain", "z", "offset", "date"]),
)
timestamps = st.one_of(st.none(), rendered, rendered, rendered)


def _operands(field: str):
    if field in ("created_at", "createdAt"):
        return timestamps
    pool = {"name": NAMES, "state": STATES, "display_name": DISPLAY, "displayName": DISPLAY,
            "group": GROUPS, "tags": TAGS}.get(field)
    return st.one_of(st.sampled_from(pool), st.sampled_from(pool), scalars) if pool else scalars


REGEX_PATTERNS = st.sampled_from(["a", "^a", "b$", "A", "^A", ".", "^$", "a|1", "^[ab]+$", "x", "^X", "^g", "01",
                                  "T12"])
OPS = ["$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$exists", "$regex"]
LEAF_FIELDS = st.one_of(st.sampled_from(list(COLUMNS)), st.just("tags"), st.sampled_from(JSON_FIELDS))
# built once: constructing strategies inside a draw is most of Hypothesis' cost here
OPERANDS = {f: _operands(f) for f in [*COLUMNS, "tags", *JSON_FIELDS]}
OPERAND_LISTS = {f: st.lists(s, max_size=3) for f, s in OPERANDS.items()}
OP_SETS = {n: st.lists(st.sampled_from(OPS), min_size=n, max_size=n, unique=True) for n in (1, 2)}


@st.composite
def leaves(draw) -> dict:
    field = draw(LEAF_FIELDS)
    values = OPERANDS[field]
    if draw(st.integers(0, 4)) == 0:
        return {field: draw(values)}  # bare value = $eq
    spec = {}
    count = 2 if draw(st.integers(0, 3)) == 0 else 1  # two operators on one field are ANDed
    for op in draw(OP_SETS[count]):
        if op in ("$in", "$nin"):
            spec[op] = draw(OPERAND_LISTS[field])
        elif op == "$exists":
            spec[op] = draw(st.booleans())
        elif op == "$regex":
            spec[op] = draw(REGEX_PATTERNS)
            if draw(st.booleans()):
                spec["$options"] = "i"
        else:
            spec[op] = draw(values)
    return {field: spec}


def combine(children):
    return st.one_of(
        st.builds(lambda op, subs: {op: subs}, st.sampled_from(["$and", "$or", "$or", "$nor"]),
                  st.lists(children, min_size=1, max_size=3)),
        st.builds(lambda a, b: {**a, **b}, children, children),  # several keys in one object
    )


filters = st.recursive(leaves(), combine, max_leaves=8)


# ----------------------------------------------------------------------------------------------
# the model


def lookup(run: dict, field: str):
    if field in COLUMNS:
        v = run[COLUMNS[field]]
        return MISSING if v is None else v
    if field == "tags":
        return run["tags"]
    root, _, rest = field.partition(".")
    segments = rest.split(".")
    if root == "config":
        if len(segments) < 2 or segments[1] != "value":
            segments.insert(1, "value")
        node = {k: {"value": v} for k, v in run["config"].items()}
    else:
        node = run["summary"]
    for seg in segments:
        if not isinstance(node, dict) or seg not in node:
            return MISSING
        node = node[seg]
    return node


def kind(v) -> str:
    if v is MISSING or v is None:
        return "null"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, (int, float)):
        return "number"
    if isinstance(v, str):
        return "string"
    return "object" if isinstance(v, dict) else "array"


def utc(text: str) -> str:
    dt = datetime.fromisoformat(text)
    if dt.tzinfo is not None:
        dt = dt.astimezone(timezone.utc).replace(tzinfo=None)
    return dt.strftime("%Y-%m-%dT%H:%M:%S")


CMP = {"$gt": operator.gt, "$gte": operator.ge, "$lt": operator.lt, "$lte": operator.le}


def m_eq(v, x) -> bool:
    if x is None:
        return v is MISSING or v is None
    return kind(v) == kind(x) and v == x


def m_cmp(v, op: str, x) -> bool:
    if x is None:
        return m_eq(v, None) if op in ("$gte", "$lte") else False
    return kind(v) == kind(x) and CMP[op](v, x)


def m_op(v, op: str, x, spec: dict, is_tags: bool) -> bool:
    # tags: an array always present; each operator asks about its elements
    if is_tags:
        if op == "$exists":
            return x
        if op in ("$ne", "$nin"):
            return not m_op(v, "$eq" if op == "$ne" else "$in", x, spec, True)
        return any(m_op(t, op, x, spec, False) for t in v)
    if op == "$eq":
        return m_eq(v, x)
    if op == "$ne":
        return not m_eq(v, x)
    if op in CMP:
        return m_cmp(v, op, x)
    if op == "$in":
        return any(m_eq(v, e) for e in x)
    if op == "$nin":
        return not any(m_eq(v, e) for e in x)
    if op == "$exists":
        return (v is not MISSING) == x
    if op == "$regex":
        flags = re.IGNORECASE if "i" in spec.get("$options", "") else 0
        return isinstance(v, str) and re.search(x, v, flags) is not None
    raise AssertionError(op)


def m_match(run: dict, flt: dict) -> bool:
    for key, value in flt.items():
        if key == "$and":
            ok = all(m_match(run, sub) for sub in value)
        elif key == "$or":
            ok = any(m_match(run, sub) for sub in value)
        elif key == "$nor":
            ok = not any(m_match(run, sub) for sub in value)
        else:
            spec = value if isinstance(value, dict) else {"$eq": value}
            v = lookup(run, key)
            timestamp = key in ("created_at", "createdAt")
            ok = True
            for op, x in spec.items():
                if op == "$options":
                    continue
                if timestamp and op not in ("$regex", "$exists"):
                    x = [None if e is None else utc(e) for e in x] if isinstance(x, list) else (
                        None if x is None else utc(x))
                ok = ok and m_op(v, op, x, spec, key == "tags")
        if not ok:
            return False
    return True


# ----------------------------------------------------------------------------------------------
# the database

CONN = db.connect(":memory:")
CONN.execute("INSERT INTO entities (id, name, created_at) VALUES (1, 'e', '2024-01-01T00:00:00')")
CONN.execute("INSERT INTO projects (id, entity_id, name, created_at) VALUES (1, 1, 'p', '2024-01-01T00:00:00')")


def load(rs: list[dict]) -> dict[str, int]:
    CONN.execute("DELETE FROM runs")
    for r in rs:
        CONN.execute(
            "INSERT INTO runs (project_id, name, state, display_name, group_name, tags, created_at, updated_at,"
            " config, summary) VALUES (1, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (r["name"], r["state"], r["display_name"], r["group"], json.dumps(r["tags"]), r["created_at"],
             r["created_at"], json.dumps({k: {"value": v} for k, v in r["config"].items()}), json.dumps(r["summary"])),
        )
    return {row[0]: row[1] for row in CONN.execute("SELECT name, id FROM runs")}


FAST = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(rs=runs(), flts=st.lists(filters, min_size=2, max_size=8))
def test_sql_filter_matches_model(rs, flts):
    load(rs)  # several filters per set of runs: more power per example at little cost
    for flt in flts:
        sql, params = where_sql(flt)
        got = {row[0] for row in CONN.execute(f"SELECT r.name FROM runs r WHERE {sql}", params)}
        want = {r["name"] for r in rs if m_match(r, flt)}
        assert got == want, (flt, sql)


ORDER_FIELDS = ["name", "state", "display_name", "group", "createdAt", "config.lr", "config.opt",
                "config.opt.x", "config.a/b.value", "summary_metrics.lr", "summary_metrics.opt",
                "summary_metrics.opt.x", "summary_metrics.a/b"]


def sort_key(run: dict, field: str, ids: dict[str, int]):
    v = lookup(run, field)
    rank = {"null": 0, "number": 1, "string": 2, "object": 3, "array": 4, "bool": 5}[kind(v)]
    value = v if kind(v) in ("number", "string") else int(v) if kind(v) == "bool" else 0
    return (rank, value, ids[run["name"]])


@FAST
@given(rs=runs(), sign=st.sampled_from(["+", "-", ""]), field=st.sampled_from(ORDER_FIELDS),
       page=st.integers(1, 3))
def test_sql_order_and_keyset_match_model(rs, sign, field, page):
    ids = load(rs)
    spec = order_sql(sign + field)
    want = [r["name"] for r in sorted(rs, key=lambda r: sort_key(r, field, ids), reverse=sign == "-")]

    ob, ob_params = spec.order_by()
    got = [row[0] for row in CONN.execute(f"SELECT r.name FROM runs r ORDER BY {ob}", ob_params)]
    assert got == want

    sel, sel_params = spec.select()
    paged, cursor = [], None
    while True:
        after, after_params = spec.after(*cursor) if cursor else ("1", [])
        rows = CONN.execute(
            f"SELECT r.name, r.id, {sel} FROM runs r WHERE {after} ORDER BY {ob} LIMIT ?",
            [*sel_params, *after_params, *ob_params, page],
        ).fetchall()
        if not rows:
            break
        paged += [row["name"] for row in rows]
        cursor = json.loads(json.dumps([rows[-1]["order_rank"], rows[-1]["order_value"], rows[-1]["id"]]))
        assert len(paged) <= len(rs)
    assert paged == want
