"""The health gate's decisions, with the box's answers scripted (the SSH side is covered by the
integration tests): twice healthy in a row, the runtime version, and the HTTPS half."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from fatctl.pacing.poll import Poll
from fatctl.remote.runner import Result
from fatctl.remote.target import Target
from fatctl.services.rollout import gate as rollout_gate
from fatctl.services.rollout.gate import Gate, Unreachable

BOX = Target("box1", "127.0.0.1")


def report(healthy: bool, version: str = "2026.9.6") -> Result:
    body = json.dumps({"healthy": healthy, "runtime_version": version, "problems": ["down"]})
    return Result("box1", "127.0.0.1", 0 if healthy else 1, body + "\n", "", 0.01)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, s: float) -> None:
        self.now += s


@pytest.fixture
def answers(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Result]]:
    queue: list[Result] = []

    def fake_run_one(pool: Any, target: Target, command: str, **kw: Any) -> Result:
        assert command == "fat-health --json"
        return queue.pop(0) if len(queue) > 1 else queue[0]

    monkeypatch.setattr(rollout_gate, "run_one", fake_run_one)
    yield queue


def gate(clock: Clock, **kw: Any) -> Gate:
    return Gate(None, "fat-health --json", 10.0, poll=Poll(1.0, clock.sleep, clock), **kw)  # type: ignore[arg-type]


def test_needs_two_healthy_answers_in_a_row(answers: list[Result]) -> None:
    clock = Clock()
    answers += [report(True), report(False), report(True), report(True)]
    assert gate(clock).wait(BOX, "2026.9.6") is None
    assert clock.now == 3.0  # four checks, three sleeps: the unhealthy one reset the count


def test_wrong_version_or_never_healthy_fails_with_the_reason(answers: list[Result]) -> None:
    answers.append(report(True, "2026.9.5"))
    why = gate(Clock()).wait(BOX, "2026.9.6")
    assert why is not None and "box reports runtime 2026.9.5, expected 2026.9.6" in why
    answers[:] = [report(False)]
    why = gate(Clock()).wait(BOX, None)
    assert why == "health gate failed within 10s: down"


def test_unreachable_box_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    dead = Result("box1", "127.0.0.1", None, "", "", 0.0, "connection refused")
    monkeypatch.setattr(rollout_gate, "run_one", lambda *a, **k: dead)
    with pytest.raises(Unreachable, match="connection refused"):
        gate(Clock()).wait(BOX)


def test_https_skipped_with_a_recorded_reason(answers: list[Result]) -> None:
    answers.append(report(True))
    no_domain = gate(Clock())
    assert no_domain.wait(BOX) is None and no_domain.notes == [
        "https not checked: no domain configured"
    ]
    asked: list[str] = []

    def resolve(name: str) -> bool:
        asked.append(name)
        return False

    unresolved = gate(Clock(), domain="agents.example.net", resolve=resolve)
    assert unresolved.wait(BOX) is None
    assert asked == ["box1.agents.example.net"]
    assert unresolved.notes == ["https not checked: box1.agents.example.net does not resolve"]


def test_https_must_answer_within_the_same_deadline(answers: list[Result]) -> None:
    answers.append(report(True))
    replies = ["HTTPS on box1.x.net answered 502", None]
    clock = Clock()
    ok = gate(clock, domain="x.net", resolve=lambda n: True, https=lambda n: replies.pop(0))
    assert ok.wait(BOX) is None and ok.notes == []
    never = gate(Clock(), domain="x.net", resolve=lambda n: True, https=lambda n: "refused")
    assert never.wait(BOX) == "health gate failed: refused"


def test_resolves_is_false_for_a_reserved_name() -> None:
    assert rollout_gate.resolves("box1.agents.invalid") is False


def test_after_rides_only_with_the_pass_that_would_be_the_second_healthy_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from fatctl.remote.commands.staged import MARK

    answers = [report(False), report(True), report(True)]
    commands: list[str] = []

    def fake_run_one(pool: Any, target: Target, command: str, **kw: Any) -> Result:
        commands.append(command)
        answer = answers.pop(0)
        if "prune-cmd" in command and answer.exit_code == 0:  # as then_if_ok runs it
            out = answer.stdout + f"\n{MARK}prune\npruned 2026.9.4\n"
            return Result("box1", "127.0.0.1", 0, out, "", 0.01)
        return answer

    monkeypatch.setattr(rollout_gate, "run_one", fake_run_one)
    g = gate(Clock())
    assert g.wait(BOX, "2026.9.6", after=("prune", "prune-cmd")) is None
    assert ["prune-cmd" in c for c in commands] == [False, False, True]
    assert g.after_output == "pruned 2026.9.4\n"
