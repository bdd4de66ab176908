"""Rollouts over real SSH on real sshd hosts running the harness runtime (see harness.py)."""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Callable
from typing import Any

from sqlmodel import col, select

from fatctl.domain import RolloutPolicy
from fatctl.pacing.poll import Poll
from fatctl.services.rollout import engine as rollout
from fatctl.state.db import session_scope
from fatctl.state.models import Agent, RolloutStep
from tests.integration.rollout import harness
from tests.integration.rollout.conftest import BoxFleet
from tests.integration.rollout.harness import NEW, OLD


def _run(box: BoxFleet, seen: list[tuple[str, dict[str, Any]]]) -> rollout.Run:
    def event(kind: str, **fields: Any) -> None:
        seen.append((kind, fields))

    f = box.fleet
    return rollout.Run(f.engine, f.settings, box.layout, "test@ci", event, poll=Poll(0.2))


def _phases(box: BoxFleet) -> dict[str, str]:
    with session_scope(box.fleet.engine) as session:
        rows = session.exec(
            select(Agent.name, RolloutStep.phase).join(
                RolloutStep, col(RolloutStep.agent_pk) == col(Agent.id)
            )
        ).all()
    return {str(name): str(phase) for name, phase in rows}


def _healthy(box: BoxFleet) -> dict[str, bool]:
    from fatctl.remote.commands.upgrade import health
    from fatctl.remote.fanout import fan_out

    results = fan_out([h.target() for h in box.hosts], health(box.layout))
    return {r.name: r.ok for r in results}


def test_good_version_rolls_across_all_hosts(box_fleet: Callable[[int], BoxFleet]) -> None:
    box = box_fleet(5)
    for host in box.hosts:  # an older install the retention count must prune
        opt = host.home(host.identity.operator) / "box" / "opt"
        shutil.copytree(opt / OLD, opt / "2026.9.4", symlinks=True)
        os.utime(opt / "2026.9.4" / ".installed", (time.time() - 3600,) * 2)
        harness.chown_tree(opt / "2026.9.4", host.identity.operator)
    seen: list[tuple[str, dict[str, Any]]] = []
    policy = RolloutPolicy(canary=1, batch=2, health_timeout_s=10, keep_versions=2)
    report = rollout.start(_run(box, seen), [h.target() for h in box.hosts], NEW, policy)

    assert report.state == "completed", report.rows
    assert {r["phase"] for r in report.rows} == {"succeeded"}
    assert {(r["from"], r["to"]) for r in report.rows} == {(OLD, NEW)}
    waves = [f["hosts"] for k, f in seen if k == "wave.start"]
    notes = [f["notes"] for k, f in seen if k == "host.done"]
    assert sorted(f["progress"] for k, f in seen if k == "host.done") == [
        f"{i}/5" for i in range(1, 6)
    ]
    https = "https not checked: no domain configured"
    assert notes == [[https, "pruned 2026.9.4"]] * 5
    assert waves == [["box1"], ["box2", "box3"], ["box4", "box5"]]
    for host in box.hosts:
        assert harness.current(host) == NEW
        assert harness.events(host) == [f"start {OLD}", f"install {NEW}", f"start {NEW}"]
        opt = host.home(host.identity.operator) / "box" / "opt"
        assert sorted(p.name for p in opt.iterdir()) == [OLD, NEW, "current"]
    assert set(_healthy(box).values()) == {True}
    with session_scope(box.fleet.engine) as session:
        assert {a.runtime_version for a in session.exec(select(Agent)).all()} == {NEW}


def test_dead_host_mid_batch_is_reported_and_the_rest_continue(
    box_fleet: Callable[[int], BoxFleet],
) -> None:
    box = box_fleet(4)
    victim = box.hosts[2]
    (victim.home(victim.identity.operator) / "box" / "slow-install").write_text("20")
    policy = RolloutPolicy(canary=1, batch=3, max_failures=1, health_timeout_s=10)
    seen: list[tuple[str, dict[str, Any]]] = []
    result: list[rollout.Report] = []
    worker = threading.Thread(
        target=lambda: result.append(
            rollout.start(_run(box, seen), [h.target() for h in box.hosts], NEW, policy)
        )
    )
    worker.start()
    deadline = time.monotonic() + 30
    while _phases(box).get(victim.name) != "running" and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)  # inside its (slow) install now
    started = time.monotonic()
    victim.stop()
    worker.join(timeout=60)
    assert not worker.is_alive()
    assert time.monotonic() - started < 30  # bounded by timeouts, not waiting on the dead host
    phases = {r["agent"]: r["phase"] for r in result[0].rows}
    assert phases == {
        "box1": "succeeded",
        "box2": "succeeded",
        "box3": "unreachable",
        "box4": "succeeded",
    }
    assert result[0].state == "completed"
    assert harness.current(victim) == OLD
    assert harness.events(victim) == [f"start {OLD}"]  # died before its install


def test_abort_rolls_upgraded_hosts_back(box_fleet: Callable[[int], BoxFleet]) -> None:
    box = box_fleet(3)
    policy = RolloutPolicy(canary=1, batch=5, health_timeout_s=10)
    seen: list[tuple[str, dict[str, Any]]] = []
    run = _run(box, seen)
    done = rollout.start(run, [h.target() for h in box.hosts], NEW, policy)
    assert done.state == "completed"

    report = rollout.abort(_run(box, seen), done.rollout_id)
    assert report.state == "aborted"
    assert {r["phase"] for r in report.rows} == {"rolled_back"}
    for host in box.hosts:
        assert harness.current(host) == OLD
        assert harness.events(host)[-1] == f"start {OLD}"
    assert set(_healthy(box).values()) == {True}
    with session_scope(box.fleet.engine) as session:
        assert {a.runtime_version for a in session.exec(select(Agent)).all()} == {OLD}


def test_a_box_held_by_another_run_is_not_touched(box_fleet: Callable[[int], BoxFleet]) -> None:
    from fatctl.state.leases import lease

    box = box_fleet(3)
    policy = RolloutPolicy(canary=1, batch=5, max_failures=1, health_timeout_s=10)
    seen: list[tuple[str, dict[str, Any]]] = []
    with lease(box.fleet.engine, "agent:box2"):
        report = rollout.start(_run(box, seen), [h.target() for h in box.hosts], NEW, policy)
    rows = {r["agent"]: r for r in report.rows}
    assert rows["box2"]["phase"] == "failed" and "busy" in rows["box2"]["error"]
    assert (rows["box1"]["phase"], rows["box3"]["phase"]) == ("succeeded", "succeeded")
    assert harness.events(box.hosts[1]) == [f"start {OLD}"]
    assert harness.current(box.hosts[1]) == OLD


def test_abort_keeps_the_new_version_when_the_old_one_no_longer_serves(
    box_fleet: Callable[[int], BoxFleet],
) -> None:
    box = box_fleet(2)
    policy = RolloutPolicy(canary=1, batch=5, health_timeout_s=3)
    seen: list[tuple[str, dict[str, Any]]] = []
    done = rollout.start(_run(box, seen), [h.target() for h in box.hosts], NEW, policy)
    assert done.state == "completed"
    broken = box.hosts[1]  # its old version now exits at once (as OpenClaw does on a newer schema)
    gw = broken.home(broken.identity.operator) / "box" / "opt" / OLD / "bin" / "openclaw"
    gw.write_text(gw.read_text().replace("exec sleep 100000", "exit 78"))

    report = rollout.abort(_run(box, seen), done.rollout_id)
    rows = {r["agent"]: r for r in report.rows}
    assert rows["box1"]["phase"] == "rolled_back"
    assert rows["box2"]["phase"] == "succeeded"
    assert f"kept {NEW}" in rows["box2"]["error"]
    assert (harness.current(box.hosts[0]), harness.current(broken)) == (OLD, NEW)
    assert harness.events(broken)[-2:] == [f"start {OLD}", f"start {NEW}"]
    assert set(_healthy(box).values()) == {True}


def test_a_failed_install_names_its_stage_and_leaves_the_box_serving(
    box_fleet: Callable[[int], BoxFleet],
) -> None:
    """Install, test boot, switch and restart are one session: a version the box cannot install
    (no artifact in its "mirror") fails in the `install` stage with the install's own last
    line, `current` never moves and the gateway is not restarted."""
    box = box_fleet(1)
    missing = "2026.9.8"
    seen: list[tuple[str, dict[str, Any]]] = []
    policy = RolloutPolicy(canary=1, health_timeout_s=10)
    report = rollout.start(_run(box, seen), [h.target() for h in box.hosts], missing, policy)

    assert report.state == "halted", report.rows
    (row,) = report.rows
    assert (row["phase"], row["from"]) == ("failed", OLD)
    assert row["error"] == f"install failed: no artifact for {missing}"
    (host,) = box.hosts
    assert harness.current(host) == OLD
    assert harness.events(host) == [f"start {OLD}"]  # no install, no restart
    assert _healthy(box) == {"box1": True}
