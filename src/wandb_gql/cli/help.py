"""`wbgql help where`: the --where language, its fields (from models.RUN_FIELDS), operators,
values, and the W&B traps the lint knows."""

from __future__ import annotations

import sys

from ._common import examples, new_app

help_app = new_app("Reference pages: wbgql help where.")

_KINDS = {"text": "text", "time": "time (UTC)", "tags": "list of tags", "int": "number", "user": "username",
          "id": "text"}
_ABOUT = {"name": "the run id (the last part of its URL; not the display name)",
          "state": "running, finished, crashed, failed, killed, preempting, preempted, pending",
          "tags": "tags has baseline; tags in (a, b): any of them",
          "sweep": "the sweep's id", "user": "the username of who created the run",
          "created_at": "created_at < 30d ago, created_at >= 2024-05-01"}


def where_reference() -> str:
    from ..models import RUN_FIELDS

    fields = [(f.name, _ABOUT.get(f.name, _KINDS.get(f.kind, f.kind))) for f in RUN_FIELDS if f.filter is not None]
    fields += [("config.<key>", "a config value: config.lr = 0.001, config.optimizer.name = adam (nested)"),
               ("summary.<key>", "a summary value: summary.val/acc >= 0.9, summary.best.loss < 1 (nested)")]
    width = max(len(name) for name, _ in fields)
    field_lines = "\n".join(f"  {name:<{width}}  {about}" for name, about in fields)
    return f"""\
The --where language: readable run filters, compiled to W&B's filter JSON before anything is sent.
The same names are --order, --fields, table/csv headers and JSON keys.

  wbgql runs list ENTITY/PROJECT --where 'state in (crashed, failed) and created_at < 30d ago'
  wbgql runs count ENTITY/PROJECT --where 'summary.val/acc >= 0.9 and config.lr = 0.001 and tags has baseline'
  wbgql runs explain ENTITY/PROJECT --where 'not (group = "ablation" or name ~ "^tmp-")'   (shows the JSON)

FIELDS
{field_lines}
  A key with dots or spaces of its own goes in backticks: summary.`val.acc`, config.`batch size`.

OPERATORS
  = != < <= > >=         compare (strings, numbers, times)
  in (a, b)  not in (a, b)
  ~ 'regex'              regular expression (RE2, as W&B runs it)
  has                    a tag: tags has baseline
  exists  not exists     the field or key is set: summary.loss exists
  and  or  not  ( )      not binds tightest, then and, then or

VALUES
  numbers                0.001  1e-3  42  -1
  strings                bare (crashed, adam) or quoted ('two words', "x,y")
  true false null
  times                  ISO dates and times in UTC: 2024-05-01, 2024-05-01T12:30:00Z
                         relative: <n><unit> ago, unit s m h d w y: 30d ago, 12h ago, 1y ago

W&B TRAPS (the lint warns about these; wbgql runs explain shows them)
  - In raw --filters JSON, summary keys are 'summary_metrics.<key>': 'summary.<key>' silently
    matches nothing. --where writes summary.<key> and compiles it for you.
  - Config values are stored as {{"key": {{"value": v}}}}: raw JSON needs 'config.<key>.value'.
  - The run id is 'name'; 'id' is not a filter field.
  - A quoted number ("0.1") compares as a string, not a number.
  - Time fields take UTC ISO strings, not numbers.
  - A state W&B never uses matches nothing (and != such a state matches every run).
  - Regex anchors (^ $) may or may not work on W&B; lookaround and backreferences never do (RE2).
  - A backticked key holding a dot cannot be addressed on W&B: it reads every dot as nesting.
  - Missing keys follow MongoDB: 'summary.loss != 1' is true for runs without summary.loss.
  - Destructive commands refuse a filter that matches every run (e.g. 'name exists', 'x or not x')
    unless --all is given.
"""


@help_app.command("where", epilog=examples("wbgql help where | less"))
def where() -> None:
    """The --where language: fields, operators, values and W&B's traps."""
    sys.stdout.write(where_reference())
