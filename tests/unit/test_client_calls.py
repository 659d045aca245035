"""Client without a server: what each call sends (checked against schema.graphql by the fake
transport), paging, limits, id batching, per-id outcomes and how errors map."""

from __future__ import annotations

import re

import orjson
import pytest

from tests.helpers import Call, FakeTransport, FakeWandb, check_variables, operation, page, run_node
from wandb_gql import (Client, GraphQLResponseError, NotFoundError, PaginationError, ServerError, UsageError,
                       documents)
from wandb_gql.client._paging import BATCH
from wandb_gql.models import RUN_FIELDS
from wandb_gql.transport import IDEMPOTENT, READ


class BulkWandb(FakeWandb):
    """The fake W&B with its bulk mutations (deleteRuns, modifyRuns) and a deleteRun that, like
    W&B's, succeeds on a deleted run and fails on one that never was."""

    def _storage_ids(self) -> dict[str, str]:
        import base64

        return {**{r["id"]: r["id"] for (e, p), runs in self.projects.items() for r in runs},
                **{base64.b64encode(f"Run:v1:{r['name']}:{p}:{e}".encode()).decode(): r["id"]
                   for (e, p), runs in self.projects.items() for r in runs}}

    def _delete_run(self, v):
        known = self._storage_ids()
        if v["id"] not in known:
            return GraphQLResponseError("DeleteRun: run not found", errors=[{"message": "not found"}])
        self.deleted.add(known[v["id"]])
        return {"deleteRun": {"clientMutationId": None}}

    def _delete_runs(self, v):
        names = set(orjson.loads(v["filters"])["name"]["$in"])
        self.deleted |= {r["id"] for r in self.projects[(v["entity"], v["project"])] if r["name"] in names}
        return {"deleteRuns": {"clientMutationId": None, "errors": None}}

    def _modify_runs(self, v):
        changed = []
        for run in self.projects[(v["entity"], v["project"])]:
            if run["id"] in v["ids"]:
                tags = [t for t in run.get("tags") or [] if t not in v["removeTags"]]
                run["tags"] = tags + [t for t in v["addTags"] if t not in tags]
                changed.append({"id": run["id"], "name": run["name"], "tags": run["tags"]})
        return {"modifyRuns": {"runs": changed}}


def demo(n: int = 10, entity: str = "demo", project: str = "vision") -> FakeWandb:
    return BulkWandb(projects={(entity, project): [run_node(f"r{i:04d}", state="finished", tags=["t"])
                                                   for i in range(n)]})


def client(handler) -> tuple[Client, FakeTransport]:
    fake = FakeTransport(handler)
    return Client(transport=fake), fake


# -- the fake itself is strict ------------------------------------------------------------------
def test_the_fake_refuses_what_the_server_would():
    with pytest.raises(AssertionError, match="not an operation"):
        check_variables("NoSuchQuery", {})
    with pytest.raises(AssertionError, match="not declared"):
        check_variables("ProjectRunCount", {"entity": "e", "project": "p", "colour": 1})
    with pytest.raises(AssertionError, match="entity"):
        check_variables("ProjectRunCount", {"project": "p"})
    with pytest.raises(AssertionError, match="Boolean"):
        check_variables("ProjectRuns", {"entity": "e", "project": "p", "withConfig": "yes", "withSummary": False})


def test_project_runs_flags_are_derived_from_run_fields():
    declared = {d.variable.name.value for d in operation("ProjectRuns").variable_definitions}
    flags = {v for v in declared if v.startswith("with")} - {"withConfig", "withSummary"}
    assert flags == {f.flag for f in RUN_FIELDS if f.optional}


# -- reading ------------------------------------------------------------------------------------
async def test_projection_variables():
    c, fake = client(demo())
    async with c:
        [r async for r in c.runs("demo/vision")]
        [r async for r in c.runs("demo/vision", config_keys=["lr"], summary_keys=True, fields=["state", "sweep"])]
        [r async for r in c.runs("demo/vision", config_keys="lr,bs", summary_keys="*", fields=())]
    bare, some, ids = fake.of("ProjectRuns")
    assert bare["withConfig"] is False and bare["withSummary"] is False
    assert not any(k.startswith("with") and k not in ("withConfig", "withSummary") for k in bare)  # defaults: all
    assert some["configKeys"] == ["lr"] and some["withSummary"] is True and some["summaryKeys"] is None
    assert some["withState"] and some["withSweepName"] and not some["withUser"] and not some["withDisplayName"]
    assert ids["configKeys"] == ["lr", "bs"] and ids["summaryKeys"] is None
    assert not any(v for k, v in ids.items() if k.startswith("with") and k not in ("withConfig", "withSummary"))
    assert all(v["order"] == "+createdAt" for v in (bare, some, ids))  # the vocabulary, compiled


async def test_order_and_fields_speak_the_vocabulary():
    c, fake = client(demo())
    async with c:
        [r async for r in c.runs("demo/vision", order="-summary.val/acc", fields=["user", "created_at", "path"])]
        with pytest.raises(UsageError, match="unknown run field"):
            [r async for r in c.runs("demo/vision", fields=["colour"])]
        with pytest.raises(UsageError):
            [r async for r in c.runs("demo/vision", order="-colour")]
    (sent,) = fake.of("ProjectRuns")
    assert sent["order"] == "-summary_metrics.val/acc"
    assert sent["withUser"] and sent["withCreatedAt"] and not sent["withState"]


async def test_paging_is_pipelined_deduplicated_and_in_order():
    c, fake = client(demo(25))
    async with c:
        names = [r.name async for r in c.runs("demo/vision", per_page=10)]
    assert names == [f"r{i:04d}" for i in range(25)]
    assert [v["after"] for v in fake.of("ProjectRuns")] == [None, "10", "20"]
    assert all(v["first"] == 10 for v in fake.of("ProjectRuns"))

    pages = {None: page([run_node("a"), run_node("b")], "c1", True),
             "c1": page([run_node("b"), run_node("c")], "c2", False)}  # a tie repeated at the boundary
    c, fake = client(lambda call: {"project": {"runs": pages[call.variables["after"]]}})
    async with c:
        assert [r.name async for r in c.runs("demo/vision")] == ["a", "b", "c"]


@pytest.mark.parametrize("second", [
    page([run_node("b")], "c1", True),   # the cursor did not move
    page([], None, True),                # more promised, nothing given
    page([run_node("a")], "c2", True),   # a cursor that moves over nothing new
])
async def test_a_stuck_cursor_is_refused_not_looped(second):
    pages = {None: page([run_node("a")], "c1", True), "c1": second, "c2": second}
    c, fake = client(lambda call: {"project": {"runs": pages[call.variables["after"]]}})
    async with c:
        with pytest.raises(PaginationError, match="ProjectRuns"):
            [r async for r in c.runs("demo/vision")]
    assert len(fake.calls) <= 3


async def test_limit_asks_only_for_what_is_still_needed():
    c, fake = client(demo(25))
    async with c:
        assert len([r async for r in c.runs("demo/vision", limit=7, per_page=3)]) == 7
        assert [r async for r in c.runs("demo/vision", limit=0)] == []
        with pytest.raises(UsageError):
            [r async for r in c.runs("demo/vision", limit=-1)]
        with pytest.raises(UsageError):
            [r async for r in c.runs("demo/vision", per_page=1001)]
    assert [v["first"] for v in fake.of("ProjectRuns")] == [3, 3, 1]


async def test_stopping_early_cancels_the_prefetch():
    c, fake = client(demo(3 * BATCH * 2))
    async with c:
        stream = c.runs("demo/vision", per_page=BATCH * 2)
        async for _ in stream:
            break
        await stream.aclose()
    assert len(fake.calls) <= 2


async def test_run_ids_ask_for_ids_only():
    c, fake = client(demo(5))
    async with c:
        assert [i async for i in c.run_ids("demo/vision", where="name in (r0001, r0003)")] == ["r0001", "r0003"]
    assert fake.ops() == ["ProjectRunIds"]
    assert "config" not in documents.document("ProjectRunIds")


async def test_default_entity_comes_from_the_viewer_once():
    c, fake = client(demo(2, entity="ada"))
    async with c:
        assert await c.count_runs("vision") == 2
        assert (await c.run("vision/r0001")).name == "r0001"
        me = await c.viewer()
    assert fake.ops().count("Viewer") == 2  # once for the default entity, once asked
    assert (me.username, me.entity, me.email, me.teams, me.admin) == ("ada", "ada", "ada@example.com",
                                                                      ["ada", "lab"], False)


async def test_every_path_form_reaches_the_same_run():
    c, fake = client(demo(2))
    async with c:
        for form in ("demo/vision/r0001", "demo/vision/runs/r0001", "https://wandb.ai/demo/vision/runs/r0001?nw=x",
                     "https://wandb.ai/demo/vision/runs/r0001/logs/"):
            assert (await c.run(form)).path == "demo/vision/r0001"
        for form in ("demo/vision", "https://wandb.ai/demo/vision/workspace?nw=1", "https://wandb.ai/demo/vision/"):
            assert await c.count_runs(form) == 2
        for bad in ("demo/", "a/b/c/d/e", "", "demo//vision"):
            with pytest.raises(UsageError, match=re.escape("ENTITY/PROJECT")):
                await c.count_runs(bad)
    assert {c.variables["project"] for c in fake.calls} == {"vision"}


async def test_projects_are_paged_and_typed():
    wandb = FakeWandb(projects={("demo", f"p{i:03d}"): [run_node("x")] * (i % 3) for i in range(150)})
    c, fake = client(wandb)
    async with c:
        projects = [p async for p in c.projects("demo")]
    assert len(projects) == 150 and projects[4].path == "demo/p004" and projects[4].run_count == 1
    assert [v["after"] for v in fake.of("EntityProjects")] == [None, "100"]


# -- errors -------------------------------------------------------------------------------------
async def test_a_missing_project_suggests_the_closest_names():
    wandb = demo()
    wandb.projects[("demo", "vision-v2")] = []
    c, _ = client(wandb)
    async with c:
        with pytest.raises(NotFoundError, match="project demo/visoin not found") as info:
            await c.count_runs("demo/visoin")
        assert "did you mean demo/vision" in str(info.value.hint)
        with pytest.raises(NotFoundError, match="did you mean"):
            [r async for r in c.runs("demo/visio")]
        with pytest.raises(NotFoundError) as info:
            await c.run("demo/zzzz/r1")
        assert "demo has: vision, vision-v2" in str(info.value.hint)
        with pytest.raises(NotFoundError) as info:
            await c.count_runs("nobody/vision")
        assert "no entity named nobody" in str(info.value.hint)
        with pytest.raises(NotFoundError, match="run demo/vision/nope not found"):
            await c.run("demo/vision/nope")


async def test_errors_pass_through_with_their_class():
    def handler(call: Call):
        if call.operation == "Viewer":
            return {"viewer": None}
        return GraphQLResponseError("ProjectRunCount: invalid filters", errors=[{"message": "x"}],
                                    data={"project": None})

    c, _ = client(handler)
    async with c:
        with pytest.raises(GraphQLResponseError) as info:
            await c.count_runs("demo/vision")
        assert info.value.data == {"project": None}
        with pytest.raises(NotFoundError, match="no user for this API key"):
            await c.viewer()


# -- mutations ------------------------------------------------------------------------------------
async def test_mutations_pin_ids_in_batches():
    wandb = demo(1200)
    c, fake = client(wandb)
    ids = [f"r{i:04d}" for i in range(1200)] + ["missing"]
    async with c:
        out = await c.delete_runs("demo/vision", ids)
    lookups = [len(orjson.loads(v["filters"])["name"]["$in"]) for v in fake.of("ProjectRunIds")]
    # the pin (1000 + 201: the server's largest page), then one re-check per deleteRuns batch
    assert sorted(lookups) == [200, 201, 500, 500, 1000]
    bulk = fake.of("DeleteRuns")
    assert [len(orjson.loads(v["filters"])["name"]["$in"]) for v in bulk] == [500, 500, 200]
    assert all(c.policy is IDEMPOTENT for c in fake.calls if c.operation == "DeleteRuns")
    assert len(fake.of("DeleteRun")) == 1  # only the probe of the id that is not live
    assert [o.status for o in out].count("deleted") == 1200 and out[-1].status == "not_found"


async def test_outcomes_per_id():
    wandb = demo(4)
    wandb.fail["DeleteRuns"] = (lambda v: "r0001" in v["filters"], ServerError("HTTP 503", status=503))
    c, fake = client(wandb)
    async with c:
        out = await c.delete_runs("demo/vision", ["r0001", "nope", "r0001"])
        assert [(o.run_id, o.status, o.ok) for o in out] == [("r0001", "failed", False), ("nope", "not_found", False)]
        assert "503" in (out[0].error or "")
        out = await c.delete_runs("demo/vision", ["r0000", "r0002", "r0000"])
        assert [(o.run_id, o.status, o.ok) for o in out] == [("r0000", "deleted", True), ("r0002", "deleted", True)]
        out = await c.delete_runs("demo/vision", ["r0000"])
        assert [(o.run_id, o.status, o.ok) for o in out] == [("r0000", "unchanged", True)]  # already deleted
        out = await c.restore_runs("demo/vision", ["r0000", "r0003", "nope"])
        assert [o.status for o in out] == ["restored", "unchanged", "not_found"]
        assert fake.of("UndeleteRuns")[-1]["filters"] == '{"name":{"$in":["r0000","nope"]}}'
        out = await c.update_runs("demo/vision", ["r0003", "nope"], notes="n", add_tags=["x"], remove_tags=["t"])
        assert [o.status for o in out] == ["updated", "not_found"]
        assert fake.of("UpsertBucket")[0]["input"] == {"id": "id-r0003", "notes": "n", "tags": ["x"]}
        out = await c.update_runs("demo/vision", ["r0003", "r0001"], add_tags=["x"])  # tags only: modifyRuns
        assert [o.status for o in out] == ["unchanged", "updated"]
        assert fake.of("ModifyRuns") == [{"entity": "demo", "project": "vision", "ids": ["id-r0001"],
                                          "addTags": ["x"], "removeTags": []}]
        with pytest.raises(NotFoundError, match="did you mean demo/vision"):
            await c.update_runs("demo/visoin", ["r0003", "r0002"], notes="n")
        with pytest.raises(UsageError, match="nothing to update"):
            await c.update_runs("demo/vision", ["r0003"])
        with pytest.raises(UsageError, match="every deleted run"):
            await c.restore_runs("demo/vision", filters={})


async def test_transport_and_on_retry_are_exclusive():
    with pytest.raises(UsageError, match="on_retry"):
        Client(transport=FakeTransport(demo()), on_retry=lambda *a: None)
    assert Client(transport=FakeTransport(demo())).settings.api_key == ""  # no key needed, none invented
    assert READ.connect_attempts <= 3 and READ.connect_max_elapsed <= 3
