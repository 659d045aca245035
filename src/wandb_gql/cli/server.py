"""`wbgql server`: the local W&B-compatible server in the foreground."""

from __future__ import annotations

import logging
import re
import sys
from pathlib import Path
from typing import List, Optional

import typer

from .options import fail

_KEY = re.compile(r"^(?:[\w]+-)?[\w-]{40,}$")


def server_command(
    host: str = typer.Option("127.0.0.1", help="Address to bind (loopback unless you mean otherwise)."),
    port: int = typer.Option(8080, help="Port to listen on."),
    db: Optional[Path] = typer.Option(None, help="SQLite database [default: ~/.local/share/wandb-gql/server.db]."),
    retention: str = typer.Option("7d", help="How long deleted runs stay restorable before the purge (e.g. 7d, 12h)."),
    api_key: Optional[List[str]] = typer.Option(None, "--api-key", help="Accept this key (repeatable)."),
    seed: Optional[str] = typer.Option(None, help="Seed data set: 'demo'."),
    faults: Optional[str] = typer.Option(None, help='Fault injection JSON, e.g. \'{"rate_limit": 5}\'.'),
) -> None:
    """Run the local W&B-compatible server (the real wandb SDK can log into it)."""
    import orjson

    from .._time import parse_duration
    from ..server.app import Server
    from ..server.faults import Faults
    from ..server.local import default_db_path, open_store, serve
    from ..server.store import new_api_key

    try:
        keep = parse_duration(retention)
    except ValueError as e:
        fail(f"--retention: {e}")
    for key in api_key or []:
        if not _KEY.match(key):
            fail("--api-key: a key is an optional 'prefix-' then at least 40 letters, digits, '_' or '-' "
                 "(the wandb SDK rejects shorter keys)")
    try:
        injected = Faults.from_json(orjson.loads(faults)) if faults else None
    except (ValueError, TypeError) as e:
        fail(f"--faults: {e}")
    if seed not in (None, "demo"):
        fail(f"--seed: unknown seed {seed!r}; the only seed is 'demo'")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    path = db or default_db_path()
    store = open_store(path, seed)
    generated = None
    for key in api_key or []:
        store.add_api_key(key)
    if not store.has_api_keys():
        generated = new_api_key()
        store.add_api_key(generated, name="generated")
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
        serve(host, port, Server(store, retention=keep, faults=injected), on_ready=ready)
    except OSError as e:
        fail(f"cannot listen on {host}:{port}: {e.strerror or e}; pick another --port", 1)
