"""Lint of known W&B traps (stable codes, messages naming the fix) and matches_every_run, the
destructive guard."""

from __future__ import annotations

import json
from dataclasses import FrozenInstanceError
from datetime import datetime, timezone

import pytest

from wandb_gql.filters import RUN_STATES, Compiled, Lint, compile_where, lint, matches_every_run

NOW = datetime(2024, 3, 1, 12, 0, 0, tzinfo=timezone.utc)
STATES = ("running, finished, crashed, failed, killed, preempting, preempted, pending")


def anchor(pattern: str) -> Lint:
    return Lint("regex-anchors", f"regex '{pattern}' uses anchors (^ or $), and W&B's docs disagree on "
                "whether it supports them: check the count with 'wbgql runs explain', or drop them")


def re2(pattern: str, features: str) -> Lint:
    return Lint("regex-re2", f"regex '{pattern}' uses {features}, which RE2 (W&B's regex engine) does "
                "not support: rewrite the regex without them")


def quoted(key: str, number: str) -> Lint:
    return Lint("quoted-number", f"'{key}' is compared with the quoted number \"{number}\", which "
                "compares as a string: unquote it to compare numbers")


def unknown_state(state: str, effect: str = "it matches nothing") -> Lint:
    return Lint("unknown-state", f"state '{state}' is never used by W&B, so {effect}: use one of {STATES}")


LINT: list[tuple[dict, list[Lint]]] = [
    ({"summary.acc": {"$gt": 0.9}},
     [Lint("summary-prefix", "'summary.acc' matches nothing on W&B: summary keys are filtered as "
           "'summary_metrics.acc'")]),
    ({"$and": [{"state": "finished"}, {"id": "abc"}]},
     [Lint("id-field", "'id' is not a W&B filter field: the run id is 'name'")]),
    ({"name": {"$regex": "^tmp-"}}, [anchor("^tmp-")]),
    ({"name": {"$regex": "tmp$"}}, [anchor("tmp$")]),
    ({"name": {"$regex": "foo(?=bar)"}}, [re2("foo(?=bar)", "lookahead")]),
    ({"name": {"$regex": "foo(?!bar)"}}, [re2("foo(?!bar)", "lookahead")]),
    ({"name": {"$regex": "(?<=a)b"}}, [re2("(?<=a)b", "lookbehind")]),
    ({"name": {"$regex": "(?<!a)b"}}, [re2("(?<!a)b", "lookbehind")]),
    ({"name": {"$regex": r"(a)\1"}}, [re2(r"(a)\1", "backreferences")]),
    ({"name": {"$regex": "(?P<x>a)(?P=x)"}}, [re2("(?P<x>a)(?P=x)", "backreferences")]),
    ({"name": {"$regex": "(?>ab)c"}}, [re2("(?>ab)c", "atomic groups")]),
    ({"name": {"$regex": "a++b"}}, [re2("a++b", "possessive quantifiers")]),
    ({"name": {"$regex": "^(a)\\1$"}}, [anchor("^(a)\\1$"), re2("^(a)\\1$", "backreferences")]),
    ({"name": {"$regex": "(?=a)(a)\\1"}}, [re2("(?=a)(a)\\1", "lookahead, backreferences")]),
    ({"config.lr.value": "0.1"}, [quoted("config.lr.value", "0.1")]),
    ({"summary_metrics.epoch": {"$in": [1, "2"]}}, [quoted("summary_metrics.epoch", "2")]),
    ({"config.lr.value": {"$gt": "1e-3"}}, [quoted("config.lr.value", "1e-3")]),
    ({"state": "Finished"}, [unknown_state("Finished")]),
    ({"state": {"$in": ["failed", "error"]}}, [unknown_state("error")]),
    ({"state": {"$eq": "done"}}, [unknown_state("done")]),
    ({"createdAt": {"$lt": 1700000000}},
     [Lint("numeric-time", "'createdAt' is compared with the number 1700000000, which W&B rejects: use a "
           "UTC ISO string like \"2024-01-31T00:00:00\"")]),
    ({"updated_at": {"$gte": 1.5}},
     [Lint("numeric-time", "'updated_at' is compared with the number 1.5, which W&B rejects: use a "
           "UTC ISO string like \"2024-01-31T00:00:00\"")]),
]


@pytest.mark.parametrize(("filters", "warnings"), LINT, ids=[json.dumps(f) for f, _ in LINT])
def test_lint(filters: dict, warnings: list[Lint]) -> None:
    assert lint(filters) == warnings
    assert matches_every_run(filters) is None  # none of these matches every run


CLEAN = [
    {"state": "finished"},
    {"state": {"$in": list(RUN_STATES)}},
    {"state": {"$ne": "running"}},
    {"state": {"$gt": "zzz"}},  # a string comparison: no claim either way
    {"config.opt.lr.value": 0.1},  # nested config keys are fine
    {"config.name.value": "run-1"},
    {"name": "123"},  # root fields hold strings; a numeric run id is fine
    {"summary_metrics.loss": {"$lt": 0.5}},
    {"name": {"$regex": r"tmp-\d+[$^]"}},  # ^ and $ inside a class are not anchors
    {"name": {"$regex": r"a\$b\^c"}},
    {"name": {"$regex": "(?:ab)+c*?(?i)x"}},
    {"createdAt": {"$lt": "2024-01-31T00:00:00"}},
    compile_where("state in (crashed, failed) and created_at < 30d ago", now=NOW).filters,
    compile_where("summary.val/acc >= 0.9 and config.lr = 0.001 and tags has baseline", now=NOW),
]


@pytest.mark.parametrize("filters", CLEAN, ids=[json.dumps(getattr(f, "filters", f)) for f in CLEAN])
def test_lint_clean(filters: dict | Compiled) -> None:
    assert lint(filters) == []
    assert matches_every_run(filters) is None


def test_every_code_is_stable_and_lint_is_a_frozen_value() -> None:
    found = lint({"$or": [{"summary.a": 1}, {"id": 1}, {"config.x.value": "2"}, {"createdAt": 1},
                          {"state": "x"}, {"name": {"$regex": "^(?=a)"}}]})
    found += lint(compile_where("summary.`a.b` > 1"))
    assert [w.code for w in found] == ["summary-prefix", "id-field", "quoted-number", "numeric-time",
                                       "unknown-state", "regex-anchors", "regex-re2", "dotted-key"]
    first = found[0]
    assert str(first) == first.message and first == Lint(first.code, first.message)
    assert len({*found, *found}) == len(found)  # hashable: callers can compare sets of warnings
    with pytest.raises(FrozenInstanceError):
        first.code = "x"  # type: ignore[misc]


def test_lint_deduplicates() -> None:
    assert len(lint({"$or": [{"summary.a": 1}, {"summary.a": 2}]})) == 1


def test_lint_on_compiled_expression_catches_state_and_anchor() -> None:
    compiled = compile_where("state = done or name ~ '^tmp'", now=NOW)
    assert lint(compiled) == [unknown_state("done"), anchor("^tmp")]
    assert lint(compiled.filters) == lint(compiled)


# --------------------------------------------------------------------------- state != unknown


def test_unknown_state_excluded_is_not_called_matching_nothing() -> None:
    """`state != foo` matches every run (no run has state foo): it must never be reported as
    matching nothing, and the destructive guard must see it."""
    warnings = lint(compile_where("state != finshed", now=NOW))
    assert warnings == [unknown_state("finshed", "\"state != 'finshed'\" matches every run")]
    assert not any("matches nothing" in w.message for w in warnings)
    assert matches_every_run(compile_where("state != finshed")) == "no run has the state 'finshed'"

    warnings = lint(compile_where("state not in (failed, finshed)", now=NOW))
    assert warnings == [unknown_state("finshed", "leaving it out excludes no run")]
    assert matches_every_run(compile_where("state not in (failed, finshed)")) is None  # failed is excluded
    assert matches_every_run(compile_where("state not in (oops, finshed)")) == \
        "no run has the state 'oops', 'finshed'"
    # not (matches nothing) matches everything
    assert matches_every_run(compile_where("not state = finshed")) == \
        "it is not X, and X matches nothing: no run has the state 'finshed'"
    assert matches_every_run(compile_where("not (state in (a, b) or name not exists)")) == \
        "it is not X, and X matches nothing: no run has the state 'a', 'b'"


# --------------------------------------------------------------------------- matches_every_run


@pytest.mark.parametrize(("filters", "reason"), [
    ({}, "it is empty"),
    ({"$and": [{}]}, "it is empty"),
    ({"name": {"$exists": True}}, "every run has a name"),
    (compile_where("name exists"), "every run has a name"),
    ({"$and": [{"state": {"$exists": True}}, {"name": {"$exists": True}}]}, "every run has a state"),
    (compile_where("state exists and name exists and (state exists or group = a)"), "every run has a state"),
    ({"$or": [{"config.x.value": 1}, {"$nor": [{"config.x.value": 1}]}]},
     'it is X or not X, with X = {"config.x.value": 1}'),
    (compile_where("not (config.x = 1) or config.x = 1"), 'it is X or not X, with X = {"config.x.value": 1}'),
    (compile_where("group = a or not (group = a or state = failed) or state = failed"),
     'it is X or not X, with X = {"$or": [{"group": "a"}, {"state": "failed"}]}'),
    ({"$or": [{"state": "finished"}, {}]}, "it is empty"),
    ({"state": {"$ne": "done", "$exists": True}}, "no run has the state 'done'"),
])
def test_matches_every_run(filters: dict | Compiled, reason: str) -> None:
    assert matches_every_run(filters) == reason
    assert "matches-every-run" not in {w.code for w in lint(filters)}  # not a lint: callers ask matches_every_run


@pytest.mark.parametrize("filters", [
    {"$or": [{"config.x.value": 1}, {"$nor": [{"config.x.value": 2}]}]},
    {"$and": [{"name": {"$exists": True}}, {"state": "failed"}]},
    {"name": {"$exists": False}},
    {"tags": {"$exists": True}},
    {"$nor": [{}]},
    {"$nor": [{"state": "finished"}]},
    {"state": {"$ne": "done", "$exists": False}},
    compile_where("not (group = a or state = failed) or group = a"),
    compile_where("state in (crashed, failed) and created_at < 30d ago", now=NOW),
    compile_where("name exists and summary.loss > 1"),
])
def test_narrow_filters_do_not_match_every_run(filters: dict | Compiled) -> None:
    assert matches_every_run(filters) is None


# --------------------------------------------------------------------------- dotted keys


DOTTED = ("key '{}' holds a dot inside backticks, but W&B reads every dot as nesting and cannot "
          "address that key: rename the key when logging, or filter on it client side")


def test_dotted_keys_come_from_the_compiled_result() -> None:
    expr = "summary.`val.acc` > 0.5 and config.`a.b` = 1 and summary.plain.nested > 1"
    compiled = compile_where(expr, now=NOW)
    expected = [Lint("dotted-key", DOTTED.format(key)) for key in ("summary_metrics.val.acc", "config.a.b.value")]
    assert lint(compiled) == expected
    assert lint(compiled.filters) == []  # the JSON alone cannot tell a dotted key from nesting
    assert lint(compile_where("summary.`val_acc` > 0.5")) == []
    # lint reads what compilation recorded; it does not parse the expression again
    assert lint(Compiled(filters={}, keys=(), expression="not parsed", dotted_keys=("x.y",))) == \
        [Lint("dotted-key", DOTTED.format("x.y"))]
