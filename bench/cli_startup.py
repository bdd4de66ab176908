"""CLI start-up benchmark: `fatctl --help` and `fatctl agents list --json` over 10,000 agents.

Prints medians against `python -c pass` measured in the same run. Targets (issue 2): --help
within 150 ms of the bare interpreter; the 10,000-agent list within 400 ms of it.
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


def seed(url: str, count: int) -> None:
    from sqlalchemy import insert

    from fatctl.state import migrate
    from fatctl.state.db import make_engine
    from fatctl.state.models import Agent, Owner, utcnow

    migrate.upgrade(url)
    engine = make_engine(url)
    now = utcnow()
    with engine.begin() as conn:
        conn.execute(
            insert(Owner.__table__),
            [{"id": 1, "email": "bench@example.com", "plan": "managed", "created_at": now}],
        )  # type: ignore[attr-defined]
        blank = dict.fromkeys(
            ("primary_ipv4_id", "primary_ipv6_id", "firewall_id", "last_step", "last_error"), ""
        )
        common = dict(blank, owner_id=1, state="ready", server_type="cx23", location="fsn1",
                      image="debian-12", runtime_version="2026.9.6", engine="hcloud",
                      created_at=now, updated_at=now)  # fmt: skip
        rows = [
            dict(common, name=f"agent{i:05d}", agent_id=f"{i:016x}", server_id=str(i),
                 ipv4=f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}", ipv6=f"fd77::{i:x}")
            for i in range(count)
        ]  # fmt: skip
        conn.execute(insert(Agent.__table__), rows)  # type: ignore[attr-defined]
    engine.dispose()


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
        seed(url, args.agents)
        env = dict(os.environ, FATCTL_DATABASE_URL=url, FATCTL_DATA_DIR=str(tmp),
                   FATCTL_MASTER_KEY=base64.b64encode(os.urandom(32)).decode())  # fmt: skip
        fatctl = shutil.which("fatctl") or sys.exit("fatctl is not installed on PATH")
        base = median_ms([sys.executable, "-c", "pass"], env, args.runs)
        helpt = median_ms([fatctl, "--help"], env, args.runs)
        listt = median_ms([fatctl, "agents", "list", "--json"], env, args.runs)
        print(f"python -c pass             median {base:7.1f} ms")
        print(
            f"fatctl --help              median {helpt:7.1f} ms  (+{helpt - base:.1f} ms;", end=""
        )
        print(" target +150)")
        print(
            f"fatctl agents list --json  median {listt:7.1f} ms  (+{listt - base:.1f} ms;", end=""
        )
        print(f" target +400; {args.agents} agents)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
