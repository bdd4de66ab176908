"""Print what provisioning costs the control plane, against the sandbox's API emulators (API
layer only: NullBoxDriver, the box steps skipped): per agent, the Hetzner and Cloudflare API
calls (action polls excluded) and the control-plane time.

Two phases: agents one at a time (emulator stats reset around each, so calls are exact per
agent), then N agents at once (wall time per agent under concurrency). The emulators' rate
budgets are raised for the bench: it counts calls, it does not test throttling.

    python bench/provision.py [--agents 100] [--workers N] [--validate]
    python bench/provision.py --projects 2 [--agents 10] [--project-rate 50/10]
Targets (issue 5): <= 10 Hetzner + 3 Cloudflare calls per provision, < 1 s per agent at N=100.
With --projects N (issue 17) the fleet spans N Hetzner projects, one emulator each with its own
token and a deliberately small rate budget (requests per seconds): agents are placed by room
(max_servers = agents / N each), provisioned one at a time through the project router, and the
figures show each project's calls, the client's pacing and the emulator's refusals (0 when the
budget was respected).
The operator's key is uploaded before the first agent, as `fatctl keys add` does when a Hetzner
token is set; every agent, in this or any process, creates its box from the key's recorded id.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fatctl.pacing.poll import Backoff
from fatctl.sandbox.cloudflare import start_cloudflare_emulator
from fatctl.sandbox.hetzner import start_emulator
from fatctl.services.agents.records import NewAgent
from fatctl.services.common.steps import BOX_STEPS
from fatctl.services.provision.flow import Options, provision
from tests.integration.provision.conftest import make_plane


def upload_fleet_keys(plane: Any) -> None:
    """As `fatctl keys add` does with a Hetzner token set: the key is at Hetzner before any
    provision, so every agent (the first too) costs the same calls."""
    from sqlmodel import select

    from fatctl.services.access.fleet_key_ids import upload_added
    from fatctl.state.db import session_scope
    from fatctl.state.models import SshKey

    with session_scope(plane.db) as session:
        fingerprints = [k.fingerprint for k in session.exec(select(SshKey)).all()]
    for fingerprint in fingerprints:
        upload_added(plane.settings, plane.db, fingerprint)


def api_calls(stats: dict[str, Any]) -> int:
    """Calls minus action polls (GETs of an action: the SDK's waiting, not work)."""
    calls = stats["calls"]
    return sum(n for k, n in calls.items() if not (k.startswith("GET ") and "/actions/" in k))


def one(plane: Any, name: str, validate: bool) -> float:
    req = NewAgent(name, f"{name}@example.com", "managed", "cx23", "fsn1", "debian-12", "2026.9.6")
    opts = Options(skip=BOX_STEPS, backoff=Backoff.instant(), validate=validate)
    t0 = time.perf_counter()
    provision(plane.db, plane.ring, plane.settings, plane.infra(), req, "bench", opts)
    return time.perf_counter() - t0


def sequential(plane: Any, n: int, validate: bool) -> list[tuple[str, int, int, float]]:
    rows = []
    for i in range(n):
        name = f"seq-{i:03d}"
        plane.hetzner.reset_stats()
        plane.cloudflare.reset_stats()
        took = one(plane, name, validate)
        hz, cf = api_calls(plane.hetzner.stats()), api_calls(plane.cloudflare.stats())
        rows.append((name, hz, cf, took))
    return rows


def widen_pool(db: Any, workers: int) -> None:
    """One pooled connection per worker: with the default 5+10, a hundred runs queue for a
    connection (and time out) while SQLite's write lock is what they should be waiting on."""
    from sqlalchemy.pool import QueuePool

    old = db.pool
    db.pool = QueuePool(old._creator, pool_size=workers, max_overflow=workers, timeout=600,
                        _dispatch=old.dispatch, dialect=old._dialect)  # fmt: skip
    old.dispose()


def concurrent(plane: Any, n: int, workers: int, validate: bool) -> tuple[list[float], float]:
    widen_pool(plane.db, workers)
    plane.hetzner.reset_stats()
    plane.cloudflare.reset_stats()
    t0 = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        times = list(pool.map(lambda i: one(plane, f"par-{i:03d}", validate), range(n)))
    return times, time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--agents", type=int, default=100)
    parser.add_argument("--workers", type=int, default=0, help="default: one per agent")
    parser.add_argument("--validate", action="store_true", help="run the user-data validators")
    parser.add_argument("--projects", type=int, default=1, help="Hetzner projects (issue 17)")
    parser.add_argument("--project-rate", default="50/10", help="each project's requests/seconds")
    args = parser.parse_args()
    if args.projects > 1:
        from bench._projects import run_projects

        run_projects(args)
        return
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        hz = start_emulator(root / "hz", rate_limit=10_000_000)
        # A Pro zone: a Free one holds 200 records, two runs of 100 agents' A and AAAA.
        cf = start_cloudflare_emulator(root / "cf", zones=("sandbox.test",), rate_limit=10_000_000,
                                       zone_plans={"sandbox.test": "pro"})  # fmt: skip
        try:
            plane = make_plane(root, hz, cf)
            # As `fatctl sandbox up` writes it to sandbox.env: no zone lookup in any process.
            zone = cf.zone_id("sandbox.test")
            plane.settings = replace(plane.settings, cloudflare_zone_id=zone)
            upload_fleet_keys(plane)
            report(plane, args)
        finally:
            hz.stop()
            cf.stop()


def report(plane: Any, args: argparse.Namespace) -> None:
    rows = sequential(plane, args.agents, args.validate)
    print(f"{'agent':10} {'hetzner':>8} {'cloudflare':>10} {'seconds':>8}")
    for name, hz, cf, took in rows:
        print(f"{name:10} {hz:8d} {cf:10d} {took:8.3f}")
    hzs, cfs, secs = [r[1] for r in rows], [r[2] for r in rows], [r[3] for r in rows]
    print(f"sequential: hetzner calls max {max(hzs)} mean {statistics.mean(hzs):.1f}; "
          f"cloudflare max {max(cfs)} mean {statistics.mean(cfs):.1f}; "
          f"time median {statistics.median(secs):.3f}s max {max(secs):.3f}s")  # fmt: skip
    workers = args.workers or args.agents
    times, wall = concurrent(plane, args.agents, workers, args.validate)
    hz, cf = api_calls(plane.hetzner.stats()), api_calls(plane.cloudflare.stats())
    print(f"concurrent N={args.agents} workers={workers}: wall {wall:.1f}s, "
          f"{wall / args.agents:.3f}s of wall per agent, per-run median "
          f"{statistics.median(times):.2f}s max {max(times):.2f}s; calls per agent: hetzner "
          f"{hz / args.agents:.2f}, cloudflare {cf / args.agents:.2f}")  # fmt: skip
    print(f"validate={'on' if args.validate else 'off'}; box steps skipped (API layer only); "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")  # fmt: skip


if __name__ == "__main__":
    main()
