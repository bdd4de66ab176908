"""Which agents a sweep reports as degraded or recovered (`monitoring.sweep.transitions`): only
on a change of the newest probe, so the platform hears of each transition once."""

from __future__ import annotations

from fatctl.monitoring.probe import ProbeResult
from fatctl.monitoring.sweep import transitions


def result(agent: str, ok: bool) -> ProbeResult:
    return ProbeResult(agent=agent, ok=ok, status=200 if ok else 503, latency_s=0.01,
                       reason="" if ok else "gateway not ready", at=0.0)  # fmt: skip


def test_a_ready_agent_failing_after_a_pass_or_its_first_probe_is_degraded() -> None:
    results = [result("a", False), result("b", False), result("c", False), result("d", True)]
    last = {"a": True, "c": False, "d": True}  # b: never probed; c: already failing
    states = {"a": "ready", "b": "ready", "c": "ready", "d": "ready"}
    assert transitions(results, last, states) == (("a", "b"), ())


def test_an_upgrading_or_degraded_agent_failing_is_not_news() -> None:
    results = [result("u", False), result("g", False)]
    assert transitions(results, {"u": True}, {"u": "upgrading", "g": "degraded"}) == ((), ())


def test_passing_after_a_failure_is_recovered_and_a_steady_pass_is_not() -> None:
    results = [result("a", True), result("b", True), result("c", True)]
    last = {"a": False, "b": True}  # c: first probe, passing
    states = {"a": "degraded", "b": "ready", "c": "ready"}
    assert transitions(results, last, states) == ((), ("a",))
