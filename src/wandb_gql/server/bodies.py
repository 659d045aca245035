"""Request bodies and connections under the server's limits: a body read up to a cap (counted
after decompression), a refusal that does not read the rest, and whether a client hung up."""

from __future__ import annotations

import socket

from aiohttp import web
from aiohttp.web_protocol import RequestPayloadError

from .limits import MB, LimitExceeded


async def read_body(request: web.Request, cap: int, option: str = "--max-body") -> bytes:
    """The request body, refused as soon as it passes `cap` bytes. aiohttp inflates a gzip or
    deflate body as it is read, so the cap counts inflated bytes and a bomb is never inflated
    past it; an uncompressed body that announces more is refused before any of it is read.
    `option` is the `wbgql server` option that sets `cap`, named in the refusal."""
    declared = request.content_length
    if declared is not None and declared > cap and not request.headers.get("Content-Encoding"):
        raise too_large(cap, option)
    chunks: list[bytes] = []
    size = 0
    while True:
        try:
            chunk = await request.content.readany()
        except RequestPayloadError as e:  # e.g. Content-Encoding: gzip over bytes that are not gzip
            reason = str(getattr(e.__cause__, "message", "") or e).strip().splitlines()[-1].strip()
            raise LimitExceeded("BAD_CONTENT_ENCODING", f"request body cannot be read ({reason}); send it "
                                "as its Content-Encoding header says, or without one") from None
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > cap:
            raise too_large(cap, option)
        chunks.append(chunk)


def too_large(cap: int, option: str) -> LimitExceeded:
    larger = f"{max(16, 2 * cap // MB)}MiB"  # 16MiB by default: room for `wandb verify`'s 10 MB post
    return LimitExceeded("BODY_TOO_LARGE", f"request body is larger than {cap:,} bytes (after decompression), "
                         f"the server's {option}; send less per request, or start the server with a larger "
                         f"limit (wbgql server {option} {larger})", status=413)


async def refuse_unread(request: web.Request, response: web.Response) -> web.StreamResponse:
    """Answer without reading the rest of the body. aiohttp would otherwise read (and inflate)
    the leftover for up to 10 s before reusing the connection, so a compressed leftover ends
    the connection once the answer is out."""
    if request.can_read_body and request.headers.get("Content-Encoding"):
        await response.prepare(request)
        await response.write_eof()
        request.protocol.force_close()
    return response


class ClientGone:
    """Whether a request's client hung up, asked of the socket itself: while the request runs,
    the event loop that would notice is busy running it. A peek that reads end-of-file means
    the client closed its side (HTTP clients never half-close while awaiting an answer)."""

    def __init__(self, request: web.Request) -> None:
        self._transport = request.transport
        self._sock: socket.socket | None = None

    def __call__(self) -> bool:
        transport = self._transport
        if transport is None or transport.is_closing():
            return True
        try:
            if self._sock is None:
                raw = transport.get_extra_info("socket")
                if raw is None:
                    return False
                self._sock = raw.dup()  # asyncio's own socket object does not offer recv
                self._sock.setblocking(False)
            return self._sock.recv(1, socket.MSG_PEEK) == b""
        except (BlockingIOError, InterruptedError):
            return False  # connected, nothing more sent: still waiting for us
        except OSError:
            return True

    def __enter__(self) -> "ClientGone":
        return self

    def __exit__(self, *_exc: object) -> None:
        if self._sock is not None:
            self._sock.close()
