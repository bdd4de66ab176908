"""Print what one agent costs the Hetzner API with the hcloud engine (against the sandbox
emulator): requests and wall time for a first apply, an unchanged apply, a plan, a resize and
a destroy. Requests matter more than seconds: a project gets 3600 per hour.

    python bench/bench_infra_engine.py [--agents N]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from fatctl.config import Settings
from fatctl.domain import AgentSpec, ServicePlan
from fatctl.infra.hcloud.engine import HcloudEngine
from fatctl.pacing.retry import RateBudget
from fatctl.pacing.timing import Timing
from fatctl.sandbox.hetzner import start_emulator
from fatctl.sensitive import Sensitive


def spec(name: str, **kw: object) -> AgentSpec:
    return AgentSpec(
        name=name,
        agent_id=name,
        owner_email=f"{name}@example.com",
        plan=ServicePlan.MANAGED,
        domain="bench.test",
        **kw,  # type: ignore[arg-type]
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--agents", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        handle = start_emulator(Path(tmp) / "hz", action_delay=0.0, rate_limit=100_000)
        try:
            settings = Settings(
                data_dir=Path(tmp),
                database_url="sqlite://",
                hcloud_token=Sensitive(handle.token),
                hcloud_endpoint=handle.url,
            )
            budget = RateBudget("bench")
            engine = HcloudEngine(settings, timing=Timing.instant(), budget=budget)
            steps = (
                ("apply (new)", lambda s: engine.apply(s)),
                ("apply (unchanged)", lambda s: engine.apply(s)),
                ("plan", lambda s: engine.plan(s)),
                ("resize cx23->cx33", lambda s: engine.apply(spec(s.name, server_type="cx33"))),
                ("destroy (keep IPs)", lambda s: engine.destroy(s, release_ips=False)),
            )
            print(f"{'step':22} {'requests/agent':>15} {'ms/agent':>10}  ({args.agents} agents)")
            for label, fn in steps:
                before, started = budget.view().requests_seen, time.perf_counter()
                for i in range(args.agents):
                    fn(spec(f"bench{i}"))
                took = (time.perf_counter() - started) * 1000 / args.agents
                per = (budget.view().requests_seen - before) / args.agents
                print(f"{label:22} {per:15.1f} {took:10.1f}")
        finally:
            handle.stop()


if __name__ == "__main__":
    main()
