"""W&B's Mongo-style run filters and order strings, translated to parameterised SQLite SQL.

Everything a user sends (values, regexes, JSON paths into config/summary) travels as a `?`
parameter. The only text interpolated into SQL comes from the whitelists below, so no filter can
change the shape of a query.

Semantics follow MongoDB, because that is what W&B's filters are modelled on:
- equality is type-strict (42 != "42", true != 1) but integers and reals compare numerically;
- `null` (as `$eq`, or inside `$in`) matches a missing key as well as a JSON null; `$ne`/`$nin`
  are the exact negations of `$eq`/`$in`, so they match runs that lack the key;
- `$gt $gte $lt $lte` compare only within a type bracket (numbers, strings, booleans with
  false < true); a missing key or another type never matches; `$gte`/`$lte` null behave as
  `$eq` null and `$gt`/`$lt` null match nothing, as in MongoDB;
- `$regex` is an unanchored search with RE2 syntax (google-re2: linear time, so no pattern can
  stall the server; backreferences and lookarounds are refused) over string values only;
- `$exists` true means present, even when the value is null;
- objects/arrays in the data never equal a scalar; objects/arrays as operands are rejected;
- `tags` is the one array field: operators apply to its elements (`$eq` = has the tag, `$ne` =
  lacks it, `$in` = has any, `$nin` = has none), and it is always present;
- run columns (state, group, ...) hold text or NULL; NULL is treated as a missing key.

Ordering follows MongoDB's bracket order: missing/null < numbers < strings < objects < arrays <
booleans. Each sort key is (rank, value, r.id) so that keyset pagination is total and stable.

Given the project, config./summary_metrics. keys are looked up in run_keys (db.py: one row per
JSON node of every run, kept by triggers) instead of parsing every run's JSON: a selective filter
seeks the (path, rank, value) index, and store/runs.py walks it for an order. Keys the index
cannot name exactly (see _indexed_path) keep the json_extract translation.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
import sqlite3
from dataclasses import dataclass
from typing import Any

import re2

from .._time import parse_iso
from ..models import RUN_FIELDS
from .db import regex_options

__all__ = [
    "FilterSyntaxError", "OrderSpec", "parse_filters", "where_sql", "order_sql",
    "ORDER_RANK_ALIAS", "ORDER_VALUE_ALIAS",
]


class FilterSyntaxError(ValueError):
    """A filter or order the server refuses; the message is one line meant for the user."""


class UnknownField(FilterSyntaxError):
    """A name that is no run field. An order by it is refused; a filter on it matches nothing,
    as on W&B (the client's lint warns before sending one)."""


# Filter names that are no run field's `filter` or `name`: W&B's wire name of the sweep field,
# its snake spelling, and a column the client does not model.
_ALIASES = {"sweepName": "sweep", "sweep_name": "sweep"}
_EXTRA_COLUMNS: dict[str, tuple[str, bool, bool]] = {"host": ("r.host", True, False)}


def _column_fields() -> dict[str, tuple[str, bool, bool]]:
    """Filter name -> (column, nullable, holds a timestamp), from the one declaration of run
    fields: W&B's filter key and the snake name both work, as W&B accepts both spellings."""
    fields: dict[str, tuple[str, bool, bool]] = {}
    for f in RUN_FIELDS:
        if f.filter and f.column and f.kind != "tags":  # tags is the array field, see _Tags
            spec = (f"r.{f.column}", f.nullable, f.kind == "time")
            fields[f.filter] = fields[f.name] = spec
    fields.update({alias: fields[name] for alias, name in _ALIASES.items()})
    fields.update(_EXTRA_COLUMNS)
    return fields


_COLUMN_FIELDS = _column_fields()
_KNOWN_FIELDS = ", ".join([*_COLUMN_FIELDS, "tags", "config.<key>", "summary_metrics.<key>"])

_LOGICAL = ("$and", "$or", "$nor")
_COMPARE = {"$gt": ">", "$gte": ">=", "$lt": "<", "$lte": "<="}
_FIELD_OPS = ("$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$exists", "$regex", "$options")
# MongoDB's "x" (extended syntax) has no RE2 equivalent.
_REGEX_OPTIONS = "ims"

# Guards against filters SQLite would reject at run time (variable count, parser depth), so the
# user gets a message about their filter instead of an SQL error.
_MAX_DEPTH = 20
_MAX_PARAMS = 30000

_RANK_MISSING, _RANK_NUMBER, _RANK_STRING = 0, 1, 2
_RANK_OBJECT, _RANK_ARRAY, _RANK_BOOL = 3, 4, 5

# Column names OrderSpec.select() gives a row's rank and value under, for the caller's cursor.
ORDER_RANK_ALIAS = "order_rank"
ORDER_VALUE_ALIAS = "order_value"


def _show(value: Any) -> str:
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _type_name(value: Any) -> str:
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    return type(value).__name__


# --------------------------------------------------------------------------------------------
# parsing


def _reject_constant(name: str) -> Any:
    raise FilterSyntaxError(f"filters are not valid JSON: {name} is not a JSON number")


def parse_filters(raw: str | dict | None) -> dict:
    """The `filters: JSONString` argument as a dict; nothing or "{}" means no filter."""
    if raw is None:
        return {}
    if isinstance(raw, (bytes, bytearray)):
        raw = raw.decode("utf-8", errors="replace")
    if isinstance(raw, str):
        if not raw.strip():
            return {}
        try:
            raw = json.loads(raw, parse_constant=_reject_constant)
        except json.JSONDecodeError as exc:
            raise FilterSyntaxError(
                f"filters are not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
            ) from None
        except RecursionError:
            raise FilterSyntaxError("filters are nested too deeply") from None
    if not isinstance(raw, dict):
        raise FilterSyntaxError(
            f"filters must be a JSON object such as {{\"state\": \"finished\"}}, got {_type_name(raw)}"
        )
    return raw


def _check_text(text: str, what: str) -> str:
    # sqlite3 cannot bind strings with lone surrogates ("\ud800" is valid JSON).
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise FilterSyntaxError(f"{what} contains an unpaired surrogate character: {_show(text)}") from None
    return text


def _json_path(field: str, segments: list[str]) -> str:
    for seg in segments:
        if not seg:
            raise FilterSyntaxError(f'field "{field}": empty key segment (check for doubled or trailing dots)')
        # SQLite matches path labels against the raw JSON text, where these characters are escaped.
        if '"' in seg or "\\" in seg or any(ord(ch) < 0x20 for ch in seg):
            raise FilterSyntaxError(
                f'field "{field}": keys containing quotes, backslashes or control characters '
                "cannot be filtered or ordered on"
            )
        _check_text(seg, f'field "{field}"')
    return "$" + "".join(f'."{seg}"' for seg in segments)


# How SQLite's json_tree writes a path (db.py indexes run_keys by it): a label of a letter and
# letters/digits bare, any other in double quotes, as it appears in the JSON text. Labels that
# another writer may have escaped in the text (non-ASCII, <>&), or that json_tree's brackets make
# ambiguous, are not looked up there.
_BARE_LABEL = re.compile(r"[A-Za-z][A-Za-z0-9]*")
_INDEXED_LABEL = re.compile(r"[ -~]+")
_UNINDEXED_CHARS = set('[]<>&"\\')


def _fullkey(segments: list[str]) -> str:
    return "$" + "".join(f".{s}" if _BARE_LABEL.fullmatch(s) else f'."{s}"' for s in segments)


def _probe_fullkeys() -> bool:
    """Whether this SQLite writes json_tree paths as _fullkey does (the quoting changed between
    releases); if not, filters and orders keep to json_extract."""
    doc = '{"a1":{"b/c":{"_d":0}}}'
    expected = " ".join(_fullkey(["a1", "b/c", "_d"][:n]) for n in range(4))
    with contextlib.closing(sqlite3.connect(":memory:")) as conn:
        got = conn.execute("SELECT group_concat(fullkey, ' ') FROM json_tree(?)", (doc,)).fetchone()[0]
    return bool(got == expected)


_KEYS_USABLE = _probe_fullkeys()


def _indexed_path(source: int, segments: list[str]) -> str | None:
    """The run_keys path of a config (0) or summary (1) key, or None where run_keys has no row."""
    if not _KEYS_USABLE or (source == 0 and segments[0] == "_wandb"):
        return None
    for seg in segments:
        if not _INDEXED_LABEL.fullmatch(seg) or _UNINDEXED_CHARS.intersection(seg):
            return None
    return _fullkey(segments)


# --------------------------------------------------------------------------------------------
# fields: each returns (sql, params) fragments that are 0/1 and never NULL, so NOT is a safe
# negation for $ne/$nin.


Sql = tuple[str, list]
_FALSE: Sql = ("0", [])
_TRUE: Sql = ("1", [])


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


class _Column:
    def __init__(self, name: str, sql: str, nullable: bool, timestamp: bool) -> None:
        self.name, self.sql, self.nullable, self.timestamp = name, sql, nullable, timestamp

    def operand(self, op: str, x: Any) -> Any:
        if self.timestamp and x is not None:
            return _timestamp(self.name, op, x)
        return x

    def eq(self, x: Any) -> Sql:
        if x is None:
            return (f"{self.sql} IS NULL", []) if self.nullable else _FALSE
        if isinstance(x, str):
            return f"{self.sql} IS ?", [x]
        return _FALSE  # columns hold text: type-strict equality never matches a number/bool

    def cmp(self, op: str, x: Any) -> Sql:
        if not isinstance(x, str):
            return _FALSE
        if self.nullable:
            return f"COALESCE({self.sql} {_COMPARE[op]} ?, 0)", [x]
        return f"{self.sql} {_COMPARE[op]} ?", [x]  # bare comparison keeps the index usable

    def exists(self, present: bool) -> Sql:
        if not self.nullable:
            return _TRUE if present else _FALSE
        return f"{self.sql} IS {'NOT NULL' if present else 'NULL'}", []

    def regex(self, pattern: str) -> Sql:
        return f"regexp(?, {self.sql})", [pattern]  # regexp() is False for NULL

    def isin(self, xs: list) -> Sql:
        strings = [x for x in xs if isinstance(x, str)]
        parts: list[Sql] = []
        if strings:
            # One parameter however long the list (W&B clients send {"name": {"$in": [ids]}}).
            test = f"{self.sql} IN (SELECT value FROM json_each(?))"
            parts.append((f"COALESCE({test}, 0)" if self.nullable else test, [json.dumps(strings)]))
        if any(x is None for x in xs):
            parts.append(self.eq(None))
        return _or(parts)

    def order_key(self) -> tuple[str, list, str, list, int | None]:
        if not self.nullable:
            return str(_RANK_STRING), [], self.sql, [], _RANK_STRING
        rank = f"CASE WHEN {self.sql} IS NULL THEN {_RANK_MISSING} ELSE {_RANK_STRING} END"
        return rank, [], f"COALESCE({self.sql}, 0)", [], None


class _Tags:
    name = "tags"
    _ANY = "EXISTS (SELECT 1 FROM json_each(r.tags) AS t WHERE {})"

    def operand(self, op: str, x: Any) -> Any:
        return x

    def eq(self, x: Any) -> Sql:
        if isinstance(x, str):
            return self._ANY.format("t.value = ?"), [x]
        return _FALSE  # tags are strings and always present, so null/number/bool never match

    def cmp(self, op: str, x: Any) -> Sql:
        if isinstance(x, str):
            return self._ANY.format(f"t.type = 'text' AND t.value {_COMPARE[op]} ?"), [x]
        return _FALSE

    def exists(self, present: bool) -> Sql:
        return _TRUE if present else _FALSE

    def regex(self, pattern: str) -> Sql:
        return self._ANY.format("t.type = 'text' AND regexp(?, t.value)"), [pattern]

    def isin(self, xs: list) -> Sql:
        strings = [x for x in xs if isinstance(x, str)]
        if not strings:
            return _FALSE
        return self._ANY.format("t.value IN (SELECT value FROM json_each(?))"), [json.dumps(strings)]

    def order_key(self) -> tuple[str, list, str, list, int | None]:
        raise FilterSyntaxError('cannot order by "tags"; order by a run field, config.<key> or summary_metrics.<key>')


class _Json:
    def __init__(self, name: str, column: str, path: str) -> None:
        self.name, self.column, self.path = name, column, path
        # json_type() is NULL for a missing key; 'missing' keeps every test NULL-free.
        self.type_sql = f"COALESCE(json_type({column}, ?), 'missing')"
        self.value_sql = f"json_extract({column}, ?)"
        # (source, run_keys path) when run_keys holds this key's nodes; see order_sql/_Keyed.
        self.keys: tuple[int, str] | None = None

    def operand(self, op: str, x: Any) -> Any:
        return x

    def _typed(self, types: str, test: str, params: list) -> Sql:
        # json_extract() gives 1 for true, so the JSON type must be checked before the value.
        return f"({self.type_sql} IN ({types}) AND {self.value_sql} {test})", [self.path, self.path, *params]

    def eq(self, x: Any) -> Sql:
        if x is None:
            return f"{self.type_sql} IN ('missing', 'null')", [self.path]
        if isinstance(x, bool):
            return f"{self.type_sql} = ?", [self.path, "true" if x else "false"]
        if isinstance(x, str):
            return self._typed("'text'", "= ?", [x])
        return self._typed("'integer', 'real'", "= ?", [x])

    def cmp(self, op: str, x: Any) -> Sql:
        sym = _COMPARE[op]
        if isinstance(x, bool):
            return (
                f"({self.type_sql} IN ('true', 'false') AND ({self.type_sql} = 'true') {sym} ?)",
                [self.path, self.path, int(x)],
            )
        if isinstance(x, str):
            return self._typed("'text'", f"{sym} ?", [x])
        if x is None:
            return _FALSE
        return self._typed("'integer', 'real'", f"{sym} ?", [x])

    def exists(self, present: bool) -> Sql:
        return f"json_type({self.column}, ?) IS {'NOT NULL' if present else 'NULL'}", [self.path]

    def regex(self, pattern: str) -> Sql:
        return f"({self.type_sql} = 'text' AND regexp(?, {self.value_sql}))", [self.path, pattern, self.path]

    def isin(self, xs: list) -> Sql:
        strings = [x for x in xs if isinstance(x, str)]
        numbers = [x for x in xs if _is_number(x)]
        parts: list[Sql] = []
        if strings:
            parts.append(self._typed("'text'", "IN (SELECT value FROM json_each(?))", [json.dumps(strings)]))
        if numbers:
            parts.append(
                self._typed("'integer', 'real'", "IN (SELECT value FROM json_each(?))", [json.dumps(numbers)])
            )
        for special in (None, True, False):
            if any(x is special for x in xs):
                parts.append(self.eq(special))
        return _or(parts)

    def order_key(self) -> tuple[str, list, str, list, int | None]:
        t = f"json_type({self.column}, ?)"
        rank = (
            f"CASE {t} WHEN 'integer' THEN {_RANK_NUMBER} WHEN 'real' THEN {_RANK_NUMBER} "
            f"WHEN 'text' THEN {_RANK_STRING} WHEN 'object' THEN {_RANK_OBJECT} "
            f"WHEN 'array' THEN {_RANK_ARRAY} WHEN 'true' THEN {_RANK_BOOL} WHEN 'false' THEN {_RANK_BOOL} "
            f"ELSE {_RANK_MISSING} END"
        )
        # Objects/arrays all tie (broken by id); booleans order false < true; missing/null -> 0.
        value = (
            f"CASE WHEN {t} IN ('integer', 'real', 'text') THEN {self.value_sql} "
            f"WHEN {t} = 'true' THEN 1 ELSE 0 END"
        )
        return rank, [self.path], value, [self.path, self.path, self.path], None


class _Keyed(_Json):
    """A config/summary key looked up in run_keys of one project: each test is `r.id IN (the runs
    with a node of this path satisfying ...)`, 0/1 like every fragment, and a selective one is
    answered by a seek in the (path_id, rank, value) index."""

    def __init__(self, name: str, column: str, path: str, keys: tuple[int, str], project_id: int) -> None:
        super().__init__(name, column, path)
        self.keys, self.project_id = keys, project_id

    def _has(self, test: str = "", params: list | None = None) -> Sql:
        source, path = self.keys or (0, "")
        return (f"r.id IN (SELECT k.run_id FROM run_keys k WHERE k.path_id = (SELECT p.id FROM run_key_paths p"
                f" WHERE p.project_id = ? AND p.source = ? AND p.path = ?){test})",
                [self.project_id, source, path, *(params or [])])

    def eq(self, x: Any) -> Sql:
        if x is None:
            return _not(self._has(" AND k.rank > 0"))
        if isinstance(x, bool):
            return self._has(f" AND k.rank = {_RANK_BOOL} AND k.value = ?", [int(x)])
        rank = _RANK_STRING if isinstance(x, str) else _RANK_NUMBER
        return self._has(f" AND k.rank = {rank} AND k.value = ?", [x])

    def cmp(self, op: str, x: Any) -> Sql:
        if x is None:
            return _FALSE
        rank = _RANK_BOOL if isinstance(x, bool) else _RANK_STRING if isinstance(x, str) else _RANK_NUMBER
        return self._has(f" AND k.rank = {rank} AND k.value {_COMPARE[op]} ?", [int(x) if isinstance(x, bool) else x])

    def exists(self, present: bool) -> Sql:
        return self._has() if present else _not(self._has())

    def regex(self, pattern: str) -> Sql:
        return self._has(f" AND k.rank = {_RANK_STRING} AND regexp(?, k.value)", [pattern])

    def isin(self, xs: list) -> Sql:
        parts: list[Sql] = []
        for rank, values in ((_RANK_STRING, [x for x in xs if isinstance(x, str)]),
                             (_RANK_NUMBER, [x for x in xs if _is_number(x)])):
            if values:
                parts.append(self._has(f" AND k.rank = {rank} AND k.value IN (SELECT value FROM json_each(?))",
                                       [json.dumps(values)]))
        for special in (None, True, False):
            if any(x is special for x in xs):
                parts.append(self.eq(special))
        return _or(parts)


def _field(name: str, project_id: int | None = None) -> _Column | _Tags | _Json:
    if not isinstance(name, str):
        raise FilterSyntaxError(f"field names must be strings, got {_show(name)}")
    if not name:
        raise FilterSyntaxError(f"empty field name; known fields: {_KNOWN_FIELDS}")
    _check_text(name, "field name")
    if name in _COLUMN_FIELDS:
        return _Column(name, *_COLUMN_FIELDS[name])
    if name == "tags":
        return _Tags()
    root, dot, rest = name.partition(".")
    if root in ("config", "summary_metrics") and not rest:
        raise FilterSyntaxError(f'field "{name}" needs a key: write "{root}.<key>"')
    if root == "config":
        segments = rest.split(".")
        # W&B stores config as {"k": {"value": v}} and accepts both config.k and config.k.value.
        if len(segments) < 2 or segments[1] != "value":
            segments.insert(1, "value")
        return _json_field(name, 0, segments, project_id)
    if root == "summary_metrics":
        return _json_field(name, 1, rest.split("."), project_id)
    if root in ("summary", "summaryMetrics") and dot:
        # W&B itself silently matches nothing for these; an error saves a confusing empty result.
        raise UnknownField(f'unknown field "{name}": summary keys are "summary_metrics.{rest}"')
    raise UnknownField(f'unknown field "{_show(name)[1:-1]}"; known fields: {_KNOWN_FIELDS}')


def _json_field(name: str, source: int, segments: list[str], project_id: int | None) -> _Json:
    path = _json_path(name, segments)
    keys = _indexed_path(source, segments)
    column = "r.config" if source == 0 else "r.summary"
    if keys is not None and project_id is not None:
        return _Keyed(name, column, path, (source, keys), project_id)
    field = _Json(name, column, path)
    field.keys = None if keys is None else (source, keys)
    return field


# --------------------------------------------------------------------------------------------
# values

def _timestamp(field: str, op: str, x: Any) -> str:
    """An ISO date/datetime in the stored form (UTC, whole seconds), so strings compare as times."""
    bad = FilterSyntaxError(
        f'field "{field}" {op}: timestamps must be ISO strings like "2024-01-31T00:00:00", got {_show(x)}'
    )
    if not isinstance(x, str):
        raise bad
    try:
        stamp = parse_iso(x)
    except ValueError:
        stamp = None
    if stamp is None:
        raise bad
    return stamp


def _scalar(field: str, op: str, x: Any) -> Any:
    if x is None or isinstance(x, bool):
        return x
    if isinstance(x, int):
        # SQLite integers are 64-bit; larger JSON integers are compared as reals, as SQLite stores them.
        return x if -(2**63) <= x < 2**63 else float(x)
    if isinstance(x, float):
        if not math.isfinite(x):
            raise FilterSyntaxError(f'field "{field}" {op}: {x} is not a finite number')
        return x
    if isinstance(x, str):
        return _check_text(x, f'field "{field}" {op} value')
    raise FilterSyntaxError(
        f'field "{field}" {op}: expected a string, number, boolean or null, got {_type_name(x)} {_show(x)}'
        + ("; to match a nested key write it with dots, e.g. \"config.opt.lr\"" if isinstance(x, dict) else "")
    )


def _regex(field: str, pattern: Any, options: Any) -> str:
    if not isinstance(pattern, str):
        raise FilterSyntaxError(f'field "{field}" $regex: expected a string pattern, got {_show(pattern)}')
    _check_text(pattern, f'field "{field}" $regex')
    if options is not None:
        if not isinstance(options, str) or any(ch not in _REGEX_OPTIONS for ch in options):
            raise FilterSyntaxError(
                f'field "{field}" $options: expected letters from "{_REGEX_OPTIONS}", got {_show(options)}'
            )
        if options:
            pattern = f"(?{''.join(sorted(set(options)))})" + pattern
    try:
        re2.compile(pattern, regex_options())
    except re2.error as exc:
        reason = exc.args[0].decode(errors="replace") if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        raise FilterSyntaxError(
            f'field "{field}" $regex: invalid regular expression {_show(pattern)}: {reason} '
            "(the server matches with RE2: no backreferences or lookarounds)"
        ) from None
    return pattern


# --------------------------------------------------------------------------------------------
# the filter document


def _join(parts: list[Sql], op: str) -> Sql:
    # Balanced nesting keeps SQLite's expression depth logarithmic for long $or/$in lists.
    if len(parts) <= 8:
        return f" {op} ".join(f"({sql})" for sql, _ in parts), [p for _, ps in parts for p in ps]
    mid = len(parts) // 2
    left, right = _join(parts[:mid], op), _join(parts[mid:], op)
    return f"({left[0]}) {op} ({right[0]})", left[1] + right[1]


def _and(parts: list[Sql]) -> Sql:
    parts = [p for p in parts if p != _TRUE]
    if any(p == _FALSE for p in parts):
        return _FALSE
    return _join(parts, "AND") if parts else _TRUE


def _or(parts: list[Sql]) -> Sql:
    parts = [p for p in parts if p != _FALSE]
    if any(p == _TRUE for p in parts):
        return _TRUE
    return _join(parts, "OR") if parts else _FALSE


def _not(part: Sql) -> Sql:
    if part == _TRUE:
        return _FALSE
    if part == _FALSE:
        return _TRUE
    return f"NOT ({part[0]})", part[1]


def _document(doc: Any, depth: int, project_id: int | None) -> Sql:
    if not isinstance(doc, dict):
        raise FilterSyntaxError(f"each filter must be a JSON object, got {_type_name(doc)} {_show(doc)}")
    if depth > _MAX_DEPTH:
        raise FilterSyntaxError(f"filters nest $and/$or/$nor more than {_MAX_DEPTH} levels deep")
    parts: list[Sql] = []
    for key, value in doc.items():
        if isinstance(key, str) and key.startswith("$"):
            if key not in _LOGICAL:
                raise FilterSyntaxError(
                    f'unknown operator "{_show(key)[1:-1]}" at the top level of a filter; '
                    f"valid there: {' '.join(_LOGICAL)}; on a field: {' '.join(_FIELD_OPS[:-1])}"
                )
            if not isinstance(value, list) or not value:
                raise FilterSyntaxError(
                    f'{key} needs a non-empty list of filters, e.g. {{"{key}": [{{"state": "finished"}}]}}, '
                    f"got {_show(value)}"
                )
            subs = [_document(sub, depth + 1, project_id) for sub in value]
            parts.append(_and(subs) if key == "$and" else _or(subs) if key == "$or" else _not(_or(subs)))
        else:
            try:
                field = _field(key, project_id)
            except UnknownField:
                # Still checked, so a bad operator or value is refused whatever the field.
                _condition(_Column(str(key), "NULL", True, False), value)
                parts.append(_FALSE)
            else:
                parts.append(_condition(field, value))
    return _and(parts)


def _condition(field: _Column | _Tags | _Json, spec: Any) -> Sql:
    name = field.name
    if isinstance(spec, dict):
        ops = list(spec)
        if not ops:
            raise FilterSyntaxError(f'field "{name}": empty object; write a value or operators such as {{"$eq": ...}}')
        if not all(isinstance(op, str) and op.startswith("$") for op in ops):
            if any(isinstance(op, str) and op.startswith("$") for op in ops):
                raise FilterSyntaxError(f'field "{name}": an object mixes operators and plain keys: {_show(spec)}')
            _scalar(name, "$eq", spec)  # raises with the nested-key hint
    else:
        spec = {"$eq": spec}
    if "$options" in spec and "$regex" not in spec:
        raise FilterSyntaxError(f'field "{name}": $options is only valid next to $regex')
    parts: list[Sql] = []
    for op, x in spec.items():
        if op in ("$eq", "$ne"):
            part = field.eq(field.operand(op, _scalar(name, op, x)))
            parts.append(part if op == "$eq" else _not(part))
        elif op in _COMPARE:
            x = field.operand(op, _scalar(name, op, x))
            # MongoDB: $gte/$lte null match what $eq null matches; $gt/$lt null match nothing.
            parts.append(field.eq(None) if x is None and op in ("$gte", "$lte") else field.cmp(op, x))
        elif op in ("$in", "$nin"):
            if not isinstance(x, list):
                raise FilterSyntaxError(f'field "{name}" {op}: expected a list of values, got {_show(x)}')
            part = field.isin([field.operand(op, _scalar(name, op, v)) for v in x])
            parts.append(part if op == "$in" else _not(part))
        elif op == "$exists":
            if not isinstance(x, bool):
                raise FilterSyntaxError(f'field "{name}" $exists: expected true or false, got {_show(x)}')
            parts.append(field.exists(x))
        elif op == "$regex":
            parts.append(field.regex(_regex(name, x, spec.get("$options"))))
        elif op == "$options":
            continue
        else:
            raise FilterSyntaxError(
                f'unknown operator "{_show(op)[1:-1]}" on field "{name}"; valid operators: {" ".join(_FIELD_OPS)}'
            )
    return _and(parts)


def where_sql(filters: dict, project_id: int | None = None) -> tuple[str, list]:
    """An SQL boolean expression over `runs AS r` and its parameters; {} -> ("1", []). With the
    runs' project, config/summary keys are looked up in run_keys rather than in every run's JSON."""
    sql, params = _document(filters, 0, project_id)
    if len(params) > _MAX_PARAMS:
        raise FilterSyntaxError(f"filter is too large ({len(params)} values); split it into smaller queries")
    return sql, params


# --------------------------------------------------------------------------------------------
# order


@dataclass(frozen=True)
class OrderSpec:
    """A sort key (rank, value, r.id), all in one direction, for ORDER BY and keyset cursors."""

    field: str
    descending: bool
    rank_sql: str
    rank_params: tuple
    value_sql: str
    value_params: tuple
    # Set when every row has the same rank (a NOT NULL column): the constant is left out of
    # ORDER BY (a bare integer there would mean "result column N") and out of the keyset test,
    # so SQLite can walk the (project_id, created_at, id) index.
    rank_const: int | None = None
    # (source, path) of a config/summary key in run_keys: store/runs.py then walks that index
    # (rows holding the key) and the live runs lacking it, instead of sorting every run.
    keys: tuple[int, str] | None = None

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.rank_sql, self.value_sql, "r.id")

    @property
    def cursor_key(self) -> str:
        """The order as a cursor names it ("+created_at"): a cursor is only valid for its order."""
        return f"{'-' if self.descending else '+'}{self.field}"

    @property
    def params(self) -> list:
        """Parameters of `key`, in order."""
        return [*self.rank_params, *self.value_params]

    def order_by(self) -> tuple[str, list]:
        """The ORDER BY clause body, e.g. ("r.created_at ASC, r.id ASC", [])."""
        d = "DESC" if self.descending else "ASC"
        if self.rank_const is not None:
            return f"{self.value_sql} {d}, r.id {d}", list(self.value_params)
        return f"{self.rank_sql} {d}, {self.value_sql} {d}, r.id {d}", self.params

    def select(self) -> tuple[str, list]:
        """Columns `order_rank` and `order_value` to read a row's position for its cursor."""
        return (
            f"{self.rank_sql} AS {ORDER_RANK_ALIAS}, {self.value_sql} AS {ORDER_VALUE_ALIAS}",
            self.params,
        )

    def after(self, rank: int, value: int | float | str, run_id: int) -> tuple[str, list]:
        """Rows strictly after the row whose (rank, value, id) came from `select()`."""
        if not (isinstance(rank, int) and not isinstance(rank, bool) and 0 <= rank <= _RANK_BOOL):
            raise FilterSyntaxError(f"invalid cursor: bad rank {_show(rank)}")
        if not (_is_number(value) or isinstance(value, str)) or (
            isinstance(value, float) and not math.isfinite(value)
        ):
            raise FilterSyntaxError(f"invalid cursor: bad value {_show(value)}")
        if not (isinstance(run_id, int) and not isinstance(run_id, bool)):
            raise FilterSyntaxError(f"invalid cursor: bad id {_show(run_id)}")
        op = "<" if self.descending else ">"
        if self.rank_const is not None:
            if rank != self.rank_const:
                # A cursor from another rank is entirely before or after every row.
                return _TRUE if (rank < self.rank_const) != self.descending else _FALSE
            return f"({self.value_sql}, r.id) {op} (?, ?)", [*self.value_params, value, run_id]
        return f"({self.rank_sql}, {self.value_sql}, r.id) {op} (?, ?, ?)", [*self.params, rank, value, run_id]


def order_sql(order: str | None) -> OrderSpec:
    """Parse "+created_at", "-summary_metrics.loss", "config.lr.value" ...; no sign = ascending."""
    if order is None or (isinstance(order, str) and not order.strip()):
        order = "+created_at"
    if not isinstance(order, str):
        raise FilterSyntaxError(f"order must be a string such as \"-created_at\", got {_show(order)}")
    text = order.strip()
    descending = text.startswith("-")
    name = text[1:].strip() if text[:1] in "+-" else text
    if not name:
        raise FilterSyntaxError(f'order {_show(order)} names no field; write e.g. "-created_at"')
    field = _field(name)
    rank_sql, rank_params, value_sql, value_params, rank_const = field.order_key()
    return OrderSpec(
        field=name,
        descending=descending,
        rank_sql=rank_sql,
        rank_params=tuple(rank_params),
        value_sql=value_sql,
        value_params=tuple(value_params),
        rank_const=rank_const,
        keys=field.keys if isinstance(field, _Json) else None,
    )
