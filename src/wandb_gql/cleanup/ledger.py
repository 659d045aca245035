"""The ledger: what a change was about to do, the backup of every run it touches, and what it did.

One JSON object per line, appended and never rewritten, so a ledger cut off by Ctrl-C, kill -9 or
a full disk is still readable up to its last complete line. Records (`type`):

    ledger   once, first: version, tool, created_at, server, user, argv (never the API key)
    plan     one per plan (a policy may hold several): index, action, path, selection, changes,
             options, run_ids (the pinned ids), counts
    backup   one per run of a plan, before any mutation: everything needed to restore or
             re-create it (`run`: the one vocabulary, config/summary whole; `history` if asked)
    outcome  one per action as it completes: plan, run_id, status, error, at
    event    anything else worth keeping: drift skipped, verify results, interrupted, resumed
    done     a plan finished (its verify result included)

`read_ledger()` folds a ledger into its plans with their backups and the last outcome per run,
which is what `ledger show`, `ledger resume`, `runs restore --ledger` and `ledger undo` read.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Iterator

from .. import __version__
from .._time import now
from ..errors import UsageError
from ..models import Outcome

VERSION = 1


def ledger_dir() -> Path:
    """Where ledgers go unless --ledger says otherwise: beside the local server's data."""
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(base) / "wandb-gql" / "ledgers"


def new_ledger_path(action: str, path: str) -> Path:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    safe = path.replace("/", "_")
    return ledger_dir() / f"{stamp}-{action}-{safe}-{os.getpid()}.jsonl"


class Ledger:
    """An open ledger, appended to. Every line is flushed as written; `sync()` makes what was
    written durable (fsync), and is called after each batch of outcomes and before any mutation."""

    def __init__(self, path: Path, handle: Any) -> None:
        self.path = path
        self._handle = handle
        self._plans = 0

    @classmethod
    def create(cls, path: Path, *, server: str, user: str | None, argv: Iterable[str] = ()) -> "Ledger":
        """A new ledger at `path` (refused if it exists: a ledger is never overwritten)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            handle = open(path, "x", encoding="utf-8")
        except FileExistsError:
            raise UsageError(f"ledger {path} already exists", hint="choose another --ledger path") from None
        os.chmod(path, 0o600)  # backups hold configs and summaries: the user's eyes only
        ledger = cls(path, handle)
        ledger.write("ledger", version=VERSION, tool=f"wandb-gql {__version__}", created_at=now(),
                     server=server, user=user, argv=_scrub(list(argv)))
        ledger.sync()
        return ledger

    @classmethod
    def append_to(cls, path: Path) -> "Ledger":
        """Reopen a ledger to go on with it (resume, restore). A torn last line (the writer died
        mid-line) is cut off first: what it said never happened as far as the ledger knows."""
        state = read_ledger(path)
        if state.torn:
            with open(path, "rb+") as f:
                data = f.read()
                f.truncate(data.rfind(b"\n") + 1)
        handle = open(path, "a", encoding="utf-8")
        ledger = cls(path, handle)
        ledger._plans = len(state.plans)
        return ledger

    def write(self, type: str, **fields: Any) -> None:
        import orjson

        line = orjson.dumps({"type": type, **fields}, option=orjson.OPT_NON_STR_KEYS, default=str)
        self._handle.write(line.decode() + "\n")
        self._handle.flush()

    def add_plan(self, plan_dict: dict[str, Any], options: dict[str, Any] | None = None) -> int:
        """Record a plan (Plan.to_dict()); returns its index, which backups and outcomes name."""
        index = self._plans
        self._plans += 1
        self.write("plan", index=index, options=options or {}, **plan_dict)
        return index

    def backup(self, plan: int, runs: Iterable[dict[str, Any]]) -> None:
        for run in runs:
            self.write("backup", plan=plan, run=run)

    def outcome(self, plan: int, outcome: Outcome) -> None:
        self.write("outcome", plan=plan, run_id=outcome.run_id, status=outcome.status, error=outcome.error,
                   at=now())

    def event(self, plan: int | None, kind: str, **fields: Any) -> None:
        self.write("event", plan=plan, kind=kind, at=now(), **fields)

    def done(self, plan: int, **fields: Any) -> None:
        self.write("done", plan=plan, at=now(), **fields)

    def sync(self) -> None:
        self._handle.flush()
        os.fsync(self._handle.fileno())

    def close(self) -> None:
        if not self._handle.closed:
            self.sync()
            self._handle.close()

    def __enter__(self) -> "Ledger":
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


@dataclass
class PlanRecord:
    """One plan of a ledger as read back: its record, the backups by run id, the last outcome
    per run id, its events, and whether it finished (`done`: the done record, else None)."""

    index: int
    data: dict[str, Any]
    backups: dict[str, dict[str, Any]] = field(default_factory=dict)
    outcomes: dict[str, Outcome] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)
    done: dict[str, Any] | None = None

    @property
    def action(self) -> str:
        return str(self.data["action"])

    @property
    def path(self) -> str:
        return str(self.data["path"])

    @property
    def run_ids(self) -> list[str]:
        return list(self.data.get("run_ids") or [])

    def pending(self) -> list[str]:
        """The pinned ids with no final outcome yet (what a resume still has to do)."""
        return [i for i in self.run_ids if i not in self.outcomes or self.outcomes[i].status == "unknown"]

    def settled(self) -> dict[str, Outcome]:
        """The outcomes that are final (everything but `unknown`)."""
        return {i: o for i, o in self.outcomes.items() if o.status != "unknown"}

    def sent(self) -> set[str] | None:
        """The ids an apply announced (a synced `sending` event) before mutating them: what a
        cut-off apply may have changed without an outcome. None: the ledger has no such events."""
        sending = [e for e in self.events if e.get("kind") == "sending"]
        return {i for e in sending for i in e.get("run_ids") or ()} if sending else None


@dataclass
class LedgerState:
    path: Path
    header: dict[str, Any]
    plans: list[PlanRecord]
    torn: bool = False  # the last line was cut off (the writer died mid-line)

    @property
    def complete(self) -> bool:
        return all(p.done is not None for p in self.plans)


def read_ledger(path: str | Path) -> LedgerState:
    """Fold a ledger file into its plans. A torn last line is ignored (and reported as `torn`);
    a bad line anywhere else is an error naming the line."""
    import orjson

    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise UsageError(f"cannot read ledger {path}: {e.strerror or e}", hint="wbgql ledger list shows them") from None
    lines = raw.split(b"\n")
    torn = bool(lines and lines[-1].strip())
    header: dict[str, Any] | None = None
    plans: list[PlanRecord] = []
    for number, line in enumerate(_complete_lines(lines), 1):
        try:
            record = orjson.loads(line)
        except orjson.JSONDecodeError:
            raise UsageError(f"ledger {path}: line {number} is not JSON", hint="was the file edited by hand?") from None
        kind = record.get("type") if isinstance(record, dict) else None
        if number == 1:
            if kind != "ledger":
                raise UsageError(f"{path} is not a wandb-gql ledger")
            header = record
        elif kind == "plan":
            plans.append(PlanRecord(record["index"], record))
        elif kind in ("backup", "outcome", "event", "done"):
            plan = plans[record["plan"]] if isinstance(record.get("plan"), int) and record["plan"] < len(plans) else None
            if plan is None:
                continue  # a ledger-wide event
            if kind == "backup":
                plan.backups[record["run"]["name"]] = record["run"]
            elif kind == "outcome":
                plan.outcomes[record["run_id"]] = Outcome(record["run_id"], record["status"], record.get("error"))
            elif kind == "event":
                plan.events.append(record)
            else:
                plan.done = record
    if header is None:
        raise UsageError(f"{path} is empty: not a wandb-gql ledger")
    return LedgerState(path, header, plans, torn)


def list_ledgers(directory: Path | None = None) -> list[Path]:
    """The ledgers in `directory` (default: ledger_dir()), newest first."""
    folder = directory or ledger_dir()
    if not folder.is_dir():
        return []
    return sorted(folder.glob("*.jsonl"), key=lambda p: p.stat().st_mtime, reverse=True)


def _complete_lines(lines: list[bytes]) -> Iterator[bytes]:
    # The last element is what follows the last newline: empty, or a torn line.
    for line in lines[:-1]:
        if line.strip():
            yield line


def _scrub(argv: list[str]) -> list[str]:
    """The command line without the value of --api-key (the key is never written)."""
    out: list[str] = []
    hide = False
    for arg in argv:
        if hide:
            out.append("***")
            hide = False
        elif arg == "--api-key":
            out.append(arg)
            hide = True
        elif arg.startswith("--api-key="):
            out.append("--api-key=***")
        else:
            out.append(arg)
    return out
