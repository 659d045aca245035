"""Selection and plan against the real local server: options, rails, keep-best/keep-last per
group, the counting guard in every form, --max, and that planning changes nothing."""

from __future__ import annotations

import pytest

from tests.conftest import Caller
from wandb_gql import Client
from wandb_gql.cleanup import DEFAULT_PROTECT_TAGS, Selection, make_plan
from wandb_gql.errors import PlanError, UsageError
from wandb_gql.server.local import LocalServer

UPSERT = ('mutation U($n: String, $p: String, $t: [String], $s: String) { upsertBucket(input: '
          '{entityName: "demo", modelName: $p, name: $n, tags: $t, state: $s}) { inserted } }')


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    with LocalServer(tmp_path_factory.mktemp("plan") / "db", seed="demo") as s:
        api = Caller(s)
        # demo/rl gains runs with the default protected tags (finished, so only the tag keeps them out)
        for name, tags in (("keep1", ["keep"]), ("prot1", ["protected", "tmp"]), ("plain1", ["tmp"])):
            api.ok(UPSERT, {"n": name, "p": "rl", "t": tags, "s": "finished"})
        yield s


def client(s: LocalServer) -> Client:
    return Client(s.base_url, s.api_key)


async def snapshot(c: Client, path: str) -> list[dict]:
    return [r.to_dict() async for r in c.runs(path, config_keys=True, summary_keys=True)]


async def every_run(c: Client, path: str, summary=None) -> list:
    return [r async for r in c.runs(path, summary_keys=summary)]


@pytest.mark.parametrize("where", ['name ~ "."', "created_at > 2000-01-01", "created_at > 100y ago", 'display_name ~ ""',
                                   "state in (finished, crashed, failed, running, killed)"])
async def test_every_run_refused_by_counting_whatever_the_filter(demo, where):
    async with client(demo) as c:
        with pytest.raises(PlanError, match="every live run of demo/nlp") as info:
            await make_plan(c, "demo/nlp", Selection.choose(where=where, action="delete"), "delete")
        assert info.value.exit_code == 3
        plan = await make_plan(c, "demo/nlp", Selection.choose(where=where, every=True), "delete")
        assert plan.run_ids and len(plan.run_ids) == 600 - plan.excluded["running"]


@pytest.mark.parametrize("kw", [dict(where="not (state = nosuch)"), dict(filters={}), dict(),
                                dict(where='name ~ "." or not name ~ "."')])
def test_every_run_refused_statically_before_anything_is_sent(kw):
    with pytest.raises(UsageError) as info:
        Selection.choose(action="delete", **kw)
    assert info.value.exit_code == 2


async def test_explicit_ids_naming_every_run_are_refused_too(demo):
    async with client(demo) as c:
        ids = [i async for i in c.run_ids("demo/rl")]
        with pytest.raises(PlanError, match="every live run"):
            await make_plan(c, "demo/rl", Selection.choose(ids=ids), "delete")


@pytest.mark.parametrize("kw, message", [
    (dict(keep_best=2), "needs --by"), (dict(keep_best=2, by="loss"), "summary.<metric>"),
    (dict(keep_best=2, by="summary.loss", mode="median"), "min or max"), (dict(keep_last=1, per="user"), "--per"),
    (dict(per="group"), "--per groups"), (dict(older_than="30 days"), "--older-than"),
    (dict(states=["crashd"]), "no run has that state"), (dict(max_runs=0), "--max")])
def test_bad_options_are_usage_errors(kw, message):
    with pytest.raises(UsageError, match=message):
        Selection.choose(where="state = crashed", **kw)


async def test_rails_running_and_protected_tags(demo):
    async with client(demo) as c:
        runs = await every_run(c, "demo/rl")
        sel = Selection.choose(where="tags has tmp or state = running")
        assert sel.protect_tags == DEFAULT_PROTECT_TAGS
        plan = await make_plan(c, "demo/rl", sel, "delete")
        running = {r.name for r in runs if r.state == "running"}
        protected = {r.name for r in runs if set(r.tags or ()) & {"keep", "protected"}}
        matched = {r.name for r in runs if "tmp" in (r.tags or ()) or r.state == "running"}
        assert set(plan.run_ids) == matched - running - protected
        assert "prot1" not in plan.run_ids and "plain1" in plan.run_ids
        assert plan.excluded["running"] == len(running) and plan.excluded["protected"] == 1
        with_running = await make_plan(c, "demo/rl", Selection.choose(where="tags has tmp or state = running",
                                                                      include_running=True), "delete")
        assert set(with_running.run_ids) == matched - protected
        extra = await make_plan(c, "demo/rl", Selection.choose(where="tags has tmp or state = running",
                                                               protect_tags=[*DEFAULT_PROTECT_TAGS, "baseline"]),
                                "delete")
        baseline = {r.name for r in runs if "baseline" in (r.tags or ())}
        assert set(extra.run_ids) == matched - running - protected - baseline
        # explicit ids go through the same rails
        ids = sorted(running)[:2] + ["prot1", "plain1"]
        by_id = await make_plan(c, "demo/rl", Selection.choose(ids=ids), "delete")
        assert by_id.run_ids == ("plain1",) and by_id.excluded == {"running": 2, "protected": 1}


@pytest.mark.parametrize("per", ["group", "sweep", None])
async def test_keep_best_per_group_and_sweep(demo, per):
    async with client(demo) as c:
        runs = [r for r in await every_run(c, "demo/vision", summary=["val/acc"])
                if r.state in ("crashed", "failed") and r.state != "running"]
        sel = Selection.choose(where="state in (crashed, failed)", keep_best=2, by="summary.val/acc", per=per)
        plan = await make_plan(c, "demo/vision", sel, "delete")
    groups: dict = {}
    for r in runs:
        groups.setdefault(getattr(r, per) if per else None, []).append(r)
    best = set()
    for members in groups.values():
        ranked = sorted((r for r in members if "val/acc" in r.summary), key=lambda r: -r.summary["val/acc"])
        best |= {r.name for r in ranked[:2]}
    assert set(plan.run_ids) == {r.name for r in runs} - best
    assert plan.excluded["kept_best"] == len(best) and len(best) >= (2 if per is None else 4)


async def test_keep_last_per_job_type_and_min_mode(demo):
    async with client(demo) as c:
        runs = [r for r in await every_run(c, "demo/nlp", summary=["loss"]) if r.state == "crashed"]
        plan = await make_plan(c, "demo/nlp", Selection.choose(where="state = crashed", keep_last=3, per="job_type"),
                               "delete")
        low = await make_plan(c, "demo/nlp", Selection.choose(where="state = crashed", keep_best=1,
                                                              by="summary.loss", mode="min"), "delete")
    newest = set()
    for job in {r.job_type for r in runs}:
        newest |= {r.name for r in sorted((r for r in runs if r.job_type == job), key=lambda r: r.created_at)[-3:]}
    assert set(plan.run_ids) == {r.name for r in runs} - newest
    assert set(low.run_ids) == {r.name for r in runs} - {min(runs, key=lambda r: r.summary["loss"]).name}


async def test_options_are_anded_onto_the_filter(demo):
    async with client(demo) as c:
        runs = await every_run(c, "demo/vision")
        sel = Selection.choose(where="tags has tmp", older_than="60d", states=["crashed", "failed"],
                               users=["alice"])
        plan = await make_plan(c, "demo/vision", sel, "delete")
        cut = sel.options["created_before"]
        expected = {r.name for r in runs if "tmp" in (r.tags or ()) and r.created_at < cut
                    and r.state in ("crashed", "failed") and r.user == "alice"}
        assert set(plan.run_ids) == expected and expected
        sweep = next(r.sweep for r in runs if r.sweep)
        only = await make_plan(c, "demo/vision", Selection.choose(sweeps=[sweep], states=["finished"]), "delete")
        assert set(only.run_ids) == {r.name for r in runs if r.sweep == sweep and r.state == "finished"}


async def test_max_runs(demo):
    async with client(demo) as c:
        with pytest.raises(PlanError, match="more than --max 10"):
            await make_plan(c, "demo/vision", Selection.choose(where="state = crashed", max_runs=10), "delete")
        plan = await make_plan(c, "demo/vision", Selection.choose(where="state = crashed", max_runs=10_000), "delete")
        assert len(plan.run_ids) > 10


async def test_plan_summary_and_planning_changes_nothing(demo, recorder_for_demo):
    c = Client(recorder_for_demo.base_url, demo.api_key)
    async with c:
        before = await snapshot(c, "demo/vision")
        recorder_for_demo.requests.clear()
        plan = await make_plan(c, "demo/vision", Selection.choose(where="state = crashed", keep_best=1,
                                                                  by="summary.loss", mode="min", per="group"),
                               "delete")
        sent = list(recorder_for_demo.requests)
        after = await snapshot(c, "demo/vision")
    assert before == after
    assert not any(r["query"].lstrip().startswith("mutation") or "mutation " in r["query"].split("{")[0]
                   for r in sent)
    listing = [r for r in sent if r["operationName"] == "ProjectRuns"]
    assert listing and all(not r["variables"]["withConfig"] and r["variables"]["summaryKeys"] == ["loss"]
                           and not r["variables"]["withNotes"] for r in listing)  # only what is needed
    lines = plan.describe()
    assert lines[0] == f"server: {demo.base_url.replace(demo.base_url, recorder_for_demo.base_url)} as local"
    assert lines[1].startswith(f"plan: delete {len(plan.run_ids)} run(s) in demo/vision")
    assert lines[-1] == f"action: delete {len(plan.run_ids)} run(s)"
    assert sum(plan.by_state.values()) == len(plan.run_ids) == sum(plan.by_group.values())
    assert plan.by_state == {"crashed": len(plan.run_ids)} and plan.oldest <= plan.newest
    assert len(plan.sample) == 10 and set(plan.sample[0]) == {"name", "display_name", "state", "group", "created_at"}
    d = plan.to_dict()
    assert d["run_ids"] == list(plan.run_ids) and d["live_count"] == 1200 and d["excluded"]["kept_best"] == 4
    assert d["selection"]["keep_best"] == 1 and d["selection"]["protect_tags"] == ["keep", "protected"]


@pytest.fixture
def recorder_for_demo(demo):
    from tests.conftest import Recorder

    return Recorder(demo.base_url)


async def test_restore_plans_take_ids_as_given_and_filters_unresolved(demo):
    async with client(demo) as c:
        plan = await make_plan(c, "demo/rl", Selection.choose(ids=["gone1", "gone2"]), "restore")
        assert plan.run_ids == ("gone1", "gone2")
        by_filter = await make_plan(c, "demo/rl", Selection.choose(where="tags has tmp"), "restore")
        assert by_filter.run_ids is None and "deleted runs" in by_filter.describe()[1]
