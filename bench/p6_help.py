"""P6: cold start of `wbgql --help` and `wbgql runs list --help` — a fresh interpreter each time,
median of --repeat runs.

Also timed, as floors: `python -c pass` (the interpreter alone) and `python -c "import wandb_gql"`.
One untimed warm-up run of each first (so .pyc files and the OS page cache are warm, as they are
for anyone who runs the command twice); the .pyc go to a temporary PYTHONPYCACHEPREFIX, so nothing
is written into src/. Also shown: `wbgql --help` with PYTHONDONTWRITEBYTECODE=1 (the editable
install's modules compiled on every start, as in a sandbox that sets it). Targets: wbgql --help <= 0.25 s,
wbgql runs list --help <= 0.3 s (it parses the global options on the way: no pydantic may load).

    /work/venv/bin/python bench/p6_help.py [--repeat 10]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import tempfile
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import BIN, median  # noqa: E402

TARGET = 0.25
TARGET_COMMAND = 0.3


def _env(pyc: bool, prefix: str) -> dict[str, str]:
    """pyc=True: bytecode cached as usual, but under a temporary PYTHONPYCACHEPREFIX (nothing is
    written into the source tree); pyc=False: PYTHONDONTWRITEBYTECODE=1, so modules without a
    shipped .pyc (this editable install's own) are compiled on every start."""
    env = dict(os.environ)
    if pyc:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = prefix
    else:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        env.pop("PYTHONPYCACHEPREFIX", None)
    return env


def _time(cmd: list[str], repeat: int, env: dict[str, str]) -> list[float]:
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, env=env)  # warm-up (writes the .pyc)
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, env=env)
        times.append(time.perf_counter() - started)
    return times


def bench(repeat: int = 10) -> dict[str, float]:
    python = str(BIN / "python")
    commands = {
        "python -c pass": ([python, "-c", "pass"], True),
        "python -c 'import wandb_gql'": ([python, "-c", "import wandb_gql"], True),
        "wbgql --help": ([str(BIN / "wbgql"), "--help"], True),
        "wbgql runs list --help": ([str(BIN / "wbgql"), "runs", "list", "--help"], True),
        "wbgql --help, no .pyc": ([str(BIN / "wbgql"), "--help"], False),
    }
    result: dict[str, float] = {}
    prefix = tempfile.mkdtemp(prefix="wbgql-pyc-")
    for label, (cmd, pyc) in commands.items():
        times = _time(cmd, repeat, _env(pyc, prefix))
        result[label] = median(times)
        print(f"P6 {label:30s} median {median(times):.3f} s  (min {min(times):.3f}, max {max(times):.3f},"
              f" n={repeat})", flush=True)
    shutil.rmtree(prefix, ignore_errors=True)
    help_s = result["wbgql --help"]
    print(f"P6 wbgql --help {help_s:.3f} s (target <= {TARGET:g} s) {'OK' if help_s <= TARGET else 'MISSED'};"
          f" above the bare interpreter: {help_s - result['python -c pass']:.3f} s", flush=True)
    command_s = result["wbgql runs list --help"]
    print(f"P6 wbgql runs list --help {command_s:.3f} s (target <= {TARGET_COMMAND:g} s) "
          f"{'OK' if command_s <= TARGET_COMMAND else 'MISSED'}", flush=True)
    return {"help_s": help_s, "runs_list_help_s": command_s, "python_s": result["python -c pass"],
            "import_s": result["python -c 'import wandb_gql'"], "help_nopyc_s": result["wbgql --help, no .pyc"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=10)
    bench(parser.parse_args().repeat)


if __name__ == "__main__":
    main()
