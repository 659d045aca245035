"""The one paginator for GraphQL connections (`edges { node { id ... } } pageInfo { endCursor
hasNextPage }`), used by every listing.

- Pipelined: the next page is requested before the current one is handed out, and the loop is
  given a turn every few nodes, so the server works on page n+1 while the caller reads page n.
- Nodes are deduplicated by id against the previous page (a server paging over ties may repeat
  one at a page boundary); only two pages of ids are kept, so a listing's memory stays flat.
- A cursor that did not move, or a page of nothing new, is refused with PaginationError: asking
  for the same page again would loop forever.
- `limit` bounds what is handed out, and the last request asks only for what is still needed.

`merge_sorted` merges streams that are each sorted into one (artifact versions of many
collections, run listings batched by id), holding one item per stream.
"""

from __future__ import annotations

import asyncio
import heapq
from typing import Any, AsyncIterator, Awaitable, Callable, Mapping, Sequence, TypeVar

from ..errors import PaginationError

T = TypeVar("T")

# How many nodes are handed out between two turns of the event loop. Consumers usually never
# await anything real, so without these turns the prefetched request would not even be sent.
BATCH = 50

Fetch = Callable[[str | None, int], Awaitable[Mapping[str, Any]]]
"""fetch(after, first) -> the response data of one page."""
Connection = Callable[[Mapping[str, Any]], Mapping[str, Any]]
"""connection(data) -> the connection object in it (raises, e.g. NotFoundError, when its parent is null)."""


def _retrieve(task: asyncio.Future[Any]) -> None:
    # A prefetch abandoned because the caller stopped early may have failed meanwhile; reading
    # its exception keeps asyncio from logging "exception was never retrieved".
    if not task.cancelled():
        task.exception()


async def paginate(fetch: Fetch, connection: Connection, *, per_page: int, limit: int | None = None,
                   what: str = "page") -> AsyncIterator[list[dict[str, Any]]]:
    """Yield the new nodes of each page, in order, in lists of at most BATCH."""
    if limit is not None and limit <= 0:
        return
    handed = 0
    seen: set[Any] = set()
    after: str | None = None

    def request(cursor: str | None) -> asyncio.Future[Mapping[str, Any]]:
        first = per_page if limit is None else max(1, min(per_page, limit - handed))
        return asyncio.ensure_future(fetch(cursor, first))

    pending: asyncio.Future[Mapping[str, Any]] | None = request(None)
    try:
        while pending is not None:
            page = connection(await pending)
            pending = None
            edges = page["edges"]
            fresh = []
            current: set[Any] = set()
            for edge in edges:
                node = edge["node"]
                key = node["id"]
                if key not in seen and key not in current:
                    current.add(key)
                    fresh.append(node)
            seen = current
            if limit is not None:
                fresh = fresh[:limit - handed]
            handed += len(fresh)
            info = page["pageInfo"]
            if info["hasNextPage"] and (limit is None or handed < limit):
                cursor = info.get("endCursor")
                if not edges or cursor is None or cursor == after:
                    raise PaginationError(f"{what}: the server's cursor did not move ({cursor!r} after {after!r});"
                                          " stopping instead of asking for the same page again")
                if not fresh:
                    raise PaginationError(f"{what}: the server sent a page of nodes already seen;"
                                          " stopping instead of looping")
                after = cursor
                pending = request(after)
            for start in range(0, len(fresh), BATCH):
                if pending is not None:
                    await asyncio.sleep(0)
                yield fresh[start:start + BATCH]
    finally:
        if pending is not None:
            pending.add_done_callback(_retrieve)
            pending.cancel()


async def merge_sorted(streams: Sequence[AsyncIterator[T]], key: Callable[[T], Any],
                       reverse: bool = False) -> AsyncIterator[T]:
    """One stream out of streams that are each already sorted by `key` (descending when
    `reverse`): a k-way merge holding one item per stream (plus whatever page each stream
    buffers). The first item of every stream is asked for at once; ties keep stream order.
    Every stream is closed when the merge ends, early or not."""
    heads = await asyncio.gather(*(anext(s, _DONE) for s in streams))
    heap = [_Head(key(item), i, item, reverse) for i, item in enumerate(heads) if item is not _DONE]
    heapq.heapify(heap)
    try:
        while heap:
            head = heap[0]
            yield head.item
            following = await anext(streams[head.index], _DONE)
            if following is _DONE:
                heapq.heappop(heap)
            else:
                heapq.heapreplace(heap, _Head(key(following), head.index, following, reverse))
    finally:
        for stream in streams:
            closing = getattr(stream, "aclose", None)
            if closing is not None:
                await closing()


_DONE: Any = object()


class _Head:
    """A stream's current item in the merge heap (heapq is a min-heap: `reverse` flips it)."""

    __slots__ = ("key", "index", "item", "reverse")

    def __init__(self, key: Any, index: int, item: Any, reverse: bool) -> None:
        self.key, self.index, self.item, self.reverse = key, index, item, reverse

    def __lt__(self, other: "_Head") -> bool:
        if self.key == other.key:
            return self.index < other.index
        return other.key < self.key if self.reverse else self.key < other.key
