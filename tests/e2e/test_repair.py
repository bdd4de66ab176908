"""Automatic repair on a real nspawn box with the real OpenClaw gateway (issue 20), driven by a
real `fatctl serve` whose `health-sweep` schedule fires every 20 seconds (the cron is a
setting), repairing after 2 failed sweeps. One box for every case (a box costs CI minutes):

1. The gateway stopped (`systemctl stop`: `Restart=always` does not undo a stop): the sweep
   sees /readyz fail twice, the first rung (`repair.restart`) brings it back, and the box
   answers ready again.
2. The gateway stopped and masked (a restart is refused, and the mask outlives a reboot): the
   restart fails, the next failed sweep reboots the server, which fails its gate too, and the
   rebuild (a fresh disk, the newest backup restored) brings the box back. The audit shows the
   three rungs in order.
3. A box that cannot be repaired: `fatctl serve` again with a one-rung ladder (restart only),
   the gateway masked again: the restart fails, the next sweep pages (`repair.paged`, a hold of
   kind `paged`), and later sweeps run no further rung: paged, not looping. `fatctl repair
   release` lifts the page.

Prints: how long each repair took from the fault to the box ready again.

Needs root and the sandbox's boxes (slow: one box, one reboot, one rebuild):
`python3 -m pytest -q tests/e2e/test_repair.py`.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from fatctl.sandbox.world import client as world
from tests.e2e.test_agent_serves import Plane, _plane
from tests.fixtures.cli import start_fatctl
from tests.integration.service.test_recovery import free_port

pytestmark = [pytest.mark.root, pytest.mark.slow]

AGENT, OWNER = "cust-mend", "mend@example.com"
UNIT = "openclaw-gateway.service"
EVERY_20_S = "*/20 * * * * *"
# The reboot rung of a masked gateway waits out its health gate (FATCTL_REPAIR_GATE_S, 3 min
# here instead of 15) before the rebuild provisions the box again (first boot, restore, health
# gate): minutes in the sandbox.
REPAIR_GATE_S = "180"
REPAIR_DEADLINE_S = 1200.0


@contextmanager
def serving(plane: Plane, tmp_path: Path, rungs: str, tag: str) -> Iterator[None]:
    """`fatctl serve` with only the health sweep, every 20 s, and the given managed ladder."""
    env = {**plane.env, "FATCTL_SCHEDULE_HEALTH_SWEEP": EVERY_20_S,
           "FATCTL_SCHEDULE_R2_ROTATE": "off", "FATCTL_SCHEDULE_RECONCILE": "off",
           "FATCTL_SCHEDULE_BACKUP_VERIFY": "off", "FATCTL_REPAIR_AFTER_FAILURES": "2",
           "FATCTL_REPAIR_RUNGS_MANAGED": rungs, "FATCTL_REPAIR_GATE_S": REPAIR_GATE_S}  # fmt: skip
    log = (tmp_path / f"serve-{tag}.log").open("w")
    proc = start_fatctl("serve", "--port", str(free_port()), "--executor-id", f"e2e-{tag}",
                        env=env, stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
    try:
        yield
        assert proc.poll() is None, (tmp_path / f"serve-{tag}.log").read_text()[-2000:]
    finally:
        proc.terminate()
        proc.wait(timeout=60)
        log.close()


def _repairs(plane: Plane) -> list[tuple[str, str]]:
    """The agent's repair.* audit events, oldest first: (action, result)."""
    rows = json.loads(plane.run("audit", "--target", AGENT, "--limit", "500", "--json"))
    return [(r["action"], r["result"]) for r in reversed(rows) if r["action"].startswith("repair.")]


def _ready(plane: Plane) -> bool:
    status = json.loads(plane.run("status", AGENT, "--json"))[0]
    return str(status["health"]).startswith("healthy")


def _on_box(plane: Plane, command: str) -> None:
    plane.run("ssh", AGENT, "--", command)


def _wait_for(plane: Plane, what: str, wanted: list[tuple[str, str]], since: int) -> None:
    """Until the repair events after the first `since` are `wanted`; fails at once when they
    stop being a prefix of it (a rung out of order, one too many). Polls every 5 s: each look
    is a `fatctl audit` process."""
    deadline = time.monotonic() + REPAIR_DEADLINE_S
    while time.monotonic() < deadline:
        seen = _repairs(plane)[since:]
        if seen == wanted:
            return
        assert seen == wanted[: len(seen)], f"{what}: {seen}"
        time.sleep(5)
    raise AssertionError(f"{what}: only {_repairs(plane)[since:]} in {REPAIR_DEADLINE_S:g} s")


def test_the_ladder_brings_a_box_back_and_pages_one_it_cannot(
    sandbox: dict[str, Any], tmp_path: Path, figure: Callable[..., None]
) -> None:
    plane = _plane(sandbox, tmp_path)
    admin = world.admin_url(sandbox["state"])
    plane.run("secrets", "set", "fireworks-api-key", stdin=world.issue_model_key(admin))
    plane.run("agents", "create", AGENT, "--owner", OWNER)
    plane.run("provision", AGENT, "--owner", OWNER)
    assert _ready(plane)

    with serving(plane, tmp_path, "restart,reboot,rebuild", "ladder"):
        # 1. Stopped: the restart brings it back.
        started = time.monotonic()
        _on_box(plane, f"sudo systemctl stop {UNIT}")
        _wait_for(plane, "the restart", [("repair.restart", "ok")], 0)
        figure("repair by restart, from the fault to ready", time.monotonic() - started, "s")
        assert _ready(plane)

        # 2. Stopped and masked: restart and reboot fail, the rebuild brings it back.
        started = time.monotonic()
        _on_box(plane, f"sudo systemctl stop {UNIT} && sudo systemctl mask {UNIT}")
        _wait_for(plane, "the whole ladder",
                  [("repair.restart", "failed"), ("repair.reboot", "failed"),
                   ("repair.rebuild", "ok")], 1)  # fmt: skip
        figure("repair by rebuild, from the fault to ready", time.monotonic() - started, "s")
        assert _ready(plane)
        masked = plane.run("ssh", AGENT, "--", f"systemctl is-enabled {UNIT} || true")
        assert "masked" not in masked  # a fresh disk

    # 3. A one-rung ladder and a fault it cannot fix: paged, then left alone.
    with serving(plane, tmp_path, "restart", "page"):
        _on_box(plane, f"sudo systemctl stop {UNIT} && sudo systemctl mask {UNIT}")
        _wait_for(plane, "the page",
                  [("repair.restart", "failed"), ("repair.paged", "paged")], 4)  # fmt: skip
        listed = {r["agent"]: r for r in json.loads(plane.run("repair", "list", "--json"))}
        assert listed[AGENT]["hold"] == "paged", listed
        assert listed[AGENT]["next"].startswith("leave: paged"), listed
        time.sleep(90)  # four more sweeps fail: no rung runs on a paged box
        assert _repairs(plane)[4:] == [("repair.restart", "failed"), ("repair.paged", "paged")]
    released = json.loads(plane.run("repair", "release", AGENT, "--json"))
    assert released["released"] == "paged"
