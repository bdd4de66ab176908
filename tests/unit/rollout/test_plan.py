"""Waves and the halt rule: pure functions of the fleet and the policy."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fatctl.domain import RolloutPolicy
from fatctl.services.rollout.plan import plan_waves, should_halt


def names(n: int) -> list[str]:
    return [f"a{i:03d}" for i in range(n)]


def test_canaries_alone_then_batches() -> None:
    waves = plan_waves(names(8), RolloutPolicy(canary=2, batch=4))
    assert [(w.index, w.hosts) for w in waves] == [
        (0, ("a000", "a001")),
        (1, ("a002", "a003", "a004", "a005")),
        (2, ("a006", "a007")),
    ]
    assert waves[0].is_canary and not waves[1].is_canary


def test_percent_batches_resolve_against_the_fleet() -> None:
    waves = plan_waves(names(21), RolloutPolicy(canary=1, batch_percent=10))
    assert [len(w.hosts) for w in waves] == [1] + [2] * 10


def test_no_canary_starts_at_wave_one() -> None:
    waves = plan_waves(names(3), RolloutPolicy(canary=0, batch=2))
    assert [(w.index, len(w.hosts)) for w in waves] == [(1, 2), (2, 1)]


def test_duplicates_are_refused() -> None:
    with pytest.raises(ValueError, match="only once"):
        plan_waves(["a", "b", "a"], RolloutPolicy())


@given(
    n=st.integers(0, 300),
    canary=st.integers(0, 5),
    batch=st.integers(1, 50),
    percent=st.none() | st.floats(0.5, 100),
)
def test_every_host_exactly_once_in_order(
    n: int, canary: int, batch: int, percent: float | None
) -> None:
    policy = RolloutPolicy(canary=canary, batch=batch, batch_percent=percent)
    waves = plan_waves(names(n), policy)
    assert [h for w in waves for h in w.hosts] == names(n)
    assert all(w.hosts for w in waves)
    assert [w.index for w in waves] == sorted({w.index for w in waves})
    assert all(len(w.hosts) <= policy.batch_size(n) for w in waves if not w.is_canary)


def test_halt_rule() -> None:
    policy = RolloutPolicy(max_failures=1)
    assert not should_halt(["succeeded", "failed"], policy, canary_wave=False)
    assert should_halt(["failed", "unreachable"], policy, canary_wave=False)
    assert should_halt(["rolled_back", "pending"], policy, canary_wave=True)  # canaries: any
    assert not should_halt(["succeeded", "pending", "running"], policy, canary_wave=True)
