"""Global CLI state shared by the noun modules, and the one way they report errors.

Stdlib only at import time: `wbgql --help` must not pay for aiohttp, gql, pydantic or rich.
"""

from __future__ import annotations

import contextlib
import enum
import sys
from typing import Any, Iterator, NoReturn


class Format(str, enum.Enum):
    table = "table"
    json = "json"
    jsonl = "jsonl"
    csv = "csv"


GLOBAL: dict[str, Any] = {"format": Format.table, "verbose": 0}


def fail(message: str, code: int = 2) -> NoReturn:
    """One line on stderr, then the exit code (2 usage, 1 failure, 3 refused, 4 auth)."""
    sys.stderr.write(f"error: {message}\n")
    raise SystemExit(code)


def setup_logging(verbose: int) -> None:
    """-v: INFO, -vv: DEBUG, for the "wandb_gql" logger only, on stderr. Messages are already
    redacted by the library; no settings (and so no key) are ever logged here."""
    if verbose <= 0 and "logging" not in sys.modules:
        return  # nothing can have been set up before in this process: stay import-free
    import logging

    logger = logging.getLogger("wandb_gql")
    for old in [h for h in logger.handlers if getattr(h, "wbgql_cli", False)]:
        logger.removeHandler(old)  # set by an earlier command in this process (tests)
        logger.setLevel(logging.NOTSET)
    if verbose <= 0:
        return

    class StderrHandler(logging.StreamHandler):
        """Writes to whatever sys.stderr is when a record comes (test runners swap it)."""

        wbgql_cli = True

        @property  # type: ignore[override]
        def stream(self) -> Any:
            return sys.stderr

        @stream.setter
        def stream(self, _value: Any) -> None:
            pass

    handler = StderrHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG if verbose > 1 else logging.INFO)


@contextlib.contextmanager
def connection() -> Iterator[dict[str, Any]]:
    """Keyword arguments for `Client(...)` from the global options.

    With --local, the embedded server (default database, demo seed on first use) runs in a
    background thread on a free loopback port for the duration of the command, and the client
    talks to it with the key that server accepts in this process only.
    """
    if not GLOBAL.get("local"):
        yield {"base_url": GLOBAL.get("base_url"), "api_key": GLOBAL.get("api_key"),
               "entity": GLOBAL.get("entity"), "insecure": bool(GLOBAL.get("insecure"))}
        return
    from ..server.local import LocalServer, default_db_path

    if GLOBAL.get("verbose"):
        sys.stderr.write(f"starting the local server (db: {default_db_path()})\n")
    try:
        server = LocalServer(default_db_path(), seed="demo").start()
    except Exception as e:  # a broken or locked database, no free port ...
        fail(f"cannot start the local server (db: {default_db_path()}): {type(e).__name__}: {e}", 1)
    try:
        yield {"base_url": server.base_url, "api_key": server.api_key, "entity": GLOBAL.get("entity")}
    finally:
        server.stop()
