"""Fan-out of a trivial command to N real sshd hosts (default N = 10 and 50): prints wall times.

Run as root from the repository root: `python -m bench.fanout [--n 10 50] [--parallel 50]`.
Each round connects afresh (handshake + auth + one command per host), then runs a second
command over the already open connections, so both costs are visible. Figures only: no
assertion on time; see DESIGN.md for the expected order of magnitude (~7 s for 50 hosts).
"""

from __future__ import annotations

import argparse
import os
import time

from fatctl.remote.fanout import fan_out
from fatctl.remote.runner import Pool
from tests.fixtures.sshd import sshd_fleet, throwaway_identity


def one_round(targets: list, parallel: int) -> tuple[float, float, int]:
    with Pool() as pool:
        start = time.monotonic()
        cold = fan_out(targets, "true", parallel=parallel, pool=pool)
        cold_s = time.monotonic() - start
        start = time.monotonic()
        warm = fan_out(targets, "echo ok", parallel=parallel, pool=pool)
        warm_s = time.monotonic() - start
    failed = sum(not r.ok for r in [*cold, *warm])
    return cold_s, warm_s, failed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, nargs="+", default=[10, 50])
    parser.add_argument("--parallel", type=int, default=50)
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("bench/fanout.py needs root (throwaway users, mount namespaces)")
    print(f"cpus={os.cpu_count()} parallel={args.parallel}")
    with throwaway_identity() as identity, sshd_fleet(identity) as make:
        hosts = make(max(args.n))
        for n in args.n:
            targets = [h.target(connect_timeout=30.0) for h in hosts[:n]]
            cold, warm, failed = one_round(targets, min(args.parallel, n))
            print(
                f"N={n:<3} connect+run: {cold:6.2f}s  ({cold / n * 1000:6.1f} ms/host)   "
                f"reused connections: {warm:5.2f}s   failures={failed}"
            )


if __name__ == "__main__":
    main()
