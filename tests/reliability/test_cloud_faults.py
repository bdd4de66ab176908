"""Issue 8, cloud faults: fifty agents provisioned at once while both API emulators misbehave
(5xx, connections dropped before and after the work, 429 bursts with Retry-After, slow
actions, `locked` and `conflict`), with rate budgets small enough that the run must slow down
to stay within them. Afterwards the emulators' inventories must hold exactly one server, two
primary IPs, one firewall and one A + one AAAA record per agent (no duplicate, nothing leaked),
and neither emulator may have refused a single request for want of budget: the 429s the
client saw are the injected ones, not ones it earned by storming.

API layer only, as bench/provision.py: boxes are simulated (the emulator's null driver), the
box steps skipped. The counts are printed through the `figure` fixture.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from fatctl.pacing.budget import RateBudget
from fatctl.pacing.poll import Backoff
from fatctl.pacing.timing import Timing
from fatctl.services.agents.records import NewAgent
from fatctl.services.common.steps import BOX_STEPS
from fatctl.services.provision.flow import Options, provision
from tests.integration.provision.conftest import make_plane

AGENTS = 50
# 20% of requests fail at random (5xx, dropped before or after the work), writes are also
# refused now and then as `locked`/`conflict`, and actions take a while (servers longest).
HETZNER_FAULTS: dict[str, Any] = {
    "error_rate": 0.10, "drop_rate": 0.05, "drop_response_rate": 0.05,
    "locked_rate": 0.03, "conflict_rate": 0.03, "retry_after": 1, "seed": 8,
    "action_delay": 0.2, "action_delays": {"create_server": 0.8},
}  # fmt: skip
CLOUDFLARE_FAULTS: dict[str, Any] = {
    "error_rate": 0.10, "drop_rate": 0.05, "drop_response_rate": 0.05, "retry_after": 1,
    "seed": 9,
}  # fmt: skip
# Budgets (requests, window seconds) the run overdraws unless it paces itself, and the 429
# bursts (requests refused in a row, sized to each API's traffic) armed every few seconds.
HETZNER_BUDGET, HETZNER_BURST = (300, 15.0), 8
CLOUDFLARE_BUDGET, CLOUDFLARE_BURST = (40, 6.0), 3
BURST_EVERY_S = 12.0
TIMING = Timing(poll_interval=0.2, poll_max_retries=2000, retry_base=0.2, retry_cap=5.0,
                retry_attempts=12)  # fmt: skip


@contextmanager
def bursts(*emulators: tuple[Any, int]) -> Iterator[list[int]]:
    """Arm a 429 burst (with Retry-After) on every emulator every few seconds."""
    armed = [0]
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(BURST_EVERY_S):
            for emulator, size in emulators:
                emulator.set_faults(rate_limit_burst=size)
            armed[0] += 1

    thread = threading.Thread(target=loop, name="bursts", daemon=True)
    thread.start()
    try:
        yield armed
    finally:
        stop.set()
        thread.join()


def provision_all(plane: Any, names: list[str], budget: RateBudget) -> dict[str, str]:
    """Provision every agent at once (a thread each); returns the failures by agent."""
    from fatctl.infra.hcloud.engine import HcloudEngine

    def one(name: str) -> str:
        engine = HcloudEngine(plane.settings, timing=TIMING, budget=budget)
        req = NewAgent(name, f"{name}@example.com", "managed", "cx23", "fsn1", "debian-12",
                       "2026.9.6")  # fmt: skip
        opts = Options(skip=BOX_STEPS, backoff=Backoff.instant(), validate=False)
        try:
            provision(plane.db, plane.ring, plane.settings, engine, req, "faults", opts)
        except Exception as exc:  # reported per agent, then continued
            return f"{type(exc).__name__}: {exc}"
        return ""

    with ThreadPoolExecutor(len(names)) as pool:
        results = dict(zip(names, pool.map(one, names), strict=True))
    return {name: why for name, why in results.items() if why}


def tally(found: Counter[str], wanted: set[str], per_agent: int, what: str) -> tuple[int, int]:
    """(duplicates, leaks) of one kind of resource counted per agent."""
    duplicates = sum(max(0, n - per_agent) for a, n in found.items() if a in wanted)
    leaks = sum(n for a, n in found.items() if a not in wanted)
    missing = [a for a in wanted if found.get(a, 0) < per_agent]
    assert not missing, f"{what} missing for {sorted(missing)[:5]}"
    return duplicates, leaks


def audit(plane: Any, names: list[str]) -> tuple[int, int]:
    """Duplicates and leaks across the Hetzner and Cloudflare inventories."""
    inv = plane.hetzner.inventory()
    wanted = set(names)
    by_agent: Callable[[str], Counter[str]] = lambda kind: Counter(  # noqa: E731
        (r.get("labels") or {}).get("agent", "?") for r in inv[kind]
    )
    records = plane.cloudflare.records()
    per_name = Counter((r["type"], r["name"].split(".")[0]) for r in records)
    counts = [
        tally(by_agent("servers"), wanted, 1, "servers"),
        tally(by_agent("primary_ips"), wanted, 2, "primary IPs"),
        tally(by_agent("firewalls"), wanted, 1, "firewalls"),
        tally(Counter({a: n for (t, a), n in per_name.items() if t == "A"}), wanted, 1, "A"),
        tally(Counter({a: n for (t, a), n in per_name.items() if t == "AAAA"}), wanted, 1, "AAAA"),
    ]
    unassigned = [ip["name"] for ip in inv["primary_ips"] if not ip.get("assignee_id")]
    keys = len(inv["ssh_keys"]) - 1  # the one operator key, shared by every agent
    return sum(d for d, _ in counts) + max(0, keys), sum(lv for _, lv in counts) + len(unassigned)


def check_rows(plane: Any, names: list[str]) -> None:
    """The database says what the clouds hold: each agent's server and addresses."""
    from fatctl.state import repo
    from fatctl.state.db import session_scope

    servers = {s["name"]: s for s in plane.hetzner.inventory()["servers"]}
    dns = {(r["type"], r["name"]): r["content"] for r in plane.cloudflare.records()}
    with session_scope(plane.db) as session:
        for name in names:
            row = repo.get_agent(session, name)
            assert row.last_step == "infra", (name, row.last_step, row.last_error)
            assert row.server_id == str(servers[name]["id"]), name
            assert dns[("A", f"{name}.sandbox.test")] == row.ipv4, name
            assert dns[("AAAA", f"{name}.sandbox.test")] == row.ipv6, name


@pytest.fixture
def faulty_plane(
    tmp_path: Path, hetzner_emulator: Any, cloudflare_emulator: Any, monkeypatch: Any
) -> Iterator[Any]:
    from fatctl.pacing import budget as ratebudget

    # A fresh process-wide Cloudflare budget: nothing learnt from other tests' emulators.
    monkeypatch.setitem(ratebudget._BUDGETS, "cloudflare", RateBudget("cloudflare"))
    plane = make_plane(tmp_path, hetzner_emulator, cloudflare_emulator)
    plane.settings = replace(plane.settings, api_retries="12", poll_interval="0.2")
    hetzner_emulator.set_rate_limit(*HETZNER_BUDGET)
    cloudflare_emulator.set_rate_limit(*CLOUDFLARE_BUDGET)
    hetzner_emulator.set_faults(**HETZNER_FAULTS)
    cloudflare_emulator.set_faults(**CLOUDFLARE_FAULTS)
    yield plane
    plane.db.dispose()


def test_fifty_agents_under_cloud_faults(faulty_plane: Any, figure: Any) -> None:
    plane, names = faulty_plane, [f"fault-{i:02d}" for i in range(AGENTS)]
    budget = RateBudget("hetzner")
    started = time.monotonic()
    with bursts((plane.hetzner, HETZNER_BURST), (plane.cloudflare, CLOUDFLARE_BURST)) as armed:
        failed = provision_all(plane, names, budget)
        reruns = 0
        # A run that gave up (an injected 429 burst can outlast its retries) is continued, as
        # an operator would, up to three times: every continuation must converge cleanly.
        for _ in range(3):
            if not failed:
                break
            reruns += len(failed)
            failed = provision_all(plane, sorted(failed), budget)
    took = time.monotonic() - started
    plane.hetzner.clear_faults()
    plane.cloudflare.clear_faults()
    hz, cf = plane.hetzner.stats(), plane.cloudflare.stats()
    report(figure, hz, cf, budget, armed[0])
    assert not failed, failed
    check_rows(plane, names)
    duplicates, leaks = audit(plane, names)
    figure("agents provisioned under faults", AGENTS)
    figure("wall time", took, "s")
    figure("runs continued after giving up", reruns)
    figure("duplicates found", duplicates)
    figure("leaked resources", leaks)
    assert duplicates == 0 and leaks == 0
    for stats, (limit, _) in ((hz, HETZNER_BUDGET), (cf, CLOUDFLARE_BUDGET)):
        assert stats["budget"]["refused"] == 0, stats["budget"]  # never overdrawn
        assert stats["total"] > limit  # the budget had to be waited for, not just spent
        assert stats["events"].get("injected_drop_response", 0) > 0  # the duplicate-maker
    assert budget.view().throttled_s > 0  # it slowed down instead of storming


def report(
    figure: Any, hz: dict[str, Any], cf: dict[str, Any], budget: RateBudget, armed: int
) -> None:
    for cloud, stats, (limit, window) in (("hetzner", hz, HETZNER_BUDGET),
                                          ("cloudflare", cf, CLOUDFLARE_BUDGET)):  # fmt: skip
        injected = {k: v for k, v in stats["events"].items() if k.startswith("injected_")}
        refused = stats["budget"]["refused"]
        figure(f"{cloud} 429s received vs budget", f"{stats['rate_limited']} received "
               f"({refused} for want of budget, the rest injected bursts) over {stats['total']} "
               f"requests, budget {limit} per {window:.0f}s")  # fmt: skip
        figure(f"{cloud} refused for want of budget", refused)
        figure(f"{cloud} fewest tokens left", stats["budget"]["lowest_remaining"])
        figure(f"{cloud} max requests in flight", stats["max_in_flight"])
        figure(f"{cloud} faults injected", ", ".join(f"{k[9:]} {v}" for k, v in injected.items()))
    view = budget.view()
    figure("hetzner client throttled (sum over threads)", view.throttled_s, "s")
    figure("hetzner refill rate the client learnt", f"{view.refill_per_s or 0:.1f}/s")
    figure("429 bursts armed", armed)
    # The fresh path makes no lookups: these are the creates retried after a lost answer
    # that first looked for what the lost call had made (and the fallback adopt path).
    lookups = sum(
        hz["calls"].get(f"GET /v1/{k}", 0) for k in ("servers", "firewalls", "primary_ips")
    )
    figure("hetzner lookups after lost creates", lookups)
