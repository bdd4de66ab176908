"""The shape of a rollout, as pure functions: which hosts go in which wave, and when to halt.

Wave 0 holds the canaries, alone; the remaining hosts follow in batches of
`RolloutPolicy.batch_size(fleet)`. The order is the input order (the CLI sorts by name), so the
same fleet and policy always give the same waves, and a resumed rollout finds its plan unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from fatctl.domain import RolloutPolicy, StepPhase

# Outcomes of a host step that count against `max_failures`.
FAILED_PHASES = frozenset({StepPhase.FAILED, StepPhase.ROLLED_BACK, StepPhase.UNREACHABLE})
DONE_PHASES = frozenset({StepPhase.SUCCEEDED, *FAILED_PHASES})


@dataclass(frozen=True)
class Wave:
    index: int  # 0 = canaries
    hosts: tuple[str, ...]

    @property
    def is_canary(self) -> bool:
        return self.index == 0


def plan_waves(hosts: Sequence[str], policy: RolloutPolicy) -> list[Wave]:
    """Canaries first and alone, then batches; no empty waves; duplicates refused."""
    if len(set(hosts)) != len(hosts):
        raise ValueError("a host may appear only once in a rollout")
    if policy.canary < 0:
        raise ValueError("canary count cannot be negative")
    names = list(hosts)
    canaries, rest = names[: policy.canary], names[policy.canary :]
    waves = [Wave(0, tuple(canaries))] if canaries else []
    size = policy.batch_size(len(names))
    for start in range(0, len(rest), size):
        waves.append(
            Wave(len(waves) if canaries else len(waves) + 1, tuple(rest[start : start + size]))
        )
    return waves


def failures(phases: Sequence[str]) -> int:
    return sum(1 for p in phases if p in FAILED_PHASES)


def should_halt(phases: Sequence[str], policy: RolloutPolicy, *, canary_wave: bool) -> bool:
    """Halt when failures exceed `max_failures`; any canary failure halts (that is their job)."""
    count = failures(phases)
    if canary_wave and count:
        return True
    return count > policy.max_failures
