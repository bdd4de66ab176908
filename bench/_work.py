"""The per-host upgrade work of one rollout, as the ordered commands fatctl's engine runs.

Built only from fatctl's command builders, as `HostUpgrade.upgrade` runs them on a healthy host:
read `current`, the activation (install beside, test-boot, switch, restart, under the box's
rollout lock), the health gate's two passes `poll_s` apart, the prune riding with the second.
The Ansible playbook and the direct lower-bound run execute exactly these strings, so all three
measure the same work.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from fatctl.remote.commands import upgrade as cmd
from fatctl.remote.commands.staged import then_if_ok


@dataclass(frozen=True)
class Step:
    name: str
    command: str
    pause_before_s: float = 0.0  # the gate's wait between its two health passes


def steps(
    layout: cmd.BoxLayout, version: str, previous: str, poll_s: float, keep: int
) -> list[Step]:
    """The commands of one host's upgrade from `previous` to `version`."""
    prune = cmd.prune(layout, keep, (previous,))
    return [
        Step("read current", cmd.current_version(layout)),
        Step("install, test boot, switch, restart", cmd.activation(layout, version, True)),
        Step("health 1", cmd.health(layout)),
        Step("health 2, prune", then_if_ok(cmd.health(layout), "prune", prune), poll_s),
    ]


def as_script(work: list[Step]) -> str:
    """One POSIX script running every step in its own `sh -c`, as separate SSH sessions would."""
    lines = ["set -e"]
    for step in work:
        if step.pause_before_s:
            lines.append(f"sleep {step.pause_before_s:g}")
        lines.append(f"sh -c {shlex.quote(step.command)} >/dev/null")
    return "\n".join(lines)
