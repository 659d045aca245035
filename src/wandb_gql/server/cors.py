"""CORS on the storage URLs, as a W&B bucket is configured for its web app (and as `wandb verify`
checks): a browser page on any origin may GET, HEAD and PUT them.

A storage URL is a bearer credential in itself (tokens.py) and never reads cookies, so any origin
is allowed ("*", which also forbids credentialed requests). A preflight is answered the same for
every URL, valid token or not, without looking the token up: it reveals nothing about what
exists, and the real request that follows is checked as any other. Only /storage/ answers
preflights; /graphql and file_stream keep their behaviour.
"""

from __future__ import annotations

from aiohttp import web

PREFIX = "/storage/"
METHODS = ("GET", "HEAD", "PUT")
# What uploads and downloads send beyond the CORS-safelisted headers: the upload headers W&B's
# presigned URLs ask for, a gzip-encoded body, a ranged (resumed) download.
HEADERS = ("Content-Type", "Content-MD5", "Content-Encoding", "Range")
# Multipart uploads need each part's ETag back; downloads may want their length.
EXPOSED = ("ETag", "Content-Length")
MAX_AGE = "3600"  # seconds a browser may reuse a preflight's answer


def _allowed(response: web.StreamResponse) -> None:
    response.headers["Access-Control-Allow-Origin"] = "*"
    response.headers["Access-Control-Expose-Headers"] = ", ".join(EXPOSED)
    response.headers["Vary"] = "Origin"


async def preflight(request: web.Request) -> web.Response:
    """OPTIONS on a storage URL."""
    method = request.headers.get("Access-Control-Request-Method", "").strip().upper()
    if "Origin" not in request.headers or not method:
        return web.json_response({"error": "not a CORS preflight: send Origin and Access-Control-Request-Method "
                                           f"(storage URLs allow {', '.join(METHODS)})"}, status=400)
    if method not in METHODS:
        return web.json_response({"error": f"CORS: storage URLs allow {', '.join(METHODS)}, not {method}"},
                                 status=403)
    response = web.Response(status=204)
    _allowed(response)
    response.headers["Access-Control-Allow-Methods"] = ", ".join(METHODS)
    response.headers["Access-Control-Allow-Headers"] = ", ".join(HEADERS)
    response.headers["Access-Control-Max-Age"] = MAX_AGE
    return response


async def on_response_prepare(request: web.Request, response: web.StreamResponse) -> None:
    """The real cross-origin request's answer carries the origin grant too, refusals included (so
    a page can read why), but the grant changes nothing about who may read or write."""
    if request.path.startswith(PREFIX) and request.method != "OPTIONS" and "Origin" in request.headers:
        _allowed(response)
