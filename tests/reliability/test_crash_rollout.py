"""Kill `fatctl upgrade` (SIGKILL) at each phase of one host's upgrade on real sshd hosts, then
`fatctl rollout resume`: the rollout completes and no host is upgraded twice (each host logs
one install and one start of the new version, and serves it).

Three hosts, canary 1 then batches of 1; the kills land in the second host's step. Wrappers
around the harness runtime's install and restart pause 1 s after the install and 4 s before the
restart, so the kill lands inside the phase it names and not a few ms later (checked after the
kill), and a restart the killed fatctl left running on the box is still pending when the resumed
step looks (this test fails without the box's rollout lock, `cmd.locked`: the gateway started
twice). Reuses tests/integration/rollout (runtime harness, `box_fleet`)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlmodel import select

from fatctl.state.db import session_scope
from fatctl.state.models import Agent, RolloutStep
from tests.fixtures.cli import fatctl_env, run_fatctl
from tests.integration.rollout import harness
from tests.integration.rollout.conftest import BoxFleet, box_fleet  # noqa: F401 (fixture)
from tests.integration.rollout.harness import NEW, OLD

HOST = 1  # index of the host whose step is killed (box2, the first after the canary)
# Longer than `fatctl rollout resume` takes to reach the box, so a restart left running by the
# killed fatctl (sshd does not stop a session's processes when the client dies) is still pending
# when the resumed step looks: without the box's rollout lock both would start the gateway.
RESTART_PAUSE_S = 4

_PAUSE_AFTER = '#!/bin/sh\nset -e\n"{real}" "$@"\nsleep {pause}\n'
_PAUSE_BEFORE = '#!/bin/sh\nsleep {pause}\nexec "{real}" "$@"\n'


def phase_of(box: BoxFleet, name: str) -> str:
    with session_scope(box.fleet.engine) as session:
        query = select(RolloutStep.phase).join(Agent, Agent.id == RolloutStep.agent_pk)  # type: ignore[arg-type]
        found = session.exec(query.where(Agent.name == name)).all()
    return found[-1] if found else ""


# phase -> (kill when this holds, what must be true right after the kill)
Probe = Callable[[BoxFleet], bool]


PHASES: dict[str, tuple[Probe, Probe]] = {
    "step recorded running": (
        lambda b: phase_of(b, b.hosts[HOST].name) == "running",
        lambda b: harness.current(b.hosts[HOST]) == OLD,
    ),
    "installed, not switched": (
        lambda b: f"install {NEW}" in harness.events(b.hosts[HOST]),
        lambda b: harness.current(b.hosts[HOST]) == OLD,
    ),
    "switched, not restarted": (
        lambda b: harness.current(b.hosts[HOST]) == NEW,
        lambda b: f"start {NEW}" not in harness.events(b.hosts[HOST]),
    ),
    "restarted, inside the health gate": (
        lambda b: f"start {NEW}" in harness.events(b.hosts[HOST]),
        lambda b: phase_of(b, b.hosts[HOST].name) == "running",
    ),
    "succeeded, before the next host": (
        lambda b: phase_of(b, b.hosts[HOST].name) == "succeeded",
        lambda b: harness.current(b.hosts[HOST + 1]) == OLD,
    ),
}


def slow_down(box: BoxFleet) -> None:
    """Wrap install and restart with pauses (1 s after the install, 4 s before the restart)."""
    op = box.hosts[0].identity.operator
    layout = harness.layout(op)
    real_install, real_restart = layout.install.split(" ")[0], layout.restart
    for host in box.hosts:
        bin_dir = host.home(op) / "box" / "bin"
        for name, text in (
            ("install-paused", _PAUSE_AFTER.format(real=real_install, pause=1)),
            ("svc-paused", _PAUSE_BEFORE.format(real=real_restart, pause=RESTART_PAUSE_S)),
        ):
            path = bin_dir / name
            path.write_text(text)
            os.chmod(path, 0o755)
            harness.chown_tree(path, op)
    box_bin = f"{harness.box_dir(op)}/bin"
    box.env["FATCTL_BOX_INSTALL"] = f"{box_bin}/install-paused {{version}}"
    box.env["FATCTL_BOX_RESTART"] = f"{box_bin}/svc-paused"


def fatctl(box: BoxFleet, *args: str) -> subprocess.CompletedProcess[str]:
    return run_fatctl(*args, env=fatctl_env(box.env), timeout=300)


# This test found that a step resumed after switch-before-restart was only gated, never
# restarted (the gate reads the version from the `current` link, so the old process passed);
# fixed in rollout_host by restarting a gateway that predates the switch (14f7c19).
@pytest.mark.parametrize("phase", list(PHASES))
def test_upgrade_killed_in_a_host_phase_resumes_without_double_upgrades(
    box_fleet: Callable[[int], BoxFleet],  # noqa: F811
    phase: str,
    figure: Callable[..., None],
    tmp_path: Path,
) -> None:
    box = box_fleet(3)
    slow_down(box)
    kill_when, then = PHASES[phase]
    args = ["upgrade", "--to", NEW, "--all", "--canary", "1", "--batch", "1", "--json"]
    code = harness.run_until_killed(args, box.env, lambda: kill_when(box))
    assert code == -signal.SIGKILL, "the kill must land before the rollout ends"
    assert then(box), f"the kill missed the phase {phase!r}"

    resumed = fatctl(box, "rollout", "resume", "1", "--json")
    final = json.loads(resumed.stdout.splitlines()[-1]) if resumed.stdout.strip() else {}
    twice = {h.name: harness.events(h) for h in box.hosts
             if harness.events(h).count(f"install {NEW}") != 1
             or harness.events(h).count(f"start {NEW}") != 1}  # fmt: skip
    figure(
        f"rollout killed at {phase}: resumed to", final.get("state", f"exit {resumed.returncode}")
    )
    figure(f"rollout killed at {phase}: hosts not upgraded exactly once", len(twice))
    assert resumed.returncode == 0, resumed.stderr
    assert final["state"] == "completed"
    assert {s["phase"] for s in final["steps"]} == {"succeeded"}
    assert not twice, f"hosts not upgraded exactly once: {twice}"
    assert all(harness.current(h) == NEW for h in box.hosts)
