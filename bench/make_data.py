"""Create (or reuse) the benchmark data set: project bench/p10k with 10,000 runs, ~20 config and
~30 summary keys each, inserted straight into SQLite.

    /work/venv/bin/python bench/make_data.py [--db PATH] [--runs N]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import DEFAULT_DB, N_RUNS, make_data  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", type=Path, default=DEFAULT_DB)
    parser.add_argument("--runs", type=int, default=N_RUNS)
    args = parser.parse_args()
    print(make_data(args.db, args.runs))


if __name__ == "__main__":
    main()
