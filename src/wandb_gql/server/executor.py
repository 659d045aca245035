"""A fast path through graphql-core's executor: the local server's hot loop.

Listing 1,000 runs resolves ~17,000 leaf fields; graphql-core spends most of a request in its
per-field machinery (resolve info, completion, awaitable checks) for fields that are plain column
reads. FastExecutor plans each selection once per request (resolver, argument values, output
coercion) and fills an object's leaf fields, and its single nested objects (an edge's node, a
run's user), in one loop. Everything else — parsing, validation, variables, directives, fragments,
lists of objects, errors and null propagation — stays graphql-core's: a field that raises, is null
where null is not allowed, or fails coercion is resolved again the stock way (resolvers here are
pure reads), and an error inside a nested object goes through graphql-core's own handler, so
responses are byte-identical (tests/contract/test_executor.py checks it). bench/README.md has
the measured effect.

It overrides a method graphql-core marks private, so it is tied to graphql-core 3.3 (pinned);
`executor_options()` returns {} (stock execution) if that API is not there.

A request's deadline (DEADLINE, set by the handler) is looked at once per object filled: SQLite
work stops through db.time_limit's progress handler, Python work between statements here.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any, Protocol

from graphql import GraphQLError


class _Deadline(Protocol):
    def passed(self) -> bool: ...


DEADLINE: ContextVar[_Deadline | None] = ContextVar("wandb_gql_deadline", default=None)


class DeadlinePassed(GraphQLError):
    """Raised inside execution once the request's deadline passed; the handler answers it.
    A GraphQLError, because that is what graphql-core catches around the root fields too."""

try:
    from graphql import Undefined
    from graphql.execution.executor import Executor
    from graphql.execution.values import get_argument_values
    from graphql.pyutils import Path
    from graphql.type import GraphQLList, GraphQLNonNull, GraphQLObjectType, is_leaf_type
except ImportError:  # another graphql-core: serve with stock execution
    Executor = None  # type: ignore[assignment,misc]


class _Info:
    """What the server's leaf resolvers read from `info`: the context only."""

    __slots__ = ("context",)

    def __init__(self, context: Any) -> None:
        self.context = context


def _never_awaitable(_value: Any) -> bool:
    return False  # every resolver of the local server is synchronous


_STOCK = object()  # "let graphql-core do this one"
_LEAF, _OBJECT = 1, 2


def _dict_getter(name: str) -> Any:
    """graphql-core's default resolver, for the dict sources this server builds."""

    def get(source: Any, _info: Any) -> Any:
        if isinstance(source, dict):
            value = source.get(name)
            return _STOCK if callable(value) else value
        return _STOCK

    return get


if Executor is not None:

    class FastExecutor(Executor):  # type: ignore[misc,valid-type]
        def execute_fields(self, parent_type: Any, source_value: Any, path: Any, grouped_field_set: Any,
                           position_context: Any) -> Any:
            state = self.__dict__
            # Looking at the clock once per 64 objects keeps the check under 1% of a large page.
            calls = state["_calls"] = state.get("_calls", -1) + 1
            deadline = DEADLINE.get() if not calls & 63 else None
            if deadline is not None and deadline.passed():
                raise DeadlinePassed("time limit passed")
            plans = state.setdefault("_fast_plans", {})
            key = (id(parent_type), id(grouped_field_set))
            entry = plans.get(key)
            if entry is None or entry[0] is not grouped_field_set:
                # Keeping the selection in the entry stops its id from being reused while cached.
                try:
                    planned = self._plan(parent_type, grouped_field_set)
                except Exception:  # e.g. bad argument values: graphql-core reports them
                    planned = None
                entry = plans[key] = (grouped_field_set, planned)
            plan = entry[1]
            if plan is None:
                return super().execute_fields(parent_type, source_value, path, grouped_field_set,
                                              position_context)
            info = _Info(self.context_value)
            out: dict[str, Any] = {}
            for name, details, kind, resolve, args, non_null, is_list, target in plan:
                if kind:
                    try:
                        value = resolve(source_value, info, **args)
                    except Exception:
                        deadline = DEADLINE.get()
                        if deadline is not None and deadline.passed():
                            raise DeadlinePassed("time limit passed") from None  # no point redoing it
                        value = _STOCK  # redone below, where graphql-core reports it properly
                    if value is None:
                        if not non_null:
                            out[name] = None
                            continue
                    elif value is _STOCK:
                        pass
                    elif kind == _OBJECT:
                        object_type, field_type = target
                        out[name] = self._object(object_type, field_type, value, details,
                                                 Path(path, name, parent_type.name), position_context)
                        continue
                    else:
                        try:
                            if is_list:
                                value = [target(v) for v in value]
                                if not any(v is None or v is Undefined for v in value):
                                    out[name] = value
                                    continue
                            else:
                                value = target(value)
                                if value is not None and value is not Undefined:
                                    out[name] = value
                                    continue
                        except Exception:
                            pass
                result = self.execute_field(parent_type, source_value, details,
                                            Path(path, name, parent_type.name), position_context)
                if result is not Undefined:
                    out[name] = result
            return out

        def _object(self, object_type: Any, field_type: Any, value: Any, details: Any, path: Any,
                    position_context: Any) -> Any:
            """A nested object, completed as graphql-core would, without its per-field detour."""
            try:
                return self.execute_fields(object_type, value, path,
                                           self.collect_subfields(object_type, details)[0], position_context)
            except Exception as raw:
                # A non-null field inside failed: null here, or propagate further, exactly as stock.
                self.handle_field_error(raw, field_type, details, path)
                return None

        def _plan(self, parent_type: Any, grouped_field_set: Any) -> list[tuple] | None:
            plan: list[tuple] = []
            for name, details in grouped_field_set.items():
                first = details[0]
                field = self.schema.get_field(parent_type, first.node.name.value)
                if field is None:
                    return None
                # The wrapping types are peeled by hand below; mypy cannot follow the isinstance flags.
                kind: Any = field.type
                non_null = isinstance(kind, GraphQLNonNull)
                inner = kind.of_type if non_null else kind
                is_list = isinstance(inner, GraphQLList)
                leaf = inner.of_type if is_list else inner
                leaf = leaf.of_type if isinstance(leaf, GraphQLNonNull) else leaf
                resolve = field.resolve or _dict_getter(first.node.name.value)
                target: Any
                if len(details) == 1 and is_leaf_type(leaf):
                    mode, target = _LEAF, leaf.coerce_output_value
                elif (len(details) == 1 and not is_list and isinstance(inner, GraphQLObjectType)
                      and inner.is_type_of is None):
                    mode, target = _OBJECT, (inner, field.type)
                else:
                    plan.append((name, details, 0, None, None, None, None, None))
                    continue
                args = (get_argument_values(field, first.node, self.variable_values,
                                            first.fragment_variable_values, self.hide_suggestions)
                        if field.args or first.node.arguments else {})
                plan.append((name, details, mode, resolve, args, non_null, is_list, target))
            return plan


def executor_options() -> dict[str, Any]:
    """Keyword arguments for graphql.execute that switch the fast path on, where available."""
    if Executor is None:
        return {}
    return {"executor_class": FastExecutor, "is_awaitable": _never_awaitable}
