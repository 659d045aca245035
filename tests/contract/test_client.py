"""The async client against the real local server: projection, pagination, retries under
injected faults, auth, per-id outcomes, the key kept out of every message and log."""

from __future__ import annotations

import asyncio
import logging

import pytest

from tests.conftest import Caller
from wandb_gql import WRITE, AuthError, Client, NotFoundError, ServerError, SyncClient, UsageError
from wandb_gql.errors import FilterError


def client(server, **kw) -> Client:
    return Client(server.base_url, server.api_key, **kw)


async def test_projection_asks_only_for_requested_keys(server, recorder):
    async with Client(recorder.base_url, server.api_key) as c:
        bare = [r async for r in c.runs("demo/rl")]
        some = [r async for r in c.runs("demo/rl", summary_keys=["loss", "val/acc"], config_keys=["lr"])]
        full = [r async for r in c.runs("demo/rl", summary_keys=True, config_keys=True)]
    bare_vars, some_vars, full_vars = (r["variables"] for r in recorder.requests)
    assert bare_vars["withConfig"] is False and bare_vars["withSummary"] is False
    assert some_vars["summaryKeys"] == ["loss", "val/acc"] and some_vars["configKeys"] == ["lr"]
    assert full_vars["withSummary"] is True and full_vars["summaryKeys"] is None
    assert recorder.requests[0]["query"].lstrip().startswith("# One page of runs")  # sent as loaded text
    assert bare[0].config_json is None and bare[0].summary == {}
    assert set(some[0].summary) == {"loss", "val/acc"} and set(some[0].config) == {"lr"}
    assert "optimizer" in full[0].config and "best" in full[0].summary
    bare_size, some_size, full_size = recorder.response_bytes
    assert bare_size < some_size < full_size
    assert len(bare) == len(some) == len(full) == 200


async def test_pagination_with_ties_matches_the_servers_order(server, api):
    async with client(server) as c:
        runs = [r async for r in c.runs("demo/vision", order="-config.seed.value", per_page=37,
                                        config_keys=["seed"])]
    assert len(runs) == 1200 and len({r.id for r in runs}) == 1200
    seeds = [r.config["seed"] for r in runs]
    assert seeds == sorted(seeds, reverse=True)
    top = api.ok('{ project(name: "vision", entityName: "demo") { runs(order: "-config.seed.value", first: 1000)'
                 ' { edges { node { name } } } } }')
    assert [r.name for r in runs[:1000]] == [e["node"]["name"] for e in top["project"]["runs"]["edges"]]


async def test_limit_filters_and_where_agree(server):
    async with client(server) as c:
        limited = [r async for r in c.runs("demo/vision", limit=7, per_page=3)]
        assert len(limited) == 7
        by_where = [r.name async for r in c.runs("demo/vision", where="state in (crashed, failed) and summary.loss < 1")]
        by_json = [r.name async for r in c.runs("demo/vision", filters={"$and": [
            {"state": {"$in": ["crashed", "failed"]}}, {"summary_metrics.loss": {"$lt": 1}}]})]
        assert by_where == by_json and 0 < len(by_where) < 1200
        assert await c.count_runs("demo/vision", where="state in (crashed, failed) and summary.loss < 1") == len(by_where)
        with pytest.raises(UsageError):
            [r async for r in c.runs("demo/vision", filters={}, where="state = x")]


async def test_bad_filter_is_refused_before_any_request(server, recorder):
    async with Client(recorder.base_url, server.api_key) as c:
        with pytest.raises(FilterError):
            await c.count_runs("demo/vision", where="summary.loss >= ")
        with pytest.raises(FilterError):
            await c.count_runs("demo/vision", filters={"state": {"$like": "x"}})
        with pytest.raises(UsageError):
            await c.run("demo/vision/run/extra")
        with pytest.raises(UsageError):
            [r async for r in c.runs("demo/vision", per_page=5000)]
    assert recorder.requests == []


async def test_not_found_errors(server):
    async with client(server) as c:
        with pytest.raises(NotFoundError, match="project demo/nope not found"):
            await c.count_runs("demo/nope")
        with pytest.raises(NotFoundError, match="did you mean demo/vision") as info:
            await c.run("demo/visoin/x")
        assert info.value.status == 200
        with pytest.raises(NotFoundError, match="run demo/vision/zzz not found"):
            await c.run("demo/vision/zzz")


async def test_retries_survive_429_5xx_and_drops_with_bounded_attempts(fresh_server):
    api = Caller(fresh_server)
    for i in range(30):
        api.ok('mutation U($n: String) { upsertBucket(input: {modelName: "p", name: $n}) { inserted } }', {"n": f"r{i:02d}"})
    api.faults({"script": [429, 503, "drop", 502, 429], "retry_after": 0.05})
    async with client(fresh_server) as c:
        names = [r.name async for r in c.runs("local/p", per_page=10)]
        assert names == [f"r{i:02d}" for i in range(30)]
        # 3 pages (plus the empty 4th is not needed: hasNextPage is exact) + 5 injected failures
        assert c.transport.attempts == 3 + 5
    assert api.faults({})["counts"] == {"requests": 0, "429": 0, "5xx": 0, "drop": 0}


async def test_retries_are_bounded_and_the_last_error_is_raised(fresh_server):
    Caller(fresh_server).faults({"script": [503] * 20})
    async with client(fresh_server) as c:
        with pytest.raises(ServerError) as info:
            await c.count_runs("local/p")
        assert info.value.status == 503
        assert c.transport.attempts == 6  # the READ policy's bound


async def test_write_policy_retries_only_what_was_not_carried_out(fresh_server):
    api = Caller(fresh_server)
    upsert = {"input": {"modelName": "p", "entityName": "local", "name": "w"}}
    api.faults({"script": [429, 429], "retry_after": 0.01})  # a 429 is answered before any work
    async with client(fresh_server) as c:
        await c.transport.execute("UpsertBucket", upsert, WRITE)
        assert c.transport.attempts == 3
    api.faults({"script": [503, 503]})  # a plain 5xx may have been carried out: reported, not repeated
    async with client(fresh_server) as c:
        with pytest.raises(ServerError):
            await c.transport.execute("UpsertBucket", upsert, WRITE)
        assert c.transport.attempts == 1
    api.faults({})


async def test_rate_limit_adapts_concurrency_and_every_call_succeeds(fresh_server):
    api = Caller(fresh_server)
    api.ok('mutation { upsertBucket(input: {modelName: "p", name: "one"}) { inserted } }')
    api.faults({"rate_limit": 4, "window": 0.25})
    async with client(fresh_server, concurrency=8) as c:
        counts = await asyncio.gather(*(c.count_runs("local/p") for _ in range(40)))
        assert counts == [1] * 40
        assert c.transport.limit.limit < 8  # backed off after 429s
        assert 40 < c.transport.attempts <= 40 * 6
        api.faults({})
        await asyncio.gather(*(c.count_runs("local/p") for _ in range(120)))
        assert c.transport.limit.limit == 8  # and recovered once they stopped


async def test_401_is_not_retried_and_hides_the_key(server, caplog):
    bad = "local-" + "k" * 44
    caplog.set_level(logging.DEBUG, logger="wandb_gql")
    async with Client(server.base_url, bad) as c:
        with pytest.raises(AuthError) as info:
            await c.count_runs("demo/vision")
        assert c.transport.attempts == 1
    assert info.value.status == 401 and info.value.exit_code == 4
    assert bad not in str(info.value) and bad not in caplog.text


async def test_the_key_never_appears_in_logs_or_errors(server, caplog):
    caplog.set_level(logging.DEBUG)
    Caller(server).faults({"script": [429, 503], "retry_after": 0.01})
    async with client(server) as c:
        [r async for r in c.runs("demo/rl", summary_keys=["loss"])]
        with pytest.raises(NotFoundError) as info:
            await c.run("demo/vision/missing")
        assert server.api_key not in repr(c.settings)
    assert "retry" in caplog.text  # the retries were logged ...
    assert server.api_key not in caplog.text and server.api_key not in str(info.value)  # ... without the key


async def test_update_delete_restore_report_per_id_outcomes(fresh_server, recorder):
    api = Caller(fresh_server)
    for name in ("a", "b", "c"):
        api.ok('mutation U($n: String) { upsertBucket(input: {modelName: "p", name: $n, tags: ["t"],'
               ' config: "{\\"lr\\": {\\"value\\": 1}}"}) { inserted } }', {"n": name})
    async with client(fresh_server) as c:
        out = await c.update_runs("local/p", ["a", "zz"], notes="n", add_tags=["new"], remove_tags=["t"],
                                  config={"bs": 2}, summary={"acc": 0.5})
        assert [(o.run_id, o.status) for o in out] == [("a", "updated"), ("zz", "not_found")]
        a = await c.run("local/p/a")
        assert a.notes == "n" and a.tags == ["new"] and a.config == {"lr": 1, "bs": 2} and a.summary == {"acc": 0.5}
        b = await c.run("local/p/b")
        assert b.notes is None and b.tags == ["t"]  # untouched
        with pytest.raises(UsageError):
            await c.update_runs("local/p", ["a"])
        out = await c.delete_runs("local/p", ["a", "b", "missing"])
        assert [o.status for o in out] == ["deleted", "deleted", "not_found"]
        assert await c.count_runs("local/p") == 1
        out = await c.restore_runs("local/p", ["a", "c", "missing"])
        assert [o.status for o in out] == ["restored", "unchanged", "not_found"]
        assert await c.count_runs("local/p") == 2


async def test_one_failed_delete_does_not_stop_the_others(fresh_server, monkeypatch):
    from tests.conftest import Recorder
    from wandb_gql.client import runs as runs_module

    monkeypatch.setattr(runs_module, "_BULK_BATCH", 1)  # one deleteRuns per run, so one can fail alone
    api = Caller(fresh_server)
    for name in ("a", "b", "c"):
        api.ok('mutation U($n: String) { upsertBucket(input: {modelName: "p", name: $n}) { inserted } }', {"n": name})
    proxy = Recorder(fresh_server.base_url)
    proxy.fail_when = lambda body: 400 if '"b"' in str((body.get("variables") or {}).get("filters")) and \
        body.get("operationName") == "DeleteRuns" else None
    seen: list = []
    async with Client(proxy.base_url, fresh_server.api_key) as c:
        out = await c.delete_runs("local/p", ["a", "b", "c"], on_outcome=seen.append)
        assert sorted(seen, key=lambda o: o.run_id) == out  # each outcome handed over as it happened
        restored: list = []
        back = await c.restore_runs("local/p", ["a", "nope"], on_outcome=restored.append)
        # handed over as each completes (any order); returned in the order asked
        assert sorted(restored, key=lambda o: o.run_id) == back and [o.status for o in back] == ["restored", "not_found"]
    assert [(o.run_id, o.status) for o in out] == [("a", "deleted"), ("b", "failed"), ("c", "deleted")]
    assert "injected by test proxy" in out[1].error
    assert proxy.ops().count("DeleteRuns") == 3  # 400 is not retried


def test_sync_facade_works_inside_a_running_event_loop(server):
    async def notebook_cell() -> tuple[int, int]:
        # As in Jupyter: a loop is already running in this thread.
        with SyncClient(server.base_url, server.api_key) as c:
            return len(list(c.runs("demo/rl", summary_keys=["loss"]))), c.count_runs("demo/rl", where="state = finished")

    listed, finished = asyncio.run(notebook_cell())
    assert listed == 200 and 0 < finished < 200
    with SyncClient(server.base_url, server.api_key) as c:
        assert c.run("demo/rl/rl000001").name == "rl000001"


async def test_nested_config_keys_compile_to_wandbs_stored_path(server):
    async with client(server) as c:
        by_where = await c.count_runs("demo/vision", where="config.optimizer.name = adam")
        by_json = await c.count_runs("demo/vision", filters={"config.optimizer.value.name": "adam"})
        everything = await c.count_runs("demo/vision")
    assert 0 < by_where == by_json < everything


async def test_graphql_errors_keep_their_message_and_partial_data(server):
    from wandb_gql import GraphQLResponseError

    async with client(server) as c:
        with pytest.raises(GraphQLResponseError) as info:
            await c.count_runs("demo/vision", filters={"summary_metrics": {"$lt": 1}})  # no key: refused
    assert "summary_metrics" in str(info.value) and str(info.value).startswith("ProjectRunCount: invalid filters")
    assert info.value.data == {"project": None} and info.value.errors[0]["path"] == ["project", "runCount"]


async def test_fields_leave_out_what_is_not_needed(server, recorder):
    async with Client(recorder.base_url, server.api_key) as c:
        full = [r async for r in c.runs("demo/rl")]
        slim = [r async for r in c.runs("demo/rl", fields=["state", "tags"])]
        ids = [r async for r in c.runs("demo/rl", fields=())]
        with pytest.raises(UsageError, match="unknown run field"):
            [r async for r in c.runs("demo/rl", fields=["colour"])]
    assert len(recorder.requests) == 3  # the bad field was refused before sending
    flags = recorder.requests[1]["variables"]
    assert flags["withState"] and flags["withTags"] and not flags["withUser"] and not flags["withDisplayName"]
    assert not any(v for k, v in recorder.requests[2]["variables"].items() if k.startswith("with"))
    assert recorder.response_bytes[0] > recorder.response_bytes[1] > recorder.response_bytes[2]
    assert [r.name for r in full] == [r.name for r in slim] == [r.name for r in ids]
    assert set(slim[0].to_dict()) == {"id", "name", "state", "tags", "path"}
    assert set(ids[0].to_dict()) == {"id", "name", "path"} and ids[0].state is None
    assert full[0].to_dict()["user"] and full[0].state


async def test_restore_by_filter(fresh_server):
    api = Caller(fresh_server)
    for name, tag in (("a", "x"), ("b", "x"), ("c", "y")):
        api.ok('mutation U($n: String, $t: [String]) { upsertBucket(input: {modelName: "p", name: $n, tags: $t})'
               ' { inserted } }', {"n": name, "t": [tag]})
    async with client(fresh_server) as c:
        await c.delete_runs("local/p", ["a", "b", "c"])
        with pytest.raises(UsageError, match="every deleted run"):
            await c.restore_runs("local/p", filters={})
        with pytest.raises(UsageError, match="not both"):
            await c.restore_runs("local/p", ["a"], where="tags has x")
        out = await c.restore_runs("local/p", where="tags has x")
        assert [(o.run_id, o.status) for o in out] == [("a", "restored"), ("b", "restored")]
        assert await c.count_runs("local/p") == 2
        out = await c.restore_runs("local/p", filters={}, every=True)
        assert [(o.run_id, o.status) for o in out] == [("c", "restored")]


def test_sync_runs_stream_and_close_when_the_caller_stops_early(server, recorder):
    with SyncClient(recorder.base_url, server.api_key) as c:
        stream = c.runs("demo/vision", per_page=100)
        first = [next(stream) for _ in range(3)]
        assert len(recorder.requests) <= 2  # the first page (and maybe the prefetched next), not all 12
        stream.close()
        assert [r.name for r in first] == [r.name for r in c.runs("demo/vision", limit=3)]
        assert sum(1 for _ in c.run_ids("demo/rl")) == 200


async def test_viewer_projects_and_paths(server):
    async with Client(server.base_url, server.api_key) as c:
        me = await c.viewer()
        assert me.username and me.entity and isinstance(me.teams, list)
        projects = {p.name: p async for p in c.projects("demo")}
        assert {"vision", "rl"} <= set(projects)
        assert projects["rl"].run_count == 200 and projects["rl"].entity == "demo"
        assert projects["rl"].last_active and projects["rl"].created_at
        run = await c.run("demo/rl/rl000001")
        for form in ("demo/rl/runs/rl000001", "https://wandb.ai/demo/rl/runs/rl000001?nw=abc",
                     "https://wandb.ai/demo/rl/runs/rl000001/overview/"):
            assert (await c.run(form)).id == run.id
        n = await c.count_runs("demo/rl")
        for form in ("https://wandb.ai/demo/rl", "https://wandb.ai/demo/rl/workspace?nw=x", "https://wandb.ai/demo/rl/"):
            assert await c.count_runs(form) == n
        for bad in ("demo/", "a/b/c/d/e", ""):
            with pytest.raises(UsageError, match="ENTITY/PROJECT"):
                await c.count_runs(bad)


async def test_default_entity_is_the_viewers(server):
    async with Client(server.base_url, server.api_key) as c:
        entity = (await c.viewer()).entity
    async with Client(server.base_url, server.api_key) as c:
        assert await c.project_path("someproject") == (entity, "someproject")


async def test_an_unreachable_server_fails_fast_naming_the_url():
    import socket
    import time

    from wandb_gql import ConnectError

    with socket.socket() as s:  # a port with nothing listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    retries = []
    started = time.monotonic()
    async with Client(url, "local-" + "s" * 44, on_retry=lambda op, e, d: retries.append((op, d))) as c:
        with pytest.raises(ConnectError) as info:
            await c.count_runs("demo/rl")
    assert time.monotonic() - started < 3.5
    assert len(retries) == 2 and retries[0][0] == "ProjectRunCount"  # 3 attempts, told before each wait
    assert url in str(info.value) and "connection refused" in str(info.value)
    assert "base-url" in info.value.hint and "s" * 44 not in str(info.value)


async def test_on_retry_is_told_about_rate_limits(fresh_server):
    Caller(fresh_server).faults({"script": [429], "retry_after": 0.05})
    seen = []
    async with Client(fresh_server.base_url, fresh_server.api_key,
                      on_retry=lambda op, e, d: seen.append((op, type(e).__name__, d))) as c:
        with pytest.raises(NotFoundError):
            await c.count_runs("local/nothing-here")
    assert seen and seen[0][:2] == ("ProjectRunCount", "RateLimitError") and seen[0][2] >= 0.05


@pytest.mark.compat
def test_after_wandb_login_host_the_client_talks_to_that_host(server, tmp_path):
    """The real `wandb login --host URL KEY` writes the settings file and netrc; Settings follow."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    from wandb_gql import Settings

    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_") and k != "NETRC"}
    env.update(HOME=str(tmp_path), WANDB_CONFIG_DIR=str(tmp_path / "config"), NETRC=str(tmp_path / "netrc"),
               WANDB_SILENT="true", WANDB_ERROR_REPORTING="false", WANDB_DIR=str(tmp_path))
    wandb = Path(sys.executable).parent / "wandb"
    done = subprocess.run([str(wandb), "login", "--host", server.base_url, "--relogin", server.api_key],
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert server.api_key not in done.stdout + done.stderr
    with pytest.MonkeyPatch.context() as mp:
        for k in [k for k in os.environ if k.startswith("WANDB_")]:
            mp.delenv(k)
        for k in ("HOME", "WANDB_CONFIG_DIR", "NETRC"):
            mp.setenv(k, env[k])
        settings = Settings.resolve()
        assert (settings.base_url, settings.base_url_source, settings.key_source) == (
            server.base_url, "settings", "netrc")
        with SyncClient(settings=settings) as c:
            assert c.viewer().username
