"""The ``--where`` language: readable run filters compiled to W&B's Mongo-style filter JSON.

    state in (crashed, failed) and created_at < 30d ago
    summary.val/acc >= 0.9 and config.lr = 0.001 and tags has baseline
    not (group = "ablation" or name ~ "^tmp-")  and  summary.loss exists

``compile_where(expr)`` parses with a small hand-written tokenizer and recursive-descent parser
(precedence ``not`` > ``and`` > ``or``) and returns the filter dict W&B accepts:
``summary.k`` -> ``summary_metrics.k``, ``config.k`` -> ``config.k.value`` (``config.a.b`` -> ``config.a.value.b``), ``created_at`` ->
``createdAt`` ...; ``a = v`` -> ``{"a": v}``, ``!=`` -> ``$ne``, ``in`` -> ``$in``, ``~`` ->
``$regex``, ``not X`` -> ``{"$nor": [X]}``; ``and``/``or`` are flattened and a lone comparison
is not wrapped. Meaning on missing keys is MongoDB's (``a != 1`` is true when ``a`` is missing).

``validate_filters(raw)`` checks raw ``--filters`` JSON; ``lint(filters)`` lists known W&B traps,
each with its fix. Every failure is a ``FilterError`` whose ``caret()`` points at the culprit.
Pure: no I/O, stdlib only.
"""

from __future__ import annotations

import math
import re
from datetime import datetime, timedelta, timezone
from typing import Any

from .errors import FilterError

__all__ = ["FIELDS", "RUN_STATES", "compile_where", "lint", "validate_filters"]

# --where field -> W&B filter key. config.<key> and summary.<key> are handled apart.
FIELDS = {
    "name": "name",
    "display_name": "displayName",
    "state": "state",
    "tags": "tags",
    "group": "group",
    "job_type": "jobType",
    "sweep": "sweep",
    "user": "username",
    "created_at": "createdAt",
    "heartbeat_at": "heartbeatAt",
}
_TIME_FIELDS = ("created_at", "heartbeat_at")
_FIELD_LIST = ", ".join([*FIELDS, "config.<key>", "summary.<key>"])
_FIELD_HINTS = {
    "id": "the run id is 'name'", "run_id": "the run id is 'name'", "run": "the run id is 'name'",
    "displayname": "did you mean 'display_name'?", "createdat": "did you mean 'created_at'?",
    "heartbeatat": "did you mean 'heartbeat_at'?", "jobtype": "did you mean 'job_type'?",
    "username": "did you mean 'user'?", "tag": "did you mean 'tags'?",
    "summary_metrics": "write summary.<key>", "summarymetrics": "write summary.<key>",
    "config": "write config.<key>", "summary": "write summary.<key>",
}
RUN_STATES = ("running", "finished", "crashed", "failed", "killed", "preempting", "preempted",
              "pending")

_CMP = {"!=": "$ne", "<": "$lt", "<=": "$lte", ">": "$gt", ">=": "$gte"}
_OPS_ANY = ("=", "!=", "<", "<=", ">", ">=", "~", "in", "not in", "exists", "not exists")
_OPS_TAGS = ("has", "=", "!=", "in", "not in", "~", "exists", "not exists")
_OPS_TIME = ("=", "!=", "<", "<=", ">", ">=", "in", "not in", "exists", "not exists")
_KEYWORDS = ("and", "or", "not", "in", "has", "exists")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", "'": "'", '"': '"'}
_STOP = set("(),=!<>~'\"")

_INT = re.compile(r"[-+]?\d+")
_FLOAT = re.compile(r"[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?")
_AGO = re.compile(r"(\d+)([A-Za-z]*)")
_ISO = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})"
    r"(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,6})\d*)?)?(Z|[+-]\d{2}:?\d{2})?)?",
    re.IGNORECASE,
)
_TIME_FMT = "%Y-%m-%dT%H:%M:%S"


# ---------------------------------------------------------------------------- tokenizer


class _Tok:
    """kind: word | str | op | ( | ) | , | eof. ``text`` is the unquoted text."""

    __slots__ = ("kind", "text", "pos", "end", "quoted", "chunks")

    def __init__(self, kind: str, text: str, pos: int, end: int,
                 chunks: list[tuple[str, bool]] | None = None) -> None:
        self.kind, self.text, self.pos, self.end = kind, text, pos, end
        self.chunks = chunks or [(text, False)]  # (text, was backticked)
        self.quoted = any(q for _, q in self.chunks)


def _tokenize(src: str) -> list[_Tok]:
    toks: list[_Tok] = []
    i, n = 0, len(src)

    def fail(msg: str, pos: int) -> FilterError:
        return FilterError(msg, expression=src, position=pos)

    while i < n:
        c = src[i]
        if c.isspace():
            i += 1
        elif c in "(),":
            toks.append(_Tok(c, c, i, i + 1))
            i += 1
        elif c in "=!<>~":
            op = src[i:i + 2] if src[i:i + 2] in ("!=", "<=", ">=") else c
            if op == "!":
                raise fail("unexpected '!': expected '!=' or the keyword 'not'", i)
            toks.append(_Tok("op", op, i, i + len(op)))
            i += len(op)
        elif c in "'\"":
            out, j = [], i + 1
            while j < n and src[j] != c:
                if src[j] == "\\" and j + 1 < n:
                    nxt = src[j + 1]
                    out.append(_ESCAPES.get(nxt, "\\" + nxt))  # unknown escapes stay (regexes)
                    j += 2
                else:
                    out.append(src[j])
                    j += 1
            if j >= n:
                raise fail(f"unterminated string: expected a closing {c}", i)
            toks.append(_Tok("str", "".join(out), i, j + 1))
            i = j + 1
        else:  # a bare word, possibly with `backticked` parts
            chunks: list[tuple[str, bool]] = []
            start, buf = i, []
            while i < n and not src[i].isspace() and src[i] not in _STOP:
                if src[i] == "`":
                    close = src.find("`", i + 1)
                    if close < 0:
                        raise fail("unterminated backtick: expected a closing `", i)
                    if buf:
                        chunks.append(("".join(buf), False))
                        buf = []
                    chunks.append((src[i + 1:close], True))
                    i = close + 1
                else:
                    buf.append(src[i])
                    i += 1
            if buf:
                chunks.append(("".join(buf), False))
            toks.append(_Tok("word", "".join(t for t, _ in chunks), start, i, chunks))
    toks.append(_Tok("eof", "", n, n))
    return toks


# ---------------------------------------------------------------------------- parser


class _Field:
    __slots__ = ("label", "key", "kind")

    def __init__(self, label: str, key: str, kind: str) -> None:
        self.label, self.key, self.kind = label, key, kind  # kind: tags | time | str | any


class _Parser:
    def __init__(self, src: str, now: datetime) -> None:
        self.src, self.now = src, now
        self.toks = _tokenize(src)
        self.i = 0
        self.dotted: list[str] = []  # compiled keys whose backticked part holds a dot

    # -- helpers
    def peek(self) -> _Tok:
        return self.toks[self.i]

    def take(self) -> _Tok:
        tok = self.toks[self.i]
        self.i += 1
        return tok

    def raw(self, tok: _Tok) -> str:
        return self.src[tok.pos:tok.end]

    def is_kw(self, tok: _Tok, *words: str) -> bool:
        return tok.kind == "word" and not tok.quoted and tok.text.lower() in words

    def error(self, msg: str, pos: int, hint: str | None = None) -> FilterError:
        return FilterError(msg, expression=self.src, position=pos, hint=hint)

    def expected(self, what: str, hint: str | None = None) -> FilterError:
        tok = self.peek()
        msg = f"expected {what}"
        if self.i > 0:
            msg += f" after '{self.raw(self.toks[self.i - 1])}'"
        msg += " at end of expression" if tok.kind == "eof" else f", found '{self.raw(tok)}'"
        return self.error(msg, tok.pos, hint)

    # -- grammar
    def parse(self) -> dict:
        if self.peek().kind == "eof":
            raise self.error("empty expression: expected a filter such as 'state = finished'", 0)
        node = self.or_expr()
        tok = self.peek()
        if tok.kind == ")":
            raise self.error("unmatched ')': no '(' before it", tok.pos)
        if tok.kind != "eof":
            raise self.expected("'and', 'or' or end of expression")
        return node

    def or_expr(self) -> dict:
        items = [self.and_expr()]
        while self.is_kw(self.peek(), "or"):
            self.take()
            items.append(self.and_expr())
        return _join("$or", items)

    def and_expr(self) -> dict:
        items = [self.unary()]
        while self.is_kw(self.peek(), "and"):
            self.take()
            items.append(self.unary())
        return _join("$and", items)

    def unary(self) -> dict:
        if self.is_kw(self.peek(), "not"):
            self.take()
            return {"$nor": [self.unary()]}
        if self.peek().kind == "(":
            opening = self.take()
            node = self.or_expr()
            if self.peek().kind == ")":
                self.take()
                return node
            if self.peek().kind == "eof":
                raise self.error("unclosed '(': expected ')' before end of expression",
                                 opening.pos)
            raise self.expected("'and', 'or' or ')'")
        return self.comparison()

    def comparison(self) -> dict:
        tok = self.peek()
        if tok.kind != "word" or self.is_kw(tok, *_KEYWORDS):
            raise self.expected("a field name or '('")
        self.take()
        field = self.field(tok)
        op_tok = self.peek()
        if op_tok.kind == "op":
            op = op_tok.text
        elif self.is_kw(op_tok, "in", "has", "exists"):
            op = op_tok.text.lower()
        elif self.is_kw(op_tok, "not"):
            self.take()
            if not self.is_kw(self.peek(), "in", "exists"):
                raise self.expected("'in' or 'exists'")
            op = "not " + self.peek().text.lower()
        else:
            raise self.expected(
                "an operator (=, !=, <, <=, >, >=, ~, in, not in, has, exists, not exists)")
        self.check_op(field, op, op_tok)
        self.take()

        if op in ("exists", "not exists"):
            return {field.key: {"$exists": op == "exists"}}
        if op in ("in", "not in"):
            return {field.key: {"$in" if op == "in" else "$nin": self.value_list(field)}}
        if op == "~":
            return {field.key: {"$regex": self.regex()}}
        value = self.value(field)
        if op in ("=", "has"):
            return {field.key: value}
        return {field.key: {_CMP[op]: value}}

    def check_op(self, field: _Field, op: str, tok: _Tok) -> None:
        allowed = {"tags": _OPS_TAGS, "time": _OPS_TIME}.get(field.kind, _OPS_ANY)
        if op in allowed:
            return
        if op == "has":
            raise self.error(f"'has' is only for tags, not {field.label}: use '=' to compare "
                             "a value", tok.pos)
        raise self.error(f"'{op}' is not supported on {field.label}: {field.label} supports "
                         f"only {', '.join(allowed)}", tok.pos)

    def field(self, tok: _Tok) -> _Field:
        label = self.raw(tok)
        # split on dots outside backticks; a backticked part is always inside one segment
        segments, dotted = [""], False
        for text, quoted in tok.chunks:
            if quoted:
                segments[-1] += text
                dotted = dotted or "." in text
            else:
                parts = text.split(".")
                segments[-1] += parts[0]
                segments.extend(parts[1:])
        head, key_parts = segments[0].lower(), segments[1:]
        if head in ("config", "summary") and key_parts:
            if any(p == "" for p in key_parts):
                raise self.error(f"empty key part in '{label}': expected {head}.<key>",
                                 tok.pos, hint="quote a key with backticks: "
                                 f"{head}.`odd.key`")
            if head == "config":
                # W&B stores config as {"key": {"value": v}}: a nested key lives under the
                # top-level key's "value" (config.opt.lr -> config.opt.value.lr).
                compiled = ".".join(["config", key_parts[0], "value", *key_parts[1:]])
            else:
                compiled = "summary_metrics." + ".".join(key_parts)
            if dotted:
                self.dotted.append(compiled)
            return _Field(label, compiled, "any")
        if head in FIELDS and not key_parts:
            kind = "tags" if head == "tags" else "time" if head in _TIME_FIELDS else "str"
            return _Field(head, FIELDS[head], kind)
        raise self.error(f"unknown field '{label}': expected one of {_FIELD_LIST}", tok.pos,
                         hint=_FIELD_HINTS.get(head))

    def value_list(self, field: _Field) -> list:
        if self.peek().kind != "(":
            raise self.expected("'('")
        self.take()
        values = [self.value(field)]
        while self.peek().kind == ",":
            self.take()
            values.append(self.value(field))
        if self.peek().kind != ")":
            raise self.expected("',' or ')'")
        self.take()
        return values

    def regex(self) -> str:
        tok = self.peek()
        if tok.kind not in ("word", "str") or self.is_kw(tok, *_KEYWORDS):
            raise self.expected("a regex (quote it if it holds spaces or parentheses)")
        self.take()
        try:
            re.compile(tok.text)
        except re.error as e:
            raise self.error(f"invalid regex '{tok.text}': {e.msg}", tok.pos) from None
        return tok.text

    def value(self, field: _Field) -> Any:
        tok = self.peek()
        if tok.kind not in ("word", "str") or self.is_kw(tok, *_KEYWORDS):
            hint = None
            if tok.kind == "word":
                hint = f"to use it as a string, quote it: '{tok.text}'"
            elif tok.text == "=":
                hint = "use a single '=' for equality"
            raise self.expected("a value", hint)
        after = self.raw(self.toks[self.i - 1])
        self.take()
        if self.is_kw(self.peek(), "ago") and tok.kind == "word":
            return self.relative(field, tok, self.take())
        if field.kind == "time":
            if tok.kind == "word" and self.is_kw(tok, "null"):
                return None
            when = _parse_iso(tok.text, self, tok) if tok.kind == "str" or not tok.quoted else None
            if when is None:
                m = _AGO.fullmatch(tok.text)
                hint = (f"write '{tok.text} ago'" if m and m.group(2) in _UNITS
                        else "e.g. 2024-01-31, 2024-01-31T12:00:00Z or 30d ago")
                raise self.error(f"expected a date, datetime or relative time after '{after}' "
                                 f"for {field.label}, found '{self.raw(tok)}'", tok.pos, hint=hint)
            return when
        if tok.kind == "str" or tok.quoted:
            return tok.text
        word = tok.text
        if word.lower() == "null":
            return None
        if field.kind != "any":  # root fields and tags hold strings
            return word
        if word.lower() in ("true", "false"):
            return word.lower() == "true"
        if _INT.fullmatch(word):
            return int(word)
        if _FLOAT.fullmatch(word):
            number = float(word)
            if not math.isfinite(number):
                raise self.error(f"number '{word}' is out of range", tok.pos)
            return number
        return word

    def relative(self, field: _Field, tok: _Tok, ago: _Tok) -> str:
        text = f"{tok.text} {ago.text}"
        m = _AGO.fullmatch(tok.text) if not tok.quoted else None
        if m is None:
            raise self.error(f"expected <n><unit> before 'ago' (e.g. 30d ago), found '{tok.text}'",
                             tok.pos)
        unit = m.group(2)
        if unit not in _UNITS:
            what = f"unknown time unit '{unit}'" if unit else "missing time unit"
            raise self.error(f"{what} in '{text}': expected s, m, h, d or w", tok.pos)
        if field.kind != "time":
            raise self.error(f"relative time '{text}' is only valid on created_at and "
                             f"heartbeat_at, not {field.label}", tok.pos)
        try:
            when = self.now - timedelta(seconds=int(m.group(1)) * _UNITS[unit])
        except OverflowError:
            raise self.error(f"relative time '{text}' is out of range", tok.pos) from None
        return when.strftime(_TIME_FMT)


def _join(op: str, items: list[dict]) -> dict:
    if len(items) == 1:
        return items[0]
    flat: list[dict] = []
    for item in items:
        if len(item) == 1 and op in item:
            flat.extend(item[op])
        else:
            flat.append(item)
    return {op: flat}


def _parse_iso(text: str, parser: _Parser, tok: _Tok) -> str | None:
    """An ISO date/datetime -> UTC "YYYY-MM-DDTHH:MM:SS" (a date is midnight); None if not one."""
    m = _ISO.fullmatch(text.strip())
    if m is None:
        return None
    y, mo, d, hh, mm, ss, frac, tz = m.groups()
    try:
        when = datetime(int(y), int(mo), int(d), int(hh or 0), int(mm or 0), int(ss or 0),
                        int((frac or "0").ljust(6, "0")))
    except ValueError as e:
        raise parser.error(f"invalid date '{text}': {e}", tok.pos) from None
    if tz and tz.upper() != "Z":
        sign = -1 if tz[0] == "-" else 1
        digits = tz[1:].replace(":", "")
        when -= sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
    return when.strftime(_TIME_FMT)


def compile_where(expr: str, *, now: datetime | None = None) -> dict:
    """Compile a ``--where`` expression to W&B's filter JSON (a dict).

    Relative times (``30d ago``) are resolved once against ``now`` (default: the current UTC
    time; a naive ``now`` is taken as UTC). Raises ``FilterError`` with ``expression`` and
    ``position`` set.
    """
    return _Parser(expr, _utc(now)).parse()


def _utc(now: datetime | None) -> datetime:
    if now is None:
        now = datetime.now(timezone.utc)
    if now.tzinfo is not None:
        now = now.astimezone(timezone.utc).replace(tzinfo=None)
    return now


# ---------------------------------------------------------------------------- raw --filters

_LOGICAL = ("$and", "$or", "$nor")
_FIELD_OPS = ("$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$exists", "$regex")
_OP_LIST = ", ".join(_LOGICAL + _FIELD_OPS)


def validate_filters(filters: dict | str) -> dict:
    """Check raw ``--filters`` JSON (text or dict) before anything is sent; return the dict.

    Known operators only, ``$and``/``$or``/``$nor`` take non-empty lists of objects, ``$in``/
    ``$nin`` lists, ``$exists`` a boolean, ``$regex`` a valid pattern.
    """
    if isinstance(filters, str):
        import json

        try:
            filters = json.loads(filters)
        except json.JSONDecodeError as e:
            one_line = "\n" not in filters
            raise FilterError(
                f"malformed filter JSON: {e.msg} at line {e.lineno} column {e.colno}",
                expression=filters if one_line else None, position=e.pos if one_line else None,
            ) from None
    if not isinstance(filters, dict):
        raise FilterError(f"filter JSON must be an object, found {_short(filters)}")
    _check_node(filters, "filters")
    return filters


def _dumps(value: Any) -> str:
    import json  # lazily: only raw --filters and lint need it

    return json.dumps(value)


def _short(value: Any) -> str:
    try:
        text = _dumps(value)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _fail(path: str, msg: str) -> FilterError:
    return FilterError(f"{path}: {msg}")


def _check_node(node: dict, path: str) -> None:
    for key, arg in node.items():
        here = f"{path}[{_dumps(key)}]"
        if not isinstance(key, str) or key == "":
            raise _fail(here, "expected a field name or an operator, found an empty key")
        if key in _LOGICAL:
            if not isinstance(arg, list) or not arg or not all(isinstance(x, dict) for x in arg):
                raise _fail(here, f"'{key}' needs a non-empty list of filter objects, "
                                  f"found {_short(arg)}")
            for i, item in enumerate(arg):
                _check_node(item, f"{here}[{i}]")
        elif key in _FIELD_OPS:
            raise _fail(here, f"'{key}' needs a field: "
                              f"expected {{\"<field>\": {{\"{key}\": ...}}}}")
        elif key.startswith("$"):
            raise _fail(here, f"unknown operator '{key}': expected one of {_OP_LIST}")
        elif isinstance(arg, dict) and any(str(k).startswith("$") for k in arg):
            _check_condition(arg, here)
        else:
            _check_finite(arg, here)


def _check_condition(cond: dict, path: str) -> None:
    for op, arg in cond.items():
        here = f"{path}[{_dumps(op)}]"
        if not str(op).startswith("$"):
            raise _fail(here, "cannot mix operators and plain keys in one condition")
        if op in _LOGICAL:
            raise _fail(here, f"'{op}' combines whole filters and is not valid inside a field's "
                              "condition: move it to the top level")
        if op not in _FIELD_OPS:
            raise _fail(here, f"unknown operator '{op}': expected one of {_OP_LIST}")
        _check_finite(arg, here)
        if op in ("$in", "$nin") and not isinstance(arg, list):
            raise _fail(here, f"'{op}' needs a list, found {_short(arg)}")
        if op == "$exists" and not isinstance(arg, bool):
            raise _fail(here, f"'$exists' needs true or false, found {_short(arg)}")
        if op == "$regex":
            if not isinstance(arg, str):
                raise _fail(here, f"'$regex' needs a string, found {_short(arg)}")
            try:
                re.compile(arg)
            except re.error as e:
                raise _fail(here, f"invalid regex {_dumps(arg)}: {e.msg}") from None


def _check_finite(value: Any, path: str) -> None:
    """NaN and Infinity are not JSON: W&B would reject them (orjson would send null)."""
    if isinstance(value, float) and not math.isfinite(value):
        raise _fail(path, f"expected a finite number, found {value}")
    if isinstance(value, list):
        for item in value:
            _check_finite(item, path)
    elif isinstance(value, dict):
        for item in value.values():
            _check_finite(item, path)


# ---------------------------------------------------------------------------- lint

_NUMBER_PREFIXES = ("config.", "summary_metrics.", "summary.")
_TIME_KEYS = ("createdAt", "created_at", "heartbeatAt", "heartbeat_at")


def lint(filters: dict, *, destructive: bool = False, expression: str | None = None) -> list[str]:
    """Warnings for known W&B traps in a filter (compiled or raw), each naming the fix.

    ``destructive=True`` adds a warning when the filter can match every run. Pass the
    ``--where`` text as ``expression`` to also catch backticked keys holding a dot, which the
    compiled JSON cannot tell apart from nested keys.
    """
    out: list[str] = []
    _lint_node(filters, out)
    if expression is not None:
        parser = _Parser(expression, _utc(None))
        try:
            parser.parse()
        except FilterError:
            pass
        for key in parser.dotted:
            out.append(f"key '{key}' holds a dot inside backticks, but W&B reads every dot as "
                       "nesting and cannot address that key: rename the key when logging, or "
                       "filter on it client side")
    if destructive:
        reason = _matches_all(filters)
        if reason:
            out.append(f"this filter matches every run ({reason}): narrow it before a "
                       "destructive command, or pass --all if every run is what you mean")
    return list(dict.fromkeys(out))


def _lint_node(node: Any, out: list[str]) -> None:
    if not isinstance(node, dict):
        return
    for key, cond in node.items():
        if key in _LOGICAL and isinstance(cond, list):
            for item in cond:
                _lint_node(item, out)
        elif isinstance(key, str) and not key.startswith("$"):
            _lint_field(key, cond, out)


def _lint_field(key: str, cond: Any, out: list[str]) -> None:
    if key.startswith("summary."):
        out.append(f"'{key}' matches nothing on W&B: summary keys are filtered as "
                   f"'summary_metrics.{key[len('summary.'):]}'")
    if key == "id":
        out.append("'id' is not a W&B filter field: the run id is 'name'")
    if isinstance(cond, dict) and any(str(k).startswith("$") for k in cond):
        pairs = list(cond.items())
    else:
        pairs = [("$eq", cond)]
    for op, arg in pairs:
        values = arg if op in ("$in", "$nin") and isinstance(arg, list) else [arg]
        if op == "$regex" and isinstance(arg, str):
            out.extend(_lint_regex(arg))
            continue
        for v in values:
            if key.startswith(_NUMBER_PREFIXES) and isinstance(v, str) and _FLOAT.fullmatch(v):
                out.append(f"'{key}' is compared with the quoted number \"{v}\", which compares "
                           "as a string: unquote it to compare numbers")
            if key in _TIME_KEYS and isinstance(v, (int, float)) and not isinstance(v, bool):
                out.append(f"'{key}' is compared with the number {v}, which W&B rejects: use a "
                           "UTC ISO string like \"2024-01-31T00:00:00\"")
            if key == "state" and isinstance(v, str) and v not in RUN_STATES:
                out.append(f"state '{v}' is never used by W&B, so it matches nothing: use one "
                           f"of {', '.join(RUN_STATES)}")


def _lint_regex(pattern: str) -> list[str]:
    anchors, features = False, []
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == "\\":
            if i + 1 < n and pattern[i + 1] in "123456789":
                features.append("backreferences")
            i += 2
            continue
        if c == "[":  # skip a character class: ^ and $ inside are not anchors
            j = i + 1
            j += pattern.startswith("^", j)
            j += pattern.startswith("]", j)
            while j < n and pattern[j] != "]":
                j += 2 if pattern[j] == "\\" else 1
            i = j + 1
            continue
        if c in "^$":
            anchors = True
        elif c == "(" and pattern.startswith("?", i + 1):
            rest = pattern[i + 2:i + 4]
            if rest[:1] in ("=", "!"):
                features.append("lookahead")
            elif rest in ("<=", "<!"):
                features.append("lookbehind")
            elif rest[:1] == ">":
                features.append("atomic groups")
            elif rest == "P=":
                features.append("backreferences")
            i += 2
            continue
        elif c in "*+?}" and pattern.startswith("+", i + 1):
            features.append("possessive quantifiers")
            i += 2
            continue
        i += 1
    out = []
    if anchors:
        out.append(f"regex '{pattern}' uses anchors (^ or $), and W&B's docs disagree on whether "
                   "it supports them: check the count with 'wbgql runs explain', or drop them")
    if features:
        out.append(f"regex '{pattern}' uses {', '.join(dict.fromkeys(features))}, which RE2 "
                   "(W&B's regex engine) does not support: rewrite the regex without them")
    return out


def _matches_all(node: Any) -> str | None:
    """Why this filter matches every run, or None if it (as far as we can tell) does not."""
    if not isinstance(node, dict):
        return None
    if not node:
        return "it is empty"
    reasons = []
    for key, arg in node.items():  # the keys of one object are and-ed: all must match all
        if key == "$and" and isinstance(arg, list) and arg:
            sub = [_matches_all(x) for x in arg]
            if not all(sub):
                return None
            reasons.append(sub[0])
        elif key == "$or" and isinstance(arg, list):
            reason = next((r for r in map(_matches_all, arg) if r), None)
            if reason is None:

                def covered(x: Any) -> bool:  # x is one of the alternatives, or an $or of them
                    alts = x.get("$or") if isinstance(x, dict) and len(x) == 1 else None
                    return x in arg or (isinstance(alts, list) and all(map(covered, alts)))

                for item in arg:
                    single = isinstance(item, dict) and len(item) == 1
                    negated = item.get("$nor") if single else None
                    if isinstance(negated, list) and negated and all(map(covered, negated)):
                        reason = f"it is X or not X, with X = {_dumps(negated[0])}"
                        break
            if reason is None:
                return None
            reasons.append(reason)
        elif key in ("name", "state") and arg == {"$exists": True}:
            reasons.append(f"every run has a {key}")
        else:
            return None
    return reasons[0]


def resolve_filters(filters: dict[str, Any] | str | None = None, where: str | None = None) -> dict[str, Any]:
    """The filter JSON to send: compiled from `where`, or checked raw `filters`, or {}."""
    from .errors import UsageError

    if filters is not None and where is not None:
        raise UsageError("give either filters (JSON, --filters) or where (an expression, --where), not both")
    if where is not None:
        return compile_where(where)
    if filters is not None:
        return validate_filters(filters)
    return {}
