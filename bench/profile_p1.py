"""Where P1's time goes: the server under cProfile in its own process, the client under cProfile
here; prints the top functions of each (by own time) after --runs listings of 10,000 runs.

    /work/venv/bin/python bench/profile_p1.py [--db PATH] [--runs 3] [--top 20]

cProfile inflates per-call overhead (graphql-core's many small calls most of all): read the
shares, not the seconds.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import secrets
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import DEFAULT_DB, _free_port, make_data  # noqa: E402
from p1_list_runs import run_client  # noqa: E402

SERVER = """
import cProfile, os, signal, sys
from wandb_gql.server.app import Server
from wandb_gql.server.local import open_store, serve
db, port, key, out = sys.argv[1:5]
prof = cProfile.Profile()
def stop(*_):
    prof.disable(); prof.dump_stats(out); os._exit(0)
signal.signal(signal.SIGTERM, stop)
server = Server(open_store(db), ephemeral_keys=(key,))
prof.enable()
serve("127.0.0.1", int(port), server)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", type=Path, default=DEFAULT_DB)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--top", type=int, default=20)
    args = parser.parse_args()
    db = make_data(args.db)
    out = Path(tempfile.mkdtemp(prefix="wbgql-prof-"))
    port, key = _free_port(), "local-" + secrets.token_hex(24)
    proc = subprocess.Popen([sys.executable, "-c", SERVER, str(db), str(port), key, str(out / "server.prof")])
    base_url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                urllib.request.urlopen(base_url + "/healthz", timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
        run_client(base_url, key)  # warm-up
        prof = cProfile.Profile()
        prof.enable()
        for _ in range(args.runs):
            print(f"client run: {run_client(base_url, key)[0]:.3f} s (under cProfile)", flush=True)
        prof.disable()
        prof.dump_stats(out / "client.prof")
    finally:
        proc.terminate()
        proc.wait(10)
    for name in ("server", "client"):
        print(f"\n===== {name} ({out / (name + '.prof')})")
        pstats.Stats(str(out / f"{name}.prof")).sort_stats("tottime").print_stats(args.top)


if __name__ == "__main__":
    main()
