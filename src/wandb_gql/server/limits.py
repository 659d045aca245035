"""What one request may cost the local server, and the checks that refuse the rest.

The server runs every request on one thread, so one expensive request stalls all the others:
a 159-byte query nesting runs -> project -> runs asked for a billion rows, 1,000 aliases of
`runs(first: 1000)` blocked it for 15 s, a 50 MB query for minutes. Each limit below is checked
before the work it bounds starts (body size while reading, tokens while parsing, depth and
field count on the parsed document, estimated cost once the variables are known), and each
refusal is a GraphQL error whose `extensions.code` names the limit:

    BODY_TOO_LARGE         body larger than max_body (file_stream: max_stream_body), counted
                           after decompression (HTTP 413)
    QUERY_TOO_LONG         more than max_tokens lexical tokens
    QUERY_TOO_DEEP         fields nested more than max_depth levels
    QUERY_TOO_MANY_FIELDS  more than max_fields fields once fragments are expanded
    QUERY_TOO_COSTLY       estimated rows above max_cost: each paged field (`first`/`last`, or
                           a connection's default page) multiplies the pages around it, so
                           runs(first: 1000) { project { runs(first: 1000) } } costs 1,001,000
    BAD_CONTENT_ENCODING   a body that does not decompress as its Content-Encoding says (400)
    QUERY_TIMEOUT          still running after time_limit seconds, or its client hung up: the
                           work is stopped (db.time_limit) and a mutation rolled back

The defaults leave every document in queries/ and every query of the wandb SDK far below them
(tests/contract/test_server_abuse.py checks both).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import orjson
from graphql import (
    DocumentNode, FieldNode, FragmentDefinitionNode, FragmentSpreadNode, GraphQLError,
    GraphQLSchema, InlineFragmentNode, IntValueNode, ListValueNode, OperationDefinitionNode, SelectionSetNode,
    StringValueNode, VariableNode, get_named_type,
)

MB = 1024 * 1024

# A connection asked for without `first` answers this many rows (store/_common.DEFAULT_PAGE).
_DEFAULT_PAGE = 50
_PAGE_ARGS = ("first", "last")
# Run fields that answer history rows: up to `samples` of them (sampledHistory: each spec's
# "samples"); without one, a run's whole history, counted as this many rows (a long run).
_HISTORY_FIELDS = ("history", "events", "sampledHistory")
HISTORY_ROWS = 10_000


@dataclass(frozen=True)
class Limits:
    # The SDK's and this client's GraphQL bodies are a few KB; 1 MB leaves room for large
    # variables (a `name $in` of thousands of ids) without letting one body hog the parser.
    max_body: int = 1 * MB
    # wandb-core cuts file_stream requests at ~10 MB (x_file_stream_max_bytes, "approximate:
    # requests will be slightly larger") and single lines at ~10 MB: 32 MB never refuses it.
    max_stream_body: int = 32 * MB
    # Storing a line costs ~8 us however short it is: 4 million '{}' lines (24 MB) held the server
    # 43 s. The SDK's lines carry at least a timestamp (~50 bytes), so ~10 MB holds < 250,000.
    max_stream_lines: int = 500_000
    max_tokens: int = 20_000
    max_depth: int = 20
    # graphql-core's overlapping-fields rule is quadratic in same-named fields: 250 copies of
    # runs { edges { node { name } } } (1,000 fields) took 1.4 s to validate, 500 fields ~0.35 s.
    # The largest query seen from the wandb SDK has 63 fields, the largest in queries/ 60.
    max_fields: int = 500
    max_cost: int = 1_000_000
    time_limit: float = 30.0
    # Parsed documents are kept per query text; the SDK repeats the same few dozen.
    cache_entries: int = 512
    cache_bytes: int = 4 * MB


class LimitExceeded(Exception):
    """A request over one of the limits; `code` is its stable extensions.code."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code, self.message, self.status = code, message, status

    def error(self) -> GraphQLError:
        return GraphQLError(self.message, extensions={"code": self.code})


# A cost plan: per paged field, where its page size comes from and the paged fields inside it.
# ("lit", n) a literal, ("var", name, default) a variable, ("page", n) the connection default,
# ("samples", n or name) history's samples (a literal or a variable's name), ("specs", name or
# texts) sampledHistory's specs (a variable's name, or the literal's texts).
PagePlan = tuple[tuple[Any, ...], tuple["PagePlan", ...]]


@dataclass(frozen=True)
class Shape:
    """What a document costs before its variables are known."""

    depth: int
    fields: int
    plan: tuple[PagePlan, ...]


class _Walker:
    def __init__(self, schema: GraphQLSchema, doc: DocumentNode, max_depth: int) -> None:
        self.schema = schema
        self.max_depth = max_depth
        self.fragments = {d.name.value: d for d in doc.definitions if isinstance(d, FragmentDefinitionNode)}
        # Expanded once each: a fragment spread a thousand times is measured once.
        self.memo: dict[tuple[str, int], tuple[int, int, tuple[PagePlan, ...]]] = {}
        self.defaults: dict[str, Any] = {}

    def selections(self, node: SelectionSetNode | None, parent: Any, level: int,
                   visiting: frozenset[str]) -> tuple[int, int, tuple[PagePlan, ...]]:
        """(deepest level below, fields, page plan) of a selection set at `level`."""
        if node is None:
            return level - 1, 0, ()
        if level > self.max_depth:
            return level, 0, ()  # too deep already: no need to walk (or recurse) further
        deepest, count = level - 1, 0
        plan: list[PagePlan] = []
        for sel in node.selections:
            if isinstance(sel, FieldNode):
                d, c, p = self.field(sel, parent, level, visiting)
            elif isinstance(sel, InlineFragmentNode):
                cond = self.schema.get_type(sel.type_condition.name.value) if sel.type_condition else parent
                d, c, p = self.selections(sel.selection_set, cond, level, visiting)
            elif isinstance(sel, FragmentSpreadNode):
                d, c, p = self.spread(sel.name.value, level, visiting)
            else:
                continue
            deepest, count = max(deepest, d), count + c
            plan.extend(p)
            if deepest > self.max_depth:
                break  # deeper than allowed: the measure is already decisive
        return deepest, count, tuple(plan)

    def spread(self, name: str, level: int, visiting: frozenset[str]) -> tuple[int, int, tuple[PagePlan, ...]]:
        fragment = self.fragments.get(name)
        if fragment is None or name in visiting:
            return level - 1, 0, ()  # unknown or cyclic: graphql-core's own rules report it
        key = (name, level)
        if key not in self.memo:
            cond = self.schema.get_type(fragment.type_condition.name.value)
            self.memo[key] = self.selections(fragment.selection_set, cond, level, visiting | {name})
        return self.memo[key]

    def field(self, node: FieldNode, parent: Any, level: int,
              visiting: frozenset[str]) -> tuple[int, int, tuple[PagePlan, ...]]:
        # Objects and interfaces have fields; unions, meta fields and unknown names do not.
        field = getattr(parent, "fields", {}).get(node.name.value)
        inner = get_named_type(field.type) if field is not None else None
        d, c, p = self.selections(node.selection_set, inner, level + 1, visiting)
        if getattr(parent, "name", None) == "Run" and node.name.value in _HISTORY_FIELDS:
            source: tuple[Any, ...] | None = self.history_source(node)
        else:
            source = self.page_source(node, inner)
        return max(d, level), c + 1, (((source, p),) if source is not None else p)

    def history_source(self, node: FieldNode) -> tuple[Any, ...]:
        for arg in node.arguments or ():
            value = arg.value
            if arg.name.value == "samples":
                if isinstance(value, IntValueNode):
                    return ("samples", int(value.value))
                if isinstance(value, VariableNode):
                    return ("samples", value.name.value)
            if arg.name.value == "specs":
                if isinstance(value, VariableNode):
                    return ("specs", value.name.value)
                if isinstance(value, ListValueNode):
                    return ("specs", [v.value for v in value.values if isinstance(v, StringValueNode)])
        return ("page", HISTORY_ROWS)

    def page_source(self, node: FieldNode, inner: Any) -> tuple[Any, ...] | None:
        for arg in node.arguments or ():
            if arg.name.value in _PAGE_ARGS:
                value = arg.value
                if isinstance(value, IntValueNode):
                    return ("lit", int(value.value))
                if isinstance(value, VariableNode):
                    name = value.name.value
                    return ("var", name, self.defaults.get(name))
        if inner is not None and getattr(inner, "name", "").endswith("Connection"):
            return ("page", _DEFAULT_PAGE)
        return None


def measure(schema: GraphQLSchema, doc: DocumentNode, max_depth: int) -> dict[str | None, Shape]:
    """Each operation's shape by name; walking stops early past `max_depth`."""
    walker = _Walker(schema, doc, max_depth)
    shapes: dict[str | None, Shape] = {}
    roots = {"query": schema.query_type, "mutation": schema.mutation_type, "subscription": schema.subscription_type}
    for op in doc.definitions:
        if not isinstance(op, OperationDefinitionNode):
            continue
        walker.defaults = {v.variable.name.value: int(v.default_value.value)
                           for v in op.variable_definitions or ()
                           if isinstance(v.default_value, IntValueNode)}
        depth, fields, plan = walker.selections(op.selection_set, roots.get(op.operation.value), 1, frozenset())
        shapes[op.name.value if op.name else None] = Shape(depth, fields, plan)
    return shapes


def check_shape(shape: Shape, limits: Limits) -> None:
    if shape.depth > limits.max_depth:
        raise LimitExceeded("QUERY_TOO_DEEP", f"query is nested more than {limits.max_depth} levels deep "
                            "(the server's --max-depth); ask for fewer nested objects per request")
    if shape.fields > limits.max_fields:
        raise LimitExceeded("QUERY_TOO_MANY_FIELDS",
                            f"query selects {shape.fields} fields (aliases and fragments expanded), more than "
                            f"the server's --max-fields {limits.max_fields}; split it into several requests")


def _page(source: tuple[Any, ...], variables: Mapping[str, Any]) -> int:
    kind = source[0]
    if kind == "samples":
        return _history_rows(variables.get(source[1]) if isinstance(source[1], str) else source[1])
    if kind == "specs":
        specs = variables.get(source[1]) if isinstance(source[1], str) else source[1]
        return sum(_spec_rows(spec) for spec in specs) if isinstance(specs, list) else HISTORY_ROWS
    if kind == "var":
        value = variables.get(source[1], source[2])
        value = _DEFAULT_PAGE if value is None else value
    else:
        value = source[1]
    if isinstance(value, bool) or not isinstance(value, int):
        return _DEFAULT_PAGE  # the field's own argument checks refuse it
    return max(value, 1)


def _history_rows(samples: Any) -> int:
    """Rows a history read with `samples` may answer: no samples, or 0 or less, is every row; a
    value the resolver will refuse counts as one."""
    if samples is None or (isinstance(samples, int) and not isinstance(samples, bool) and samples <= 0):
        return HISTORY_ROWS
    return samples if isinstance(samples, int) and not isinstance(samples, bool) else 1


def _spec_rows(spec: Any) -> int:
    try:
        parsed = orjson.loads(spec) if isinstance(spec, (str, bytes)) else spec
    except orjson.JSONDecodeError:
        return 1
    return _history_rows(parsed.get("samples")) if isinstance(parsed, dict) else 1


def cost(plan: tuple[PagePlan, ...], variables: Mapping[str, Any], outer: int = 1) -> int:
    """Rows the plan may produce: every paged field's page times the pages enclosing it."""
    total = 0
    for source, inner in plan:
        rows = outer * _page(source, variables)
        total += rows + cost(inner, variables, rows)
    return total


def check_cost(shape: Shape, variables: Mapping[str, Any], limits: Limits) -> None:
    estimate = cost(shape.plan, variables)
    if estimate > limits.max_cost:
        raise LimitExceeded("QUERY_TOO_COSTLY",
                            f"query may return about {estimate:,} rows (each nested page multiplies the pages "
                            f"around it), more than the server's --max-cost {limits.max_cost:,}; ask for smaller "
                            "pages or fewer nested connections")
