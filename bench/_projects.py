"""`bench/provision.py --projects N`: provisioning over N Hetzner projects, each budget its own.

Each project is a Hetzner emulator with its own token and a small rate budget, so the pacing
binds: the figures show, per project, the agents placed there, the calls each provision cost
at its project, the client's own budget (requests, seconds paced) and what the emulator saw
(requests refused with 429: none when the client kept to the budget; the fewest tokens left).
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from bench.provision import api_calls, upload_fleet_keys
from fatctl.config import HcloudProject
from fatctl.infra import make_engine
from fatctl.pacing.budget import budget_for
from fatctl.pacing.poll import Backoff
from fatctl.sandbox.cloudflare import start_cloudflare_emulator
from fatctl.sandbox.hetzner import start_emulator
from fatctl.sensitive import Sensitive
from fatctl.services.agents.records import NewAgent
from fatctl.services.common.steps import BOX_STEPS
from fatctl.services.provision.flow import Options, provision
from fatctl.state import repo
from fatctl.state.db import session_scope
from tests.integration.provision.conftest import make_plane


def run_projects(args: argparse.Namespace) -> None:
    capacity, window = (float(x) for x in args.project_rate.split("/"))
    agents = args.agents if args.agents != 100 else 10  # the default suits the one-project run
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        hzs = [start_emulator(root / f"hz{i}") for i in range(args.projects)]
        cf = start_cloudflare_emulator(root / "cf", zones=("sandbox.test",), rate_limit=10_000_000)
        try:
            for hz in hzs:
                hz.set_rate_limit(int(capacity), window)
            plane = make_plane(root, hzs[0], cf)
            cap = math.ceil(agents / len(hzs))
            projects = tuple(
                HcloudProject("" if i == 0 else f"p{i + 1}", Sensitive(hz.token), hz.url, cap)
                for i, hz in enumerate(hzs)
            )
            plane.settings = replace(plane.settings, hcloud_projects=projects,
                                     cloudflare_zone_id=cf.zone_id("sandbox.test"))  # fmt: skip
            upload_fleet_keys(plane)  # as `keys add` does: into every project of the fleet
            _report(plane, hzs, projects, agents, f"{int(capacity)} per {window:g} s")
        finally:
            for hz in hzs:
                hz.stop()
            cf.stop()


def _report(plane: Any, hzs: list[Any], projects: tuple[HcloudProject, ...], agents: int,
            rate: str) -> None:  # fmt: skip
    infra = make_engine(plane.settings, "hcloud")
    by_project = {p.name: hz for p, hz in zip(projects, hzs, strict=True)}
    print(f"{len(projects)} Hetzner projects, budget {rate} each, max_servers "
          f"{projects[0].max_servers} each; agents provisioned one at a time")  # fmt: skip
    print(f"{'agent':10} {'project':8} {'hetzner':>8} {'cloudflare':>10} {'seconds':>8}")
    t0 = time.perf_counter()
    for i in range(agents):
        name = f"prj-{i:03d}"
        for hz in (*hzs, plane.cloudflare):
            hz.reset_stats()
        req = NewAgent(name, f"{name}@example.com", "managed", "cx23", "fsn1", "debian-12",
                       "2026.9.6")  # fmt: skip
        started = time.perf_counter()
        opts = Options(skip=BOX_STEPS, backoff=Backoff.instant())
        provision(plane.db, plane.ring, plane.settings, infra, req, "bench", opts)
        with session_scope(plane.db) as session:
            project = repo.get_agent(session, name).project
        hz_calls, cf_calls = (
            api_calls(by_project[project].stats()),
            api_calls(plane.cloudflare.stats()),
        )
        took = time.perf_counter() - started
        print(f"{name:10} {project or 'default':8} {hz_calls:8d} {cf_calls:10d} {took:8.2f}")
    print(f"all {agents} agents in {time.perf_counter() - t0:.1f}s")
    print(f"{'project':8} {'agents':>6} {'client requests':>15} {'paced':>6} {'waited s':>8} "
          f"{'emulator 429s':>13} {'fewest left':>11}")  # fmt: skip
    for project, hz in by_project.items():
        view = budget_for(f"hetzner:{project}" if project else "hetzner").view()
        budget = hz.stats()["budget"]
        placed = sum(1 for s in hz.inventory()["servers"])
        print(f"{project or 'default':8} {placed:6d} {view.requests_seen:15d} "
              f"{view.paced_requests:6d} {view.throttled_s:8.1f} {budget['refused']:13d} "
              f"{budget['lowest_remaining']:11}")  # fmt: skip
