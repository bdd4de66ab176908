"""`fatctl reconcile` asking real boxes (real sshd hosts, pinned host keys, the rollout
harness's gateway and health script) how they are, all at once: a healthy box on its recorded
version is clean; a box on another version is drift; a stopped gateway is unhealthy; a box
whose sshd is down is unreachable. No cloud settings: only the database and the boxes (so no
run here is called clean: the clouds were not looked at)."""

from __future__ import annotations

import json
import time
from typing import Any

from fatctl.state import repo
from fatctl.state.db import session_scope
from tests.fixtures.cli import fatctl_env
from tests.integration.reconcile.test_reconcile_cli import fatctl
from tests.integration.rollout import harness


def record_version(engine: Any, name: str, version: str) -> None:
    with session_scope(engine) as session:
        agent = repo.get_agent(session, name)
        agent.runtime_version = version
        session.add(agent)


def test_box_health_findings(box_fleet: Any, figure: Any) -> None:
    box = box_fleet(4)
    for name in ("box1", "box3", "box4"):
        record_version(box.fleet.engine, name, harness.OLD)  # box2 stays on NEW: drift
    harness.stop_gateway(box.hosts[2])
    box.hosts[3].stop()
    env = fatctl_env(box.env)

    started = time.monotonic()
    doc = json.loads(fatctl(env, "reconcile", "--json", code=1).stdout)
    figure("reconcile with health, 4 boxes (CLI wall time)", time.monotonic() - started, "s")
    found = {(f["kind"], f["resource"], f["agent"]): f for f in doc["findings"]}
    assert set(found) == {
        ("drift", "runtime", "box2"),
        ("unhealthy", "box", "box3"),
        ("unhealthy", "box", "box4"),
    }, doc
    assert found[("drift", "runtime", "box2")]["detail"] == (
        f"box runs {harness.OLD}, database says {harness.NEW}"
    )
    assert "gateway not running" in found[("unhealthy", "box", "box3")]["detail"]
    assert found[("unhealthy", "box", "box4")]["detail"].startswith("unreachable: ")
    assert not any(f["fixable"] for f in doc["findings"])  # nothing on a box is automatic

    # box1 is healthy, but without cloud settings the fleet is never called clean (exit 1)
    box1 = json.loads(fatctl(env, "reconcile", "--json", "--agents", "box1", code=1).stdout)
    assert box1 == {"clean": False, "findings": [], "fixes": [], "not_checked": [
        "Hetzner (HCLOUD_TOKEN unset)", "Cloudflare (CLOUDFLARE_API_TOKEN or FATCTL_DOMAIN unset)"
    ]}  # fmt: skip
    fixed = json.loads(fatctl(env, "reconcile", "--json", "--fix", code=1).stdout)
    assert fixed["fixes"] == [] and len(fixed["findings"]) == 3
    skipped = fatctl(env, "reconcile", "--no-health", code=1).stdout
    assert "not checked: Hetzner" in skipped and "box health (--no-health)" in skipped
    assert "reconcile: not clean: could not check Hetzner" in skipped
