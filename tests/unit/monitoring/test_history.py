"""What recent sweeps say about a box: down after N failed sweeps in a row, flapping after
enough changes, and escalated to SSH only while failing."""

from __future__ import annotations

import pytest

from fatctl.monitoring.history import (
    MemoryHistoryStore,
    ProbeHistory,
    consecutive_failures,
    transitions,
)
from fatctl.monitoring.probe import ProbeResult


def results(agent: str, pattern: str) -> list[ProbeResult]:
    """'.' ok, 'x' failed, oldest first."""
    return [ProbeResult(agent, c == ".", 200 if c == "." else None, 0.01) for c in pattern]


@pytest.mark.parametrize(
    ("pattern", "failing", "changes"),
    [("", 0, 0), ("...", 0, 0), ("..x", 1, 1), ("xxx", 3, 0), ("x.xx", 2, 2), (".x.x.", 0, 4)],
)
def test_runs_and_changes_are_counted_from_the_newest(
    pattern: str, failing: int, changes: int
) -> None:
    assert consecutive_failures(results("a", pattern)) == failing
    assert transitions(results("a", pattern)) == changes


def sweeps(history: ProbeHistory, patterns: dict[str, str]) -> None:
    """Record the patterns sweep by sweep, every agent once per sweep."""
    for i in range(max(len(p) for p in patterns.values())):
        history.record(results(a, p[i])[0] for a, p in patterns.items() if i < len(p))


def test_down_flapping_and_escalated_boxes() -> None:
    history = ProbeHistory(keep=6, down_after=3, flap_after=4, escalate_after=2)
    sweeps(history, {
        "steady": "......",
        "down": "...xxx",
        "blip": "....x.",
        "starting": ".....x",
        "failing2": "....xx",
        "flapping_now_failing": ".x.x.x",
        "flapping_now_ok": "x.x.x.",
    })  # fmt: skip
    assert history.down() == ["down"]
    assert history.flapping() == ["flapping_now_failing", "flapping_now_ok"]
    # Failing now, and either for two sweeps or flapping; never a box that answers.
    assert history.escalate() == ["down", "failing2", "flapping_now_failing"]
    assert [r.agent for r in history.latest() if not r.ok] == [
        "down", "failing2", "flapping_now_failing", "starting"
    ]  # fmt: skip


def test_old_results_leave_the_window() -> None:
    history = ProbeHistory(keep=3, down_after=3, flap_after=2)
    sweeps(history, {"a": "x.x...."})
    assert history.flapping() == []
    assert len(history.store.recent("a")) == 3


def test_a_recovered_box_is_no_longer_down_and_forgotten_agents_go() -> None:
    history = ProbeHistory(down_after=2)
    sweeps(history, {"a": "xx", "b": "xx"})
    assert history.down() == ["a", "b"]
    history.record(results("a", "."))
    history.retain(["a"])
    assert history.down() == []
    assert [r.agent for r in history.latest()] == ["a"]


def test_the_store_is_pluggable() -> None:
    store = MemoryHistoryStore(keep=2)
    history = ProbeHistory(store, keep=2, down_after=2)
    sweeps(history, {"a": "xxx"})
    assert history.store is store and store.recent("a") == tuple(results("a", "xx"))


@pytest.mark.parametrize("kwargs", [{"keep": 0}, {"down_after": 11}, {"flap_after": 0}])
def test_nonsense_counts_are_refused(kwargs: dict[str, int]) -> None:
    with pytest.raises(ValueError, match="history"):
        ProbeHistory(**kwargs)
