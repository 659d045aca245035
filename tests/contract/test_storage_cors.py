"""CORS on storage URLs (`wandb verify`'s "CORs configuration of the bucket"): preflights answered
on /storage/ only, alike for every token, and never a way around the token of the real request."""

from __future__ import annotations

import urllib.error
import urllib.request
import uuid
from typing import Any

import pytest

from wandb_gql.server import tokens

ORIGIN = "http://127.0.0.1:3000"
RUN_FILES = """mutation($p: String!, $f: [String!]!) { createRunFiles(input: {entityName: "local", projectName: $p,
  runName: "cors", files: $f}) { files { name uploadUrl } } }"""


def call(method: str, url: str, headers: dict[str, str], data: bytes | None = None) -> tuple[int, dict[str, str], bytes]:
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def preflight(url: str, method: str = "PUT", **extra: str) -> tuple[int, dict[str, str], bytes]:
    return call("OPTIONS", url, {"Origin": ORIGIN, "Access-Control-Request-Method": method, **extra})


def cors_part(reply: tuple[int, dict[str, str], bytes]) -> tuple[Any, ...]:
    status, headers, body = reply
    return status, body, sorted((k, v) for k, v in headers.items() if k.lower().startswith("access-control"))


@pytest.fixture
def urls(api, server) -> dict[str, str]:
    """A run file uploaded, one announced but never uploaded, and tokens that open nothing."""
    project = f"cors-{uuid.uuid4().hex[:8]}"
    api.ok("""mutation($p: String) { upsertBucket(input: {entityName: "local", modelName: $p, name: "cors"}) {
      bucket { id } } }""", {"p": project})
    files = api.ok(RUN_FILES, {"p": project, "f": ["done.txt", "never.txt"]})["createRunFiles"]["files"]
    by_name = {f["name"]: f["uploadUrl"] for f in files}
    assert call("PUT", by_name["done.txt"], {}, b"bytes")[0] == 200
    secret = server.server.store.secret
    return {"uploaded": by_name["done.txt"], "empty": by_name["never.txt"],
            "forged": f"{server.base_url}/storage/{tokens.mint('not-the-secret', tokens.RUN_FILE, 1, '1')}",
            "expired": f"{server.base_url}/storage/{tokens.mint(secret, tokens.RUN_FILE, 1, '1', ttl=-1)}",
            "garbage": f"{server.base_url}/storage/not-a-token"}


def test_preflight_allows_get_put_head_and_the_upload_headers(urls):
    for method in ("GET", "PUT", "HEAD"):
        status, headers, _ = preflight(urls["uploaded"], method,
                                       **{"Access-Control-Request-Headers": "content-type,content-md5"})
        assert status == 204 and headers["Access-Control-Allow-Origin"] == "*"
        assert {"GET", "PUT", "HEAD"} <= set(headers["Access-Control-Allow-Methods"].split(", "))
        assert {"content-type", "content-md5"} <= {h.lower() for h in headers["Access-Control-Allow-Headers"].split(", ")}
        assert "ETag" in headers["Access-Control-Expose-Headers"]  # multipart parts answer with their ETag
        assert "Access-Control-Allow-Credentials" not in headers  # "*" and no cookies: the token is the credential


def test_preflight_reveals_nothing_about_the_url(urls):
    answers = {name: cors_part(preflight(url)) for name, url in urls.items()}
    assert len(set(map(repr, answers.values()))) == 1, answers


def test_preflight_opens_nothing_for_the_real_request(urls):
    for name in ("forged", "expired", "garbage"):
        assert preflight(urls[name])[0] == 204
        for method, data in (("GET", None), ("PUT", b"x")):
            status, headers, body = call(method, urls[name], {"Origin": ORIGIN}, data)
            assert status in (403, 404), (name, method, status)
            assert b"bytes" not in body
    status, headers, body = call("GET", urls["uploaded"], {"Origin": ORIGIN})
    assert (status, body) == (200, b"bytes") and headers["Access-Control-Allow-Origin"] == "*"
    status, headers, _ = call("HEAD", urls["uploaded"], {"Origin": ORIGIN})
    assert status == 200 and headers["Access-Control-Allow-Origin"] == "*"
    assert "Access-Control-Allow-Origin" not in call("GET", urls["uploaded"], {})[1]  # same-origin: no grant


def test_other_methods_and_non_preflights_are_refused(urls):
    status, headers, body = preflight(urls["uploaded"], "DELETE")
    assert status == 403 and "Access-Control-Allow-Origin" not in headers and b"GET, HEAD, PUT" in body
    status, headers, body = call("OPTIONS", urls["uploaded"], {})
    assert status == 400 and "Access-Control-Allow-Origin" not in headers and b"Origin" in body
    status, headers, _ = call("OPTIONS", urls["uploaded"], {"Origin": ORIGIN})
    assert status == 400 and "Access-Control-Allow-Origin" not in headers


def test_graphql_and_file_stream_answer_no_preflight(server):
    for path in ("/graphql", "/files/local/p/r/file_stream"):
        status, headers, _ = preflight(server.base_url + path, "POST")
        assert status == 401 and "Access-Control-Allow-Origin" not in headers, path
        status, headers, _ = call("POST", server.base_url + path, {"Origin": ORIGIN}, b"{}")
        assert "Access-Control-Allow-Origin" not in headers, path
