"""The people's progress views (rich.progress): drawn only on a terminal, never with --json,
built from events that pass through unchanged."""

from __future__ import annotations

import io
from typing import Any

from fatctl.cli.progress_view import RolloutProgress, StepProgress


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def feed(view: RolloutProgress) -> None:
    view("rollout.start", rollout=1, hosts=4, waves=3)
    view("wave.start", rollout=1, wave=0, hosts=["a"])
    view("host.done", agent="a", phase="succeeded", progress="1/4")
    view("wave.start", rollout=1, wave=1, hosts=["b", "c"])
    view("host.done", agent="c", phase="rolled_back", progress="2/4")


def test_terminal_gets_the_bar_and_the_current_batch() -> None:
    seen: list[tuple[str, dict[str, Any]]] = []
    tty = Tty()
    view = RolloutProgress(lambda k, **f: seen.append((k, f)), json_mode=False, stream=tty)
    feed(view)
    assert view.line() == "2/4 hosts  wave 1: b c (1/2 done)  1 failed"
    view.close()
    drawn = tty.getvalue()
    assert "canary: a (1/1 done)" in drawn and "1/4" in drawn
    assert "wave 1: b c (1/2 done)  1 failed" in drawn and "2/4" in drawn
    assert "━" in drawn  # rich's bar
    assert [k for k, _ in seen] == [
        "rollout.start", "wave.start", "host.done", "wave.start", "host.done",
    ]  # fmt: skip
    assert seen[2][1]["progress"] == "1/4"  # events pass through unchanged


def test_nothing_drawn_without_a_terminal_or_with_json() -> None:
    for stream, json_mode in ((io.StringIO(), False), (Tty(), True)):
        seen: list[str] = []

        def emit(kind: str, *, into: list[str] = seen, **fields: object) -> None:
            into.append(kind)

        view = RolloutProgress(emit, json_mode=json_mode, stream=stream)
        feed(view)
        view.close()
        steps = StepProgress(emit, 3, json_mode=json_mode, stream=stream)
        steps("step.start", agent="a", step="infra")
        steps.close()
        assert stream.getvalue() == "" and len(seen) == 6


def test_resume_learns_the_total_from_host_events() -> None:
    tty = Tty()
    view = RolloutProgress(lambda k, **f: None, json_mode=False, stream=tty)
    view("rollout.resume", rollout=3)
    view("wave.start", rollout=3, wave=2, hosts=["x"])
    view("host.done", agent="x", phase="succeeded", progress="5/5")
    assert view.line() == "5/5 hosts  wave 2: x (1/1 done)"
    view.close()
    assert "5/5" in tty.getvalue()


def test_steps_of_one_agent() -> None:
    tty = Tty()
    view = StepProgress(lambda k, **f: None, 4, json_mode=False, stream=tty)
    view("step.ok", agent="alice", step="validate", note="")
    view("step.start", agent="alice", step="infra")
    view("step.done", agent="alice", step="infra", elapsed_s=1.0)
    view("step.start", agent="alice", step="dns")
    view.close()
    drawn = tty.getvalue()
    assert "alice: infra" in drawn and "alice: dns" in drawn and "2/4" in drawn
