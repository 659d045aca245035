"""The real `wandb` SDK with a second user's key: into a team it belongs to, and into an entity
it does not (the demo seed: team `demo` = local, alice, bob; carol outside it)."""

from __future__ import annotations

import time
from typing import Any, Iterator

import pytest

from wandb_gql.server.store import new_api_key

pytestmark = pytest.mark.compat


def _key_for(server: Any, user: str) -> str:
    store = server.server.store
    key = new_api_key()
    with store.writing():
        store.add_api_key(key, f"sdk-{user}", user_id=store.user_row(user)["id"])
    return key


@pytest.fixture
def as_user(wb, server, monkeypatch) -> Iterator[Any]:
    """Switch the SDK to a user's key (a fresh SDK session); the session's key comes back after."""

    def switch(user: str) -> Any:
        wb.teardown()
        monkeypatch.setenv("WANDB_API_KEY", _key_for(server, user))
        return wb

    try:
        yield switch
    finally:
        wb.teardown()
        monkeypatch.undo()


def test_member_logs_into_the_team_project(as_user, server, api, project_name):
    # A team of this test's own (local and alice, as in demo): demo's projects stay as seeded for
    # the tests that list them.
    team = f"team-{project_name}"
    store = server.server.store
    with store.writing():
        store.ensure_team(team)
        store.add_member(team, store.user_row("alice")["id"])
        store.add_member(team, store.default_user.id)  # the session key reads it back below
    wb = as_user("alice")
    run = wb.init(entity=team, project=project_name, config={"lr": 0.1})
    run.log({"loss": 1.0})
    run.log({"loss": 0.5})
    run_id = run.id
    run.finish()
    data = api.ok('query($e: String!, $p: String!, $r: String!) { project(name: $p, entityName: $e) { run(name: $r) '
                  '{ user { username } historyLineCount state } } }', {"e": team, "p": project_name, "r": run_id})
    assert data["project"]["run"] == {"user": {"username": "alice"}, "historyLineCount": 2, "state": "finished"}
    assert [r.id for r in wb.Api().runs(f"{team}/{project_name}")] == [run_id]


def test_outsider_cannot_init_into_another_entity(as_user, api, project_name):
    wb = as_user("carol")
    start = time.monotonic()
    with pytest.raises(Exception, match="entity 'demo' not found"):
        wb.init(entity="demo", project=project_name)
    assert time.monotonic() - start < 30
    assert wb.run is None
    assert api.ok('query($p: String!) { project(name: $p, entityName: "demo") { id } }', {"p": project_name})["project"] is None


def test_outsider_public_api_does_not_find_the_team(as_user):
    wb = as_user("carol")
    with pytest.raises(Exception, match="(?i)could not find|not found"):
        list(wb.Api().runs("demo/vision", per_page=10))
    assert [r.id for r in wb.Api().runs("carol/scratch")]  # her own project reads fine
