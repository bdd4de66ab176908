"""Polling with injectable backoff, and the lease that keeps two runs of one agent apart."""

from __future__ import annotations

from typing import Any

import pytest

from fatctl.errors import LeaseHeld
from fatctl.pacing.poll import Backoff, WaitTimeout
from fatctl.services.provision.flow import provision
from fatctl.state.leases import lease
from tests.integration.provision.test_provision_flow import opts, request


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def sleep(self, s: float) -> None:
        self.sleeps.append(s)
        self.now += s


def test_backoff_grows_to_cap_and_returns_first_answer() -> None:
    clock = FakeClock()
    answers = iter([None, None, None, None, "up"])
    b = Backoff(interval=1.0, factor=2.0, cap=3.0, timeout=100, sleep=clock.sleep,
                clock=lambda: clock.now)  # fmt: skip
    assert b.wait_for("thing", lambda: next(answers)) == "up"
    assert clock.sleeps == [1.0, 2.0, 3.0, 3.0]


def test_backoff_times_out_with_one_line() -> None:
    clock = FakeClock()
    b = Backoff(interval=1.0, factor=1.0, cap=1.0, timeout=5, sleep=clock.sleep,
                clock=lambda: clock.now)  # fmt: skip
    with pytest.raises(WaitTimeout, match="timed out after 5s waiting for SSH"):
        b.wait_for("SSH", lambda: None)
    assert sum(clock.sleeps) == 5


def test_second_run_of_the_same_agent_is_refused(plane: Any) -> None:
    provision(plane.db, plane.ring, plane.settings, plane.infra(), request("leased"), "t", opts())
    with lease(plane.db, "agent:leased"), pytest.raises(LeaseHeld):
        provision(plane.db, plane.ring, plane.settings, plane.infra(), request("leased"), "t",
                  opts())  # fmt: skip
