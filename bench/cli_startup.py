"""CLI start-up benchmark: `fatctl --help`, `fatctl version`, a shell-completion call and
`fatctl agents list --json`, over a state database of 10,000 agents (SQLite).

Prints each command's median wall time over N runs, minus the median of a bare `python -c pass`
measured in the same run, beside its target: --help +150 ms (issue 2), completion +100 ms and
the 10,000-agent listing +400 ms (issue 21); `version` has none of its own and is shown against
--help's, which it means to match. Asserts nothing. When a figure misses, `python -X importtime
-m fatctl ARGS` shows which import costs it.

Run: python bench/cli_startup.py [--agents 10000] [--runs 15]
"""

from __future__ import annotations

import argparse
import base64
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fatctl.state import migrate
from tests.fixtures.fleet_rows import seed_agents

# What bash's completion function runs for `fatctl status agent0123<TAB>`.
COMPLETE = {"_FATCTL_COMPLETE": "complete_bash", "COMP_WORDS": "fatctl status agent0123",
            "COMP_CWORD": "2"}  # fmt: skip
# (label, arguments, extra environment, target in ms over the bare interpreter)
CASES: tuple[tuple[str, tuple[str, ...], dict[str, str], float], ...] = (
    ("fatctl --help", ("--help",), {}, 150),
    ("fatctl version", ("version",), {}, 150),
    ("completion (status agent0123)", (), COMPLETE, 100),
    ("fatctl agents list --json", ("agents", "list", "--json"), {}, 400),
)


def median_ms(argv: list[str], env: dict[str, str], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, check=True)
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--agents", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="fatctl-bench-"))
    try:
        url = f"sqlite:///{tmp / 'state.sqlite'}"
        migrate.upgrade(url)
        seed_agents(url, args.agents)
        env = dict(os.environ, FATCTL_DATABASE_URL=url, FATCTL_DATA_DIR=str(tmp),
                   FATCTL_MASTER_KEY=base64.b64encode(os.urandom(32)).decode())  # fmt: skip
        env.pop("FATCTL_CONTEXT", None)
        fatctl = shutil.which("fatctl") or sys.exit("fatctl is not installed on PATH")
        base = median_ms([sys.executable, "-c", "pass"], env, args.runs)
        print(f"{'python -c pass':32} median {base:7.1f} ms  ({args.runs} runs)")
        for label, argv, extra, target in CASES:
            took = median_ms([fatctl, *argv], {**env, **extra}, args.runs) - base
            verdict = "ok" if took <= target else "MISSED"
            print(f"{label:32} median {took + base:7.1f} ms  (+{took:.1f} ms; target "
                  f"+{target:.0f}: {verdict})")  # fmt: skip
        print(f"({args.agents} agents in the SQLite database)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
