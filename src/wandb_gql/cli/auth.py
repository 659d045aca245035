"""`wbgql whoami` and `wbgql auth status`: which server, as whom, and where the key came from.

The key itself is never shown, only its source: the flag, the environment or netrc.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._common import (GLOBAL, STDOUT, Format, FormatOpt, dumps, errors, examples, new_app, out_format, run,
                      stdout_is_terminal, terminal_width, use_color, write)

if TYPE_CHECKING:
    from ..client import Client

auth_app = new_app("Who you are on the server (the key is never shown).")

_KEY_SOURCES = {"flag": "--api-key", "env": "$WANDB_API_KEY", "netrc": "netrc"}


def _key_source(client: "Client") -> tuple[str, str]:
    """(source, where exactly) of the key, e.g. ("netrc", "netrc (/home/me/.netrc)")."""
    import os

    if GLOBAL.get("local"):
        return "local", "the embedded local server (--local)"
    source = getattr(client.settings, "key_source", "flag")
    detail = _KEY_SOURCES.get(source, source)
    if source == "netrc":
        detail = f"netrc ({os.environ.get('NETRC') or os.path.expanduser('~/.netrc')})"
    return source, detail


def _base_url_source(client: "Client") -> str:
    source = getattr(client.settings, "base_url_source", None)
    if GLOBAL.get("local"):
        return "--local"
    if source == "settings":
        return f"wandb settings file ({getattr(client.settings, 'settings_file', None) or 'settings'})"
    return {"flag": "--base-url", "env": "$WANDB_BASE_URL", "default": "default"}.get(source or "", source or "")


def whoami(fmt: FormatOpt = None) -> None:
    """Server URL, user, default entity, teams, and where the key came from (never the key)."""
    with errors():
        out = out_format(fmt)

        async def work(client: "Client") -> None:
            viewer = await client.viewer()
            source, detail = _key_source(client)
            record: dict[str, Any] = {
                "server": client.settings.base_url, "server_from": _base_url_source(client),
                "user": viewer.username, "email": viewer.email,
                "entity": client.settings.entity or viewer.entity, "default_entity": viewer.entity,
                "teams": list(viewer.teams), "admin": viewer.admin, "key_source": source, "key_from": detail}
            if out in (Format.json, Format.jsonl):
                write(dumps(record, pretty=out == Format.json) + "\n")
            elif out in (Format.csv, Format.tsv):
                from ..export import writer

                writer(out.value, STDOUT, list(record)).write_all([record]).close()
            else:
                from ..export import write_vertical

                terminal = stdout_is_terminal()
                write_vertical(record, ["server", "server_from", "user", "email", "entity", "teams", "admin", "key_from"], STDOUT,
                               terminal=terminal, width=terminal_width() if terminal else 80, color=use_color())

        run(work)


auth_app.command("status", epilog=examples("wbgql auth status", "wbgql auth status -f json"))(whoami)
