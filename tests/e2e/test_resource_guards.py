"""The gateway unit's resource guards on a real nspawn box with the real OpenClaw gateway
(issue 20): a gateway over its memory limit is OOM-killed in its own cgroup and restarted by
systemd, and the restart shows in `fat-health --json` (`gateway_restarts`, systemd's NRestarts).

The leak is made by the limit, not by a program: the box's unit carries MemoryMax=85% of the
box's RAM, which a test cannot fill in reasonable time, so the limit is lowered at runtime
(`systemctl set-property --runtime`, gone at the next boot) under what the running gateway
already uses. The kernel's cgroup OOM killer then kills the gateway exactly as it would kill a
leaking one at 85%, and what follows is the unit's own: Restart=always relaunches it, and
NRestarts counts it. The limit is put back and the gateway must come back ready.

Prints: the gateway's memory before the fault, and how long from the lowered limit to the
restart systemd counted.

Needs root and the sandbox's boxes (one box):
`python3 -m pytest -q tests/e2e/test_resource_guards.py`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from fatctl.sandbox.world import client as world
from tests.e2e.test_agent_serves import Plane, _plane

pytestmark = [pytest.mark.root, pytest.mark.slow]

AGENT, OWNER = "cust-guard", "guard@example.com"
UNIT = "openclaw-gateway.service"
RESTART_DEADLINE_S = 180.0
READY_DEADLINE_S = 300.0


def _on_box(plane: Plane, command: str) -> str:
    return plane.run("ssh", AGENT, "--", command)


def _health(plane: Plane) -> dict[str, Any]:
    """`fat-health --json` as root on the box (its last line is the object; exit 1 is
    unhealthy, which is not an error here)."""
    out = _on_box(plane, "sudo fat-health --json || true")
    return dict(json.loads(out.strip().splitlines()[-1]))


def _show(plane: Plane, prop: str) -> str:
    return _on_box(plane, f"systemctl show -p {prop} --value {UNIT}").strip()


def _until(what: str, deadline_s: float, check: Callable[[], bool]) -> float:
    started = time.monotonic()
    while time.monotonic() - started < deadline_s:
        if check():
            return time.monotonic() - started
        time.sleep(3)
    raise AssertionError(f"{what}: not within {deadline_s:g} s")


def test_a_gateway_over_its_memory_limit_is_restarted_and_fat_health_says_so(
    sandbox: dict[str, Any], tmp_path: Path, figure: Callable[..., None]
) -> None:
    plane = _plane(sandbox, tmp_path)
    admin = world.admin_url(sandbox["state"])
    plane.run("secrets", "set", "fireworks-api-key", stdin=world.issue_model_key(admin))
    plane.run("agents", "create", AGENT, "--owner", OWNER)
    plane.run("provision", AGENT, "--owner", OWNER)

    # The guards as rendered: a limit sized from the box's RAM, not infinity.
    shipped = _show(plane, "MemoryMax")  # bytes: 85% of this box's RAM
    assert shipped not in ("", "infinity"), shipped
    assert _show(plane, "MemoryHigh") not in ("", "infinity")
    before = _health(plane)
    assert before["healthy"] is True, before
    assert before["gateway_restarts"] == 0
    used = before["gateway_memory_bytes"]
    assert isinstance(used, int) and used > 0, before
    figure("gateway memory, ready and idle", used / 2**20, "MiB")

    # The fault: the limit under what the gateway uses now (at least a page, at most half).
    limit = max(4096, used // 2)
    _on_box(plane, f"sudo systemctl set-property --runtime {UNIT} MemoryMax={limit}")
    took = _until("systemd restarting the gateway", RESTART_DEADLINE_S,
                  lambda: int(_show(plane, "NRestarts") or 0) >= 1)  # fmt: skip
    figure("lowered limit to the restart systemd counted", took, "s")

    # The limit back to the unit file's own (the runtime drop-in rewritten to it), and ready.
    _on_box(plane, f"sudo systemctl set-property --runtime {UNIT} MemoryMax={shipped}")
    assert _show(plane, "MemoryMax") == shipped
    _until("the gateway ready again", READY_DEADLINE_S, lambda: _health(plane)["healthy"] is True)
    after = _health(plane)
    assert after["gateway_restarts"] >= 1, after  # fat-health reports what systemd counted
    assert after["gateway"] == "active"
    peak = after["gateway_memory_peak_bytes"]
    assert peak is None or isinstance(peak, int), after
