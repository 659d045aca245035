"""Cleanup: choose runs, plan the change on pinned ids, write the ledger, act, verify, resume.

    plan.py    Selection (ids or filter, options, rails), Plan, make_plan
    ledger.py  the append-only JSONL ledger: Ledger, read_ledger, list_ledgers
    apply.py   apply_plan (ledger first, drift check, pinned batches, exact outcomes), resume
    restore.py restore_from_ledger, undo (exactly what one ledger did, taken back)
    artifacts.py plan_prune, apply_prune (artifact versions by keep-last/aliases/use/age)
    policies.py load_policy, plan_policy, apply_policy (TOML rules, one ledger)
"""

from .apply import ApplyResult, apply_plan, resume
from .artifacts import ArtifactPlan, apply_prune, plan_prune
from .ledger import Ledger, list_ledgers, read_ledger
from .plan import DEFAULT_PROTECT_TAGS, Plan, Selection, make_plan, read_ids, tally
from .policies import Policy, Rule, apply_policy, load_policy, plan_policy
from .restore import restore_from_ledger, undo

__all__ = ["ApplyResult", "ArtifactPlan", "apply_prune", "plan_prune", "DEFAULT_PROTECT_TAGS", "Ledger", "Plan", "Selection", "apply_plan", "list_ledgers",
           "make_plan", "read_ids", "read_ledger", "resume", "tally",
           "Policy", "Rule", "apply_policy", "load_policy", "plan_policy", "restore_from_ledger", "undo"]
