"""Sweep time of the fleet prober over N stand-in boxes with latency injected: prints figures.

Run from the repository root: `python -m bench.probe [--n 200 1000 5000] [--latency-ms 50]
[--concurrency 200 500] [--servers 2]`. The stand-ins (tests/integration/monitoring/
standin_fleet.py) answer `/readyz` over HTTPS on loopback, each answer delayed by the injected
latency (a box across the Internet, plus its gateway), from `--servers` processes sharing one
port. Every sweep opens a fresh TLS connection per box, as a sweep of distinct hosts does.
Figures only, no assertion: on a machine shared with other work the numbers move. For the SSH
comparison, `bench/fanout.py` measures the same fleet sizes over real sshd (~7 s for 50 hosts).
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from pathlib import Path

from fatctl.monitoring.probe import ProbeTarget, run_sweep, trust
from tests.integration.monitoring.standin_fleet import standin_fleet

DOMAIN = "fleet.test"


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, nargs="+", default=[200, 1000, 5000])
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[200, 500])
    parser.add_argument("--timeout", type=float, default=10.0)
    parser.add_argument("--servers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    print(
        f"cpus={os.cpu_count()} load={os.getloadavg()[0]:.1f} latency={args.latency_ms:g} ms "
        f"timeout={args.timeout:g} s stand-in servers={args.servers}"
    )
    agents = {f"box{i:05d}": "ok" for i in range(max(args.n))}
    with (
        tempfile.TemporaryDirectory() as tmp,
        standin_fleet(
            Path(tmp), DOMAIN, agents, delay_s=args.latency_ms / 1000, processes=args.servers
        ) as fleet,
    ):
        verify = trust(fleet.pems.ca)
        every = [ProbeTarget(a, f"{a}.{DOMAIN}", "127.0.0.1", fleet.port) for a in agents]
        for n in args.n:
            for concurrency in args.concurrency:
                for _ in range(args.rounds):
                    cpu, start = _cpu(), time.monotonic()
                    found = run_sweep(
                        every[:n], concurrency=concurrency, timeout_s=args.timeout, verify=verify
                    )
                    wall, used = time.monotonic() - start, _cpu() - cpu
                    ok = sorted(r.latency_s for r in found if r.ok)
                    p50 = ok[len(ok) // 2] * 1000 if ok else float("nan")
                    p99 = ok[int(len(ok) * 0.99)] * 1000 if ok else float("nan")
                    print(
                        f"N={n:<5} concurrency={concurrency:<4} sweep {wall:6.2f} s "
                        f"({n / wall:6.0f} boxes/s)  prober cpu {used:5.2f} s  "
                        f"ok={len(ok):<5} failed={n - len(ok):<4} "
                        f"latency p50 {p50:6.0f} ms  p99 {p99:6.0f} ms"
                    )


if __name__ == "__main__":
    main()
