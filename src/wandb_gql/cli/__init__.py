"""`wbgql`: a thin typer skin over the library, one module per noun.

Heavy imports (aiohttp, gql, pydantic, orjson, rich) happen inside commands, so `--help` stays
fast. Global options may come before or after the command: `main()` moves them in front.
"""

from __future__ import annotations

import sys
from functools import lru_cache
from typing import Annotated, Any, Optional, Sequence

import typer

from . import _common
from ._common import FORMAT_NAMES, GLOBAL, Format, Group, examples, fail, setup_logging
from .artifacts import artifacts_app
from .auth import auth_app, whoami
from .cleanup import cleanup_app
from .help import help_app
from .history import history_app
from .ledger import ledger_app
from .projects import projects_app
from .runs import runs_app
from .server import server_command
from .server_admin import server_app
from .sweeps import sweeps_app
from .transfer import export_runs as _registers_runs_export_and_import  # noqa: F401

try:  # typer vendors click since 0.2x; older releases use click itself
    from typer._click.exceptions import UsageError as _ClickUsageError
except ImportError:  # pragma: no cover
    from click.exceptions import UsageError as _ClickUsageError  # type: ignore[assignment,no-redef]


class _OneLineUsageError(_ClickUsageError):
    """A command-line mistake as wbgql reports every error: one line, exit 2."""

    def show(self, file: Any = None) -> None:
        ctx = self.ctx
        where = f" (see: {ctx.command_path} --help)" if ctx is not None else ""
        message = self.format_message()
        sys.stderr.write(f"error: {message[:1].lower()}{message[1:].rstrip('.')}{where}\n")


class _Root(Group):
    """The root command: usage errors in one line (click prints usage, a 'Try' line and a box)."""

    def make_context(self, info_name: Optional[str], args: list[str], parent: Any = None, **extra: Any) -> Any:
        try:
            return super().make_context(info_name, args, parent, **extra)
        except _ClickUsageError as e:
            raise _one_line(e) from None

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except _ClickUsageError as e:
            raise _one_line(e) from None


def _one_line(error: Any) -> Any:
    if type(error).__name__ == "NoArgsIsHelpError" or isinstance(error, _OneLineUsageError):
        return error  # shows the help, as asked
    return _OneLineUsageError(error.format_message(), ctx=error.ctx)


app = typer.Typer(
    name="wbgql",
    cls=_Root,
    help="Fast, safe admin CLI for Weights & Biases over its GraphQL API, with a local W&B-compatible server. "
         "The options below go before or after the command.",
    epilog=examples("wbgql --local runs list demo/vision --where 'state = crashed'",
                    "wbgql whoami",
                    "wbgql runs list ENTITY/PROJECT -f jsonl --fields name,state,summary.loss | head",
                    "wbgql runs delete ENTITY/PROJECT --state crashed --older-than 30d --dry-run",
                    "wbgql ledger list",
                    "wbgql help where"),
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings=_common.CONTEXT,
)
app.add_typer(runs_app, name="runs")
app.add_typer(projects_app, name="projects")
app.add_typer(sweeps_app, name="sweeps")
app.add_typer(history_app, name="history")
app.add_typer(artifacts_app, name="artifacts")
app.add_typer(cleanup_app, name="cleanup")
app.add_typer(ledger_app, name="ledger")
app.command("whoami", epilog=examples("wbgql whoami", "wbgql --local whoami -f json"))(whoami)
app.add_typer(auth_app, name="auth")
app.add_typer(server_app(server_command, examples(
    "wbgql server --seed demo",
    "wbgql server --port 9000 --db ./rehearsal.db --retention 12h",
    "wbgql server --faults '{\"rate_limit\": 5}'",
    "wbgql server users add alice --team vision-lab")), name="server")
app.add_typer(help_app, name="help")


def _version(value: bool) -> None:
    if value:
        from .. import __version__

        sys.stdout.write(f"wbgql {__version__}\n")
        raise typer.Exit()


@app.callback()
def main_options(
    base_url: Annotated[Optional[str], typer.Option(
        "--base-url", metavar="URL", show_default=False,
        help="W&B API URL (else $WANDB_BASE_URL, else wandb's settings file, else https://api.wandb.ai).")] = None,
    api_key: Annotated[Optional[str], typer.Option(
        "--api-key", metavar="KEY", show_default=False,
        help="API key (else $WANDB_API_KEY, else netrc for the host). Never printed.")] = None,
    entity: Annotated[Optional[str], typer.Option(
        "--entity", metavar="ENTITY", show_default=False,
        help="Default entity (else $WANDB_ENTITY, else the key's).")] = None,
    local: Annotated[bool, typer.Option("--local", help="Start the embedded local server (demo data) and use it.")] = False,
    insecure: Annotated[bool, typer.Option(
        "--insecure", help="Allow sending the key over plain http to a non-loopback host.")] = False,
    fmt: Annotated[Optional[str], typer.Option(
        "--format", "-f", metavar="[" + "|".join(FORMAT_NAMES) + "]", show_default=False,
        help="Output format [default: table].")] = None,
    verbose: Annotated[int, typer.Option("--verbose", "-v", count=True,
                                         show_default=False, help="More logging on stderr (-vv for debug).")] = 0,
    version: Annotated[bool, typer.Option("--version", is_eager=True, callback=_version,
                                          help="Show the version and exit.")] = False,
) -> None:
    """Global options go before or after the command: `wbgql runs list P --local -v` works."""
    chosen = None
    if fmt is not None:
        try:
            chosen = Format(fmt.lower())
        except ValueError:
            fail(f"invalid value for '--format' / '-f': {fmt!r} is not one of {', '.join(FORMAT_NAMES)}")
    GLOBAL.clear()
    GLOBAL.update(base_url=base_url, api_key=api_key, entity=entity, local=local, insecure=insecure,
                  format=chosen, verbose=verbose)
    setup_logging(verbose)


# ---------------------------------------------------------------------------- global options anywhere


@lru_cache(maxsize=1)
def command() -> Any:
    """The click command tree of `app` (typer builds it on each call otherwise)."""
    return typer.main.get_command(app)


def _option_arity(params: Sequence[Any]) -> dict[str, bool]:
    """Option name -> whether it takes a value."""
    names: dict[str, bool] = {}
    for param in params:
        if getattr(param, "param_type_name", "") != "option":
            continue
        takes = not (getattr(param, "is_flag", False) or getattr(param, "count", False))
        for name in [*param.opts, *getattr(param, "secondary_opts", ())]:
            names[name] = takes
    return names


def global_options_first(args: Sequence[str]) -> list[str]:
    """The arguments with the global options (and their values) moved in front of the command,
    so typer sees them where it expects them. An option the command declares itself (`-f`) stays
    with the command; a value is never mistaken for an option (`--where --local` keeps
    '--local' as the expression); nothing after `--` moves."""
    root = command()
    global_opts = _option_arity(root.params)
    front: list[str] = []
    rest: list[str] = []
    current = root
    own = _option_arity(current.params)
    i = 0
    args = list(args)
    while i < len(args):
        token = args[i]
        if token == "--":
            rest += args[i:]
            break
        name = token.split("=", 1)[0] if token.startswith("--") else token
        if token.startswith("-") and len(token) > 1:
            if current is not root and name in own:
                takes = own[name] and "=" not in token and not (token[1] != "-" and len(token) > 2)
                rest += args[i:i + 2] if takes else [token]
                i += 2 if takes else 1
                continue
            if name in global_opts or (token[1] != "-" and set(token[1:]) == {"v"}):
                takes = global_opts.get(name, False) and "=" not in token
                front += args[i:i + 2] if takes else [token]
                i += 2 if takes else 1
                continue
            rest.append(token)
        else:
            sub = getattr(current, "commands", {}).get(token)
            if sub is not None:
                current = sub
                own = _option_arity(sub.params)
            rest.append(token)
        i += 1
    return front + rest


def main(argv: Optional[Sequence[str]] = None) -> None:
    args = global_options_first(sys.argv[1:] if argv is None else argv)
    try:
        command().main(args=args, prog_name="wbgql")
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        sys.exit(130)
