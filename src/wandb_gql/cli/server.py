"""`wbgql server`: the local W&B-compatible server in the foreground."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Annotated, Any, List, Optional

import typer

from ._common import EXIT_FAILURE, fail

_KEY = re.compile(r"^(?:[\w]+-)?[\w-]{40,}$")
_SQLITE_MAGIC = b"SQLite format 3\x00"


def _check_db(path: Path) -> None:
    """A --db that cannot be the server's database, said in one line before anything starts."""
    if path.is_dir():
        fail(f"--db {path}: is a directory; give a file path, e.g. {path / 'server.db'}")
    if path.exists():
        try:
            with open(path, "rb") as f:
                head = f.read(len(_SQLITE_MAGIC))
        except OSError as e:
            fail(f"--db {path}: cannot read it: {e.strerror or e}")
        if head and head != _SQLITE_MAGIC:
            fail(f"--db {path}: not a SQLite database; give a new path or the server's own database")
    elif not path.parent.exists() and path.parent.parent.is_file():
        fail(f"--db {path}: {path.parent.parent} is a file, not a directory")


_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(b|kb|kib|mb|mib|gb|gib)?\s*$", re.IGNORECASE)
_SIZE_UNITS = {"b": 1, "kb": 1000, "kib": 1024, "mb": 1000**2, "mib": 1024**2, "gb": 1000**3, "gib": 1024**3}


def _size(text: str | None, option: str) -> int | None:
    """'1MB', '512KiB', '1048576' -> bytes (MB is 10^6, MiB 2^20), or a one-line exit 2."""
    if text is None:
        return None
    m = _SIZE.match(text)
    if not m or float(m.group(1)) * _SIZE_UNITS[(m.group(2) or "b").lower()] < 1:
        fail(f"{option} {text}: give a size such as 1MB, 512KiB or 1048576 (bytes)")
    return int(float(m.group(1)) * _SIZE_UNITS[(m.group(2) or "b").lower()])


def _positive(value: int | None, option: str) -> int | None:
    if value is not None and value < 1:
        fail(f"{option} {value}: give a whole number of at least 1")
    return value


KEY_ENV = "WBGQL_SERVER_API_KEY"


def _fixed_keys(key_file: Path | None) -> list[str]:
    """Keys from --api-key-file (one a line; blank lines and '#' comments skipped) and from
    $WBGQL_SERVER_API_KEY, so a fixed key need not be on the command line."""
    import os

    keys = []
    if key_file is not None:
        try:
            text = key_file.read_text()
        except (OSError, UnicodeDecodeError) as e:
            fail(f"--api-key-file {key_file}: cannot read it: {getattr(e, 'strerror', None) or e}")
        keys += [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]
        if not keys:
            fail(f"--api-key-file {key_file}: no key in it; write one key per line")
    if os.environ.get(KEY_ENV, "").strip():
        keys.append(os.environ[KEY_ENV].strip())
    return keys


def server_command(
    ctx: typer.Context,
    host: Annotated[str, typer.Option("--host", metavar="ADDRESS",
                                      help="Address to bind (loopback unless you mean otherwise).")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", metavar="PORT", help="Port to listen on (1-65535).")] = 8080,
    db: Annotated[Optional[Path], typer.Option(
        "--db", metavar="FILE", show_default=False,
        help="SQLite database [default: $XDG_DATA_HOME/wandb-gql/server.db, ~/.local/share/...].")] = None,
    retention: Annotated[str, typer.Option(
        "--retention", metavar="DURATION",
        help="How long deleted runs stay restorable before the purge (e.g. 7d, 12h).")] = "7d",
    stale_after: Annotated[str, typer.Option(
        "--stale-after", metavar="DURATION",
        help="A running run with no heartbeat for this long turns crashed (preempting: preempted), "
             "as on W&B.")] = "5m",
    api_key: Annotated[Optional[List[str]], typer.Option(
        "--api-key", metavar="KEY", show_default=False,
        help="Accept this key, as the admin user's (repeatable; visible in `ps`: prefer --api-key-file "
             f"or ${KEY_ENV}).")] = None,
    api_key_file: Annotated[Optional[Path], typer.Option(
        "--api-key-file", metavar="FILE", show_default=False,
        help="Accept the keys in this file, one a line, as the admin user's.")] = None,
    seed: Annotated[Optional[str], typer.Option("--seed", metavar="NAME", show_default=False,
                                                help="Seed data set: demo.")] = None,
    faults: Annotated[Optional[str], typer.Option(
        "--faults", metavar="JSON", show_default=False,
        help='Fault injection, e.g. \'{"rate_limit": 5}\' or \'{"script": [429, 500]}\'.')] = None,
    max_body: Annotated[Optional[str], typer.Option(
        "--max-body", metavar="SIZE", show_default=False, rich_help_panel="Limits",
        help="Largest /graphql body, after decompression [default: 1MiB].")] = None,
    max_stream_body: Annotated[Optional[str], typer.Option(
        "--max-stream-body", metavar="SIZE", show_default=False, rich_help_panel="Limits",
        help="Largest file_stream body, after decompression; the SDK sends at most ~10 MB [default: 32MiB].")] = None,
    max_depth: Annotated[Optional[int], typer.Option(
        "--max-depth", metavar="N", show_default=False, rich_help_panel="Limits",
        help="Deepest nesting of fields in a query [default: 20].")] = None,
    max_fields: Annotated[Optional[int], typer.Option(
        "--max-fields", metavar="N", show_default=False, rich_help_panel="Limits",
        help="Most fields in a query, aliases and fragments expanded [default: 500].")] = None,
    max_cost: Annotated[Optional[int], typer.Option(
        "--max-cost", metavar="ROWS", show_default=False, rich_help_panel="Limits",
        help="Most rows a query may ask for: each page (first) times the pages around it [default: 1000000].")] = None,
    time_limit: Annotated[Optional[str], typer.Option(
        "--time-limit", metavar="DURATION", show_default=False, rich_help_panel="Limits",
        help="Stop a request's work after this long, e.g. 30s, 2m [default: 30s].")] = None,
    workers: Annotated[int, typer.Option(
        "--workers", metavar="N", rich_help_panel="Concurrency",
        help="Threads doing database work: reads run in parallel, writes one at a time.")] = 8,
    busy_timeout: Annotated[str, typer.Option(
        "--busy-timeout", metavar="DURATION", rich_help_panel="Concurrency",
        help="How long a write waits for another writer (e.g. a second server on the same --db) "
             "before it is answered 503 with Retry-After, which clients retry.")] = "5s",
) -> None:
    """Run the local W&B-compatible server (the real wandb SDK can log into it).

    Limits keep one request from stalling the others: each refusal is a GraphQL error whose
    extensions.code names the limit (BODY_TOO_LARGE, QUERY_TOO_LONG, QUERY_TOO_DEEP,
    QUERY_TOO_MANY_FIELDS, QUERY_TOO_COSTLY, QUERY_TIMEOUT). The defaults leave every query of
    wbgql and of the wandb SDK far below them.

    Users, keys and teams: `wbgql server users|keys|teams --help`.
    """
    if ctx.invoked_subcommand is not None:
        return  # `wbgql server users add ...`: the group's own options are not for the server
    if not 1 <= port <= 65535:
        fail(f"--port {port}: a port is between 1 and 65535")
    api_key = [*(api_key or []), *_fixed_keys(api_key_file)]
    for key in api_key:
        if not _KEY.match(key):
            fail("--api-key: a key is an optional 'prefix-' then at least 40 letters, digits, '_' or '-' "
                 "(the wandb SDK rejects shorter keys)")
    if seed not in (None, "demo"):
        fail(f"--seed: unknown seed {seed!r}; the only seed is 'demo'")
    sizes = {"max_body": _size(max_body, "--max-body"), "max_stream_body": _size(max_stream_body, "--max-stream-body")}
    counts = {"max_depth": _positive(max_depth, "--max-depth"), "max_fields": _positive(max_fields, "--max-fields"),
              "max_cost": _positive(max_cost, "--max-cost")}

    import logging

    import orjson

    from .._time import parse_duration
    from ..server.app import Server
    from ..server.faults import Faults
    from ..server.limits import Limits
    from ..server.local import default_db_path, open_store, serve
    from ..server.store import new_api_key

    try:
        keep = parse_duration(retention)
    except ValueError as e:
        fail(f"--retention: {e}")
    try:
        stale = parse_duration(stale_after)
    except ValueError as e:
        fail(f"--stale-after: {e}")
    if stale.total_seconds() <= 0:
        fail(f"--stale-after {stale_after}: give a duration above zero, e.g. 5m")
    given: dict[str, Any] = {k: v for k, v in (sizes | counts).items() if v is not None}
    if time_limit is not None:
        try:
            given["time_limit"] = parse_duration(time_limit).total_seconds()
        except ValueError as e:
            fail(f"--time-limit: {e}")
        if given["time_limit"] <= 0:
            fail(f"--time-limit {time_limit}: give a duration above zero, e.g. 30s")
    limits = Limits(**given)
    _positive(workers, "--workers")
    try:
        wait = parse_duration(busy_timeout).total_seconds()
    except ValueError as e:
        fail(f"--busy-timeout: {e}")
    injected = None
    if faults:
        try:
            spec = orjson.loads(faults)
        except orjson.JSONDecodeError as e:
            fail(f"--faults: not JSON ({e})")
        if not isinstance(spec, dict):
            fail(f"--faults: expected a JSON object such as '{{\"rate_limit\": 5}}', not {faults!r}")
        try:
            injected = Faults.from_json(spec)
        except (ValueError, TypeError) as e:
            fail(f"--faults: {e}")
    path = db or default_db_path()
    _check_db(path)
    import sqlite3

    try:
        store = open_store(path, seed, busy_timeout=wait)
        generated = None
        with store.writing():
            for key in api_key:
                store.add_api_key(key)
            if not store.has_api_keys():
                generated = new_api_key()
                store.add_api_key(generated, name="generated")
    except (OSError, ValueError, sqlite3.Error) as e:
        fail(f"--db {path}: cannot use it as the server's database: {e}")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    url = f"http://{host}:{port}"

    def ready() -> None:
        out = sys.stderr
        out.write(f"wandb-gql local server on {url} (db: {path}, retention: {retention})\n")
        if generated:
            out.write("A new API key was generated; it is shown only this once (stored hashed):\n")
            sys.stdout.write(f"export WANDB_BASE_URL={url}\nexport WANDB_API_KEY={generated}\n")
            sys.stdout.flush()
        if host not in ("127.0.0.1", "localhost", "::1"):
            out.write(f"warning: listening on {host}, reachable beyond this machine\n")
        out.flush()

    try:
        serve(host, port, Server(store, retention=keep, faults=injected, limits=limits, workers=workers,
                            stale_after=stale),
              on_ready=ready)
    except OSError as e:
        fail(f"cannot listen on {host}:{port}: {e.strerror or e}; pick another --port", EXIT_FAILURE)
