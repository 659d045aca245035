"""What every command module shares: option aliases, the global options, errors and exit codes,
the async runner, the --local connection, terminal output helpers (progress, confirmation).

Stdlib and typer only at import time: `wbgql --help` must not pay for aiohttp, gql, pydantic,
orjson or rich; those are imported inside the functions that need them.

Exit codes: 0 ok, 1 failure, 2 usage or bad input (nothing sent), 3 refused, 4 auth,
130 interrupted.
"""

from __future__ import annotations

import contextlib
import enum
import os
import sys
import time
from typing import TYPE_CHECKING, Annotated, Any, Awaitable, Callable, Iterator, List, NoReturn, Optional

import typer
from typer.core import TyperGroup

if TYPE_CHECKING:
    from ..client import Client
    from ..errors import WandbGQLError


class Format(str, enum.Enum):
    table = "table"
    tsv = "tsv"
    csv = "csv"
    json = "json"
    jsonl = "jsonl"


FORMAT_NAMES = tuple(f.value for f in Format)

# The global options as the root callback stored them (tests run several commands in one process,
# so the callback resets every key each time).
GLOBAL: dict[str, Any] = {"format": None, "verbose": 0}

EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_REFUSED, EXIT_AUTH, EXIT_INTERRUPTED = 0, 1, 2, 3, 4, 130

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


class Group(TyperGroup):
    """A command group whose own options (the global ones, -h) are parsed without typer's
    per-option pydantic adapter: it would cost `wbgql runs list --help` a pydantic import
    (0.13 s) for values that are plain strings, flags and counts."""

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        for command in self.commands.values():
            _plain_placeholders(command)

    def parse_args(self, ctx: Any, args: list[str]) -> Any:
        _plain_params(self.get_params(ctx))
        return super().parse_args(ctx, args)


def _plain_placeholders(command: Any) -> None:
    """Arguments shown as the words of their metavar (`ENTITY/PROJECT`, `[ENTITY]`), not as
    typer's `{ENTITY/PROJECT}` in the usage line and `ENTITY/PROJECT <str>` in the help."""
    for param in getattr(command, "params", ()):
        if getattr(param, "param_type_name", "") != "argument" or not getattr(param, "metavar", None):
            continue
        word = param.metavar if param.required else f"[{param.metavar}]"
        param._usage_display_name = lambda word=word: word
        param.display_type_rich = lambda ctx: None


def _plain_params(params: Any) -> None:
    try:
        from typer._coercion import RuntimeParam
        from typer.models import OptionInfo
    except ImportError:  # pragma: no cover - a typer without per-parameter coercion
        return

    class Plain(RuntimeParam):  # type: ignore[misc]
        def _coerce_value(self, value: Any, param: Any, ctx: Any) -> Any:
            return value

    for param in params:
        if getattr(param, "_runtime_param", 0) is None:
            param._runtime_param = Plain(parameter_info=OptionInfo(), annotation=param.type_descriptor.annotation)


def new_app(help: str, **kw: Any) -> typer.Typer:
    """A typer app set up as every wbgql noun is: -h, plain help (no rich: it is slow to import)."""
    kw.setdefault("no_args_is_help", True)
    return typer.Typer(help=help, cls=Group, rich_markup_mode=None, context_settings=CONTEXT,
                       pretty_exceptions_enable=False, add_completion=False, **kw)


# ---------------------------------------------------------------------------- option aliases

PATH_FORMS = "ENTITY/PROJECT, PROJECT (default entity) or a W&B URL"
PathArg = Annotated[str, typer.Argument(metavar="ENTITY/PROJECT", show_default=False,
                                        help=f"The project: {PATH_FORMS}.")]
RunPathArg = Annotated[str, typer.Argument(
    metavar="ENTITY/PROJECT/RUN_ID", show_default=False,
    help="The run: ENTITY/PROJECT/RUN_ID, ENTITY/PROJECT/runs/RUN_ID, PROJECT/RUN_ID or its W&B URL "
         "(the run id, not its display name).")]
WhereOpt = Annotated[Optional[str], typer.Option(
    "--where", "-w", metavar="EXPR", show_default=False,
    help="Readable filter, e.g. 'state in (crashed, failed) and created_at < 30d ago' (see: wbgql help where).")]
FiltersOpt = Annotated[Optional[str], typer.Option(
    "--filters", metavar="JSON", show_default=False,
    help="W&B filter JSON, passed through (checked first). Not with --where.")]
FormatOpt = Annotated[Optional[Format], typer.Option(
    "--format", "-f", metavar="[table|tsv|csv|json|jsonl]", show_default=False, case_sensitive=False,
    help="Output format [default: table].")]
FieldsOpt = Annotated[Optional[str], typer.Option(
    "--fields", metavar="A,B,...", show_default=False,
    help="Columns (table, tsv, csv) or keys (json, jsonl), by the names --where takes: "
         "name,state,created_at,config.lr,summary.val/acc,url; config.* / summary.* for every key.")]
LimitOpt = Annotated[Optional[int], typer.Option(
    "--limit", "-n", metavar="N", min=0, show_default=False,
    help="At most N runs [default: 50 for a table on a terminal, else all].")]
AllRowsOpt = Annotated[bool, typer.Option("--all", help="Every match: no default limit on a terminal.")]
AllOpt = Annotated[bool, typer.Option("--all", help="Every run of the project, or a filter that matches every "
                                                    "run: say so in so many words.")]
OrderOpt = Annotated[str, typer.Option(
    "--order", metavar="[+|-]FIELD",
    help="Sort by a field --where takes, '-' for descending, e.g. -summary.val/acc.")]
ConfigKeysOpt = Annotated[Optional[str], typer.Option(
    "--config-keys", metavar="A,B,...", show_default=False, help="Config keys to fetch and show ('*' for all).")]
SummaryKeysOpt = Annotated[Optional[str], typer.Option(
    "--summary-keys", metavar="A,B,...", show_default=False, help="Summary keys to fetch and show ('*' for all).")]
PerPageOpt = Annotated[int, typer.Option("--per-page", metavar="N", min=1, max=1000,
                                         help="Runs per request (1-1000).")]
YesOpt = Annotated[bool, typer.Option("--yes", "-y", help="Do it without asking.")]
DryRunOpt = Annotated[bool, typer.Option("--dry-run", help="Show the plan (with -f json: as JSON on stdout) "
                                                           "and change nothing.")]
IdsOpt = Annotated[Optional[List[str]], typer.Option("--id", metavar="RUN_ID", show_default=False,
                                                     help="A run id (repeatable).")]
IdsFromOpt = Annotated[Optional[str], typer.Option(
    "--ids-from", metavar="FILE", show_default=False,
    help="Run ids from FILE, one per line ('-' for stdin; blank lines and # comments skipped).")]


def examples(*lines: str) -> str:
    """An epilog of examples, kept as written (click rewraps paragraphs without the \\b marker)."""
    return "\b\nExamples:\n" + "\n".join(f"  {line}" for line in lines)


# ---------------------------------------------------------------------------- errors


def fail(message: str, code: int = EXIT_USAGE, hint: str | None = None) -> NoReturn:
    """One line on stderr (and a hint), then the exit code."""
    sys.stderr.write(f"error: {message}\n" + (f"hint: {hint}\n" if hint else ""))
    raise SystemExit(code)


def report(error: "WandbGQLError") -> int:
    """A library error as `error: ...` (+ the caret under a filter's culprit, + `hint: ...`);
    returns its exit code."""
    from ..errors import FilterError

    lines = [f"error: {error.message}"]
    if isinstance(error, FilterError) and error.caret():
        lines.append(error.caret())
    if error.hint:
        lines.append(f"hint: {error.hint}")
    sys.stderr.write("\n".join(lines) + "\n")
    return error.exit_code


@contextlib.contextmanager
def errors() -> Iterator[None]:
    """The library's errors as a report and an exit code; a closed stdout as a quiet exit 0."""
    from ..errors import WandbGQLError

    try:
        yield
    except WandbGQLError as e:
        raise SystemExit(report(e)) from None
    except BrokenPipeError:
        quiet_stdout()
        raise SystemExit(EXIT_OK) from None


def quiet_stdout() -> None:
    """The reader of stdout went away (`| head -1`): what is still buffered goes nowhere, so the
    interpreter's last flush does not complain (as the Python docs on SIGPIPE advise)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # not a real file (a test runner's buffer)
        pass


# ---------------------------------------------------------------------------- output helpers


def out_format(override: Optional[Format]) -> Format:
    return override or GLOBAL.get("format") or Format.table


def stdout_is_terminal() -> bool:
    return _isatty(sys.stdout)


def stderr_is_terminal() -> bool:
    return _isatty(sys.stderr)


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def terminal_width() -> int:
    """$COLUMNS when set (as shells and test runners do), else the terminal's, else 80."""
    import shutil

    return shutil.get_terminal_size((80, 24)).columns


def use_color() -> bool:
    """Colour only on a terminal, never with NO_COLOR set (no-color.org) or TERM=dumb."""
    return stdout_is_terminal() and not os.environ.get("NO_COLOR") and os.environ.get("TERM") != "dumb"


def write(text: str) -> None:
    STATUS.hide()
    sys.stdout.write(text)
    sys.stdout.flush()


def warn(message: str) -> None:
    STATUS.hide()
    sys.stderr.write(f"warning: {message}\n")


def note(message: str) -> None:
    STATUS.hide()
    sys.stderr.write(message + "\n")


class _Stdout:
    """stdout for writers: hides the status line first when both share a terminal."""

    def write(self, text: str) -> int:
        if STATUS.visible:
            STATUS.hide()
        return sys.stdout.write(text)

    def flush(self) -> None:
        sys.stdout.flush()


STDOUT: Any = _Stdout()


def dumps(value: Any, pretty: bool = False) -> str:
    from ..export import dumps as _dumps

    return _dumps(value, pretty)


# ---------------------------------------------------------------------------- progress


class Status:
    """One transient line on stderr, only when stderr is a terminal: a progress bar (done/total,
    rate, ETA) that shows up once work has taken about a second, and a note while the client
    waits to retry ("rate limited, waiting 3 s"). It clears itself before anything else is
    written to the terminal and at the end."""

    DELAY = 1.0
    EVERY = 0.1

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.enabled = False
        self.visible = False
        self.label = ""
        self.total: int | None = None
        self.done = 0
        self.failed = 0
        self.started = self.drawn = 0.0
        self.note = ""
        self.note_until = 0.0
        self.bar = False
        self.outcomes = False

    def start(self, label: str, total: int | None = None, *, bar: bool = True, outcomes: bool = False) -> None:
        """Begin a task (replacing any before it); `bar=False`: retry notes only; `outcomes`: a
        change, whose bar also shows how many failed and how many are left."""
        self.enabled = stderr_is_terminal()
        self.label, self.total, self.done, self.failed, self.bar = label, total, 0, 0, bar
        self.outcomes = outcomes
        self.started = time.monotonic()

    def set_total(self, total: int | None) -> None:
        self.total = total

    def advance(self, n: int = 1, *, failed: bool = False) -> None:
        """`n` more done; `failed`: they are done but did not succeed (shown as such, and
        what is left counts down either way)."""
        self.done += n
        if failed:
            self.failed += n
        if self.enabled:
            now = time.monotonic()
            if now - self.drawn >= self.EVERY and now - self.started >= self.DELAY:
                self._draw(now)

    def retry(self, operation: str, error: Any, delay: float) -> None:
        """The client's on_retry hook."""
        self.note = f"{_retry_cause(error)}, waiting {_seconds(delay)}"
        self.note_until = time.monotonic() + delay
        if stderr_is_terminal():
            self.enabled = True
            self._draw(time.monotonic())

    def _draw(self, now: float) -> None:
        self.drawn = now
        parts = []
        if self.bar or self.label:
            parts.append(self.label)
        if self.bar:
            elapsed = max(now - self.started, 1e-6)
            rate = self.done / elapsed
            if self.total:
                filled = min(20, int(20 * self.done / self.total))
                parts.append("[" + "#" * filled + "." * (20 - filled) + "]")
                parts.append(f"{self.done:,}/{self.total:,}")
            else:
                parts.append(f"{self.done:,}")
            if self.outcomes:
                parts.append(f"{self.failed:,} failed")
                if self.total:
                    parts.append(f"{max(self.total - self.done, 0):,} left")
            if self.done:
                parts.append(f"{rate:,.0f}/s")
                if self.total and self.total > self.done and rate > 0:
                    parts.append(f"ETA {_seconds((self.total - self.done) / rate)}")
        elif self.label:
            parts.append(_seconds(now - self.started))  # one long request: at least show it is alive
        if self.note and now < self.note_until:
            parts.append(f"({self.note})")
        line = "  ".join(p for p in parts if p)
        width = terminal_width() - 1
        sys.stderr.write("\r\x1b[2K" + line[:width])
        sys.stderr.flush()
        self.visible = True

    def hide(self) -> None:
        if self.visible:
            sys.stderr.write("\r\x1b[2K")
            sys.stderr.flush()
            self.visible = False

    def stop(self) -> None:
        self.hide()
        self.reset()


def _retry_cause(error: Any) -> str:
    from ..errors import ConnectError, RateLimitError, ServerError

    if isinstance(error, RateLimitError):
        return "rate limited"
    if isinstance(error, ServerError):
        return f"server error (HTTP {error.status})"
    if isinstance(error, ConnectError):
        return "cannot connect"
    return "connection trouble"


def _seconds(s: float) -> str:
    if s < 10:
        return f"{s:.1f} s" if s < 1 else f"{s:.0f} s"
    if s < 120:
        return f"{s:.0f} s"
    return f"{s / 60:.0f} min"


STATUS = Status()


# ---------------------------------------------------------------------------- running


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

    class StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
        """Writes to whatever sys.stderr is when a record comes (test runners swap it)."""

        wbgql_cli = True

        @property  # type: ignore[override]
        def stream(self) -> Any:
            return sys.stderr

        @stream.setter
        def stream(self, _value: Any) -> None:
            pass

        def emit(self, record: logging.LogRecord) -> None:
            STATUS.hide()
            super().emit(record)

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
        note(f"starting the local server (db: {default_db_path()})")
    try:
        server = LocalServer(default_db_path(), seed="demo").start()
    except Exception as e:  # a broken or locked database, no free port ...
        fail(f"cannot start the local server (db: {default_db_path()}): {type(e).__name__}: {e}", EXIT_FAILURE)
    try:
        yield {"base_url": server.base_url, "api_key": server.api_key, "entity": GLOBAL.get("entity")}
    finally:
        server.stop()


def run(work: Callable[["Client"], Awaitable[Optional[int]]]) -> None:
    """Run `work(client)` against the configured (or --local) server, with retry notes on the
    status line; exit with what it returns. Errors become one report and their exit code."""
    import asyncio

    with errors():
        from ..client import Client

        async def main(kwargs: dict[str, Any]) -> Optional[int]:
            async with Client(**kwargs, on_retry=STATUS.retry) as client:
                return await work(client)

        try:
            with connection() as kwargs:
                code = asyncio.run(main(kwargs))
        finally:
            STATUS.stop()
            with contextlib.suppress(BrokenPipeError):
                sys.stdout.flush()
    if code:
        raise SystemExit(code)


# ---------------------------------------------------------------------------- input helpers


def split_keys(text: Optional[str], option: str) -> Any:
    """'a,b' -> ['a', 'b']; '*' -> True (every key); None -> None (none at all)."""
    if text is None:
        return None
    keys = [k.strip() for k in text.split(",") if k.strip()]
    if keys == ["*"]:
        return True
    if "*" in keys:
        from ..errors import UsageError

        raise UsageError(f"{option}: '*' (every key) cannot be mixed with named keys")
    return keys


def read_ids(ids: Optional[List[str]], ids_from: Optional[str]) -> Optional[list[str]]:
    """--id values and the ids of --ids-from FILE ('-': stdin) together; None when neither."""
    from ..cleanup.plan import read_ids as parse
    from ..errors import UsageError

    if ids_from is None:
        return list(ids) if ids else None
    if ids_from == "-":
        found = parse(sys.stdin)
    else:
        try:
            with open(ids_from, encoding="utf-8") as f:
                found = parse(f)
        except (OSError, UnicodeDecodeError) as e:
            raise UsageError(f"cannot read --ids-from {ids_from}: {getattr(e, 'strerror', None) or e}") from None
    if not found:
        raise UsageError(f"--ids-from {ids_from}: no run ids in it (one per line; # starts a comment)")
    return list(dict.fromkeys([*(ids or []), *found]))


def confirm(question: str, yes: bool) -> None:
    """Ask on stderr (stdout stays data only); no answer or 'no' refuses with exit 3."""
    if yes:
        return
    STATUS.hide()
    sys.stderr.write(f"{question} [y/N]: ")
    sys.stderr.flush()
    answer = _read_answer()
    if not answer or not _isatty(sys.stdin):
        sys.stderr.write("\n")  # the answer was not echoed by a terminal: end the prompt's line
    if not answer:
        fail("no answer (stdin closed): nothing changed; pass --yes to confirm non-interactively", EXIT_REFUSED)
    if answer.strip().lower() not in ("y", "yes"):
        fail("not confirmed: nothing changed", EXIT_REFUSED)


def _read_answer() -> str:
    """A line from stdin that Ctrl-C interrupts. asyncio.run's own SIGINT handler only cancels
    the main task, which a blocking read never notices: the prompt would sit there until Enter."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return sys.stdin.readline()
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        return sys.stdin.readline()
    except KeyboardInterrupt:
        sys.stderr.write("\n")
        fail("interrupted: nothing changed", EXIT_INTERRUPTED)
    finally:
        signal.signal(signal.SIGINT, previous)
