"""Cleanup: choose runs, plan the change on pinned ids, then act (the engine grows here:
plan.py today; the ledger, apply, restore and retention policies next)."""

from .plan import Plan, Selection, make_plan, read_ids, tally

__all__ = ["Plan", "Selection", "make_plan", "read_ids", "tally"]
