"""P8: peak memory of listing many runs stays flat — `wbgql runs list` over 100k runs vs 10k.

Peak RSS (ru_maxrss of the wbgql process alone, from wait4) of:
    table, piped        wbgql runs list bench/p10k -f table --all                  > /dev/null
    table, terminal     the same with stdout on a pseudo-terminal (aligned, cut to 120 columns)
    csv, every key      wbgql runs list bench/p10k -f csv --config-keys '*' --summary-keys '*' > /dev/null
and, as the floor, `wbgql runs count` (the interpreter, the client and its libraries).

Flat means the 100k figure is close to the 10k one: no writer holds every run (before, the
table and csv with '*' keys did: 811 MB for 100k runs). The data sets are made once
(bench/p10k with 10,000 and with 100,000 runs, in two SQLite files) and reused.

    /work/venv/bin/python bench/p8_table_memory.py [--sizes 10000,100000]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import BIN, DEFAULT_DB, PATH, server_process  # noqa: E402

CASES = {
    "count (floor)": (["runs", "count", PATH], "null"),
    "table, piped": (["runs", "list", PATH, "-f", "table", "--all"], "null"),
    "table, terminal": (["runs", "list", PATH, "-f", "table", "--all"], "pty"),
    "csv, every key": (["runs", "list", PATH, "-f", "csv", "--config-keys", "*", "--summary-keys", "*"], "null"),
}


def _drain(fd: int) -> None:
    while True:
        try:
            if not os.read(fd, 1 << 16):
                return
        except OSError:
            return


def peak_rss(args: list[str], stdout: str, env: dict[str, str]) -> tuple[float, float]:
    """(peak RSS in MB, wall seconds) of one wbgql run."""
    started = time.perf_counter()
    if stdout == "pty":
        import pty

        master, slave = pty.openpty()
        reader = threading.Thread(target=_drain, args=(master,), daemon=True)
        reader.start()
        proc = subprocess.Popen([str(BIN / "wbgql"), *args], stdout=slave, stderr=subprocess.DEVNULL,
                                env={**env, "COLUMNS": "120", "TERM": "xterm"})
        os.close(slave)
    else:
        proc = subprocess.Popen([str(BIN / "wbgql"), *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if stdout == "pty":
        reader.join(5)
        os.close(master)
    if proc.returncode != 0:
        raise RuntimeError(f"wbgql {' '.join(args)} exited {proc.returncode}")
    return usage.ru_maxrss / 1024, time.perf_counter() - started


def bench(sizes: list[int]) -> dict[str, dict[int, float]]:
    figures: dict[str, dict[int, float]] = {label: {} for label in CASES}
    for n in sizes:
        db = DEFAULT_DB if n == 10_000 else DEFAULT_DB.with_name(f"p{n // 1000}k.db")
        # In a process of its own: wait4's peak RSS of a child counts what it inherited from this
        # process at fork, and building 100k rows here would be counted in every figure.
        subprocess.run([sys.executable, str(Path(__file__).with_name("make_data.py")), "--db", str(db),
                        "--runs", str(n)], check=True)
        with server_process(db) as (base_url, api_key):
            env = {**os.environ, "WANDB_BASE_URL": base_url, "WANDB_API_KEY": api_key}
            for label, (args, stdout) in CASES.items():
                mb, wall = peak_rss(args, stdout, env)
                figures[label][n] = mb
                print(f"P8 {label:16s} {n:>7,} runs: peak RSS {mb:6.1f} MB ({wall:.1f} s)", flush=True)
    if len(sizes) > 1:
        small, large = sizes[0], sizes[-1]
        for label, by_n in figures.items():
            print(f"P8 {label:16s} {large:,} vs {small:,} runs: {by_n[large]:.1f} MB vs {by_n[small]:.1f} MB "
                  f"(x{by_n[large] / by_n[small]:.2f})", flush=True)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10000,100000", help="run counts, comma-separated")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    figures = bench([int(x) for x in args.sizes.split(",")])
    if args.json:
        import json

        args.json.write_text(json.dumps(figures))


if __name__ == "__main__":
    main()
