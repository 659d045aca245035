"""SQLite storage of the local server: schema, connection, transactions, server metadata.

Runs keep config/summary as W&B stores them (JSON text; config as {"key": {"value": v}}), so
filters translate to json_extract over the same shapes W&B's own filters address. Statements
over the data live in store/; this module holds what every store module relies on.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from pathlib import Path
from typing import Callable, Iterator

import re2

DDL = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS entities (
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS users (
  id INTEGER PRIMARY KEY,
  username TEXT NOT NULL UNIQUE,
  name TEXT NOT NULL,
  email TEXT,
  entity_id INTEGER NOT NULL REFERENCES entities(id),
  admin INTEGER NOT NULL DEFAULT 1
);
CREATE TABLE IF NOT EXISTS api_keys (
  id INTEGER PRIMARY KEY,
  user_id INTEGER NOT NULL REFERENCES users(id),
  key_hash TEXT NOT NULL UNIQUE,
  name TEXT NOT NULL,
  created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS projects (
  id INTEGER PRIMARY KEY,
  entity_id INTEGER NOT NULL REFERENCES entities(id),
  name TEXT NOT NULL,
  description TEXT,
  user_id INTEGER REFERENCES users(id),
  created_at TEXT NOT NULL,
  UNIQUE (entity_id, name)
);
CREATE TABLE IF NOT EXISTS runs (
  id INTEGER PRIMARY KEY,
  project_id INTEGER NOT NULL REFERENCES projects(id),
  name TEXT NOT NULL,
  display_name TEXT,
  state TEXT NOT NULL DEFAULT 'running',
  config TEXT NOT NULL DEFAULT '{}',
  summary TEXT NOT NULL DEFAULT '{}',
  system_metrics TEXT NOT NULL DEFAULT '{}',
  tags TEXT NOT NULL DEFAULT '[]',
  group_name TEXT,
  job_type TEXT,
  sweep_name TEXT,
  notes TEXT,
  description TEXT,
  commit_hash TEXT,
  host TEXT,
  username TEXT,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL,
  heartbeat_at TEXT,
  deleted_at TEXT,
  exitcode INTEGER,
  history_line_count INTEGER NOT NULL DEFAULT 0,
  events_line_count INTEGER NOT NULL DEFAULT 0,
  log_line_count INTEGER NOT NULL DEFAULT 0,
  history_keys TEXT NOT NULL DEFAULT '{}',
  UNIQUE (project_id, name)
);
CREATE INDEX IF NOT EXISTS runs_project_created ON runs (project_id, created_at, id);
CREATE INDEX IF NOT EXISTS runs_deleted ON runs (deleted_at) WHERE deleted_at IS NOT NULL;
-- Live runs of a project in id order: runCount without a filter counts this index alone, and
-- listings ordered by a config/summary key walk it for the runs that lack the key.
CREATE INDEX IF NOT EXISTS runs_live ON runs (project_id) WHERE deleted_at IS NULL;
-- The stale-run sweep (every few seconds) looks only at live runs that have a heartbeat: a
-- handful, however many finished runs the database holds. Its WHERE is store/runs.py's _STALE_WHERE.
CREATE INDEX IF NOT EXISTS runs_heartbeat ON runs (heartbeat_at)
  WHERE state IN ('running', 'preempting') AND deleted_at IS NULL AND heartbeat_at IS NOT NULL;
-- Every config value (the nodes under {"key": {"value": ...}}) and summary value of every run, one
-- row per JSON node, kept by the triggers below whoever writes runs (the server, the seed, a bulk
-- INSERT): filters and orders on config./summary_metrics. keys seek these instead of parsing every
-- run's JSON. Array elements are left out (no filter path addresses them), as is config._wandb.
-- A path is SQLite's json_tree fullkey ($.lr.value, $."val/acc"), numbered per project and source.
CREATE TABLE IF NOT EXISTS run_key_paths (
  id INTEGER PRIMARY KEY,
  project_id INTEGER NOT NULL,
  source INTEGER NOT NULL,  -- 0 config, 1 summary
  path TEXT NOT NULL,
  UNIQUE (project_id, source, path)
);
CREATE TABLE IF NOT EXISTS run_keys (
  run_id INTEGER NOT NULL,
  source INTEGER NOT NULL,
  path_id INTEGER NOT NULL,
  rank INTEGER NOT NULL,  -- sqlfilter's bracket: 0 null, 1 number, 2 text, 3 object, 4 array, 5 boolean
  value,                  -- the number or text; 1/0 for true/false; 0 for the rest
  PRIMARY KEY (run_id, source, path_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS run_keys_value ON run_keys (path_id, rank, value);
-- Live runs per project, kept by the triggers below: runCount without a filter reads one row
-- (counting runs_live took ~7 ms at 100k runs, over the 10 ms budget under load).
CREATE TABLE IF NOT EXISTS project_run_counts (
  project_id INTEGER PRIMARY KEY,
  live INTEGER NOT NULL
);
CREATE TRIGGER IF NOT EXISTS run_counts_insert AFTER INSERT ON runs WHEN new.deleted_at IS NULL BEGIN
INSERT INTO project_run_counts (project_id, live) VALUES (new.project_id, 1)
  ON CONFLICT (project_id) DO UPDATE SET live = live + 1;
END;
CREATE TRIGGER IF NOT EXISTS run_counts_delete AFTER DELETE ON runs WHEN old.deleted_at IS NULL BEGIN
UPDATE project_run_counts SET live = live - 1 WHERE project_id = old.project_id;
END;
CREATE TRIGGER IF NOT EXISTS run_counts_update AFTER UPDATE OF deleted_at, project_id ON runs
  WHEN (old.deleted_at IS NULL) != (new.deleted_at IS NULL) OR old.project_id IS NOT new.project_id BEGIN
UPDATE project_run_counts SET live = live - 1 WHERE project_id = old.project_id AND old.deleted_at IS NULL;
INSERT INTO project_run_counts (project_id, live) SELECT new.project_id, 1 WHERE new.deleted_at IS NULL
  ON CONFLICT (project_id) DO UPDATE SET live = live + 1;
END;
CREATE TABLE IF NOT EXISTS history (
  run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  line INTEGER NOT NULL,
  step INTEGER,
  row TEXT NOT NULL,
  PRIMARY KEY (run_id, line)
) WITHOUT ROWID;
-- Step-range pages (history, sampledHistory, scan_history) seek here; the primary key (line)
-- rides along, so picking sampled lines never touches the rows.
CREATE INDEX IF NOT EXISTS history_run_step ON history (run_id, step);
-- The same history by key (store/history_columns.py): sampledHistory reads only the asked keys.
CREATE TABLE IF NOT EXISTS history_columns (
  run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  key TEXT NOT NULL,
  chunk INTEGER NOT NULL,
  first_line INTEGER NOT NULL,
  n INTEGER NOT NULL,
  min_step INTEGER,
  max_step INTEGER,
  lines TEXT,  -- JSON array; NULL: first_line, first_line + 1, ... (n of them)
  steps TEXT,  -- JSON array; NULL: each step is its line
  vals TEXT NOT NULL,
  PRIMARY KEY (run_id, key, chunk)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS events (
  run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  line INTEGER NOT NULL,
  row TEXT NOT NULL,
  PRIMARY KEY (run_id, line)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS logs (
  run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  line INTEGER NOT NULL,
  content TEXT NOT NULL,
  PRIMARY KEY (run_id, line)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS files (
  id INTEGER PRIMARY KEY,
  run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  name TEXT NOT NULL,
  size INTEGER NOT NULL DEFAULT 0,
  md5 TEXT,
  mimetype TEXT,
  uploaded INTEGER NOT NULL DEFAULT 0,
  data BLOB,
  updated_at TEXT NOT NULL,
  UNIQUE (run_id, name)
);
CREATE TABLE IF NOT EXISTS artifact_types (
  id INTEGER PRIMARY KEY,
  project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
  name TEXT NOT NULL,
  description TEXT,
  created_at TEXT NOT NULL,
  UNIQUE (project_id, name)
);
CREATE TABLE IF NOT EXISTS artifact_collections (
  id INTEGER PRIMARY KEY,
  project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
  type_id INTEGER NOT NULL REFERENCES artifact_types(id),
  name TEXT NOT NULL,
  kind TEXT NOT NULL DEFAULT 'SEQUENCE',
  description TEXT,
  next_version INTEGER NOT NULL DEFAULT 0,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL,
  UNIQUE (project_id, name)
);
CREATE TABLE IF NOT EXISTS artifacts (
  id INTEGER PRIMARY KEY,
  collection_id INTEGER NOT NULL REFERENCES artifact_collections(id),
  version_index INTEGER,
  digest TEXT NOT NULL,
  state TEXT NOT NULL DEFAULT 'PENDING',
  description TEXT,
  metadata TEXT NOT NULL DEFAULT '{}',
  ttl_seconds INTEGER NOT NULL DEFAULT -1,
  history_step INTEGER,
  size INTEGER NOT NULL DEFAULT 0,
  file_count INTEGER NOT NULL DEFAULT 0,
  pending_aliases TEXT NOT NULL DEFAULT '[]',
  created_by_run_id INTEGER REFERENCES runs(id) ON DELETE SET NULL,
  manifest_type TEXT,
  manifest_digest TEXT,
  manifest_md5 TEXT,
  manifest_created_at TEXT,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL,
  committed_at TEXT
);
CREATE INDEX IF NOT EXISTS artifacts_collection ON artifacts (collection_id, version_index);
CREATE INDEX IF NOT EXISTS artifacts_digest ON artifacts (collection_id, digest);
CREATE INDEX IF NOT EXISTS artifacts_run ON artifacts (created_by_run_id);
CREATE TABLE IF NOT EXISTS artifact_aliases (
  id INTEGER PRIMARY KEY,
  collection_id INTEGER NOT NULL REFERENCES artifact_collections(id),
  alias TEXT NOT NULL,
  artifact_id INTEGER NOT NULL REFERENCES artifacts(id) ON DELETE CASCADE,
  UNIQUE (collection_id, alias)
);
CREATE INDEX IF NOT EXISTS artifact_aliases_artifact ON artifact_aliases (artifact_id);
CREATE TABLE IF NOT EXISTS artifact_files (
  artifact_id INTEGER NOT NULL REFERENCES artifacts(id) ON DELETE CASCADE,
  name TEXT NOT NULL,
  md5 TEXT NOT NULL,
  size INTEGER,
  mimetype TEXT,
  PRIMARY KEY (artifact_id, name)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS artifact_files_md5 ON artifact_files (md5);
CREATE INDEX IF NOT EXISTS artifacts_manifest_md5 ON artifacts (manifest_md5) WHERE manifest_md5 IS NOT NULL;
CREATE TABLE IF NOT EXISTS artifact_usage (
  artifact_id INTEGER NOT NULL REFERENCES artifacts(id) ON DELETE CASCADE,
  run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  used_as TEXT,
  created_at TEXT NOT NULL,
  PRIMARY KEY (artifact_id, run_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS artifact_usage_run ON artifact_usage (run_id);
-- Runs that logged a version another run created (createArtifact answered by digest dedup):
-- W&B lists the version among those runs' outputs too; createdBy stays the first run.
CREATE TABLE IF NOT EXISTS artifact_outputs (
  artifact_id INTEGER NOT NULL REFERENCES artifacts(id) ON DELETE CASCADE,
  run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  created_at TEXT NOT NULL,
  PRIMARY KEY (artifact_id, run_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS artifact_outputs_run ON artifact_outputs (run_id);
-- Sweeps (store/sweeps.py): runs belong to one by runs.sweep_name; `issued` counts the parameter
-- sets handed to agents (grid position, random seed), so the next set survives a restart.
CREATE TABLE IF NOT EXISTS sweeps (
  id INTEGER PRIMARY KEY,
  project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
  name TEXT NOT NULL,
  display_name TEXT,
  description TEXT,
  config TEXT NOT NULL,  -- YAML as the SDK sent it (W&B answers it back as text)
  method TEXT NOT NULL,
  state TEXT NOT NULL,
  issued INTEGER NOT NULL DEFAULT 0,
  user_id INTEGER REFERENCES users(id),
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL,
  heartbeat_at TEXT,
  UNIQUE (project_id, name)
);
CREATE TABLE IF NOT EXISTS sweep_agents (
  id INTEGER PRIMARY KEY,
  sweep_id INTEGER NOT NULL REFERENCES sweeps(id) ON DELETE CASCADE,
  name TEXT NOT NULL,
  host TEXT NOT NULL,
  state TEXT NOT NULL DEFAULT 'RUNNING',
  runs INTEGER NOT NULL DEFAULT 0,
  created_at TEXT NOT NULL,
  heartbeat_at TEXT
);
CREATE INDEX IF NOT EXISTS runs_sweep ON runs (project_id, sweep_name) WHERE sweep_name IS NOT NULL;
-- Portfolios (run.link_artifact): a collection of kind PORTFOLIO numbers the versions linked into
-- it on its own (v0, v1 ...) and holds its own aliases; the versions stay in their sequences.
CREATE TABLE IF NOT EXISTS artifact_links (
  portfolio_id INTEGER NOT NULL REFERENCES artifact_collections(id) ON DELETE CASCADE,
  artifact_id INTEGER NOT NULL REFERENCES artifacts(id) ON DELETE CASCADE,
  version_index INTEGER NOT NULL,
  created_at TEXT NOT NULL,
  PRIMARY KEY (portfolio_id, artifact_id),
  UNIQUE (portfolio_id, version_index)
) WITHOUT ROWID;
-- Multipart uploads (a file the SDK splits into parts): open until completed or its artifact goes.
CREATE TABLE IF NOT EXISTS artifact_uploads (
  upload_id TEXT PRIMARY KEY,
  artifact_id INTEGER NOT NULL REFERENCES artifacts(id) ON DELETE CASCADE,
  name TEXT NOT NULL,
  md5 TEXT NOT NULL,
  parts TEXT NOT NULL,
  created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS artifact_upload_parts (
  upload_id TEXT NOT NULL REFERENCES artifact_uploads(upload_id) ON DELETE CASCADE,
  part_number INTEGER NOT NULL,
  data BLOB NOT NULL,
  PRIMARY KEY (upload_id, part_number)
) WITHOUT ROWID;
-- run.alert(): what a run's script reported (notifyScriptableRunAlert), oldest first.
CREATE TABLE IF NOT EXISTS run_alerts (
  id INTEGER PRIMARY KEY,
  run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  title TEXT NOT NULL,
  text TEXT NOT NULL,
  severity TEXT NOT NULL,
  created_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS run_alerts_run ON run_alerts (run_id, title);
CREATE TABLE IF NOT EXISTS blobs (
  md5 TEXT PRIMARY KEY,
  size INTEGER NOT NULL,
  data BLOB NOT NULL,
  created_at TEXT NOT NULL
);
"""


_RANK = ("CASE t.type WHEN 'integer' THEN 1 WHEN 'real' THEN 1 WHEN 'text' THEN 2 WHEN 'object' THEN 3"
         " WHEN 'array' THEN 4 WHEN 'true' THEN 5 WHEN 'false' THEN 5 ELSE 0 END")
_VALUE = "CASE WHEN t.type IN ('integer', 'real', 'text') THEN t.atom WHEN t.type = 'true' THEN 1 ELSE 0 END"


def _index_keys(source: int, run: str, *, every_run: bool = False, replacing: bool = False) -> list[str]:
    """Statements adding the indexed JSON nodes of `run`'s config (source 0) or summary (1) to
    run_key_paths and run_keys; `run` is a trigger's `new`, or every run (`r`) when rebuilding.
    `replacing`: the run's rows of that source are there already, and only those whose value
    changed are deleted and inserted again (a file_stream summary changes a few keys; every row
    rewritten dirtied one index page per key). Text that is not JSON indexes nothing rather than
    failing the write."""
    column = f"{run}.{'config' if source == 0 else 'summary'}"
    doc = f"CASE WHEN json_valid({column}) THEN {column} ELSE '{{}}' END"
    # CROSS JOIN keeps this order: each run's nodes, then their numbers by the UNIQUE index.
    tables = "runs r CROSS JOIN " if every_run else ""
    if source == 0:
        tables += f"json_each({doc}) k CROSS JOIN json_tree(k.value, '$.value') t"
        where = ("k.type = 'object' AND k.key != '_wandb' AND instr(k.fullkey, '[') = 0"
                 " AND instr(t.fullkey, '[') = 0")
        path = "k.fullkey || substr(t.fullkey, 2)"
    else:
        tables += f"json_tree({doc}) t"
        where, path = "t.parent IS NOT NULL AND instr(t.fullkey, '[') = 0", "t.fullkey"
    numbered = (f"FROM {tables} CROSS JOIN run_key_paths p ON p.project_id = {run}.project_id"
                f" AND p.source = {source} AND p.path = {path} WHERE {where}")
    statements = [f"INSERT OR IGNORE INTO run_key_paths (project_id, source, path)"
                  f" SELECT DISTINCT {run}.project_id, {source}, {path} FROM {tables} WHERE {where}"]
    if replacing:
        statements.append(f"DELETE FROM run_keys WHERE run_id = {run}.id AND source = {source} AND"
                          f" (path_id, rank, value) NOT IN (SELECT p.id, {_RANK}, {_VALUE} {numbered})")
    statements.append(f"INSERT {'OR IGNORE ' if replacing else ''}INTO run_keys (run_id, source, path_id, rank, value)"
                      f" SELECT {run}.id, {source}, p.id, {_RANK}, {_VALUE} {numbered}")
    return statements


def _run_keys_triggers() -> str:
    def body(*statements: str) -> str:
        return "".join(f"{s};\n" for s in statements)

    both = body(*_index_keys(0, "new"), *_index_keys(1, "new"))
    return "\n".join([
        f"CREATE TRIGGER IF NOT EXISTS run_keys_insert AFTER INSERT ON runs BEGIN\n{both}END;",
        *(f"CREATE TRIGGER IF NOT EXISTS run_keys_{column}_changes AFTER UPDATE OF {column} ON runs"
          f" WHEN new.{column} IS NOT old.{column} BEGIN\n" + body(*_index_keys(source, "new", replacing=True)) + "END;"
          for source, column in ((0, "config"), (1, "summary"))),
        # Paths are numbered per project: a moved run is indexed afresh under its new project's.
        "CREATE TRIGGER IF NOT EXISTS run_keys_project AFTER UPDATE OF project_id ON runs"
        f" WHEN new.project_id IS NOT old.project_id BEGIN\nDELETE FROM run_keys WHERE run_id = new.id;\n{both}END;",
        "CREATE TRIGGER IF NOT EXISTS run_keys_delete AFTER DELETE ON runs BEGIN\n"
        "DELETE FROM run_keys WHERE run_id = old.id;\nEND;",
    ]) + "\n"


DDL += _run_keys_triggers()

# Line counts are GraphQL Ints (32-bit signed); before file_stream bounded offsets, one post could
# store a larger one and break every listing of its project.
_MAX_INT = 2**31 - 1


def _keys_format(conn: sqlite3.Connection) -> str:
    """How this SQLite library writes json_tree paths (quoting changed between releases)."""
    return str(conn.execute("""SELECT group_concat(fullkey, ' ') FROM json_tree('{"a1":{"b/c":{"_d":0}}}')""")
               .fetchone()[0])


# What the query planner assumes before ANALYZE has run (sqlite_stat1, written by hand as SQLite
# allows): a project holds many runs and a config/summary path many rows, while one value of a
# path, or one run name, holds few. Without them SQLite guesses ~10 runs per project and walks the
# created_at index through all 100k runs for a 1-match filter instead of seeking the match.
_PLANNER_HINTS = (
    ("runs", "runs_project_created", "100000 10000 1 1"),
    ("runs", "runs_live", "100000 10000"),
    ("runs", "sqlite_autoindex_runs_1", "100000 10000 1"),
    ("run_keys", "run_keys_value", "5000000 50000 20000 5"),
    ("run_keys", "run_keys", "5000000 50 25 1"),
    ("run_key_paths", "sqlite_autoindex_run_key_paths_1", "5000 50 25 1"),
)
_SCHEMA = "5"


def migrate(conn: sqlite3.Connection) -> None:
    """Bring a database laid out by an older version up to date, once (markers in `meta`): index
    every run's config/summary in run_keys (again if this SQLite writes paths differently from the
    one that indexed them), count live runs per project, repair line counts that do not fit
    GraphQL's Int, add planner hints."""
    keys_format = _keys_format(conn)
    if meta(conn, "schema") == _SCHEMA and meta(conn, "run_keys") == keys_format:
        return
    with transaction(conn):  # BEGIN IMMEDIATE: two servers may open one file at once
        if meta(conn, "run_keys") != keys_format:  # another process may have done it meanwhile
            conn.execute("DELETE FROM run_keys")
            conn.execute("DELETE FROM run_key_paths")
            for source in (0, 1):
                for statement in _index_keys(source, "r", every_run=True):
                    conn.execute(statement)
            set_meta(conn, "run_keys", keys_format)
        if meta(conn, "schema") != _SCHEMA:
            # schema 3-4's triggers rewrote every row of a run's summary on each change
            conn.execute("DROP TRIGGER IF EXISTS run_keys_config")
            conn.execute("DROP TRIGGER IF EXISTS run_keys_summary")
            for column, table in (("history_line_count", "history"), ("events_line_count", "events"),
                                  ("log_line_count", "logs")):
                # Repair: the lines actually stored (what W&B would count), never above 32 bits.
                conn.execute(f"UPDATE runs SET {column} = min({_MAX_INT}, (SELECT count(*) FROM {table} t"
                             f" WHERE t.run_id = runs.id)) WHERE {column} > {_MAX_INT} OR {column} < 0")
            conn.execute("DELETE FROM project_run_counts")
            conn.execute("INSERT INTO project_run_counts (project_id, live) SELECT project_id, count(*) FROM runs"
                         " WHERE deleted_at IS NULL GROUP BY project_id")
            conn.execute("ANALYZE sqlite_schema")  # creates sqlite_stat1 if no ANALYZE ever ran
            for table, index, stat in _PLANNER_HINTS:
                if conn.execute("SELECT 1 FROM sqlite_stat1 WHERE idx = ?", (index,)).fetchone() is None:
                    conn.execute("INSERT INTO sqlite_stat1 (tbl, idx, stat) VALUES (?, ?, ?)", (table, index, stat))
            set_meta(conn, "schema", _SCHEMA)
    conn.execute("ANALYZE sqlite_schema")  # this connection plans with the hints too


_HISTORY_COLUMNS = "1"


def migrate_history_columns(conn: sqlite3.Connection) -> None:
    """Build history_columns once for a database whose history was written without them."""
    if meta(conn, "history_columns") == _HISTORY_COLUMNS:
        return
    from .store import history_columns  # the store's modules import this one

    with transaction(conn):  # BEGIN IMMEDIATE: two servers may open one file at once
        if meta(conn, "history_columns") != _HISTORY_COLUMNS:  # another process may have done it meanwhile
            conn.execute("DELETE FROM history_columns")
            for (run_id,) in conn.execute("SELECT id FROM runs WHERE EXISTS"
                                          " (SELECT 1 FROM history h WHERE h.run_id = runs.id)").fetchall():
                history_columns.rebuild(conn, run_id)
            set_meta(conn, "history_columns", _HISTORY_COLUMNS)


def regex_options() -> "re2.Options":
    options = re2.Options()
    options.log_errors = False  # a refused pattern is the client's error, not a server log line
    return options


_PATTERNS: dict[str, "re2._Regexp"] = {}


def _regexp(pattern: str, value: object) -> bool:
    # SQLite calls REGEXP(pattern, value) once per row; sqlfilter checked the pattern compiles.
    # RE2 matches in time linear in the value: no pattern can stall the server (Python's `re`
    # took 51 s on one run name with ^((.+)+)+!$).
    if value is None:
        return False
    compiled = _PATTERNS.get(pattern)
    if compiled is None:
        if len(_PATTERNS) >= 256:
            _PATTERNS.clear()
        compiled = _PATTERNS[pattern] = re2.compile(pattern, regex_options())
    return compiled.search(value if isinstance(value, str) else str(value)) is not None


# How long a writer waits for another writer (this server's or another process's) before the
# request is answered 503 with Retry-After; the client retries those.
DEFAULT_BUSY_TIMEOUT = 5.0


class Busy(Exception):
    """Another writer held the database longer than the busy timeout: nothing was written, and
    the same request can simply be sent again."""


def is_busy(error: BaseException) -> bool:
    """Whether `error` is SQLite saying another connection holds the lock (SQLITE_BUSY/LOCKED),
    wherever it surfaced: a statement, BEGIN IMMEDIATE, COMMIT."""
    return isinstance(error, Busy) or (isinstance(error, sqlite3.OperationalError) and (
        "locked" in str(error) or "busy" in str(error)))


def open_connection(path: str | Path, busy_timeout: float = DEFAULT_BUSY_TIMEOUT) -> sqlite3.Connection:
    """A connection to an existing database (one per thread: SQLite runs reads on separate
    connections in parallel in WAL mode); `connect` is the first one, which also lays out the schema."""
    conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False, timeout=busy_timeout)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.create_function("regexp", 2, _regexp, deterministic=True)
    return conn


def connect(path: str | Path, busy_timeout: float = DEFAULT_BUSY_TIMEOUT) -> sqlite3.Connection:
    conn = open_connection(path, busy_timeout)
    if str(path) != ":memory:":
        conn.execute("PRAGMA journal_mode = WAL")
    conn.executescript(DDL)
    migrate(conn)
    migrate_history_columns(conn)
    return conn


@contextlib.contextmanager
def transaction(conn: sqlite3.Connection, *, write: bool = True) -> Iterator[None]:
    """One transaction; store functions never open their own, so callers compose them. A writer
    takes the database's write lock up front (BEGIN IMMEDIATE), waiting at most the busy
    timeout, so it never fails half-way for want of the lock; a reader (write=False) reads one
    snapshot and never waits for writers (WAL)."""
    try:
        conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
    except sqlite3.OperationalError as e:
        if is_busy(e):
            raise Busy(str(e)) from None
        raise
    try:
        yield
    except BaseException:
        # An interrupted write statement makes SQLite roll the transaction back itself.
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    try:
        conn.execute("COMMIT")
    except sqlite3.OperationalError as e:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        if is_busy(e):
            raise Busy(str(e)) from None
        raise


@contextlib.contextmanager
def savepoint(conn: sqlite3.Connection) -> Iterator[None]:
    """A part of the open transaction that is undone alone when it raises."""
    conn.execute("SAVEPOINT part")
    try:
        yield
    except BaseException:
        if conn.in_transaction:  # an interrupted statement (time limit) has rolled back everything
            conn.execute("ROLLBACK TO part")
            conn.execute("RELEASE part")
        raise
    conn.execute("RELEASE part")


class Deadline:
    """When a request's work must stop: its time limit passed, or `gone()` says the client left
    (asked at most every 50 ms: it may cost a system call)."""

    def __init__(self, seconds: float, gone: Callable[[], bool] = lambda: False) -> None:
        self.seconds = seconds
        now = time.monotonic()
        self._at, self._ask_at = now + seconds, now + 0.05
        self._gone = gone
        self.hit = False

    def passed(self) -> bool:
        if not self.hit:
            now = time.monotonic()
            if now >= self._at:
                self.hit = True
            elif now >= self._ask_at:
                self._ask_at = now + 0.05
                self.hit = self._gone()
        return self.hit


# VM instructions between deadline checks: ~0.1 ms of SQLite work, and a Python call that cheap
# every 10,000 steps costs nothing measurable on a 1,000-run page.
_CHECK_EVERY = 10_000


@contextlib.contextmanager
def time_limit(conn: sqlite3.Connection, deadline: Deadline) -> Iterator[Deadline]:
    """Statements on `conn` fail with "interrupted" once the deadline passes. A progress handler
    rather than conn.interrupt() from a watchdog: it needs no second thread and works on whatever
    thread runs the statement."""
    conn.set_progress_handler(deadline.passed, _CHECK_EVERY)
    try:
        yield deadline
    finally:
        conn.set_progress_handler(None, 0)


def meta(conn: sqlite3.Connection, key: str) -> str | None:
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    return row[0] if row else None


def set_meta(conn: sqlite3.Connection, key: str, value: str) -> str:
    conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))
    return value
