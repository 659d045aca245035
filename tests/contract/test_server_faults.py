"""Fault injection: what tests of the client's retries stand on."""

from __future__ import annotations

import http.client
import urllib.parse

import pytest


def test_scripted_faults_answer_in_order_then_serve(fresh_api):
    fresh_api.faults({"script": [429, 503], "retry_after": 0.5})
    first = fresh_api.gql("{ viewer { id } }")
    assert first.status == 429
    assert first.headers["Retry-After"] == "0.5"
    assert {"RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset"} <= set(first.headers)
    assert first.errors[0]["message"].startswith("rate limit")
    assert fresh_api.gql("{ viewer { id } }").status == 503
    assert fresh_api.gql("{ viewer { id } }").status == 200
    counts = fresh_api.post("/_local/faults", None, raw=b"").body  # empty POST resets, shows counts
    assert counts["counts"] == {"requests": 0, "429": 0, "5xx": 0, "drop": 0}


def test_rate_limit_window(fresh_api):
    fresh_api.faults({"rate_limit": 2, "window": 30})
    statuses = [fresh_api.gql("{ viewer { id } }").status for _ in range(4)]
    assert statuses == [200, 200, 429, 429]
    state = fresh_api.post("/_local/faults", None, raw=b'{"rate_limit": 2, "window": 30}').body
    assert state["rate_limit"] == 2


def test_dropped_connection(fresh_api):
    fresh_api.faults({"script": ["drop"]})
    url = urllib.parse.urlparse(fresh_api.base_url)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=5)
    conn.request("POST", "/graphql", body=b'{"query": "{ viewer { id } }"}',
                  headers={"Content-Type": "application/json"})
    with pytest.raises((http.client.RemoteDisconnected, ConnectionError)):
        conn.getresponse()
    assert fresh_api.gql("{ viewer { id } }").status == 200


@pytest.mark.parametrize("spec,phrase", [({"nope": 1}, "unknown fault"), ({"error_rate": 2}, "between 0 and 1"),
                                         ({"script": [200]}, "script entries")])
def test_bad_fault_settings_are_refused(fresh_api, spec, phrase):
    reply = fresh_api.post("/_local/faults", spec)
    assert reply.status == 400 and phrase in reply.errors[0]["message"]


def test_faults_need_auth(fresh_api):
    assert fresh_api.post("/_local/faults", {"script": [500]}, auth=None).status == 401


def test_file_stream_is_never_faulted(fresh_api):
    fresh_api.ok('mutation { upsertBucket(input: {modelName: "p", name: "r"}) { inserted } }')
    fresh_api.faults({"error_rate": 1.0})
    assert fresh_api.post("/files/local/p/r/file_stream", {}).status == 200
