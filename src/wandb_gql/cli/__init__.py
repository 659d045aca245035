"""`wbgql`: a thin typer skin over the library, one module per noun.

Heavy imports (aiohttp, gql, pydantic, graphql-core) happen inside commands, so `--help` stays fast.
"""

from __future__ import annotations

import sys
from typing import Optional

import typer

from . import options
from .runs import runs_app
from .server import server_command

app = typer.Typer(
    name="wbgql",
    help="Fast, safe admin CLI for Weights & Biases over its GraphQL API, with a local W&B-compatible server.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
app.command("server")(server_command)
app.add_typer(runs_app, name="runs")


@app.callback()
def main_options(
    base_url: Optional[str] = typer.Option(None, "--base-url", envvar="WANDB_BASE_URL", show_envvar=True,
                                           help="W&B API URL [default: https://api.wandb.ai]."),
    api_key: Optional[str] = typer.Option(None, "--api-key", envvar="WANDB_API_KEY", show_envvar=False,
                                          help="API key (else $WANDB_API_KEY, else netrc)."),
    entity: Optional[str] = typer.Option(None, "--entity", envvar="WANDB_ENTITY", help="Default entity."),
    local: bool = typer.Option(False, "--local", help="Start the embedded local server (demo data) and use it."),
    insecure: bool = typer.Option(False, "--insecure", help="Allow sending the key over plain http to a non-loopback host."),
    fmt: options.Format = typer.Option(options.Format.table, "--format", "-f", help="Output format."),
    verbose: int = typer.Option(0, "--verbose", "-v", count=True, help="More logging on stderr (-vv for debug)."),
) -> None:
    options.GLOBAL.update(base_url=base_url, api_key=api_key, entity=entity, local=local,
                          insecure=insecure, format=fmt, verbose=verbose)
    options.setup_logging(verbose)


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        sys.exit(130)
