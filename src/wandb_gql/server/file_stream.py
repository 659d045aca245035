"""W&B's file_stream body: checked field by field, then applied to a run.

Every field is typed and bounded before anything is stored, so that no request can leave a value
that later breaks a read (the server answers 400 for these, never 5xx: the SDK retries a 5xx and
hangs in finish()).
"""

from __future__ import annotations

import sqlite3
from typing import Any

from .store import BadInput, Store


# Line numbers and counts are GraphQL Int (32-bit) on the way out: a stored offset of 3e9 made
# every listing of the project fail ("Int cannot represent non 32-bit signed integer value").
_MAX_LINES = 2**31 - 1


def checked_file_stream(payload: dict[str, Any]) -> dict[str, Any]:
    """The body with every field typed and in range, or BadInput naming the first that is not."""
    files = payload.get("files") or {}
    if not isinstance(files, dict):
        raise BadInput('"files" must be an object of file name -> {"offset": n, "content": [lines]}')
    chunks: dict[str, tuple[int, list[Any]]] = {}
    for name, chunk in files.items():
        if not isinstance(chunk, dict):
            raise BadInput(f'{name}: expected {{"offset": n, "content": [lines]}}, got {type(chunk).__name__}')
        offset, content = chunk.get("offset") or 0, chunk.get("content") or []
        if not isinstance(offset, int) or isinstance(offset, bool):
            raise BadInput(f'{name}: "offset" must be an integer, got {offset!r:.40}')
        if not isinstance(content, list):
            raise BadInput(f'{name}: "content" must be a list of lines')
        if not 0 <= offset <= _MAX_LINES - len(content):
            raise BadInput(f'{name}: "offset" {offset} is out of range: offset + lines must stay within '
                           f"0..{_MAX_LINES}")
        if not all(isinstance(line, (str, dict)) for line in content):
            raise BadInput(f'{name}: every line of "content" must be a string')
        chunks[str(name)] = (offset, content)
    uploaded = payload.get("uploaded") or []
    if not isinstance(uploaded, list) or not all(isinstance(u, str) for u in uploaded):
        raise BadInput('"uploaded" must be a list of file names')
    exitcode = payload.get("exitcode")
    if exitcode is not None and (not isinstance(exitcode, int) or isinstance(exitcode, bool)
                                 or not -(2**31) <= exitcode < 2**31):
        raise BadInput(f'"exitcode" must be a 32-bit integer or null, got {exitcode!r:.40}')
    return {"files": chunks, "uploaded": uploaded, "exitcode": exitcode,
            "complete": bool(payload.get("complete")), "preempting": bool(payload.get("preempting"))}


def apply_file_stream(store: Store, run: sqlite3.Row, payload: dict[str, Any]) -> None:
    for name, (offset, content) in payload["files"].items():
        if name == "wandb-history.jsonl":
            store.append_history(run, offset, content)
        elif name == "wandb-events.jsonl":
            store.append_events(run, offset, content)
        elif name == "output.log":
            store.write_log(run, offset, content)
        elif name == "wandb-summary.json" and content:
            # The whole current summary, replacing the stored one.
            store.replace_summary(run["id"], content[-1])
    store.record_uploaded_files(run["id"], payload["uploaded"])
    if payload["complete"]:
        store.finish_run(run["id"], payload["exitcode"])
    else:
        store.heartbeat(run["id"], "preempting" if payload["preempting"] else "running")
