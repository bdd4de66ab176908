"""`fatctl upgrade` and `fatctl rollout` as subprocesses on real sshd hosts: halt, kill, resume."""

from __future__ import annotations

import json
import signal
import subprocess
from collections.abc import Callable

import pytest
from sqlmodel import col, func, select

from fatctl.state.db import session_scope
from fatctl.state.models import RolloutStep
from tests.fixtures.cli import fatctl_env, run_fatctl
from tests.integration.rollout import harness
from tests.integration.rollout.conftest import BoxFleet
from tests.integration.rollout.harness import BAD, NEW, OLD


def _fatctl(box: BoxFleet, *args: str) -> subprocess.CompletedProcess[str]:
    return run_fatctl(*args, env=fatctl_env(box.env), timeout=120)


def _json_lines(text: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_bad_version_stops_at_the_canary_and_rolls_it_back(
    box_fleet: Callable[[int], BoxFleet],
) -> None:
    box = box_fleet(3)
    dry = _fatctl(box, "upgrade", "--to", BAD, "--all", "--batch", "50%", "--dry-run", "--json")
    assert dry.returncode == 0, dry.stderr
    assert json.loads(dry.stdout) == [
        {"wave": 0, "hosts": "box1"},
        {"wave": 1, "hosts": "box2"},
        {"wave": 2, "hosts": "box3"},
    ]
    assert _fatctl(box, "rollout", "show", "1").returncode == 1  # a dry run records nothing
    assert all(harness.events(h) == [f"start {OLD}"] for h in box.hosts)
    proc = _fatctl(
        box, "upgrade", "--to", BAD, "--all", "--canary", "1", "--batch", "50%",
        "--health-timeout", "3", "--json",
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    lines = _json_lines(proc.stdout)
    events = [e for e in lines if "event" in e]
    assert all("ts" in e for e in events)
    assert [e["event"] for e in events] == [
        "rollout.start", "wave.start", "host.done", "rollout.halted",
    ]  # fmt: skip
    final = lines[-1]
    assert final["state"] == "halted"
    steps = {s["agent"]: s for s in final["steps"]}  # type: ignore[attr-defined]
    assert steps["box1"]["phase"] == "rolled_back"
    assert "health gate failed" in steps["box1"]["error"]
    assert steps["box2"]["phase"] == steps["box3"]["phase"] == "pending"
    canary, *others = box.hosts
    assert harness.current(canary) == OLD
    assert harness.events(canary) == [
        f"start {OLD}", f"install {BAD}", f"start {BAD}", f"start {OLD}",
    ]  # fmt: skip
    from fatctl.remote.commands.upgrade import health
    from fatctl.remote.fanout import fan_out

    (checked,) = fan_out([canary.target()], health(box.layout))
    assert checked.ok and json.loads(checked.stdout)["runtime_version"] == OLD
    again = _fatctl(box, "rollout", "resume", "1")
    assert again.returncode == 1 and "halted" in again.stderr
    for host in others:
        assert harness.events(host) == [f"start {OLD}"]  # never touched
        assert harness.current(host) == OLD


def _succeeded(box: BoxFleet) -> int:
    with session_scope(box.fleet.engine) as session:
        query = select(func.count()).where(col(RolloutStep.phase) == "succeeded")
        return int(session.exec(query).one())


def _kill_between_waves(box: BoxFleet) -> bool:
    return _succeeded(box) >= 2


def _kill_after_switch(box: BoxFleet) -> bool:
    """box3 restarted on NEW while its step is still `running` (inside its health gate)."""
    return f"start {NEW}" in harness.events(box.hosts[2])


@pytest.mark.parametrize("kill_when", [_kill_between_waves, _kill_after_switch])
def test_killed_rollout_resumes_without_upgrading_any_host_twice(
    box_fleet: Callable[[int], BoxFleet], kill_when: Callable[[BoxFleet], bool]
) -> None:
    box = box_fleet(5)
    args = ["upgrade", "--to", NEW, "--all", "--canary", "1", "--batch", "1", "--json"]
    code = harness.run_until_killed(args, box.env, lambda: kill_when(box))
    assert code == -signal.SIGKILL, "the kill must land before the rollout ends"
    assert 2 <= _succeeded(box) < 5

    shown = _fatctl(box, "rollout", "show", "1", "--json")
    assert json.loads(shown.stdout)["state"] == "running"

    resumed = _fatctl(box, "rollout", "resume", "1", "--json")
    assert resumed.returncode == 0, resumed.stderr
    final = _json_lines(resumed.stdout)[-1]
    assert final["state"] == "completed"
    assert {s["phase"] for s in final["steps"]} == {"succeeded"}  # type: ignore[attr-defined]
    assert {s["from"] for s in final["steps"]} == {OLD}  # type: ignore[attr-defined]
    table = _fatctl(box, "rollout", "show", "1")  # the people's view
    assert table.returncode == 0 and "completed" in table.stdout
    assert all(h.name in table.stdout for h in box.hosts)
    for host in box.hosts:
        log = harness.events(host)
        assert log.count(f"install {NEW}") == 1, (host.name, log)
        assert log.count(f"start {NEW}") == 1, (host.name, log)
        assert harness.current(host) == NEW
