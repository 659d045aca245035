"""The ``--where`` language: readable run filters compiled to W&B's Mongo-style filter JSON.

    state in (crashed, failed) and created_at < 30d ago
    summary.val/acc >= 0.9 and config.lr = 0.001 and tags has baseline
    not (group = "ablation" or name ~ "^tmp-")  and  summary.loss exists

``compile_where(expr)`` parses with a small hand-written tokenizer and recursive-descent parser
(precedence ``not`` > ``and`` > ``or``) and returns a ``Compiled``: the filter dict W&B accepts,
the names the expression touched, and what lint needs to know about the text.
Names map to W&B's keys: ``summary.k`` -> ``summary_metrics.k``, ``config.k`` -> ``config.k.value``
(``config.a.b`` -> ``config.a.value.b``), a run field -> its filter key in ``models.RUN_FIELDS``
(``created_at`` -> ``createdAt``). Operators: ``a = v`` -> ``{"a": v}``, ``!=`` -> ``$ne``, ``in`` ->
``$in``, ``~`` -> ``$regex``, ``not X`` -> ``{"$nor": [X]}``; ``and``/``or`` are flattened and a
lone comparison is not wrapped. Meaning on missing keys is MongoDB's (``a != 1`` is true when
``a`` is missing).

``compile_order(order)`` turns an ``--order`` name (the same names) into W&B's order key.

Every failure is a ``FilterError`` whose ``caret()`` points at the culprit. Pure, stdlib only.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from .._time import UNITS, ago, parse_iso, utc_naive
from ..errors import FilterError
from ..models import RUN_FIELDS
from .regex import regex_error
from .validate import MAX_DEPTH

__all__ = ["FIELDS", "TIME_FIELDS", "Compiled", "compile_order", "compile_where"]

# --where name -> W&B filter (and order) key; config.<key> and summary.<key> are handled apart.
FIELDS: dict[str, str] = {f.name: f.filter for f in RUN_FIELDS if f.filter is not None}
TIME_FIELDS: tuple[str, ...] = tuple(f.name for f in RUN_FIELDS if f.filter is not None and f.kind == "time")
_TAGS_FIELDS = frozenset(f.name for f in RUN_FIELDS if f.filter is not None and f.kind == "tags")
_FIELD_LIST = ", ".join([*FIELDS, "config.<key>", "summary.<key>"])


def _field_hints() -> dict[str, str]:
    """A misspelt or W&B-spelt field (looked up lowercased) -> the hint that fixes it."""
    hints = {
        "id": "the run id is 'name'", "run_id": "the run id is 'name'", "run": "the run id is 'name'",
        "tag": "did you mean 'tags'?",
        "summary_metrics": "write summary.<key>", "summarymetrics": "write summary.<key>",
        "config": "write config.<key>", "summary": "write summary.<key>",
    }
    for f in RUN_FIELDS:
        if f.filter is None:
            continue
        for alias in (f.name.replace("_", ""), f.filter.lower(), f.wire.lower()):
            if alias != f.name:
                hints.setdefault(alias, f"did you mean '{f.name}'?")
    return hints


_FIELD_HINTS = _field_hints()

_CMP = {"!=": "$ne", "<": "$lt", "<=": "$lte", ">": "$gt", ">=": "$gte"}
_OPS_ANY = ("=", "!=", "<", "<=", ">", ">=", "~", "in", "not in", "exists", "not exists")
_OPS_TAGS = ("has", "=", "!=", "in", "not in", "~", "exists", "not exists")
_OPS_TIME = ("=", "!=", "<", "<=", ">", ">=", "in", "not in", "exists", "not exists")
_KEYWORDS = ("and", "or", "not", "in", "has", "exists")
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", "'": "'", '"': '"'}
_STOP = set("(),=!<>~'\"")

_INT = re.compile(r"[-+]?\d+")
_FLOAT = re.compile(r"[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?")
_AGO = re.compile(r"(\d+)([A-Za-z]*)")


@dataclass(frozen=True)
class Compiled:
    """One compiled ``--where`` expression.

    ``keys`` are the one-vocabulary names it touched, in order of first use and deduplicated
    (``("state", "summary.val/acc", "config.lr")``); a key part that holds a dot is kept in
    backticks (``summary.`val.acc```) so the name stays unambiguous. ``dotted_keys`` are the
    compiled W&B keys whose backticked part holds a dot: W&B reads every dot as nesting, so lint
    warns about them (the compiled JSON alone cannot tell them from nested keys).
    """

    filters: dict[str, Any] = field(hash=False)
    keys: tuple[str, ...]
    expression: str | None  # None: raw --filters JSON
    dotted_keys: tuple[str, ...] = ()


# ---------------------------------------------------------------------------- tokenizer


class _Tok:
    """kind: word | str | op | ( | ) | , | eof. ``text`` is the unquoted text."""

    __slots__ = ("kind", "text", "pos", "end", "quoted", "chunks")

    def __init__(self, kind: str, text: str, pos: int, end: int,
                 chunks: list[tuple[str, bool]] | None = None) -> None:
        self.kind, self.text, self.pos, self.end = kind, text, pos, end
        self.chunks = chunks or [(text, False)]  # (text, was backticked)
        self.quoted = any(q for _, q in self.chunks)


def _tokenize(src: str, start: int = 0) -> list[_Tok]:
    toks: list[_Tok] = []
    i, n = start, len(src)

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
            begin = i
            buf: list[str] = []
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
            toks.append(_Tok("word", "".join(t for t, _ in chunks), begin, i, chunks))
    toks.append(_Tok("eof", "", n, n))
    return toks


# ---------------------------------------------------------------------------- fields


class _Field:
    __slots__ = ("label", "name", "key", "kind", "dotted")

    def __init__(self, label: str, name: str, key: str, kind: str, dotted: bool = False) -> None:
        self.label = label    # as written, for messages
        self.name = name      # the one-vocabulary name (Compiled.keys)
        self.key = key        # W&B's key
        self.kind = kind      # tags | time | str | any
        self.dotted = dotted  # a backticked part holds a dot


def _resolve_field(src: str, tok: _Tok) -> _Field:
    """The field a word token names, or a FilterError naming the allowed fields."""
    label = src[tok.pos:tok.end]
    # Split on dots outside backticks; a backticked part always stays inside one segment.
    segments: list[list[Any]] = [["", False]]  # [text, holds a backticked dot]
    for text, quoted in tok.chunks:
        if quoted:
            segments[-1][0] += text
            segments[-1][1] = segments[-1][1] or "." in text
        else:
            parts = text.split(".")
            segments[-1][0] += parts[0]
            segments.extend([p, False] for p in parts[1:])
    head = segments[0][0].lower()
    key_parts = [str(text) for text, _ in segments[1:]]
    if head in ("config", "summary") and key_parts:
        if any(p == "" for p in key_parts):
            raise FilterError(f"empty key part in '{label}': expected {head}.<key>", expression=src,
                              position=tok.pos, hint=f"quote a key with backticks: {head}.`odd.key`")
        if head == "config":
            # W&B stores config as {"key": {"value": v}}: a nested key lives under the
            # top-level key's "value" (config.opt.lr -> config.opt.value.lr).
            key = ".".join(["config", key_parts[0], "value", *key_parts[1:]])
        else:
            key = "summary_metrics." + ".".join(key_parts)
        name = ".".join([head, *(f"`{text}`" if dotted else text for text, dotted in segments[1:])])
        dotted = any(d for _, d in segments[1:])
        return _Field(label, name, key, "any", dotted)
    if head in FIELDS and not key_parts:
        kind = "tags" if head in _TAGS_FIELDS else "time" if head in TIME_FIELDS else "str"
        return _Field(head, head, FIELDS[head], kind)
    raise FilterError(f"unknown field '{label}': expected one of {_FIELD_LIST}", expression=src,
                      position=tok.pos, hint=_FIELD_HINTS.get(head))


# ---------------------------------------------------------------------------- parser


class _Parser:
    def __init__(self, src: str, now: datetime) -> None:
        self.src, self.now = src, now
        self.toks = _tokenize(src)
        self.i = 0
        self.depth = 0  # nested parentheses and nots, bounded so no input can exhaust the stack
        self.fields: list[_Field] = []

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
    def parse(self) -> dict[str, Any]:
        if self.peek().kind == "eof":
            raise self.error("empty expression: expected a filter such as 'state = finished'", 0)
        node = self.or_expr()
        tok = self.peek()
        if tok.kind == ")":
            raise self.error("unmatched ')': no '(' before it", tok.pos)
        if tok.kind != "eof":
            raise self.expected("'and', 'or' or end of expression")
        return node

    def or_expr(self) -> dict[str, Any]:
        items = [self.and_expr()]
        while self.is_kw(self.peek(), "or"):
            self.take()
            items.append(self.and_expr())
        return _join("$or", items)

    def and_expr(self) -> dict[str, Any]:
        items = [self.unary()]
        while self.is_kw(self.peek(), "and"):
            self.take()
            items.append(self.unary())
        return _join("$and", items)

    def unary(self) -> dict[str, Any]:
        if self.is_kw(self.peek(), "not") or self.peek().kind == "(":
            self.depth += 1
            if self.depth > MAX_DEPTH:
                raise self.error(f"more than {MAX_DEPTH} nested parentheses or 'not's", self.peek().pos,
                                 "write it flatter: 'a or b or c' needs no parentheses")
            try:
                return self.nested()
            finally:
                self.depth -= 1
        return self.comparison()

    def nested(self) -> dict[str, Any]:
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
                raise self.error("unclosed '(': expected ')' before end of expression", opening.pos)
            raise self.expected("'and', 'or' or ')'")
        raise AssertionError("unary() calls nested() only on 'not' or '('")

    def comparison(self) -> dict[str, Any]:
        tok = self.peek()
        if tok.kind != "word" or self.is_kw(tok, *_KEYWORDS):
            raise self.expected("a field name or '('")
        self.take()
        fld = _resolve_field(self.src, tok)
        self.fields.append(fld)
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
        self.check_op(fld, op, op_tok)
        self.take()

        if op in ("exists", "not exists"):
            return {fld.key: {"$exists": op == "exists"}}
        if op in ("in", "not in"):
            return {fld.key: {"$in" if op == "in" else "$nin": self.value_list(fld)}}
        if op == "~":
            return {fld.key: {"$regex": self.regex()}}
        value = self.value(fld)
        if op in ("=", "has"):
            return {fld.key: value}
        return {fld.key: {_CMP[op]: value}}

    def check_op(self, fld: _Field, op: str, tok: _Tok) -> None:
        allowed = {"tags": _OPS_TAGS, "time": _OPS_TIME}.get(fld.kind, _OPS_ANY)
        if op in allowed:
            return
        if op == "has":
            raise self.error(f"'has' is only for tags, not {fld.label}: use '=' to compare a value",
                             tok.pos)
        raise self.error(f"'{op}' is not supported on {fld.label}: {fld.label} supports "
                         f"only {', '.join(allowed)}", tok.pos)

    def value_list(self, fld: _Field) -> list[Any]:
        if self.peek().kind != "(":
            raise self.expected("'('")
        self.take()
        values = [self.value(fld)]
        while self.peek().kind == ",":
            self.take()
            values.append(self.value(fld))
        if self.peek().kind != ")":
            raise self.expected("',' or ')'")
        self.take()
        return values

    def regex(self) -> str:
        tok = self.peek()
        if tok.kind not in ("word", "str") or self.is_kw(tok, *_KEYWORDS):
            raise self.expected("a regex (quote it if it holds spaces or parentheses)")
        self.take()
        reason = regex_error(tok.text)
        if reason is not None:
            raise self.error(f"invalid regex '{tok.text}': {reason} (W&B reads RE2 syntax: no backreferences "
                             "or lookarounds)", tok.pos)
        return tok.text

    def value(self, fld: _Field) -> Any:
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
            return self.relative(fld, tok, self.take())
        if fld.kind == "time":
            return self.time(fld, tok, after)
        if tok.kind == "str" or tok.quoted:
            return tok.text
        word = tok.text
        if word.lower() == "null":
            return None
        if fld.kind != "any":  # root fields and tags hold strings
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

    def time(self, fld: _Field, tok: _Tok, after: str) -> str | None:
        if tok.kind == "word" and self.is_kw(tok, "null"):
            return None
        when = None
        if tok.kind == "str" or not tok.quoted:
            try:
                when = parse_iso(tok.text)
            except ValueError as e:  # shaped like a date but not one (2024-02-30)
                raise self.error(f"invalid date '{tok.text}': {e}", tok.pos) from None
        if when is None:
            m = _AGO.fullmatch(tok.text)
            hint = (f"write '{tok.text} ago'" if m and m.group(2) in UNITS
                    else "e.g. 2024-01-31, 2024-01-31T12:00:00Z or 30d ago")
            raise self.error(f"expected a date, datetime or relative time after '{after}' "
                             f"for {fld.label}, found '{self.raw(tok)}'", tok.pos, hint=hint)
        return when

    def relative(self, fld: _Field, tok: _Tok, ago_tok: _Tok) -> str:
        text = f"{tok.text} {ago_tok.text}"
        m = _AGO.fullmatch(tok.text) if not tok.quoted else None
        if m is None:
            raise self.error(f"expected <n><unit> before 'ago' (e.g. 30d ago), found '{tok.text}'",
                             tok.pos)
        unit = m.group(2)
        if unit not in UNITS:
            what = f"unknown time unit '{unit}'" if unit else "missing time unit"
            raise self.error(f"{what} in '{text}': expected s, m, h, d, w or y", tok.pos)
        if fld.kind != "time":
            raise self.error(f"relative time '{text}' is only valid on {_TIME_FIELD_WORDS}, "
                             f"not {fld.label}", tok.pos)
        try:
            return ago(timedelta(seconds=int(m.group(1)) * UNITS[unit]), self.now)
        except OverflowError:
            raise self.error(f"relative time '{text}' is out of range", tok.pos) from None


_TIME_FIELD_WORDS = (", ".join(TIME_FIELDS[:-1]) + " and " + TIME_FIELDS[-1]
                     if len(TIME_FIELDS) > 1 else "".join(TIME_FIELDS))


def _join(op: str, items: list[dict[str, Any]]) -> dict[str, Any]:
    if len(items) == 1:
        return items[0]
    flat: list[dict[str, Any]] = []
    for item in items:
        if len(item) == 1 and op in item:
            flat.extend(item[op])
        else:
            flat.append(item)
    return {op: flat}


def compile_where(expr: str, *, now: datetime | None = None) -> Compiled:
    """Compile a ``--where`` expression to W&B's filter JSON (``.filters``) and the names it used.

    Relative times (``30d ago``) are resolved once against ``now`` (default: the current UTC
    time; a naive ``now`` is taken as UTC). Raises ``FilterError`` with ``expression`` and
    ``position`` set.
    """
    parser = _Parser(expr, utc_naive(now))
    filters = parser.parse()
    return Compiled(
        filters=filters,
        keys=tuple(dict.fromkeys(f.name for f in parser.fields)),
        expression=expr,
        dotted_keys=tuple(dict.fromkeys(f.key for f in parser.fields if f.dotted)),
    )


# ---------------------------------------------------------------------------- --order

_WB_ROOT_KEYS = frozenset(FIELDS.values())


def _raw_order_key(name: str) -> bool:
    """Is `name` already W&B's order key (passed through as given)?"""
    if "`" in name:
        return False
    if name in _WB_ROOT_KEYS and name not in FIELDS:
        return True
    head, _, rest = name.partition(".")
    if head == "summary_metrics":
        return bool(rest)
    # config.<key>.value[.<sub>] is W&B's spelling (as W&B and the local server read it), so a
    # config key literally named "value" right below a top-level key cannot be ordered on.
    parts = rest.split(".")
    return head == "config" and len(parts) >= 2 and parts[0] != "" and parts[1] == "value"


def compile_order(order: str) -> str:
    """Compile an ``--order`` name to W&B's order key.

    ``--order`` takes the names ``--where`` takes, with ``+`` (ascending, the default when there
    is no sign) or ``-`` (descending) in front, and returns W&B's key with its sign::

        created_at       -> +createdAt
        -summary.val/acc -> -summary_metrics.val/acc
        +config.lr       -> +config.lr.value        (config.opt.lr -> +config.opt.value.lr)
        display_name     -> +displayName

    W&B's own keys pass through as given (with or without a sign; only blanks are trimmed): its
    root keys that are not also a name of the vocabulary (``-createdAt``, ``heartbeatAt``,
    ``username``), ``summary_metrics.<key>`` and ``config.<key>.value[.<sub>]`` (a config name
    whose second part is ``value`` is taken as already compiled, as W&B reads it). A name of the
    vocabulary always compiles, so the SDK-style ``+created_at`` becomes ``+createdAt`` (both
    spellings sort the same on W&B and on the local server). Anything else raises
    ``FilterError`` naming the allowed names.
    """
    text = order.strip()
    start = len(order) - len(order.lstrip())
    sign = ""
    if text[:1] in ("+", "-"):
        sign = text[0]
        rest = order[start + 1:]
        start += 1 + len(rest) - len(rest.lstrip())
        text = text[1:].strip()
    if not text:
        raise FilterError("empty order: expected a field name such as -created_at", expression=order,
                          position=start, hint=f"fields: {_FIELD_LIST}")
    if _raw_order_key(text):
        return sign + text
    sign = sign or "+"
    toks = _tokenize(order, start)
    tok = toks[0]
    if tok.kind != "word" or toks[1].kind != "eof":
        bad = tok if tok.kind != "word" else toks[1]
        raise FilterError(f"expected one field name in the order, found '{order[bad.pos:bad.end]}'",
                          expression=order, position=bad.pos, hint="write e.g. -summary.val/acc")
    return sign + _resolve_field(order, tok).key
