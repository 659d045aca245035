"""`wbgql runs ...`."""

from __future__ import annotations

import typer

runs_app = typer.Typer(help="List, count, inspect, update, delete and restore runs.", no_args_is_help=True)
